/**
 * The memory table's rows, read inside one consistent transaction: counted,
 * and streamed as {@linkcode RawRecord}s (over the wire with one `COPY …
 * TO STDOUT`, in-process through a cursor).
 *
 * @module
 */

import { errorMessage, StoreError } from "../../errors.ts";
import type { RawRecord } from "../../format/records.ts";
import { copyRows } from "../copy_text.ts";
import { binaryRows, vectorFloat32 } from "../copy_binary.ts";
import { type Float32Memory, float32Memory } from "../../format/source.ts";
import {
  quoteIdent,
  quoteLiteral,
  type SqlSession,
  type TextRow,
} from "../sql.ts";
import type { MemoryTable } from "./read.ts";

/**
 * Runs `fn` inside one `REPEATABLE READ READ ONLY` transaction, so that every
 * query sees the store as of the same instant.
 *
 * @param session An open session.
 * @param fn The reads.
 * @returns What `fn` returns.
 */
export async function inRepeatableRead<T>(
  session: SqlSession,
  fn: () => Promise<T>,
): Promise<T> {
  await session.query("begin isolation level repeatable read read only");
  try {
    const result = await fn();
    await session.query("commit");
    return result;
  } catch (error) {
    await session.query("rollback").catch(() => {});
    throw error;
  }
}

/** What to read. */
export interface ReadOptions {
  /** Only this user's memories (`payload->>'user_id'`). */
  readonly userId?: string | undefined;
  /** Include the vectors (default `true`). */
  readonly includeVectors?: boolean;
  /** Rows per fetch (default 250). */
  readonly batchSize?: number;
  /**
   * Payload keys to group by (see {@linkcode MemoryOrder}); without them, as
   * the table returns the rows.
   */
  readonly groupBy?: readonly string[] | undefined;
}

function qualified(table: MemoryTable): string {
  return `${quoteIdent(table.schema)}.${quoteIdent(table.table)}`;
}

async function setUserFilter(
  session: SqlSession,
  userId: string | undefined,
): Promise<string> {
  if (userId === undefined) return "";
  // A transaction-local setting carries the value: no literal quoting, and
  // DECLARE needs no bind parameters.
  await session.query("select set_config('memkeep.user_id', $1, true)", [
    userId,
  ]);
  return " where payload->>'user_id' = current_setting('memkeep.user_id')";
}

/**
 * Counts the memories the transaction sees (for the user, when filtered).
 * Call inside {@linkcode inRepeatableRead}.
 *
 * @param session An open session in {@linkcode inRepeatableRead}.
 * @param table The table layout.
 * @param options The user filter.
 * @returns The number of rows.
 */
export async function countMemories(
  session: SqlSession,
  table: MemoryTable,
  options: ReadOptions = {},
): Promise<number> {
  const where = await setUserFilter(session, options.userId);
  const rows = await session.query(
    `select count(*)::text from ${qualified(table)}${where}`,
  );
  return Number(rows[0]?.[0] ?? 0);
}

/**
 * Streams the table's rows as raw memory records: over the wire with one
 * `COPY (SELECT …) TO STDOUT`; in-process through a server-side cursor in
 * batches, the next requested before the current one is handed on, so the
 * server and memkeep work at the same time. Call inside
 * {@linkcode inRepeatableRead}.
 *
 * Mapping (lossless; done by Postgres so payload numbers keep every digit):
 * `content` = `payload->'data'`, `created_at`, `heat` = the payload keys,
 * `metadata` = the payload without those three, `embedding` = `vector::text`
 * (pgvector's text form is a JSON array of shortest float32 decimals).
 *
 * @param session An open session in {@linkcode inRepeatableRead}.
 * @param table The table layout.
 * @param options User filter, vectors, batch size.
 * @returns The records, in table order.
 * @throws {StoreError} For a payload that is not a JSON object.
 */
export async function* readMemories(
  session: SqlSession,
  table: MemoryTable,
  options: ReadOptions = {},
): AsyncGenerator<RawRecord> {
  const where = await setUserFilter(session, options.userId);
  const includeVectors = options.includeVectors ?? true;
  const batch = options.batchSize ?? 250;
  const select = selectRows(
    table,
    includeVectors ? "vector::text" : "null",
    where,
    options.groupBy ?? [],
  );
  let read = 0;
  const failed = (error: unknown) => readFailure(table, read, error);
  if (session.copyOut) {
    // One statement, the rows streamed as the server produces them: no
    // round trip per batch, no row parsing but a split on tabs.
    // The server converts its text to UTF-8 (and checked it on the way in),
    // but for SQL_ASCII, which takes any bytes.
    const encoding = await session.query("show server_encoding");
    const rows = copyRows(
      session.copyOut(`copy (${select}) to stdout`),
      7,
      encoding[0]?.[0] === "SQL_ASCII",
    );
    const next = () =>
      rows.next().catch((error) => Promise.reject(failed(error)));
    try {
      for (let row = await next(); !row.done; read++, row = await next()) {
        yield memoryRecord(row.value, includeVectors);
      }
    } finally {
      await rows.return(undefined);
    }
    return;
  }
  await session.query(`declare memkeep_rows no scroll cursor for ${select}`);
  const fetch = `fetch forward ${batch} from memkeep_rows`;
  // The next batch is in flight while this one is handed on: when it fails
  // then (a lost connection, a statement timeout), or the reader stops early,
  // its rejection must not go unhandled and crash the process.
  const prefetch = (): Promise<TextRow[]> => {
    const query = session.query(fetch).catch((error) => {
      throw failed(error);
    });
    query.catch(() => {});
    return query;
  };
  let next: Promise<TextRow[]> | undefined = prefetch();
  while (next) {
    const rows: TextRow[] = await next;
    read += rows.length;
    next = rows.length === batch ? prefetch() : undefined;
    for (const row of rows) yield memoryRecord(row, includeVectors);
  }
  await session.query("close memkeep_rows");
}

