/**
 * One output directory, written the same way for backups and exports: the
 * stores captured at one instant, the format's files written into a
 * temporary directory, `metadata.json`, `checksums.json` and `SHA256SUMS`
 * written and synced, the directory verified; the caller then renames it
 * into place (a backup never over an existing name, an export in place of
 * the previous export).
 *
 * ```
 * capture ─▶ format writer ─▶ files + digests ─▶ seal ─▶ verify ─▶ (caller) rename
 * ```
 *
 * @module
 */

import {
  type FileDigest,
  writeChecksums,
  writeTextDurably,
} from "../format/checksums.ts";
import { BackupError } from "../errors.ts";
import { METADATA_FILE } from "../format/layout.ts";
import type { BackupMetadata, Checksums } from "../format/records.ts";
import { verifyBackup } from "../verify/verify.ts";
import { type ExportChecks } from "../format/json/check.ts";
import { type VerifyReport } from "../verify/report.ts";
import { removeQuietly, syncDir } from "../util/fs.ts";
import type { Capture, RecordSource } from "../format/source.ts";
import type { OnProgress } from "../progress.ts";

/** What a format writer wrote into the directory. */
export interface Written {
  /** Each data file with its digest. */
  readonly files: Record<string, FileDigest>;
  /** Memories written. */
  readonly memories: number;
  /** The checks of `export.json` made while it was written, if any. */
  readonly exportChecked?: ExportChecks | undefined;
}

/** How to write one output directory. */
export interface OutputOptions {
  /** The temporary directory (made by the caller, empty). */
  readonly dir: string;
  /**
   * Where the records come from: the stores captured at one instant
   * ({@linkcode storeCapture}), or a repository snapshot.
   */
  readonly capture: Capture;
  /** Where the capture puts its copy of the relationship store. */
  readonly relationshipsCopy: string;
  /** Whether the copy of the relationship store is one of the files. */
  readonly keepRelationshipsCopy: boolean;
  /** The format writer. */
  readonly write: (source: RecordSource) => Promise<Written>;
  /** Verify the sealed directory. */
  readonly verify: boolean;
  /** `Backup` or `Export`, for the error when it does not verify. */
  readonly what: string;
  /** `performance.now()` when the work started. */
  readonly startedMs: number;
  /** Progress messages. */
  readonly onProgress?: OnProgress | undefined;
}

/** A written, sealed and (when asked) verified directory. */
export interface Output extends Sealed {
  /** The verification, when asked for. */
  readonly verification: VerifyReport | undefined;
}

/**
 * Captures the stores, writes, seals and verifies one output directory.
 *
 * @param options The directory, the stores, the writer.
 * @returns What the directory holds, sealed.
 * @throws {BackupError} When it does not verify.
 */
export async function writeOutput(options: OutputOptions): Promise<Output> {
  const written = await options.capture(async (source) => ({
    header: source.header,
    ...(await options.write(source)),
  }));
  if (!options.keepRelationshipsCopy) {
    await removeQuietly(options.relationshipsCopy);
  }
  const sealed = await seal(options.dir, {
    ...written.header,
    duration_ms: Math.round(performance.now() - options.startedMs),
  }, written.files);
  let verification: VerifyReport | undefined;
  if (options.verify) {
    options.onProgress?.({ what: "verifying" });
    verification = await verifySealed(
      options.dir,
      options.what,
      written.exportChecked,
    );
  }
  return { ...sealed, verification };
}

/** A sealed directory. */
export interface Sealed {
  /** What `metadata.json` says. */
  readonly metadata: BackupMetadata;
  /** What `checksums.json` says. */
  readonly checksums: Checksums;
  /** Total size of the files, in bytes. */
  readonly bytes: number;
}

/**
 * Writes `metadata.json` and the checksums of every file.
 *
 * @param dir The directory being written.
 * @param metadata What `metadata.json` says.
 * @param files The data files written so far, with their digests.
 * @returns The metadata, checksums and total size.
 */
export async function seal(
  dir: string,
  metadata: BackupMetadata,
  files: Record<string, FileDigest>,
): Promise<Sealed> {
  const all = { ...files };
  all[METADATA_FILE] = await writeTextDurably(
    `${dir}/${METADATA_FILE}`,
    JSON.stringify(metadata, null, 2) + "\n",
  );
  const checksums = await writeChecksums(dir, all);
  await syncDir(dir);
  const bytes = Object.values(all).reduce((sum, f) => sum + f.bytes, 0);
  return { metadata, checksums, bytes };
}

/**
 * Verifies a sealed directory and throws when it is not valid.
 *
 * @param dir The directory.
 * @param name How to name it in the error.
 * @param exportChecked The checks of `export.json` made while it was
 * written, so it is not read again.
 * @returns The report.
 * @throws {BackupError} With the first problem.
 */
export async function verifySealed(
  dir: string,
  name: string,
  exportChecked?: ExportChecks,
): Promise<VerifyReport> {
  const report = await verifyBackup(dir, { exportChecked });
  if (!report.ok) {
    const p = report.problem;
    throw new BackupError(
      name,
      `${name} failed verification: ${
        p
          ? `${p.file}${p.line ? `:${p.line}` : ""}: ${p.reason}`
          : "unknown problem"
      }`,
    );
  }
  return report;
}
