import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { parse } from "csv-parse/sync";
import {
  MEMORY_COLUMNS,
  RELATIONSHIP_COLUMNS,
} from "../../lib/format/csv/columns.ts";
import { seedRelationshipStore } from "../../lib/store/demo_data.ts";
import { StoreError, UsageError } from "../../lib/errors.ts";
import { exportMemories } from "../../lib/backup/export.ts";
import { heatOf } from "../../lib/format/markdown/text.ts";
import type { Config } from "../../lib/store/config.ts";
import type { ExportFormat } from "../../lib/format/records.ts";
import { verifyBackup } from "../../lib/verify/verify.ts";
import { openEmbeddedStore, seedMemories, type TestDatabase } from "../_db.ts";
import {
  assertRejectsWith,
  assertValid,
  configFrom,
  copyDir,
  memoryRecords,
  reseal,
  runCommand,
  withTempDir,
} from "../_helpers.ts";

const SIZE = { memories: 60, dims: 8, seed: 5 };
const RELATIONSHIPS = 150;

/** 20,000 characters: lines of 480 with commas and quotes. */
const LONG = ('A long memory, with "quotes", commas and words. '.repeat(10) +
  "\n").repeat(50).slice(0, 20_000);

/** Rows that would break a careless writer, each with the heat icon it must get. */
const HOSTILE: {
  id: string;
  payload: Record<string, unknown> | null;
  vector: string | null;
  icon: string;
}[] = [
  {
    id: "00000000-0000-4000-8000-000000000001",
    payload: {
      data: 'Commas, "double quotes", and ""doubled"" ones,',
      user_id: "alice",
      client: "Acme Corp",
      project: "Q3 Launch",
      created_at: "2025-01-01T00:00:01Z",
      heat: 0.7,
    },
    vector: "[0.125,-0.25,0.5,-1,1e-07,3.4028235e+38,0,0.333333]",
    icon: "•",
  },
  {
    id: "00000000-0000-4000-8000-000000000002",
    payload: {
      data: "CRLF line one\r\nLF line two\nlast line\r\n",
      user_id: "bob",
      client: "Globex",
      heat: 0.3,
    },
    vector: "[1,2,3,4,5,6,7,8]",
    icon: "•",
  },
  {
    id: "00000000-0000-4000-8000-000000000003",
    payload: {
      data: "\tTabbed\tcells 🙂 👩‍👩‍👧 Zürich 日本語",
      user_id: "alice",
      client: "Initech",
      project: "Onboarding",
      heat: 0.71,
    },
    vector: "[0,0,0,0,0,0,0,-0.5]",
    icon: "🔥",
  },
  {
    id: "00000000-0000-4000-8000-000000000004",
    payload: { data: LONG, user_id: "bob", client: "Initech", heat: 0.29 },
    vector: "[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8]",
    icon: "❄️",
  },
  {
    id: "00000000-0000-4000-8000-000000000005",
    payload: {
      data:
        "Fences inside:\n```\n##### not a heading\n````\n- Memories: 1\n## Relationships\n``` trailing ``",
      user_id: "alice",
      heat: "0.8",
    },
    vector: "[0.5,0.5,0.5,0.5,0.5,0.5,0.5,0.5]",
    icon: "🔥",
  },
  {
    id: "00000000-0000-4000-8000-000000000006",
    payload: null,
    vector: null,
    icon: "❔",
  },
  {
    id: "00000000-0000-4000-8000-000000000007",
    payload: { data: "No client, no project", user_id: "alice", heat: "hot" },
    vector: "[-1,-1,-1,-1,-1,-1,-1,-1]",
    icon: "❔",
  },
  {
    id: "00000000-0000-4000-8000-000000000008",
    payload: {
      data: "A project but no client",
      user_id: "bob",
      project: "Zeta Project",
    },
    vector: "[0.01,0.02,0.03,0.04,0.05,0.06,0.07,0.08]",
    icon: "❔",
  },
];
const TOTAL = SIZE.memories + HOSTILE.length;

/** A seeded embedded store (closed) and a relationship store in a temp dir. */
interface Fixture {
  readonly dir: string;
  readonly dataDir: string;
  readonly rel: string;
  /** Config for the stores, optionally with flags such as `user`. */
  config(flags?: Parameters<typeof configFrom>[1]): Config;
  /** Opens the store for queries; closes it after `fn`. */
  query<T>(fn: (db: TestDatabase) => Promise<T>): Promise<T>;
}

function fixtureIn(dir: string): Fixture {
  const dataDir = `${dir}/pglite`;
  const rel = `${dir}/relationships.db`;
  return {
    dir,
    dataDir,
    rel,
    config: (flags = {}) => {
      const config = configFrom({ RELATIONSHIPS_DB: rel }, flags);
      return { ...config, store: { kind: "pglite", dataDir } };
    },
    async query(fn) {
      const db = await openEmbeddedStore(dataDir);
      try {
        return await fn(db);
      } finally {
        await db.close();
      }
    },
  };
}

