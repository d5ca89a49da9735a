/**
 * What a check of a backup's files reports, whichever format wrote them:
 * each format checks its own files ({@linkcode VerifyCheck}s), and the
 * verifier puts the checks together in one report.
 *
 * @module
 */

/** Where a problem is. */
export interface VerifyProblem {
  /** The file inside the backup. */
  readonly file: string;
  /** The 1-based line, when there is one. */
  readonly line?: number;
  /** What is wrong. */
  readonly reason: string;
}

/** One check and its outcome. */
export interface VerifyCheck {
  /** What was checked, e.g. `checksums`. */
  readonly name: string;
  /** Whether it passed. */
  readonly ok: boolean;
  /** A one-line summary. */
  readonly detail: string;
  /** The first problem, when it failed. */
  readonly problem?: VerifyProblem;
}
