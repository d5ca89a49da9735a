/**
 * A capture: one consistent reading of both stores for a format writer: a
 * `REPEATABLE READ READ ONLY` transaction on the memory table, and a copy of
 * the SQLite relationship store taken with SQLite's online backup. The
 * writer gets the metadata header and record streams; the capture checks
 * that the writer wrote exactly as many memories as the store held.
 *
 * ("Snapshot" is kept for what a backup repository holds; a capture is
 * the moment a backup or export reads the stores.)
 *
 * @module
 */

import type { OnProgress } from "../progress.ts";
import { type Config, formatTableName } from "./config.ts";
import { BackupError, StoreError } from "../errors.ts";
import {
  FORMAT_VERSION,
  RELATIONSHIPS_COPY_FILE,
  TOOL_VERSION,
} from "../format/layout.ts";
import { inspectTable, type MemoryStore } from "./memory/read.ts";
import {
  countMemories,
  inRepeatableRead,
  readFloat32Memories,
  readMemories,
} from "./memory/rows.ts";
import type { ExportFormat, ExportHeader } from "../format/records.ts";
import {
  copyRelationships,
  readRelationships,
  type RelationshipCopy,
} from "./relationships/read.ts";
import { exists } from "../util/fs.ts";
import type { Capture, RecordSource } from "../format/source.ts";

/** What a format writer gets: the store's side of {@linkcode RecordSource}. */
export type StoreCapture = RecordSource;

/** What to capture. */
export interface CaptureOptions {
  /** Table, user filter, relationship store. */
  readonly config: Config;
  /** The format being written, recorded in the header. */
  readonly format: ExportFormat;
  /** Whether the output holds vectors. */
  readonly includeVectors: boolean;
  /** The backup or export name. */
  readonly name: string;
  /** When it started. */
  readonly started: Date;
  /** Where to put the copy of the relationship store. */
  readonly relationshipsCopy: string;
  /** Progress messages. */
  readonly onProgress?: OnProgress | undefined;
}

/**
 * Captures both stores and hands them to a writer.
 *
 * @param store The open memory store.
 * @param relationshipSource The relationship store to copy, if any (see
 * {@linkcode relationshipSourceOf}).
 * @param options What to capture.
 * @param write The format writer; returns how many memories it wrote.
 * @returns What the writer returns.
 * @throws {BackupError} When the writer wrote another number of memories
 * than the store holds.
 */
export async function withStoreCapture<T extends { memories: number }>(
  store: MemoryStore,
  relationshipSource: string | undefined,
  options: CaptureOptions,
  write: (capture: StoreCapture) => Promise<T>,
): Promise<T> {
  const { config } = options;
  const progress = options.onProgress ?? (() => {});
  return await inRepeatableRead(store.session, async () => {
    const table = await inspectTable(store.session, config.table);
    if (table.otherColumns.length > 0) {
      // A backup holds id, vector and payload: it would lose these.
      throw new StoreError(
        `Cannot back up table "${table.schema}.${table.table}": it has columns beyond mem0's id, vector, payload (${
          table.otherColumns.join(", ")
        }), which memkeep would not keep`,
      );
    }
    const count = await countMemories(store.session, table, {
      userId: config.userId,
    });
    let relationships: RelationshipCopy | undefined;
    if (relationshipSource !== undefined) {
      progress({ what: "copying relationship store" });
      relationships = await copyRelationships(
        relationshipSource,
        options.relationshipsCopy,
      );
    }
    const header: ExportHeader = {
      tool: "memkeep",
      tool_version: TOOL_VERSION,
      format: options.format,
      format_version: FORMAT_VERSION,
      backup_name: options.name,
      created_at: options.started.toISOString(),
      user_id: config.userId ?? null,
      includes_vectors: options.includeVectors,
      memory_count: count,
      relationship_count: relationships?.count ?? 0,
      memories: {
        schema: table.schema,
        table: table.table,
        id_type: table.idType,
        vector_type: table.vectorType,
        payload_type: table.payloadType,
        dims: table.dims,
        pgvector_version: table.pgvectorVersion,
        indexes: table.indexes,
        source: store.source,
      },
      relationships: {
        source: relationshipSource ?? null,
        snapshot: relationships && options.format === "json"
          ? RELATIONSHIPS_COPY_FILE
          : null,
        tables: relationships?.tables ?? {},
      },
    };
    let n = 0;
    let bytes = 0;
    const capture: StoreCapture = {
      header,
      memories: (o = {}) => {
        const records = readMemories(store.session, table, {
          userId: config.userId,
          includeVectors: o.includeVectors ?? options.includeVectors,
          ...(o.groupBy ? { groupBy: o.groupBy } : {}),
        });
        return (async function* () {
          for await (const record of records) {
            for (const value of record.values()) bytes += value.length;
            if (++n % 1000 === 0) {
              progress({ what: "memories", done: n, total: count, bytes });
            }
            yield record;
          }
        })();
      },
      float32Memories: () => {
        const memories = readFloat32Memories(store.session, table, {
          userId: config.userId,
        });
        return memories
          ? (async function* () {
            for await (const memory of memories) {
              if (++n % 1000 === 0) {
                progress({ what: "memories", done: n, total: count });
              }
              yield memory;
            }
          })()
          : undefined;
      },
      relationshipsFile: relationships ? options.relationshipsCopy : undefined,
      relationships: () =>
        relationships ? readRelationships(options.relationshipsCopy) : [],
    };
    const result = await write(capture);
    if (result.memories !== count) {
      throw new BackupError(
        options.name,
        `Cannot back up: wrote ${result.memories} memories but the capture of ${
          formatTableName(config.table)
        } holds ${count}`,
      );
    }
    return result;
  });
}

/**
 * {@linkcode withStoreCapture} as a {@linkcode Capture}, closing the store
 * once it has been read.
 *
 * @param store The open memory store.
 * @param relationshipSource The relationship store to copy, if any.
 * @param options What to capture.
 * @returns The capture.
 */
export function storeCapture(
  store: MemoryStore,
  relationshipSource: string | undefined,
  options: CaptureOptions,
): Capture {
  return (write) =>
    withStoreCapture(store, relationshipSource, options, write).finally(() =>
      store.close()
    );
}

/**
 * The relationship store to copy: the configured path, or nothing (with a
 * warning) when the default path does not exist.
 *
 * @param config The settings.
 * @param onWarning Receives the warning.
 * @returns The path, or `undefined`.
 * @throws {StoreError} When a configured store does not exist.
 */
export async function relationshipSourceOf(
  config: Config,
  onWarning: ((message: string) => void) | undefined,
): Promise<string | undefined> {
  const { path, explicit } = config.relationships;
  if (await exists(path)) return path;
  if (explicit) {
    throw new StoreError(
      `Cannot back up: relationship store "${path}" (RELATIONSHIPS_DB) does not exist`,
    );
  }
  onWarning?.(
    `no relationship store at "${path}": backing up memories only (set RELATIONSHIPS_DB to include one)`,
  );
  return undefined;
}
