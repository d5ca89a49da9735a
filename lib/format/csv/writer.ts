/**
 * Writes the CSV export, for analysis: `memories.csv` and
 * `relationships.csv` (see `columns.ts`), with `csv-stringify`, hashed as
 * written.
 *
 * @module
 */

import { stringify } from "csv-stringify/sync";
import { createHashingWriter, type FileDigest } from "../checksums.ts";
import type { RecordSource } from "../source.ts";
import {
  CSV_OPTIONS,
  MEMORIES_CSV,
  MEMORY_COLUMNS,
  memoryRow,
  RELATIONSHIP_COLUMNS,
  relationshipRow,
  RELATIONSHIPS_CSV,
} from "./columns.ts";

async function writeCsvFile(
  path: string,
  header: readonly string[],
  rows: AsyncIterable<string[]> | Iterable<string[]>,
): Promise<{ digest: FileDigest; count: number }> {
  const out = await createHashingWriter(path);
  try {
    await out.write(stringify([header], CSV_OPTIONS));
    let batch: string[][] = [];
    let count = 0;
    for await (const row of rows) {
      batch.push(row);
      count++;
      if (batch.length === 200) {
        await out.write(stringify(batch, CSV_OPTIONS));
        batch = [];
      }
    }
    if (batch.length > 0) await out.write(stringify(batch, CSV_OPTIONS));
    return { digest: await out.close(), count };
  } catch (error) {
    out.abort();
    throw error;
  }
}

/**
 * Writes `memories.csv` and `relationships.csv` from a record source.
 *
 * @param dir The output directory being written.
 * @param source The records.
 * @returns The files' digests and the record counts.
 */
export async function writeCsv(
  dir: string,
  source: RecordSource,
): Promise<
  { files: Record<string, FileDigest>; memories: number; relationships: number }
> {
  const withVectors = source.header.includes_vectors;
  const memoryHeader = withVectors
    ? [...MEMORY_COLUMNS, "embedding"]
    : [...MEMORY_COLUMNS];
  const memories = await writeCsvFile(
    `${dir}/${MEMORIES_CSV}`,
    memoryHeader,
    (async function* () {
      for await (const record of source.memories()) {
        yield memoryRow(record, withVectors);
      }
    })(),
  );
  const relationships = await writeCsvFile(
    `${dir}/${RELATIONSHIPS_CSV}`,
    RELATIONSHIP_COLUMNS,
    (function* () {
      for (const record of source.relationships()) {
        yield relationshipRow(record);
      }
    })(),
  );
  return {
    files: {
      [MEMORIES_CSV]: memories.digest,
      [RELATIONSHIPS_CSV]: relationships.digest,
    },
    memories: memories.count,
    relationships: relationships.count,
  };
}
