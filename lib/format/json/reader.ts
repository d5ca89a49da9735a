/**
 * Reads `export.json` as a stream of records without ever holding the whole
 * document. The fast path takes the layout memkeep writes (one record per
 * line: split lines, `JSON.parse` each); at the first line that does not fit
 * it, an {@linkcode ExportScanner} takes over from that point and accepts any
 * valid layout of the same document.
 *
 * @module
 */

import { oneLine, VerifyError } from "../../errors.ts";
import { EXPORT_FILE } from "../layout.ts";
import {
  ExportScanner,
  type ExportSection,
  objectFields,
  ScanError,
  type ScannedValue,
  type ScanState,
} from "./scan.ts";
import { Entry, type ExportEntry } from "./_entry.ts";
import { parseWithPlainVector } from "./vector_text.ts";

export type { ExportEntry } from "./_entry.ts";

/** Options for {@linkcode readExport}. */
export interface ReadExportOptions {
  /**
   * The bytes were verified before (by `checkExport` in `check.ts`) and the
   * caller compares their digest with the verified one before it uses what
   * it read: records on memkeep's lines are then split into their fields
   * without being parsed again. Any other layout is scanned as always.
   */
  readonly verified?: boolean;
  /**
   * Memory records' embeddings that are plain arrays of finite float32
   * numbers (of `dims` numbers, when not `null`) are checked as text and
   * given as a `PlainVector` (their length) instead of an array: for the
   * check, which only needs to know that they are valid. Any other embedding
   * is parsed as always.
   */
  readonly plainVectors?: { readonly dims: number | null };
}

/** A line longer than this is not memkeep's layout: the scanner takes over. */
const HANDOVER_CHARS = 16 * 1024 * 1024;

type Fast =
  | "header"
  | "memories-open"
  | "memories-first"
  | "memories-more"
  | "memories-closing"
  | "relationships-open"
  | "relationships-first"
  | "relationships-more"
  | "relationships-closing"
  | "end";

const RESUME: Record<Fast, ScanState> = {
  "header": { at: "start" },
  "memories-open": { at: "key", seen: ["metadata"] },
  "memories-first": { at: "element-or-close", seen: ["metadata", "memories"] },
  "memories-more": { at: "element", seen: ["metadata", "memories"] },
  "memories-closing": { at: "after-element", seen: ["metadata", "memories"] },
  "relationships-open": { at: "key", seen: ["metadata", "memories"] },
  "relationships-first": {
    at: "element-or-close",
    seen: ["metadata", "memories", "relationships"],
  },
  "relationships-more": {
    at: "element",
    seen: ["metadata", "memories", "relationships"],
  },
  "relationships-closing": {
    at: "after-element",
    seen: ["metadata", "memories", "relationships"],
  },
  "end": { at: "done", seen: ["metadata", "memories", "relationships"] },
};

const HEADER_PREFIX = '{"metadata":';

