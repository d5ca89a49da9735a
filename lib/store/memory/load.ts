/**
 * Loads memory records into a Postgres table for a restore: checks the
 * target before anything is written (extension, table shape, dimension, id
 * type, a unique index on `id`), creates a missing table with the backup's
 * layout, loads with `COPY FROM STDIN` where the server takes it (else in
 * batches of `INSERT … ON CONFLICT`). The backup's indexes are recreated
 * by `indexes.ts`.
 *
 * Counts come from the statements themselves (`RETURNING`), so a dry run in
 * a rolled-back transaction reports exactly what a real restore does.
 *
 * @module
 */

import { formatTableName, type TableName } from "../config.ts";
import { errorMessage, quote, StoreError } from "../../errors.ts";
import { inspectTable, type MemoryTable } from "./read.ts";
import {
  type BackupMetadata,
  payloadFromRecord,
  type RawRecord,
} from "../../format/records.ts";
import { copyField } from "../copy_text.ts";
import { PieceEncoder } from "../../util/pieces.ts";
import { type CopyWriter, quoteIdent, type SqlSession } from "../sql.ts";

/** What to do with a record whose id is already in the target. */
export type ConflictMode = "skip" | "update";

/** Per-store outcome of a restore. */
export interface RestoreCounts {
  /** Records inserted. */
  restored: number;
  /** Records already there (identical, or kept as they were in `skip` mode). */
  skipped: number;
  /** Records that replaced a different row with the same key (`update` mode). */
  updated: number;
}

/** The checked target table. */
export interface MemoryTargetPlan {
  /** Schema and table. */
  readonly schema: string;
  /** Table name. */
  readonly table: string;
  /** The table as found, or `undefined` when the restore creates it. */
  readonly existing: MemoryTable | undefined;
  /** Whether pgvector must be installed first. */
  readonly createExtension: boolean;
  /** The id column's type. */
  readonly idType: string;
  /** The payload column's type. */
  readonly payloadType: string;
  /** The vector dimension of the table (existing or to create). */
  readonly dims: number | null;
  /** Whether the backup holds vectors. */
  readonly withVectors: boolean;
}

const TYPE_NAME = /^[a-z_][a-z0-9_]*$/;

/**
 * Checks the target of a restore before anything is written.
 *
 * @param session An open session (outside any transaction).
 * @param name The target table.
 * @param metadata The verified backup's metadata.
 * @returns The plan.
 * @throws {StoreError} When the target cannot take the backup: another
 * dimension, another shape, no unique index on `id`.
 */
export async function planMemoryTarget(
  session: SqlSession,
  name: TableName,
  metadata: BackupMetadata,
): Promise<MemoryTargetPlan> {
  const shown = formatTableName(name);
  const backup = metadata.memories;
  const ext = await session.query(
    "select extversion from pg_extension where extname = 'vector'",
  );
  const createExtension = ext.length === 0;
  const qualified = name.schema === undefined
    ? quoteIdent(name.name)
    : `${quoteIdent(name.schema)}.${quoteIdent(name.name)}`;
  const found = createExtension
    ? []
    : await session.query("select to_regclass($1)::text", [qualified]);
  const exists = found[0]?.[0] !== null && found[0]?.[0] !== undefined;
  const withVectors = metadata.includes_vectors;
  if (!exists) {
    if (
      !TYPE_NAME.test(backup.id_type) ||
      !["json", "jsonb"].includes(backup.payload_type)
    ) {
      throw new StoreError(
        `Cannot restore: the backup records id type "${backup.id_type}" and payload type "${backup.payload_type}", which memkeep will not create`,
      );
    }
    const schema = name.schema ??
      (await session.query("select current_schema()"))[0]?.[0] ?? "public";
    return {
      schema,
      table: name.name,
      existing: undefined,
      createExtension,
      idType: backup.id_type,
      payloadType: backup.payload_type,
      dims: backup.dims,
      withVectors,
    };
  }
  const table = await inspectTable(session, name);
  if (
    table.dims !== null && backup.dims !== null && table.dims !== backup.dims
  ) {
    throw new StoreError(
      `Cannot restore into "${shown}": its vectors have ${table.dims} dimensions, the backup's have ${backup.dims}`,
    );
  }
  const unique = await session.query(
    `select 1 from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
      where i.indrelid = $1::regclass and i.indisunique and i.indnatts = 1 and a.attname = 'id'`,
    [`${quoteIdent(table.schema)}.${quoteIdent(table.table)}`],
  );
  if (unique.length === 0) {
    throw new StoreError(
      `Cannot restore into "${shown}": its id column has no primary key or unique index to detect duplicates`,
    );
  }
  return {
    schema: table.schema,
    table: table.table,
    existing: table,
    createExtension: false,
    idType: table.idType,
    payloadType: table.payloadType,
    dims: table.dims ?? backup.dims,
    withVectors,
  };
}

