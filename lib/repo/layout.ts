/**
 * What a deduplicated repository is on disk (or in a bucket), with no I/O:
 *
 * | path | what it holds |
 * |---|---|
 * | `config.json` | `{"tool": "memkeep", "repository_version": 1, "id", "created_at"}` |
 * | `packs/<2 hex>/<sha256>` | blobs: vectors as they are, records in zstd frames of about 64 KiB, trees and file chunks compressed on their own; then the pack's own list of them |
 * | `index/<sha256>` | which pack holds each blob, at which offset (files of at most 16,384 blobs; binary in version 2, see `index_file.ts`) |
 * | `snapshots/<sha256>` | one backup: its name, metadata, counts and the tree blobs that list its memories |
 * | `locks/<random>` | who is writing (backup) or deleting (prune), and since when |
 *
 * Every file but `config.json` and the locks is immutable and named by the
 * SHA-256 of its bytes, so a copy can be checked without reading the
 * blobs. A blob is named by the SHA-256 of its content: a memory's vector
 * (float32, little-endian), a memory's record without its vector (JSON), a
 * tree (the memories of a snapshot, 1,024 at a time), or a 64 KiB chunk of
 * the relationship copy.
 *
 * @module
 */

import { z } from "zod";

/**
 * The repository format this version writes. Version 2 compresses records
 * together in frames ({@linkcode BlobEntrySchema} `at`); version 1 (every
 * blob on its own) is still read, and written to as version 1.
 */
export const REPOSITORY_VERSION = 2;
/** The versions this one reads. */
export const RepositoryVersionSchema = z.union([z.literal(1), z.literal(2)]);
/** The repository's settings file. */
export const CONFIG_FILE = "config.json";
/** The folders of a repository. */
export const PACKS = "packs";
export const INDEX = "index";
export const SNAPSHOTS = "snapshots";
export const LOCKS = "locks";

/** A SHA-256 as 64 lowercase hex digits. */
export const SHA256_HEX = /^[0-9a-f]{64}$/;

/** What a blob holds. */
export const BLOB_TYPES = ["vector", "record", "tree", "file"] as const;
/** A blob type. */
export type BlobType = typeof BLOB_TYPES[number];

/** `config.json`. */
export const ConfigSchema = z.object({
  tool: z.literal("memkeep"),
  repository_version: RepositoryVersionSchema,
  /** Random, to tell repositories apart. */
  id: z.string().regex(/^[0-9a-f]{32}$/),
  created_at: z.string(),
  /** Public keys every file but this one and the locks is encrypted to. */
  recipients: z.array(z.string()).optional(),
}).strict();

/** The parsed `config.json`. */
export type RepoConfig = z.infer<typeof ConfigSchema>;

/** One blob as a pack and the index list it. */
export const BlobEntrySchema = z.object({
  id: z.string().regex(SHA256_HEX),
  type: z.enum(BLOB_TYPES),
  /** Where its compressed bytes (or its frame's) start in the (decrypted) pack. */
  offset: z.number().int().nonnegative(),
  /** The compressed length (of the blob, or of its frame). */
  length: z.number().int().positive(),
  /** The length once decompressed. */
  raw_length: z.number().int().nonnegative(),
  /**
   * In a frame (records, compressed together): where the blob starts in
   * the decompressed frame. Absent: the blob is compressed on its own.
   */
  at: z.number().int().nonnegative().optional(),
}).strict();

/** A blob's place. */
export type BlobEntry = z.infer<typeof BlobEntrySchema>;

/** An index file: packs and their blobs (the JSON of version 1). */
export const IndexSchema = z.object({
  packs: z.array(
    z.object({
      id: z.string().regex(SHA256_HEX),
      /** The pack file's size as stored. */
      size: z.number().int().positive(),
      blobs: z.array(BlobEntrySchema),
    }).strict(),
  ),
}).strict();

/** A parsed index file. */
export type IndexFile = z.infer<typeof IndexSchema>;

/** The path of a pack. */
export function packPath(id: string): string {
  return `${PACKS}/${id.slice(0, 2)}/${id}`;
}

/** The path of an index file. */
export function indexPath(id: string): string {
  return `${INDEX}/${id}`;
}

/** The path of a snapshot. */
export function snapshotPath(id: string): string {
  return `${SNAPSHOTS}/${id}`;
}
