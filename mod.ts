/**
 * memkeep keeps an AI assistant's long-term memory from ever being lost: it
 * backs up a mem0-style pgvector table (Neon, Supabase, any Postgres, or the
 * embedded PGlite store) and a SQLite relationship store into timestamped,
 * checksummed, verified directories, and verifies them for real.
 *
 * ```ts
 * import { backup, resolveConfig, restore, verifyBackup } from "./mod.ts";
 *
 * // DATABASE_URL, MEMORY_TABLE, RELATIONSHIPS_DB, MEMORY_USER_ID, BACKUP_DIR
 * const config = resolveConfig();
 * const result = await backup({ config });
 * console.log(result.path, result.metadata.memory_count);
 *
 * const report = await verifyBackup(result.path);
 * console.log(report.ok ? "valid" : report.problem?.reason);
 *
 * // What restoring it would change, without writing anything.
 * const preview = await restore({ source: result.path, config, dryRun: true });
 * console.log(preview.memories); // { restored, skipped, updated }
 * ```
 *
 * The pipeline: the store is read through a cursor as {@linkcode RawRecord}s
 * ({@linkcode readMemories}, {@linkcode readRelationships}), written by
 * {@linkcode writeExport} while hashing, and read back by
 * {@linkcode readExport}, which never holds the whole document.
 *
 * @module
 */

export { backup, type BackupOptions, type BackupResult } from "./lib/backup.ts";
export {
  type Config,
  type ConfigFlags,
  DEFAULT_BACKUP_DIR,
  DEFAULT_EXPORT_DIR,
  DEFAULT_PGLITE_DIR,
  DEFAULT_RELATIONSHIPS_DB,
  DEFAULT_TABLE,
  type MemoryStoreTarget,
  type RelationshipStoreTarget,
  resolveConfig,
  type TableName,
} from "./lib/config.ts";
export { type ConnectionSettings, parseDatabaseUrl } from "./lib/connection.ts";
export {
  BackupError,
  StoreError,
  UsageError,
  VerifyError,
} from "./lib/errors.ts";
export {
  backupName,
  CHECKSUMS_FILE,
  EXPORT_FILE,
  FORMAT_VERSION,
  METADATA_FILE,
  parseBackupName,
  SNAPSHOT_FILE,
  SUMS_FILE,
} from "./lib/format.ts";
export { type ExportEntry, readExport } from "./lib/json_reader.ts";
export { type ExportWritten, writeExport } from "./lib/json_writer.ts";
export {
  countMemories,
  inSnapshot,
  inspectTable,
  type MemoryStore,
  type MemoryTable,
  openMemoryStore,
  readMemories,
} from "./lib/memory_store.ts";
export {
  type BackupMetadata,
  BackupMetadataSchema,
  type Checksums,
  ChecksumsSchema,
  type ExportHeader,
  ExportHeaderSchema,
  type MemoryRecord,
  MemoryRecordSchema,
  type RawRecord,
  rawRecordLine,
  type RelationshipRecord,
  RelationshipRecordSchema,
} from "./lib/records.ts";
export {
  readRelationships,
  type RelationshipSnapshot,
  snapshotRelationships,
} from "./lib/relationship_store.ts";
export { redact } from "./lib/redact.ts";
export {
  verifyBackup,
  type VerifyCheck,
  type VerifyOptions,
  type VerifyProblem,
  type VerifyReport,
} from "./lib/verify.ts";
export {
  type ConflictMode,
  restore,
  type RestoreCounts,
  RestoreError,
  type RestoreOptions,
  type RestorePreview,
  type RestoreResult,
} from "./lib/restore.ts";
export {
  type BackupSource,
  openBackupSource,
  SourceError,
} from "./lib/restore_source.ts";
export {
  EXPORT_FORMATS,
  exportMemories,
  type ExportOptions,
  type ExportResult,
} from "./lib/export.ts";
export { heatOf } from "./lib/markdown_format.ts";
