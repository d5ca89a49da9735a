/**
 * Finishes an output directory the same way for backups and exports:
 * `metadata.json`, `checksums.json` and `SHA256SUMS`, synced to disk, and
 * optionally verified, before the caller renames it into place.
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
import type {
  BackupMetadata,
  Checksums,
  ExportHeader,
} from "../format/records.ts";
import { verifyBackup } from "../verify/verify.ts";
import { type ExportChecks } from "../format/json/check.ts";
import { type VerifyReport } from "../verify/report.ts";
import { syncDir } from "../util/fs.ts";

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
 * @param header The metadata without duration.
 * @param files The data files written so far, with their digests.
 * @param startedMs `performance.now()` when the work started.
 * @returns The metadata, checksums and total size.
 */
export async function seal(
  dir: string,
  header: ExportHeader,
  files: Record<string, FileDigest>,
  startedMs: number,
): Promise<Sealed> {
  const metadata: BackupMetadata = {
    ...header,
    duration_ms: Math.round(performance.now() - startedMs),
  };
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
