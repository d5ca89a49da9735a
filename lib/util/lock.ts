/**
 * One writer at a time in a backup directory: backups and prunes take an
 * exclusive advisory lock on `DIR/.memkeep.lock` (the kernel's `flock`, so a
 * process that is killed drops it at once; the file it leaves behind names
 * the process and is recognised as stale by the next one). A second process
 * waits for the first, then fails with a message naming it.
 *
 * @module
 */

import { BackupError } from "../errors.ts";
import { onInterrupt } from "./interrupt.ts";

/** The lock file, in the backup directory. */
export const LOCK_FILE = ".memkeep.lock";

/** A held lock. */
export interface Lock {
  /** Who held it before and died without releasing it, if anyone. */
  readonly stale: string | undefined;
  /** Releases it. */
  release(): void;
}

/**
 * Takes the backup directory's lock, waiting for another holder.
 *
 * @param dir The backup directory (must exist).
 * @param what What this process does, e.g. `back up`.
 * @param options How long to wait (default 60 s).
 * @returns The lock.
 * @throws {BackupError} When another process holds it for longer than that.
 */
export async function acquireLock(
  dir: string,
  what: string,
  options: { waitMs?: number | undefined } = {},
): Promise<Lock> {
  const path = `${dir}/${LOCK_FILE}`;
  const deadline = performance.now() + (options.waitMs ?? 60_000);
  let file: Deno.FsFile | undefined;
  while (file === undefined) {
    const candidate = await Deno.open(path, {
      read: true,
      write: true,
      create: true,
    });
    try {
      while (!(await candidate.tryLock(true))) {
        if (performance.now() > deadline) {
          throw new BackupError(
            dir,
            `Cannot ${what}: another memkeep process is working in "${dir}" (${
              holder(await readHolder(path))
            }); try again when it has finished`,
          );
        }
        await new Promise((r) => setTimeout(r, 200));
      }
      // The holder may have removed the directory with the lock in it
      // while this process waited: then this lock guards nothing.
      if (await sameFile(candidate, path)) file = candidate;
      else {
        candidate.close();
        await Deno.mkdir(dir, { recursive: true });
      }
    } catch (error) {
      candidate.close();
      throw error;
    }
  }
  const previous = await readHolder(path);
  await file.truncate(0);
  await file.seek(0, Deno.SeekMode.Start);
  await file.write(
    new TextEncoder().encode(
      JSON.stringify({ pid: Deno.pid, what, since: new Date().toISOString() }) +
        "\n",
    ),
  );
  // Ctrl-C: the next process finds the lock free, not left by a dead holder.
  const onStop = onInterrupt(() => file.truncateSync(0));
  return {
    stale: previous
      ? `process ${previous.pid} (${previous.what} since ${previous.since})`
      : undefined,
    release() {
      onStop[Symbol.dispose]();
      try {
        file.truncateSync(0);
        file.unlockSync();
      } finally {
        file.close();
      }
    },
  };
}

async function sameFile(file: Deno.FsFile, path: string): Promise<boolean> {
  const [held, named] = [
    await file.stat(),
    await Deno.stat(path).catch(() => undefined),
  ];
  return named !== undefined && held.ino === named.ino &&
    held.dev === named.dev;
}

async function readHolder(
  path: string,
): Promise<Record<string, unknown> | undefined> {
  try {
    const text = (await Deno.readTextFile(path)).trim();
    return text ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
}

function holder(info: Record<string, unknown> | undefined): string {
  if (!info) return "a process that is still starting";
  return `process ${info.pid} ${
    info.what ? `is trying to ${info.what}` : "is working"
  } since ${info.since}`;
}
