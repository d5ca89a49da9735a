/**
 * Packs: a repository keeps its blobs in files of about 16 MiB, each blob
 * compressed with zstd on its own (so one can be read by range; vectors are
 * stored as they are), followed by
 * the pack's own list of its blobs (zstd-compressed JSON, then its length as
 * four bytes, little-endian), so that an index can be rebuilt from the
 * packs alone. A pack is named by the SHA-256 of its bytes; a blob by the
 * SHA-256 of its content, checked each time it is read.
 *
 * @module
 */

import { createHash } from "node:crypto";
import zlib from "node:zlib";
import { RepoError } from "../errors.ts";
import type { BlobEntry, BlobType } from "./layout.ts";

/** A pack is written once its blobs reach this many bytes. */
export const PACK_TARGET = 16 * 1024 * 1024;

const ZSTD_LEVEL = 3;

/**
 * Whether a blob of this type is stored as it is: a vector's float32 bytes
 * gain 6 % from zstd (random mantissas), at a third of a backup's time
 * (77,000 compressor set-ups and runs for 38,664 memories).
 */
function stored(type: BlobType): boolean {
  return type === "vector";
}

/** SHA-256 of bytes, as hex. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** A pack being filled. */
export class PackWriter {
  /**
   * The compressed blobs, copied in one after another: zstd's output is a
   * view of a larger buffer, which kept thousands of those alive per pack.
   */
  #buffer = new Uint8Array(PACK_TARGET + 1024 * 1024);
  #size = 0;
  #blobs: BlobEntry[] = [];

  /** The compressed bytes so far. */
  get size(): number {
    return this.#size;
  }

  /** How many blobs it holds. */
  get count(): number {
    return this.#blobs.length;
  }

  /**
   * Adds a blob.
   *
   * @param id Its SHA-256 (of `raw`).
   * @param type What it holds.
   * @param raw Its content.
   */
  add(id: string, type: BlobType, raw: Uint8Array): void {
    const compressed = stored(type) ? raw : zlib.zstdCompressSync(raw, {
      params: { [zlib.constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL },
    });
    if (this.#size + compressed.byteLength > this.#buffer.length) {
      const grown = new Uint8Array(
        Math.max(this.#buffer.length * 2, this.#size + compressed.byteLength),
      );
      grown.set(this.#buffer.subarray(0, this.#size));
      this.#buffer = grown;
    }
    this.#buffer.set(compressed, this.#size);
    this.#blobs.push({
      id,
      type,
      offset: this.#size,
      length: compressed.byteLength,
      raw_length: raw.length,
    });
    this.#size += compressed.byteLength;
  }

  /**
   * The pack's bytes (blobs, then their list) and the list; empties the
   * writer.
   */
  finish(): { bytes: Uint8Array; blobs: BlobEntry[] } {
    const header = zlib.zstdCompressSync(
      new TextEncoder().encode(JSON.stringify({ blobs: this.#blobs })),
    );
    const length = new Uint8Array(4);
    new DataView(length.buffer).setUint32(0, header.byteLength, true);
    const bytes = new Uint8Array(this.#size + header.byteLength + 4);
    bytes.set(this.#buffer.subarray(0, this.#size));
    bytes.set(header, this.#size);
    bytes.set(length, this.#size + header.byteLength);
    const blobs = this.#blobs;
    this.#blobs = [];
    this.#size = 0;
    return { bytes, blobs };
  }
}

/**
 * A blob's content from its compressed bytes, checked against its id.
 *
 * @param entry Where it is and what it is.
 * @param compressed Its bytes in the pack.
 * @param where The pack, for messages.
 * @returns The content.
 * @throws {RepoError} When it does not decompress or its hash differs.
 */
export function openBlob(
  entry: BlobEntry,
  compressed: Uint8Array,
  where: string,
): Uint8Array {
  let raw: Uint8Array;
  try {
    if (stored(entry.type)) {
      raw = compressed;
    } else {
      const out = zlib.zstdDecompressSync(compressed);
      raw = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    }
  } catch (error) {
    throw new RepoError(
      where,
      `Damaged repository: blob ${
        entry.id.slice(0, 12)
      } in pack "${where}" does not decompress`,
      { cause: error },
    );
  }
  if (raw.length !== entry.raw_length || sha256Hex(raw) !== entry.id) {
    throw new RepoError(
      where,
      `Damaged repository: blob ${
        entry.id.slice(0, 12)
      } in pack "${where}" does not match its SHA-256`,
    );
  }
  return raw;
}

/**
 * Reads blobs from a pack as it streams in, checking each blob and, at the
 * end, the whole pack against its name: memory is the largest blob, not
 * the pack.
 *
 * @param stream The pack's bytes in chunks.
 * @param pack Its id (the SHA-256 of its bytes).
 * @param sorted The blobs to read, by offset.
 * @param fn Receives each blob's content (a view: copy what is kept).
 * @param location The repository, for errors.
 * @param where The pack, for messages.
 * @throws {RepoError} When a blob or the pack is damaged or short.
 */
export async function streamBlobs<P extends BlobEntry>(
  stream: AsyncIterable<Uint8Array>,
  pack: string,
  sorted: readonly P[],
  fn: (place: P, raw: Uint8Array) => void,
  location: string,
  where: string,
): Promise<void> {
  const hash = createHash("sha256");
  let held = new Uint8Array(0); // bytes from `start` on
  let start = 0;
  let next = 0;
  for await (const chunk of stream) {
    hash.update(chunk);
    const joined = new Uint8Array(held.length + chunk.length);
    joined.set(held);
    joined.set(chunk, held.length);
    held = joined;
    while (next < sorted.length) {
      const place = sorted[next]!;
      const end = place.offset + place.length;
      if (end > start + held.length) break;
      fn(
        place,
        openBlob(
          place,
          held.subarray(place.offset - start, end - start),
          where,
        ),
      );
      next++;
    }
    // Keep only what a blob still to come may need.
    const end = start + held.length;
    const keepFrom = next < sorted.length
      ? Math.min(Math.max(start, sorted[next]!.offset), end)
      : end;
    held = held.slice(keepFrom - start);
    start = keepFrom;
  }
  if (next < sorted.length) {
    throw new RepoError(
      location,
      `Damaged repository: pack "${where}" is shorter than its index says`,
    );
  }
  if (hash.digest("hex") !== pack) {
    throw new RepoError(
      location,
      `Damaged repository: pack "${where}" does not match its name (SHA-256)`,
    );
  }
}
