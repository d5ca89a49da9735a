/**
 * `prune --repo`: the retention policy applied to a repository's snapshots,
 * then the data no kept snapshot needs deleted and mostly-dead packs
 * repacked ({@linkcode collectGarbage}). The repository is locked as a
 * backup locks it, so a prune never deletes data a backup is writing. The
 * newest snapshot's structure is checked first; when it is damaged nothing
 * is deleted (unless forced), as for backup directories.
 *
 * @module
 */

import { RepoError } from "../errors.ts";
import { snapshotPath } from "../repo/layout.ts";
import { openStorage } from "../repo/location.ts";
import { Repository } from "../repo/repository.ts";
import { listSnapshots, type SnapshotFile } from "../repo/reader.ts";
import { checkSnapshot } from "../repo/check.ts";
import { collectGarbage, type Collection, neededBlobs } from "../repo/gc.ts";
import { lockRepository } from "../repo/lock.ts";
import { readConfig } from "../repo/config.ts";
import { storedBytes } from "../repo/storage.ts";
import { applyRetention, type RetentionDecision } from "./policy.ts";
import type { PruneOptions } from "./prune.ts";

/** What a prune of a repository decided and did. */
export interface RepoPruneOutcome {
  readonly decisions: RetentionDecision[];
  /** Snapshots deleted (or that would be). */
  readonly deleted: string[];
  /** The packs freed; `undefined` when prune refused. */
  readonly collection: Collection | undefined;
  /** Why nothing was deleted, when prune refused. */
  readonly refused: string | undefined;
  /** The repository's size before. */
  readonly bytesBefore: number;
}

/**
 * Prunes a repository.
 *
 * @param location The repository directory.
 * @param options Policy, clock, dry run, force, lock wait.
 * @returns The decisions and what was freed.
 * @throws {RepoError} When the repository cannot be read or written.
 */
export async function pruneRepo(
  location: string,
  options: PruneOptions & {
    readonly env?: ((name: string) => string | undefined) | undefined;
  },
): Promise<RepoPruneOutcome> {
  const storage = openStorage(location, options.env);
  // A missing repository is named before the lock is made.
  await readConfig(storage, {});
  const lock = await lockRepository(storage, "prune", {
    waitMs: options.lockWaitMs,
  });
  try {
    const repo = await Repository.open(storage, { keys: options.keys });
    const bytesBefore = await storedBytes(storage);
    const snapshots = await listSnapshots(repo);
    const decisions = applyRetention(
      options.now,
      snapshots.map((s) => s.snapshot.name),
      options.policy,
    );
    const keepNames = new Set(
      decisions.filter((d) => d.keep).map((d) => d.name),
    );
    const doomed = snapshots.filter((s) => !keepNames.has(s.snapshot.name));
    const kept = snapshots.filter((s) => keepNames.has(s.snapshot.name));
    const refused = await newestProblem(repo, kept.at(-1));
    if (refused !== undefined && !options.force) {
      return {
        decisions,
        deleted: [],
        collection: undefined,
        refused,
        bytesBefore,
      };
    }
    if (!options.dryRun) {
      for (const file of doomed) await storage.remove(snapshotPath(file.id));
    }
    const needed = await neededBlobs(repo, kept.map((s) => s.snapshot));
    const collection = await collectGarbage(repo, needed, options.dryRun);
    return {
      decisions,
      deleted: doomed.map((s) => s.snapshot.name),
      collection,
      refused: undefined,
      bytesBefore,
    };
  } finally {
    await lock.release();
  }
}

async function newestProblem(
  repo: Repository,
  newest: SnapshotFile | undefined,
): Promise<string | undefined> {
  if (!newest) return undefined;
  try {
    await checkSnapshot(repo, newest, false);
    return undefined;
  } catch (error) {
    if (!(error instanceof RepoError)) throw error;
    return `the newest snapshot ${newest.snapshot.name} is damaged (${error.message}); nothing was deleted (--force to prune anyway)`;
  }
}
