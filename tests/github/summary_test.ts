/**
 * Tests for the job summary a nightly backup writes to
 * `GITHUB_STEP_SUMMARY`: the Markdown a user reads on the run's page.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { BackupMetadata } from "../../lib/format/records.ts";
import {
  type SummaryFacts,
  summaryMarkdown,
} from "../../lib/github/summary.ts";

const COMBINED = "ab".repeat(32);

const METADATA: BackupMetadata = {
  tool: "memkeep",
  tool_version: "0.1.0",
  format: "json",
  format_version: 1,
  backup_name: "memory_20240315_020000",
  created_at: "2024-03-15T02:00:00.000Z",
  user_id: "alex",
  includes_vectors: true,
  memory_count: 38_664,
  relationship_count: 1_205,
  memories: {
    schema: "public",
    table: "memories",
    id_type: "uuid",
    vector_type: "vector",
    payload_type: "jsonb",
    dims: 1536,
    pgvector_version: "0.8.0",
    indexes: ["memories_pkey"],
    source: { kind: "pglite", path: "./data/pglite", server_version: "17.5" },
  },
  relationships: {
    source: "./data/relationships.db",
    snapshot: "relationships.db",
    tables: { relationships: 1_205 },
  },
  duration_ms: 184_000,
};

const PREVIOUS: BackupMetadata = {
  ...METADATA,
  backup_name: "memory_20240314_020000",
  memory_count: 37_000,
  relationship_count: 1_300,
};

function facts(overrides: Partial<SummaryFacts> = {}): SummaryFacts {
  return {
    metadata: METADATA,
    combined: COMBINED,
    backupBytes: 812_400_000,
    artifactBytes: 812_612_345,
    artifact: "memory_20240315_020000",
    encrypted: true,
    previous: undefined,
    ...overrides,
  };
}

/** The table row whose first cell is `label`. */
function row(markdown: string, label: string): string | undefined {
  return markdown.split("\n").find((line) => line.startsWith(`| ${label} |`));
}

const WARNING = [
  "> [!WARNING]",
  "> This backup was uploaded **unencrypted**: anyone who can read this repository's artifacts can read your memories.",
  "> Set the `AGE_RECIPIENTS` secret to your age public key to encrypt every backup before upload.",
].join("\n");

Deno.test("summaryMarkdown() of a first, encrypted backup is a table of counts, table, sizes and checksum", () => {
  assert.equal(
    summaryMarkdown(facts()),
    [
      "## Memory backup memory_20240315_020000",
      "",
      "| | |",
      "| --- | --- |",
      "| Memories | 38,664 |",
      "| Relationships | 1,205 |",
      "| Table | public.memories, 1536 dims, user alex |",
      "| Backup size | 812.4 MB |",
      "| Artifact | `memory_20240315_020000`, 812.6 MB, encrypted with age |",
      "| Duration | 3 min 4 s |",
      `| Combined SHA-256 | \`${COMBINED}\` |`,
      "",
    ].join("\n"),
  );
});

