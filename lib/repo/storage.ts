/**
 * Where a repository's files live: a local directory here, an S3-compatible
 * bucket elsewhere. The repository code sees only this interface: whole
 * files written at once under their final name (atomically: a reader sees
 * the whole file or none), read whole or by range, listed, removed.
 *
 * @module
 */

import {
  describeFsError,
  makeDirs,
  parentDir,
  syncDir,
  writeAll,
} from "../util/fs.ts";
import { RepoError } from "../errors.ts";

/** A file in a repository. */
export interface StoredFile {
  /** Its path inside the repository, e.g. `packs/ab/ab12…`. */
  readonly path: string;
  readonly size: number;
}

/** A repository's files. */
export interface RepoStorage {
  /** Where it is, for messages (no credentials). */
  readonly location: string;
  /**
   * Whether reading a range is cheap (a local file: yes; an object store:
   * one request each, so whole packs are read instead).
   */
  readonly cheapRanges: boolean;
  /** The whole file, or `undefined` when there is none. */
  read(path: string): Promise<Uint8Array | undefined>;
  /** `length` bytes from `offset`. */
  readRange(path: string, offset: number, length: number): Promise<Uint8Array>;
  /**
   * Writes a file under its final name, atomically.
   *
   * @param exclusive Fail with {@linkcode RepoError} when it exists.
   */
  write(path: string, bytes: Uint8Array, exclusive?: boolean): Promise<void>;
  /** The files under a folder (recursively), in no order. */
  list(folder: string): Promise<StoredFile[]>;
  /** Removes a file; nothing when there is none. */
  remove(path: string): Promise<void>;
  /** Lets go of what reading kept open (files), if anything. */
  close?(): void;
  /** The file in chunks, where that is cheaper than reading it whole. */
  readStream?(path: string): AsyncIterable<Uint8Array>;
  /**
   * Removes what killed writers left half-written (a directory's `.tmp-`
   * files; a bucket has none: a PUT is whole or absent). Only under the
   * exclusive lock.
   *
   * @returns How many were removed.
   */
  removeTemporary?(): Promise<number>;
}

/** Whether a path is, or is inside, a file being written (`.tmp-…`). */
export function isTemporary(path: string): boolean {
  return path.split("/").some((part) => part.startsWith(".tmp-"));
}

/**
 * The bytes a repository's files take.
 *
 * @param storage The repository.
 * @returns The sum of their sizes.
 */
export async function storedBytes(storage: RepoStorage): Promise<number> {
  return (await storage.list(".")).reduce((n, f) => n + f.size, 0);
}

/**
 * A repository in a local directory. A file is written beside its final
 * name, synced, renamed into place and the directory synced: a crash leaves
 * the file whole or absent, plus at most a `.tmp-` file that nothing reads.
 */
export class LocalStorage implements RepoStorage {
  readonly location: string;
  readonly cheapRanges = true;
  /** The pack files read last, kept open (reads come pack by pack). */
  readonly #open = new Map<string, Deno.FsFile>();

  /** @param root The repository directory. */
  constructor(private readonly root: string) {
    this.location = root;
  }

