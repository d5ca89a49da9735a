/**
 * Verifies a backup for real: every file's SHA-256 against `checksums.json`
 * and the combined checksum, the required files, `metadata.json` and every
 * record against the zod schemas, counts against the metadata, unique ids,
 * every embedding's length and finiteness, and the SQLite copy's integrity
 * and row counts. `export.json` is read once: hashed and parsed in the same
 * pass. This module picks the path (plain or encrypted); the checks live
 * beside it and in each format's own `check.ts`.
 *
 * @module
 */

import { directoryView } from "../format/view.ts";
import { ENCRYPTION_FILE } from "../format/encryption.ts";
import type { VerifyOptions, VerifyReport } from "./report.ts";
import { verifyView } from "./check_view.ts";
import { verifyEncrypted } from "./encrypted.ts";

/**
 * Verifies a backup or export directory. An encrypted backup's ciphertext is
 * always checked; its contents too when `keys` are given.
 *
 * @param dir The directory.
 * @param options Progress callback, keys for an encrypted backup.
 * @returns Every check with its outcome; `ok` is true only when all passed.
 * @throws {VerifyError} When the directory does not exist.
 */
export async function verifyBackup(
  dir: string,
  options: VerifyOptions = {},
): Promise<VerifyReport> {
  const plain = await directoryView(dir);
  if (plain.entries.has(ENCRYPTION_FILE)) {
    return await verifyEncrypted(dir, plain, options);
  }
  return await verifyView(dir, plain, options);
}
