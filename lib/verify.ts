/**
 * Verifies a backup for real: every file's SHA-256 against `checksums.json`
 * and the combined checksum, the required files, `metadata.json` and every
 * record against the zod schemas, counts against the metadata, unique ids,
 * every embedding's length and finiteness, and the SQLite snapshot's
 * integrity and row counts. `export.json` is read once: hashed and parsed in
 * the same pass.
 *
 * @module
 */

import type { OnProgress } from "./progress.ts";
import { createHash } from "node:crypto";
import { DatabaseSync } from "node:sqlite";
import { hashChunks, sha256Text, sumsText } from "./checksums.ts";
import { errorMessage, oneLine, quote, VerifyError } from "./errors.ts";
import { joinChunks } from "./_fs.ts";
import {
  CHECKSUMS_FILE,
  EXPORT_FILE,
  FORMAT_VERSION,
  METADATA_FILE,
  SNAPSHOT_FILE,
  SUMS_FILE,
} from "./format.ts";
import { readExport } from "./json_reader.ts";
import {
  type BackupMetadata,
  BackupMetadataSchema,
  type Checksums,
  ChecksumsSchema,
  type ExportFormat,
  firstIssue,
  LIFTED_KEYS,
  MemoryRecordSchema,
  RelationshipRecordSchema,
} from "./records.ts";
import {
  countTables,
  RELATIONSHIPS_TABLE,
  taggedValueProblem,
} from "./relationship_store.ts";
import { checkCsv, MEMORIES_CSV, RELATIONSHIPS_CSV } from "./csv_format.ts";
import { checkMarkdown, MEMORIES_MD } from "./markdown_format.ts";
import {
  type BackupView,
  directoryView,
  type EntryKind,
  streamView,
} from "./_backup_view.ts";
import {
  AGE_SUFFIX,
  ENCRYPTION_FILE,
  type EncryptionInfo,
  EncryptionInfoSchema,
  type Keys,
  looksLikeAge,
  openEncrypted,
  PLAINTEXT_FILES,
} from "./encryption.ts";

/** Where a problem is. */
export interface VerifyProblem {
  /** The file inside the backup. */
  readonly file: string;
  /** The 1-based line, when there is one. */
  readonly line?: number;
  /** What is wrong. */
  readonly reason: string;
}

/** One check and its outcome. */
export interface VerifyCheck {
  /** What was checked, e.g. `checksums`. */
  readonly name: string;
  /** Whether it passed. */
  readonly ok: boolean;
  /** A one-line summary. */
  readonly detail: string;
  /** The first problem, when it failed. */
  readonly problem?: VerifyProblem;
}

/** The outcome of {@linkcode verifyBackup}. */
export interface VerifyReport {
  /** The backup directory. */
  readonly dir: string;
  /** Whether every check passed. */
  readonly ok: boolean;
  /** Every check, in order. */
  readonly checks: VerifyCheck[];
  /** The first problem of the first failed check. */
  readonly problem: VerifyProblem | undefined;
  /** The metadata, when it is valid. */
  readonly metadata: BackupMetadata | undefined;
  /** Memory records read. */
  readonly memories: number;
  /** Relationship records read. */
  readonly relationships: number;
  /** Whether the backup is encrypted. */
  readonly encrypted: boolean;
  /** Whether its contents were checked (always, unless encrypted and no key). */
  readonly contentsVerified: boolean;
}

/** Options for {@linkcode verifyBackup}. */
export interface VerifyOptions {
  /** Called as records are read. */
  readonly onProgress?: OnProgress | undefined;
  /** Keys to check an encrypted backup's contents. */
  readonly keys?: Keys | undefined;
  /**
   * The checks of `export.json`, already made by reading the file back as it
   * was written ({@linkcode checkExport}); it is not read again.
   */
  readonly exportChecked?: ExportChecks | undefined;
}

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

