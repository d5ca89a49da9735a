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
 * @returns The rows.
 * @throws {StoreError} For a row with another number of fields.
 */
export async function* copyRows(
  chunks: AsyncIterable<Uint8Array>,
  columns: number,
): AsyncGenerator<TextRow> {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let rest = "";
  const row = (line: string): TextRow => {
    const fields = line.split("\t");
    if (fields.length !== columns) {
      throw new StoreError(
        `The server sent a COPY row with ${fields.length} fields, not ${columns}`,
      );
    }
    return fields.map(unescapeField);
  };
  for await (const chunk of chunks) {
    const text = rest + decoder.decode(chunk, { stream: true });
    let start = 0;
    let end = text.indexOf("\n");
    while (end !== -1) {
      yield row(text.slice(start, end));
      start = end + 1;
      end = text.indexOf("\n", start);
    }
    rest = text.slice(start);
  }
  rest += decoder.decode();
  if (rest !== "") yield row(rest);
}
