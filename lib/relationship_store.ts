/**
 * The relationship store: a SQLite file whose `relationships` table links
 * memories. A backup takes one consistent copy of the whole file (every
 * table, so `insights` and `pattern_cache` are kept too) with SQLite's online
 * backup, and reads the relationship rows from that copy, so the rows in
 * `export.json` and the copied file are the same snapshot.
 *
 * Values are written as JSON losslessly: integers keep every digit, the
 * `metadata` column is spliced as is when it is a one-line JSON object or
 * array (otherwise kept as text, with `metadata_text` when re-serialising
 * would change it), blobs become `{"$blob": base64}` and non-finite reals
 * `{"$real": "Infinity"}`.
 *
 * @module
 */

import { backup, DatabaseSync, type StatementSync } from "node:sqlite";
import { StoreError } from "./errors.ts";
import type { RawRecord } from "./records.ts";

/** The relationship table's name. */
export const RELATIONSHIPS_TABLE = "relationships";

/** What a snapshot of the relationship store holds. */
export interface RelationshipSnapshot {
  /** Row count of every table. */
  readonly tables: Record<string, number>;
  /** Rows in `relationships` (0 when the table is absent). */
  readonly count: number;
}

/**
 * Copies the SQLite file at `source` to `target` consistently (SQLite's
 * online backup, safe while the assistant writes to it) and counts the rows
 * of every table in the copy. The copy uses a rollback journal, so it is one
 * self-contained file.
 *
 * @param source The live relationship store.
 * @param target Where to write the copy; must not exist.
 * @returns The tables and counts of the copy.
 * @throws {StoreError} When `source` is not a readable SQLite database.
 */
export async function snapshotRelationships(
  source: string,
  target: string,
): Promise<RelationshipSnapshot> {
  let db: DatabaseSync;
  try {
    // SQLite reports a directory as a "disk I/O error".
    if (Deno.statSync(source).isDirectory) {
      throw new StoreError(
        `Cannot read relationship store "${source}": it is a directory, not a SQLite database file`,
      );
    }
    db = new DatabaseSync(source, { readOnly: true });
    db.prepare("select count(*) from sqlite_schema").get();
  } catch (error) {
    if (
      error instanceof Deno.errors.NotCapable || error instanceof StoreError
    ) throw error;
    throw new StoreError(
      `Cannot read relationship store "${source}": ${sqliteReason(error)}`,
      { cause: error },
    );
  }
  try {
    await backup(db, target);
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) throw error;
    throw new StoreError(
      `Cannot copy relationship store "${source}" into the backup: ${
        sqliteReason(error)
      }`,
      { cause: error },
    );
  } finally {
    db.close();
  }
  const copy = new DatabaseSync(target);
  try {
    copy.exec("pragma journal_mode = delete");
    try {
      return countTables(copy);
    } catch (error) {
      // The online backup copies pages as they are: a corrupt store shows
      // when the copy is read.
      throw new StoreError(
        `Cannot read relationship store "${source}": ${sqliteReason(error)}`,
        { cause: error },
      );
    }
  } finally {
    copy.close();
  }
}

/**
 * Row counts of every table in an open SQLite database.
 *
 * @param db An open database.
 * @returns Table name → rows, and the `relationships` count.
 */
export function countTables(db: DatabaseSync): RelationshipSnapshot {
  const tables: Record<string, number> = {};
  const names = db.prepare(
    "select name from sqlite_schema where type = 'table' and name not like 'sqlite_%' order by name",
  ).all() as { name: string }[];
  for (const { name } of names) {
    const row = db.prepare(
      `select count(*) as n from "${name.replaceAll('"', '""')}"`,
    ).get() as { n: number };
    tables[name] = Number(row.n);
  }
  return { tables, count: tables[RELATIONSHIPS_TABLE] ?? 0 };
}

/**
 * Streams the rows of `relationships` from a snapshot file as raw records,
 * every column in table order, ordered by `id`.
 *
 * @param path A snapshot made by {@linkcode snapshotRelationships}.
 * @returns The records; none when the table is absent.
 */
export function* readRelationships(path: string): Generator<RawRecord> {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const exists = db.prepare(
      "select 1 from sqlite_schema where type = 'table' and name = ?",
    ).get(RELATIONSHIPS_TABLE);
    if (!exists) return;
    const statement: StatementSync = db.prepare(
      `select * from ${RELATIONSHIPS_TABLE} order by rowid`,
    );
    statement.setReadBigInts(true);
    for (
      const row of statement.iterate() as Iterable<Record<string, unknown>>
    ) {
      yield relationshipRecord(row);
    }
  } finally {
    db.close();
  }
}

function relationshipRecord(row: Record<string, unknown>): RawRecord {
  const record: RawRecord = new Map();
  for (const [column, value] of Object.entries(row)) {
    if (column === "metadata" && typeof value === "string") {
      setMetadata(record, value);
    } else {
      record.set(column, sqliteValueJson(value));
    }
  }
  return record;
}

function setMetadata(record: RawRecord, text: string): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    record.set("metadata", JSON.stringify(text));
    return;
  }
  if (parsed === null || typeof parsed !== "object") {
    record.set("metadata", JSON.stringify(text));
    return;
  }
  const spliceable = text === text.trim() && !/[\r\n]/.test(text) &&
    !isTagged(parsed);
  if (spliceable) {
    record.set("metadata", text);
  } else {
    record.set("metadata", JSON.stringify(parsed));
    record.set("metadata_text", JSON.stringify(text));
  }
}

function isTagged(value: object): boolean {
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
 * Why SQLite refused, in one line.
 *
 * @param error What `node:sqlite` threw.
 * @returns The reason.
 */
export function sqliteReason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (/not a database/i.test(message)) return "it is not a SQLite database";
  if (/unable to open/i.test(message)) return "the file cannot be opened";
  if (/disk I\/O error/i.test(message)) {
    return "disk I/O error (is the disk full?)";
  }
  return message.replace(/\s+/g, " ");
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