/** Runs `fn` with the demo memories plus the hostile rows and 150 relationships. */
async function withSeededStore(fn: (f: Fixture) => Promise<void>) {
  await withTempDir(async (dir) => {
    const f = fixtureIn(dir);
    const ids = await f.query(async (db) => {
      await seedMemories(db, "public.memories", SIZE);
      for (const h of HOSTILE) {
        await db.query(
          "insert into memories values ($1, $2::text::vector, $3::text::jsonb)",
          [
            h.id,
            h.vector,
            h.payload === null ? null : JSON.stringify(h.payload),
          ],
        );
      }
      return (await db.query("select id::text from memories")).map((r) =>
        r[0]!
      );
    });
    seedRelationshipStore(f.rel, ids, { relationships: RELATIONSHIPS });
    await fn(f);
  });
}

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

async function readMetadata(dir: string) {
  return JSON.parse(await Deno.readTextFile(`${dir}/metadata.json`));
}

/** The records of a CSV file, header first, as csv-parse reads them. */
async function csvRows(path: string): Promise<string[][]> {
  return parse(await Deno.readTextFile(path), { bom: true }) as string[][];
}

/** The records of a CSV file, header first, as Python's csv module reads them. */
async function pythonCsvRows(path: string): Promise<string[][]> {
  const script = [
    "import csv, json, sys",
    "with open(sys.argv[1], newline='', encoding='utf-8') as f:",
    "    print(json.dumps(list(csv.reader(f))))",
  ].join("\n");
  const out = await runCommand("python3", ["-c", script, path]);
  assert.equal(out.code, 0, out.stderr);
  return JSON.parse(out.stdout);
}

/** One memory of `memories.md` as a CommonMark reader sees it. */
interface MdMemory {
  readonly icon: string;
  readonly preview: string;
  readonly id: string;
  /** The fenced text, line ends as `\n`. */
  readonly content: string;
  /** The `###` heading it is under. */
  readonly h3: string;
  /** The `####` heading it is under, if any. */
  readonly h4: string | undefined;
}

/** `memories.md`, read following CommonMark's fenced code block rules. */
interface MdFile {
  /** Lines outside fences. */
  readonly lines: string[];
  /** `###` and `####` headings of the memories section, in order. */
  readonly headings: string[];
  readonly memories: MdMemory[];
  /** Each fence's info string and content lines. */
  readonly fences: { info: string; lines: string[] }[];
}

const unescape = (text: string) => text.replace(/\\(.)/g, "$1");

function readMarkdown(text: string): MdFile {
  const lines: string[] = [];
  const headings: string[] = [];
  const memories: MdMemory[] = [];
  const fences: { info: string; lines: string[] }[] = [];
  let fence:
    | { char: string; length: number; info: string; lines: string[] }
    | undefined;
  let h3 = "";
  let h4: string | undefined;
  let pending: Omit<MdMemory, "content"> | undefined;
  let inMemories = true;
  let open: Partial<MdMemory> | undefined;
  // CommonMark line endings: LF, CR LF or a lone CR.
  for (const line of text.split(/\r\n|\r|\n/)) {
    if (fence) {
      const close = /^ {0,3}(`{3,}|~{3,})[ \t]*$/.exec(line);
      if (
        close && close[1]![0] === fence.char &&
        close[1]!.length >= fence.length
      ) {
        fences.push({ info: fence.info, lines: fence.lines });
        if (pending) {
          memories.push({ ...pending, content: fence.lines.join("\n") });
          pending = undefined;
        }
        fence = undefined;
      } else fence.lines.push(line);
      continue;
    }
    const opening = /^ {0,3}(`{3,}|~{3,})(.*)$/.exec(line);
    if (opening && !(opening[1]![0] === "`" && opening[2]!.includes("`"))) {
      fence = {
        char: opening[1]![0]!,
        length: opening[1]!.length,
        info: opening[2]!.trim(),
        lines: [],
      };
      continue;
    }
    lines.push(line);
    if (line === "## Relationships") inMemories = false;
    if (!inMemories) continue;
    if (line.startsWith("### ")) {
      h3 = unescape(line.slice(4));
      h4 = undefined;
      headings.push(line);
    } else if (line.startsWith("#### ")) {
      h4 = unescape(line.slice(5));
      headings.push(line);
    } else if (line.startsWith("##### ")) {
      const m = /^##### (🔥|•|❄️|❔) (.*)$/u.exec(line);
      assert.ok(m, `memory heading with an icon: ${line}`);
      open = { icon: m[1]!, preview: unescape(m[2]!), h3, h4 };
    } else if (open && line.startsWith("- **ID:** ")) {
      pending = {
        icon: open.icon!,
        preview: open.preview!,
        h3: open.h3!,
        h4: open.h4,
        id: unescape(line.slice("- **ID:** ".length)),
      };
      open = undefined;
    }
  }
  assert.equal(fence, undefined, "every fence is closed");
  return { lines, headings, memories, fences };
}

/** Byte order of UTF-8, as the C collation sorts. */
function byteOrder(a: string, b: string): number {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i]! - y[i]!;
  }
  return x.length - y.length;
}

function assertSortedUnique(names: string[], what: string) {
  assert.deepEqual(
    names,
    [...new Set(names)].sort(byteOrder),
    `${what} are in order, each once`,
  );
}

