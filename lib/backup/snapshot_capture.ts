/**
 * A repository snapshot as a {@linkcode Capture}: what a format writer gets
 * from the stores at one instant, read from the snapshot instead: its
 * metadata as the header, its memories from the trees (grouped by an
 * external sort where a writer asks, since no database sorts them), and a
 * copy of its relationship store written from its chunks. Every format a
 * store exports to can so be written from a snapshot.
 *
 * @module
 */

import { BackupError } from "../errors.ts";
import { RELATIONSHIPS_COPY_FILE } from "../format/layout.ts";
import type { ExportFormat, ExportHeader } from "../format/records.ts";
import type { Capture, RecordSource } from "../format/source.ts";
import { groupKey, sortRecords } from "../format/sorted.ts";
import { readRelationships } from "../store/relationships/read.ts";
import type { OnProgress } from "../progress.ts";
import type { Repository } from "../repo/repository.ts";
import {
  type SnapshotFile,
  snapshotMemories,
  writeRelationshipsFile,
} from "../repo/reader.ts";

/** How to read a snapshot for one format. */
export interface SnapshotCaptureOptions {
  /** The format being written, recorded in the header. */
  readonly format: ExportFormat;
  /** Whether the output holds vectors. */
  readonly includeVectors: boolean;
  /** Where to write the copy of the relationship store. */
  readonly relationshipsCopy: string;
  /** A scratch directory for sorting (removed when done). */
  readonly sortDir: string;
  readonly onProgress?: OnProgress | undefined;
}

/**
 * Reads a snapshot as a writer reads the stores.
 *
 * @param repo The open repository.
 * @param file The snapshot.
 * @param options Format, vectors, where the copies go.
 * @returns The capture.
 */
export function snapshotCapture(
  repo: Repository,
  file: SnapshotFile,
  options: SnapshotCaptureOptions,
): Capture {
  return async (write) => {
    const { snapshot } = file;
    const copy = options.relationshipsCopy;
    const hasRelationships = snapshot.relationships_file !== undefined &&
      snapshot.relationships_file !== null;
    if (hasRelationships) await writeRelationshipsFile(repo, snapshot, copy);
    const { duration_ms: _duration, ...stored } = snapshot.metadata;
    const includeVectors = options.includeVectors && stored.includes_vectors;
    const header: ExportHeader = {
      ...stored,
      format: options.format,
      includes_vectors: includeVectors,
      relationships: {
        ...stored.relationships,
        snapshot: hasRelationships && options.format === "json"
          ? RELATIONSHIPS_COPY_FILE
          : null,
      },
    };
    const total = stored.memory_count;
    const source: RecordSource = {
      header,
      memories: (o = {}) => {
        const records = counted(
          snapshotMemories(
            repo,
            snapshot,
            o.includeVectors ?? includeVectors,
          ),
          total,
          options.onProgress,
        );
        return o.groupBy && o.groupBy.length > 0
          ? sortRecords(records, groupKey(o.groupBy), options.sortDir)
          : records;
      },
      relationshipsFile: hasRelationships ? copy : undefined,
      relationships: () => hasRelationships ? readRelationships(copy) : [],
    };
    const result = await write(source);
    if (result.memories !== total) {
      throw new BackupError(
        snapshot.name,
        `Snapshot ${snapshot.name} lists ${result.memories} memories; its metadata says ${total}`,
      );
    }
    return result;
  };
}

async function* counted<T>(
  records: AsyncIterable<T>,
  total: number,
  progress: OnProgress | undefined,
): AsyncGenerator<T> {
  let n = 0;
  for await (const record of records) {
    if (++n % 1000 === 0) progress?.({ what: "memories", done: n, total });
    yield record;
  }
}
