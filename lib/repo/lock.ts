/**
 * Who may write a repository at once. In a directory, the backup
 * directory's lock (`REPO/.memkeep.lock`, the kernel's `flock`: one backup
 * or prune at a time, dropped at once when a process is killed). In a
 * bucket, lock objects `locks/<random>` naming the process (its pid, on
 * whichever machine) and its kind: a
 * backup may run beside another backup (every file it writes is new and
 * named by its content) but not beside a prune, and a prune beside nothing.
 * Each side writes its own lock first, then looks for the others, so two
 * that start together both see each other and both stop. A lock object
 * older than {@linkcode STALE_LOCK_MS} was left by a killed process and is
 * ignored (with a warning) and removed by the next prune.
 *
 * @module
 */

import { RepoError } from "../errors.ts";
import { acquireLock } from "../util/lock.ts";
import { LOCKS } from "./layout.ts";
import { LocalStorage, type RepoStorage } from "./storage.ts";

/** A lock object older than this is stale (backups take minutes). */
export const STALE_LOCK_MS = 2 * 3600 * 1000;

/** What the lock is for. */
export type LockKind = "backup" | "prune";

/** A held repository lock. */
export interface RepoLock {
  /** Locks left by killed processes that were ignored. */
  readonly stale: string[];
  release(): Promise<void>;
}

interface LockObject {
  kind: LockKind;
  pid: number;
  created_at: string;
}

/**
 * Locks a repository for a backup or a prune.
 *
 * @param storage The repository.
 * @param kind `backup` or `prune`.
 * @param options How long to wait for a local lock (default 60 s).
 * @returns The lock.
 * @throws {RepoError} When another process holds it.
 */
export async function lockRepository(
  storage: RepoStorage,
  kind: LockKind,
  options: { waitMs?: number | undefined } = {},
): Promise<RepoLock> {
  if (storage instanceof LocalStorage) {
    const lock = await acquireLock(
      storage.location,
      kind === "backup"
        ? "back up into the repository"
        : "prune the repository",
      options,
    ).catch((error) => {
      throw error instanceof Error && error.name === "BackupError"
        ? new RepoError(storage.location, error.message, { cause: error })
        : error;
    });
    return {
      stale: lock.stale ? [lock.stale] : [],
      release: () => Promise.resolve(lock.release()),
    };
  }
  const mine: LockObject = {
    kind,
    pid: Deno.pid,
    created_at: new Date().toISOString(),
  };
  const path = `${LOCKS}/${crypto.randomUUID()}`;
  await storage.write(path, new TextEncoder().encode(JSON.stringify(mine)));
  const stale: string[] = [];
  const release = () => storage.remove(path);
  try {
    for (const file of await storage.list(LOCKS)) {
      if (file.path === path) continue;
      const bytes = await storage.read(file.path);
      if (!bytes) continue; // released meanwhile
      let other: LockObject;
      try {
        other = JSON.parse(new TextDecoder().decode(bytes));
      } catch {
        continue;
      }
      const who =
        `${other.kind} by process ${other.pid} since ${other.created_at}`;
      if (Date.now() - Date.parse(other.created_at) > STALE_LOCK_MS) {
        stale.push(who);
        if (kind === "prune") await storage.remove(file.path);
        continue;
      }
      if (kind === "prune" || other.kind === "prune") {
        throw new RepoError(
          storage.location,
          `Cannot ${
            kind === "backup" ? "back up into" : "prune"
          } ${storage.location}: another memkeep process holds it (${who}); try again when it has finished`,
        );
      }
    }
  } catch (error) {
    await release().catch(() => {});
    throw error;
  }
  return { stale, release };
}
