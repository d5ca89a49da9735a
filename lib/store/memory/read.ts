/**
 * The memory store: a mem0-style table `(id, vector, payload)` in Postgres
 * (over the wire) or in the embedded PGlite store. This module opens the
 * store, reads the table's layout from the catalog, and streams its rows as
 * {@linkcode RawRecord}s inside one consistent transaction.
 *
 * @module
 */

import {
  formatTableName,
  type MemoryStoreTarget,
  type TableName,
} from "../config.ts";
import { errorMessage, StoreError } from "../../errors.ts";
import type { RawRecord } from "../../format/records.ts";
import { openPostgresSession } from "../pg_session.ts";
import {
  quoteIdent,
  quoteLiteral,
  type SqlSession,
  type TextRow,
} from "../sql.ts";

/** Where the memories came from, as recorded in a backup (no credentials). */
export type MemorySource =
  | {
    kind: "postgres";
    host: string;
    port: number;
    database: string;
    server_version: string;
  }
  | { kind: "pglite"; path: string; server_version: string };

/** An open memory store. */
export interface MemoryStore {
  /** The session; one connection. */
  readonly session: SqlSession;
  /** Where it is, for metadata and messages. */
  readonly source: MemorySource;
  /** How to name it in messages, e.g. `postgresql://me@host:5432/db`. */
  readonly display: string;
  /** Closes the connection. */
  close(): Promise<void>;
}

/** The layout of a memory table, read from the catalog. */
export interface MemoryTable {
  /** The schema holding the table. */
  readonly schema: string;
  /** The table name. */
  readonly table: string;
  /** The type of `id`, e.g. `uuid` or `text`. */
  readonly idType: string;
  /** The type of `vector`: `vector`. */
  readonly vectorType: string;
  /** The type of `payload`: `jsonb` or `json`. */
  readonly payloadType: string;
  /** The declared dimension of `vector`, or `null` when undeclared. */
  readonly dims: number | null;
  /** The installed pgvector version. */
  readonly pgvectorVersion: string;
  /** `CREATE INDEX` statements of every index on the table. */
  readonly indexes: string[];
}

/**
 * Opens the memory store named by the settings.
 *
 * @param target Postgres settings or the embedded store's directory.
 * @param options `create: true` creates the embedded store when it does not
 * exist (a restore into a new machine); otherwise that is an error.
 * @returns The open store.
 * @throws {StoreError} When it cannot be reached.
 */
export async function openMemoryStore(
  target: MemoryStoreTarget,
  options: { create?: boolean } = {},
): Promise<MemoryStore> {
  if (target.kind === "postgres") {
    const c = target.connection;
    const session = await openPostgresSession(c);
    const version = await serverVersion(session);
    return {
      session,
      source: {
        kind: "postgres",
        host: c.host,
        port: c.port,
        database: c.database,
        server_version: version,
      },
      display: c.display,
      close: () => session.close(),
    };
  }
  // Loaded only for the embedded store: a backup over the wire never pays
  // for PGlite.
  const { openPgliteSession } = await import("../pglite_session.ts");
  const session = await openPgliteSession(target.dataDir, options);
  const version = await serverVersion(session);
  return {
    session,
    source: { kind: "pglite", path: target.dataDir, server_version: version },
    display: `embedded store "${target.dataDir}"`,
    close: () => session.close(),
  };
}

async function serverVersion(session: SqlSession): Promise<string> {
  const rows = await session.query("select current_setting('server_version')");
  return rows[0]?.[0] ?? "unknown";
}

/**
 * Reads a memory table's layout from the catalog and checks that it is a
 * mem0 table: columns `id`, `vector` (pgvector `vector`) and `payload`
 * (`jsonb` or `json`).
 *
 * @param session An open session.
 * @param name The table, optionally schema-qualified.
 * @returns The layout, with the vector dimension as declared.
 * @throws {StoreError} When pgvector is missing, the table does not exist or
 * has another shape.
 */
