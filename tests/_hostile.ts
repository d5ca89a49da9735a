/**
 * Helpers for the hostile-input tests: a seeded PRNG, a lossless JSON reader
 * (numbers keep their source text), what a backup's records should become in
 * the target stores, digests of a SQLite file, re-sealing a tampered backup
 * with fresh checksums, the mutations of the fuzz test, and zip patching.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { seededRandom } from "../lib/store/demo_data.ts";

/** A PRNG returning floats in [0, 1). */
export type Rng = () => number;

/** A small seeded PRNG (mulberry32), so that a fuzz case can be replayed. */
export const mulberry32: (seed: number) => Rng = seededRandom;

/**
 * A whole number in [0, n).
 *
 * @param rng The PRNG.
 * @param n The bound.
 * @returns The number.
 */
export function below(rng: Rng, n: number): number {
  return Math.floor(rng() * n);
}

/**
 * One element of a list.
 *
 * @param rng The PRNG.
 * @param list A non-empty list.
 * @returns The element.
 */
export function pick<T>(rng: Rng, list: readonly T[]): T {
  return list[below(rng, list.length)]!;
}

/** A JSON number with its exact source text. */
export class Num {
  /**
   * @param source The number as written.
   */
  constructor(readonly source: string) {}
}

/** A JSON value read without losing digits. */
export type Lossless =
  | null
  | boolean
  | string
  | Num
  | Lossless[]
  | { [key: string]: Lossless };

/**
 * Parses JSON keeping every number's source text (`JSON.parse` source text
 * access), so `12345678901234567890123` is not rounded.
 *
 * @param text JSON text.
 * @returns The value.
 */
export function parseLossless(text: string): Lossless {
  return JSON.parse(
    text,
    (_key: string, value: unknown, context?: { source?: string }) =>
      typeof value === "number" ? new Num(context!.source!) : value,
  ) as Lossless;
}

/**
 * Writes a lossless value back as JSON, numbers as they were written.
 *
 * @param value The value.
 * @returns JSON text.
 */
export function serializeLossless(value: Lossless): string {
  if (value instanceof Num) return value.source;
  if (value === null || typeof value !== "object") {
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) {
    return `[${value.map(serializeLossless).join(",")}]`;
  }
  return `{${
    Object.entries(value).map(([k, v]) =>
      `${JSON.stringify(k)}:${serializeLossless(v)}`
    ).join(",")
  }}`;
}

/**
 * Whether two lossless values are equal (object key order aside; numbers by
 * their source text).
 *
 * @param a A value.
 * @param b Another.
 * @returns Whether they are equal.
 */
export function losslessEqual(a: Lossless, b: Lossless): boolean {
  if (a instanceof Num || b instanceof Num) {
    return a instanceof Num && b instanceof Num && a.source === b.source;
  }
  if (a === null || b === null || typeof a !== "object") return a === b;
  if (typeof b !== "object") return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length &&
      a.every((x, i) => losslessEqual(x, b[i]!));
  }
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i]) &&
    ka.every((k) => losslessEqual(a[k]!, b[k]!));
}

/** A memory as the target table should hold it. */
export interface ExpectedMemory {
  /** The id as text. */
  readonly id: string;
  /** The float32 vector, or `null` for NULL. */
  readonly vector: Float32Array | null;
  /** The payload as JSON text (numbers as written), or `null` for NULL. */
  readonly payload: string | null;
}

/** What a restore of a backup should leave in the target stores. */
export interface ExpectedBackup {
  /** The memories, in file order. */
  readonly memories: ExpectedMemory[];
  /** The relationship records, in file order. */
  readonly relationships: Record<string, Lossless>[];
}

const LIFTED: [string, string][] = [
  ["content", "data"],
  ["created_at", "created_at"],
  ["heat", "heat"],
];

/**
 * Reads what a backup's `export.json` says the target should hold, with a
 * parser of its own (not memkeep's reader): the whole document through
 * `JSON.parse`, numbers kept as written.
 *
 * @param exportText The document.
 * @returns The memories and relationships.
 */
