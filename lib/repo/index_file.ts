/**
 * An index file's content: which pack holds each blob it lists, and where.
 * Version 2 repositories write it in binary (before zstd and sealing):
 *
 * ```
 * "MKIX2\n"                                        6 bytes
 * packs                                            u32
 * per pack:  id (32 bytes), size u32, blobs u32
 *   per blob: id (32 bytes), type u8, offset u32, length u32, raw_length u32, at i32 (−1: none)
 * ```
 *
 * little-endian: 49 bytes a blob, read straight into the index in memory
 * with no text or object per blob (a JSON index of 230,000 blobs held 100
 * MB more at its peak while it was parsed). Version 1 repositories keep
 * the JSON of {@linkcode IndexSchema}, which is still read.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import {
  BLOB_TYPES,
  type BlobEntry,
  type BlobType,
  type IndexFile,
  IndexSchema,
} from "./layout.ts";

const MAGIC = new TextEncoder().encode("MKIX2\n");
const PACK_HEAD = 40;
const BLOB = 49;

/** Where {@linkcode decodeIndex} puts the blobs it reads. */
export interface BlobSink {
  /** A blob with its pack. */
  set(pack: string, blob: BlobEntry): void;
  /**
   * The same from the binary form, with no object or hex id made (the
   * index in memory); `at` is −1 for a blob not in a frame.
   */
  setRaw?(
    pack: string,
    hash: Uint8Array,
    type: BlobType,
    offset: number,
    length: number,
    raw: number,
    at: number,
  ): void;
}

/**
 * The binary form of an index file.
 *
 * @param packs The packs and their blobs.
 * @returns The bytes (to compress and seal).
 */
export function encodeIndex(packs: IndexFile["packs"]): Uint8Array {
  const blobs = packs.reduce((n, p) => n + p.blobs.length, 0);
  const out = Buffer.alloc(
    MAGIC.length + 4 + packs.length * PACK_HEAD +
      blobs * BLOB,
  );
  out.set(MAGIC);
  let at = MAGIC.length;
  out.writeUInt32LE(packs.length, at);
  at += 4;
  for (const pack of packs) {
    out.write(pack.id, at, "hex");
    out.writeUInt32LE(pack.size, at + 32);
    out.writeUInt32LE(pack.blobs.length, at + 36);
    at += PACK_HEAD;
    for (const blob of pack.blobs) {
      out.write(blob.id, at, "hex");
      out.writeUInt8(BLOB_TYPES.indexOf(blob.type), at + 32);
      out.writeUInt32LE(blob.offset, at + 33);
      out.writeUInt32LE(blob.length, at + 37);
      out.writeUInt32LE(blob.raw_length, at + 41);
      out.writeInt32LE(blob.at ?? -1, at + 45);
      at += BLOB;
    }
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * Reads an index file's content, binary or JSON, blob by blob.
 *
 * @param bytes The content (decompressed, opened).
 * @param sink Receives each blob with its pack (some, when the file turns
 * out damaged: the caller then refuses the repository).
 * @returns Whether it could be read (false: damaged).
 */
export function decodeIndex(
  bytes: Uint8Array,
  sink: BlobSink,
): boolean {
  const isBinary = bytes.length >= MAGIC.length &&
    MAGIC.every((b, i) => bytes[i] === b);
  if (!isBinary) return decodeJson(bytes, (pack, blob) => sink.set(pack, blob));
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = MAGIC.length;
  if (buf.length < at + 4) return false;
  const packs = buf.readUInt32LE(at);
  at += 4;
  for (let p = 0; p < packs; p++) {
    if (buf.length < at + PACK_HEAD) return false;
    const pack = buf.toString("hex", at, at + 32);
    const count = buf.readUInt32LE(at + 36);
    at += PACK_HEAD;
    if (buf.length < at + count * BLOB) return false;
    for (let b = 0; b < count; b++, at += BLOB) {
      const type = BLOB_TYPES[buf.readUInt8(at + 32)];
      const length = buf.readUInt32LE(at + 37);
      const frame = buf.readInt32LE(at + 45);
      if (type === undefined || length === 0 || frame < -1) return false;
      if (sink.setRaw) {
        sink.setRaw(
          pack,
          bytes.subarray(at, at + 32),
          type,
          buf.readUInt32LE(at + 33),
          length,
          buf.readUInt32LE(at + 41),
          frame,
        );
        continue;
      }
      sink.set(pack, {
        id: buf.toString("hex", at, at + 32),
        type,
        offset: buf.readUInt32LE(at + 33),
        length,
        raw_length: buf.readUInt32LE(at + 41),
        ...(frame === -1 ? {} : { at: frame }),
      });
    }
  }
  return at === buf.length;
}

function decodeJson(
  bytes: Uint8Array,
  onBlob: (pack: string, blob: BlobEntry) => void,
): boolean {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return false;
  }
  const index = IndexSchema.safeParse(parsed);
  if (!index.success) return false;
  for (const pack of index.data.packs) {
    for (const blob of pack.blobs) onBlob(pack.id, blob);
  }
  return true;
}
