/**
 * What a format writer reads: the metadata header and the record streams of
 * one consistent view of both stores. The store provides it
 * (`lib/store/capture.ts`); a writer never touches a store.
 *
 * @module
 */

import type { ExportHeader, RawRecord } from "./records.ts";

/** How a writer wants the memories. */
export interface MemoryOrder {
  /**
   * Payload keys to group by, e.g. `["client", "project"]`: memories with
   * none of them come last, then by each key (whitespace-trimmed, named
   * before missing), then by `created_at` and id; sorted by the store (the
   * database spills a large sort to disk). Without it, as the table returns
   * them.
   */
  readonly groupBy?: readonly string[];
  /** Include the vectors (default: as the output does). */
  readonly includeVectors?: boolean;
}

/**
 * A memory with its vector as float32 bytes (little-endian), as a
 * repository stores it: read in pgvector's binary form where the server
 * offers it, so that no vector is printed as text and parsed back.
 */
export interface Float32Memory {
  /** Every field but the vector (a NULL vector stays: `"embedding": null`). */
  readonly record: RawRecord;
  /** The vector's bytes, when it is not NULL. */
  readonly vector: Uint8Array | undefined;
  /** Where `embedding` goes among the fields ({@linkcode NO_VECTOR} when it stays in `record`). */
  readonly position: number;
}

/** {@linkcode Float32Memory.position} of a record that keeps `embedding`. */
export const NO_VECTOR = 0xff;

/**
 * A memory record and its vector's bytes as a {@linkcode Float32Memory}.
 *
 * @param record The record, `embedding` among its fields.
 * @param vector The vector's float32 bytes; `undefined` for a NULL vector
 * (the record keeps `"embedding": null`).
 * @returns The record without `embedding`, and where it was.
 */
export function float32Memory(
  record: RawRecord,
  vector: Uint8Array | undefined,
): Float32Memory {
  if (vector === undefined) return { record, vector, position: NO_VECTOR };
  const rest: RawRecord = new Map();
  let position = 0;
  let at = 0;
  for (const [key, value] of record) {
    if (key === "embedding") position = at;
    else rest.set(key, value);
    at++;
  }
  return { record: rest, vector, position };
}

/** What a format writer gets. */
export interface RecordSource {
  /** The metadata, but for the duration (known only at the end). */
  readonly header: ExportHeader;
  /**
   * The memories, streamed.
   *
   * @param options Grouping and vectors.
   */
  memories(options?: MemoryOrder): AsyncIterable<RawRecord>;
  /**
   * The memories with float32 vectors, where the store reads them so (a
   * real server's binary COPY); absent elsewhere.
   */
  float32Memories?(): AsyncIterable<Float32Memory> | undefined;
  /** The copy of the relationship store, when there is one. */
  readonly relationshipsFile: string | undefined;
  /** The rows of `relationships` in the copy. */
  relationships(): Iterable<RawRecord>;
}

/**
 * One consistent reading handed to a writer: the source exists for the
 * duration of `write` (a transaction on the store, or a snapshot's copy of
 * the relationship store), and the capture checks that the writer wrote as
 * many memories as the source holds.
 *
 * @param write The format writer; returns how many memories it wrote.
 * @returns What the writer returns.
 */
export type Capture = <T extends { memories: number }>(
  write: (source: RecordSource) => Promise<T>,
) => Promise<T>;
