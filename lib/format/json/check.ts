/**
 * The checks of `export.json`: the header against `metadata.json`, every
 * record against the schema and the record rules (uuid ids, vectors of the
 * declared length, finite float32 values, nesting), unique ids, and the
 * counts; hashed in the same pass.
 *
 * @module
 */

import type { OnProgress } from "../../progress.ts";
import { quote, VerifyError } from "../../errors.ts";
import { EXPORT_FILE } from "../layout.ts";
import { readExport } from "./reader.ts";
import { hashing } from "../checksums.ts";
import {
  type BackupMetadata,
  CANONICAL_UUID,
  firstIssue,
  LIFTED_KEYS,
  MemoryRecordSchema,
  RelationshipRecordSchema,
  UUID,
  vectorLengthProblem,
  vectorProblem,
} from "../records.ts";
import { PlainVector } from "./vector_text.ts";
import { taggedValueProblem } from "../sqlite_values.ts";
import type { VerifyCheck, VerifyProblem } from "../check.ts";

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
  /**
   * The first memory id that is not a uuid in any spelling Postgres takes,
   * for a restore into a uuid column.
   */
  firstNonUuidId: string | undefined;
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
  if (embedding instanceof PlainVector) {
    return vectorLengthProblem(embedding.length, dims);
  }
  if (!Array.isArray(embedding)) return "embedding is not an array";
  return vectorProblem(embedding, dims);
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
  options: { onProgress?: OnProgress | undefined } = {},
): Promise<ExportChecks> {
  // Hashes every byte of the file, also the rest of it when the parser
  // stops early at a syntax error, so the checksum check can still report.
  const hashed = hashing(chunks, { hashRest: true });
  const ids = new Set<string>();
  const relKeys = new Set<string>();
  const relIds = new Set<number>();
  // Postgres would rewrite any other spelling of a uuid (and merge two
  // spellings of the same one): the ids must be as a uuid column prints them.
  const uuidIds = metadata?.memories.id_type === "uuid";
  let memories = 0;
  let relationships = 0;
  let firstNonUuidId: string | undefined;
  let header: VerifyCheck | undefined;
  let headerValue: ExportChecks["headerValue"];
  let memoryProblem: VerifyProblem | undefined;
  let relationshipProblem: VerifyProblem | undefined;
  let syntaxProblem: VerifyProblem | undefined;
  const dims = metadata?.memories.dims ?? null;
  const includesVectors = metadata?.includes_vectors ?? true;
  try {
    for await (
      const entry of readExport(hashed.chunks, EXPORT_FILE, {
        plainVectors: { dims },
      })
    ) {
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
        if (firstNonUuidId === undefined && !UUID.test(id)) firstNonUuidId = id;
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
            bytes: hashed.bytes(),
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
    digest: hashed.digest(),
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
    firstNonUuidId,
  };
}

export function checkHeader(
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

/** JSON with object keys sorted, to compare two values. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v) => {
    if (v === null || typeof v !== "object" || Array.isArray(v)) return v;
    return Object.fromEntries(
      Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]]),
    );
  });
}