function tryParse(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

/**
 * Reads the entries of an export document from its bytes.
 *
 * @param bytes The file's content, in chunks.
 * @param file The file name for errors.
 * @param options `verified`: split records without parsing them again.
 * @returns The header and every record, in document order.
 * @throws {VerifyError} At the first syntax error, with its line.
 */
export async function* readExport(
  bytes: AsyncIterable<Uint8Array>,
  file = EXPORT_FILE,
  options: ReadExportOptions = {},
): AsyncGenerator<ExportEntry> {
  const verified = options.verified ?? false;
  const plainVectors = options.plainVectors;
  // A leading byte-order mark is dropped, as RFC 8259 allows.
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let fast = "header" as Fast;
  let scanner: ExportScanner | undefined;
  /** The start of a line whose end has not been read yet, in pieces. */
  let pending: string[] = [];
  let pendingChars = 0;
  let line = 0;
  let bytesRead = 0;
  let byteLines = 1; // the line the next undecoded byte is on

  const fromScanner = function* (
    values: ScannedValue[],
  ): Generator<ExportEntry> {
    for (const v of values) {
      const parsed = tryParse(v.text);
      if (!parsed.ok) {
        throw new VerifyError(
          file,
          `invalid JSON in ${describe(v.section)}: ${jsonError(v.text)}`,
          v.line,
        );
      }
      yield new Entry(v.section, v.text, v.line, parsed);
    }
  };

  // Handles one complete line on the fast path; returns false to hand over.
  const fastLine = (text: string, out: ExportEntry[]): boolean => {
    switch (fast) {
      case "header": {
        if (!text.startsWith(HEADER_PREFIX) || !text.endsWith(",")) {
          return false;
        }
        const body = text.slice(HEADER_PREFIX.length, -1);
        if (!body.startsWith("{") || !body.endsWith("}")) return false;
        const parsed = tryParse(body);
        if (!parsed.ok) return false;
        out.push(new Entry("metadata", body, line, parsed));
        fast = "memories-open";
        return true;
      }
      case "memories-open":
      case "relationships-open": {
        const section = fast === "memories-open" ? "memories" : "relationships";
        if (text !== `"${section}":[`) return false;
        fast = `${section}-first`;
        return true;
      }
      case "memories-closing":
        if (text !== "],") return false;
        fast = "relationships-open";
        return true;
      case "relationships-closing":
        if (text !== "]}") return false;
        fast = "end";
        return true;
      case "end":
        return text === "";
      default: {
        const section = fast.startsWith("memories")
          ? "memories"
          : "relationships";
        if (
          fast.endsWith("first") &&
          text === (section === "memories" ? "]," : "]}")
        ) {
          fast = section === "memories" ? "relationships-open" : "end";
          return true;
        }
        const more = text.endsWith(",");
        const body = more ? text.slice(0, -1) : text;
        // Anything but exactly {…} (e.g. trailing spaces) goes to the scanner,
        // which keeps the exact text of the value.
        if (!body.startsWith("{") || !body.endsWith("}")) return false;
        if (verified) {
          const fields = objectFields(body);
          if (!fields) return false;
          out.push(new Entry(section, body, line, { fields }));
        } else {
          const parsed = (plainVectors && section === "memories"
            ? parseWithPlainVector(body, plainVectors.dims)
            : undefined) ?? tryParse(body);
          if (!parsed.ok) {
            return false;
          }
          out.push(new Entry(section, body, line, parsed));
        }
        fast = more ? `${section}-more` : `${section}-closing`;
        return true;
      }
    }
  };

  const decode = (chunk: Uint8Array, stream: boolean): string => {
    try {
      return decoder.decode(chunk, { stream });
    } catch {
      const at = Math.max(0, firstInvalidUtf8(chunk));
      let lineOfByte = byteLines;
      for (
        let i = chunk.indexOf(10);
        i >= 0 && i < at;
        i = chunk.indexOf(10, i + 1)
      ) lineOfByte++;
      throw new VerifyError(
        file,
        `not valid UTF-8 at byte ${bytesRead - chunk.length + at}`,
        lineOfByte,
      );
    }
  };

  const consume = function* (
    text: string,
    final: boolean,
  ): Generator<ExportEntry> {
    if (scanner) {
      yield* fromScanner(scan(scanner, text));
      return;
    }
    // A line's pieces are joined once, when its end arrives: a long line
    // costs its length, not its length times the number of pieces.
    let pos = 0;
    const out: ExportEntry[] = [];
    while (true) {
      let nl = text.indexOf("\n", pos);
      if (nl < 0) {
        if (!final || (pos >= text.length && pendingChars === 0)) break;
        nl = text.length;
      }
      line++;
      const lineText = pendingChars > 0
        ? pending.join("") + text.slice(pos, nl)
        : text.slice(pos, nl);
      pending = [];
      pendingChars = 0;
      if (!fastLine(lineText, out)) {
        yield* out.splice(0);
        scanner = new ExportScanner(RESUME[fast], line);
        yield* fromScanner(scan(scanner, lineText + text.slice(nl)));
        return;
      }
      yield* out.splice(0);
      pos = nl + 1;
      if (nl === text.length) break;
    }
    if (pos < text.length) {
      pending.push(text.slice(pos));
      pendingChars += text.length - pos;
    }
    if (pendingChars > HANDOVER_CHARS) {
      // A very long line: not memkeep's layout (e.g. the whole document on
      // one line). The scanner needs memory for one record only.
      scanner = new ExportScanner(RESUME[fast], line + 1);
      const rest = pending;
      pending = [];
      pendingChars = 0;
      for (const piece of rest) yield* fromScanner(scan(scanner, piece));
    }
  };

  const scan = (s: ExportScanner, text: string): ScannedValue[] => {
    try {
      return s.push(text);
    } catch (error) {
      if (error instanceof ScanError) {
        throw new VerifyError(file, error.message, error.line);
      }
      throw error;
    }
  };

  for await (const chunk of bytes) {
    bytesRead += chunk.length;
    const text = decode(chunk, true);
    for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) {
      byteLines++;
    }
    yield* consume(text, false);
  }
  yield* consume(decode(new Uint8Array(), false), true);
  if (scanner) {
    try {
      scanner.finish();
    } catch (error) {
      if (error instanceof ScanError) {
        throw new VerifyError(file, error.message, error.line);
      }
      throw error;
    }
  } else if (fast !== "end") {
    throw new VerifyError(
      file,
      "the file ends before the document does (truncated?)",
      Math.max(line, 1),
    );
  }
}

/**
 * The index of the first byte that is not part of valid UTF-8, or -1.
 *
 * @param bytes The bytes.
 * @returns The index.
 */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    const need = b < 0x80
      ? 0
      : b >= 0xc2 && b < 0xe0
      ? 1
      : b >= 0xe0 && b < 0xf0
      ? 2
      : b >= 0xf0 && b < 0xf5
      ? 3
      : -1;
    if (need < 0) return i;
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined) return i; // cut short at the end
      if ((c & 0xc0) !== 0x80) return i;
    }
    if (need === 2) {
      const c = bytes[i + 1]!;
      if ((b === 0xe0 && c < 0xa0) || (b === 0xed && c >= 0xa0)) return i;
    } else if (need === 3) {
      const c = bytes[i + 1]!;
      if ((b === 0xf0 && c < 0x90) || (b === 0xf4 && c >= 0x90)) return i;
    }
    i += need + 1;
  }
  return -1;
}

function describe(section: ExportSection): string {
  return section === "metadata" ? "the metadata" : `a record of ${section}`;
}

function jsonError(text: string): string {
  try {
    JSON.parse(text);
    return "unknown";
  } catch (error) {
    // V8 quotes the offending text: keep it one line and short.
    return oneLine((error as Error).message.replace(/\s+/g, " "), 200);
  }
}

/**
 * How much a reader reads at a time: small enough that the text decoded from
 * it stays out of V8's large-object space (and is freed by the cheap young
 * generation collections), large enough to keep system calls few.
 */
export const READ_CHUNK = 64 * 1024;

/**
 * Reads a file's bytes in chunks of {@linkcode READ_CHUNK}.
 *
 * @param path The file.
 * @returns Its content, chunk by chunk.
 */
export async function* fileChunks(path: string): AsyncGenerator<Uint8Array> {
  using file = await Deno.open(path, { read: true });
  while (true) {
    const buffer = new Uint8Array(READ_CHUNK);
    const n = await file.read(buffer);
    if (n === null) return;
    yield buffer.subarray(0, n);
  }
}
