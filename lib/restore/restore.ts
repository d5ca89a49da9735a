/**
 * Restores a backup safely: verify first (the same verifier as `deno task
 * verify`), check the target before any write, preview exactly, ask, then
 * write all or nothing.
 *
 * ```
 * source (dir | download folder | zip) ──▶ verifyBackup ──▶ preflight
 *   export.json ──readExport──▶ memory records ──▶ INSERT … ON CONFLICT ─▶ Postgres (one transaction)
 *                          └──▶ relationship records ─▶ SQLite merge ─────▶ relationships.db (one transaction)
 * ```
 *
 * `export.json` is verified once (parsed, every rule checked, hashed) and
 * then loaded: the load splits each verified line into its fields without
 * parsing it again, hashes the bytes it read, and commits only when they are
 * the bytes that were verified. An encrypted backup's ciphertext is checked,
 * decrypted once into the scratch directory (the same decryption as
 * `verify`'s), and the plaintext verified and loaded like any backup.
 *
 * The dry run is the real code path inside transactions that are rolled
 * back, so its counts are the counts a real restore reports. A restore that
 * asks first runs that dry run for the preview, then loads again once the
 * user says yes: holding the transaction (and SQLite's write lock) open
 * while a person reads the preview would block the assistant and end in
 * the server's `idle_in_transaction_session_timeout`. A real restore
 * commits Postgres first and SQLite right after, only when both have
 * succeeded; the window between the two commits is one local SQLite commit.
 *
 * @module
 */

import type { OnProgress } from "../progress.ts";
import { type Config, type TableName } from "../store/config.ts";
import { RestoreError, StoreError, VerifyError } from "../errors.ts";
import { EXPORT_FILE, restoreScratch } from "../format/layout.ts";
import { fileChunks, readExport } from "../format/json/reader.ts";
import {
  type ConflictMode,
  memoryLoader,
  type MemoryTargetPlan,
  planMemoryTarget,
  prepareMemoryTarget,
  type RestoreCounts,
} from "../store/memory/load.ts";
import { indexStatements } from "../store/memory/indexes.ts";
import { openMemoryStore } from "../store/memory/read.ts";
import { type FileDigest, hashing } from "../format/checksums.ts";
import type { BackupMetadata } from "../format/records.ts";
import {
  planRelationshipTarget,
  type RelationshipPlan,
  startRelationshipLoad,
} from "../store/relationships/load.ts";
import { openBackupSource } from "./source.ts";
import { verifyBackup } from "../verify/verify.ts";
import {
  decryptBackup,
  ENCRYPTION_FILE,
  type Keys,
} from "../format/encryption.ts";
import { errorMessage, quote } from "../errors.ts";
import {
  exists,
  makeDirs,
  parentDir,
  removeMadeDirs,
  removeQuietly,
} from "../util/fs.ts";
import { onInterrupt, uninterrupted } from "../util/interrupt.ts";
import type { SqlSession } from "../store/sql.ts";

export type { ConflictMode, RestoreCounts } from "../store/memory/load.ts";

/** What to restore, where, and how. */
export interface RestoreOptions {
  /** A backup directory, the folder `gh run download` made, or an artifact zip. */
  readonly source: string;
  /** The target stores (`store`, `relationships`). */
  readonly config: Config;
  /** The target table; by default the backup's own table. */
  readonly table?: TableName | undefined;
  /** `skip` (default) or `update`. */
  readonly conflictMode?: ConflictMode;
  /** Compute the counts and write nothing. */
  readonly dryRun?: boolean;
  /** Restore a backup made with `--no-vectors` (the vectors stay NULL or as they are). */
  readonly allowMissingVectors?: boolean;
  /**
   * Where to extract a zip or decrypt a backup (default: beside the
   * relationship store, `RELATIONSHIPS_DB.memkeep-restore/PID`).
   */
  readonly scratchDir?: string;
  /** Keys for an encrypted backup (`AGE_IDENTITY_FILE`, `AGE_PASSPHRASE`). */
  readonly keys?: Keys | undefined;
  /**
   * Called with the preview before a real restore; return `true` to go on.
   * Without it a real restore runs at once (as with `--force`).
   */
  readonly confirm?:
    | ((preview: RestorePreview) => Promise<boolean>)
    | undefined;
  /** Progress messages. */
  readonly onProgress?: OnProgress | undefined;
  /** Warnings, e.g. an index definition not recreated. */
  readonly onWarning?: ((message: string) => void) | undefined;
}

