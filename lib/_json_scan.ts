/**
 * Finds JSON values in source text without parsing them, so their exact text
 * can be kept: the top-level fields of a record ({@linkcode recordFields}) and
 * the records of an export document in any layout ({@linkcode ExportScanner}).
 *
 * @module
 */

import type { RawRecord } from "./records.ts";

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
  let depth = 0;
  let i = start;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      i = stringEnd(text, i);
      if (i < 0) return -1;
      continue;
    }
    if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
    else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
      if (depth === 0) return i + 1;
    }
    i++;
  }
  return -1;
}

/**
 * The top-level fields of a JSON object as source text, in order. The text
 * must already be known to be valid JSON (e.g. `JSON.parse` accepted it).
 *
 * @param text A JSON object.
 * @returns Field name → exact source text of its value.
 */
export function recordFields(text: string): RawRecord {
  const fields: RawRecord = new Map();
  let i = text.indexOf("{") + 1;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c !== QUOTE) {
      i++;
      continue;
    }
    const keyEnd = stringEnd(text, i);
    const key = JSON.parse(text.slice(i, keyEnd)) as string;
    i = text.indexOf(":", keyEnd) + 1;
    while (isSpace(text.charCodeAt(i))) i++;
    const end = valueEnd(text, i);
    fields.set(key, text.slice(i, end));
    i = end;
    while (i < text.length && text.charCodeAt(i) !== COMMA) i++;
  }
  return fields;
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
  #buffer = "";
  #line: number;
  #valueStart = 0;
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
    this.#buffer += chunk;
    const out: ScannedValue[] = [];
    const text = this.#buffer;
    let i = this.#state === "in-value" || this.#state === "in-element"
      ? this.#valueStart
      : 0;
    let consumed = 0;
    scan: while (i < text.length) {
      const c = text.charCodeAt(i);
      switch (this.#state) {
        case "in-value":
        case "in-element": {
          const end = valueEnd(text, i);
          if (end < 0) break scan; // need more text
          const value = text.slice(i, end);
          const section = this.#section!;
          out.push({ section, text: value, line: this.#valueLine });
          this.#line += countLines(value);
          this.#state = this.#state === "in-value"
            ? "after-value"
            : "after-element";
          i = end;
          consumed = i;
          continue;
        }
        default:
          break;
      }
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
          if (end < 0) break scan;
          let key: string;
          try {
            key = JSON.parse(text.slice(i, end));
          } catch {
            this.#fail("a key is not a valid JSON string");
          }
          if (!SECTIONS.includes(key)) {
            this.#fail(
              `unexpected key "${key}" (expected metadata, memories, relationships)`,
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
            this.#state = "in-value";
            this.#valueStart = i;
            this.#valueLine = this.#line;
            consumed = i;
            continue;
          }
          if (c !== OPEN_BRACKET) {
            this.#fail(`${this.#section} is not an array`);
          }
          this.#state = "element-or-close";
          break;
        case "element-or-close":
        case "element":
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
          this.#state = "in-element";
          this.#valueStart = i;
          this.#valueLine = this.#line;
          consumed = i;
          continue;
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
    if (this.#state === "in-value" || this.#state === "in-element") {
      this.#buffer = text.slice(this.#valueStart);
      this.#valueStart = 0;
      if (this.#buffer.length > MAX_VALUE_CHARS) {
        throw new ScanError(
          `a value begun on line ${this.#valueLine} is larger than ${MAX_VALUE_CHARS} characters`,
          this.#valueLine,
        );
      }
    } else {
      this.#buffer = text.slice(consumed);
    }
    return out;
  }

  /**
   * Ends the document.
   *
   * @returns The sections seen.
   * @throws {ScanError} When the document is incomplete.
   */
  finish(): ExportSection[] {
    if (this.#buffer.trim() !== "" || this.#state !== "done") {
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