export async function inspectTable(
  session: SqlSession,
  name: TableName,
): Promise<MemoryTable> {
  const shown = formatTableName(name);
  const ext = await session.query(
    "select extversion from pg_extension where extname = 'vector'",
  );
  const pgvectorVersion = ext[0]?.[0];
  if (!pgvectorVersion) {
    throw new StoreError(
      `Cannot read table "${shown}": the "vector" extension (pgvector) is not installed in this database`,
    );
  }
  const qualified = name.schema === undefined
    ? quoteIdent(name.name)
    : `${quoteIdent(name.schema)}.${quoteIdent(name.name)}`;
  const rel = await session.query(
    `select c.oid::text, n.nspname, c.relname, c.relkind::text
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.oid = to_regclass($1)`,
    [qualified],
  );
  const [oid, schema, table, kind] = rel[0] ?? [];
  if (!oid || !schema || !table) {
    throw new StoreError(
      `Cannot read table "${shown}": it does not exist (set MEMORY_TABLE or --table to the mem0 table)`,
    );
  }
  if (kind !== "r" && kind !== "p" && kind !== "v" && kind !== "m") {
    throw new StoreError(`Cannot read "${shown}": it is not a table`);
  }
  const columns = await session.query(
    `select a.attname::text, t.typname::text, a.atttypmod::text
       from pg_attribute a join pg_type t on t.oid = a.atttypid
      where a.attrelid = $1::oid and a.attnum > 0 and not a.attisdropped
      order by a.attnum`,
    [oid],
  );
  const byName = new Map(
    columns.map((
      [col, type, mod],
    ) => [col!, { type: type!, mod: Number(mod) }]),
  );
  const missing = ["id", "vector", "payload"].filter((c) => !byName.has(c));
  if (missing.length > 0) {
    throw new StoreError(
      `Cannot read table "${shown}": it has no column ${
        missing.map((c) => `"${c}"`).join(", ")
      } ` +
        `(columns: ${
          columns.map((c) => c[0]).join(", ")
        }); memkeep expects mem0's layout id, vector, payload`,
    );
  }
  const vectorCol = byName.get("vector")!;
  if (vectorCol.type !== "vector") {
    throw new StoreError(
      `Cannot read table "${shown}": column "vector" is of type ${vectorCol.type}, not pgvector's vector`,
    );
  }
  const payloadCol = byName.get("payload")!;
  if (payloadCol.type !== "jsonb" && payloadCol.type !== "json") {
    throw new StoreError(
      `Cannot read table "${shown}": column "payload" is of type ${payloadCol.type}, not jsonb`,
    );
  }
  const indexes = await session.query(
    `select pg_get_indexdef(i.indexrelid) from pg_index i
      where i.indrelid = $1::oid order by i.indexrelid`,
    [oid],
  );
  return {
    schema,
    table,
    idType: byName.get("id")!.type,
    vectorType: vectorCol.type,
    payloadType: payloadCol.type,
    dims: vectorCol.mod > 0 ? vectorCol.mod : null,
    pgvectorVersion,
    indexes: indexes.map((r) => r[0]!),
  };
}

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
 * Streams the table's rows as raw memory records, fetching in batches through
 * a server-side cursor; the next batch is requested before the current one is
 * handed on, so the server and memkeep work at the same time. Call inside
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
  await session.query(
    `declare memkeep_rows no scroll cursor for
     select id::text, ${
      includeVectors ? "vector::text" : "null"
    }, jsonb_typeof(p),
            (p->'data')::text,
            case when jsonb_typeof(p) = 'object'
              then (p - '{data,created_at,heat}'::text[])::text end,
            (p->'created_at')::text, (p->'heat')::text
       from (select id, vector, payload::jsonb as p from ${
      qualified(table)
    }${where}) m${groupedBy(options.groupBy ?? [])}`,
  );
  const fetch = `fetch forward ${batch} from memkeep_rows`;
  // The next batch is in flight while this one is handed on: when it fails
  // then (a lost connection, a statement timeout), or the reader stops early,
  // its rejection must not go unhandled and crash the process.
  let read = 0;
  const prefetch = (): Promise<TextRow[]> => {
    const query = session.query(fetch).catch((error) => {
      throw new StoreError(
        `Cannot read the memories of ${table.schema}.${table.table} (after ${read} rows): ${
          errorMessage(error)
        }`,
        { cause: error },
      );
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