export function qualified(plan: MemoryTargetPlan): string {
  return `${quoteIdent(plan.schema)}.${quoteIdent(plan.table)}`;
}

/**
 * Creates what the plan says is missing: the extension and the table. Call
 * inside the restore's transaction.
 *
 * @param session The session, in a transaction.
 * @param plan The plan.
 * @throws {StoreError} When pgvector cannot be installed, naming the SQL the
 * database owner must run.
 */
export async function prepareMemoryTarget(
  session: SqlSession,
  plan: MemoryTargetPlan,
): Promise<void> {
  if (plan.createExtension) {
    try {
      await session.query("create extension if not exists vector");
    } catch (error) {
      throw new StoreError(
        `Cannot restore: the "vector" extension is not installed and cannot be created with this login (${
          (error as Error).message
        }); ask the database owner to run: CREATE EXTENSION vector;`,
        { cause: error },
      );
    }
  }
  if (!plan.existing) {
    const dims = plan.dims === null ? "" : `(${plan.dims})`;
    await session.query(
      `create table ${
        qualified(plan)
      } (id ${plan.idType} primary key, vector vector${dims}, payload ${plan.payloadType})`,
    );
  }
}

/** Accumulates memory records and upserts them in batches. */
export interface MemoryLoader {
  /** Adds one record; may flush a batch. */
  add(record: RawRecord): Promise<void>;
  /** Flushes the last batch and returns the counts. */
  finish(): Promise<RestoreCounts>;
}

const BATCH_ROWS = 250;
const BATCH_CHARS = 8 * 1024 * 1024;

/**
 * Starts loading memories into the target, by the fastest path the server
 * offers: `COPY FROM STDIN` (straight into a table the restore created, or
 * into a temporary staging table merged with one `INSERT … SELECT … ON
 * CONFLICT`), else batched `INSERT … ON CONFLICT`. Call inside the
 * restore's transaction, after {@linkcode prepareMemoryTarget}.
 *
 * @param session The session, in a transaction.
 * @param plan The plan.
 * @param mode `skip` keeps rows already there; `update` replaces their
 * vector and payload when they differ.
 * @returns The loader.
 */
export function memoryLoader(
  session: SqlSession,
  plan: MemoryTargetPlan,
  mode: ConflictMode,
): MemoryLoader {
  return session.copyIn
    ? copyLoader(session, plan, mode)
    : batchLoader(session, plan, mode);
}

/** The row's columns as the loaders send them: id, vector, payload. */
function loadedRow(
  plan: MemoryTargetPlan,
  record: RawRecord,
): [string, string | null, string | null] {
  const id = JSON.parse(record.get("id")!) as string;
  const embedding = plan.withVectors ? record.get("embedding") : undefined;
  const vector = embedding === undefined || embedding === "null"
    ? null
    : embedding;
  return [id, vector, payloadFromRecord(record)];
}

/** `ON CONFLICT` for the mode, and what the statement returns. */
function conflictClause(plan: MemoryTargetPlan, mode: ConflictMode): string {
  const t = qualified(plan);
  const setVector = plan.withVectors ? "vector = excluded.vector, " : "";
  const changed = plan.withVectors
    ? `(${t}.vector, ${t}.payload::jsonb) is distinct from (excluded.vector, excluded.payload::jsonb)`
    : `${t}.payload::jsonb is distinct from excluded.payload::jsonb`;
  return mode === "skip"
    ? "on conflict (id) do nothing returning 'inserted'"
    : `on conflict (id) do update set ${setVector}payload = excluded.payload where ${changed}
       returning case when xmax = 0 then 'inserted' else 'updated' end`;
}

const COPY_CHUNK = 1 << 20;
const STAGING = "memkeep_staging";