async function verifyView(
  dir: string,
  view: BackupView,
  options: VerifyOptions,
): Promise<VerifyReport> {
  const checks: VerifyCheck[] = [];
  const pass = (name: string, detail: string) =>
    checks.push({ name, ok: true, detail });
  const fail = (name: string, detail: string, problem: VerifyProblem) =>
    checks.push({ name, ok: false, detail, problem });

  // 1. Files.
  const entries = view.entries;
  const metadataResult = await readJsonFile(view, METADATA_FILE);
  let metadata: BackupMetadata | undefined;
  if (metadataResult.ok) {
    const parsed = BackupMetadataSchema.safeParse(metadataResult.value);
    if (parsed.success) metadata = parsed.data;
    else {
      const version = (metadataResult.value as { format_version?: unknown })
        ?.format_version;
      const reason = typeof version === "number" && version !== FORMAT_VERSION
        ? `format version ${version} is not supported (this memkeep reads version ${FORMAT_VERSION})`
        : `not a valid backup metadata: ${firstIssue(parsed.error)}`;
      metadataResult.problem = { file: METADATA_FILE, reason };
    }
  }
  const format = metadata?.format ?? guessFormat(entries);
  const required = [
    ...FORMAT_FILES[format],
    METADATA_FILE,
    CHECKSUMS_FILE,
    SUMS_FILE,
  ];
  if (metadata?.relationships.snapshot) {
    required.push(metadata.relationships.snapshot);
  }
  const missing = required.filter((name) => !entries.has(name));
  const notFiles = [...entries].filter(([, kind]) => kind !== "file").map((
    [name],
  ) => name);
  if (missing.length > 0) {
    fail("files", `missing ${missing.join(", ")}`, {
      file: missing[0]!,
      reason: "the file is missing",
    });
  } else if (notFiles.length > 0) {
    fail("files", `${notFiles[0]} is not a regular file`, {
      file: notFiles[0]!,
      reason: `is a ${entries.get(notFiles[0]!)}, not a regular file`,
    });
  } else {
    pass("files", `required files present (${required.join(", ")})`);
  }

  // 2. Checksums (export.json is hashed during the record pass below).
  const { checksums, problem: checksumsProblem } = await readChecksums(
    view,
  );
  const hashes = new Map<string, { sha256: string; bytes: number }>();
  for (const [name, kind] of entries) {
    if (kind !== "file" || name === EXPORT_FILE || name === CHECKSUMS_FILE) {
      continue;
    }
    hashes.set(name, await hashChunks(view.chunks(name)));
  }

  // 3. Metadata.
  if (metadata) {
    pass(
      "metadata",
      `format ${metadata.format_version}, memkeep ${metadata.tool_version}, ${metadata.backup_name}`,
    );
  } else {
    fail("metadata", "metadata.json is not valid", metadataResult.problem!);
  }

  // 4. Records: export.json is hashed in the same pass; CSV and Markdown
  // exports have checks of their own.
  let counted = { memories: 0, relationships: 0 };
  if (format === "json" && entries.get(EXPORT_FILE) === "file") {
    const records = options.exportChecked ??
      await checkExport(view.chunks(EXPORT_FILE), metadata, options);
    hashes.set(EXPORT_FILE, records.digest);
    // Checked while the file was written, before metadata.json existed:
    // compare the header with it now.
    const header = options.exportChecked && records.headerValue
      ? checkHeader(
        records.headerValue.value,
        metadata,
        records.headerValue.line,
      )
      : records.header;
    if (header) checks.push(header);
    checks.push(records.memoryCheck, records.relationshipCheck);
    counted = records;
  } else if (
    metadata && format !== "json" &&
    FORMAT_FILES[format].every((f) => entries.get(f) === "file")
  ) {
    const result = format === "csv"
      ? await checkCsv(view, metadata)
      : await checkMarkdown(view, metadata);
    checks.push(...result.checks);
    counted = result;
  }

  // Checksums, now that every file is hashed.
  checks.splice(
    1,
    0,
    checkChecksums(checksums, checksumsProblem, hashes, entries),
  );

  // 5. Snapshot.
  if (metadata) {
    const snapshotCheck = await checkSnapshot(view, metadata);
    if (snapshotCheck) checks.push(snapshotCheck);
  }

  const firstFailure = checks.find((c) => !c.ok);
  return {
    dir,
    ok: firstFailure === undefined,
    checks,
    problem: firstFailure?.problem,
    metadata,
    memories: counted.memories,
    relationships: counted.relationships,
    encrypted: false,
    contentsVerified: true,
  };
}

/** The data files of each format. */
const FORMAT_FILES: Record<ExportFormat, string[]> = {
  json: [EXPORT_FILE],
  csv: [MEMORIES_CSV, RELATIONSHIPS_CSV],
  markdown: [MEMORIES_MD],
};

