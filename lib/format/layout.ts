/**
 * The backup format, version 1: directory and file names, the backup name
 * pattern and the version numbers written into every backup.
 *
 * A backup is a directory `memory_YYYYMMDD_HHMMSS` (UTC) holding:
 *
 * | file | what |
 * |---|---|
 * | `export.json` | `{"metadata": …, "memories": […], "relationships": […]}`, one record per line |
 * | `metadata.json` | counts, table, dims, pgvector version, indexes, source, duration |
 * | `relationships.db` | a consistent copy of the whole SQLite relationship store, when there is one |
 * | `checksums.json` | SHA-256 and size of every other file, and a combined checksum |
 * | `SHA256SUMS` | the same checksums for `sha256sum -c` |
 *
 * @module
 */

import denoJson from "../../deno.json" with { type: "json" };

/** The version of memkeep writing backups. */
export const TOOL_VERSION: string = denoJson.version;
/** The backup format version this code writes and reads. */
export const FORMAT_VERSION = 1;

/** The records: metadata header, memories, relationships. */
export const EXPORT_FILE = "export.json";
/** The backup's metadata. */
export const METADATA_FILE = "metadata.json";
/** SHA-256 of every other file, as JSON. */
export const CHECKSUMS_FILE = "checksums.json";
/** SHA-256 of every other file, for `sha256sum -c`. */
export const SUMS_FILE = "SHA256SUMS";
/** The copy of the SQLite relationship store. */
export const RELATIONSHIPS_COPY_FILE = "relationships.db";
/** The log of backup runs, one line each, in the backup directory. */
export const LOG_FILE = "backup.log";

/** A final backup directory name. */
export const BACKUP_NAME =
  /^memory_(\d{4})(\d{2})(\d{2})_(\d{2})(\d{2})(\d{2})$/;
/** The prefix of a backup still being written. */
export const TEMP_PREFIX = ".tmp-";

/**
 * Where an export to `output` is prepared: a directory beside it that holds
 * the lock, the new export until it is complete, and the old one while it is
 * replaced. One fixed name per output, so that it can be granted exactly.
 *
 * @param output The export's directory.
 * @returns The work directory.
 */
export function exportWorkDir(output: string): string {
  const trimmed = output.replace(/\/+$/, "") || "/";
  const slash = trimmed.lastIndexOf("/");
  const parent = slash > 0 ? trimmed.slice(0, slash) : slash === 0 ? "" : ".";
  return `${parent}/${TEMP_PREFIX}${trimmed.slice(slash + 1)}`;
}

/**
 * The copy a restore writes a new relationship store to before renaming it
 * into place.
 *
 * @param target The relationship store's path.
 * @returns The copy's path, beside it.
 */
export function restoringCopy(target: string): string {
  return `${target}.memkeep-restoring`;
}

/**
 * Where a restore extracts a zip or decrypts a backup: beside the
 * relationship store it restores, the one place a restore writes anyway.
 * Each process uses its own subdirectory.
 *
 * @param target The relationship store's path.
 * @returns The scratch root.
 */
export function restoreScratch(target: string): string {
  return `${target}.memkeep-restore`;
}

/**
 * The backup name for a moment: `memory_YYYYMMDD_HHMMSS` in UTC.
 *
 * @param date The moment the backup starts.
 * @returns The directory name.
 */
export function backupName(date: Date): string {
  const iso = date.toISOString(); // 2026-11-23T02:00:00.000Z
  return `memory_${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}_${
    iso.slice(11, 13)
  }${iso.slice(14, 16)}${iso.slice(17, 19)}`;
}

/**
 * The moment a backup name stands for.
 *
 * @param name A directory name.
 * @returns The UTC time, or `undefined` when the name is not exactly
 * `memory_YYYYMMDD_HHMMSS` with a real date and time.
 */
export function parseBackupName(name: string): Date | undefined {
  const match = BACKUP_NAME.exec(name);
  if (!match) return undefined;
  const [, y, mo, d, h, mi, s] = match.map(Number) as number[];
  const date = new Date(Date.UTC(y!, mo! - 1, d!, h!, mi!, s!));
  return backupName(date) === name ? date : undefined;
}