export function expectedOf(exportText: string): ExpectedBackup {
  const doc = parseLossless(exportText) as {
    memories: Record<string, Lossless>[];
    relationships: Record<string, Lossless>[];
  };
  const memories = doc.memories.map((record): ExpectedMemory => {
    const embedding = record.embedding;
    const vector = embedding === undefined || embedding === null
      ? null
      : Float32Array.from(
        (embedding as Num[]).map((n) => Number(n.source)),
      );
    let payload: string | null = null;
    if (Object.hasOwn(record, "metadata")) {
      const entries: [string, Lossless][] = [];
      for (const [field, key] of LIFTED) {
        if (Object.hasOwn(record, field)) entries.push([key, record[field]!]);
      }
      entries.push(
        ...Object.entries(record.metadata as Record<string, Lossless>),
      );
      payload = `{${
        entries.map(([k, v]) => `${JSON.stringify(k)}:${serializeLossless(v)}`)
          .join(",")
      }}`;
    }
    return { id: record.id as string, vector, payload };
  });
  return { memories, relationships: doc.relationships };
}

/** A value `node:sqlite` binds. */
type Bindable = string | number | bigint | null | Uint8Array;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** The SQLite value a JSON field stands for, as a backup writes them. */
function sqliteOf(value: Lossless): Bindable {
  if (value === null || typeof value === "string") return value;
  if (typeof value === "boolean") return value ? 1 : 0;
  if (value instanceof Num) {
    const n = Number(value.source);
    if (!/^-?\d+$/.test(value.source) || Number.isSafeInteger(n)) return n;
    const big = BigInt(value.source);
    return big >= INT64_MIN && big <= INT64_MAX ? big : n;
  }
  if (!Array.isArray(value)) {
    const keys = Object.keys(value);
    if (keys.length === 1 && typeof value.$blob === "string") {
      return Uint8Array.from(atob(value.$blob), (c) => c.charCodeAt(0));
    }
    if (keys.length === 1 && typeof value.$real === "string") {
      return Number(value.$real);
    }
  }
  return serializeLossless(value);
}

/** Whether a relationship's metadata is kept as JSON text (compared as JSON). */
function metadataIsJson(record: Record<string, Lossless>): boolean {
  const m = record.metadata;
  if (Object.hasOwn(record, "metadata_text")) return false;
  if (m === null || m === undefined || typeof m !== "object") return false;
  if (m instanceof Num) return false;
  return typeof sqliteOf(m) === "string";
}

/** A row read with big integers on. */
export type SqliteRow = Record<string, Bindable>;

/**
 * The rows of `relationships` a merge of these records into an empty table
 * of the given shape should give: each record inserted, by plain SQL, into
 * an in-memory table made with the same statements (so SQLite's type
 * affinity applies as in the target). Fields that are not columns are left
 * out, as the table cannot hold them.
 *
 * @param records The backup's relationship records.
 * @param ddl The statements that make the target's table and indexes.
 * @returns The rows by id, and the ids whose metadata is JSON text (compare as JSON).
 */
export function expectedRelationshipRows(
  records: Record<string, Lossless>[],
  ddl: string[],
): { rows: SqliteRow[]; jsonMetadata: Map<string, Lossless> } {
  const db = new DatabaseSync(":memory:");
  try {
    for (const sql of ddl) db.exec(sql);
    const columns = (db.prepare("pragma table_info(relationships)").all() as {
      name: string;
    }[]).map((c) => c.name);
    const jsonMetadata = new Map<string, Lossless>();
    for (const record of records) {
      const names: string[] = [];
      const values: Bindable[] = [];
      for (const [key, value] of Object.entries(record)) {
        if (!columns.includes(key)) continue;
        names.push(key);
        if (key === "metadata" && Object.hasOwn(record, "metadata_text")) {
          values.push(JSON.parse(serializeLossless(record.metadata_text!)));
        } else {
          values.push(sqliteOf(value));
        }
      }
      db.prepare(
        `insert into relationships (${
          names.map((n) => `"${n}"`).join(", ")
        }) values (${names.map(() => "?").join(", ")})`,
      ).run(...values);
      if (metadataIsJson(record)) {
        jsonMetadata.set(String(sqliteOf(record.id!)), record.metadata!);
      }
    }
    return { rows: relationshipRows(db), jsonMetadata };
  } finally {
    db.close();
  }
}

/**
 * The rows of `relationships`, by id, big integers on.
 *
 * @param db An open database.
 * @returns The rows.
 */
export function relationshipRows(db: DatabaseSync): SqliteRow[] {
  const statement = db.prepare("select * from relationships order by id");
  statement.setReadBigInts(true);
  return statement.all() as SqliteRow[];
}

