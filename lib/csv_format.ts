/**
 * The CSV export, for analysis: `memories.csv` and `relationships.csv`,
 * RFC 4180 (CRLF line ends, quotes doubled), UTF-8, written with
 * `csv-stringify`, and the checks `verify` runs on them with `csv-parse`.
 *
 * | file | columns |
 * |---|---|
 * | `memories.csv` | `id,content,user_id,metadata,created_at,heat` and `embedding` unless `--no-vectors` |
 * | `relationships.csv` | `id,source_id,target_id,rel_type,strength,metadata,created_at,updated_at` |
 *
 * A text value is written as its text, a missing or `null` value as an empty
 * cell, any other value as its JSON text. `metadata` is the rest of the
 * payload (without `data`, `user_id`, `created_at`, `heat`) as JSON, digits
 * kept; `embedding` is pgvector's text form `[0.1,…]`.
 *
 * @module
 */

import { Readable } from "node:stream";
import { parse } from "csv-parse";
import { stringify } from "csv-stringify/sync";
import { createHashingWriter, type FileDigest } from "./checksums.ts";
import type { BackupMetadata, RawRecord } from "./records.ts";
import { rawRecordLine } from "./records.ts";
import {
  metadataColumnValue,
  sqliteValueFromJson,
} from "./relationship_store.ts";
import type { StoreSnapshot } from "./snapshot.ts";
import type { VerifyCheck } from "./verify.ts";
import type { BackupView } from "./_backup_view.ts";
import { recordFields } from "./_json_scan.ts";

/** The memories file. */
export const MEMORIES_CSV = "memories.csv";
/** The relationships file. */
export const RELATIONSHIPS_CSV = "relationships.csv";
/** Columns of `memories.csv` (plus `embedding` with vectors). */
export const MEMORY_COLUMNS = [
  "id",
  "content",
  "user_id",
  "metadata",
  "created_at",
  "heat",
] as const;
/** Columns of `relationships.csv`. */
export const RELATIONSHIP_COLUMNS = [
  "id",
  "source_id",
  "target_id",
  "rel_type",
  "strength",
  "metadata",
  "created_at",
  "updated_at",
] as const;

// Quote any field holding a bare CR or LF too, not only CRLF: RFC 4180
// readers such as Python's csv split rows on either.
const CSV_OPTIONS = {
  record_delimiter: "windows",
  quote_record_delimiter: true,
} as const;

/** A cell for a JSON value: its text for a string, empty for missing or null, else the JSON. */
function cell(json: string | undefined): string {
  if (json === undefined) return "";
  const text = json.trim();
  if (text === "null") return "";
  if (text.startsWith('"')) return JSON.parse(text) as string;
  return text;
}

/**
 * One `memories.csv` row for a memory record.
 *
 * @param record The memory's fields as JSON text.
 * @param withVectors Whether to add the embedding column.
 * @returns The cells.
 */
export function memoryRow(record: RawRecord, withVectors: boolean): string[] {
  const metadata = record.get("metadata");
  let userId: string | undefined;
  let rest = "";
  if (metadata !== undefined) {
    const fields = recordFields(metadata);
    userId = fields.get("user_id");
    fields.delete("user_id");
    rest = rawRecordLine(fields);
  }
  const row = [
    cell(record.get("id")),
    cell(record.get("content")),
    cell(userId),
    rest,
    cell(record.get("created_at")),
    cell(record.get("heat")),
  ];
  if (withVectors) row.push(cell(record.get("embedding")));
  return row;
}

function relationshipRow(record: RawRecord): string[] {
  return RELATIONSHIP_COLUMNS.map((column) => {
    if (column === "metadata") {
      const value = metadataColumnValue(record);
      return value === null
        ? ""
        : value instanceof Uint8Array
        ? cell(record.get(column))
        : String(value);
    }
    const json = record.get(column);
    if (json === undefined) return "";
    const value = sqliteValueFromJson(json);
    return typeof value === "string" ? value : cell(json);
  });
}

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
 * Writes `memories.csv` and `relationships.csv` from a snapshot.
 *
 * @param dir The output directory being written.
 * @param snapshot The store snapshot.
 * @returns The files' digests and the record counts.
 */
export async function writeCsv(
  dir: string,
  snapshot: StoreSnapshot,
): Promise<
  { files: Record<string, FileDigest>; memories: number; relationships: number }
