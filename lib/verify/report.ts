/**
 * What {@linkcode verifyBackup} reports and takes.
 *
 * @module
 */

import type { OnProgress } from "../progress.ts";
import { type BackupMetadata } from "../format/records.ts";
import { type Keys } from "../format/encryption.ts";
import type { ExportChecks } from "../format/json/check.ts";
import type { VerifyCheck, VerifyProblem } from "../format/check.ts";

/** The outcome of {@linkcode verifyBackup}. */
export interface VerifyReport {
  /** The backup directory. */
  readonly dir: string;
  /** Whether every check passed. */
  readonly ok: boolean;
  /** Every check, in order. */
  readonly checks: VerifyCheck[];
  /** The first problem of the first failed check. */
  readonly problem: VerifyProblem | undefined;
  /** The metadata, when it is valid. */
  readonly metadata: BackupMetadata | undefined;
  /** Memory records read. */
  readonly memories: number;
  /** Relationship records read. */
  readonly relationships: number;
  /** Whether the backup is encrypted. */
  readonly encrypted: boolean;
  /** Whether its contents were checked (always, unless encrypted and no key). */
  readonly contentsVerified: boolean;
  /**
   * `export.json` as it was verified (a JSON backup): a reader of the file
   * compares its digest with this one before it uses what it read.
   */
  readonly exportDigest?: { sha256: string; bytes: number } | undefined;
  /** The first memory id that is not a uuid (a JSON backup), if any. */
  readonly firstNonUuidId?: string | undefined;
}

/** Options for {@linkcode verifyBackup}. */
export interface VerifyOptions {
  /** Called as records are read. */
  readonly onProgress?: OnProgress | undefined;
  /** Keys to check an encrypted backup's contents. */
  readonly keys?: Keys | undefined;
  /**
   * The checks of `export.json`, already made by reading the file back as it
   * was written ({@linkcode checkExport}); it is not read again.
   */
  readonly exportChecked?: ExportChecks | undefined;
}

/**
 * A report from its checks: `ok` only when every check passed, `problem`
 * the first failed check's.
 *
 * @param dir The backup directory.
 * @param checks Every check, in order.
 * @param rest What the checks found: metadata, counts, encryption.
 * @returns The report.
 */
export function reportOf(
  dir: string,
  checks: VerifyCheck[],
  rest: Omit<VerifyReport, "dir" | "ok" | "checks" | "problem">,
): VerifyReport {
  const firstFailure = checks.find((c) => !c.ok);
  return {
    dir,
    ok: firstFailure === undefined,
    checks,
    problem: firstFailure?.problem,
    ...rest,
  };
}
