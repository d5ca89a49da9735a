/**
 * An open repository: its config, the index of every blob it holds, and
 * the writes of one backup (blobs into packs, then one index file, then the
 * snapshot), in that order, so that a killed backup leaves packs no index
 * names (ignored, and removed by prune) and never a snapshot whose data is
 * missing.
 *
 * Longer than 400 lines: one class, whose reads and writes share its
 * private state (the index, the pack being filled, the pack and frame last
 * read).
 *
 * @module
 */

import zlib from "node:zlib";
import { RepoError, UsageError } from "../errors.ts";
import type { Keys } from "../format/encryption.ts";
import { ageSealer, PLAIN, type Sealer } from "./seal.ts";
import { BlobIndex, type BlobPlace } from "./blob_index.ts";
import { decodeIndex, encodeIndex } from "./index_file.ts";
import { readConfig } from "./config.ts";
import {
  type BlobType,
  INDEX,
  type IndexFile,
  indexPath,
  packPath,
  type RepoConfig,
  SHA256_HEX,
} from "./layout.ts";
import {
  FrameCache,
  openBlob,
  PACK_TARGET,
  PackWriter,
  sha256Hex,
  streamBlobs,
} from "./pack.ts";
import type { RepoStorage } from "./storage.ts";

export type { BlobPlace } from "./blob_index.ts";

/** What one backup added. */
export interface WriteTotals {
  /** Bytes of packs and index written. */
  bytes: number;
  /** Blobs added. */
  blobs: number;
  /** The packs written. */
  packs: IndexFile["packs"];
}

/** The most blobs an index file lists (but for one pack holding more). */
export const INDEX_FILE_BLOBS = 16_384;

/** An index file's bytes, zstd both ways. */
const inflate = (bytes: Uint8Array) => {
  const out = zlib.zstdDecompressSync(bytes);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
};
const deflate = (bytes: Uint8Array) =>
  new Uint8Array(zlib.zstdCompressSync(bytes));

/** A repository, opened. */
export class Repository {
  readonly #blobs = new BlobIndex();
  #pack: PackWriter;
  #pending = new Set<string>();
  /** The packs this backup wrote since the last commit. */
  #written: IndexFile["packs"] = [];

  /**
   * The last pack read whole (an encrypted pack cannot be read by range,
   * and in a bucket each range would be a request).
   */
  #cached: { id: string; bytes: Uint8Array } | undefined;
  /** The frame of records last decompressed. */
  #frames = new FrameCache();

  private constructor(
    readonly storage: RepoStorage,
    readonly config: RepoConfig,
    readonly sealer: Sealer,
  ) {
    // A version 1 repository stays readable by the memkeep that made it.
    this.#pack = new PackWriter(config.repository_version >= 2);
  }

  /**
   * Opens a repository, creating it when `create` is set and there is
   * none.
   *
   * @param storage Where it is.
   * @param options `create`: make a new one when the location is empty,
   * encrypted to `recipients` when given; `keys` open an encrypted one;
   * `structure`: an encrypted one without a key is opened without its
   * index (for a check of its files' names); `index: false` skips the
   * index (for a listing of its snapshots: no blob can then be read).
   * @returns The repository, its index loaded.
   * @throws {RepoError} When there is none (and `create` is not set), or
   * its config is not a memkeep repository of a version this one reads.
   * @throws {UsageError} When it is encrypted and no key is given, or
   * `recipients` are given for a repository created without them.
   */
  static async open(
    storage: RepoStorage,
    options: {
      create?: boolean;
      recipients?: readonly string[] | undefined;
      keys?: Keys | undefined;
      structure?: boolean;
      index?: boolean;
    } = {},
  ): Promise<Repository> {
    const where = storage.location;
    const config = await readConfig(storage, options);
    const recipients = config.recipients;
    if (options.recipients?.length && !recipients) {
      throw new UsageError(
        "AGE_RECIPIENTS",
        `Invalid AGE_RECIPIENTS: repository ${where} was created without encryption, and stays so; back up into a new repository to encrypt`,
      );
    }
    const sealer = recipients
      ? ageSealer(recipients, options.keys, where)
      : PLAIN;
    const repo = new Repository(storage, config, sealer);
    if (
      options.index !== false &&
      !(options.structure && recipients && !options.keys)
    ) {
      await repo.#loadIndex();
    }
    return repo;
  }

