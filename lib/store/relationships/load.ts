/**
 * Loads relationship records into the SQLite relationship store for a
 * restore. When the store does not exist yet, the backup's snapshot file is
 * copied into place whole (every table comes back); otherwise rows are merged
 * into `relationships`, keyed on (source_id, target_id, rel_type), in one
 * `BEGIN IMMEDIATE` transaction.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import type { RelationshipStoreTarget } from "../config.ts";
import { oneLine, quote, StoreError } from "../../errors.ts";
import type { ConflictMode, RestoreCounts } from "../memory/load.ts";
import { restoringCopy } from "../../format/layout.ts";
import { onInterrupt } from "../../util/interrupt.ts";
import type { BackupMetadata, RawRecord } from "../../format/records.ts";
import { sqliteReason } from "./read.ts";
import {
  metadataColumnValue,
  RELATIONSHIPS_TABLE,
  type SqliteValue,
  sqliteValueFromJson,
} from "../../format/sqlite_values.ts";
import {
  describeFsError,
  exists,
  makeDirs,
  parentDir,
  removeMadeDirs,
  syncDir,
} from "../../util/fs.ts";

/** How the relationships will be restored. */
export type RelationshipPlan =
  | { readonly kind: "none"; readonly target: string }
  | {
    readonly kind: "copy";
    readonly target: string;
    readonly snapshot: string;
    readonly count: number;
  }
  | {
    readonly kind: "merge";
    readonly target: string;
    readonly snapshot: string | undefined;
  };

/**
 * Decides how to restore the relationships.
 *
 * @param target The configured relationship store.
 * @param metadata The backup's metadata.
 * @param backupDir The backup directory.
 * @returns `none` when the backup has no relationship store, `copy` when the
 * target does not exist, else `merge`.
 */
export async function planRelationshipTarget(
  target: RelationshipStoreTarget,
  metadata: BackupMetadata,
  backupDir: string,
): Promise<RelationshipPlan> {
  const snapshotName = metadata.relationships.snapshot;
  if (snapshotName === null) return { kind: "none", target: target.path };
  const snapshot = `${backupDir}/${snapshotName}`;
  let present: boolean;
  try {
    present = await exists(target.path);
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) throw error;
    throw new StoreError(
      `Cannot restore relationships to "${target.path}": ${
        describeFsError(error)
      }`,
      { cause: error },
    );
  }
  if (!present) {
    return {
      kind: "copy",
      target: target.path,
      snapshot,
      count: metadata.relationship_count,
    };
  }
  return { kind: "merge", target: target.path, snapshot };
}

/** A relationship restore in progress. */
export interface RelationshipLoad {
  /** Adds one record. */
  add(record: RawRecord): void;
  /** The counts so far. */
  counts(): RestoreCounts;
  /**
   * Does everything that can fail before the memory store commits, so that
   * `commit` is as small as can be (a rename, or SQLite's commit).
   */
  prepare(): Promise<void>;
  /** Makes the changes permanent. */
  commit(): Promise<void>;
  /** Undoes everything. */
  rollback(): Promise<void>;
}

/**
 * Starts restoring relationships according to the plan.
 *
 * @param plan The plan.
 * @param mode `skip` keeps existing rows; `update` replaces strength,
 * metadata and updated_at of a row with the same key (created_at is kept).
 * @returns The load; call `commit` or `rollback`.
 * @throws {StoreError} When the store cannot be opened or locked.
 */
export function startRelationshipLoad(
  plan: RelationshipPlan,
  mode: ConflictMode,
): RelationshipLoad {
  if (plan.kind === "none") {
    return {
      add() {},
      counts: () => zero(),
      prepare: () => Promise.resolve(),
      commit: () => Promise.resolve(),
      rollback: () => Promise.resolve(),
    };
  }
  if (plan.kind === "copy") return copyLoad(plan);
  return mergeLoad(plan, mode);
}

function zero(): RestoreCounts {
  return { restored: 0, skipped: 0, updated: 0 };
}

function copyLoad(
  plan: Extract<RelationshipPlan, { kind: "copy" }>,
): RelationshipLoad {
  // One name per target: a restore killed between copy and rename leaves
  // this file behind, and the next restore replaces it.
  const temp = restoringCopy(plan.target);
  const dir = parentDir(plan.target);
  /** Directories the restore made, deepest first, removed on rollback. */
  let made: string[] = [];
  let copying = false;
  let prepared = false;
  let onStop: Disposable | undefined;
  const undo = async () => {
    onStop?.[Symbol.dispose]();
    if (copying) await Deno.remove(temp).catch(() => {});
    await removeMadeDirs(made);
    made = [];
    copying = prepared = false;
  };
  const prepare = async () => {
    if (prepared) return;
    try {
      made = await makeDirs(dir);
      const inTheWay = await Deno.lstat(temp).catch(() => undefined);
      if (inTheWay && !inTheWay.isFile) {
        throw new StoreError(
          `Cannot restore relationships to "${plan.target}": "${temp}" is in the way (not a file); move it`,
        );
      }
      copying = true;
      onStop = onInterrupt(() => {
        Deno.removeSync(temp);
        for (const d of made) Deno.removeSync(d);
      });
      await Deno.copyFile(plan.snapshot, temp);
      using file = await Deno.open(temp, { read: true, write: true });
      await file.sync();
      prepared = true;
    } catch (error) {
      await undo();
      if (
        error instanceof Deno.errors.NotCapable || error instanceof StoreError
      ) throw error;
      throw new StoreError(
        `Cannot restore relationships to "${plan.target}": ${
          describeFsError(error)
        }`,
        { cause: error },
      );
    }
  };
  return {
    add() {},
    counts: () => ({ restored: plan.count, skipped: 0, updated: 0 }),
    prepare,
    async commit() {
      await prepare();
      await Deno.rename(temp, plan.target);
      onStop?.[Symbol.dispose]();
      await syncDir(dir);
    },
    rollback: undo,
  };
}

