/**
 * Packs: a repository keeps its blobs in files of about 16 MiB: vectors as
 * they are, records compressed with zstd together in frames of about 64
 * KiB (a record alone compresses to 76 % of its size, 38,664 of them in
 * frames to 23 %: they share their keys and values), trees and file chunks
 * compressed on their own; each can be read by range (a record with its
 * frame). Then
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

/** A frame of records is compressed once it holds this many bytes. */
export const FRAME_TARGET = 64 * 1024;

const compress = (raw: Uint8Array) =>
  zlib.zstdCompressSync(raw, {
    params: { [zlib.constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL },
  });

/** Whether a blob of this type goes into frames (repository version 2). */
function framed(type: BlobType): boolean {
  return type === "record";
}

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
  /** The records of the frame being filled (repository version 2). */
  #frame: { id: string; type: BlobType; raw: Uint8Array }[] = [];
  #frameBytes = 0;

  /**
   * @param frames Compress records together in frames (repository
   * version 2); otherwise each on its own.
   */
  constructor(readonly frames: boolean) {}

  /** The bytes so far (a frame being filled counted uncompressed). */
  get size(): number {
    return this.#size + this.#frameBytes;
  }

  /** How many blobs it holds. */
  get count(): number {
    return this.#blobs.length + this.#frame.length;
  }

  /**
   * Adds a blob.
   *
   * @param id Its SHA-256 (of `raw`).
   * @param type What it holds.
   * @param raw Its content.
   */
  add(id: string, type: BlobType, raw: Uint8Array): void {
    if (this.frames && framed(type)) {
      this.#frame.push({ id, type, raw: raw.slice() });
      this.#frameBytes += raw.length;
      if (this.#frameBytes >= FRAME_TARGET) this.#flushFrame();
      return;
    }
    const compressed = stored(type) ? raw : compress(raw);
    const offset = this.#append(compressed);
    this.#blobs.push({
      id,
      type,
      offset,
      length: compressed.byteLength,
      raw_length: raw.length,
    });
  }

  /** Compresses the frame being filled and lists its records. */
  #flushFrame(): void {
    if (this.#frame.length === 0) return;
    const raw = new Uint8Array(this.#frameBytes);
    let at = 0;
    for (const blob of this.#frame) {
      raw.set(blob.raw, at);
      at += blob.raw.length;
    }
    const compressed = compress(raw);
    const offset = this.#append(compressed);
    at = 0;
    for (const blob of this.#frame) {
      this.#blobs.push({
        id: blob.id,
        type: blob.type,
        offset,
        length: compressed.byteLength,
        raw_length: blob.raw.length,
        at,
      });
      at += blob.raw.length;
    }
    this.#frame = [];
    this.#frameBytes = 0;
  }

  /** Copies bytes in; returns where they start. */
  #append(compressed: Uint8Array): number {
    if (this.#size + compressed.byteLength > this.#buffer.length) {
      const grown = new Uint8Array(
        Math.max(this.#buffer.length * 2, this.#size + compressed.byteLength),
      );
      grown.set(this.#buffer.subarray(0, this.#size));
      this.#buffer = grown;
    }
    const offset = this.#size;
    this.#buffer.set(compressed, offset);
    this.#size += compressed.byteLength;
    return offset;
  }

  /**
   * The pack's bytes (blobs, then their list) and the list; empties the
   * writer. The bytes are a view of its buffer, valid until the next
   * {@linkcode PackWriter.add}.
   */
  finish(): { bytes: Uint8Array; blobs: BlobEntry[] } {
    this.#flushFrame();
    const header = zlib.zstdCompressSync(
      new TextEncoder().encode(JSON.stringify({ blobs: this.#blobs })),
    );
    const length = new Uint8Array(4);
    new DataView(length.buffer).setUint32(0, header.byteLength, true);
    const end = this.#append(header) + header.byteLength;
    this.#append(length);
    // A view of the buffer, not a copy of 16 MiB: the caller writes it
    // before the next blob is added.
    const bytes = this.#buffer.subarray(0, end + 4);
    const blobs = this.#blobs;
    this.#blobs = [];
    this.#size = 0;
    return { bytes, blobs };
  }
}

/**
 * The last frame decompressed, so that the records of one frame, read one
 * after another, decompress it once. Keyed by the pack (named by its
 * hash, so never reused for other bytes) and the frame's offset.
 */
export class FrameCache {
  #key = "";
  #raw: Uint8Array | undefined;

  /** The frame at `offset` in `pack`, when it is the last one opened. */
  get(pack: string, offset: number): Uint8Array | undefined {
    return this.#key === `${pack}@${offset}` ? this.#raw : undefined;
  }

  set(pack: string, offset: number, raw: Uint8Array): void {
    this.#key = `${pack}@${offset}`;
    this.#raw = raw;
  }
}

/**
 * A blob's content from its compressed bytes (or its frame's), checked
 * against its id.
 *
 * @param entry Where it is and what it is.
 * @param compressed Its bytes in the pack (its frame's, for a record in a
 * frame); not read when `frames` holds the frame.
 * @param where The pack, for messages.
 * @param frames The frame last decompressed.
 * @returns The content.
 * @throws {RepoError} When it does not decompress or its hash differs.
 */
export function openBlob(
  entry: BlobEntry,
  compressed: Uint8Array | undefined,
  where: string,
  frames?: FrameCache,
): Uint8Array {
  let raw: Uint8Array;
  try {
    if (entry.at !== undefined) {
      let frame = frames?.get(where, entry.offset);
      if (!frame) {
        const out = zlib.zstdDecompressSync(compressed!);
        frame = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
        frames?.set(where, entry.offset, frame);
      }
      raw = frame.subarray(entry.at, entry.at + entry.raw_length);
    } else if (stored(entry.type)) {
      raw = compressed!;
    } else {
      const out = zlib.zstdDecompressSync(compressed!);
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
 * @param fn Receives each blob's content (a view, valid during the call:
 * copy what is kept).
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
  const frames = new FrameCache();
  // One buffer for the bytes still needed, from `start` on: a chunk is
  // copied in and what no blob to come needs is dropped by moving the rest
  // to the front, so reading a pack allocates nothing a chunk (a new
  // buffer a chunk made 16 MiB of garbage a pack, held until V8 collected).
  let buffer = new Uint8Array(2 * 1024 * 1024);
  let used = 0;
  let start = 0;
  let next = 0;
  for await (const chunk of stream) {
    hash.update(chunk);
    if (used + chunk.length > buffer.length) {
      const grown = new Uint8Array(
        Math.max(buffer.length * 2, used + chunk.length),
      );
      grown.set(buffer.subarray(0, used));
      buffer = grown;
    }
    buffer.set(chunk, used);
    used += chunk.length;
    while (next < sorted.length) {
      const place = sorted[next]!;
      const end = place.offset + place.length;
      if (end > start + used) break;
      fn(
        place,
        openBlob(
          place,
          buffer.subarray(place.offset - start, end - start),
          where,
          frames,
        ),
      );
      next++;
    }
    // Keep only what a blob still to come may need.
    const end = start + used;
    const keepFrom = next < sorted.length
      ? Math.min(Math.max(start, sorted[next]!.offset), end)
      : end;
    buffer.copyWithin(0, keepFrom - start, used);
    used -= keepFrom - start;
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