  async #loadIndex(): Promise<void> {
    for (const file of await this.storage.list(INDEX)) {
      const where = `${this.storage.location}/${file.path}`;
      const bytes = await this.readFile(file.path, "index file");
      let read = false;
      try {
        read = decodeIndex(inflate(bytes), this.#blobs);
      } catch {
        read = false;
      }
      if (!read) {
        throw new RepoError(
          this.storage.location,
          `Damaged repository: index file "${where}" cannot be read`,
        );
      }
    }
  }

  /**
   * A file named by the SHA-256 of its stored bytes, checked and opened.
   *
   * @param path Its path.
   * @param what What it is, for messages (`index file`).
   * @returns Its content.
   * @throws {RepoError} When it is missing or does not match its name.
   */
  async readFile(path: string, what: string): Promise<Uint8Array> {
    const where = `${this.storage.location}/${path}`;
    const bytes = await this.storage.read(path);
    const name = path.slice(path.lastIndexOf("/") + 1);
    if (!bytes || sha256Hex(bytes) !== name) {
      throw new RepoError(
        this.storage.location,
        `Damaged repository: ${what} "${where}" ${
          bytes ? "does not match its name (SHA-256)" : "is missing"
        }`,
      );
    }
    return await this.sealer.open(bytes, where);
  }

  /**
   * Stores a file under the SHA-256 of its stored (sealed) bytes.
   *
   * @param name The path for an id, e.g. {@linkcode indexPath}.
   * @param bytes Its content.
   * @returns Its id and stored size.
   */
  async writeFile(
    name: (id: string) => string,
    bytes: Uint8Array,
  ): Promise<{ id: string; size: number }> {
    const sealed = await this.sealer.seal(bytes);
    const id = sha256Hex(sealed);
    await this.storage.write(name(id), sealed);
    return { id, size: sealed.length };
  }