Deno.test("exportMemories() writes each format with exactly its files, verified and passing sha256sum -c", async (t) => {
  await withSeededStore(async (f) => {
    const cases: { format: ExportFormat; files: string[] }[] = [
      { format: "json", files: ["export.json", "relationships.db"] },
      { format: "csv", files: ["memories.csv", "relationships.csv"] },
      { format: "markdown", files: ["memories.md"] },
    ];
    for (const { format, files } of cases) {
      await t.step(format, async () => {
        const output = `${f.dir}/exports/${format}`;
        const result = await exportMemories({
          config: f.config(),
          format,
          output,
          verify: true,
        });
        assert.equal(result.path, output);
        assert.ok(result.verification?.ok, "verified before moving in place");
        assert.deepEqual(
          await listDir(output),
          [...files, "metadata.json", "checksums.json", "SHA256SUMS"].sort(),
        );
        const metadata = await readMetadata(output);
        assert.equal(metadata.format, format);
        assert.equal(metadata.memory_count, TOTAL);
        assert.equal(metadata.relationship_count, RELATIONSHIPS);
        assert.equal(metadata.user_id, null);
        assert.deepEqual(result.metadata, metadata);
        const report = await verifyBackup(output);
        assert.ok(report.ok, JSON.stringify(report.problem));
        assert.equal(report.memories, TOTAL);
        assert.equal(report.relationships, RELATIONSHIPS);
        const sums = await runCommand("sha256sum", ["-c", "SHA256SUMS"], {
          cwd: output,
        });
        assert.equal(sums.code, 0, sums.stdout + sums.stderr);
        assert.equal(
          sums.stdout.trim().split("\n").length,
          files.length + 1,
          "SHA256SUMS lists every data file and metadata.json",
        );
      });
    }
    await t.step(
      "no temporary directory is left beside the exports",
      async () => {
        assert.deepEqual(await listDir(`${f.dir}/exports`), [
          "csv",
          "json",
          "markdown",
        ]);
      },
    );
  });
});

Deno.test("exportMemories() writes CSV that csv-parse and Python's csv module read back to the store's values", async (t) => {
  await withSeededStore(async (f) => {
    const output = `${f.dir}/csv`;
    await exportMemories({ config: f.config(), format: "csv", output });
    const metadata = await readMetadata(output);
    const path = `${output}/memories.csv`;
    const store = new Map(
      (await f.query((db) =>
        db.query(
          `select id::text, payload->>'data', payload->>'user_id',
                  (payload - '{data,user_id,created_at,heat}'::text[])::text,
                  payload->>'created_at', payload->>'heat', vector::text
             from memories`,
        )
      )).map((r) => [r[0]!, r]),
    );
    const readers: [string, () => Promise<string[][]>][] = [
      ["csv-parse", () => csvRows(path)],
      ["Python csv", () => pythonCsvRows(path)],
    ];
    for (const [name, read] of readers) {
      await t.step(
        `${name} reads every cell as the store holds it`,
        async () => {
          const [header, ...rows] = await read();
          assert.deepEqual(header, [...MEMORY_COLUMNS, "embedding"]);
          assert.equal(rows.length, metadata.memory_count);
          assert.equal(rows.length, store.size);
          const seen = new Set<string>();
          for (const row of rows) {
            assert.equal(row.length, 7, `seven cells in ${row[0]}`);
            const [id, content, userId, meta, createdAt, heat, embedding] = row;
            const s = store.get(id!);
            assert.ok(s, `id ${id} is in the store`);
            assert.ok(!seen.has(id!), `id ${id} once`);
            seen.add(id!);
            const [, data, user, rest, created, storeHeat, vector] = s;
            assert.equal(content, data ?? "", `content of ${id}`);
            assert.equal(userId, user ?? "", `user_id of ${id}`);
            if (rest === null) {
              assert.equal(meta, "", `NULL payload of ${id}: empty metadata`);
            } else {
              assert.deepEqual(
                JSON.parse(meta!),
                JSON.parse(rest!),
                `metadata of ${id}`,
              );
            }
            assert.equal(createdAt, created ?? "", `created_at of ${id}`);
            assert.equal(heat, storeHeat ?? "", `heat of ${id}`);
            assert.equal(embedding, vector ?? "", `embedding of ${id}`);
          }
          const long = rows.find((r) => r[0] === HOSTILE[3]!.id)!;
          assert.equal(long[1]!.length, 20_000);
          const crlf = rows.find((r) => r[0] === HOSTILE[1]!.id)!;
          assert.equal(crlf[1], "CRLF line one\r\nLF line two\nlast line\r\n");
        },
      );
    }
    await t.step(
      "both readers agree, and big numbers keep every digit",
      async () => {
        assert.deepEqual(await csvRows(path), await pythonCsvRows(path));
        const text = await Deno.readTextFile(path);
        assert.ok(text.includes('""big_counter"":12345678901234567890123'));
      },
    );
    await t.step(
      "relationships.csv holds every row of the relationship store",
      async () => {
        const [header, ...rows] = await pythonCsvRows(
          `${output}/relationships.csv`,
        );
        assert.deepEqual(header, [...RELATIONSHIP_COLUMNS]);
        assert.equal(rows.length, metadata.relationship_count);
        const db = new DatabaseSync(f.rel, { readOnly: true });
        try {
          const expected = db.prepare(
            "select id, source_id, target_id, rel_type from relationships order by id",
          ).all().map((
            r,
          ) => [String(r.id), r.source_id, r.target_id, r.rel_type]);
          assert.deepEqual(
            rows.map((r) => r.slice(0, 4)).sort((a, b) =>
              Number(a[0]) - Number(b[0])
            ),
            expected,
          );
        } finally {
          db.close();
        }
      },
    );
  });
  await t.step(
    "an empty table and an empty relationship store give header-only files",
    async () => {
      await withTempDir(async (dir) => {
        const f = fixtureIn(dir);
        await f.query((db) =>
          db.query(
            "create table memories (id uuid primary key, vector vector(8), payload jsonb)",
          )
        );
        seedRelationshipStore(f.rel, [], { relationships: 0 });
        const output = `${dir}/csv`;
        await exportMemories({
          config: f.config(),
          format: "csv",
          output,
          verify: true,
        });
        assert.equal(
          await Deno.readTextFile(`${output}/memories.csv`),
          "id,content,user_id,metadata,created_at,heat,embedding\r\n",
        );
        assert.equal(
          await Deno.readTextFile(`${output}/relationships.csv`),
          "id,source_id,target_id,rel_type,strength,metadata,created_at,updated_at\r\n",
        );
        const metadata = await readMetadata(output);
        assert.equal(metadata.memory_count, 0);
        assert.equal(metadata.relationship_count, 0);
        assertValid(await verifyBackup(output));
      });
    },
  );
});

