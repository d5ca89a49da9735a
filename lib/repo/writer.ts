/**
 * Writes one snapshot from a {@linkcode RecordSource} (a capture of the
 * stores, as the format writers get it):
 *
 * ```
 * memories ──split──▶ record blob + vector blob ─┐
 *          └─────────▶ tree blobs (1,024 each) ──┼─▶ packs ─▶ index ─▶ snapshot
 * relationships.db ──▶ 64 KiB file blobs ────────┘
 * ```
 *
 * A blob the repository holds already is not written again: an unchanged
 * memory costs nothing but its 65 bytes in a tree, and an unchanged tree
 * nothing at all.
 *
 * @module
 */

import type { Float32Memory, RecordSource } from "../format/source.ts";
import { type RawRecord, rawRecordLine } from "../format/records.ts";
import { RELATIONSHIPS_COPY_FILE } from "../format/layout.ts";
import { BackupMetadataSchema, firstIssue } from "../format/records.ts";
import { RepoError } from "../errors.ts";
import { snapshotPath } from "./layout.ts";
import type { Repository } from "./repository.ts";
import {
  encodeTree,
  FILE_CHUNK,
  type Snapshot,
  splitRecord,
  TREE_SIZE,
  type TreeEntry,
} from "./snapshot.ts";
import { createHash } from "node:crypto";

/** A snapshot whose data is written, its file not yet. */
export interface SnapshotWritten {
  readonly snapshot: Snapshot;
  /** Memory records written (for the capture's count check). */
  readonly memories: number;
}

/**
 * Writes the data of a snapshot of everything the source holds (packs and
 * index): the snapshot exists once {@linkcode saveSnapshot} writes its
 * file, after it has been read back.
 *
 * @param repo The repository (opened for writing, locked).
 * @param source The capture.
 * @param started When the backup started (for its duration).
 * @returns The snapshot, not yet saved.
 */
export async function writeSnapshot(
  repo: Repository,
  source: RecordSource,
  started: number,
): Promise<SnapshotWritten> {
  const trees: string[] = [];
  let entries: TreeEntry[] = [];
  let memories = 0;
  const stream = source.float32Memories?.() ??
    splitEach(source.memories({ includeVectors: true }));
  for await (const split of stream) {
    const recordId = await repo.add(
      "record",
      encoder.encode(rawRecordLine(split.record)),
    );
    const vectorId = split.vector === undefined
      ? undefined
      : await repo.add("vector", split.vector);
    entries.push({
      record: recordId,
      vector: vectorId,
      position: split.position,
    });
    memories++;
    if (entries.length === TREE_SIZE) {
      trees.push(await repo.add("tree", encodeTree(entries)));
      entries = [];
    }
  }
  if (entries.length > 0) {
    trees.push(await repo.add("tree", encodeTree(entries)));
  }
  const relationshipsFile = source.relationshipsFile === undefined
    ? null
    : await addFile(repo, source.relationshipsFile);
  const totals = await repo.commit();
  const metadata = BackupMetadataSchema.safeParse({
    ...source.header,
    duration_ms: Math.round(Math.max(0, performance.now() - started)),
  });
  if (!metadata.success) {
    throw new RepoError(
      repo.storage.location,
      `Cannot write the snapshot: its metadata ${firstIssue(metadata.error)}`,
    );
  }
  const snapshot: Snapshot = {
    tool: "memkeep",
    repository_version: repo.config.repository_version,
    name: source.header.backup_name,
    metadata: metadata.data,
    trees,
    relationships_file: relationshipsFile,
    bytes_added: totals.bytes,
  };
  return { snapshot, memories };
}

/**
 * Writes a snapshot's file: from now on the snapshot is in the repository.
 *
 * @param repo The repository.
 * @param snapshot The snapshot, its data written.
 * @returns The snapshot file's id.
 */
export async function saveSnapshot(
  repo: Repository,
  snapshot: Snapshot,
): Promise<string> {
  const bytes = new TextEncoder().encode(
    JSON.stringify(snapshot, null, 1) + "\n",
  );
  return (await repo.writeFile(snapshotPath, bytes)).id;
}

async function* splitEach(
  records: AsyncIterable<RawRecord>,
): AsyncGenerator<Float32Memory> {
  for await (const record of records) yield splitRecord(record);
}

const encoder = new TextEncoder();

async function addFile(
  repo: Repository,
  path: string,
): Promise<NonNullable<Snapshot["relationships_file"]>> {
  const chunks: string[] = [];
  const whole = createHash("sha256");
  let bytes = 0;
  using file = await Deno.open(path, { read: true });
  const buffer = new Uint8Array(FILE_CHUNK);
  for (;;) {
    let filled = 0;
    while (filled < FILE_CHUNK) {
      const n = await file.read(buffer.subarray(filled));
      if (n === null) break;
      filled += n;
    }
    if (filled === 0) break;
    const chunk = buffer.slice(0, filled);
    whole.update(chunk);
    bytes += filled;
    chunks.push(await repo.add("file", chunk));
    if (filled < FILE_CHUNK) break;
  }
  return {
    name: RELATIONSHIPS_COPY_FILE,
    bytes,
    sha256: whole.digest("hex"),
    chunks,
  };
}
