/**
 * Writes `export.json`: the metadata header, then one record per line in
 * each array, hashing while it writes.
 *
 * ```
 * {"metadata":{...},
 * "memories":[
 * {"id":"…","content":"…","embedding":[…],"metadata":{…},"created_at":"…","heat":0.5},
 * {…}
 * ],
 * "relationships":[
 * {…}
 * ]}
 * ```
 *
 * @module
 */

import { createHashingWriter, type FileDigest } from "../checksums.ts";
import {
  type ExportHeader,
  type RawRecord,
  rawRecordParts,
} from "../records.ts";

/** What {@linkcode writeExport} wrote. */
export interface ExportWritten {
  /** The file's digest. */
  readonly digest: FileDigest;
  /** Memory records written. */
  readonly memories: number;
  /** Relationship records written. */
  readonly relationships: number;
}

/**
 * Streams records into a new `export.json`.
 *
 * @param path The new file; must not exist.
 * @param header The metadata header.
 * @param memories Memory records, consumed once.
 * @param relationships Relationship records, consumed once, after the memories.
 * @param options `onWrite` is called after each write reaches the file.
 * @returns Counts and the file's digest.
 */
export async function writeExport(
  path: string,
  header: ExportHeader,
  memories: AsyncIterable<RawRecord> | Iterable<RawRecord>,
  relationships: AsyncIterable<RawRecord> | Iterable<RawRecord>,
  options: { onWrite?: (() => void) | undefined } = {},
): Promise<ExportWritten> {
  const out = await createHashingWriter(path, options);
  try {
    await out.write(`{"metadata":${JSON.stringify(header)},\n`);
    const writeSection = async (
      name: "memories" | "relationships",
      records: AsyncIterable<RawRecord> | Iterable<RawRecord>,
    ): Promise<number> => {
      await out.write(`"${name}":[`);
      let n = 0;
      for await (const record of records) {
        const parts = rawRecordParts(record);
        parts[0] = (n === 0 ? "\n" : ",\n") + parts[0];
        await out.write(parts);
        n++;
      }
      return n;
    };
    const memoryCount = await writeSection("memories", memories);
    await out.write("\n],\n");
    const relationshipCount = await writeSection(
      "relationships",
      relationships,
    );
    await out.write("\n]}\n");
    return {
      digest: await out.close(),
      memories: memoryCount,
      relationships: relationshipCount,
    };
  } catch (error) {
    out.abort();
    throw error;
  }
}
