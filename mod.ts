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

export {
  backup,
  type BackupOptions,
  type BackupResult,
} from "./lib/backup/backup.ts";
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
} from "./lib/store/config.ts";
export {
  type ConnectionSettings,
  parseDatabaseUrl,
} from "./lib/store/connection.ts";
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
  RELATIONSHIPS_COPY_FILE,
  SUMS_FILE,
} from "./lib/format/layout.ts";
export { type ExportEntry, readExport } from "./lib/format/json/reader.ts";
export { type ExportWritten, writeExport } from "./lib/format/json/writer.ts";
export {
  inspectTable,
  type MemoryStore,
  type MemoryTable,
  openMemoryStore,
} from "./lib/store/memory/read.ts";
export {
  countMemories,
  inRepeatableRead,
  readMemories,
} from "./lib/store/memory/rows.ts";
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
} from "./lib/format/records.ts";
export {
  copyRelationships,
  readRelationships,
  type RelationshipCopy,
} from "./lib/store/relationships/read.ts";
export { redact } from "./lib/redact.ts";
export { verifyBackup } from "./lib/verify/verify.ts";
export { type VerifyOptions, type VerifyReport } from "./lib/verify/report.ts";
export { type VerifyCheck, type VerifyProblem } from "./lib/format/check.ts";
export {
  type ConflictMode,
  restore,
  type RestoreCounts,
  type RestoreOptions,
  type RestorePreview,
  type RestoreResult,
} from "./lib/restore/restore.ts";
export { RestoreError } from "./lib/errors.ts";
export { type BackupSource, openBackupSource } from "./lib/restore/source.ts";
export { SourceError } from "./lib/errors.ts";
export {
  EXPORT_FORMATS,
  exportMemories,
  type ExportOptions,
  type ExportResult,
} from "./lib/backup/export.ts";
export { heatOf } from "./lib/format/markdown/text.ts";
