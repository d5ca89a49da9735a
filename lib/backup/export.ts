/**
 * Exports the stores in a format for people or tools, from the same store
 * capture and record readers as a backup:
 *
 * | format | files |
 * |---|---|
 * | `json` | the backup format: `export.json`, `relationships.db` |
 * | `csv` | `memories.csv`, `relationships.csv` |
 * | `markdown` | `memories.md` |
 *
 * each with `metadata.json`, `checksums.json` and `SHA256SUMS`. The export is
 * written in a work directory beside the output (`.tmp-NAME`, locked, one
 * exporter at a time) and moved into place only when complete (and
 * verified, with `verify: true`); a previous export there is replaced,
 * anything else is refused.
 *
 * @module
 */

import type { OnProgress } from "../progress.ts";
import { type Config, DEFAULT_EXPORT_DIR } from "../store/config.ts";
import type { FileDigest } from "../format/checksums.ts";
import { writeCsv } from "../format/csv/writer.ts";
import { BackupError, StoreError, UsageError } from "../errors.ts";
import {
  BACKUP_NAME,
  backupName,
  EXPORT_FILE,
  exportWorkDir,
  METADATA_FILE,
  RELATIONSHIPS_COPY_FILE,
} from "../format/layout.ts";
import { writeExport } from "../format/json/writer.ts";
import { writeMarkdown } from "../format/markdown/writer.ts";
import { openMemoryStore } from "../store/memory/read.ts";
import type {
  BackupMetadata,
  Checksums,
  ExportFormat,
} from "../format/records.ts";
import { relationshipSourceOf, storeCapture } from "../store/capture.ts";
import type { Capture, RecordSource } from "../format/source.ts";
import type { Repository } from "../repo/repository.ts";
import type { SnapshotFile } from "../repo/reader.ts";
import { snapshotCapture } from "./snapshot_capture.ts";
import type { VerifyReport } from "../verify/report.ts";
import { onInterrupt } from "../util/interrupt.ts";
import { acquireLock } from "../util/lock.ts";
import { writeOutput } from "./_output.ts";
import { exportFiles } from "./_files.ts";
import { describeFsError, parentDir, removeQuietly } from "../util/fs.ts";

/** The formats `export` writes. */
export const EXPORT_FORMATS: readonly ExportFormat[] = [
  "json",
  "csv",
  "markdown",
];

/** A repository snapshot to export instead of the stores. */
export interface SnapshotSource {
  readonly repo: Repository;
  readonly file: SnapshotFile;
}

/**
 * What to export, how and where: the stores (`config`: table and user
 * filter), or a repository `snapshot`.
 */
export type ExportOptions =
  & ExportSettings
  & (
    | { readonly config: Config; readonly snapshot?: undefined }
    | { readonly snapshot: SnapshotSource; readonly config?: undefined }
  );

/** How and where to export. */
export interface ExportSettings {
  /** `json`, `csv` or `markdown`. */
  readonly format: ExportFormat;
  /** The output directory (default `./exports/memory`). */
  readonly output?: string;
  /** Include the vectors (default `true`; Markdown never shows them). */
  readonly includeVectors?: boolean;
  /** Verify before moving into place. */
  readonly verify?: boolean;
  /** The clock, for tests. */
  readonly now?: () => Date;
  /** Progress messages. */
  readonly onProgress?: OnProgress | undefined;
  /** Warnings. */
  readonly onWarning?: ((message: string) => void) | undefined;
}

/** A finished export. */
export interface ExportResult {
  /** The output directory. */
  readonly path: string;
  /** What `metadata.json` says. */
  readonly metadata: BackupMetadata;
  /** What `checksums.json` says. */
  readonly checksums: Checksums;
  /** Total size in bytes. */
  readonly bytes: number;
  /** The verification, with `verify: true`. */
  readonly verification: VerifyReport | undefined;
}

type Writer = (dir: string, capture: RecordSource) => Promise<{
  files: Record<string, FileDigest>;
  memories: number;
}>;

const WRITERS: Record<ExportFormat, Writer> = {
  json: async (dir, capture) => {
    const result = await writeExport(
      `${dir}/${EXPORT_FILE}`,
      capture.header,
      capture.memories(),
      capture.relationships(),
    );
    return {
      files: await exportFiles(result.digest, capture),
      memories: result.memories,
    };
  },
  csv: writeCsv,
  markdown: writeMarkdown,
};

/**
 * Exports the stores.
 *
 * @param options Format, output, vectors, verification.
 * @returns The export.
 * @throws {UsageError} When the output path is a file or a directory that is
 * not a memkeep export.
 * @throws {BackupError} When it cannot be written or fails verification.
 * @throws {StoreError} When a store cannot be read.
 */