> {
  const withVectors = snapshot.header.includes_vectors;
  const memoryHeader = withVectors
    ? [...MEMORY_COLUMNS, "embedding"]
    : [...MEMORY_COLUMNS];
  const memories = await writeCsvFile(
    `${dir}/${MEMORIES_CSV}`,
    memoryHeader,
    (async function* () {
      for await (const record of snapshot.memories()) {
        yield memoryRow(record, withVectors);
      }
    })(),
  );
  const relationships = await writeCsvFile(
    `${dir}/${RELATIONSHIPS_CSV}`,
    RELATIONSHIP_COLUMNS,
    (function* () {
      for (const record of snapshot.relationships()) {
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

async function* csvRecords(
  chunks: AsyncIterable<Uint8Array>,
): AsyncGenerator<{ row: string[]; line: number }> {
  const parser = Readable.from(chunks).pipe(
    parse({ bom: true, info: true, relax_column_count: false }),
  );
  for await (
    const { record, info } of parser as AsyncIterable<
      { record: string[]; info: { lines: number } }
    >
  ) {
    yield { row: record, line: info.lines };
  }
}

/**
 * The checks `verify` runs on a CSV export: each file parses as RFC 4180
 * with the expected header, ids are unique, each embedding has the recorded
 * number of finite numbers, and record counts equal the metadata.
 *
 * @param view The export, as the verifier reads it.
 * @param metadata Its metadata.
 * @returns One check per file, and the records counted.
 */
export async function checkCsv(
  view: BackupView,
  metadata: BackupMetadata,
): Promise<{ checks: VerifyCheck[]; memories: number; relationships: number }> {
  const withVectors = metadata.includes_vectors;
  const memoryHeader = withVectors
    ? [...MEMORY_COLUMNS, "embedding"]
    : [...MEMORY_COLUMNS];
  const memories = await checkFile(
    view,
    MEMORIES_CSV,
    memoryHeader,
    metadata.memory_count,
    "memories",
    (row) => {
      const [id, , , meta] = row;
      if (!id) return "id is empty";
      try {
        const parsed = JSON.parse(meta!);
        if (
          parsed === null || typeof parsed !== "object" || Array.isArray(parsed)
        ) return "metadata is not a JSON object";
      } catch {
        if (meta !== "") return "metadata is not valid JSON";
      }
      if (withVectors && row[6] !== "") {
        let vector: unknown;
        try {
          vector = JSON.parse(row[6]!);
        } catch {
          return "embedding is not a JSON array";
        }
        if (!Array.isArray(vector)) return "embedding is not a JSON array";
        const dims = metadata.memories.dims;
        if (
          dims !== null && vector.length !== dims
        ) return `embedding has ${vector.length} numbers, expected ${dims}`;
        if (
          !vector.every((x) => typeof x === "number" && Number.isFinite(x))
        ) return "embedding holds a non-finite value";
      }
      return undefined;
    },
  );
  const relationships = await checkFile(
    view,
    RELATIONSHIPS_CSV,
    [...RELATIONSHIP_COLUMNS],
    metadata.relationship_count,
    "relationships",
    (
      row,
    ) => (row[1] && row[2] && row[3]
      ? undefined
      : "source_id, target_id and rel_type must not be empty"),
  );
  return {
    checks: [memories.check, relationships.check],
    memories: memories.count,
    relationships: relationships.count,
  };
}

async function checkFile(
  view: BackupView,
  file: string,
  header: string[],
  expected: number,
  name: "memories" | "relationships",
  problemOf: (row: string[]) => string | undefined,
): Promise<{ check: VerifyCheck; count: number }> {
  let count = 0;
  const fail = (reason: string, line?: number) => ({
    check: {
      name,
      ok: false,
      detail: `${name}: ${reason}`,
      problem: { file, ...(line === undefined ? {} : { line }), reason },
    },
    count,
  });
  const ids = new Set<string>();
  try {
    let first = true;
    for await (const { row, line } of csvRecords(view.chunks(file))) {
      if (first) {
        first = false;
        if (row.join(",") !== header.join(",")) {
          return fail(
            `the header is "${row.join(",")}", expected "${header.join(",")}"`,
            1,
          );
        }
        continue;
      }
      count++;
      const problem = problemOf(row);
      if (problem) return fail(`record ${count}: ${problem}`, line);
      if (name === "memories") {
        if (ids.has(row[0]!)) {
          return fail(`memory id "${row[0]}" appears twice`, line);
        }
        ids.add(row[0]!);
      }
    }
    if (first) return fail("the file is empty (not even a header)");
  } catch (error) {
    const e = error as { message?: string; lines?: number };
    return fail(
      `not valid CSV: ${(e.message ?? String(error)).replace(/\s+/g, " ")}`,
      e.lines,
    );
  }
  if (count !== expected) {
    return fail(`holds ${count} ${name}, metadata.json says ${expected}`);
  }
  return {
    check: {
      name,
      ok: true,
      detail: `${count.toLocaleString("en-US")} ${name} in ${file}`,
    },
    count,
  };
}
