/**
 * Text for the Markdown export: heat indicators (🔥 hot above 0.7; • normal
 * from 0.3 to 0.7, both included; ❄️ cold below 0.3; ❔ unknown when missing
 * or not a number, a numeric string such as `"0.8"` counting as its number),
 * and escaping for inline text, table cells, code fences and Mermaid labels,
 * so any memory's text renders as text.
 *
 * @module
 */

import type { RawRecord } from "../records.ts";

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
export function inline(text: string): string {
  return text
    .replace(/\s+/g, " ")
    .trim()
    .replace(
      /[\\`*[\]<>|~#]|(?<![\p{L}\p{N}])_|_(?![\p{L}\p{N}])/gu,
      (c) => `\\${c}`,
    );
}

/** Escapes text for a table cell. */
export function tableCell(text: string): string {
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
export function fenceFor(text: string): string {
  let longest = 0;
  for (const run of text.match(/`+/g) ?? []) {
    longest = Math.max(longest, run.length);
  }
  return "`".repeat(Math.max(3, longest + 1));
}

export function asciiTrim(text: string): string {
  return text.replace(/^[ \t\n\r\f\v]+|[ \t\n\r\f\v]+$/g, "");
}

export function stringOf(value: unknown): string {
  if (value === undefined || value === null) return "";
  return typeof value === "string" ? value : JSON.stringify(value);
}

export function parsed(record: RawRecord, field: string): unknown {
  const text = record.get(field);
  return text === undefined ? undefined : JSON.parse(text);
}

export function preview(content: string): string {
  const first = content.split(/\r?\n/).find((line) => line.trim() !== "") ?? "";
  const chars = [...first.trim()];
  return chars.length > 100
    ? chars.slice(0, 99).join("") + "…"
    : chars.join("");
}