/** The format of a directory whose metadata is not usable, by its files. */
function guessFormat(entries: Map<string, EntryKind>): ExportFormat {
  if (entries.has(MEMORIES_CSV) || entries.has(RELATIONSHIPS_CSV)) return "csv";
  if (entries.has(MEMORIES_MD)) return "markdown";
  return "json";
}

/** `metadata.json` and `checksums.json` are small; anything larger is not ours. */
const MAX_SMALL_FILE = 16 * 1024 * 1024;

interface JsonFileResult {
  ok: boolean;
  value?: unknown;
  problem?: VerifyProblem;
}

async function readJsonFile(
  view: BackupView,
  name: string,
): Promise<JsonFileResult> {
  if (view.entries.get(name) !== "file") {
    return {
      ok: false,
      problem: { file: name, reason: "the file is missing" },
    };
  }
  const parts: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of view.chunks(name)) {
      size += chunk.length;
      if (size > MAX_SMALL_FILE) {
        return {
          ok: false,
          problem: {
            file: name,
            reason:
              `more than ${MAX_SMALL_FILE} bytes is too large for this file`,
          },
        };
      }
      parts.push(chunk);
    }
    return {
      ok: true,
      value: JSON.parse(
        new TextDecoder("utf-8", { fatal: true }).decode(joinChunks(parts)),
      ),
    };
  } catch (error) {
    return {
      ok: false,
      problem: { file: name, reason: `not valid JSON: ${errorMessage(error)}` },
    };
  }
}

/** `checksums.json`, read and checked against its schema; or the problem. */
async function readChecksums(
  view: BackupView,
): Promise<{ checksums?: Checksums; problem?: VerifyProblem }> {
  const result = await readJsonFile(view, CHECKSUMS_FILE);
  if (!result.ok) return { problem: result.problem! };
  const parsed = ChecksumsSchema.safeParse(result.value);
  return parsed.success
    ? { checksums: parsed.data }
    : { problem: { file: CHECKSUMS_FILE, reason: firstIssue(parsed.error) } };
}

function checkChecksums(
  checksums: Checksums | undefined,
  problem: VerifyProblem | undefined,
  hashes: Map<string, { sha256: string; bytes: number }>,
  entries: Map<string, EntryKind>,
): VerifyCheck {
  const name = "checksums";
  if (!checksums) {
    return {
      name,
      ok: false,
      detail: "checksums.json is not valid",
      problem: problem!,
    };
  }
  const listed = Object.keys(checksums.files);
  for (const file of listed) {
    if (file === CHECKSUMS_FILE || file === SUMS_FILE || file.includes("/")) {
      return fault(`checksums.json lists "${file}"`, {
        file: CHECKSUMS_FILE,
        reason: `lists "${file}"`,
      });
    }
    const expected = checksums.files[file]!;
    const actual = hashes.get(file);
    if (!actual) {
      return fault(`${file} is missing`, {
        file,
        reason: "listed in checksums.json but missing",
      });
    }
    if (actual.bytes !== expected.bytes) {
      return fault(`${file}: size differs`, {
        file,
        reason:
          `size is ${actual.bytes} bytes, checksums.json says ${expected.bytes} (truncated or changed)`,
      });
    }
    if (actual.sha256 !== expected.sha256) {
      return fault(`${file}: checksum mismatch`, {
        file,
        reason:
          `checksum mismatch: SHA-256 is ${actual.sha256}, checksums.json says ${expected.sha256}`,
      });
    }
  }
  for (const [file, kind] of entries) {
    if (
      kind === "file" && file !== CHECKSUMS_FILE && file !== SUMS_FILE &&
      !listed.includes(file)
    ) {
      return fault(`${file} is not listed`, {
        file,
        reason: "not listed in checksums.json (added after the backup?)",
      });
    }
  }
  const sums = sumsText(checksums.files);
  const sumsActual = hashes.get(SUMS_FILE);
  if (!sumsActual || sumsActual.sha256 !== sha256Text(sums)) {
    return fault("SHA256SUMS disagrees with checksums.json", {
      file: SUMS_FILE,
      reason: "does not match checksums.json",
    });
  }
  if (checksums.combined !== sha256Text(sums)) {
    return fault("combined checksum mismatch", {
      file: CHECKSUMS_FILE,
      reason: `combined checksum is ${checksums.combined}, the files give ${
        sha256Text(sums)
      }`,
    });
  }
  return {
    name,
    ok: true,
    detail: `checksums match (${listed.length} files, combined ${
      checksums.combined.slice(0, 16)
    }…)`,
  };

  function fault(detail: string, p: VerifyProblem): VerifyCheck {
    return { name, ok: false, detail, problem: p };
  }
}

