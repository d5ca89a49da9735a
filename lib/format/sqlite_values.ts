/**
 * How the relationship store's SQLite values are written in a backup's
 * records, losslessly, and read back: integers keep every digit, blobs are
 * `{"$blob": base64}`, non-finite reals `{"$real": "Infinity"}`, and the
 * `metadata` column is kept exactly (`metadata_text` when re-serialising
 * would change it). The store reads and loads with this codec; the formats
 * write and check with it.
 *
 * @module
 */

import type { RawRecord } from "./records.ts";

/** The relationship table's name. */
export const RELATIONSHIPS_TABLE = "relationships";

/**
 * Whether a parsed JSON value is a tagged SQLite value (`{"$blob": …}` or
 * `{"$real": …}`).
 *
 * @param value An object.
 * @returns Whether it is one.
 */
export function isTagged(value: object): boolean {
  const keys = Object.keys(value);
  return !Array.isArray(value) && keys.length === 1 &&
    (keys[0] === "$blob" || keys[0] === "$real");
}

/**
 * A SQLite value as JSON text, losslessly.
 *
 * @param value A value read with big integers on.
 * @returns Its JSON text.
 */
export function sqliteValueJson(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "number") {
    return Number.isFinite(value)
      ? JSON.stringify(value)
      : `{"$real":${JSON.stringify(String(value))}}`;
  }
  if (typeof value === "string") return JSON.stringify(value);
  if (value instanceof Uint8Array) {
    let binary = "";
    for (const byte of value) binary += String.fromCharCode(byte);
    return `{"$blob":${JSON.stringify(btoa(binary))}}`;
  }
  return JSON.stringify(String(value));
}

/**
 * What is wrong with a relationship field's tagged value (`{"$blob": …}` or
 * `{"$real": …}`), which the restore would decode.
 *
 * @param value The field's parsed JSON value.
 * @returns The problem, or `undefined` when it is not tagged or is valid.
 */
export function taggedValueProblem(value: unknown): string | undefined {
  if (value === null || typeof value !== "object" || !isTagged(value)) {
    return undefined;
  }
  const tagged = value as Record<string, unknown>;
  if (typeof tagged.$blob === "string") {
    const b64 = tagged.$blob;
    return b64.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(b64)
      ? undefined
      : '"$blob" is not base64';
  }
  if (typeof tagged.$real === "string") {
    return REAL.test(tagged.$real)
      ? undefined
      : '"$real" is not a number (or Infinity, -Infinity, NaN)';
  }
  return undefined;
}

const REAL = /^(-?Infinity|NaN|-?\d+(\.\d+)?([eE][+-]?\d+)?)$/;

/** A value `node:sqlite` can bind. */
export type SqliteValue = string | number | bigint | null | Uint8Array;

/**
 * The SQLite value a relationship field's JSON text stands for: the inverse
 * of {@linkcode sqliteValueJson}. Integers beyond 2^53 become `bigint`s
 * (beyond 64 bits, numbers, as SQLite reads such a literal).
 *
 * @param json The field's JSON source text.
 * @returns The value to bind.
 */
export function sqliteValueFromJson(json: string): SqliteValue {
  const value: unknown = JSON.parse(json);
  if (value === null || typeof value === "string") return value;
  if (typeof value === "boolean") return value ? 1 : 0;
  if (typeof value === "number") {
    const text = json.trim();
    if (!/^-?\d+$/.test(text) || Number.isSafeInteger(value)) return value;
    // Beyond 64 bits SQLite keeps an integer literal as a REAL: so do we.
    const big = BigInt(text);
    return big >= -(2n ** 63n) && big < 2n ** 63n ? big : value;
  }
  if (typeof value === "object" && !Array.isArray(value)) {
    const tagged = value as Record<string, unknown>;
    const keys = Object.keys(tagged);
    if (keys.length === 1 && typeof tagged.$blob === "string") {
      return Uint8Array.from(atob(tagged.$blob), (c) => c.charCodeAt(0));
    }
    if (keys.length === 1 && typeof tagged.$real === "string") {
      return Number(tagged.$real);
    }
  }
  return json.trim();
}

/**
 * The text to store in the `metadata` column for a relationship record: the
 * exact text when the record carries it, the JSON itself for an object or
 * array (exactly as it was written), else the value.
 *
 * @param record The relationship's fields as JSON text.
 * @returns The column value.
 */
export function metadataColumnValue(record: RawRecord): SqliteValue {
  const exact = record.get("metadata_text");
  if (exact !== undefined) return JSON.parse(exact) as string;
  const json = record.get("metadata");
  if (json === undefined) return null;
  const text = json.trim();
  if (text.startsWith("[")) return text;
  if (text.startsWith("{")) return sqliteValueFromJson(text);
  return sqliteValueFromJson(text);
}