/** What a restore would do or did. */
export interface RestorePreview {
  /** The verified backup's metadata. */
  readonly backup: BackupMetadata;
  /** The target table, `schema.table`. */
  readonly table: string;
  /** Whether the table is created by the restore. */
  readonly createsTable: boolean;
  /** The relationship store and how it is restored. */
  readonly relationships: {
    readonly path: string;
    readonly how: RelationshipPlan["kind"];
  };
  /** Memory counts. */
  readonly memories: RestoreCounts;
  /** Relationship counts. */
  readonly relationshipCounts: RestoreCounts;
}

/** The outcome of {@linkcode restore}. */
export interface RestoreResult extends RestorePreview {
  /** Whether this was a dry run. */
  readonly dryRun: boolean;
  /** Whether the changes were committed. */
  readonly committed: boolean;
  /** Whether the user declined at the confirmation. */
  readonly cancelled: boolean;
}

/**
 * Restores a backup into the configured stores.
 *
 * @param options Source, target, mode, dry run, confirmation.
 * @returns The counts, and whether anything was committed.
 * @throws {RestoreError} When the backup fails verification or cannot go
 * into the target; nothing is written then.
 * @throws {StoreError} When a store cannot be reached or refuses a write;
 * everything is rolled back.
 */
export async function restore(options: RestoreOptions): Promise<RestoreResult> {
  const progress = options.onProgress ?? (() => {});
  const scratch = options.scratchDir ??
    `${restoreScratch(options.config.relationships.path)}/${Deno.pid}`;
  // The scratch directory's parents are removed again if this made them.
  // (A failure here is reported by whatever needs the directory: a backup
  // directory that is not encrypted needs none.)
  const made = await makeDirs(parentDir(scratch)).catch(() => []);
  const decrypted = `${scratch}-decrypted`;
  using _ = onInterrupt(() => {
    for (const path of [scratch, decrypted]) {
      try {
        Deno.removeSync(path, { recursive: true });
      } catch {
        // not made
      }
    }
    for (const dir of made) Deno.removeSync(dir);
  });
  let source: Awaited<ReturnType<typeof openBackupSource>>;
  try {
    source = await openBackupSource(options.source, scratch);
  } catch (error) {
    await removeMadeDirs(made);
    throw error;
  }
  try {
    let dir = source.dir;
    if (await exists(`${dir}/${ENCRYPTION_FILE}`)) {
      if (!options.keys) {
        throw new RestoreError(
          "Cannot restore: the backup is encrypted; set AGE_IDENTITY_FILE to your age identity file (or AGE_PASSPHRASE)",
        );
      }
      progress({ what: "checking and decrypting the backup" });
      const outer = await verifyBackup(dir);
      if (!outer.ok) {
        const p = outer.problem;
        throw new RestoreError(
          `Cannot restore: the encrypted backup failed verification: ${
            p ? `${p.file}: ${p.reason}` : ""
          }`,
        );
      }
      try {
        dir = await decryptBackup(dir, decrypted, options.keys);
      } catch (error) {
        if (!(error instanceof VerifyError)) throw error;
        throw new RestoreError(
          `Cannot restore: cannot decrypt the backup with the key given: ${
            errorMessage(error.cause ?? error)
          }`,
          { cause: error },
        );
      }
    }
    progress({ what: "verifying the backup" });
    const report = await verifyBackup(dir, {
      onProgress: (p) => progress({ ...p, what: `verifying ${p.what}` }),
    });
    if (report.ok && report.metadata && report.metadata.format !== "json") {
      throw new RestoreError(
        `Cannot restore: "${options.source}" is a ${report.metadata.format} export, not a backup (restore takes a backup or a json export)`,
      );
    }
    if (!report.ok || !report.metadata || !report.exportDigest) {
      const p = report.problem;
      throw new RestoreError(
        `Cannot restore: the backup failed verification: ${
          p
            ? `${p.file}${
              p.line === undefined ? "" : `:${p.line}`
            }: ${p.reason}`
            : "unknown problem"
        }`,
      );
    }
    const backup = report.metadata;
    const verified = report.exportDigest;
    if (!backup.includes_vectors && !options.allowMissingVectors) {
      throw new RestoreError(
        "Cannot restore: the backup was made with --no-vectors; pass --allow-missing-vectors to restore it without embeddings",
      );
    }
    const tableName = options.table ??
      { schema: backup.memories.schema, name: backup.memories.table };
    const store = await openMemoryStore(options.config.store, { create: true });
    try {
      const plan = await planMemoryTarget(store.session, tableName, backup);
      if (plan.idType === "uuid" && report.firstNonUuidId !== undefined) {
        throw new StoreError(
          `Cannot restore: the target's id column is uuid, but the backup holds id ${
            quote(report.firstNonUuidId)
          }`,
        );
      }
      const relationships = await planRelationshipTarget(
        options.config.relationships,
        backup,
        dir,
      );
      const mode = options.conflictMode ?? "skip";
      const attempt = (commit: boolean) =>
        load(
          store.session,
          plan,
          relationships,
          { dir, digest: verified },
          backup,
          mode,
          commit,
          options,
        );
      const preview = (counts: Counts): RestorePreview => ({
        backup,
        table: `${plan.schema}.${plan.table}`,
        createsTable: plan.existing === undefined,
        relationships: { path: relationships.target, how: relationships.kind },
        memories: counts.memories,
        relationshipCounts: counts.relationships,
      });
      if (options.dryRun) {
        return {
          ...preview(await attempt(false)),
          dryRun: true,
          committed: false,
          cancelled: false,
        };
      }
      if (options.confirm) {
        const before = preview(await attempt(false));
        if (!(await options.confirm(before))) {
          return {
            ...before,
            dryRun: false,
            committed: false,
            cancelled: true,
          };
        }
      }
      return {
        ...preview(await attempt(true)),
        dryRun: false,
        committed: true,
        cancelled: false,
      };
    } finally {
      await store.close();
    }
  } finally {
    await source.cleanup();
    await removeQuietly(decrypted);
    await removeMadeDirs(made);
  }
}