/** The checks of `export.json`, with its digest. */
export interface ExportChecks {
  digest: { sha256: string; bytes: number };
  header: VerifyCheck | undefined;
  /** The metadata header as read, to compare with `metadata.json`. */
  headerValue: { value: unknown; line: number } | undefined;
  memoryCheck: VerifyCheck;
  relationshipCheck: VerifyCheck;
  memories: number;
  relationships: number;
}

/**
 * Why a memory record is not valid, or `undefined` when it is.
 *
 * @param value A parsed record.
 * @param dims The expected vector length, or `null` when undeclared.
 * @param includesVectors Whether the backup holds vectors.
 * @returns The reason, or `undefined`.
 */
export function memoryRecordProblem(
  value: unknown,
  dims: number | null,
  includesVectors: boolean,
): string | undefined {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return "the record is not an object";
  }
  const { embedding, ...rest } = value as Record<string, unknown>;
  const parsed = MemoryRecordSchema.safeParse(rest);
  if (!parsed.success) return firstIssue(parsed.error);
  const metadata = parsed.data.metadata;
  if (metadata) {
    const clash = Object.values(LIFTED_KEYS).find((key) => key in metadata);
    if (clash) {
      return `metadata holds "${clash}", which belongs at the top of the record`;
    }
  }
  for (const field of ["content", "metadata", "created_at", "heat"]) {
    if (nestedDeeper(rest[field], MAX_NESTING)) {
      return `${field} is nested deeper than ${MAX_NESTING} levels`;
    }
  }
  if (!includesVectors) {
    return "embedding" in value
      ? "holds an embedding, but the backup was made without vectors"
      : undefined;
  }
  if (!("embedding" in value)) return "has no embedding";
  if (embedding === null) return undefined;
  if (!Array.isArray(embedding)) return "embedding is not an array";
  if (dims !== null && embedding.length !== dims) {
    return `embedding has ${embedding.length} numbers, expected ${dims}`;
  }
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

/**
 * Payload values nested deeper than this are refused: the embedded store
 * (PGlite 0.5) silently drops a row whose jsonb is nested about 7,000 deep,
 * or hangs, and Postgres refuses one at its stack depth limit.
 */
export const MAX_NESTING = 1000;

/** Whether a parsed JSON value nests objects or arrays deeper than `limit`. */
function nestedDeeper(value: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== "object") continue;
    if (depth > limit) return true;
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}

/** A uuid as Postgres writes one (`id::text`). */
const CANONICAL_UUID =
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Checks `export.json` from its bytes: hashes every byte, and checks the
 * header against the metadata, every record, and the counts.
 *
 * @param chunks The file's bytes.
 * @param metadata The metadata, when valid.
 * @param options Progress callback.
 * @returns The checks and the file's digest.
 */