Deno.test("exportMemories() leaves vectors out with includeVectors: false and only exports one user with --user", async (t) => {
  await withSeededStore(async (f) => {
    await t.step("csv without vectors has no embedding column", async () => {
      const output = `${f.dir}/csv-novec`;
      await exportMemories({
        config: f.config(),
        format: "csv",
        output,
        includeVectors: false,
        verify: true,
      });
      const [header, ...rows] = await csvRows(`${output}/memories.csv`);
      assert.deepEqual(header, [...MEMORY_COLUMNS]);
      assert.equal(rows.length, TOTAL);
      assert.ok(rows.every((r) => r.length === MEMORY_COLUMNS.length));
      assert.equal((await readMetadata(output)).includes_vectors, false);
      assertValid(await verifyBackup(output));
    });
    await t.step(
      "json without vectors has no embedding in any record",
      async () => {
        const output = `${f.dir}/json-novec`;
        await exportMemories({
          config: f.config(),
          format: "json",
          output,
          includeVectors: false,
          verify: true,
        });
        const records = await memoryRecords(output);
        assert.equal(records.length, TOTAL);
        assert.ok(records.every((r) => !r.has("embedding")));
        assert.equal((await readMetadata(output)).includes_vectors, false);
      },
    );
    const alice = await f.query(async (db) =>
      (await db.query(
        "select id::text from memories where payload->>'user_id' = 'alice'",
      )).map((r) => r[0]!).sort()
    );
    assert.ok(alice.length > 10 && alice.length < TOTAL);
    await t.step(
      "csv with --user alice holds only alice's memories",
      async () => {
        const output = `${f.dir}/csv-alice`;
        await exportMemories({
          config: f.config({ user: "alice" }),
          format: "csv",
          output,
          verify: true,
        });
        const [, ...rows] = await csvRows(`${output}/memories.csv`);
        assert.deepEqual(rows.map((r) => r[0]!).sort(), alice);
        assert.ok(rows.every((r) => r[2] === "alice"));
        const metadata = await readMetadata(output);
        assert.equal(metadata.user_id, "alice");
        assert.equal(metadata.memory_count, alice.length);
      },
    );
    await t.step(
      "markdown with --user alice holds only alice's memories",
      async () => {
        const output = `${f.dir}/md-alice`;
        await exportMemories({
          config: f.config({ user: "alice" }),
          format: "markdown",
          output,
          verify: true,
        });
        const text = await Deno.readTextFile(`${output}/memories.md`);
        const md = readMarkdown(text);
        assert.ok(md.lines.includes("- User: alice"));
        assert.ok(md.lines.includes(`- Memories: ${alice.length}`));
        assert.deepEqual(md.memories.map((m) => m.id).sort(), alice);
        const metadata = await readMetadata(output);
        assert.equal(metadata.user_id, "alice");
        assert.equal(metadata.memory_count, alice.length);
      },
    );
  });
});

