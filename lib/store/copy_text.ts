/**
 * PostgreSQL's COPY text format, both ways: a row is one line, its fields
 * separated by tabs, `\N` for NULL, and backslash, tab, newline and carriage
 * return escaped with a backslash.
 *
 * @module
 */

import { StoreError } from "../errors.ts";
import type { TextRow } from "./sql.ts";

const NEEDS_ESCAPE = /[\\\t\n\r]/;

/**
 * One field in COPY text format.
 *
 * @param value The field's text, or `null`.
 * @returns The escaped field.
 */
export function copyField(value: string | null): string {
  if (value === null) return "\\N";
  if (!NEEDS_ESCAPE.test(value)) return value;
  return value.replace(
    /[\\\t\n\r]/g,
    (c) =>
      c === "\\" ? "\\\\" : c === "\t" ? "\\t" : c === "\n" ? "\\n" : "\\r",
  );
}

const ESCAPES: Record<string, string> = {
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
  v: "\v",
  "\\": "\\",
};

function unescapeField(field: string): string | null {
  if (field === "\\N") return null;
  if (!field.includes("\\")) return field;
  // COPY TO writes only these escapes (and never octal or hex for text).
  return field.replace(/\\(.)/gs, (_, c: string) => ESCAPES[c] ?? c);
}

/**
 * Parses what `COPY … TO STDOUT` sends into rows.
 *
 * @param chunks The bytes, as they arrive (rows may span chunks).
 * @param columns How many fields each row has.
 * @param checkUtf8 Fail on bytes that are not UTF-8 (needed only where the
 * server does not check its text: a `SQL_ASCII` database; the check makes
 * decoding several times slower).
 * @returns The rows.
 * @throws {StoreError} For a row with another number of fields.
 * @throws {TypeError} For bytes that are not UTF-8, with `checkUtf8`.
 */
export async function* copyRows(
  chunks: AsyncIterable<Uint8Array>,
  columns: number,
  checkUtf8 = true,
): AsyncGenerator<TextRow> {
  const decoder = new TextDecoder("utf-8", { fatal: checkUtf8 });
  // Split on bytes and decode each field on its own: a field of ASCII
  // (a vector, an id) then stays a one-byte string however the rest of the
  // row is written, and one-byte strings encode many times faster.
  const row = (data: Uint8Array, start: number, end: number): TextRow => {
    const fields: (string | null)[] = [];
    let from = start;
    while (true) {
      let tab = data.indexOf(TAB, from);
      if (tab === -1 || tab > end) tab = end;
      fields.push(unescapeField(decoder.decode(data.subarray(from, tab))));
      if (tab === end) break;
      from = tab + 1;
    }
    if (fields.length !== columns) {
      throw new StoreError(
        `The server sent a COPY row with ${fields.length} fields, not ${columns}`,
      );
    }
    return fields;
  };
  let rest: Uint8Array | undefined;
  for await (const chunk of chunks) {
    // postgres.js hands on one CopyData message at a time: a row, usually.
    // A plain view: Node's Buffer.indexOf is slow JavaScript under Deno.
    const bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length);
    const data = rest === undefined ? bytes : concat(rest, bytes);
    let start = 0;
    let end = data.indexOf(NEWLINE);
    while (end !== -1) {
      yield row(data, start, end);
      start = end + 1;
      end = data.indexOf(NEWLINE, start);
    }
    rest = start < data.length ? data.slice(start) : undefined;
  }
  if (rest !== undefined) yield row(rest, 0, rest.length);
}

const TAB = 0x09;
const NEWLINE = 0x0a;

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const joined = new Uint8Array(a.length + b.length);
  joined.set(a);
  joined.set(b, a.length);
  return joined;
}
