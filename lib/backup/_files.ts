/**
 * The files of a JSON backup or export with their digests: `export.json`
 * (hashed as it was written) and the copy of the relationship store.
 *
 * @module
 */

import { type FileDigest, hashFile } from "../format/checksums.ts";
import { EXPORT_FILE, RELATIONSHIPS_COPY_FILE } from "../format/layout.ts";
import type { StoreCapture } from "../store/capture.ts";

/**
 * `export.json` and `relationships.db` with their digests.
 *
 * @param exportDigest The digest of `export.json`, from its writer.
 * @param capture The capture it was written from.
 * @returns File name → digest.
 */
export async function exportFiles(
  exportDigest: FileDigest,
  capture: StoreCapture,
): Promise<Record<string, FileDigest>> {
  const files: Record<string, FileDigest> = { [EXPORT_FILE]: exportDigest };
  if (capture.relationshipsFile) {
    files[RELATIONSHIPS_COPY_FILE] = await hashFile(capture.relationshipsFile);
  }
  return files;
}
