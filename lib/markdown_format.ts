/**
 * The Markdown export, for people: `memories.md` with the totals, the
 * memories grouped by client and project (ordered by the database), heat
 * indicators, each memory's details and full text, a Mermaid graph of the
 * strongest relationships and a table per relationship type; and the checks
 * `verify` runs on it.
 *
 * Heat: 🔥 hot above 0.7; • normal from 0.3 to 0.7 (both included);
 * ❄️ cold below 0.3; ❔ unknown when missing or not a number (a numeric
 * string such as `"0.8"` counts as its number).
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { createHashingWriter, type FileDigest } from "./checksums.ts";
import type { BackupMetadata, RawRecord } from "./records.ts";
import { RELATIONSHIPS_TABLE } from "./relationship_store.ts";
import type { StoreSnapshot } from "./snapshot.ts";
import type { VerifyCheck } from "./verify.ts";
import type { BackupView } from "./_backup_view.ts";

/** The Markdown file. */
export const MEMORIES_MD = "memories.md";
/** How many relationships the graph shows at most. */
export const GRAPH_LIMIT = 100;

/** A heat level and how it is shown. */
export interface Heat {
  /** The indicator. */
  readonly icon: string;
  /** `hot`, `normal`, `cold` or `unknown`. */
  readonly label: "hot" | "normal" | "cold" | "unknown";
  /** The number, when there is one. */
  readonly value: number | undefined;
}

/**
 * The heat indicator for a payload's `heat`.
 *
 * @param heat The value as stored (any JSON value, or `undefined`).
 * @returns Hot above 0.7, normal from 0.3 to 0.7, cold below 0.3, else unknown.
 */
export function heatOf(heat: unknown): Heat {
  const value = typeof heat === "number"
    ? heat
    : typeof heat === "string" && heat.trim() !== "" &&
        Number.isFinite(Number(heat))
    ? Number(heat)
    : undefined;
  if (value === undefined || !Number.isFinite(value)) {
    return { icon: "❔", label: "unknown", value: undefined };
  }
  if (value > 0.7) return { icon: "🔥", label: "hot", value };
  if (value >= 0.3) return { icon: "•", label: "normal", value };
  return { icon: "❄️", label: "cold", value };
}

/**
 * Escapes text for a Markdown heading, list item or table cell: one line,
 * no emphasis, links, HTML or code.
 */
