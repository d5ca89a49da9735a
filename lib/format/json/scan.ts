/**
 * Finds JSON values in source text without parsing them, so their exact text
 * can be kept: the top-level fields of a record ({@linkcode recordFields}) and
 * the records of an export document in any layout ({@linkcode ExportScanner}).
 *
 * Longer than 400 lines because it is one scanner: the value, string,
 * number and container rules share its position and error reporting, and
 * split apart they would each need the whole state.
 *
 * @module
 */

import { quote } from "../../errors.ts";
import type { RawRecord } from "../records.ts";

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/**
 * The index just past the closing quote of the string starting at `start`
 * (which holds the opening quote), or -1 when the text ends first.
 */
function stringEnd(text: string, start: number): number {
  let i = start + 1;
  while (true) {
    const q = text.indexOf('"', i);
    if (q < 0) return -1;
    let slashes = 0;
    for (let j = q - 1; j > start && text.charCodeAt(j) === BACKSLASH; j--) {
      slashes++;
    }
    if (slashes % 2 === 0) return q + 1;
    i = q + 1;
  }
}

/**
 * The index just past the end of the value starting at `start`, or -1 when
 * the text ends first. Only strings, objects and arrays are delimited here;
 * scalars end at the next `,`, `}`, `]` or space.
 */
function valueEnd(text: string, start: number): number {
  const first = text.charCodeAt(start);
  if (first === QUOTE) return stringEnd(text, start);
  if (first !== OPEN_BRACE && first !== OPEN_BRACKET) {
    let i = start;
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (
        c === COMMA || c === CLOSE_BRACE || c === CLOSE_BRACKET || isSpace(c)
      ) break;
      i++;
    }
    return i;
  }
  if (first === OPEN_BRACKET) {
    // An embedding: an array of numbers ends at the first `]` when no
    // string, object or array opens before it (native searches, not a
    // character loop).
    const close = text.indexOf("]", start);
    if (close > 0 && !NESTED.test(text.slice(start + 1, close))) {
      return close + 1;
    }
  }
  return new ContainerEnd().advance(text, start);
}