  /**
   * Writes index files listing `packs`, each of at most
   * {@linkcode INDEX_FILE_BLOBS} blobs (or one pack), so that reading one
   * back holds a bounded part of the index as text and objects at a time.
   */
  async #writeIndex(
    packs: IndexFile["packs"],
  ): Promise<{ paths: Set<string>; bytes: number }> {
    const paths = new Set<string>();
    let bytes = 0;
    let group: IndexFile["packs"] = [];
    let blobs = 0;
    const flush = async () => {
      if (group.length === 0) return;
      // A version 1 repository stays readable by the memkeep that made it.
      const text = deflate(
        this.config.repository_version >= 2
          ? encodeIndex(group)
          : new TextEncoder().encode(
            JSON.stringify({ packs: group } satisfies IndexFile),
          ),
      );
      const { id, size } = await this.writeFile(indexPath, text);
      paths.add(indexPath(id));
      bytes += size;
      group = [];
      blobs = 0;
    };
    for (const pack of packs) {
      if (blobs > 0 && blobs + pack.blobs.length > INDEX_FILE_BLOBS) {
        await flush();
      }
      group.push(pack);
      blobs += pack.blobs.length;
    }
    await flush();
    return { paths, bytes };
  }

  /** Whether the repository (or this backup so far) holds a blob. */
  has(id: string): boolean {
    return this.#blobs.has(id) || this.#pending.has(id);
  }

  /** Every blob the index lists. */
  blobs(): IterableIterator<BlobPlace> {
    return this.#blobs.values();
  }

  /** Where the index says a blob is, if it lists it. */
  place(id: string): BlobPlace | undefined {
    return this.#blobs.get(id);
  }

  /**
   * Replaces every index file by one that lists `packs` (and what this
   * repository wrote since it was opened): the new file is written first,
   * so that a crash leaves both, never neither.
   *
   * @param packs The packs that stay, with their blobs.
   * @returns The bytes of the new index file.
   */
  async rewriteIndex(packs: IndexFile["packs"]): Promise<number> {
    const old = await this.storage.list(INDEX);
    const { paths, bytes: size } = await this.#writeIndex(packs);
    for (const file of old) {
      if (!paths.has(file.path)) await this.storage.remove(file.path);
    }
    this.#blobs.clear();
    for (const pack of packs) {
      for (const blob of pack.blobs) {
        this.#blobs.set(pack.id, blob);
      }
    }
    return size;
  }

  /**
   * Adds a blob unless the repository holds it already.
   *
   * @param type What it holds.
   * @param raw Its content.
   * @param again Write it even when a pack holds it (a repack).
   * @returns Its id.
   */
  async add(type: BlobType, raw: Uint8Array, again = false): Promise<string> {
    const id = sha256Hex(raw);
    if (this.#pending.has(id) || (!again && this.#blobs.has(id))) return id;
    this.#pending.add(id);
    this.#pack.add(id, type, raw);
    if (this.#pack.size >= PACK_TARGET) await this.#flushPack();
    return id;
  }

  async #flushPack(): Promise<void> {
    if (this.#pack.count === 0) return;
    const { bytes, blobs } = this.#pack.finish();
    const { id, size } = await this.writeFile(packPath, bytes);
    this.#written.push({ id, size, blobs });
  }

  /**
   * Writes the last pack and the index file naming this backup's packs:
   * after this, the blobs added are part of the repository.
   *
   * @returns What this backup added.
   */
  async commit(): Promise<WriteTotals> {
    await this.#flushPack();
    const packs = this.#written;
    let bytes = packs.reduce((n, p) => n + p.size, 0);
    if (packs.length > 0) {
      bytes += (await this.#writeIndex(packs)).bytes;
      for (const pack of packs) {
        for (const blob of pack.blobs) {
          this.#blobs.set(pack.id, blob);
        }
      }
    }
    this.#written = [];
    this.#pending.clear();
    return {
      bytes,
      blobs: packs.reduce((n, p) => n + p.blobs.length, 0),
      packs,
    };
  }

  /**
   * Reads some blobs of one pack in one pass over it, checking each blob
   * and the pack against its name: a plain pack is streamed (memory: the
   * largest blob), an encrypted one read whole.
   *
   * @param pack The pack.
   * @param places Its blobs to read.
   * @param fn Receives each blob's content (a view: copy what is kept).
   * @throws {RepoError} When the pack or a blob is damaged.
   */
  async eachBlob(
    pack: string,
    places: readonly BlobPlace[],
    fn: (place: BlobPlace, raw: Uint8Array) => void,
  ): Promise<void> {
    const path = packPath(pack);
    const where = `${this.storage.location}/${path}`;
    const sorted = [...places].sort((a, b) => a.offset - b.offset);
    const stream = this.sealer.encrypted
      ? undefined
      : this.storage.readStream?.(path);
    if (!stream) {
      const bytes = await this.readFile(path, "pack");
      const frames = new FrameCache();
      for (const place of sorted) {
        if (place.offset + place.length > bytes.length) {
          throw new RepoError(
            this.storage.location,
            `Damaged repository: pack "${where}" is shorter than its index says`,
          );
        }
        fn(
          place,
          openBlob(
            place,
            bytes.subarray(place.offset, place.offset + place.length),
            where,
            frames,
          ),
        );
      }
      return;
    }
    await streamBlobs(stream, pack, sorted, fn, this.storage.location, where);
  }

  /**
   * Runs a read of many blobs, then lets go of the files it kept open.
   *
   * @param fn The reads.
   * @returns What `fn` returns.
   */
  async reading<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } finally {
      this.storage.close?.();
      this.#cached = undefined;
      this.#frames = new FrameCache();
    }
  }

  /**
   * A blob's content, checked against its id.
   *
   * @param id The blob.
   * @returns Its content.
   * @throws {RepoError} When the index does not list it, or its pack is
   * missing or damaged.
   */
  async read(id: string): Promise<Uint8Array> {
    const place = this.#blobs.get(id);
    if (!place || !SHA256_HEX.test(id)) {
      throw new RepoError(
        this.storage.location,
        `Damaged repository: blob ${
          id.slice(0, 12)
        } is not in the index of "${this.storage.location}"`,
      );
    }
    const path = packPath(place.pack);
    const where = `${this.storage.location}/${path}`;
    if (place.at !== undefined && this.#frames.get(where, place.offset)) {
      return openBlob(place, undefined, where, this.#frames);
    }
    if (!this.sealer.encrypted && this.storage.cheapRanges) {
      const compressed = await this.storage.readRange(
        path,
        place.offset,
        place.length,
      );
      return openBlob(place, compressed, where, this.#frames);
    }
    if (this.#cached?.id !== place.pack) {
      this.#cached = {
        id: place.pack,
        bytes: await this.readFile(path, "pack"),
      };
    }
    const bytes = this.#cached.bytes;
    if (place.offset + place.length > bytes.length) {
      throw new RepoError(
        this.storage.location,
        `Damaged repository: pack "${where}" is shorter than its index says`,
      );
    }
    return openBlob(
      place,
      bytes.subarray(place.offset, place.offset + place.length),
      where,
      this.#frames,
    );
  }
}