function copyLoader(
  session: SqlSession,
  plan: MemoryTargetPlan,
  mode: ConflictMode,
): MemoryLoader {
  const t = qualified(plan);
  // A table this restore created holds nothing to conflict with.
  const direct = plan.existing === undefined;
  /** Every id sent, to name the record the server refuses by its line. */
  const ids: string[] = [];
  let writer: CopyWriter | undefined;
  // postgres.js copies each chunk into its message: the buffer is free again
  // once a write resolves.
  const queued = new PieceEncoder();
  const refused = (error: unknown): StoreError => {
    const where = String(
      ((error as Error).cause as { where?: string } | undefined)?.where ?? "",
    );
    const line = Number(/line (\d+)/.exec(where)?.[1] ?? 0);
    const which = line > 0 && ids[line - 1] !== undefined
      ? ` (in memory ${line}, id ${quote(ids[line - 1]!, 40)})`
      : "";
    return new StoreError(
      `Cannot restore into "${plan.schema}.${plan.table}": ${
        errorMessage(error)
      }${which}`,
      { cause: error },
    );
  };
  const send = async () => {
    if (queued.chars === 0) return;
    await writer!.write(queued.take()).catch((e) => Promise.reject(refused(e)));
  };
  return {
    async add(record) {
      const [id, vector, payload] = loadedRow(plan, record);
      if (!writer) {
        try {
          if (!direct) {
            const dims = plan.dims === null ? "" : `(${plan.dims})`;
            await session.query(
              `create temporary table ${STAGING} (id ${plan.idType}, vector vector${dims}, payload ${plan.payloadType}) on commit drop`,
            );
          }
          writer = await session.copyIn!(
            `copy ${direct ? t : STAGING} (id, vector, payload) from stdin`,
          );
        } catch (error) {
          throw refused(error);
        }
      }
      ids.push(id);
      // The vector a piece of its own (see PieceEncoder).
      queued.add(`${copyField(id)}\t`);
      queued.add(copyField(vector));
      queued.add(`\t${copyField(payload)}\n`);
      if (queued.chars >= COPY_CHUNK) await send();
    },
    async finish() {
      const counts: RestoreCounts = { restored: 0, skipped: 0, updated: 0 };
      if (!writer) return counts;
      await send();
      await writer.end().catch((e) => Promise.reject(refused(e)));
      if (direct) return { ...counts, restored: ids.length };
      let rows;
      try {
        rows = await session.query(
          `with r(outcome) as (
             insert into ${t} (id, vector, payload)
             select id, vector, payload from ${STAGING}
             ${conflictClause(plan, mode)})
           select count(*) filter (where outcome = 'inserted')::text,
                  count(*) filter (where outcome = 'updated')::text from r`,
        );
      } catch (error) {
        throw refused(error);
      }
      counts.restored = Number(rows[0]?.[0] ?? 0);
      counts.updated = Number(rows[0]?.[1] ?? 0);
      counts.skipped = ids.length - counts.restored - counts.updated;
      return counts;
    },
  };
}

function batchLoader(
  session: SqlSession,
  plan: MemoryTargetPlan,
  mode: ConflictMode,
): MemoryLoader {
  const counts: RestoreCounts = { restored: 0, skipped: 0, updated: 0 };
  const t = qualified(plan);
  const onConflict = conflictClause(plan, mode);
  let params: (string | null)[] = [];
  /** Records added so far, and how many of them wait in `params`. */
  let added = 0;
  let rows = 0;
  let chars = 0;
  const flush = async () => {
    if (rows === 0) return;
    const values: string[] = [];
    for (let i = 0; i < rows; i++) {
      values.push(
        `($${3 * i + 1}::text, $${3 * i + 2}::text, $${3 * i + 3}::text)`,
      );
    }
    const sql = `insert into ${t} (id, vector, payload)
      select v.id::${plan.idType}, v.vec::vector, v.payload::${plan.payloadType}
        from (values ${values.join(", ")}) as v(id, vec, payload)
      ${onConflict}`;
    let result;
    try {
      result = await session.query(sql, params);
    } catch (error) {
      // The batch is refused whole: name its records, so the user can find
      // the one the server objects to.
      const first = added - rows + 1;
      const which = rows === 1
        ? `memory ${first}, id ${quote(params[0]!, 40)}`
        : `memories ${first}–${added}, ids ${quote(params[0]!, 40)} to ${
          quote(params[3 * (rows - 1)]!, 40)
        }`;
      throw new StoreError(
        `Cannot restore into "${plan.schema}.${plan.table}": ${
          errorMessage(error)
        } (in ${which})`,
        { cause: error },
      );
    }
    const inserted = result.filter((r) => r[0] === "inserted").length;
    counts.restored += inserted;
    counts.updated += result.length - inserted;
    counts.skipped += rows - result.length;
    params = [];
    rows = 0;
    chars = 0;
  };
  return {
    async add(record) {
      const [id, vector, payload] = loadedRow(plan, record);
      params.push(id, vector, payload);
      added++;
      rows++;
      chars += (vector?.length ?? 0) + (payload?.length ?? 0);
      if (rows >= BATCH_ROWS || chars >= BATCH_CHARS) await flush();
    },
    async finish() {
      await flush();
      return { ...counts };
    },
  };
}
