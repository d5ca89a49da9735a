/**
 * Prunes backups by the retention policy, in a backup directory or among the
 * repository's GitHub artifacts. The decisions come from the pure
 * {@linkcode applyRetention}; this module gathers the names, guards against
 * deleting what must never go, and deletes.
 *
 * Never deleted: anything whose name is not exactly `memory_YYYYMMDD_HHMMSS`,
 * links, anything outside the directory, and the newest backup. When the
 * newest backup fails verification nothing is deleted (unless forced), so a
 * broken nightly run cannot prune away the last good backups.
 *
 * @module
 */

import { PruneError } from "../errors.ts";
import { BACKUP_NAME, TEMP_PREFIX } from "../format/layout.ts";
import {
  type Artifact,
  deleteArtifact,
  type GitHubSettings,
  listArtifacts,
} from "../github/client.ts";
import type { Keys } from "../format/encryption.ts";
import {
  applyRetention,
  type RetentionDecision,
  type RetentionPolicy,
} from "./policy.ts";
import { verifyBackup } from "../verify/verify.ts";
import { type VerifyReport } from "../verify/report.ts";
import { describeFsError } from "../util/fs.ts";
import { acquireLock } from "../util/lock.ts";

/** A temporary directory older than this was left by a killed backup. */
export const STALE_TEMP_MS = 24 * 3600 * 1000;

/** What to prune. */
export interface PruneOptions {
  /** The retention policy. */
  readonly policy: RetentionPolicy;
  /** "Now", for the windows. */
  readonly now: Date;
  /** Decide and report, delete nothing. */
  readonly dryRun: boolean;
  /** Delete even when the newest backup fails verification. */
  readonly force: boolean;
  /** How long to wait for a backup in the same directory (default 60 s). */
  readonly lockWaitMs?: number | undefined;
  /** Keys for an encrypted newest backup. */
  readonly keys?: Keys | undefined;
}

/** What a prune decided and did. */
export interface PruneOutcome {
  /** One decision per backup name (and per entry never touched). */
  readonly decisions: RetentionDecision[];
  /** Names deleted (or that would be, in a dry run). */
  readonly deleted: string[];
  /** Temporary directories of killed backups removed (or that would be). */
  readonly removedTemps: string[];
  /** The newest backup's verification, when one was run. */
  readonly verification: VerifyReport | undefined;
  /** Why nothing was deleted, when prune refused. */
  readonly refused: string | undefined;
}

/**
 * Prunes a backup directory.
 *
 * @param dir The backup directory.
 * @param options Policy, clock, dry run, force.
 * @returns The decisions and what was deleted.
 * @throws {PruneError} When the directory cannot be read or a deletion fails.
 */
export async function pruneBackups(
  dir: string,
  options: PruneOptions,
): Promise<PruneOutcome> {
  try {
    await Deno.stat(dir);
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) throw error;
    throw new PruneError(
      `Cannot read backup directory "${dir}": ${describeFsError(error)}`,
      { cause: error },
    );
  }
  // Not while a backup is being written into the same directory.
  const lock = options.dryRun
    ? undefined
    : await acquireLock(dir, "prune", { waitMs: options.lockWaitMs });
  try {
    return await pruneLocked(dir, options);
  } finally {
    lock?.release();
  }
}

