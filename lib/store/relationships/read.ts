/**
 * The relationship store: a SQLite file whose `relationships` table links
 * memories. A backup takes one consistent copy of the whole file (every
 * table, so `insights` and `pattern_cache` are kept too) with SQLite's online
 * backup, and reads the relationship rows from that copy, so the rows in
 * `export.json` and the copied file are the same instant.
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
import { StoreError } from "../../errors.ts";
import type { RawRecord } from "../../format/records.ts";
import {
  isTagged,
  RELATIONSHIPS_TABLE,
  sqliteValueJson,
} from "../../format/sqlite_values.ts";

/** What a copy of the relationship store holds. */
export interface RelationshipCopy {
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
export async function copyRelationships(
  source: string,
  target: string,
): Promise<RelationshipCopy> {
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
export function countTables(db: DatabaseSync): RelationshipCopy {
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
 * Streams the rows of `relationships` from a copy as raw records,
 * every column in table order, ordered by `id`.
 *
 * @param path A copy made by {@linkcode copyRelationships}.
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