  #full(path: string): string {
    return `${this.root}/${path}`;
  }

  #fail(action: string, path: string, error: unknown): never {
    if (error instanceof Deno.errors.NotCapable) throw error;
    throw new RepoError(
      this.location,
      `Cannot ${action} "${this.#full(path)}": ${describeFsError(error)}`,
      { cause: error },
    );
  }

  async read(path: string): Promise<Uint8Array | undefined> {
    try {
      return await Deno.readFile(this.#full(path));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined;
      this.#fail("read", path, error);
    }
  }

  async readRange(
    path: string,
    offset: number,
    length: number,
  ): Promise<Uint8Array> {
    try {
      let file = this.#open.get(path);
      if (!file) {
        file = await Deno.open(this.#full(path), { read: true });
        this.#open.set(path, file);
        if (this.#open.size > 8) {
          const [oldest, handle] = this.#open.entries().next().value!;
          handle.close();
          this.#open.delete(oldest);
        }
      }
      await file.seek(offset, Deno.SeekMode.Start);
      const bytes = new Uint8Array(length);
      let at = 0;
      while (at < length) {
        const n = await file.read(bytes.subarray(at));
        if (n === null) break;
        at += n;
      }
      if (at < length) {
        throw new RepoError(
          this.location,
          `Damaged repository: "${
            this.#full(path)
          }" is shorter than its index says (${offset + at} bytes, ${
            offset + length
          } expected)`,
        );
      }
      return bytes;
    } catch (error) {
      if (error instanceof RepoError) throw error;
      if (error instanceof Deno.errors.NotFound) {
        // Listed by the index, so a file that should be there.
        throw new RepoError(
          this.location,
          `Damaged repository: "${this.#full(path)}" is missing`,
          { cause: error },
        );
      }
      this.#fail("read", path, error);
    }
  }

  async write(
    path: string,
    bytes: Uint8Array,
    exclusive = false,
  ): Promise<void> {
    const full = this.#full(path);
    const dir = parentDir(full);
    const temp = `${dir}/.tmp-${crypto.randomUUID()}`;
    try {
      await makeDirs(dir);
      using file = await Deno.open(temp, { write: true, createNew: true });
      await writeAll(file, bytes);
      await file.sync();
    } catch (error) {
      await Deno.remove(temp).catch(() => {});
      this.#fail("write", path, error);
    }
    try {
      if (exclusive) {
        // link() fails when the name exists, where rename() would replace it.
        await Deno.link(temp, full);
        await Deno.remove(temp);
      } else {
        await Deno.rename(temp, full);
      }
      await syncDir(dir);
    } catch (error) {
      await Deno.remove(temp).catch(() => {});
      if (error instanceof Deno.errors.AlreadyExists) {
        throw new RepoError(this.location, `"${full}" already exists`, {
          cause: error,
        });
      }
      this.#fail("write", path, error);
    }
  }

  /** Visits every file under a folder (recursively); none when it is absent. */
  async #walk(
    rel: string,
    visit: (path: string, entry: Deno.DirEntry) => Promise<void>,
  ): Promise<void> {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(this.#full(rel)));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return;
      this.#fail("list", rel, error);
    }
    for (const entry of entries) {
      const path = `${rel}/${entry.name}`;
      if (entry.isDirectory) await this.#walk(path, visit);
      else await visit(path, entry);
    }
  }

  async list(folder: string): Promise<StoredFile[]> {
    const found: StoredFile[] = [];
    await this.#walk(folder, async (path, entry) => {
      if (!entry.isFile || isTemporary(path)) return;
      try {
        found.push({ path, size: (await Deno.stat(this.#full(path))).size });
      } catch (error) {
        // Removed since the directory was read (as a listing of a bucket
        // would not show it): not listed.
        if (!(error instanceof Deno.errors.NotFound)) {
          this.#fail("list", path, error);
        }
      }
    });
    return found;
  }

  async *readStream(path: string): AsyncIterable<Uint8Array> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(this.#full(path), { read: true });
    } catch (error) {
      this.#fail("read", path, error);
    }
    try {
      const buffer = new Uint8Array(1024 * 1024);
      for (;;) {
        const n = await file.read(buffer);
        if (n === null) break;
        yield buffer.subarray(0, n);
      }
    } finally {
      file.close();
    }
  }

  async removeTemporary(): Promise<number> {
    let removed = 0;
    await this.#walk(".", async (path, entry) => {
      if (!entry.isFile || !entry.name.startsWith(".tmp-")) return;
      await this.remove(path);
      removed++;
    });
    return removed;
  }

  /** Closes the files kept open for reading. */
  close(): void {
    for (const file of this.#open.values()) file.close();
    this.#open.clear();
  }

  async remove(path: string): Promise<void> {
    this.#open.get(path)?.close();
    this.#open.delete(path);
    try {
      await Deno.remove(this.#full(path));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return;
      this.#fail("remove", path, error);
    }
  }
}