Deno.test("heatOf() puts 0.7 and 0.3 in normal, above 0.7 hot, below 0.3 cold, and non-numbers unknown", async (t) => {
  const cases: [unknown, string, string][] = [
    [0.71, "🔥", "hot"],
    [0.7000001, "🔥", "hot"],
    [1.9, "🔥", "hot"],
    ["0.8", "🔥", "hot"],
    [" 0.8 ", "🔥", "hot"],
    [0.7, "•", "normal"],
    ["0.7", "•", "normal"],
    [0.5, "•", "normal"],
    [0.3, "•", "normal"],
    [0.29, "❄️", "cold"],
    [0.2999999, "❄️", "cold"],
    [0, "❄️", "cold"],
    [-1, "❄️", "cold"],
    ["hot", "❔", "unknown"],
    ["", "❔", "unknown"],
    ["  ", "❔", "unknown"],
    [undefined, "❔", "unknown"],
    [null, "❔", "unknown"],
    [true, "❔", "unknown"],
    [[0.8], "❔", "unknown"],
    [{ value: 0.8 }, "❔", "unknown"],
    [Number.NaN, "❔", "unknown"],
    [Number.POSITIVE_INFINITY, "❔", "unknown"],
    ["Infinity", "❔", "unknown"],
  ];
  for (const [value, icon, label] of cases) {
    const name = typeof value === "number"
      ? String(value)
      : JSON.stringify(value) ?? "undefined";
    await t.step(`${name} is ${label}`, () => {
      const heat = heatOf(value);
      assert.equal(heat.icon, icon);
      assert.equal(heat.label, label);
      assert.equal(
        heat.value,
        label === "unknown" ? undefined : Number(value),
      );
    });
  }
});

Deno.test("exportMemories() writes Markdown grouped by client and project, with heat icons, safe fences and a table per relationship type", async (t) => {
  await withSeededStore(async (f) => {
    const output = `${f.dir}/md`;
    await exportMemories({
      config: f.config(),
      format: "markdown",
      output,
      verify: true,
    });
    const text = await Deno.readTextFile(`${output}/memories.md`);
    const md = readMarkdown(text);
    const metadata = await readMetadata(output);
    const store = new Map(
      (await f.query((db) =>
        db.query(
          "select id::text, payload->>'client', payload->>'project', payload->>'data', (payload->'heat')::text from memories",
        )
      )).map((r) => [r[0]!, r]),
    );

    await t.step("the header gives the totals and the user", () => {
      assert.equal(md.lines[0], "# Memory export");
      assert.ok(md.lines.includes("- User: all users"));
      assert.ok(md.lines.includes(`- Memories: ${TOTAL}`));
      assert.ok(md.lines.includes(`- Relationships: ${RELATIONSHIPS}`));
    });

    await t.step(
      "one heading per memory outside the fences, and verify counts the same",
      async () => {
        assert.equal(
          md.lines.filter((l) => l.startsWith("##### ")).length,
          TOTAL,
        );
        assert.equal(md.memories.length, TOTAL);
        assert.deepEqual(
          md.memories.map((m) => m.id).sort(),
          [...store.keys()].sort(),
        );
        const report = await verifyBackup(output);
        assert.ok(report.ok, JSON.stringify(report.problem));
        assert.equal(report.memories, TOTAL);
      },
    );

    await t.step(
      "each memory's fence holds its full text, backtick runs included",
      () => {
        for (const m of md.memories) {
          const data = store.get(m.id)![3] ?? "";
          assert.equal(
            m.content,
            data.replace(/\r\n|\r/g, "\n"),
            `text of ${m.id}`,
          );
        }
        const fenced = md.memories.find((m) => m.id === HOSTILE[4]!.id)!;
        assert.ok(fenced.content.includes("##### not a heading"));
        assert.ok(
          md.fences.some((x) => x.info === "text" && x.lines.includes("````")),
        );
        assert.ok(
          !md.lines.includes("##### not a heading"),
          "the heading inside the text stays inside the fence",
        );
      },
    );

    await t.step(
      "memories sit under their client and project, named clients first in order, then No Client, then General Memories",
      () => {
        for (const m of md.memories) {
          const [, client, project] = store.get(m.id)!;
          const c = client?.trim() || undefined;
          const p = project?.trim() || undefined;
          if (c === undefined && p === undefined) {
            assert.equal(m.h3, "General Memories", `section of ${m.id}`);
            assert.equal(m.h4, undefined, `no project heading for ${m.id}`);
          } else {
            assert.equal(
              m.h3,
              `Client: ${c ?? "No Client"}`,
              `client of ${m.id}`,
            );
            assert.equal(
              m.h4,
              `Project: ${p ?? "General"}`,
              `project of ${m.id}`,
            );
          }
        }
        const h3 = md.headings.filter((h) => h.startsWith("### ")).map((h) =>
          unescape(h.slice(4))
        );
        const named = h3.filter((h) =>
          h.startsWith("Client: ") && h !== "Client: No Client"
        ).map((h) => h.slice("Client: ".length));
        assert.ok(named.length >= 4);
        assertSortedUnique(named, "named clients");
        assert.deepEqual(h3.slice(named.length), [
          "Client: No Client",
          "General Memories",
        ]);
        // Projects under each client: named in order, each once, then General.
        let projects: string[] = [];
        const checkProjects = () => {
          const general = projects.indexOf("General");
          const names = general === -1 ? projects : projects.slice(0, general);
          assertSortedUnique(names, `projects ${projects.join(", ")}`);
          if (general !== -1) {
            assert.equal(general, projects.length - 1, "General is last");
          }
          projects = [];
        };
        for (const h of md.headings) {
          if (h.startsWith("### ")) checkProjects();
          else projects.push(unescape(h.slice("#### Project: ".length)));
        }
        checkProjects();
        assert.ok(
          md.headings.includes("#### Project: Zeta Project"),
          "a project without a client is under No Client",
        );
      },
    );

    await t.step("heat icons follow the boundaries", () => {
      for (const h of HOSTILE) {
        const m = md.memories.find((x) => x.id === h.id)!;
        assert.equal(m.icon, h.icon, `icon of ${h.id}`);
      }
      for (const m of md.memories) {
        const heat = store.get(m.id)![4];
        assert.equal(
          m.icon,
          heatOf(heat === null ? undefined : JSON.parse(heat!)).icon,
          `icon of ${m.id}`,
        );
      }
    });

    await t.step("previews are the first line, at most 100 characters", () => {
      for (const m of md.memories) {
        assert.ok(
          [...m.preview].length <= 100,
          `preview of ${m.id} has ${[...m.preview].length} characters`,
        );
      }
      const long = md.memories.find((m) => m.id === HOSTILE[3]!.id)!;
      assert.equal(long.preview, [...LONG].slice(0, 99).join("") + "…");
      const crlf = md.memories.find((m) => m.id === HOSTILE[1]!.id)!;
      assert.equal(crlf.preview, "CRLF line one");
      const tabs = md.memories.find((m) => m.id === HOSTILE[2]!.id)!;
      assert.equal(tabs.preview, "Tabbed cells 🙂 👩‍👩‍👧 Zürich 日本語");
      const none = md.memories.find((m) => m.id === HOSTILE[5]!.id)!;
      assert.equal(none.preview, "(no text)");
    });

    await t.step(
      "the relationships section shows the top 100 of all, and a table per type",
      () => {
        const at = md.lines.indexOf("## Relationships");
        assert.ok(at > 0);
        const section = md.lines.slice(at);
        assert.ok(
          section.includes(
            `Showing the top 100 of ${RELATIONSHIPS} relationships by strength.`,
          ),
        );
        const graph = md.fences.filter((x) => x.info === "mermaid");
        assert.equal(graph.length, 1);
        assert.equal(
          graph[0]!.lines.filter((l) => l.includes("-->")).length,
          100,
        );
        const tables = new Map<string, { said: number; rows: number }>();
        let current: { said: number; rows: number } | undefined;
        for (const line of section) {
          const h = /^### (.+) \((\d+)\)$/.exec(line);
          if (h) {
            current = { said: Number(h[2]), rows: 0 };
            assert.ok(!tables.has(h[1]!), `one table for ${h[1]}`);
            tables.set(unescape(h[1]!), current);
          } else if (
            current && line.startsWith("| ") &&
            !line.startsWith("| Source |") &&
            !line.startsWith("| --- |")
          ) current.rows++;
        }
        const db = new DatabaseSync(f.rel, { readOnly: true });
        try {
          const expected = db.prepare(
            "select rel_type, count(*) as n from relationships group by rel_type order by rel_type",
          ).all().map((r) => [r.rel_type, Number(r.n)]);
          assert.deepEqual(
            [...tables].map(([type, { said }]) => [type, said]),
            expected,
          );
        } finally {
          db.close();
        }
        for (const [type, { said, rows }] of tables) {
          assert.equal(rows, said, `rows of ${type}`);
        }
        assert.equal(
          [...tables.values()].reduce((sum, x) => sum + x.said, 0),
          metadata.relationship_count,
        );
      },
    );
  });
});

