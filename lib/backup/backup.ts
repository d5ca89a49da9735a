/**
 * Takes a backup: one consistent capture of the memory table and the
 * relationship store, streamed into a temporary directory with checksums
 * computed while writing, verified, and only then renamed to its final name
 * `memory_YYYYMMDD_HHMMSS`. An existing backup is never overwritten; a failed
 * or interrupted backup never leaves a directory under a final name.
 *
 * ```
 * store ──cursor──▶ readMemories ─┐
 *                                 ├─▶ writeExport ─▶ export.json (+SHA-256)
 * SQLite ─backup─▶ copy ──────────┘                 metadata.json, relationships.db
 *                                                   checksums.json, SHA256SUMS
 * ```
 *
 * @module
 */

import type { OnProgress } from "../progress.ts";
import type { Config } from "../store/config.ts";

import { BackupError, errorMessage, StoreError } from "../errors.ts";
import {
  backupName,
  EXPORT_FILE,
  LOG_FILE,
  RELATIONSHIPS_COPY_FILE,
  TEMP_PREFIX,
} from "../format/layout.ts";
import { writeExport } from "../format/json/writer.ts";
import { openMemoryStore } from "../store/memory/read.ts";
import type { BackupMetadata, Checksums } from "../format/records.ts";
import { redact } from "../redact.ts";
import { relationshipSourceOf, storeCapture } from "../store/capture.ts";
import type { VerifyReport } from "../verify/report.ts";
import { writeOutput } from "./_output.ts";
import { freeMoment } from "./_moment.ts";
import { exportFiles } from "./_files.ts";
import { followFile, Growth } from "../format/json/follow.ts";
import { checkExport } from "../format/json/check.ts";
import { onInterrupt, removeOnInterrupt } from "../util/interrupt.ts";
import { acquireLock } from "../util/lock.ts";
import { describeFsError, exists, removeQuietly, syncDir } from "../util/fs.ts";

/** What to back up and where. */
export interface BackupOptions {
  /** The stores, table, user filter and backup directory. */
  readonly config: Config;
  /** Include the vectors (default `true`). */
  readonly includeVectors?: boolean;
  /** Verify before the rename (default `true`). */
  readonly verify?: boolean;
  /** The clock, for tests. */
  readonly now?: () => Date;
  /** Progress messages for a terminal. */
  readonly onProgress?: OnProgress | undefined;
  /** How long to wait for another backup or prune in the same directory (default 60 s). */
  readonly lockWaitMs?: number | undefined;
  /** Warnings, e.g. no relationship store. */
  readonly onWarning?: ((message: string) => void) | undefined;
}

/** A finished backup. */
export interface BackupResult {
  /** The backup directory. */
  readonly path: string;
  /** Its name, `memory_YYYYMMDD_HHMMSS`. */
  readonly name: string;
  /** What `metadata.json` says. */
  readonly metadata: BackupMetadata;
  /** What `checksums.json` says. */
  readonly checksums: Checksums;
  /** Total size of the backup's files in bytes. */
  readonly bytes: number;
  /** The verification, unless it was skipped. */
  readonly verification: VerifyReport | undefined;
}

/**
 * Backs up the memory store and the relationship store.
 *
 * @param options What to back up and where.
 * @returns The backup.
 * @throws {StoreError} When a store cannot be read.
 * @throws {BackupError} When the backup cannot be written or fails verification.
 */
export async function backup(options: BackupOptions): Promise<BackupResult> {
  const { config } = options;
  const now = options.now ?? (() => new Date());
  const started = now();
  const dir = config.backupDir;
  using _ = onInterrupt(() =>
    Deno.writeTextFileSync(
      `${dir}/${LOG_FILE}`,
      logLine(started, "FAILED", "-", { error: "interrupted" }),
      { append: true },
    )
  );
  try {
    const result = await runBackup(options, now);
    await appendLog(
      dir,
      new Date(result.metadata.created_at),
      "OK",
      result.name,
      {
        memories: result.metadata.memory_count,
        relationships: result.metadata.relationship_count,
        bytes: result.bytes,
        combined: result.checksums.combined,
        duration_ms: Math.round(result.metadata.duration_ms),
      },
    );
    return result;
  } catch (error) {
    await appendLog(dir, started, "FAILED", "-", {
      error: errorMessage(error),
    });
    throw error;
  }
}