async function pruneLocked(
  dir: string,
  options: PruneOptions,
): Promise<PruneOutcome> {
  const names: string[] = [];
  const links: string[] = [];
  const temps: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isSymlink) {
        if (entry.name.startsWith("memory_")) links.push(entry.name);
      } else if (
        entry.isDirectory && entry.name.startsWith(`${TEMP_PREFIX}memory_`)
      ) {
        temps.push(entry.name);
      } else if (entry.isDirectory && entry.name.startsWith("memory_")) {
        names.push(entry.name);
      }
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) throw error;
    throw new PruneError(
      `Cannot read backup directory "${dir}": ${describeFsError(error)}`,
      { cause: error },
    );
  }
  const decisions = [
    ...applyRetention(options.now, names, options.policy),
    ...links.sort().map((name) => ({
      name,
      keep: true,
      reasons: ["a link: never touched"],
    })),
  ];
  const newest = decisions.find((d) => d.reasons.includes("newest backup"));
  let verification: VerifyReport | undefined;
  if (newest) {
    verification = await verifyBackup(`${dir}/${newest.name}`, {
      keys: options.keys,
    });
    if (!verification.ok && !options.force) {
      const p = verification.problem;
      return {
        decisions: decisions.map((d) =>
          d.keep ? d : {
            ...d,
            keep: true,
            reasons: ["kept: the newest backup failed verification"],
          }
        ),
        deleted: [],
        removedTemps: [],
        verification,
        refused: `the newest backup ${newest.name} failed verification (${
          p ? `${p.file}: ${p.reason}` : "unknown problem"
        }); nothing was deleted (pass --force to prune anyway)`,
      };
    }
  }
  const stale: string[] = [];
  for (const name of temps) {
    const info = await Deno.lstat(`${dir}/${name}`);
    const age = options.now.getTime() -
      (info.mtime?.getTime() ?? options.now.getTime());
    if (age > STALE_TEMP_MS) stale.push(name);
  }
  const doomed = decisions.filter((d) => !d.keep && BACKUP_NAME.test(d.name))
    .map((d) => d.name);
  const deleted: string[] = [];
  const removedTemps: string[] = [];
  if (!options.dryRun) {
    for (const name of doomed) {
      await removeChild(dir, name);
      deleted.push(name);
    }
    for (const name of stale) {
      await removeChild(dir, name);
      removedTemps.push(name);
    }
  }
  return {
    decisions,
    deleted: options.dryRun ? doomed : deleted,
    removedTemps: options.dryRun ? stale : removedTemps,
    verification,
    refused: undefined,
  };
}

/** Removes a direct child directory, refusing links and anything else. */
async function removeChild(dir: string, name: string): Promise<void> {
  if (name.includes("/") || name === "." || name === "..") {
    throw new PruneError(`Refusing to delete "${name}"`);
  }
  const path = `${dir}/${name}`;
  try {
    const info = await Deno.lstat(path);
    if (!info.isDirectory || info.isSymlink) {
      throw new PruneError(`Refusing to delete "${path}": not a directory`);
    }
    await Deno.remove(path, { recursive: true });
  } catch (error) {
    if (
      error instanceof PruneError || error instanceof Deno.errors.NotCapable
    ) throw error;
    throw new PruneError(`Cannot delete "${path}": ${describeFsError(error)}`, {
      cause: error,
    });
  }
}

/** What an artifact prune decided and did. */
export interface ArtifactPruneOutcome {
  /** One decision per backup artifact name. */
  readonly decisions: RetentionDecision[];
  /** Artifacts deleted (or that would be, in a dry run). */
  readonly deleted: Artifact[];
  /** Artifacts left alone: other names, or expired. */
  readonly ignored: Artifact[];
}

/**
 * Prunes the repository's `memory_*` artifacts by the same policy. Expired
 * artifacts and other names are left alone.
 *
 * @param gh The GitHub settings.
 * @param options Policy, clock, dry run.
 * @returns The decisions and the artifacts deleted.
 * @throws {GitHubError} When GitHub cannot be asked or refuses.
 */
export async function pruneArtifacts(
  gh: GitHubSettings,
  options: Pick<PruneOptions, "policy" | "now" | "dryRun">,
): Promise<ArtifactPruneOutcome> {
  const artifacts = await listArtifacts(gh);
  const backups = artifacts.filter((a) =>
    BACKUP_NAME.test(a.name) && !a.expired
  );
  const ignored = artifacts.filter((a) => !backups.includes(a));
  const names = [...new Set(backups.map((a) => a.name))];
  const decisions = applyRetention(options.now, names, options.policy);
  const doomed = new Set(decisions.filter((d) => !d.keep).map((d) => d.name));
  const deleted: Artifact[] = [];
  for (const artifact of backups) {
    if (!doomed.has(artifact.name)) continue;
    if (!options.dryRun) await deleteArtifact(gh, artifact);
    deleted.push(artifact);
  }
  return { decisions, deleted, ignored };
}