export async function exportMemories(
  options: ExportOptions,
): Promise<ExportResult> {
  const output = (options.output ?? DEFAULT_EXPORT_DIR).replace(/\/+$/, "") ||
    "/";
  const startedMs = performance.now();
  const started = (options.now ?? (() => new Date()))();
  await checkOutput(output);
  const work = exportWorkDir(output);
  const fresh = `${work}/new`;
  const old = `${work}/old`;
  try {
    await Deno.mkdir(work, { recursive: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) throw error;
    throw new BackupError(
      output,
      `Cannot write to "${parentDir(output)}": ${describeFsError(error)}`,
      { cause: error },
    );
  }
  const lock = await acquireLock(work, `export to "${output}"`);
  using _ = onInterrupt(() => {
    putBack(output, old);
    Deno.removeSync(work, { recursive: true });
  });
  try {
    return await exportLocked(options, output, fresh, old, started, startedMs);
  } finally {
    putBack(output, old);
    lock.release();
    await removeQuietly(work);
  }
}

/**
 * Puts the previous export back when its replacement did not arrive (a
 * failure or Ctrl-C between the two renames).
 */
function putBack(output: string, old: string): void {
  try {
    Deno.lstatSync(output);
  } catch {
    try {
      Deno.renameSync(old, output);
    } catch {
      // there was no previous export
    }
  }
}

async function exportLocked(
  options: ExportOptions,
  output: string,
  fresh: string,
  old: string,
  started: Date,
  startedMs: number,
): Promise<ExportResult> {
  const { format } = options;
  // Left by an export that was killed: the half-written new one goes; an
  // old one whose replacement never arrived goes back into place.
  putBack(output, old);
  await removeQuietly(fresh);
  await removeQuietly(old);
  const copy = format === "json"
    ? `${fresh}/${RELATIONSHIPS_COPY_FILE}`
    : `${fresh}/.relationships-copy.db`;
  const includeVectors = format !== "markdown" &&
    (options.includeVectors ?? true);
  let capture: Capture;
  if (options.snapshot) {
    capture = snapshotCapture(options.snapshot.repo, options.snapshot.file, {
      format,
      includeVectors,
      relationshipsCopy: copy,
      sortDir: `${fresh}/.sort`,
      onProgress: options.onProgress,
    });
  } else {
    const { config } = options;
    const relationshipSource = await relationshipSourceOf(
      config,
      options.onWarning,
    );
    capture = storeCapture(
      await openMemoryStore(config.store),
      relationshipSource,
      {
        config,
        format,
        includeVectors,
        name: backupName(started),
        started,
        relationshipsCopy: copy,
        onProgress: options.onProgress,
      },
    );
  }
  try {
    await Deno.mkdir(fresh);
    const { metadata, checksums, bytes, verification } = await writeOutput({
      dir: fresh,
      capture,
      relationshipsCopy: copy,
      keepRelationshipsCopy: format === "json",
      write: (source) => WRITERS[format](fresh, source),
      verify: options.verify ?? false,
      what: "Export",
      startedMs,
      onProgress: options.onProgress,
    });
    let moved = false;
    try {
      await Deno.rename(output, old);
      moved = true;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    await Deno.rename(fresh, output);
    if (moved) await removeQuietly(old);
    return { path: output, metadata, checksums, bytes, verification };
  } catch (error) {
    if (
      error instanceof Deno.errors.NotCapable || error instanceof StoreError ||
      error instanceof BackupError || error instanceof UsageError
    ) {
      throw error;
    }
    throw new BackupError(
      output,
      `Cannot write the export to "${output}": ${describeFsError(error)}`,
      {
        cause: error,
      },
    );
  }
}

/** Refuses an output path that is a file, or a directory that is not a memkeep export. */
async function checkOutput(output: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(output);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  if (!info.isDirectory) {
    throw new UsageError(
      "--output",
      `Cannot export to "${output}": it is a file, not a directory`,
    );
  }
  if (BACKUP_NAME.test(output.slice(output.lastIndexOf("/") + 1))) {
    throw new UsageError(
      "--output",
      `Cannot export to "${output}": it is a backup, and an export never replaces one`,
    );
  }
  const entries = [...Deno.readDirSync(output)].map((e) => e.name);
  if (entries.length === 0) return;
  let isExport = false;
  try {
    const metadata = JSON.parse(
      await Deno.readTextFile(`${output}/${METADATA_FILE}`),
    );
    isExport = metadata?.tool === "memkeep";
  } catch {
    isExport = false;
  }
  if (!isExport) {
    throw new UsageError(
      "--output",
      `Cannot export to "${output}": it holds files that are not a memkeep export; choose another directory`,
    );
  }
}