function mergeLoad(
  plan: Extract<RelationshipPlan, { kind: "merge" }>,
  mode: ConflictMode,
): RelationshipLoad {
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(plan.target);
    db.exec("pragma busy_timeout = 10000");
    db.exec("begin immediate");
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) throw error;
    throw new StoreError(
      `Cannot open relationship store "${plan.target}": ${sqliteReason(error)}`,
      { cause: error },
    );
  }
  const counts = zero();
  try {
    ensureTable(db, plan.snapshot);
  } catch (error) {
    db.exec("rollback");
    db.close();
    throw error;
  }
  const columns =
    (db.prepare(`pragma table_info(${RELATIONSHIPS_TABLE})`).all() as {
      name: string;
    }[]).map((c) => c.name);
  const find = db.prepare(
    `select id, strength, metadata, updated_at from ${RELATIONSHIPS_TABLE} where source_id = ? and target_id = ? and rel_type = ?`,
  );
  find.setReadBigInts(true);
  const idTaken = db.prepare(
    `select 1 from ${RELATIONSHIPS_TABLE} where id = ?`,
  );
  const update = db.prepare(
    `update ${RELATIONSHIPS_TABLE} set strength = ?, metadata = ?, updated_at = ? where id = ?`,
  );
  const inserts = new Map<string, ReturnType<DatabaseSync["prepare"]>>();
  let open = true;
  const finish = (sql: string) => {
    if (!open) return;
    open = false;
    try {
      db.exec(sql);
    } finally {
      db.close();
    }
  };
  const addRow = (record: RawRecord): void => {
    const values = new Map<string, SqliteValue>();
    for (const [key, json] of record) {
      if (key === "metadata_text") continue;
      if (!columns.includes(key)) continue;
      values.set(
        key,
        key === "metadata"
          ? metadataColumnValue(record)
          : sqliteValueFromJson(json),
      );
    }
    const key = [
      values.get("source_id"),
      values.get("target_id"),
      values.get("rel_type"),
    ] as SqliteValue[];
    const existing = find.get(...key) as
      | Record<string, SqliteValue>
      | undefined;
    if (existing) {
      const next = ["strength", "metadata", "updated_at"].map((c) =>
        values.has(c) ? values.get(c)! : existing[c]!
      );
      const same = next.every((v, i) =>
        sameValue(v, existing[["strength", "metadata", "updated_at"][i]!]!)
      );
      if (mode === "skip" || same) {
        counts.skipped++;
        return;
      }
      update.run(...next, existing.id!);
      counts.updated++;
      return;
    }
    const id = values.get("id");
    if (id !== undefined && idTaken.get(id)) values.delete("id");
    const names = [...values.keys()];
    const sql = `insert into ${RELATIONSHIPS_TABLE} (${
      names.map((n) => `"${n.replaceAll('"', '""')}"`).join(", ")
    }) values (${names.map(() => "?").join(", ")})`;
    let insert = inserts.get(sql);
    if (!insert) {
      insert = db.prepare(sql);
      inserts.set(sql, insert);
    }
    insert.run(...values.values());
    counts.restored++;
  };
  return {
    add(record) {
      try {
        addRow(record);
      } catch (error) {
        if (error instanceof Deno.errors.NotCapable) throw error;
        const field = (name: string) => {
          try {
            return quote(String(JSON.parse(record.get(name) ?? "null")));
          } catch {
            return "?";
          }
        };
        throw new StoreError(
          `Cannot restore relationship ${field("source_id")} -[${
            field("rel_type")
          }]-> ${field("target_id")}: ${oneLine(sqliteReason(error))}`,
          { cause: error },
        );
      }
    },
    counts: () => ({ ...counts }),
    // The transaction holds every row already.
    prepare: () => Promise.resolve(),
    commit() {
      finish("commit");
      return Promise.resolve();
    },
    rollback() {
      finish("rollback");
      return Promise.resolve();
    },
  };
}

function sameValue(a: SqliteValue, b: SqliteValue): boolean {
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    return a instanceof Uint8Array && b instanceof Uint8Array &&
      a.length === b.length && a.every((x, i) => x === b[i]);
  }
  if (typeof a === "bigint" || typeof b === "bigint") {
    try {
      return BigInt(a as number) === BigInt(b as number);
    } catch {
      return false; // a fraction is never equal to an integer
    }
  }
  return a === b;
}

function ensureTable(db: DatabaseSync, snapshot: string | undefined): void {
  const present = db.prepare(
    "select 1 from sqlite_schema where type = 'table' and name = ?",
  ).get(RELATIONSHIPS_TABLE);
  if (present) return;
  if (!snapshot) {
    throw new StoreError(
      `Cannot restore relationships: the target has no ${RELATIONSHIPS_TABLE} table`,
    );
  }
  const source = new DatabaseSync(snapshot, { readOnly: true });
  try {
    const ddl = source.prepare(
      "select sql from sqlite_schema where tbl_name = ? and sql is not null order by type = 'index', name",
    ).all(RELATIONSHIPS_TABLE) as { sql: string }[];
    for (const { sql } of ddl) db.exec(sql);
  } finally {
    source.close();
  }
}