const NESTED = /[[{"]/;

/**
 * Finds where an object or array ends across pieces of text, picking up
 * where the last piece stopped: each character is looked at once, however
 * many pieces a long value comes in.
 */
class ContainerEnd {
  #depth = 0;
  #inString = false;
  #escaped = false;

  /**
   * @param text The next piece (the first one starts with `{` or `[`).
   * @param from Where in it the value (or its continuation) starts.
   * @returns The index just past the value's end, or -1 when the piece ends
   * first.
   */
  advance(text: string, from: number): number {
    let depth = this.#depth;
    let inString = this.#inString;
    let escaped = this.#escaped;
    for (let i = from; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (inString) {
        if (escaped) escaped = false;
        else if (c === BACKSLASH) escaped = true;
        else if (c === QUOTE) inString = false;
      } else if (c === QUOTE) inString = true;
      else if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
      else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
        if (--depth === 0) return i + 1;
      }
    }
    this.#depth = depth;
    this.#inString = inString;
    this.#escaped = escaped;
    return -1;
  }
}

/**
 * The top-level fields of a JSON object as source text, in order. The text
 * must already be known to be valid JSON (e.g. `JSON.parse` accepted it).
 *
 * @param text A JSON object.
 * @returns Field name → exact source text of its value.
 */
export function recordFields(text: string): RawRecord {
  const fields = objectFields(text.trim());
  if (!fields) throw new SyntaxError("not one JSON object");
  return fields;
}

/**
 * The top-level fields of one JSON object, as {@linkcode recordFields}, or
 * `undefined` when the text is not exactly one object (e.g. two on one
 * line, or a cut one). Only the structure is checked, not each value: this
 * splits text that was verified before, without parsing it again.
 *
 * @param text The text, starting with `{` and ending with `}`.
 * @returns Field name → exact source text of its value.
 */
export function objectFields(text: string): RawRecord | undefined {
  const fields: RawRecord = new Map();
  if (text.charCodeAt(0) !== OPEN_BRACE) return undefined;
  let i = 1;
  while (isSpace(text.charCodeAt(i))) i++;
  if (text.charCodeAt(i) === CLOSE_BRACE) {
    return i === text.length - 1 ? fields : undefined;
  }
  while (true) {
    if (text.charCodeAt(i) !== QUOTE) return undefined;
    const keyEnd = stringEnd(text, i);
    if (keyEnd < 0) return undefined;
    const key = JSON.parse(text.slice(i, keyEnd)) as string;
    i = keyEnd;
    while (isSpace(text.charCodeAt(i))) i++;
    if (text.charCodeAt(i) !== COLON) return undefined;
    i++;
    while (isSpace(text.charCodeAt(i))) i++;
    const end = valueEnd(text, i);
    if (end <= i) return undefined;
    fields.set(key, text.slice(i, end));
    i = end;
    while (isSpace(text.charCodeAt(i))) i++;
    const c = text.charCodeAt(i);
    if (c === CLOSE_BRACE) {
      return i === text.length - 1 ? fields : undefined;
    }
    if (c !== COMMA) return undefined;
    i++;
    while (isSpace(text.charCodeAt(i))) i++;
  }
}

/** The document sections the scanner reports. */
export type ExportSection = "metadata" | "memories" | "relationships";

/** One value found in an export document. */
export interface ScannedValue {
  /** The section: the metadata object, or a record of either array. */
  readonly section: ExportSection;
  /** Its exact source text. */
  readonly text: string;
  /** The 1-based line it starts on. */
  readonly line: number;
}

/** Where a scanner starts; lets a line-based reader hand over mid-document. */
export type ScanState =
  | { readonly at: "start" }
  | { readonly at: "key"; readonly seen: ExportSection[] }
  | { readonly at: "after-value"; readonly seen: ExportSection[] }
  | {
    readonly at: "element" | "element-or-close" | "after-element";
    readonly seen: ExportSection[];
  }
  | { readonly at: "done"; readonly seen: ExportSection[] };

/** A syntax error in an export document. */
export class ScanError extends SyntaxError {
  /** The 1-based line. */
  readonly line: number;

  /**
   * @param message What is wrong.
   * @param line Where.
   */
  constructor(message: string, line: number) {
    super(message);
    this.name = "ScanError";
    this.line = line;
  }
}

type State =
  | "start"
  | "key-or-end"
  | "key"
  | "colon"
  | "value"
  | "in-value"
  | "element-or-close"
  | "element"
  | "in-element"
  | "after-element"
  | "after-value"
  | "done";

const SECTIONS: readonly string[] = ["metadata", "memories", "relationships"];

/** Longer than any section name: a key this long is refused at once. */
const MAX_KEY_CHARS = 64;

/** No value may be larger than this (V8 strings stop at about 512 MiB). */
export const MAX_VALUE_CHARS = 256 * 1024 * 1024;

/**
 * A streaming scanner for `{"metadata": {...}, "memories": [...],
 * "relationships": [...]}` in any valid layout (any whitespace, any key
 * order). It yields each record's exact text; memory use is bounded by the
 * largest record.
 */
export class ExportScanner {
  #state: State;
  #seen: ExportSection[];
  #section: ExportSection | undefined;
  /** Text not yet scanned to the end of a token (a key cut short, say). */
  #buffer = "";
  #line: number;
  /** The pieces of the value being read, and where its end is sought. */
  #pieces: string[] = [];
  #piecesChars = 0;
  #valueEnd = new ContainerEnd();
  #valueLine = 0;

  /**
   * @param state Where in the document the text fed next begins.
   * @param line The 1-based line the text fed next begins on.
   */
  constructor(state: ScanState = { at: "start" }, line = 1) {
    this.#line = line;
    this.#seen = state.at === "start" ? [] : [...state.seen];
    switch (state.at) {
      case "start":
        this.#state = "start";
        break;
      case "key":
        this.#state = "key";
        break;
      case "after-value":
        this.#state = "after-value";
        break;
      case "done":
        this.#state = "done";
        break;
      default:
        this.#state = state.at;
        this.#section = state.seen[state.seen.length - 1];
    }
  }

  /**
   * Feeds text; returns the values completed by it.
   *
   * @param chunk The next piece of the document.
   * @returns Values found, in order.
   * @throws {ScanError} At the first syntax error.
   */
  push(chunk: string): ScannedValue[] {
    const out: ScannedValue[] = [];
    let text: string;
    let i: number;
    if (this.#state === "in-value" || this.#state === "in-element") {
      // Only the new piece is scanned: a long value costs its length once.
      const end = this.#valueEnd.advance(chunk, 0);
      if (end < 0) {
        this.#keep(chunk);
        return out;
      }
      this.#emit(this.#pieces.join("") + chunk.slice(0, end), out);
      text = chunk;
      i = end;
    } else {
      text = this.#buffer + chunk;
      i = 0;
    }
    let consumed = i;
    scan: while (i < text.length) {
      const c = text.charCodeAt(i);
      if (isSpace(c)) {
        if (c === 0x0a) this.#line++;
        i++;
        consumed = i;
        continue;
      }
      switch (this.#state) {
        case "start":
          if (c !== OPEN_BRACE) this.#fail("the document is not a JSON object");
          this.#state = "key-or-end";
          break;
        case "key-or-end":
        case "key": {
          if (c === CLOSE_BRACE && this.#state === "key-or-end") {
            this.#end();
            break;
          }
          if (c !== QUOTE) this.#fail("expected a key");
          const end = stringEnd(text, i);
          if (end < 0) {
            // No section name is this long: do not wait for its end.
            if (text.length - i > MAX_KEY_CHARS) {
              this.#fail(
                `unexpected key ${
                  quote(text.slice(i + 1))
                } (expected metadata, memories, relationships)`,
              );
            }
            break scan;
          }
          let key: string;
          try {
            key = JSON.parse(text.slice(i, end));
          } catch {
            this.#fail("a key is not a valid JSON string");
          }
          if (!SECTIONS.includes(key)) {
            this.#fail(
              `unexpected key ${
                quote(key)
              } (expected metadata, memories, relationships)`,
            );
          }
          const section = key as ExportSection;
          if (this.#seen.includes(section)) {
            this.#fail(`duplicate key "${key}"`);
          }
          this.#seen.push(section);
          this.#section = section;
          this.#state = "colon";
          i = end;
          consumed = i;
          continue;
        }
        case "colon":
          if (c !== COLON) this.#fail("expected ':' after a key");
          this.#state = "value";
          break;
        case "value":
          if (this.#section === "metadata") {
            if (c !== OPEN_BRACE) this.#fail("metadata is not an object");
            const end = this.#startValue("in-value", text, i);
            if (end < 0) return out;
            this.#emit(text.slice(i, end), out);
            i = consumed = end;
            continue;
          }
          if (c !== OPEN_BRACKET) {
            this.#fail(`${this.#section} is not an array`);
          }
          this.#state = "element-or-close";
          break;
        case "element-or-close":
        case "element": {
          if (c === CLOSE_BRACKET) {
            if (this.#state === "element") {
              this.#fail(`trailing comma before ']' in ${this.#section}`);
            }
            this.#state = "after-value";
            break;
          }
          if (c !== OPEN_BRACE) {
            this.#fail(`a record in ${this.#section} is not a JSON object`);
          }
          const end = this.#startValue("in-element", text, i);
          if (end < 0) return out;
          this.#emit(text.slice(i, end), out);
          i = consumed = end;
          continue;
        }
        case "after-element":
          if (c === COMMA) this.#state = "element";
          else if (c === CLOSE_BRACKET) this.#state = "after-value";
          else {this.#fail(
              `expected ',' or ']' after a record in ${this.#section}`,
            );}
          break;
        case "after-value":
          if (c === COMMA) this.#state = "key";
          else if (c === CLOSE_BRACE) this.#end();
          else this.#fail("expected ',' or '}' after a value");
          break;
        case "done":
          this.#fail("unexpected text after the end of the document");
      }
      i++;
      consumed = i;
    }
    this.#buffer = text.slice(consumed);
    return out;
  }

  /**
   * Starts reading the value at `text[i]`: its end in `text`, or -1 after
   * keeping the rest of `text` as the value's first piece.
   */
  #startValue(
    state: "in-value" | "in-element",
    text: string,
    i: number,
  ): number {
    this.#state = state;
    this.#valueLine = this.#line;
    this.#valueEnd = new ContainerEnd();
    const end = this.#valueEnd.advance(text, i);
    if (end < 0) {
      this.#buffer = "";
      this.#keep(text.slice(i));
    }
    return end;
  }

  #keep(piece: string): void {
    this.#pieces.push(piece);
    this.#piecesChars += piece.length;
    if (this.#piecesChars > MAX_VALUE_CHARS) {
      throw new ScanError(
        `a value begun on line ${this.#valueLine} is larger than ${MAX_VALUE_CHARS} characters`,
        this.#valueLine,
      );
    }
  }

  #emit(value: string, out: ScannedValue[]): void {
    out.push({ section: this.#section!, text: value, line: this.#valueLine });
    this.#line += countLines(value);
    this.#state = this.#state === "in-value" ? "after-value" : "after-element";
    this.#pieces = [];
    this.#piecesChars = 0;
  }

  /**
   * Ends the document.
   *
   * @returns The sections seen.
   * @throws {ScanError} When the document is incomplete.
   */
  finish(): ExportSection[] {
    if (
      this.#buffer.trim() !== "" || this.#piecesChars > 0 ||
      this.#state !== "done"
    ) {
      this.#fail(
        this.#state === "in-element" || this.#state === "in-value"
          ? `the file ends inside a value begun on line ${this.#valueLine}`
          : "the file ends before the document does",
      );
    }
    return this.#seen;
  }

  #end(): void {
    const missing = SECTIONS.filter((s) =>
      !this.#seen.includes(s as ExportSection)
    );
    if (missing.length > 0) {
      this.#fail(
        `the document has no ${missing.map((m) => `"${m}"`).join(", ")}`,
      );
    }
    this.#state = "done";
  }

  #fail(reason: string): never {
    throw new ScanError(reason, this.#line);
  }
}

function countLines(text: string): number {
  let n = 0;
  let i = text.indexOf("\n");
  while (i >= 0) {
    n++;
    i = text.indexOf("\n", i + 1);
  }
  return n;
}