export async function checkExport(
  chunks: AsyncGenerator<Uint8Array>,
  metadata: BackupMetadata | undefined,
  options: VerifyOptions = {},
): Promise<ExportChecks> {
  const hash = createHash("sha256");
  let bytes = 0;
  // Hashes every byte of the file, also the rest of it when the parser
  // stops early at a syntax error, so the checksum check can still report.
  const hashed = async function* () {
    try {
      while (true) {
        const next = await chunks.next();
        if (next.done) return;
        hash.update(next.value);
        bytes += next.value.length;
        yield next.value;
      }
    } finally {
      // Reached early only when the parser stopped: hash the rest.
      while (true) {
        const next = await chunks.next();
        if (next.done) break;
        hash.update(next.value);
        bytes += next.value.length;
      }
    }
  };
  const ids = new Set<string>();
  const relKeys = new Set<string>();
  const relIds = new Set<number>();
  // Postgres would rewrite any other spelling of a uuid (and merge two
  // spellings of the same one): the ids must be as a uuid column prints them.
  const uuidIds = metadata?.memories.id_type === "uuid";
  let memories = 0;
  let relationships = 0;
  let header: VerifyCheck | undefined;
  let headerValue: ExportChecks["headerValue"];
  let memoryProblem: VerifyProblem | undefined;
  let relationshipProblem: VerifyProblem | undefined;
  let syntaxProblem: VerifyProblem | undefined;
  const dims = metadata?.memories.dims ?? null;
  const includesVectors = metadata?.includes_vectors ?? true;
  try {
    for await (const entry of readExport(hashed())) {
      if (entry.section === "metadata") {
        header = checkHeader(entry.value, metadata, entry.line);
        headerValue = { value: entry.value, line: entry.line };
      } else if (entry.section === "memories") {
        memories++;
        if (memoryProblem) continue;
        const problem = memoryRecordProblem(entry.value, dims, includesVectors);
        if (problem) {
          memoryProblem = {
            file: EXPORT_FILE,
            line: entry.line,
            reason: `memory ${memories}: ${problem}`,
          };
          continue;
        }
        const id = (entry.value as { id: string }).id;
        if (uuidIds && !CANONICAL_UUID.test(id)) {
          memoryProblem = {
            file: EXPORT_FILE,
            line: entry.line,
            reason: `memory ${memories}: id ${
              quote(id)
            } is not a uuid as Postgres writes one, but the table's id type is uuid`,
          };
          continue;
        }
        if (ids.has(id)) {
          memoryProblem = {
            file: EXPORT_FILE,
            line: entry.line,
            reason: `memory id ${quote(id)} appears twice`,
          };
        }
        ids.add(id);
        if (memories % 1000 === 0) {
          options.onProgress?.({
            what: "memories",
            done: memories,
            total: metadata?.memory_count,
            bytes,
          });
        }
      } else {
        relationships++;
        if (relationshipProblem) continue;
        const parsed = RelationshipRecordSchema.safeParse(entry.value);
        if (!parsed.success) {
          relationshipProblem = {
            file: EXPORT_FILE,
            line: entry.line,
            reason: `relationship ${relationships}: ${
              firstIssue(parsed.error)
            }`,
          };
          continue;
        }
        const r = parsed.data;
        const tagged = Object.entries(r).map(([field, value]) => {
          const problem = taggedValueProblem(value);
          return problem && `${quote(field)}: ${problem}`;
        }).find((p) => p !== undefined);
        if (tagged) {
          relationshipProblem = {
            file: EXPORT_FILE,
            line: entry.line,
            reason: `relationship ${relationships}: ${tagged}`,
          };
          continue;
        }
        const key = JSON.stringify([r.source_id, r.target_id, r.rel_type]);
        if (relKeys.has(key)) {
          relationshipProblem = {
            file: EXPORT_FILE,
            line: entry.line,
            reason: `relationship ${quote(r.source_id)} -[${
              quote(r.rel_type)
            }]-> ${quote(r.target_id)} appears twice`,
          };
        } else if (relIds.has(r.id)) {
          relationshipProblem = {
            file: EXPORT_FILE,
            line: entry.line,
            reason: `relationship id ${r.id} appears twice`,
          };
        }
        relKeys.add(key);
        relIds.add(r.id);
      }
    }
  } catch (error) {
    if (!(error instanceof VerifyError)) throw error;
    syntaxProblem = {
      file: error.file,
      ...(error.line === undefined ? {} : { line: error.line }),
      reason: error.reason,
    };
  }
  const countProblem = (
    section: "memories" | "relationships",
    n: number,
  ): VerifyProblem | undefined => {
    if (!metadata) return undefined;
    const expected = section === "memories"
      ? metadata.memory_count
      : metadata.relationship_count;
    return n === expected ? undefined : {
      file: EXPORT_FILE,
      reason: `holds ${n} ${section}, metadata.json says ${expected}`,
    };
  };
  const memoryFault = syntaxProblem ?? memoryProblem ??
    countProblem("memories", memories);
  const relationshipFault = syntaxProblem ?? relationshipProblem ??
    countProblem("relationships", relationships);
  const dimsText = !includesVectors
    ? "no vectors"
    : dims === null
    ? "vectors"
    : `${dims} dims`;
  return {
    digest: { sha256: hash.digest("hex"), bytes },
    headerValue,
    header: header ?? (syntaxProblem ? undefined : {
      name: "header",
      ok: false,
      detail: "export.json has no metadata",
      problem: { file: EXPORT_FILE, reason: "has no metadata header" },
    }),
    memoryCheck: memoryFault
      ? {
        name: "memories",
        ok: false,
        detail: `memories: ${memoryFault.reason}`,
        problem: memoryFault,
      }
      : {
        name: "memories",
        ok: true,
        detail: `${
          memories.toLocaleString("en-US")
        } memories valid (${dimsText}, unique ids)`,
      },
    relationshipCheck: relationshipFault
      ? {
        name: "relationships",
        ok: false,
        detail: `relationships: ${relationshipFault.reason}`,
        problem: relationshipFault,
      }
      : {
        name: "relationships",
        ok: true,
        detail: `${relationships.toLocaleString("en-US")} relationships valid`,
      },
    memories,
    relationships,
  };
}

