/**
 * The CSV export's files and columns, and how a record becomes a row:
 *
 * | file | columns |
 * |---|---|
 * | `memories.csv` | `id,content,user_id,metadata,created_at,heat` and `embedding` unless `--no-vectors` |
 * | `relationships.csv` | `id,source_id,target_id,rel_type,strength,metadata,created_at,updated_at` |
 *
 * A text value is written as its text, a missing or `null` value as an empty
 * cell, any other value as its JSON text. `metadata` is the rest of the
 * payload (without `data`, `user_id`, `created_at`, `heat`) as JSON, digits
 * kept; `embedding` is pgvector's text form `[0.1,…]`. RFC 4180 (CRLF line
 * ends, quotes doubled), UTF-8.
 *
 * @module
 */

import type { RawRecord } from "../records.ts";
import { rawRecordLine } from "../records.ts";
import { metadataColumnValue, sqliteValueFromJson } from "../sqlite_values.ts";
import { recordFields } from "../json/scan.ts";

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
export const CSV_OPTIONS = {
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

export function relationshipRow(record: RawRecord): string[] {
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