function inline(text: string): string {
  return text
    .replace(/\s+/g, " ")
    .trim()
    .replace(
      /[\\`*[\]<>|~#]|(?<![\p{L}\p{N}])_|_(?![\p{L}\p{N}])/gu,
      (c) => `\\${c}`,
    );
}

/** Escapes text for a table cell. */
function tableCell(text: string): string {
  return inline(text);
}

/**
 * Text for a quoted Mermaid label: the characters that could end the label,
 * start an entity or markup, or inject HTML become Mermaid entities
 * (`#34;`); whitespace becomes one space (a label is one line); everything
 * else, unicode included, stays readable.
 *
 * @param text Any text.
 * @returns The label text, without the quotes.
 */
export function mermaidText(text: string): string {
  return text.replace(/\s+/g, " ").replace(
    /["#;<>&`|\\{}]|[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu,
    (ch) => `#${ch.codePointAt(0)};`,
  );
}

/** A fence that no run of backticks in `text` can close. */
function fenceFor(text: string): string {
  let longest = 0;
  for (const run of text.match(/`+/g) ?? []) {
    longest = Math.max(longest, run.length);
  }
  return "`".repeat(Math.max(3, longest + 1));
}

function asciiTrim(text: string): string {
  return text.replace(/^[ \t\n\r\f\v]+|[ \t\n\r\f\v]+$/g, "");
}

function stringOf(value: unknown): string {
  if (value === undefined || value === null) return "";
  return typeof value === "string" ? value : JSON.stringify(value);
}

function parsed(record: RawRecord, field: string): unknown {
  const text = record.get(field);
  return text === undefined ? undefined : JSON.parse(text);
}

function preview(content: string): string {
  const first = content.split(/\r?\n/).find((line) => line.trim() !== "") ?? "";
  const chars = [...first.trim()];
  return chars.length > 100
    ? chars.slice(0, 99).join("") + "…"
    : chars.join("");
}

/**
 * Writes `memories.md` from a snapshot.
 *
 * @param dir The output directory being written.
 * @param snapshot The store snapshot (with its relationship copy).
 * @returns The file's digest and the record counts.
 */
export async function writeMarkdown(
  dir: string,
  snapshot: StoreSnapshot,
): Promise<
  { files: Record<string, FileDigest>; memories: number; relationships: number }
> {
  const h = snapshot.header;
  const out = await createHashingWriter(`${dir}/${MEMORIES_MD}`);
  try {
    const source = h.memories.source;
    await out.write(
      [
        "# Memory export",
        "",
        `- Exported: ${h.created_at}`,
        `- User: ${h.user_id === null ? "all users" : inline(h.user_id)}`,
        `- Memories: ${h.memory_count.toLocaleString("en-US")}`,
        `- Relationships: ${h.relationship_count.toLocaleString("en-US")}`,
        `- Source: table ${h.memories.schema}.${h.memories.table} (${
          source.kind === "postgres"
            ? `${source.host}:${source.port}/${source.database}`
            : "embedded store"
        })`,
        "- Heat: 🔥 hot (above 0.7) · • normal (0.3 to 0.7) · ❄️ cold (below 0.3) · ❔ unknown",
        "",
        "## Memories",
        "",
        "",
      ].join("\n"),
    );
    let client: string | undefined | null = null;
    let project: string | undefined | null = null;
    let memories = 0;
    for await (
      const record of snapshot.memories({
        order: "grouped",
        includeVectors: false,
      })
    ) {
      const metadata = (parsed(record, "metadata") ?? {}) as Record<
        string,
        unknown
      >;
      // Trimmed exactly as the database query that orders them trims them.
      const c = asciiTrim(stringOf(metadata.client)) || undefined;
      const p = asciiTrim(stringOf(metadata.project)) || undefined;
      if (c === undefined && p === undefined) {
        if (client !== undefined || project !== undefined) {
          await out.write("### General Memories\n\n");
        }
        client = undefined;
        project = undefined;
      } else {
        if (c !== client || client === null) {
          await out.write(
            `### Client: ${c === undefined ? "No Client" : inline(c)}\n\n`,
          );
          client = c;
          project = null;
        }
        if (p !== project) {
          await out.write(
            `#### Project: ${p === undefined ? "General" : inline(p)}\n\n`,
          );
          project = p;
        }
      }
      await out.write(memoryBlock(record, metadata));
      memories++;
    }
    if (memories === 0) await out.write("No memories.\n\n");
    const relationships = snapshot.relationshipsFile
      ? await writeRelationships(
        out.write,
        snapshot.relationshipsFile,
        h.relationship_count,
      )
      : 0;
    if (!snapshot.relationshipsFile) {
      await out.write("## Relationships\n\nNo relationship store.\n");
    }
    return {
      files: { [MEMORIES_MD]: await out.close() },
      memories,
      relationships,
    };
  } catch (error) {
    out.abort();
    throw error;
  }
}

function memoryBlock(
  record: RawRecord,
  metadata: Record<string, unknown>,
): string {
  const id = JSON.parse(record.get("id")!) as string;
  const content = stringOf(parsed(record, "content"));
  const heat = heatOf(parsed(record, "heat"));
  const title = preview(content) || "(no text)";
  const created = stringOf(parsed(record, "created_at"));
  const details = [
    `- **ID:** ${inline(id)}`,
    `- **Type:** ${inline(stringOf(metadata.type)) || "—"} · **Domain:** ${
      inline(stringOf(metadata.domain)) || "—"
    } · **Source:** ${inline(stringOf(metadata.source)) || "—"}`,
    `- **Heat:** ${heat.icon} ${
      heat.value === undefined ? "unknown" : `${heat.value} (${heat.label})`
    } · **Importance:** ${
      inline(stringOf(metadata.importance)) || "—"
    } · **Created:** ${inline(created.slice(0, 10)) || "—"}`,
  ];
  const fence = fenceFor(content);
  return `##### ${heat.icon} ${inline(title)}\n\n${
    details.join("\n")
  }\n\n${fence}text\n${content}\n${fence}\n\n`;
}

async function writeRelationships(
  write: (text: string) => Promise<void>,
  path: string,
  total: number,
): Promise<number> {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const present = db.prepare(
      "select 1 from sqlite_schema where type = 'table' and name = ?",
    ).get(RELATIONSHIPS_TABLE);
    await write("## Relationships\n\n");
    if (!present || total === 0) {
      await write("No relationships.\n");
      return 0;
    }
    const top = db.prepare(
      `select source_id, target_id, rel_type, strength from ${RELATIONSHIPS_TABLE}
        order by typeof(strength) in ('integer', 'real') desc, strength desc, id limit ${GRAPH_LIMIT}`,
    ).all() as {
      source_id: string;
      target_id: string;
      rel_type: string;
      strength: unknown;
    }[];
    await write(
      `Showing the top ${top.length} of ${
        total.toLocaleString("en-US")
      } relationships by strength.\n\n`,
    );
    const nodes = new Map<string, string>();
    const node = (id: string) => {
      let name = nodes.get(id);
      if (!name) {
        name = `n${nodes.size + 1}`;
        nodes.set(id, name);
      }
      return name;
    };
    const lines = ["```mermaid", "graph TD"];
    for (const r of top) {
      const label = [...String(r.source_id)].length > 24
        ? [...String(r.source_id)].slice(0, 23).join("") + "…"
        : String(r.source_id);
      const targetLabel = [...String(r.target_id)].length > 24
        ? [...String(r.target_id)].slice(0, 23).join("") + "…"
        : String(r.target_id);
      const a = node(String(r.source_id));
      const b = node(String(r.target_id));
      lines.push(
        `  ${a}["${mermaidText(label)}"] -->|"${
          mermaidText(`${r.rel_type} ${stringOf(r.strength)}`)
        }"| ${b}["${mermaidText(targetLabel)}"]`,
      );
    }
    lines.push("```", "");
    await write(lines.join("\n") + "\n");
    const rows = db.prepare(
      `select rel_type, source_id, target_id, strength, created_at, count(*) over (partition by rel_type) as n
         from ${RELATIONSHIPS_TABLE} order by rel_type, typeof(strength) in ('integer', 'real') desc, strength desc, id`,
    );
    let type: string | undefined;
    let count = 0;
    for (const r of rows.iterate() as Iterable<Record<string, unknown>>) {
      const t = stringOf(r.rel_type);
      if (t !== type) {
        await write(
          `${type === undefined ? "" : "\n"}### ${inline(t)} (${
            Number(r.n).toLocaleString("en-US")
          })\n\n| Source | Target | Strength | Created |\n| --- | --- | --- | --- |\n`,
        );
        type = t;
      }
      await write(
        `| ${tableCell(stringOf(r.source_id))} | ${
          tableCell(stringOf(r.target_id))
        } | ${tableCell(stringOf(r.strength))} | ${
          tableCell(stringOf(r.created_at))
        } |\n`,
      );
      count++;
    }
    await write("\n");
    return count;
  } finally {
    db.close();
  }
}

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
