/**
 * Reads a file while another part of the program is still writing it: the
 * backup checks `export.json` by reading it back as it grows, so the check
 * runs while the database is still producing rows instead of after.
 *
 * @module
 */

import { READ_CHUNK } from "./reader.ts";

/** Tells a follower that the file grew, or is complete. */
export class Growth {
  #waiters: (() => void)[] = [];
  #done = false;
  #error: unknown = undefined;

  /** The writer wrote more. */
  grew(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }

  /**
   * The writer finished (or failed).
   *
   * @param error Why it failed, if it did.
   */
  end(error?: unknown): void {
    this.#done = true;
    this.#error = error;
    this.grew();
  }

  /** Whether the writer finished. */
  get done(): boolean {
    return this.#done;
  }

  /** Why the writer failed, if it did. */
  get error(): unknown {
    return this.#error;
  }

  /** Resolves at the next growth or the end. */
  wait(): Promise<void> {
    return this.#done
      ? Promise.resolve()
      : new Promise((resolve) => this.#waiters.push(resolve));
  }
}

/**
 * The bytes of a file being written, as they reach it, until the writer
 * ends.
 *
 * @param path The file the writer creates.
 * @param growth Signals from the writer.
 * @returns The file's bytes in chunks of up to {@linkcode READ_CHUNK}.
 * @throws The writer's error, when it failed.
 */
export async function* followFile(
  path: string,
  growth: Growth,
): AsyncGenerator<Uint8Array> {
  let opened: Deno.FsFile | undefined;
  while (!opened) {
    // Whether the writer had ended before this attempt: an open that began
    // before the file was made can fail after a quick writer has finished.
    const ended = growth.done;
    try {
      opened = await Deno.open(path, { read: true });
    } catch (error) {
      // The writer creates the file; until its first write it may not be there.
      if (!(error instanceof Deno.errors.NotFound) || ended) {
        throw growth.error ?? error;
      }
      await growth.wait();
    }
  }
  using file = opened;
  while (true) {
    const buffer = new Uint8Array(READ_CHUNK);
    const n = await file.read(buffer);
    if (n !== null) {
      yield buffer.subarray(0, n);
      continue;
    }
    if (growth.done) {
      if (growth.error !== undefined) throw growth.error;
      // One last read: the end may have come after ours returned nothing.
      const tail = await file.read(buffer);
      if (tail === null) return;
      yield buffer.subarray(0, tail);
      continue;
    }
    await growth.wait();
  }
}
