/**
 * A self-contained backup directory made from a repository snapshot: the
 * same `export.json`, `relationships.db`, `metadata.json` and checksums a
 * backup taken at that moment holds, verified like any backup before it is
 * renamed into place. `export --repo` writes one for the user; `restore
 * --repo` writes one into a scratch directory and restores it, so that
 * every check of a restore applies to a snapshot too.
 *
 * ```
 * snapshot ─▶ trees ─▶ record + vector blobs ─▶ writeExport ─▶ export.json ─┐
 *          └─▶ file blobs ─▶ relationships.db ──────────────────────────────┴─▶ seal ─▶ verify ─▶ rename
 * ```
 *
 * @module
 */

import { BackupError, RepoError } from "../errors.ts";
import {
  EXPORT_FILE,
  RELATIONSHIPS_COPY_FILE,
  TEMP_PREFIX,
} from "../format/layout.ts";
import { writeExport } from "../format/json/writer.ts";
import { hashFile } from "../format/checksums.ts";
import type { ExportHeader } from "../format/records.ts";
import { readRelationships } from "../store/relationships/read.ts";
import type { Repository } from "../repo/repository.ts";
import {
  type SnapshotFile,
  snapshotMemories,
  writeRelationshipsFile,
} from "../repo/reader.ts";
import { describeFsError, exists, removeQuietly, syncDir } from "../util/fs.ts";
import { removeOnInterrupt } from "../util/interrupt.ts";
import { seal, type Sealed, verifySealed } from "./_output.ts";
import type { OnProgress } from "../progress.ts";

/** A backup directory written from a snapshot. */
export interface SnapshotBackup extends Sealed {
  /** `PARENT/memory_YYYYMMDD_HHMMSS`. */
  readonly path: string;
}

/**
 * Writes a snapshot as a backup directory `parent/<snapshot name>`.
 *
 * @param repo The repository.
 * @param file The snapshot.
 * @param parent The directory to write it in (created if missing).
 * @param options `verify` (default `true`), progress.
 * @returns The backup.
 * @throws {BackupError} When it exists already, cannot be written or does
 * not verify.
 * @throws {RepoError} When the repository is damaged.
 */
export async function writeSnapshotBackup(
  repo: Repository,
  file: SnapshotFile,
  parent: string,
  options: { verify?: boolean; onProgress?: OnProgress | undefined } = {},
): Promise<SnapshotBackup> {
  const { snapshot } = file;
  const path = `${parent}/${snapshot.name}`;
  if (await exists(path)) {
    throw new BackupError(path, `Cannot write "${path}": it already exists`);
  }
  const temp = `${parent}/${TEMP_PREFIX}${snapshot.name}-${Deno.pid}`;
  using _ = removeOnInterrupt(temp);
  try {
    await Deno.mkdir(temp, { recursive: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) throw error;
    throw new BackupError(
      path,
      `Cannot write "${path}": ${describeFsError(error)}`,
      { cause: error },
    );
  }
  try {
    const { duration_ms: _duration, ...header } = snapshot.metadata;
    const copy = `${temp}/${RELATIONSHIPS_COPY_FILE}`;
    if (snapshot.relationships_file) {
      await writeRelationshipsFile(repo, snapshot, copy);
    }
    options.onProgress?.({ what: `reading snapshot ${snapshot.name}` });
    const written = await writeExport(
      `${temp}/${EXPORT_FILE}`,
      header as ExportHeader,
      snapshotMemories(repo, snapshot),
      snapshot.relationships_file ? readRelationships(copy) : [],
    );
    if (written.memories !== snapshot.metadata.memory_count) {
      throw new BackupError(
        path,
        `Snapshot ${snapshot.name} lists ${written.memories} memories; its metadata says ${snapshot.metadata.memory_count}`,
      );
    }
    const files = { [EXPORT_FILE]: written.digest };
    if (snapshot.relationships_file) {
      Object.assign(files, { [RELATIONSHIPS_COPY_FILE]: await hashFile(copy) });
    }
    const sealed = await seal(temp, snapshot.metadata, files);
    if (options.verify ?? true) {
      options.onProgress?.({ what: "verifying" });
      await verifySealed(temp, `Snapshot ${snapshot.name}`);
    }
    await Deno.rename(temp, path);
    await syncDir(parent);
    return { path, ...sealed };
  } catch (error) {
    await removeQuietly(temp);
    if (
      error instanceof BackupError || error instanceof RepoError ||
      error instanceof Deno.errors.NotCapable
    ) throw error;
    throw new BackupError(
      path,
      `Cannot write "${path}": ${describeFsError(error)}`,
      { cause: error },
    );
  }
}
