/**
 * The records a backup holds and the zod schemas that check them.
 *
 * A memory record is the mem0 row mapped losslessly: `content` is
 * `payload.data`, `created_at` and `heat` are the payload keys of the same
 * names, `metadata` is the rest of the payload, and `embedding` is the vector.
 * A key absent from the payload is absent from the record.
 *
 * Between readers and writers records travel as {@linkcode RawRecord}s: each
 * field's JSON source text, so that vectors are spliced as pgvector prints
 * them and payload numbers keep every digit.
 *
 * @module
 */

import { z } from "zod";
import { BACKUP_NAME, FORMAT_VERSION } from "./layout.ts";
import { oneLine } from "../errors.ts";

/**
 * A record as field name → JSON source text of the value, in field order.
 * `JSON.parse` of each value gives the field's value.
 */
export type RawRecord = Map<string, string>;

/**
 * Serialises a raw record as one line of JSON (no trailing newline).
 *
 * @param record The record.
 * @returns `{"key":value,...}` with each value spliced as is.
 */
export function rawRecordLine(record: RawRecord): string {
  return rawRecordParts(record).join("");
}

/**
 * {@linkcode rawRecordLine} in pieces, each value a piece of its own: a
 * writer that encodes them one by one keeps an ASCII value (a vector) on
 * V8's fast one-byte path even when another value holds other characters.
 *
 * @param record The record.
 * @returns The pieces of the line, in order.
 */
export function rawRecordParts(record: RawRecord): string[] {
  const parts: string[] = [];
  for (const [key, json] of record) {
    parts.push(
      `${parts.length === 0 ? "{" : ","}${JSON.stringify(key)}:`,
      json,
    );
  }
  parts.push(parts.length === 0 ? "{}" : "}");
  return parts;
}

/** The payload keys a memory record lifts to the top level. */
export const LIFTED_KEYS = {
  content: "data",
  created_at: "created_at",
  heat: "heat",
} as const;

/**
 * The payload of a memory record as JSON text: the inverse of the mapping a
 * backup applies. Built from source text, so numbers keep every digit.
 *
 * @param record A raw memory record.
 * @returns The payload text, or `null` when the payload was NULL (no
 * `metadata` field).
 */
export function payloadFromRecord(record: RawRecord): string | null {
  const metadata = record.get("metadata");
  if (metadata === undefined) return null;
  const lifted: string[] = [];
  for (const [field, key] of Object.entries(LIFTED_KEYS)) {
    const value = record.get(field);
    if (value !== undefined) lifted.push(`${JSON.stringify(key)}:${value}`);
  }
  const inner = metadata.trim().slice(1, -1).trim();
  if (inner !== "") lifted.push(inner);
  return `{${lifted.join(",")}}`;
}

/** A uuid in any case, as Postgres accepts one for a `uuid` column. */
export const UUID =
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A uuid as Postgres writes one (`id::text`): lowercase. */
export const CANONICAL_UUID =
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A memory: one row of the mem0 table. */
export const MemoryRecordSchema = z.object({
  /** The row id as text. */
  id: z.string().min(1, "id must not be empty"),
  /** `payload.data`, the memory text (any JSON value in odd stores). */
  content: z.unknown().optional(),
  /** The vector; `null` for a NULL vector; absent under `--no-vectors`. */
  embedding: z.array(z.number()).nullable().optional(),
  /** The payload without `data`, `created_at` and `heat`; absent when the payload is NULL. */
  metadata: z.record(z.string(), z.unknown()).optional(),
  /** `payload.created_at`. */
  created_at: z.unknown().optional(),
  /** `payload.heat`. */
  heat: z.unknown().optional(),
}).strict();

/** A memory record, parsed. */
export type MemoryRecord = z.infer<typeof MemoryRecordSchema>;

/** A relationship: every column of a row of the SQLite `relationships` table. */
export const RelationshipRecordSchema = z.object({
  id: z.number().int(),
  source_id: z.string(),
  target_id: z.string(),
  rel_type: z.string(),
  /** SQLite keeps any type in any column: a blob or an infinite real is tagged. */
  strength: z.union([
    z.number(),
    z.string(),
    z.null(),
    z.object({ $real: z.string() }).strict(),
    z.object({ $blob: z.string() }).strict(),
  ]).optional(),
  /** The metadata column: parsed when it is a JSON object or array, else the text or null. */
  metadata: z.unknown().optional(),
  /** The exact metadata text, when re-serialising `metadata` would not give it back. */
  metadata_text: z.string().optional(),
  created_at: z.string(),
  updated_at: z.string(),
}).catchall(z.unknown());

/** A relationship record, parsed. */
export type RelationshipRecord = z.infer<typeof RelationshipRecordSchema>;

const sha256 = z.string().regex(
  /^[0-9a-f]{64}$/,
  "must be 64 lowercase hex digits",
);