interface Counts {
  memories: RestoreCounts;
  relationships: RestoreCounts;
}

async function load(
  session: SqlSession,
  plan: MemoryTargetPlan,
  relationshipPlan: RelationshipPlan,
  exported: { dir: string; digest: FileDigest },
  backup: BackupMetadata,
  mode: ConflictMode,
  commit: boolean,
  options: RestoreOptions,
): Promise<Counts> {
  const progress = options.onProgress ?? (() => {});
  await session.query("begin");
  let relationships: ReturnType<typeof startRelationshipLoad> | undefined;
  try {
    await prepareMemoryTarget(session, plan);
    // The SQLite write lock is taken at the first relationship, not before
    // the (long) memory load, so the assistant is blocked as briefly as can be.
    const relationshipLoad = () =>
      relationships ??= startRelationshipLoad(relationshipPlan, mode);
    const memories = memoryLoader(session, plan, mode);
    let n = 0;
    const file = hashing(fileChunks(`${exported.dir}/${EXPORT_FILE}`));
    const entries = readExport(file.chunks, EXPORT_FILE, { verified: true });
    for await (const entry of entries) {
      if (entry.section === "memories") {
        await memories.add(entry.fields);
        if (++n % 1000 === 0) {
          progress({
            what: commit ? "restoring memories" : "checking memories",
            done: n,
            total: backup.memory_count,
            bytes: file.bytes(),
          });
        }
      } else if (entry.section === "relationships") {
        relationshipLoad().add(entry.fields);
      }
    }
    if (file.digest().sha256 !== exported.digest.sha256) {
      throw new RestoreError(
        `Cannot restore: ${EXPORT_FILE} changed after it was verified; nothing was written`,
      );
    }
    const memoryCounts = await memories.finish();
    if (!plan.existing) {
      const { run, skipped } = indexStatements(
        backup.memories.indexes,
        backup,
        plan,
      );
      for (const ddl of skipped) {
        options.onWarning?.(
          `index not recreated (not a plain index definition): ${ddl}`,
        );
      }
      for (const ddl of run) {
        progress({ what: "recreating indexes" });
        await session.query(ddl);
      }
    }
    const relationshipCounts = relationshipLoad().counts();
    if (commit) {
      // Everything that can fail on the relationship side happens before
      // Postgres commits; SQLite's commit (or a rename) right after is the
      // only window.
      await relationshipLoad().prepare();
      await uninterrupted(async () => {
        await session.query("commit");
        await relationshipLoad().commit();
      });
    } else {
      await session.query("rollback");
      await relationshipLoad().rollback();
    }
    return { memories: memoryCounts, relationships: relationshipCounts };
  } catch (error) {
    await session.query("rollback").catch(() => {});
    await relationships?.rollback().catch(() => {});
    throw error;
  }
}