/** A failed read of the table, after `read` rows. */
function readFailure(
  table: MemoryTable,
  read: number,
  error: unknown,
): StoreError {
  return new StoreError(
    `Cannot read the memories of ${table.schema}.${table.table} (after ${read} rows): ${
      errorMessage(error)
    }`,
    { cause: error },
  );
}

/** The query every read runs, with the vector as `vector` asks. */
function selectRows(
  table: MemoryTable,
  vector: string,
  where: string,
  groupBy: readonly string[],
): string {
  return `select id::text, ${vector}, jsonb_typeof(p),
            (p->'data')::text,
            case when jsonb_typeof(p) = 'object'
              then (p - '{data,created_at,heat}'::text[])::text end,
            (p->'created_at')::text, (p->'heat')::text
       from (select id, vector, payload::jsonb as p from ${
    qualified(table)
  }${where}) m${groupedBy(groupBy)}`;
}

/**
 * The table's rows with their vectors as float32 bytes, read with one
 * binary `COPY (SELECT …) TO STDOUT`: pgvector sends each vector as its
 * float32 values, not as text (on a real server; `undefined` where the
 * session has no COPY out). The other fields are the same text as
 * {@linkcode readMemories} gives. Call inside {@linkcode inRepeatableRead}.
 *
 * @param session An open session in {@linkcode inRepeatableRead}.
 * @param table The table layout.
 * @param options The user filter.
 * @returns The memories, in table order, or `undefined`.
 */
export function readFloat32Memories(
  session: SqlSession,
  table: MemoryTable,
  options: ReadOptions = {},
): AsyncGenerator<Float32Memory> | undefined {
  const copyOut = session.copyOut?.bind(session);
  if (!copyOut || table.vectorType !== "vector") return undefined;
  return (async function* () {
    const where = await setUserFilter(session, options.userId);
    const encoding = await session.query("show server_encoding");
    const decoder = new TextDecoder("utf-8", {
      fatal: encoding[0]?.[0] === "SQL_ASCII",
    });
    const text = (field: Uint8Array | null) =>
      field === null ? null : decoder.decode(field);
    const rows = binaryRows(
      copyOut(
        `copy (${
          selectRows(table, "vector", where, [])
        }) to stdout (format binary)`,
      ),
      7,
    );
    // Failures of the read are named as such; a record memkeep refuses
    // (memoryRecord) is not one.
    let read = 0;
    const next = () =>
      rows.next().catch((error) =>
        Promise.reject(readFailure(table, read, error))
      );
    try {
      for (let row = await next(); !row.done; read++, row = await next()) {
        const [id, vector, ...rest] = row.value;
        const record = memoryRecord(
          [text(id!), vector === null ? null : "", ...rest.map(text)],
          true,
        );
        yield float32Memory(
          record,
          vector === null ? undefined : vectorFloat32(vector!),
        );
      }
    } finally {
      await rows.return(undefined);
    }
  })();
}

/**
 * `order by` for {@linkcode MemoryOrder.groupBy}: rows with none of the keys
 * last, then each key trimmed of ASCII whitespace, named before missing, then
 * time and id.
 */
function groupedBy(keys: readonly string[]): string {
  if (keys.length === 0) return "";
  const key = (name: string) =>
    String.raw`nullif(btrim(p->>${quoteLiteral(name)}, E' \t\n\r\f\x0B'), '')`;
  return `
  order by (${keys.map((k) => `${key(k)} is null`).join(" and ")}),
           ${
    keys.map((k) => `${key(k)} is null, ${key(k)}`).join(",\n           ")
  },
           p->>'created_at', id::text`;
}

function memoryRecord(row: TextRow, includeVectors: boolean): RawRecord {
  const [id, vector, type, data, rest, createdAt, heat] = row;
  const record: RawRecord = new Map([["id", JSON.stringify(id)]]);
  if (type !== null && type !== "object") {
    throw new StoreError(
      `Cannot back up memory "${id}": its payload is a JSON ${type}, not an object`,
    );
  }
  if (data !== null && data !== undefined) record.set("content", data);
  if (includeVectors) record.set("embedding", vector ?? "null");
  if (type !== null) record.set("metadata", rest!);
  if (createdAt !== null && createdAt !== undefined) {
    record.set("created_at", createdAt);
  }
  if (heat !== null && heat !== undefined) record.set("heat", heat);
  return record;
}