Deno.test("summaryMarkdown() shows each count's change since the previous backup and names it", async (t) => {
  const cases: [string, number, number, string][] = [
    ["more", 38_664, 37_000, "38,664 (+1,664)"],
    ["fewer (a minus sign, not a hyphen)", 10, 1_012, "10 (\u22121,002)"],
    ["the same", 5, 5, "5 (no change)"],
    ["from none", 3, 0, "3 (+3)"],
    ["down to none", 0, 7, "0 (\u22127)"],
  ];
  for (const [name, now, before, cell] of cases) {
    await t.step(name, () => {
      const text = summaryMarkdown(facts({
        metadata: { ...METADATA, memory_count: now, relationship_count: now },
        previous: {
          ...PREVIOUS,
          memory_count: before,
          relationship_count: before,
        },
      }));
      assert.equal(row(text, "Memories"), `| Memories | ${cell} |`);
      assert.equal(row(text, "Relationships"), `| Relationships | ${cell} |`);
      assert.ok(
        text.endsWith(
          "` |\n\nChanges are since memory_20240314_020000.\n",
        ),
        text,
      );
    });
  }
  await t.step("no previous backup: no change shown, no 'since' line", () => {
    const text = summaryMarkdown(facts());
    assert.equal(row(text, "Memories"), "| Memories | 38,664 |");
    assert.doesNotMatch(text, /since|no change|\(\+/);
  });
});

Deno.test("summaryMarkdown() flags an unencrypted artifact in the table and warns below it", () => {
  const text = summaryMarkdown(facts({
    encrypted: false,
    artifactBytes: 812_400_000,
  }));
  assert.equal(
    row(text, "Artifact"),
    "| Artifact | `memory_20240315_020000`, 812.4 MB, **not encrypted** |",
  );
  assert.ok(
    text.endsWith(`| Combined SHA-256 | \`${COMBINED}\` |\n\n${WARNING}\n`),
    text,
  );
  // With a previous backup, the warning comes first and the blank line ends
  // the quote, so the "since" line is not part of the warning.
  const since = summaryMarkdown(
    facts({ encrypted: false, previous: PREVIOUS }),
  );
  assert.ok(
    since.endsWith(
      `\n\n${WARNING}\n\nChanges are since memory_20240314_020000.\n`,
    ),
    since,
  );
  assert.doesNotMatch(summaryMarkdown(facts()), /WARNING|unencrypted/);
});

Deno.test("summaryMarkdown() describes the table, with or without a user and known dimensions", async (t) => {
  const memories = METADATA.memories;
  const cases: [string, Partial<BackupMetadata>, string][] = [
    ["a user and dims", {}, "public.memories, 1536 dims, user alex"],
    ["no user", { user_id: null }, "public.memories, 1536 dims"],
    ["an empty user", { user_id: "" }, "public.memories, 1536 dims"],
    [
      "undeclared dims",
      { user_id: null, memories: { ...memories, dims: null } },
      "public.memories, ? dims",
    ],
    [
      "another schema and table",
      {
        user_id: "user-42",
        memories: {
          ...memories,
          schema: "mem0",
          table: "memories_v2",
          dims: 4,
        },
      },
      "mem0.memories_v2, 4 dims, user user-42",
    ],
    [
      "names that would break the table or run as HTML",
      {
        user_id: "a|b\n<img src=x onerror=alert(1)>`x`",
        memories: { ...memories, schema: "s|1", table: "t*<b>", dims: 4 },
      },
      "s\\|1.t\\*\\<b\\>, 4 dims, user a\\|b \\<img src=x onerror=alert(1)\\>\\`x\\`",
    ],
  ];
  for (const [name, change, cell] of cases) {
    await t.step(name, () => {
      const text = summaryMarkdown(facts({
        metadata: { ...METADATA, ...change },
      }));
      assert.equal(row(text, "Table"), `| Table | ${cell} |`);
    });
  }
});

Deno.test("summaryMarkdown() prints sizes and durations for people", async (t) => {
  const sizes: [number, string][] = [
    [0, "0 B"],
    [999, "999 B"],
    [1_000, "1.0 KB"],
    [999_949, "999.9 KB"],
    [999_999, "1.0 MB"],
    [1_536_000, "1.5 MB"],
    [1_500_000_000_000, "1.5 TB"],
  ];
  for (const [size, shown] of sizes) {
    await t.step(`${size} bytes is ${shown}`, () => {
      const text = summaryMarkdown(facts({
        backupBytes: size,
        artifactBytes: size,
      }));
      assert.equal(row(text, "Backup size"), `| Backup size | ${shown} |`);
      assert.equal(
        row(text, "Artifact"),
        `| Artifact | \`memory_20240315_020000\`, ${shown}, encrypted with age |`,
      );
    });
  }
  const durations: [number, string][] = [
    [0, "0 ms"],
    [850, "850 ms"],
    [999.6, "1.0 s"],
    [1_234, "1.2 s"],
    [59_940, "59.9 s"],
    [59_960, "1 min 0 s"],
    [119_600, "2 min 0 s"],
    [184_000, "3 min 4 s"],
    [3_600_000, "60 min 0 s"],
  ];
  for (const [ms, shown] of durations) {
    await t.step(`${ms} ms is ${shown}`, () => {
      const text = summaryMarkdown(facts({
        metadata: { ...METADATA, duration_ms: ms },
      }));
      assert.equal(row(text, "Duration"), `| Duration | ${shown} |`);
    });
  }
});