function checkHeader(
  value: unknown,
  metadata: BackupMetadata | undefined,
  line: number,
): VerifyCheck {
  const name = "header";
  if (!metadata) {
    return {
      name,
      ok: true,
      detail: "export.json header read (metadata.json not usable)",
    };
  }
  const { duration_ms: _, ...expected } = metadata;
  if (canonical(value) !== canonical(expected)) {
    return {
      name,
      ok: false,
      detail: "export.json header disagrees with metadata.json",
      problem: {
        file: EXPORT_FILE,
        line,
        reason: "the metadata header differs from metadata.json",
      },
    };
  }
  return { name, ok: true, detail: "export.json header matches metadata.json" };
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v) => {
    if (v === null || typeof v !== "object" || Array.isArray(v)) return v;
    return Object.fromEntries(
      Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]]),
    );
  });
}

async function checkSnapshot(
  view: BackupView,
  metadata: BackupMetadata,
): Promise<VerifyCheck | undefined> {
  const entries = view.entries;
  const name = "snapshot";
  const file = metadata.relationships.snapshot;
  if (file === null) {
    return entries.has(SNAPSHOT_FILE)
      ? {
        name,
        ok: false,
        detail: "unexpected snapshot",
        problem: {
          file: SNAPSHOT_FILE,
          reason:
            "present, but metadata.json says there is no relationship store",
        },
      }
      : undefined;
  }
  if (entries.get(file) !== "file") return undefined; // reported by "files"
  let db: DatabaseSync;
  try {
    db = await view.openSqlite(file);
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) throw error;
    return {
      name,
      ok: false,
      detail: "snapshot cannot be opened",
      problem: { file, reason: errorMessage(error) },
    };
  }
  try {
    const check = db.prepare("pragma quick_check").get() as
      | Record<string, unknown>
      | undefined;
    const verdict = check ? String(Object.values(check)[0]) : "no answer";
    if (verdict !== "ok") {
      return {
        name,
        ok: false,
        detail: "snapshot is damaged",
        problem: { file, reason: `SQLite quick_check: ${verdict}` },
      };
    }
    const { tables, count } = countTables(db);
    if (canonical(tables) !== canonical(metadata.relationships.tables)) {
      return {
        name,
        ok: false,
        detail: "snapshot tables differ from metadata",
        problem: {
          file,
          reason: `tables ${canonical(tables)}, metadata.json says ${
            canonical(metadata.relationships.tables)
          }`,
        },
      };
    }
    if (count !== metadata.relationship_count) {
      return {
        name,
        ok: false,
        detail: "snapshot count differs",
        problem: {
          file,
          reason:
            `${RELATIONSHIPS_TABLE} holds ${count} rows, metadata.json says ${metadata.relationship_count}`,
        },
      };
    }
    const tableList = Object.entries(tables).map(([t, n]) =>
      `${t} ${n.toLocaleString("en-US")}`
    ).join(", ");
    return {
      name,
      ok: true,
      detail: `relationship snapshot intact (${tableList || "no tables"})`,
    };
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) throw error;
    return {
      name,
      ok: false,
      detail: "snapshot cannot be read",
      problem: { file, reason: errorMessage(error) },
    };
  } finally {
    db.close();
  }
}