/** Where the memories came from; never holds credentials. */
export const SourceSchema = z.discriminatedUnion("kind", [
  z.object({
    kind: z.literal("postgres"),
    host: z.string(),
    port: z.number().int(),
    database: z.string(),
    server_version: z.string(),
  }).strict(),
  z.object({
    kind: z.literal("pglite"),
    path: z.string(),
    server_version: z.string(),
  }).strict(),
]);

/** The memory table a backup was taken from. */
export const MemoryTableSchema = z.object({
  schema: z.string(),
  table: z.string(),
  id_type: z.string(),
  vector_type: z.string(),
  payload_type: z.string(),
  dims: z.number().int().positive().nullable(),
  pgvector_version: z.string(),
  indexes: z.array(z.string()),
  source: SourceSchema,
}).strict();

/** The relationship store a backup was taken from. */
export const RelationshipStoreSchema = z.object({
  /** The configured path, or `null` when there was no relationship store. */
  source: z.string().nullable(),
  /** The snapshot file inside the backup, or `null`. */
  snapshot: z.string().nullable(),
  /** Row count of every table in the snapshot. */
  tables: z.record(z.string(), z.number().int().nonnegative()),
}).strict();

/** The formats memkeep writes: a backup is always `json`. */
export type ExportFormat = "json" | "csv" | "markdown";

/** `metadata.json`. */
export const BackupMetadataSchema = z.object({
  tool: z.literal("memkeep"),
  tool_version: z.string(),
  format: z.enum(["json", "csv", "markdown"]),
  format_version: z.literal(FORMAT_VERSION),
  backup_name: z.string().regex(BACKUP_NAME, "must be memory_YYYYMMDD_HHMMSS"),
  created_at: z.iso.datetime(),
  user_id: z.string().nullable(),
  includes_vectors: z.boolean(),
  memory_count: z.number().int().nonnegative(),
  relationship_count: z.number().int().nonnegative(),
  memories: MemoryTableSchema,
  relationships: RelationshipStoreSchema,
  duration_ms: z.number().nonnegative(),
}).strict();

/** The parsed `metadata.json`. */
export type BackupMetadata = z.infer<typeof BackupMetadataSchema>;

/** The `metadata` object at the head of `export.json`: `metadata.json` without the duration. */
export const ExportHeaderSchema = BackupMetadataSchema.omit({
  duration_ms: true,
});

/** The parsed header of `export.json`. */
export type ExportHeader = z.infer<typeof ExportHeaderSchema>;

/** `checksums.json`. */
export const ChecksumsSchema = z.object({
  algorithm: z.literal("sha256"),
  files: z.record(
    z.string(),
    z.object({ sha256, bytes: z.number().int().nonnegative() }).strict(),
  ),
  /** SHA-256 of `SHA256SUMS`, which lists every file's checksum. */
  combined: sha256,
}).strict();

/** The parsed `checksums.json`. */
export type Checksums = z.infer<typeof ChecksumsSchema>;

/**
 * The first problem zod found, as `field: reason`.
 *
 * @param error A zod error.
 * @returns One line naming the field.
 */
export function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return "is not valid";
  const path = issue.path.map(String).join(".");
  // Keys (and zod's quotes of them) come from the file: keep it one line.
  return oneLine(path === "" ? issue.message : `${path}: ${issue.message}`);
}

/**
 * Why an embedding of this length cannot be a row of the memory table's
 * vector column, or `undefined` when it can.
 *
 * @param length The number of values.
 * @param dims The declared dimension, or `null` when undeclared.
 * @returns The reason.
 */
export function vectorLengthProblem(
  length: number,
  dims: number | null,
): string | undefined {
  return dims !== null && length !== dims
    ? `embedding has ${length} numbers, expected ${dims}`
    : undefined;
}

/**
 * Why an embedding cannot be a row of the memory table's vector column, or
 * `undefined` when it can: the declared length, and every value a finite
 * number within a 32-bit float's range. One rule for every format's check.
 *
 * @param embedding The embedding's values.
 * @param dims The declared dimension, or `null` when undeclared.
 * @returns The reason, naming the first bad value.
 */
export function vectorProblem(
  embedding: readonly unknown[],
  dims: number | null,
): string | undefined {
  const lengthProblem = vectorLengthProblem(embedding.length, dims);
  if (lengthProblem) return lengthProblem;
  for (let i = 0; i < embedding.length; i++) {
    const x = embedding[i];
    if (typeof x !== "number" || !Number.isFinite(x)) {
      const shown = typeof x === "number"
        ? String(x)
        : oneLine(JSON.stringify(x) ?? String(x), 80);
      return `embedding[${i}] is ${shown}, not a finite number`;
    }
    if (!Number.isFinite(Math.fround(x))) {
      return `embedding[${i}] is ${x}, beyond the range of a vector's 32-bit floats`;
    }
  }
  return undefined;
}
