/**
 * The job summary of a nightly backup (`GITHUB_STEP_SUMMARY`): counts and
 * their change since the previous backup when it is known, sizes, duration,
 * combined checksum, artifact name, and a warning when the artifact is not
 * encrypted.
 *
 * @module
 */

import { tableCell } from "../format/markdown/text.ts";
import { bytes, count, duration } from "../units.ts";
import type { BackupMetadata } from "../format/records.ts";

/** What the summary reports. */
export interface SummaryFacts {
  /** The backup's metadata. */
  readonly metadata: BackupMetadata;
  /** The combined checksum. */
  readonly combined: string;
  /** Total size of the backup's files. */
  readonly backupBytes: number;
  /** Total size of what is uploaded. */
  readonly artifactBytes: number;
  /** The artifact's name. */
  readonly artifact: string;
  /** Whether the artifact is encrypted. */
  readonly encrypted: boolean;
  /** The previous backup's metadata, when there is one to compare with. */
  readonly previous: BackupMetadata | undefined;
}

function change(now: number, before: number | undefined): string {
  if (before === undefined) return "";
  const d = now - before;
  return d === 0
    ? " (no change)"
    : ` (${d > 0 ? "+" : "−"}${count(Math.abs(d))})`;
}

/**
 * The summary as Markdown.
 *
 * @param facts What to report.
 * @returns The Markdown text.
 */
export function summaryMarkdown(facts: SummaryFacts): string {
  const m = facts.metadata;
  const since = facts.previous
    ? `\n\nChanges are since ${facts.previous.backup_name}.`
    : "";
  const lines = [
    `## Memory backup ${m.backup_name}`,
    "",
    "| | |",
    "| --- | --- |",
    `| Memories | ${count(m.memory_count)}${
      change(m.memory_count, facts.previous?.memory_count)
    } |`,
    `| Relationships | ${count(m.relationship_count)}${
      change(m.relationship_count, facts.previous?.relationship_count)
    } |`,
    `| Table | ${tableCell(`${m.memories.schema}.${m.memories.table}`)}, ${
      m.memories.dims ?? "?"
    } dims${m.user_id ? `, user ${tableCell(m.user_id)}` : ""} |`,
    `| Backup size | ${bytes(facts.backupBytes)} |`,
    `| Artifact | \`${facts.artifact}\`, ${bytes(facts.artifactBytes)}, ${
      facts.encrypted ? "encrypted with age" : "**not encrypted**"
    } |`,
    `| Duration | ${duration(m.duration_ms)} |`,
    `| Combined SHA-256 | \`${facts.combined}\` |`,
  ];
  if (!facts.encrypted) {
    lines.push(
      "",
      "> [!WARNING]",
      "> This backup was uploaded **unencrypted**: anyone who can read this repository's artifacts can read your memories.",
      "> Set the `AGE_RECIPIENTS` secret to your age public key to encrypt every backup before upload.",
    );
  }
  return lines.join("\n") + since + "\n";
}
