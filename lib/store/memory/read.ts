/**
 * The memory store: a mem0-style table `(id, vector, payload)` in Postgres
 * (over the wire) or in the embedded PGlite store. This module opens the
 * store and reads the table's layout from the catalog; `rows.ts` reads the
 * rows.
 *
 * @module
 */

import {
  formatTableName,
  type MemoryStoreTarget,
  type TableName,
} from "../config.ts";
import { StoreError } from "../../errors.ts";
import { openPostgresSession } from "../pg_session.ts";
import { quoteIdent, type SqlSession } from "../sql.ts";

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
  /** Columns beyond mem0's three, with their types (`note text`). */
  readonly otherColumns: string[];
}

/** mem0's layout: what memkeep backs up. */
const MEM0_COLUMNS = ["id", "vector", "payload"];
/** pgvector's types whose modifier is the dimension. */
const PGVECTOR_TYPES = new Set(["halfvec", "sparsevec", "bit"]);

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
  const missing = MEM0_COLUMNS.filter((c) => !byName.has(c));
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
    const declared = vectorCol.mod > 0 && PGVECTOR_TYPES.has(vectorCol.type)
      ? `${vectorCol.type}(${vectorCol.mod})`
      : vectorCol.type;
    throw new StoreError(
      `Cannot read table "${shown}": column "vector" is of type ${declared}; memkeep supports pgvector's vector(N) only (not halfvec, sparsevec or bit)`,
    );
  }
  const payloadCol = byName.get("payload")!;
  if (payloadCol.type !== "jsonb" && payloadCol.type !== "json") {
    throw new StoreError(
      `Cannot read table "${shown}": column "payload" is of type ${payloadCol.type}, not jsonb`,
    );
  }
  // pg_get_indexdef leaves out a tablespace: recorded as pg_dump does, so
  // that a restore reports it with the SQL rather than recreating it
  // elsewhere without a word.
  const indexes = await session.query(
    `select coalesce('SET default_tablespace = ' || quote_ident(t.spcname) || '; ', '')
            || pg_get_indexdef(i.indexrelid)
       from pg_index i join pg_class c on c.oid = i.indexrelid
       left join pg_tablespace t on t.oid = c.reltablespace
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
    otherColumns: columns.filter(([c]) => !MEM0_COLUMNS.includes(c!)).map((
      [c, type],
    ) => `${c} ${type}`),
  };
}