/**
 * The statements that make the `relationships` table and its indexes.
 *
 * @param path A SQLite file.
 * @returns The statements.
 */
export function relationshipDdl(path: string): string[] {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return (db.prepare(
      "select sql from sqlite_schema where tbl_name = 'relationships' and sql is not null order by type = 'index', name",
    ).all() as { sql: string }[]).map((r) => r.sql);
  } finally {
    db.close();
  }
}

/** `metadata.json` as a plain object. */
export type MetadataObject = Record<string, unknown> & {
  memories: Record<string, unknown>;
  relationships: Record<string, unknown>;
};

/**
 * The bytes of `metadata.json` as memkeep writes it.
 *
 * @param metadata The metadata.
 * @returns The file's bytes.
 */
export function metadataBytes(metadata: MetadataObject): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(metadata, null, 2) + "\n");
}

/**
 * Replaces the header line of an export document (line 1) with the metadata
 * given, as memkeep writes it (without `duration_ms`).
 *
 * @param exportText The document.
 * @param metadata The metadata.
 * @returns The document with the new header.
 */
export function withHeader(
  exportText: string,
  metadata: MetadataObject,
): string {
  const { duration_ms: _, ...header } = metadata;
  const nl = exportText.indexOf("\n");
  return `{"metadata":${JSON.stringify(header)},${exportText.slice(nl)}`;
}

/** The mutation kinds of the fuzz test. */
export const MUTATIONS = [
  "byte-flip",
  "byte-insert",
  "byte-delete",
  "truncate",
  "line-delete",
  "line-duplicate",
  "line-swap",
  "field-type",
  "field-drop",
  "field-add",
  "id-change",
  "number",
  "string",
  "embedding-length",
  "metadata",
] as const;

/** A mutation kind. */
export type MutationKind = typeof MUTATIONS[number];

/** A mutated backup. */
export interface Mutant {
  /** The new `export.json`. */
  readonly exportBytes: Uint8Array;
  /** The new `metadata.json`, when the metadata was changed. */
  readonly metadataBytes?: Uint8Array;
  /** What was done, for the assertion messages. */
  readonly what: string;
}

const encoder = new TextEncoder();

const INSERT_TEXT = [
  "{",
  "}",
  "[",
  "]",
  '"',
  ":",
  ",",
  "\\",
  " ",
  "\n",
  "0",
  "9",
  "-",
  "+",
  ".",
  "e",
  "E",
  "null",
  "true",
  "NaN",
  "\\n",
  "\\u0000",
  "\\ud800",
  "é",
  "🙂",
];

const ODD_VALUES: string[] = [
  "0",
  "-1",
  "1.5",
  '"text"',
  '""',
  "null",
  "true",
  "false",
  "[]",
  "{}",
  "[1,2]",
  '{"a":1}',
  "12345678901234567890123",
  '"NaN"',
  '"x\'); drop table t;--"',
];

const ODD_NUMBERS: string[] = [
  "12345678901234567890123",
  "0.1000000000000000055511151231257827",
  "1e308",
  "1e400",
  "-1e400",
  "1e39",
  "3.4028235e38",
  "5e-324",
  "1e-50",
  "-0",
  "1E+2",
  '"NaN"',
  '"Infinity"',
  "NaN",
  "Infinity",
  "-Infinity",
  '"0.5"',
  "1e1000000",
  "9223372036854775807",
  "9223372036854775808",
];

const ODD_KEYS = [
  "x",
  '"); drop table memories; --',
  "__proto__",
  "constructor",
  "line\nbreak",
  "data",
  "heat",
  "id",
  "embedding",
  "metadata_text",
  "",
  "ключ",
];

const ODD_STRINGS = [
  "",
  "x'); drop table t;--",
  "🙂 \u2028 \u2029",
  "line\nbreak\r\n",
  "tab\there",
  "a".repeat(100_000),
  "\\u0000 as text",
];

const ODD_STRING_TEXT = ['"a\\u0000b"', '"a\\ud800b"', '"\\udc00"'];

/** The lines of the export document that are records, by section. */
function recordLines(
  lines: string[],
): { memories: number[]; relationships: number[] } {
  const memories: number[] = [];
  const relationships: number[] = [];
  let section: "memories" | "relationships" | undefined;
  lines.forEach((line, i) => {
    if (line === '"memories":[') section = "memories";
    else if (line === '"relationships":[') section = "relationships";
    else if (line.startsWith("{") && section === "memories") memories.push(i);
    else if (line.startsWith("{") && section === "relationships") {
      relationships.push(i);
    }
  });
  return { memories, relationships };
}