async function verifyEncrypted(
  dir: string,
  plain: BackupView,
  options: VerifyOptions,
): Promise<VerifyReport> {
  const checks: VerifyCheck[] = [];
  const infoResult = await readJsonFile(plain, ENCRYPTION_FILE);
  let info: EncryptionInfo | undefined;
  if (infoResult.ok) {
    const parsed = EncryptionInfoSchema.safeParse(infoResult.value);
    if (parsed.success) info = parsed.data;
    else {infoResult.problem = {
        file: ENCRYPTION_FILE,
        reason: firstIssue(parsed.error),
      };}
  }
  if (!info) {
    checks.push({
      name: "encryption",
      ok: false,
      detail: "encryption.json is not valid",
      problem: infoResult.problem!,
    });
  } else {
    const expected = new Set([
      ...info.files.map((f) => `${f}${AGE_SUFFIX}`),
      ...PLAINTEXT_FILES,
    ]);
    const missing = [...expected].filter((f) =>
      plain.entries.get(f) !== "file"
    );
    const extra = [...plain.entries.keys()].filter((f) => !expected.has(f));
    let problem: VerifyProblem | undefined = missing.length > 0
      ? { file: missing[0]!, reason: "the file is missing" }
      : extra.length > 0
      ? { file: extra[0]!, reason: "not listed in encryption.json" }
      : undefined;
    if (!problem) {
      for (const file of info.files) {
        const first = await plain.chunks(`${file}${AGE_SUFFIX}`).next();
        if (first.done || !looksLikeAge(first.value)) {
          problem = {
            file: `${file}${AGE_SUFFIX}`,
            reason: "not an age-encrypted file",
          };
          break;
        }
      }
    }
    checks.push(
      problem
        ? {
          name: "encryption",
          ok: false,
          detail: `${problem.file}: ${problem.reason}`,
          problem,
        }
        : {
          name: "encryption",
          ok: true,
          detail:
            `age-encrypted to ${info.recipients.length} recipient(s): ${info.files.length} files`,
        },
    );
  }
  const { checksums, problem: checksumsProblem } = await readChecksums(
    plain,
  );
  const hashes = new Map<string, { sha256: string; bytes: number }>();
  for (const [name, kind] of plain.entries) {
    if (kind === "file" && name !== CHECKSUMS_FILE) {
      hashes.set(name, await hashChunks(plain.chunks(name)));
    }
  }
  const ciphertext = checkChecksums(
    checksums,
    checksumsProblem,
    hashes,
    plain.entries,
  );
  checks.push({
    ...ciphertext,
    name: "ciphertext",
    detail: ciphertext.detail.replace(
      /^checksums match/,
      "ciphertext checksums match",
    ),
  });

  let inner: VerifyReport | undefined;
  if (info && options.keys && checks.every((c) => c.ok)) {
    const keys = options.keys;
    const view = streamView(info.files, async function* (name) {
      using file = await Deno.open(`${dir}/${name}${AGE_SUFFIX}`, {
        read: true,
      });
      let plainStream: ReadableStream<Uint8Array>;
      try {
        plainStream = await openEncrypted(keys, file.readable);
      } catch (error) {
        throw new VerifyError(
          `${name}${AGE_SUFFIX}`,
          `cannot be decrypted with the key given: ${errorMessage(error)}`,
        );
      }
      try {
        yield* plainStream;
      } catch (error) {
        // age authenticates every chunk: a changed byte ends the stream here.
        throw new VerifyError(
          `${name}${AGE_SUFFIX}`,
          `cannot be decrypted: the ciphertext is damaged or was altered (${
            errorMessage(error)
          })`,
        );
      }
    });
    try {
      inner = await verifyView(dir, view, options);
      checks.push(...inner.checks);
    } catch (error) {
      if (!(error instanceof VerifyError)) throw error;
      checks.push({
        name: "contents",
        ok: false,
        detail: error.message,
        problem: { file: error.file, reason: error.reason },
      });
    }
  } else if (checks.every((c) => c.ok)) {
    checks.push({
      name: "contents",
      ok: true,
      detail:
        "not checked: encrypted, and no key given (set AGE_IDENTITY_FILE or AGE_PASSPHRASE to check everything)",
    });
  }
  const firstFailure = checks.find((c) => !c.ok);
  return {
    dir,
    ok: firstFailure === undefined,
    checks,
    problem: firstFailure?.problem,
    metadata: inner?.metadata,
    memories: inner?.memories ?? 0,
    relationships: inner?.relationships ?? 0,
    encrypted: true,
    contentsVerified: inner !== undefined,
  };
}
