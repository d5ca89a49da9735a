/**
 * Writes the Markdown export, for people: `memories.md` with the totals, the
 * memories grouped by client and project (sorted by the store), heat
 * indicators, each memory's details and full text, a Mermaid graph of the
 * strongest relationships and a table per relationship type.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { createHashingWriter, type FileDigest } from "../checksums.ts";
import type { RawRecord } from "../records.ts";
import { RELATIONSHIPS_TABLE } from "../sqlite_values.ts";
import type { RecordSource } from "../source.ts";
import {
  asciiTrim,
  fenceFor,
  GRAPH_LIMIT,
  heatOf,
  inline,
  MEMORIES_MD,
  mermaidText,
  parsed,
  preview,
  stringOf,
  tableCell,
} from "./text.ts";

/**
 * Writes `memories.md` from a record source.
 *
 * @param dir The output directory being written.
 * @param records The records (with the relationship copy).
 * @returns The file's digest and the record counts.
 */
export async function writeMarkdown(
  dir: string,
  records: RecordSource,
): Promise<
  { files: Record<string, FileDigest>; memories: number; relationships: number }
> {
  const h = records.header;
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
      const record of records.memories({
        groupBy: ["client", "project"],
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
    const relationships = records.relationshipsFile
      ? await writeRelationships(
        out.write,
        records.relationshipsFile,
        h.relationship_count,
      )
      : 0;
    if (!records.relationshipsFile) {
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