/**
 * Edits one record line of an export document as JSON. Values to splice as
 * raw text (huge numbers, `NaN`) are given as `raw(text)` placeholders.
 *
 * @param line The line, with its trailing comma if it has one.
 * @param edit Changes the parsed record.
 * @returns The new line.
 */
export function editRecord(
  line: string,
  edit: (
    record: Record<string, unknown>,
    raw: (text: string) => string,
  ) => void,
): string {
  const more = line.endsWith(",");
  const record = JSON.parse(more ? line.slice(0, -1) : line) as Record<
    string,
    unknown
  >;
  const raws = new Map<string, string>();
  const raw = (text: string) => {
    const key = `@@raw${raws.size}@@`;
    raws.set(key, text);
    return key;
  };
  edit(record, raw);
  let text = JSON.stringify(record);
  for (const [key, value] of raws) {
    text = text.replace(`"${key}"`, () => value);
  }
  return text + (more ? "," : "");
}

function randomUuid(rng: Rng): string {
  const hex = Array.from({ length: 32 }, () => below(rng, 16).toString(16))
    .join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${
    hex.slice(17, 20)
  }-${hex.slice(20, 32)}`;
}

/**
 * Applies one mutation of the given kind to a valid backup.
 *
 * @param exportText The backup's `export.json`.
 * @param metadata The backup's `metadata.json`.
 * @param kind The kind of mutation.
 * @param rng The case's PRNG.
 * @returns The mutated files.
 */
export function mutate(
  exportText: string,
  metadata: MetadataObject,
  kind: MutationKind,
  rng: Rng,
): Mutant {
  const bytes = encoder.encode(exportText);
  const lines = exportText.split("\n");
  const records = recordLines(lines);
  const anyRecord = () =>
    rng() < 0.6
      ? pick(rng, records.memories)
      : pick(rng, records.relationships);
  const fromLines = (what: string): Mutant => ({
    exportBytes: encoder.encode(lines.join("\n")),
    what,
  });
  switch (kind) {
    case "byte-flip": {
      const out = bytes.slice();
      const n = 1 + below(rng, 3);
      const at: number[] = [];
      for (let k = 0; k < n; k++) {
        const i = below(rng, out.length);
        out[i] = rng() < 0.5 ? out[i]! ^ (1 << below(rng, 8)) : below(rng, 256);
        at.push(i);
      }
      return { exportBytes: out, what: `bytes changed at ${at.join(", ")}` };
    }
    case "byte-insert": {
      const i = below(rng, bytes.length + 1);
      const piece = rng() < 0.8
        ? encoder.encode(pick(rng, INSERT_TEXT))
        : Uint8Array.from({ length: 1 + below(rng, 4) }, () => below(rng, 256));
      const out = new Uint8Array(bytes.length + piece.length);
      out.set(bytes.subarray(0, i));
      out.set(piece, i);
      out.set(bytes.subarray(i), i + piece.length);
      return {
        exportBytes: out,
        what: `inserted [${[...piece].join(" ")}] at ${i}`,
      };
    }
    case "byte-delete": {
      const i = below(rng, bytes.length);
      const n = 1 + below(rng, 8);
      const out = new Uint8Array(bytes.length - Math.min(n, bytes.length - i));
      out.set(bytes.subarray(0, i));
      out.set(bytes.subarray(i + n), i);
      return { exportBytes: out, what: `deleted ${n} bytes at ${i}` };
    }
    case "truncate": {
      const i = below(rng, bytes.length);
      return { exportBytes: bytes.slice(0, i), what: `cut at ${i}` };
    }
    case "line-delete": {
      const i = below(rng, lines.length);
      lines.splice(i, 1);
      return fromLines(`line ${i + 1} deleted`);
    }
    case "line-duplicate": {
      const i = below(rng, lines.length);
      lines.splice(i, 0, lines[i]!);
      return fromLines(`line ${i + 1} duplicated`);
    }
    case "line-swap": {
      // Mostly records of one section (which may be valid), sometimes any.
      const within = rng() < 0.6;
      const pool = within
        ? (rng() < 0.5 ? records.memories : records.relationships)
        : lines.map((_, i) => i);
      const a = pick(rng, pool);
      const b = pick(rng, pool);
      [lines[a], lines[b]] = [lines[b]!, lines[a]!];
      return fromLines(`lines ${a + 1} and ${b + 1} swapped`);
    }
    case "field-type":
    case "field-drop":
    case "number":
    case "string":
    case "embedding-length":
    case "field-add":
    case "id-change": {
      const isMemory = kind === "embedding-length" ||
        (kind !== "id-change" && rng() < 0.6) ||
        (kind === "id-change" && rng() < 0.7);
      const i = isMemory
        ? pick(rng, records.memories)
        : kind === "id-change"
        ? pick(rng, records.relationships)
        : anyRecord();
      let what = `${kind} on line ${i + 1}`;
      lines[i] = editRecord(lines[i]!, (record, raw) => {
        const fields = Object.keys(record);
        const metadataObject = record.metadata !== null &&
            typeof record.metadata === "object" &&
            !Array.isArray(record.metadata)
          ? record.metadata as Record<string, unknown>
          : undefined;
        switch (kind) {
          case "field-type": {
            const field = pick(rng, fields);
            const value = pick(rng, ODD_VALUES);
            record[field] = raw(value);
            what += `: ${field} = ${value}`;
            break;
          }
          case "field-drop": {
            const field = pick(rng, fields);
            delete record[field];
            what += `: ${field} dropped`;
            break;
          }
          case "field-add": {
            const key = pick(rng, ODD_KEYS);
            const value = pick(rng, ODD_VALUES);
            const target = metadataObject && rng() < 0.5
              ? metadataObject
              : record;
            Object.defineProperty(target, key, {
              value: raw(value),
              enumerable: true,
              writable: true,
              configurable: true,
            });
            what += `: ${JSON.stringify(key)} = ${value}${
              target === record ? "" : " in metadata"
            }`;
            break;
          }
          case "id-change": {
            const others = isMemory ? records.memories : records.relationships;
            const other = JSON.parse(
              lines[pick(rng, others)]!.replace(/,$/, ""),
            ) as { id: unknown };
            const id = isMemory
              ? pick(rng, [
                JSON.stringify(other.id),
                JSON.stringify(randomUuid(rng)),
                JSON.stringify(String(record.id).toUpperCase()),
                JSON.stringify(`{${record.id}}`),
                JSON.stringify(String(record.id).replaceAll("-", "")),
                '"x\'); drop table t;--"',
                '""',
                '"line\\nbreak"',
                "42",
                "null",
              ])
              : pick(rng, [
                String(other.id),
                "0",
                "-1",
                "9007199254740993",
                "9223372036854775807",
                "1.5",
                '"1"',
                "1e400",
              ]);
            record.id = raw(id);
            what += `: id = ${id}`;
            break;
          }
          case "number": {
            const value = pick(rng, ODD_NUMBERS);
            const embedding = record.embedding;
            if (isMemory && Array.isArray(embedding) && rng() < 0.6) {
              const k = below(rng, embedding.length);
              embedding[k] = raw(value);
              what += `: embedding[${k}] = ${value}`;
            } else {
              const field = isMemory
                ? pick(rng, ["heat", "importance", "access_count"])
                : pick(rng, ["strength", "id", "metadata"]);
              const target = isMemory && field !== "heat" && metadataObject
                ? metadataObject
                : record;
              target[field] = raw(value);
              what += `: ${field} = ${value}`;
            }
            break;
          }
          case "string": {
            const field = isMemory
              ? pick(rng, ["content", "created_at", "id", "hash", "user_id"])
              : pick(rng, [
                "source_id",
                "target_id",
                "rel_type",
                "created_at",
                "metadata",
              ]);
            const target =
              isMemory && ["hash", "user_id"].includes(field) && metadataObject
                ? metadataObject
                : record;
            if (rng() < 0.25) {
              const text = pick(rng, ODD_STRING_TEXT);
              target[field] = raw(text);
              what += `: ${field} = ${text}`;
            } else {
              const text = pick(rng, ODD_STRINGS);
              target[field] = rng() < 0.5
                ? text
                : `${String(target[field] ?? "")}${text}`;
              what += `: ${field} += ${JSON.stringify(text.slice(0, 40))}`;
            }
            break;
          }
          case "embedding-length": {
            const embedding = record.embedding;
            if (Array.isArray(embedding)) {
              if (rng() < 0.5) embedding.pop();
              else embedding.push(0.25);
              what += `: ${embedding.length} numbers`;
            }
            break;
          }
        }
      });
      return fromLines(what);
    }
    case "metadata": {
      const m = structuredClone(metadata);
      const mem = m.memories;
      const rel = m.relationships;
      const changes: [string, () => void][] = [
        ["id_type text", () => mem.id_type = "text"],
        ["id_type SQL", () => mem.id_type = "uuid); drop table t; --"],
        ["id_type integer", () => mem.id_type = "integer"],
        ["payload_type json", () => mem.payload_type = "json"],
        ["payload_type text", () => mem.payload_type = "text"],
        ["dims null", () => mem.dims = null],
        ["dims 9", () => mem.dims = 9],
        ["dims 0", () => mem.dims = 0],
        ["dims string", () => mem.dims = "8"],
        ["table SQL", () => mem.table = 'memories"; drop table t; --'],
        ["table other", () => mem.table = "other"],
        ["schema pg_catalog", () => mem.schema = "pg_catalog"],
        ["index SQL", () =>
          (mem.indexes as string[]).push(
            "CREATE INDEX x ON public.memories USING btree (id); DROP TABLE t",
          )],
        ["index quoted call", () =>
          (mem.indexes as string[]).push(
            'CREATE INDEX y ON public.memories USING btree (("pg_sleep"(0)::text))',
          )],
        ["includes_vectors false", () => m.includes_vectors = false],
        ["memory_count +1", () => m.memory_count = Number(m.memory_count) + 1],
        [
          "relationship_count -1",
          () => m.relationship_count = Number(m.relationship_count) - 1,
        ],
        ["snapshot outside", () => rel.snapshot = "../relationships.db"],
        ["snapshot export.json", () => rel.snapshot = "export.json"],
        ["snapshot null", () => rel.snapshot = null],
        [
          "tables changed",
          () => (rel.tables as Record<string, number>).relationships = 0,
        ],
        ["format csv", () => m.format = "csv"],
        ["format_version 2", () => m.format_version = 2],
        ["user_id SQL", () => m.user_id = "x'); drop table t;--"],
        ["created_at", () => m.created_at = "yesterday"],
        ["backup_name", () => m.backup_name = "../../etc"],
        ["extra key", () => m.extra = 1],
        ["tool_version", () => m.tool_version = "9.9.9\nsecond line"],
        ["key dropped", () => delete m[pick(rng, Object.keys(m))]],
      ];
      const [what, change] = pick(rng, changes);
      change();
      // Mostly both files (consistent), sometimes metadata.json alone.
      const both = rng() < 0.8;
      return {
        exportBytes: encoder.encode(
          both ? withHeader(exportText, m) : exportText,
        ),
        metadataBytes: metadataBytes(m),
        what: `metadata: ${what}${both ? "" : " (metadata.json only)"}`,
      };
    }
  }
}

/**
 * Rewrites the sizes a zip declares for one entry (central directory and data
 * descriptor), leaving its data as it is: a zip that lies about how much an
 * entry inflates to.
 *
 * @param zip The zip's bytes (changed in place).
 * @param name The entry.
 * @param size The uncompressed size to declare.
 */
export function declareSize(zip: Uint8Array, name: string, size: number): void {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  const target = encoder.encode(name);
  let found = false;
  for (let i = 0; i + 46 <= zip.length; i++) {
    if (view.getUint32(i, true) !== 0x02014b50) continue;
    const nameLength = view.getUint16(i + 28, true);
    const entryName = zip.subarray(i + 46, i + 46 + nameLength);
    if (
      entryName.length !== target.length ||
      !entryName.every((b, k) => b === target[k])
    ) continue;
    found = true;
    const compressed = view.getUint32(i + 20, true);
    const local = view.getUint32(i + 42, true);
    view.setUint32(i + 24, size, true);
    // The data descriptor follows the entry's data.
    const localName = view.getUint16(local + 26, true);
    const localExtra = view.getUint16(local + 28, true);
    const descriptor = local + 30 + localName + localExtra + compressed;
    if (view.getUint32(descriptor, true) === 0x08074b50) {
      view.setUint32(descriptor + 12, size, true);
    } else {
      view.setUint32(local + 22, size, true);
    }
  }
  if (!found) throw new Error(`no zip entry ${name}`);
}
