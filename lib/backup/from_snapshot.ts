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
import type { Repository } from "../repo/repository.ts";
import type { SnapshotFile } from "../repo/reader.ts";
import { snapshotCapture } from "./snapshot_capture.ts";
import { exportFiles } from "./_files.ts";
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
    const copy = `${temp}/${RELATIONSHIPS_COPY_FILE}`;
    const capture = snapshotCapture(repo, file, {
      format: "json",
      includeVectors: true,
      relationshipsCopy: copy,
      sortDir: `${temp}/.sort`,
      onProgress: options.onProgress,
    });
    options.onProgress?.({ what: `reading snapshot ${snapshot.name}` });
    const files = await capture(async (source) => {
      const written = await writeExport(
        `${temp}/${EXPORT_FILE}`,
        source.header,
        source.memories(),
        source.relationships(),
      );
      return {
        memories: written.memories,
        files: await exportFiles(written.digest, source),
      };
    });
    const sealed = await seal(temp, snapshot.metadata, files.files);
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