Deno.test("exportMemories() groups Markdown by the client and project names as shown, whatever spaces surround them", async () => {
  await withTempDir(async (dir) => {
    const f = fixtureIn(dir);
    await f.query(async (db) => {
      await db.query(
        "create table memories (id uuid primary key, vector vector(2), payload jsonb)",
      );
      const payloads = [
        { data: "trimmed", client: "Acme Corp", project: "Alpha" },
        { data: "padded", client: " Acme Corp ", project: " Alpha" },
        { data: "blank client", client: "  ", project: "Beta" },
        { data: "no client", project: "Beta" },
        { data: "other", client: "Globex" },
        { data: "blank both", client: " ", project: "" },
        { data: "general" },
      ];
      let n = 0;
      for (const p of payloads) {
        n++;
        await db.query(
          "insert into memories values ($1, '[1,2]', $2::text::jsonb)",
          [
            `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`,
            JSON.stringify(p),
          ],
        );
      }
    });
    seedRelationshipStore(f.rel, [], { relationships: 0 });
    const output = `${dir}/md`;
    await exportMemories({
      config: f.config(),
      format: "markdown",
      output,
      verify: true,
    });
    const md = readMarkdown(await Deno.readTextFile(`${output}/memories.md`));
    assert.deepEqual(md.headings, [
      "### Client: Acme Corp",
      "#### Project: Alpha",
      "### Client: Globex",
      "#### Project: General",
      "### Client: No Client",
      "#### Project: Beta",
      "### General Memories",
    ]);
  });
});

