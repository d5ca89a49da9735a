/**
 * The checks `verify` runs on a CSV export, with `csv-parse`: each file
 * parses as RFC 4180 with the expected header, ids are unique, each
 * embedding has the recorded number of finite numbers, and record counts
 * equal the metadata.
 *
 * @module
 */

import { Readable } from "node:stream";
import { parse } from "csv-parse";
import { type BackupMetadata, vectorProblem } from "../records.ts";
import type { VerifyCheck } from "../check.ts";
import type { BackupView } from "../view.ts";
import {
  MEMORIES_CSV,
  MEMORY_COLUMNS,
  RELATIONSHIP_COLUMNS,
  RELATIONSHIPS_CSV,
} from "./columns.ts";

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
        const problem = vectorProblem(vector, metadata.memories.dims);
        if (problem) return problem;
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
