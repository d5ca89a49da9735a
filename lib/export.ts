/**
 * Exports the stores in a format for people or tools, from the same store
 * snapshot and record readers as a backup:
 *
 * | format | files |
 * |---|---|
 * | `json` | the backup format: `export.json`, `relationships.db` |
 * | `csv` | `memories.csv`, `relationships.csv` |
 * | `markdown` | `memories.md` |
 *
 * each with `metadata.json`, `checksums.json` and `SHA256SUMS`. The export is
 * written under a temporary name beside the output directory and moved into
 * place only when complete (and verified, with `verify: true`); a previous
 * export there is replaced, anything else is refused.
 *
 * @module
 */

import type { Config } from "./config.ts";
import { type FileDigest, hashFile } from "./checksums.ts";
import { writeCsv } from "./csv_format.ts";
import { BackupError, StoreError, UsageError } from "./errors.ts";
import {
  BACKUP_NAME,
  backupName,
  EXPORT_FILE,
  METADATA_FILE,
  SNAPSHOT_FILE,
} from "./format.ts";
import { writeExport } from "./json_writer.ts";
import { writeMarkdown } from "./markdown_format.ts";
import { openMemoryStore } from "./memory_store.ts";
import type { BackupMetadata, Checksums, ExportFormat } from "./records.ts";
import {
  relationshipSourceOf,
  type StoreSnapshot,
  withStoreSnapshot,
} from "./snapshot.ts";
import type { VerifyReport } from "./verify.ts";
import { seal, verifySealed } from "./_seal.ts";
import { describeFsError, parentDir, removeQuietly } from "./_fs.ts";

/** The formats `export` writes. */
export const EXPORT_FORMATS: readonly ExportFormat[] = [
  "json",
  "csv",
  "markdown",
];

/** Where the export goes unless told otherwise. */
export const DEFAULT_EXPORT_DIR = "./exports/memory";

/** What to export, how and where. */
export interface ExportOptions {
  /** The stores, table and user filter. */
  readonly config: Config;
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
  readonly onProgress?: ((message: string) => void) | undefined;
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

type Writer = (dir: string, snapshot: StoreSnapshot) => Promise<{
  files: Record<string, FileDigest>;
  memories: number;
}>;

const WRITERS: Record<ExportFormat, Writer> = {
  json: async (dir, snapshot) => {
    const result = await writeExport(
      `${dir}/${EXPORT_FILE}`,
      snapshot.header,
      snapshot.memories(),
      snapshot.relationships(),
    );
    const files: Record<string, FileDigest> = { [EXPORT_FILE]: result.digest };
    if (snapshot.relationshipsFile) {
      files[SNAPSHOT_FILE] = await hashFile(snapshot.relationshipsFile);
    }
    return { files, memories: result.memories };
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
  const { config, format } = options;
  const output = (options.output ?? DEFAULT_EXPORT_DIR).replace(/\/+$/, "") ||
    "/";
  const startedMs = performance.now();
  const started = (options.now ?? (() => new Date()))();
  await checkOutput(output);
  const parent = parentDir(output);
  const base = output.slice(output.lastIndexOf("/") + 1);
  try {
    await Deno.mkdir(parent, { recursive: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) throw error;
    throw new BackupError(
      parent,
      `Cannot create "${parent}": ${describeFsError(error)}`,
      { cause: error },
    );
  }
  const temp = `${parent}/.tmp-${base}-${Deno.pid}`;
  const old = `${parent}/.old-${base}-${Deno.pid}`;
  const relationshipSource = await relationshipSourceOf(
    config,
    options.onWarning,
  );
  const store = await openMemoryStore(config.store);
  let tempMade = false;
  try {
    try {
      await Deno.mkdir(temp);
      tempMade = true;
    } catch (error) {
      if (error instanceof Deno.errors.NotCapable) throw error;
      throw new BackupError(
        parent,
        `Cannot write to "${parent}": ${describeFsError(error)}`,
        { cause: error },
      );
    }
    const copy = format === "json"
      ? `${temp}/${SNAPSHOT_FILE}`
      : `${temp}/.relationships-snapshot.db`;
    const written = await withStoreSnapshot(
      store,
      relationshipSource,
      {
        config,
        format,
        includeVectors: format !== "markdown" &&
          (options.includeVectors ?? true),
        name: backupName(started),
        started,
        relationshipsCopy: copy,
        onProgress: options.onProgress,
      },
      async (snapshot) => ({
        header: snapshot.header,
        ...(await WRITERS[format](temp, snapshot)),
      }),
    )
      .finally(() => store.close());
    if (format !== "json") await removeQuietly(copy);
    const { metadata, checksums, bytes } = await seal(
      temp,
      written.header,
      written.files,
      startedMs,
    );
    const verification = options.verify
      ? await verifySealed(temp, "Export")
      : undefined;
    let moved = false;
    try {
      await Deno.rename(output, old);
      moved = true;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    await Deno.rename(temp, output);
    tempMade = false;
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
  } finally {
    if (tempMade) await removeQuietly(temp);
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
