/**
 * A snapshot and the blobs it is made of. A memory is two blobs: its vector
 * as float32 (little-endian, as `vector_send` gives it but for the byte
 * order) and its record without the vector (one line of JSON, exactly as
 * `export.json` holds it otherwise). A tree blob lists up to 1,024 memories
 * in the order the store returned them, 65 bytes each: the record's id, the
 * vector's id (zeros when the record has none) and the place of
 * `embedding` among the record's fields. A snapshot file names its trees,
 * the chunks of its relationship copy and the backup's metadata.
 *
 * @module
 */

import { z } from "zod";
import { objectFields } from "../format/json/scan.ts";
import { BackupMetadataSchema, type RawRecord } from "../format/records.ts";
import {
  type Float32Memory,
  float32Memory,
  NO_VECTOR,
} from "../format/source.ts";
import { BACKUP_NAME, RELATIONSHIPS_COPY_FILE } from "../format/layout.ts";
import { float32Of, vectorText } from "../format/float32_text.ts";
import { RepositoryVersionSchema, SHA256_HEX } from "./layout.ts";

/** Memories per tree blob. */
export const TREE_SIZE = 1024;
/** Bytes of the relationship copy per file blob. */
export const FILE_CHUNK = 64 * 1024;

const ENTRY = 65;
const sha = z.string().regex(SHA256_HEX);

/** A snapshot file. */
export const SnapshotSchema = z.object({
  tool: z.literal("memkeep"),
  repository_version: RepositoryVersionSchema,
  name: z.string().regex(BACKUP_NAME, "must be memory_YYYYMMDD_HHMMSS"),
  /** What `metadata.json` of the same backup would say. */
  metadata: BackupMetadataSchema,
  trees: z.array(sha),
  /** The relationship copy (`relationships.db`), or `null`. */
  relationships_file: z.object({
    name: z.literal(RELATIONSHIPS_COPY_FILE),
    bytes: z.number().int().nonnegative(),
    sha256: sha,
    chunks: z.array(sha),
  }).strict().nullable(),
  /** Bytes of packs and index this backup wrote. */
  bytes_added: z.number().int().nonnegative(),
}).strict();

/** A parsed snapshot file. */
export type Snapshot = z.infer<typeof SnapshotSchema>;

/** One memory as a tree lists it. */
export interface TreeEntry {
  readonly record: string;
  /** `undefined` when the record holds no vector blob. */
  readonly vector: string | undefined;
  /** Where `embedding` goes among the record's fields. */
  readonly position: number;
}

/**
 * Splits a memory record read as text: the vector (an array, not `null`)
 * becomes float32 bytes, the rest stays as it is.
 *
 * @param record A raw memory record.
 * @returns The record and its vector apart.
 */
export function splitRecord(record: RawRecord): Float32Memory {
  const embedding = record.get("embedding");
  return float32Memory(
    record,
    embedding === undefined || embedding.trim() === "null"
      ? undefined
      : vectorBytes(embedding),
  );
}

/** A vector's JSON text (as pgvector prints it) as float32 bytes. */
export function vectorBytes(text: string): Uint8Array {
  const inner = text.trim().slice(1, -1);
  const parts = inner === "" ? [] : inner.split(",");
  const values = new Float32Array(parts.length);
  for (let i = 0; i < parts.length; i++) values[i] = float32Of(parts[i]!);
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) {
    view.setFloat32(i * 4, values[i]!, true);
  }
  return bytes;
}

/** float32 bytes as the vector's text, exactly as pgvector prints it. */
export function vectorOf(bytes: Uint8Array): string {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const values = new Float32Array(bytes.byteLength / 4);
  for (let i = 0; i < values.length; i++) {
    values[i] = view.getFloat32(i * 4, true);
  }
  return vectorText(values);
}

/**
 * Puts a record back together from its blobs.
 *
 * @param record The record's JSON line.
 * @param vector The vector's bytes, if it has one.
 * @param position Where `embedding` goes.
 * @returns The raw record, field for field as it was read.
 */
export function joinRecord(
  record: Uint8Array,
  vector: Uint8Array | undefined,
  position: number,
): RawRecord {
  const fields = objectFields(new TextDecoder().decode(record));
  if (!fields) throw new Error("a record blob is not a JSON object");
  if (vector === undefined) return fields;
  const joined: RawRecord = new Map();
  let at = 0;
  for (const [key, value] of fields) {
    if (at++ === position) joined.set("embedding", vectorOf(vector));
    joined.set(key, value);
  }
  if (!joined.has("embedding")) joined.set("embedding", vectorOf(vector));
  return joined;
}

/** Hex to bytes (64 hex digits → 32 bytes). */
function hexBytes(hex: string, into: Uint8Array, at: number): void {
  for (let i = 0; i < 32; i++) {
    into[at + i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  }
}

function bytesHex(bytes: Uint8Array, at: number): string {
  let hex = "";
  for (let i = 0; i < 32; i++) {
    hex += bytes[at + i]!.toString(16).padStart(2, "0");
  }
  return hex;
}

/**
 * A tree blob's content.
 *
 * @param entries Up to {@linkcode TREE_SIZE} memories.
 * @returns The bytes.
 */
export function encodeTree(entries: readonly TreeEntry[]): Uint8Array {
  const bytes = new Uint8Array(entries.length * ENTRY);
  entries.forEach((entry, i) => {
    const at = i * ENTRY;
    hexBytes(entry.record, bytes, at);
    if (entry.vector !== undefined) hexBytes(entry.vector, bytes, at + 32);
    bytes[at + 64] = entry.vector === undefined ? NO_VECTOR : entry.position;
  });
  return bytes;
}

/**
 * The memories a tree blob lists.
 *
 * @param bytes Its content.
 * @returns Its entries, or `undefined` when it is not a tree.
 */
export function decodeTree(bytes: Uint8Array): TreeEntry[] | undefined {
  if (bytes.length % ENTRY !== 0) return undefined;
  const entries: TreeEntry[] = [];
  for (let at = 0; at < bytes.length; at += ENTRY) {
    const position = bytes[at + 64]!;
    entries.push({
      record: bytesHex(bytes, at),
      vector: position === NO_VECTOR ? undefined : bytesHex(bytes, at + 32),
      position,
    });
  }
  return entries;
}
