/**
 * SHA-256 checksums: a buffered file writer that hashes while it writes (one
 * pass over the data), file hashing, and `checksums.json` + `SHA256SUMS`.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { CHECKSUMS_FILE, SUMS_FILE } from "./layout.ts";
import type { Checksums } from "./records.ts";
import { PieceEncoder } from "../util/pieces.ts";
import { writeAll } from "../util/fs.ts";

/** SHA-256 and size of one file. */
export interface FileDigest {
  /** Lowercase hex SHA-256. */
  readonly sha256: string;
  /** Size in bytes. */
  readonly bytes: number;
}

/** A text file being written and hashed. */
export interface HashingWriter {
  /**
   * Queues text (a string, or pieces of it, each encoded on its own); it
   * reaches the file in writes of about 128 KiB.
   */
  write(text: string | readonly string[]): Promise<void>;
  /** Writes bytes (after any queued text). */
  writeBytes(bytes: Uint8Array): Promise<void>;
  /** Flushes, syncs to disk, closes, and returns the digest. */
  close(): Promise<FileDigest>;
  /** Closes without syncing, after a failure. */
  abort(): void;
}

const FLUSH_AT = 128 * 1024;
const encoder = new TextEncoder();

/**
 * Creates a file (it must not exist) and returns a writer that hashes every
 * byte it writes.
 *
 * @param path The new file.
 * @param options `onWrite` is called after each write reaches the file.
 * @returns The writer.
 */
export async function createHashingWriter(
  path: string,
  options: { onWrite?: (() => void) | undefined } = {},
): Promise<HashingWriter> {
  const file = await Deno.open(path, { write: true, createNew: true });
  const hash = createHash("sha256");
  let bytes = 0;
  const write = async (data: Uint8Array) => {
    hash.update(data);
    bytes += data.length;
    await writeAll(file, data);
    options.onWrite?.();
  };
  const queued = new PieceEncoder();
  // A flush finishes before the next begins, as the encoder's buffer needs.
  const flush = async () => {
    if (queued.chars === 0) return;
    await write(queued.take());
  };
  return {
    async write(text: string | readonly string[]) {
      if (typeof text === "string") queued.add(text);
      else for (const piece of text) queued.add(piece);
      if (queued.chars >= FLUSH_AT) await flush();
    },
    async writeBytes(data: Uint8Array) {
      await flush();
      await write(data);
    },
    async close() {
      try {
        await flush();
        await file.sync();
      } finally {
        file.close();
      }
      return { sha256: hash.digest("hex"), bytes };
    },
    abort() {
      try {
        file.close();
      } catch {
        // already closed
      }
    },
  };
}

/**
 * Hashes a stream of bytes.
 *
 * @param chunks The bytes.
 * @returns Their SHA-256 and size.
 */
export async function hashChunks(
  chunks: AsyncIterable<Uint8Array>,
): Promise<FileDigest> {
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of chunks) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { sha256: hash.digest("hex"), bytes };
}

/**
 * Passes chunks through while hashing them: `digest()` is the SHA-256 and
 * size of everything passed so far.
 *
 * @param chunks The bytes.
 * @param options `hashRest`: when the reader stops early, hash the rest
 * too (so a checksum can still be compared after a syntax error).
 * @returns The chunks, the bytes so far, and (once they are all through)
 * their digest.
 */
export function hashing(
  chunks: AsyncIterator<Uint8Array>,
  options: { hashRest?: boolean } = {},
): {
  chunks: AsyncGenerator<Uint8Array>;
  bytes(): number;
  digest(): FileDigest;
} {
  const hash = createHash("sha256");
  let bytes = 0;
  const take = (chunk: Uint8Array) => {
    hash.update(chunk);
    bytes += chunk.length;
    return chunk;
  };
  let digest: FileDigest | undefined;
  return {
    chunks: (async function* () {
      try {
        while (true) {
          const next = await chunks.next();
          if (next.done) return;
          yield take(next.value);
        }
      } finally {
        while (options.hashRest) {
          const next = await chunks.next();
          if (next.done) break;
          take(next.value);
        }
      }
    })(),
    bytes: () => bytes,
    digest: () => digest ??= { sha256: hash.digest("hex"), bytes },
  };
}

/**
 * Hashes a file, reading it as a stream.
 *
 * @param path The file.
 * @returns Its SHA-256 and size.
 */
export async function hashFile(path: string): Promise<FileDigest> {
  using file = await Deno.open(path, { read: true });
  return await hashChunks(file.readable);
}

/**
 * The `SHA256SUMS` text for a set of files, sorted by name, in the format
 * `sha256sum -c` reads.
 *
 * @param files File name → digest.
 * @returns The file's text.
 */
export function sumsText(files: Record<string, FileDigest>): string {
  return Object.keys(files).sort().map((name) =>
    `${files[name]!.sha256}  ${name}\n`
  ).join("");
}

/**
 * The SHA-256 of a string's UTF-8 bytes.
 *
 * @param text The text.
 * @returns Lowercase hex.
 */
export function sha256Text(text: string): string {
  return createHash("sha256").update(encoder.encode(text)).digest("hex");
}

/**
 * Writes `checksums.json` and `SHA256SUMS` into a directory. The combined
 * checksum is the SHA-256 of `SHA256SUMS`, so `sha256sum SHA256SUMS` shows it.
 *
 * @param dir The backup directory.
 * @param files Every other file's digest.
 * @returns What was written to `checksums.json`.
 */
export async function writeChecksums(
  dir: string,
  files: Record<string, FileDigest>,
): Promise<Checksums> {
  const sums = sumsText(files);
  const sorted: Record<string, FileDigest> = {};
  for (const name of Object.keys(files).sort()) sorted[name] = files[name]!;
  const checksums: Checksums = {
    algorithm: "sha256",
    files: sorted,
    combined: sha256Text(sums),
  };
  await writeTextDurably(`${dir}/${SUMS_FILE}`, sums);
  await writeTextDurably(
    `${dir}/${CHECKSUMS_FILE}`,
    JSON.stringify(checksums, null, 2) + "\n",
  );
  return checksums;
}

/**
 * Writes a new small text file and syncs it to disk.
 *
 * @param path The new file; must not exist.
 * @param text Its content.
 * @returns The file's digest.
 */
export async function writeTextDurably(
  path: string,
  text: string,
): Promise<FileDigest> {
  const writer = await createHashingWriter(path);
  try {
    await writer.write(text);
    return await writer.close();
  } catch (error) {
    writer.abort();
    throw error;
  }
}
