/**
 * How the verifier reads a backup: its entries, each file's bytes, and the
 * SQLite copy. A plain directory is read from disk; an encrypted backup
 * is read through age decryption, in memory and streamed, so verifying it
 * needs no write access.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { VerifyError } from "../errors.ts";
import { fileChunks } from "./json/reader.ts";
import { joinChunks } from "../util/fs.ts";

/** What a directory entry is. */
export type EntryKind = "file" | "directory" | "symlink" | "other";

/** A backup as the verifier reads it. */
export interface BackupView {
  /** Entry name → kind. */
  readonly entries: Map<string, EntryKind>;
  /** A file's content, in chunks. */
  chunks(name: string): AsyncGenerator<Uint8Array>;
  /** Opens a SQLite file read-only. */
  openSqlite(name: string): Promise<DatabaseSync>;
}

/**
 * Reads a directory's entries, without following links.
 *
 * @param dir The directory.
 * @returns Entry name → kind.
 * @throws {VerifyError} When it is missing or not a directory.
 */
export async function listEntries(
  dir: string,
): Promise<Map<string, EntryKind>> {
  const entries = new Map<string, EntryKind>();
  try {
    for await (const entry of Deno.readDir(dir)) {
      entries.set(
        entry.name,
        entry.isSymlink
          ? "symlink"
          : entry.isFile
          ? "file"
          : entry.isDirectory
          ? "directory"
          : "other",
      );
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new VerifyError(dir, "no such backup directory");
    }
    if (error instanceof Error && /Not a directory/i.test(error.message)) {
      throw new VerifyError(dir, "not a directory");
    }
    throw error;
  }
  return entries;
}

/**
 * A plain backup directory.
 *
 * @param dir The directory.
 * @returns The view.
 */
export async function directoryView(dir: string): Promise<BackupView> {
  return {
    entries: await listEntries(dir),
    chunks: (name) => fileChunks(`${dir}/${name}`),
    openSqlite: (name) =>
      Promise.resolve(new DatabaseSync(`${dir}/${name}`, { readOnly: true })),
  };
}

/** Largest SQLite copy held in memory to check an encrypted backup. */
const MAX_SQLITE_IN_MEMORY = 1024 * 1024 * 1024;

/**
 * A view whose files are produced by a function (e.g. decryption).
 *
 * @param files The file names.
 * @param open A file's content.
 * @returns The view; SQLite files are loaded into memory to be opened.
 */
export function streamView(
  files: readonly string[],
  open: (name: string) => AsyncGenerator<Uint8Array>,
): BackupView {
  return {
    entries: new Map(files.map((f) => [f, "file" as const])),
    chunks: open,
    async openSqlite(name) {
      const parts: Uint8Array[] = [];
      let size = 0;
      for await (const chunk of open(name)) {
        size += chunk.length;
        if (size > MAX_SQLITE_IN_MEMORY) {
          throw new VerifyError(name, "too large to check in memory");
        }
        parts.push(chunk);
      }
      const db = new DatabaseSync(":memory:");
      db.deserialize(joinChunks(parts));
      return db;
    },
  };
}
