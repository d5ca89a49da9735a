/**
 * The checks `verify` runs on a Markdown export: the totals equal the
 * metadata, one memory heading per memory and one table row per
 * relationship, code fences followed so that memory text cannot fool the
 * count.
 *
 * @module
 */

import type { BackupMetadata } from "../records.ts";
import type { VerifyCheck } from "../check.ts";
import type { BackupView } from "../view.ts";
import { MEMORIES_MD } from "./text.ts";

/**
 * The Mermaid source of a `memories.md` (for tests and tools).
 *
 * @param markdown The file's text.
 * @returns The text inside the ```mermaid fence, or `undefined`.
 */
export function mermaidBlock(markdown: string): string | undefined {
  const match = /^```mermaid\n([\s\S]*?)\n```$/m.exec(markdown);
  return match?.[1];
}

/**
 * The checks `verify` runs on a Markdown export: the totals in the header
 * equal the metadata, the file holds one memory heading per memory and one
 * table row per relationship, and the graph says how many it shows of how
 * many. Code fences are followed, so memory text cannot fool the count.
 *
 * @param view The export, as the verifier reads it.
 * @param metadata Its metadata.
 * @returns One check for the memories and one for the relationships, and
 * the records counted.
 */
export async function checkMarkdown(
  view: BackupView,
  metadata: BackupMetadata,
): Promise<{ checks: VerifyCheck[]; memories: number; relationships: number }> {
  const file = MEMORIES_MD;
  let fence: string | undefined;
  let headings = 0;
  let tableRows = 0;
  let inRelationships = false;
  let totals: { memories?: number; relationships?: number; graphOf?: number } =
    {};
  let lineNo = 0;
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let carry = "";
  const onLine = (line: string) => {
    lineNo++;
    if (fence !== undefined) {
      const close = /^ {0,3}(`{3,}|~{3,})\s*$/.exec(line);
      if (
        close && close[1]![0] === fence[0] && close[1]!.length >= fence.length
      ) fence = undefined;
      return;
    }
    const open = /^ {0,3}(`{3,}|~{3,})/.exec(line);
    if (open) {
      fence = open[1];
      return;
    }
    const total = /^- (Memories|Relationships): ([\d,]+)$/.exec(line);
    if (total && !inRelationships) {
      totals = {
        ...totals,
        [total[1] === "Memories" ? "memories" : "relationships"]: Number(
          total[2]!.replaceAll(",", ""),
        ),
      };
    }
    if (line.startsWith("##### ")) headings++;
    if (line === "## Relationships") inRelationships = true;
    const graph = /^Showing the top [\d,]+ of ([\d,]+) relationships/.exec(
      line,
    );
    if (graph) {
      totals = { ...totals, graphOf: Number(graph[1]!.replaceAll(",", "")) };
    }
    if (
      inRelationships && line.startsWith("| ") &&
      !line.startsWith("| Source |") && !line.startsWith("| --- |")
    ) {
      tableRows++;
    }
  };
  try {
    for await (const chunk of view.chunks(file)) {
      const text = carry + decoder.decode(chunk, { stream: true });
      const lines = text.split("\n");
      carry = lines.pop()!;
      for (const line of lines) onLine(line);
    }
    carry += decoder.decode();
    if (carry !== "") onLine(carry);
  } catch {
    const reason = "not valid UTF-8";
    return {
      checks: [{
        name: "memories",
        ok: false,
        detail: reason,
        problem: { file, reason },
      }],
      memories: headings,
      relationships: tableRows,
    };
  }
  const fail = (name: string, reason: string): VerifyCheck => ({
    name,
    ok: false,
    detail: `${name}: ${reason}`,
    problem: { file, reason },
  });
  const memories = totals.memories !== metadata.memory_count
    ? fail(
      "memories",
      `the header says ${
        totals.memories ?? "no"
      } memories, metadata.json says ${metadata.memory_count}`,
    )
    : headings !== metadata.memory_count
    ? fail(
      "memories",
      `holds ${headings} memories, metadata.json says ${metadata.memory_count}`,
    )
    : {
      name: "memories",
      ok: true,
      detail: `${headings.toLocaleString("en-US")} memories in ${file}`,
    };
  const expectedRows = metadata.relationship_count;
  const relationships = totals.relationships !== expectedRows
    ? fail(
      "relationships",
      `the header says ${
        totals.relationships ?? "no"
      } relationships, metadata.json says ${expectedRows}`,
    )
    : expectedRows > 0 && totals.graphOf !== expectedRows
    ? fail(
      "relationships",
      `the graph says it shows relationships of ${
        totals.graphOf ?? "none"
      }, metadata.json says ${expectedRows}`,
    )
    : tableRows !== expectedRows
    ? fail(
      "relationships",
      `the tables hold ${tableRows} relationships, metadata.json says ${expectedRows}`,
    )
    : {
      name: "relationships",
      ok: true,
      detail: `${tableRows.toLocaleString("en-US")} relationships in ${file}`,
    };
  return {
    checks: [memories, relationships],
    memories: headings,
    relationships: tableRows,
  };
}