Deno.test("verifyBackup() rejects CSV and Markdown exports that were changed", async (t) => {
  await withSeededStore(async (f) => {
    const csv = `${f.dir}/csv`;
    const markdown = `${f.dir}/md`;
    await exportMemories({ config: f.config(), format: "csv", output: csv });
    await exportMemories({
      config: f.config(),
      format: "markdown",
      output: markdown,
    });
    let n = 0;
    const copyOf = async (from: string) => {
      const to = `${f.dir}/copy-${++n}`;
      await copyDir(from, to);
      return to;
    };

    await t.step("a missing memories.csv", async () => {
      const dir = await copyOf(csv);
      await Deno.remove(`${dir}/memories.csv`);
      const report = await verifyBackup(dir);
      assert.equal(report.ok, false);
      const files = report.checks.find((c) => c.name === "files")!;
      assert.equal(files.ok, false);
      assert.deepEqual(report.problem, {
        file: "memories.csv",
        reason: "the file is missing",
      });
    });

    await t.step(
      "relationships.csv with one cell changed, same length",
      async () => {
        const dir = await copyOf(csv);
        const path = `${dir}/relationships.csv`;
        const text = await Deno.readTextFile(path);
        const [, first] = parse(text) as string[][];
        const created = first![6]!;
        const changed = created.replace(
          /^(\d{3})(\d)/,
          (_, a, d) => `${a}${(Number(d) + 1) % 10}`,
        );
        assert.equal(changed.length, created.length);
        assert.notEqual(changed, created);
        const edited = text.replace(`,${created},`, `,${changed},`);
        assert.equal(edited.length, text.length);
        assert.notEqual(edited, text);
        await Deno.writeTextFile(path, edited);
        const report = await verifyBackup(dir);
        assert.equal(report.ok, false);
        assert.equal(report.problem?.file, "relationships.csv");
        assert.match(report.problem!.reason, /^checksum mismatch/);
        const sums = await runCommand("sha256sum", ["-c", "SHA256SUMS"], {
          cwd: dir,
        });
        assert.notEqual(sums.code, 0);
      },
    );

    await t.step(
      "memories.csv with a line deleted and the checksums recomputed",
      async () => {
        const dir = await copyOf(csv);
        const path = `${dir}/memories.csv`;
        const text = await Deno.readTextFile(path);
        const lines = text.split("\r\n");
        // A demo memory on one line (its content has no line break).
        const [, ...rows] = parse(text) as string[][];
        const single = rows.find((r) =>
          !/[\r\n]/.test(r.join("")) && !HOSTILE.some((h) => h.id === r[0])
        )!;
        const at = lines.findIndex((l) => l.startsWith(`${single[0]},`));
        assert.ok(at > 0);
        lines.splice(at, 1);
        await Deno.writeTextFile(path, lines.join("\r\n"));
        await reseal(dir);
        const report = await verifyBackup(dir);
        assert.equal(report.ok, false);
        assert.ok(
          report.checks.find((c) => c.name === "checksums")!.ok,
          JSON.stringify(report.checks.find((c) => c.name === "checksums")),
        );
        const memories = report.checks.find((c) => c.name === "memories")!;
        assert.equal(memories.ok, false);
        assert.deepEqual(memories.problem, {
          file: "memories.csv",
          reason: `holds ${TOTAL - 1} memories, metadata.json says ${TOTAL}`,
        });
      },
    );

    await t.step(
      "memories.csv with an embedding value beyond a 32-bit float and the checksums recomputed",
      async () => {
        const dir = await copyOf(csv);
        const path = `${dir}/memories.csv`;
        const text = await Deno.readTextFile(path);
        // The first vector's first value, in the first row's last cell.
        const edited = text.replace(/"\[-?[0-9.e-]+,/, '"[1e39,');
        assert.notEqual(edited, text);
        await Deno.writeTextFile(path, edited);
        await reseal(dir);
        const report = await verifyBackup(dir);
        assert.equal(report.ok, false, "a float32 overflow passed the check");
        assert.ok(
          report.checks.find((c) => c.name === "checksums")!.ok,
          JSON.stringify(report.checks.find((c) => c.name === "checksums")),
        );
        assert.equal(report.problem?.file, "memories.csv");
        assert.match(
          report.problem!.reason,
          /embedding\[0\] is 1e\+39, beyond the range of a vector's 32-bit floats/,
        );
      },
    );

    await t.step(
      "memories.md with its Memories line edited and the checksums recomputed",
      async () => {
        const dir = await copyOf(markdown);
        const path = `${dir}/memories.md`;
        const text = await Deno.readTextFile(path);
        const edited = text.replace(
          `\n- Memories: ${TOTAL}\n`,
          `\n- Memories: ${TOTAL + 1}\n`,
        );
        assert.notEqual(edited, text);
        await Deno.writeTextFile(path, edited);
        await reseal(dir);
        const report = await verifyBackup(dir);
        assert.equal(report.ok, false);
        assert.ok(
          report.checks.find((c) => c.name === "checksums")!.ok,
          JSON.stringify(report.checks.find((c) => c.name === "checksums")),
        );
        const memories = report.checks.find((c) => c.name === "memories")!;
        assert.equal(memories.ok, false);
        assert.equal(
          memories.detail,
          `memories: the header says ${
            TOTAL + 1
          } memories, metadata.json says ${TOTAL}`,
        );
        assert.equal(memories.problem?.file, "memories.md");
      },
    );
  });
});

Deno.test("exportMemories() replaces its previous export and refuses any other output", async (t) => {
  await withSeededStore(async (f) => {
    const exports = `${f.dir}/exports`;
    const output = `${exports}/memory`;
    const at = (iso: string) => () => new Date(iso);
    const stray = async (parent: string) =>
      (await listDir(parent)).filter((n) =>
        n.startsWith(".tmp-") || n.startsWith(".old-")
      );

    await t.step(
      "exporting twice to the same output replaces the first export",
      async () => {
        const first = await exportMemories({
          config: f.config(),
          format: "csv",
          output,
          now: at("2026-01-01T00:00:00Z"),
        });
        const second = await exportMemories({
          config: f.config(),
          format: "markdown",
          output,
          verify: true,
          now: at("2026-01-01T00:00:05Z"),
        });
        const metadata = await readMetadata(output);
        assert.equal(metadata.created_at, "2026-01-01T00:00:05.000Z");
        assert.ok(metadata.created_at > first.metadata.created_at);
        assert.deepEqual(metadata, second.metadata);
        assert.deepEqual(await listDir(output), [
          "SHA256SUMS",
          "checksums.json",
          "memories.md",
          "metadata.json",
        ]);
        assert.deepEqual(await listDir(exports), ["memory"]);
        assertValid(await verifyBackup(output));
      },
    );

    await t.step(
      "a failing export leaves the previous export as it was",
      async () => {
        const before = await Deno.readTextFile(`${output}/SHA256SUMS`);
        await assertRejectsWith(
          () =>
            exportMemories({
              config: {
                ...f.config(),
                table: { schema: undefined, name: "nope" },
              },
              format: "csv",
              output,
            }),
          StoreError,
          /"nope".*does not exist/,
        );
        assert.equal(await Deno.readTextFile(`${output}/SHA256SUMS`), before);
        assert.deepEqual(await listDir(exports), ["memory"]);
      },
    );

    await t.step(
      "a file as output is refused naming --output, and the file is kept",
      async () => {
        const file = `${f.dir}/out.txt`;
        await Deno.writeTextFile(file, "keep me\n");
        const error = await assertRejectsWith(
          () =>
            exportMemories({ config: f.config(), format: "csv", output: file }),
          UsageError,
          /out\.txt.*is a file/,
        );
        assert.equal(error.setting, "--output");
        assert.equal(await Deno.readTextFile(file), "keep me\n");
        assert.deepEqual(await stray(f.dir), []);
      },
    );

    await t.step(
      "a directory with other files is refused and left untouched",
      async () => {
        const other = `${f.dir}/notes`;
        await Deno.mkdir(`${other}/sub`, { recursive: true });
        await Deno.writeTextFile(`${other}/todo.txt`, "buy milk\n");
        await Deno.writeTextFile(`${other}/sub/deep.txt`, "deep\n");
        await Deno.writeTextFile(
          `${other}/metadata.json`,
          JSON.stringify({ tool: "something else" }),
        );
        const error = await assertRejectsWith(
          () =>
            exportMemories({
              config: f.config(),
              format: "markdown",
              output: `${other}/`,
            }),
          UsageError,
          /not a memkeep export/,
        );
        assert.equal(error.setting, "--output");
        assert.deepEqual(await listDir(other), [
          "metadata.json",
          "sub",
          "todo.txt",
        ]);
        assert.equal(
          await Deno.readTextFile(`${other}/todo.txt`),
          "buy milk\n",
        );
        assert.equal(
          await Deno.readTextFile(`${other}/sub/deep.txt`),
          "deep\n",
        );
        assert.deepEqual(await stray(f.dir), []);
      },
    );

    await t.step(
      "a directory named like a backup is refused even when it holds an export",
      async () => {
        const backups = `${f.dir}/backups`;
        await Deno.mkdir(backups);
        await exportMemories({
          config: f.config(),
          format: "json",
          output: `${backups}/staging`,
        });
        const backup = `${backups}/memory_20261123_020000`;
        await Deno.rename(`${backups}/staging`, backup);
        const sums = await Deno.readTextFile(`${backup}/SHA256SUMS`);
        const error = await assertRejectsWith(
          () =>
            exportMemories({
              config: f.config(),
              format: "json",
              output: backup,
            }),
          UsageError,
          /it is a backup/,
        );
        assert.equal(error.setting, "--output");
        assert.equal(await Deno.readTextFile(`${backup}/SHA256SUMS`), sums);
        assertValid(await verifyBackup(backup));
        assert.deepEqual(await listDir(backups), ["memory_20261123_020000"]);
      },
    );

    await t.step(
      "a failing export leaves no directory and no temporary directory",
      async () => {
        const parent = `${f.dir}/fresh`;
        const target = `${parent}/memory`;
        await assertRejectsWith(
          () =>
            exportMemories({
              config: {
                ...configFrom({
                  MEMORY_TABLE: "nope",
                  RELATIONSHIPS_DB: f.rel,
                }),
                store: { kind: "pglite", dataDir: f.dataDir },
              },
              format: "markdown",
              output: target,
            }),
          StoreError,
          /"nope".*does not exist/,
        );
        await assert.rejects(Deno.lstat(target), Deno.errors.NotFound);
        assert.deepEqual(await listDir(parent), []);
      },
    );
  });
});