async function runBackup(
  options: BackupOptions,
  now: () => Date,
): Promise<BackupResult> {
  const { config } = options;
  const dir = config.backupDir;
  const startedMs = performance.now();

  try {
    await Deno.mkdir(dir, { recursive: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) throw error;
    throw new BackupError(
      dir,
      `Cannot create backup directory "${dir}": ${describeFsError(error)}`,
      { cause: error },
    );
  }
  const lock = await acquireLock(dir, "back up", {
    waitMs: options.lockWaitMs,
  });
  if (lock.stale) {
    options.onWarning?.(
      `took over the lock of "${dir}" left by ${lock.stale}, which is no longer running`,
    );
  }
  try {
    return await runLocked(options, now, startedMs);
  } finally {
    lock.release();
  }
}

async function runLocked(
  options: BackupOptions,
  now: () => Date,
  startedMs: number,
): Promise<BackupResult> {
  const { config } = options;
  const dir = config.backupDir;
  const progress = options.onProgress ?? (() => {});
  const relationshipSource = await relationshipSourceOf(
    config,
    options.onWarning,
  );

  progress({ what: "connecting" });
  const store = await openMemoryStore(config.store);
  let started: Date;
  try {
    started = await freeMoment(
      now,
      (name) => exists(`${dir}/${name}`),
      (name) =>
        new BackupError(
          `${dir}/${name}`,
          `Cannot back up: "${dir}/${name}" already exists`,
        ),
    );
  } catch (error) {
    await store.close();
    throw error;
  }
  const name = backupName(started);
  const finalPath = `${dir}/${name}`;
  const temp = `${dir}/${TEMP_PREFIX}${name}-${Deno.pid}`;
  let tempMade = false;
  using _ = removeOnInterrupt(temp);
  try {
    try {
      await Deno.mkdir(temp);
      tempMade = true;
    } catch (error) {
      if (error instanceof Deno.errors.NotCapable) throw error;
      throw new BackupError(
        dir,
        `Cannot write to backup directory "${dir}": ${describeFsError(error)}`,
        { cause: error },
      );
    }
    const verify = options.verify ?? true;
    const relationshipsCopy = `${temp}/${RELATIONSHIPS_COPY_FILE}`;
    const { metadata, checksums, bytes, verification } = await writeOutput({
      dir: temp,
      capture: storeCapture(store, relationshipSource, {
        config,
        format: "json",
        includeVectors: options.includeVectors ?? true,
        name,
        started,
        relationshipsCopy,
        onProgress: progress,
      }),
      relationshipsCopy,
      keepRelationshipsCopy: true,
      write: async (capture) => {
        const path = `${temp}/${EXPORT_FILE}`;
        // The verification reads export.json back as it is written, using
        // the time the database spends producing rows.
        const growth = new Growth();
        const checking = verify
          ? checkExport(followFile(path, growth), {
            ...capture.header,
            duration_ms: 0,
          })
          : undefined;
        checking?.catch(() => {});
        let result;
        try {
          result = await writeExport(
            path,
            capture.header,
            capture.memories(),
            capture.relationships(),
            { onWrite: () => growth.grew() },
          );
          growth.end();
        } catch (error) {
          growth.end(error);
          throw error;
        }
        return {
          files: await exportFiles(result.digest, capture),
          memories: result.memories,
          exportChecked: await checking,
        };
      },
      verify,
      what: "Backup",
      startedMs,
      onProgress: progress,
    });
    if (await exists(finalPath)) {
      throw new BackupError(
        finalPath,
        `Cannot back up: "${finalPath}" already exists`,
      );
    }
    await Deno.rename(temp, finalPath);
    tempMade = false;
    await syncDir(dir);
    return { path: finalPath, name, metadata, checksums, bytes, verification };
  } catch (error) {
    if (
      error instanceof Deno.errors.NotCapable || error instanceof StoreError ||
      error instanceof BackupError
    ) {
      throw error;
    }
    throw new BackupError(
      dir,
      `Cannot write backup in "${dir}": ${describeFsError(error)}`,
      { cause: error },
    );
  } finally {
    if (tempMade) await removeQuietly(temp);
  }
}

function logLine(
  started: Date,
  status: string,
  name: string,
  fields: Record<string, string | number>,
): string {
  const details = Object.entries(fields).map(([k, v]) =>
    `${k}=${typeof v === "string" ? JSON.stringify(v) : v}`
  );
  return redact(
    `${started.toISOString()} ${status} ${name} ${details.join(" ")}`,
  ) + "\n";
}

async function appendLog(
  dir: string,
  started: Date,
  status: string,
  name: string,
  fields: Record<string, string | number>,
): Promise<void> {
  try {
    await Deno.writeTextFile(
      `${dir}/${LOG_FILE}`,
      logLine(started, status, name, fields),
      { append: true },
    );
  } catch {
    // The log is a convenience: a directory we cannot write to has already
    // been reported by the backup itself.
  }
}
