/**
 * Hostile input to `verify` and `restore --dry-run`: every case is either
 * rejected with a one-line reason naming the file, line or field (and the
 * target stores are left exactly as they were), or restored exactly (the
 * target then holds exactly the backup's records). Ends with a fuzz test
 * that mutates a small valid backup ≥ 1,000 times, re-sealing its checksums
 * after each mutation so the parser meets the hostile bytes.
 *
 * `MEMKEEP_FUZZ_CASES=20000` runs a longer fuzz; `MEMKEEP_FUZZ_SEED=N` another
 * seed; `MEMKEEP_FUZZ_CASE=I` replays case I of that seed alone.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { backup } from "../../lib/backup/backup.ts";
import type { Config } from "../../lib/store/config.ts";
import { seedRelationshipStore } from "../../lib/store/demo_data.ts";
import { StoreError } from "../../lib/errors.ts";
import {
  CHECKSUMS_FILE,
  EXPORT_FILE,
  METADATA_FILE,
  RELATIONSHIPS_COPY_FILE,
} from "../../lib/format/layout.ts";
import { restore, type RestoreResult } from "../../lib/restore/restore.ts";
import { RestoreError } from "../../lib/errors.ts";
import { SourceError } from "../../lib/errors.ts";
import { verifyBackup } from "../../lib/verify/verify.ts";
import { makeCheckout, ownLines, productionArgs } from "../_checkout.ts";
import {
  seedMemories,
  startWireDatabase,
  tableDigest,
  type WireDatabase,
} from "../_db.ts";
import { configFrom } from "../_helpers.ts";
import {
  declareSize,
  editRecord,
  type ExpectedBackup,
  expectedOf,
  expectedRelationshipRows,
  losslessEqual,
  metadataBytes,
  type MetadataObject,
  mulberry32,
  mutate,
  type MutationKind,
  MUTATIONS,
  parseLossless,
  pick,
  relationshipDdl,
  relationshipRows,
  withHeader,
} from "../_hostile.ts";
import { reseal, sqliteDigest } from "../_helpers.ts";
import { zipBackup } from "../_zip.ts";

const MEMORIES = 6;
const DIMS = 8;
const FUZZ_CASES = Number(Deno.env.get("MEMKEEP_FUZZ_CASES") ?? "1000");
const FUZZ_SEED = Number(Deno.env.get("MEMKEEP_FUZZ_SEED") ?? "20251124");
const FUZZ_ONLY = Deno.env.get("MEMKEEP_FUZZ_CASE");
const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** The source store, its backup, and the targets a restore may write. */
interface Fixture {
  readonly dir: string;
  readonly db: WireDatabase;
  /** The valid backup every case starts from. */
  readonly base: string;
  readonly exportText: string;
  readonly metadata: MetadataObject;
  /** The live stores: the source table `memories` and its relationship store. */
  readonly live: Config;
  readonly liveRel: string;
  /** An empty relationship store (every table, no rows) to restore into. */
  readonly template: string;
  readonly ddl: string[];
  /** Where a restore that must be exact writes its relationships. */
  readonly target: string;
  readonly scratch: string;
}

async function makeFixture(db: WireDatabase): Promise<Fixture> {
  const dir = await Deno.makeTempDir({ prefix: "memkeep-hostile-" });
  await seedMemories(db, "public.memories", { memories: MEMORIES, dims: DIMS });
  await db.query(
    "create index memories_user_idx on memories ((payload->>'user_id'))",
  );
  // A canary for SQL injection, and a table of another dimension.
  await db.query("create table t (x int)");
  await db.query("insert into t values (1)");
  await db.query(
    "create table small3 (id uuid primary key, vector vector(3), payload jsonb)",
  );
  const ids = (await db.query("select id::text from memories order by id"))
    .map((r) => r[0]!);
  const liveRel = `${dir}/live.db`;
  seedRelationshipStore(liveRel, ids, { relationships: 4 });
  const rel = new DatabaseSync(liveRel);
  const add = rel.prepare(
    "insert into relationships (source_id, target_id, rel_type, strength, metadata, created_at, updated_at) values (?, ?, ?, ?, ?, ?, ?)",
  );
  add.run("x", "y", "pretty", 0.5, '{\n  "multi": "line"\n}', "c1", "u1");
  add.run("x", "y", "text", null, "not json at all", "c2", "u2");
  add.run("x", "y", "scalar", 2, '"a json string"', "c3", "u3");
  rel.close();
  const live = configFrom({
    DATABASE_URL: db.url,
    RELATIONSHIPS_DB: liveRel,
    BACKUP_DIR: `${dir}/backups`,
  });
  const made = await backup({ config: live });
  const template = `${dir}/empty.db`;
  seedRelationshipStore(template, [], { relationships: 0 });
  await Deno.mkdir(`${dir}/cases`);
  return {
    dir,
    db,
    base: made.path,
    exportText: await Deno.readTextFile(`${made.path}/${EXPORT_FILE}`),
    metadata: JSON.parse(
      await Deno.readTextFile(`${made.path}/${METADATA_FILE}`),
    ),
    live,
    liveRel,
    template,
    ddl: relationshipDdl(template),
    target: `${dir}/target.db`,
    // Its parent does not exist: a restore must not leave it behind.
    scratch: `${dir}/data/scratch`,
  };
}

let caseNumber = 0;

/** A copy of the base backup in a new directory. */
async function copyOfBase(fx: Fixture): Promise<string> {
  const dir = `${fx.dir}/cases/${caseNumber++}`;
  await Deno.mkdir(dir);
  for await (const entry of Deno.readDir(fx.base)) {
    await Deno.copyFile(`${fx.base}/${entry.name}`, `${dir}/${entry.name}`);
  }
  return dir;
}

interface Edit {
  /** Changes the lines of `export.json`. */
  lines?: (lines: string[], at: RecordLines) => void;
  /** Changes the metadata, in `metadata.json` and the header alike (unless `headerToo: false`). */
  metadata?: (metadata: MetadataObject) => void;
  headerToo?: boolean;
  /** Replaces `export.json` with these bytes. */
  bytes?: (exportBytes: Uint8Array) => Uint8Array;
}

interface RecordLines {
  /** Line indexes (0-based) of the memory records. */
  memories: number[];
  /** Line indexes (0-based) of the relationship records. */
  relationships: number[];
}

function recordLinesOf(lines: string[]): RecordLines {
  const at: RecordLines = { memories: [], relationships: [] };
  let section: keyof RecordLines | undefined;
  lines.forEach((line, i) => {
    if (line === '"memories":[') section = "memories";
    else if (line === '"relationships":[') section = "relationships";
    else if (line.startsWith("{") && section) at[section].push(i);
  });
  return at;
}

/** A copy of the base backup, edited, with its checksums sealed again. */
async function edited(fx: Fixture, edit: Edit): Promise<string> {
  const dir = await copyOfBase(fx);
  let text = fx.exportText;
  let metadata: Uint8Array | undefined;
  if (edit.metadata) {
    const m = structuredClone(fx.metadata);
    edit.metadata(m);
    metadata = metadataBytes(m);
    if (edit.headerToo ?? true) text = withHeader(text, m);
  }
  if (edit.lines) {
    const lines = text.split("\n");
    edit.lines(lines, recordLinesOf(lines));
    text = lines.join("\n");
  }
  let bytes: Uint8Array = new TextEncoder().encode(text);
  if (edit.bytes) bytes = edit.bytes(bytes);
  await reseal(dir, {
    exportBytes: bytes,
    ...(metadata ? { metadataBytes: metadata } : {}),
  });
  return dir;
}

/** Edits memory record `n` (0-based) of the lines as JSON. */
function memory(
  n: number,
  edit: Parameters<typeof editRecord>[1],
): NonNullable<Edit["lines"]> {
  return (lines, at) => {
    const i = at.memories[n]!;
    lines[i] = editRecord(lines[i]!, edit);
  };
}

/** Edits relationship record `n` (0-based) of the lines as JSON. */
function relationship(
  n: number,
  edit: Parameters<typeof editRecord>[1],
): NonNullable<Edit["lines"]> {
  return (lines, at) => {
    const i = at.relationships[n]!;
    lines[i] = editRecord(lines[i]!, edit);
  };
}

/** Asserts a reason a user can read: one line, no stack trace, not a screenful. */
function assertOneLine(message: string, label: string): void {
  assert.ok(message.trim().length > 0, `${label}: an empty message`);
  assert.ok(
    !/[\r\n\u2028\u2029]/.test(message),
    `${label}: the message spans lines: ${
      JSON.stringify(message.slice(0, 400))
    }`,
  );
  assert.ok(
    // deno-lint-ignore no-control-regex
    !/[\u0000-\u001f\u007f]/.test(message),
    `${label}: the message holds a control character: ${
      JSON.stringify(message.slice(0, 400))
    }`,
  );
  assert.ok(
    !message.includes("    at "),
    `${label}: the message holds a stack trace: ${message.slice(0, 400)}`,
  );
  assert.ok(
    message.length <= 600,
    `${label}: a ${message.length}-character message is not a clear reason: ${
      JSON.stringify(message.slice(0, 200))
    }…`,
  );
}

async function rejection(
  fn: () => Promise<unknown>,
  label: string,
): Promise<Error> {
  try {
    await fn();
  } catch (error) {
    assert.ok(error instanceof Error, `${label}: threw ${String(error)}`);
    return error;
  }
  assert.fail(`${label}: expected a rejection, but it succeeded`);
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

interface LiveState {
  memories: string;
  canary: string;
  relationships: string;
}

async function liveState(fx: Fixture): Promise<LiveState> {
  return {
    memories: await tableDigest(fx.db, "public.memories"),
    canary: (await fx.db.query("select count(*)::text from t"))[0]![0]!,
    relationships: sqliteDigest(fx.liveRel),
  };
}

async function tableExists(fx: Fixture, qualified: string): Promise<boolean> {
  const rows = await fx.db.query("select to_regclass($1)::text", [qualified]);
  return rows[0]?.[0] !== null && rows[0]?.[0] !== undefined;
}

/** How a hostile backup ended. */
type Outcome =
  | { kind: "verify"; where: string; file: string; checkName: string }
  | { kind: "restore"; message: string }
  | { kind: "exact"; result: RestoreResult; warnings: string[]; table: string };

interface JudgeOptions {
  /** The table to restore into (created by the restore); `fz` by default. */
  readonly table?: { schema: string; name: string };
  /** Pass no table: the restore takes the backup's own. */
  readonly backupsTable?: boolean;
  /** For a rejected backup: also attempt the real restore (default: dry run only). */
  readonly realRestoreToo?: boolean;
}

/**
 * Verifies a backup and restores it the ways a user would, and checks the
 * one invariant: rejected in one line with the stores unchanged, or
 * restored exactly.
 */
async function judge(
  fx: Fixture,
  dir: string,
  label: string,
  options: JudgeOptions = {},
): Promise<Outcome> {
  const report = await verifyBackup(dir);
  if (!report.ok) {
    const p = report.problem;
    assert.ok(p, `${label}: verify names no problem`);
    const where = `${p.file}${p.line === undefined ? "" : `:${p.line}`}: ${
      p.reason.trim() === "" ? "" : p.reason
    }`;
    assertOneLine(where, label);
    assert.match(
      p.file,
      /^[\w./-]+$/,
      `${label}: names a file of the backup: ${where}`,
    );
    const failed = report.checks.find((c) => !c.ok)!;
    assertOneLine(failed.detail, `${label} (check detail)`);
    const before = await liveState(fx);
    for (const dryRun of options.realRestoreToo ? [true, false] : [true]) {
      const error = await rejection(
        () =>
          restore({
            source: dir,
            config: fx.live,
            dryRun,
            scratchDir: fx.scratch,
          }),
        label,
      );
      assert.ok(
        error instanceof RestoreError,
        `${label}: ${error.name}: ${error.message}`,
      );
      assert.equal(
        error.message,
        `Cannot restore: the backup failed verification: ${where}`,
        label,
      );
    }
    assert.deepEqual(
      await liveState(fx),
      before,
      `${label}: the stores are unchanged`,
    );
    return { kind: "verify", where, file: p.file, checkName: failed.name };
  }

  const text = UTF8.decode(await Deno.readFile(`${dir}/${EXPORT_FILE}`));
  let expected: ExpectedBackup;
  try {
    expected = expectedOf(text);
  } catch (error) {
    assert.fail(
      `${label}: verify accepted a document JSON.parse refuses: ${
        (error as Error).message
      }`,
    );
  }
  const name = options.table ??
    (options.backupsTable
      ? {
        schema: String(report.metadata!.memories.schema),
        name: String(report.metadata!.memories.table),
      }
      : { schema: "public", name: "fz" });
  const qualified = `${quoteIdent(name.schema)}.${quoteIdent(name.name)}`;
  await fx.db.query(`drop table if exists ${qualified}`);
  for (const suffix of ["", "-wal", "-shm", "-journal"]) {
    await Deno.remove(`${fx.target}${suffix}`).catch(() => {});
  }
  await Deno.copyFile(fx.template, fx.target);
  const config = configFrom({
    DATABASE_URL: fx.db.url,
    RELATIONSHIPS_DB: fx.target,
    BACKUP_DIR: `${fx.dir}/backups`,
  });
  const liveBefore = await liveState(fx);
  const targetBefore = sqliteDigest(fx.target);
  const untouched = async (when: string) => {
    assert.equal(
      await tableExists(fx, qualified),
      false,
      `${label}: ${when}: no table was created`,
    );
    assert.equal(
      sqliteDigest(fx.target),
      targetBefore,
      `${label}: ${when}: the relationship store is unchanged`,
    );
    assert.deepEqual(
      await liveState(fx),
      liveBefore,
      `${label}: ${when}: the live stores are unchanged`,
    );
  };
  const warnings: string[] = [];
  const attempt = (dryRun: boolean) =>
    restore({
      source: dir,
      config,
      table: options.backupsTable ? undefined : name,
      dryRun,
      scratchDir: fx.scratch,
      onWarning: (w) => warnings.push(w),
    });
  let dry: RestoreResult;
  try {
    dry = await attempt(true);
  } catch (error) {
    assert.ok(
      error instanceof StoreError || error instanceof RestoreError,
      `${label}: the dry run failed with ${(error as Error).name}: ${
        (error as Error).message
      }`,
    );
    assertOneLine(error.message, label);
    await untouched("after the refused dry run");
    const again = await rejection(() => attempt(false), `${label} (real)`);
    assert.equal(again.message, error.message, `${label}: the same reason`);
    await untouched("after the refused restore");
    return { kind: "restore", message: error.message };
  }
  const all = (n: number) => ({ restored: n, skipped: 0, updated: 0 });
  assert.deepEqual(
    dry.memories,
    all(expected.memories.length),
    `${label}: the dry run counts every memory as restored`,
  );
  assert.deepEqual(
    dry.relationshipCounts,
    all(expected.relationships.length),
    `${label}: the dry run counts every relationship as restored`,
  );
  await untouched("after the dry run");
  const real = await attempt(false);
  assert.deepEqual(real.memories, dry.memories, `${label}: as the dry run`);
  assert.deepEqual(real.relationshipCounts, dry.relationshipCounts, label);
  await assertExact(fx, expected, qualified, label);
  assert.equal(
    (await fx.db.query("select count(*)::text from t"))[0]![0],
    "1",
    `${label}: the canary table is intact`,
  );
  return { kind: "exact", result: real, warnings, table: qualified };
}

/** Asserts the target holds exactly the backup's records. */
async function assertExact(
  fx: Fixture,
  expected: ExpectedBackup,
  qualified: string,
  label: string,
): Promise<void> {
  const rows = await fx.db.query(
    `select id::text, vector::text from ${qualified}`,
  );
  assert.deepEqual(
    rows.map((r) => r[0]).sort(),
    expected.memories.map((m) => m.id).sort(),
    `${label}: the target holds exactly the backup's ids`,
  );
  const vectors = new Map(rows.map((r) => [r[0]!, r[1]]));
  for (const m of expected.memories) {
    const vector = vectors.get(m.id);
    if (m.vector === null) {
      assert.equal(vector, null, `${label}: memory ${m.id}: a NULL vector`);
    } else {
      assert.deepEqual(
        new Uint8Array(Float32Array.from(JSON.parse(vector!)).buffer),
        new Uint8Array(m.vector.buffer),
        `${label}: memory ${m.id}: the vector is float32-equal`,
      );
    }
    const same = await fx.db.query(
      `select (payload::jsonb is not distinct from $2::text::jsonb)::text from ${qualified} where id::text = $1`,
      [m.id, m.payload],
    );
    assert.equal(
      same[0]?.[0],
      "true",
      `${label}: memory ${m.id}: the payload is equal as jsonb`,
    );
  }
  const db = new DatabaseSync(fx.target, { readOnly: true });
  let actual;
  try {
    actual = relationshipRows(db);
  } finally {
    db.close();
  }
  const { rows: wanted, jsonMetadata } = expectedRelationshipRows(
    expected.relationships,
    fx.ddl,
  );
  assert.equal(
    actual.length,
    wanted.length,
    `${label}: as many relationship rows as records`,
  );
  wanted.forEach((want, i) => {
    const got = actual[i]!;
    const json = jsonMetadata.get(String(want.id));
    if (json !== undefined) {
      assert.ok(
        typeof got.metadata === "string" &&
          losslessEqual(parseLossless(got.metadata), json),
        `${label}: relationship ${want.id}: metadata ${
          JSON.stringify(got.metadata)
        } is the record's JSON`,
      );
      assert.deepEqual(
        { ...got, metadata: null },
        { ...want, metadata: null },
        `${label}: relationship ${want.id}: equal row`,
      );
    } else {
      assert.deepEqual(
        got,
        want,
        `${label}: relationship ${want.id}: equal row`,
      );
    }
  });
}

function expectVerify(
  outcome: Outcome,
  label: string,
  file: string,
  pattern: RegExp,
): void {
  assert.equal(
    outcome.kind,
    "verify",
    `${label}: rejected by verify, not ${
      JSON.stringify(outcome).slice(0, 300)
    }`,
  );
  if (outcome.kind !== "verify") return;
  assert.equal(outcome.file, file, `${label}: names ${file}: ${outcome.where}`);
  assert.match(outcome.where, pattern, label);
}

function expectRestoreRefusal(
  outcome: Outcome,
  label: string,
  pattern: RegExp,
): void {
  assert.equal(
    outcome.kind,
    "restore",
    `${label}: refused by the restore, not ${
      JSON.stringify(outcome).slice(0, 300)
    }`,
  );
  if (outcome.kind === "restore") assert.match(outcome.message, pattern, label);
}

function expectExact(outcome: Outcome, label: string): void {
  assert.equal(
    outcome.kind,
    "exact",
    `${label}: restored exactly, not ${JSON.stringify(outcome).slice(0, 300)}`,
  );
}

const SQL_ID = "x'); drop table t;--";
const SQL_KEY = '"); drop table memories; --';

/** Each group runs on the one wire database and backup this file starts once. */
function hostile(name: string, fn: (t: Deno.TestContext) => Promise<void>) {
  Deno.test({
    name: `hostile backups: ${name}`,
    // The database and its server outlive each test.
    sanitizeOps: false,
    sanitizeResources: false,
    fn,
  });
}
let db: WireDatabase;
let fx: Fixture;
Deno.test.beforeAll(async () => {
  db = await startWireDatabase();
  fx = await makeFixture(db);
});
Deno.test.afterAll(async () => {
  await db?.close();
  if (fx) await Deno.remove(fx.dir, { recursive: true }).catch(() => {});
});

hostile("the untouched backup restores exactly", async () => {
  expectExact(
    await judge(fx, await edited(fx, {}), "pristine"),
    "pristine",
  );
});

hostile("malformed and truncated JSON", async (t) => {
  const cases: [string, Edit, string, RegExp][] = [
    [
      "a memory line missing its closing brace names export.json and its line",
      {
        lines: (l, at) =>
          l[at.memories[1]!] = l[at.memories[1]!]!.replace(/\},?$/, ","),
      },
      EXPORT_FILE,
      /^export\.json:\d+: /,
    ],
    [
      "export.json cut in the middle of a record is reported as truncated",
      { bytes: (b) => b.subarray(0, Math.floor(b.length / 2)) },
      EXPORT_FILE,
      /^export\.json:\d+: the file ends inside a value begun on line \d+/,
    ],
    [
      "an empty export.json is reported as truncated",
      { bytes: () => new Uint8Array() },
      EXPORT_FILE,
      /^export\.json:1: .*ends before the document/,
    ],
    [
      "a record that is a bare number is named",
      { lines: (l, at) => l[at.relationships[0]!] = "42," },
      EXPORT_FILE,
      /^export\.json:\d+: a record in relationships is not a JSON object/,
    ],
    [
      "text after the end of the document is named",
      {
        bytes: (b) => new Uint8Array([...b, ...new TextEncoder().encode("{}")]),
      },
      EXPORT_FILE,
      /unexpected text after the end of the document/,
    ],
    [
      "an unknown top-level key holding a line break is named on one line",
      {
        lines: (l) => {
          const i = l.indexOf('"relationships":[');
          l.splice(i, 0, '"evil\\nkey":[],');
        },
      },
      EXPORT_FILE,
      /unexpected key "evil\\nkey"/,
    ],
  ];
  for (const [name, edit, file, pattern] of cases) {
    await t.step(name, async () => {
      const dir = await edited(fx, edit);
      expectVerify(await judge(fx, dir, name), name, file, pattern);
    });
  }
  await t.step("metadata.json cut short is not valid JSON", async () => {
    const dir = await copyOfBase(fx);
    const bytes = await Deno.readFile(`${dir}/${METADATA_FILE}`);
    await reseal(dir, { metadataBytes: bytes.subarray(0, 100) });
    expectVerify(
      await judge(fx, dir, "metadata cut"),
      "metadata cut",
      METADATA_FILE,
      /^metadata\.json: not valid JSON: /,
    );
  });
  await t.step(
    "a checksums.json that is not JSON is named (nothing else is trusted)",
    async () => {
      const dir = await copyOfBase(fx);
      await Deno.writeTextFile(`${dir}/${CHECKSUMS_FILE}`, "{nope");
      expectVerify(
        await judge(fx, dir, "checksums"),
        "checksums",
        CHECKSUMS_FILE,
        /^checksums\.json: not valid JSON: /,
      );
    },
  );
  await t.step(
    "the whole document on one line (a valid layout) restores exactly",
    async () => {
      const doc = JSON.parse(fx.exportText);
      const dir = await edited(fx, {
        bytes: () => new TextEncoder().encode(JSON.stringify(doc)),
      });
      expectExact(await judge(fx, dir, "one line"), "one line");
    },
  );
});

hostile("wrong types", async (t) => {
  const cases: [string, Edit, string, RegExp][] = [
    [
      "a memory id that is a number names the field",
      { lines: memory(0, (r) => r.id = 42) },
      EXPORT_FILE,
      /^export\.json:3: memory 1: id: .*expected string/,
    ],
    [
      "an embedding that is a string names the field",
      { lines: memory(1, (r) => r.embedding = "[0.1,0.2]") },
      EXPORT_FILE,
      /^export\.json:4: memory 2: embedding/,
    ],
    [
      "a memory metadata that is an array names the field",
      { lines: memory(2, (r) => r.metadata = [1, 2]) },
      EXPORT_FILE,
      /^export\.json:5: memory 3: metadata: .*expected record/,
    ],
    [
      "an unknown memory field holding a line break is named on one line",
      { lines: memory(0, (r) => r["line\nbreak"] = 1) },
      EXPORT_FILE,
      /^export\.json:3: memory 1: Unrecognized key: "line\\nbreak"/,
    ],
    [
      "a relationship id that is a string names the field",
      { lines: relationship(0, (r) => r.id = "1") },
      EXPORT_FILE,
      /relationship 1: id: .*expected number/,
    ],
    [
      "a relationship source_id that is null names the field",
      { lines: relationship(1, (r) => r.source_id = null) },
      EXPORT_FILE,
      /relationship 2: source_id: /,
    ],
    [
      "relationship metadata tagged as a blob that is not base64 names the field",
      {
        lines: relationship(
          0,
          (r) => r.metadata = { $blob: "not base64!" },
        ),
      },
      EXPORT_FILE,
      /relationship 1: "metadata": "\$blob" is not base64$/,
    ],
    [
      "a relationship strength tagged as a real that is not a number names the field",
      { lines: relationship(1, (r) => r.strength = { $real: "lots" }) },
      EXPORT_FILE,
      /relationship 2: "strength": "\$real" is not a number/,
    ],
    [
      "a memory_count that is a string names metadata.json's field",
      { metadata: (m) => m.memory_count = "6" },
      METADATA_FILE,
      /^metadata\.json: not a valid backup metadata: memory_count: /,
    ],
    [
      "a table count key holding a line break is named on one line",
      {
        metadata: (m) =>
          (m.relationships.tables as Record<string, unknown>)["a\nb"] = "x",
      },
      METADATA_FILE,
      /relationships\.tables\.a\\nb: /,
    ],
  ];
  for (const [name, edit, file, pattern] of cases) {
    await t.step(name, async () => {
      expectVerify(
        await judge(fx, await edited(fx, edit), name),
        name,
        file,
        pattern,
      );
    });
  }
  await t.step(
    "odd but valid payload values (content an object, heat a string) restore exactly",
    async () => {
      const dir = await edited(fx, {
        lines: memory(0, (r) => {
          r.content = { text: "an object", n: [1, null] };
          r.heat = "warm";
        }),
      });
      expectExact(await judge(fx, dir, "odd values"), "odd values");
    },
  );
  await t.step(
    "valid tagged values (a blob, an infinite real) in relationships restore exactly",
    async () => {
      const dir = await edited(fx, {
        lines: relationship(0, (r) => {
          r.metadata = { $blob: btoa("\u0000\u00ffbytes") };
          r.strength = { $real: "-Infinity" };
        }),
      });
      expectExact(await judge(fx, dir, "tagged values"), "tagged values");
    },
  );
});

hostile("NaN, Infinity and strings in embeddings", async (t) => {
  const cases: [string, string, RegExp][] = [
    [
      "a NaN literal is not JSON",
      "NaN",
      /^export\.json:3: invalid JSON in a record of memories/,
    ],
    [
      "an Infinity literal is not JSON",
      "-Infinity",
      /^export\.json:3: invalid JSON in a record of memories/,
    ],
    [
      'the string "NaN" is not a number',
      '"NaN"',
      /^export\.json:3: memory 1: embedding\[0\] is "NaN", not a finite number/,
    ],
    [
      "1e400 overflows to Infinity",
      "1e400",
      /^export\.json:3: memory 1: embedding\[0\] is Infinity, not a finite number/,
    ],
    [
      'the string "0.5" is not a number',
      '"0.5"',
      /^export\.json:3: memory 1: embedding\[0\] is "0\.5", not a finite number/,
    ],
    [
      "null in a vector is not a number",
      "null",
      /^export\.json:3: memory 1: embedding\[0\] is null, not a finite number/,
    ],
  ];
  for (const [name, raw, pattern] of cases) {
    await t.step(name, async () => {
      const dir = await edited(fx, {
        lines: memory(0, (r, spliced) => {
          (r.embedding as unknown[])[0] = spliced(raw);
        }),
      });
      expectVerify(await judge(fx, dir, name), name, EXPORT_FILE, pattern);
    });
  }
  await t.step(
    "1e39 (finite, beyond float32) is refused in one line and nothing is written",
    async () => {
      const dir = await edited(fx, {
        lines: memory(0, (r, spliced) => {
          (r.embedding as unknown[])[0] = spliced("1e39");
        }),
      });
      expectVerify(
        await judge(fx, dir, "1e39"),
        "1e39",
        EXPORT_FILE,
        /^export\.json:3: memory 1: embedding\[0\] is 1e\+39, beyond the range of a vector's 32-bit floats$/,
      );
    },
  );
  await t.step(
    "a null embedding restores exactly as a NULL vector",
    async () => {
      const dir = await edited(fx, {
        lines: memory(3, (r) => r.embedding = null),
      });
      expectExact(await judge(fx, dir, "null vector"), "null vector");
    },
  );
  await t.step(
    "numbers below float32's range restore float32-equal",
    async () => {
      const dir = await edited(fx, {
        lines: memory(0, (r, spliced) => {
          (r.embedding as unknown[])[0] = spliced("1e-50");
          (r.embedding as unknown[])[1] = spliced("1.5e-45");
          (r.embedding as unknown[])[2] = spliced("-0");
        }),
      });
      expectExact(await judge(fx, dir, "tiny"), "tiny");
    },
  );
});

hostile("wrong dimensions", async (t) => {
  await t.step(
    "a vector one number short names its line and both lengths",
    async () => {
      const dir = await edited(fx, {
        lines: memory(2, (r) => (r.embedding as unknown[]).pop()),
      });
      expectVerify(
        await judge(fx, dir, "short"),
        "short",
        EXPORT_FILE,
        /^export\.json:5: memory 3: embedding has 7 numbers, expected 8/,
      );
    },
  );
  await t.step(
    "metadata claiming 9 dimensions disagrees with every vector",
    async () => {
      const dir = await edited(fx, {
        metadata: (m) => m.memories.dims = 9,
      });
      expectVerify(
        await judge(fx, dir, "dims 9"),
        "dims 9",
        EXPORT_FILE,
        /memory 1: embedding has 8 numbers, expected 9/,
      );
    },
  );
  await t.step(
    "a target table of 3 dimensions is refused before anything is written",
    async () => {
      const before = await tableDigest(db, "public.small3");
      const live = await liveState(fx);
      const error = await rejection(
        () =>
          restore({
            source: fx.base,
            config: fx.live,
            table: { schema: "public", name: "small3" },
            dryRun: true,
            scratchDir: fx.scratch,
          }),
        "small3",
      );
      assert.ok(error instanceof StoreError);
      assertOneLine(error.message, "small3");
      assert.match(
        error.message,
        /Cannot restore into "public\.small3": its vectors have 3 dimensions, the backup's have 8/,
      );
      assert.equal(await tableDigest(db, "public.small3"), before);
      assert.deepEqual(await liveState(fx), live);
    },
  );
  await t.step(
    "undeclared dimensions with vectors of two lengths: exact into a new table, refused by a table of 8",
    async () => {
      const dir = await edited(fx, {
        metadata: (m) => m.memories.dims = null,
        lines: memory(4, (r) => (r.embedding as unknown[]).pop()),
      });
      expectExact(await judge(fx, dir, "dims null"), "dims null");
      const live = await liveState(fx);
      const error = await rejection(
        () =>
          restore({
            source: dir,
            config: fx.live,
            table: { schema: "public", name: "memories" },
            conflictMode: "update",
            dryRun: true,
            scratchDir: fx.scratch,
          }),
        "dims null into memories",
      );
      assert.ok(error instanceof StoreError, error.message);
      assertOneLine(error.message, "dims null into memories");
      assert.match(error.message, /expected 8 dimensions, not 7/);
      assert.deepEqual(await liveState(fx), live);
    },
  );
});

hostile("duplicate ids", async (t) => {
  const cases: [string, Edit, RegExp][] = [
    [
      "the same memory id twice names the second line",
      {
        lines: (l, at) => {
          const first = JSON.parse(l[at.memories[0]!]!.slice(0, -1)).id;
          l[at.memories[3]!] = editRecord(
            l[at.memories[3]!]!,
            (r) => r.id = first,
          );
        },
      },
      /^export\.json:6: memory id "[0-9a-f-]{36}" appears twice/,
    ],
    [
      "the same uuid in capitals is the same memory",
      {
        lines: (l, at) => {
          const first = JSON.parse(l[at.memories[0]!]!.slice(0, -1)).id;
          l[at.memories[3]!] = editRecord(
            l[at.memories[3]!]!,
            (r) => r.id = first.toUpperCase(),
          );
        },
      },
      /^export\.json:6: memory 4: id "[0-9A-F-]{36}" is not a uuid as Postgres writes one/,
    ],
    [
      "the same relationship key twice is named",
      {
        lines: (l, at) => {
          const first = JSON.parse(l[at.relationships[0]!]!.slice(0, -1));
          l[at.relationships[1]!] = editRecord(
            l[at.relationships[1]!]!,
            (r) => {
              r.source_id = first.source_id;
              r.target_id = first.target_id;
              r.rel_type = first.rel_type;
            },
          );
        },
      },
      /relationship ".*" -\[".*"\]-> ".*" appears twice/,
    ],
    [
      "the same relationship id twice is named",
      { lines: relationship(2, (r) => r.id = 1) },
      /^export\.json:\d+: relationship id 1 appears twice/,
    ],
    [
      "duplicate ids holding line breaks are named on one line",
      {
        metadata: (m) => m.memories.id_type = "text",
        lines: (l, at) => {
          for (const n of [0, 1]) {
            l[at.memories[n]!] = editRecord(
              l[at.memories[n]!]!,
              (r) => r.id = "two\nlines",
            );
          }
        },
      },
      /memory id "two\\nlines" appears twice/,
    ],
  ];
  for (const [name, edit, pattern] of cases) {
    await t.step(name, async () => {
      expectVerify(
        await judge(fx, await edited(fx, edit), name),
        name,
        EXPORT_FILE,
        pattern,
      );
    });
  }
});

hostile("non-uuid ids for a uuid table", async (t) => {
  await t.step(
    "a backup of a uuid table holding a non-uuid id names its line",
    async () => {
      const dir = await edited(fx, {
        lines: memory(0, (r) => r.id = "note-7"),
      });
      expectVerify(
        await judge(fx, dir, "note-7"),
        "note-7",
        EXPORT_FILE,
        /^export\.json:3: memory 1: id "note-7" is not a uuid/,
      );
    },
  );
  await t.step(
    "a uuid in braces (which Postgres would rewrite) is refused",
    async () => {
      const dir = await edited(fx, {
        lines: memory(1, (r) => r.id = `{${r.id}}`),
      });
      expectVerify(
        await judge(fx, dir, "braces"),
        "braces",
        EXPORT_FILE,
        /^export\.json:4: memory 2: id "\{.*\}" is not a uuid/,
      );
    },
  );
  const textIds = await edited(fx, {
    metadata: (m) => m.memories.id_type = "text",
    lines: (l, at) => {
      l[at.memories[0]!] = editRecord(
        l[at.memories[0]!]!,
        (r) => r.id = SQL_ID,
      );
      l[at.memories[1]!] = editRecord(
        l[at.memories[1]!]!,
        (r) => r.id = "note-7",
      );
    },
  });
  await t.step(
    "a text-id backup restored into an existing uuid table is refused before anything is written",
    async () => {
      const live = await liveState(fx);
      const error = await rejection(
        () =>
          restore({
            source: textIds,
            config: fx.live,
            table: { schema: "public", name: "memories" },
            dryRun: true,
            scratchDir: fx.scratch,
          }),
        "text into uuid",
      );
      assert.ok(error instanceof StoreError, error.message);
      assertOneLine(error.message, "text into uuid");
      assert.match(
        error.message,
        /the target's id column is uuid, but the backup holds id "x'\); drop table t;--"/,
      );
      assert.deepEqual(await liveState(fx), live);
    },
  );
  await t.step(
    "a text-id backup (ids holding SQL) restores exactly into a new text table",
    async () => {
      const outcome = await judge(fx, textIds, "text ids");
      expectExact(outcome, "text ids");
      const ids = await db.query("select id from fz where id like 'x%'");
      assert.deepEqual(ids, [[SQL_ID]]);
    },
  );
});

hostile("10 MB strings", async (t) => {
  const big = "é".repeat(5 * 1024 * 1024); // 10 MiB of UTF-8
  await t.step("a 10 MB memory text restores exactly", async () => {
    const dir = await edited(fx, {
      lines: memory(0, (r) => r.content = big),
    });
    const outcome = await judge(fx, dir, "10 MB content");
    expectExact(outcome, "10 MB content");
    const rows = await db.query(
      "select octet_length(payload->>'data')::text, md5(payload->>'data') from fz where octet_length(payload->>'data') > 1000",
    );
    assert.equal(rows.length, 1);
    assert.equal(rows[0]![0], String(10 * 1024 * 1024));
  });
  await t.step(
    "a 10 MB relationship metadata text restores exactly",
    async () => {
      const dir = await edited(fx, {
        lines: relationship(0, (r) => r.metadata = big),
      });
      expectExact(await judge(fx, dir, "10 MB metadata"), "10 MB metadata");
    },
  );
  await t.step(
    "a 10 MB id in a uuid backup is refused with a short reason",
    async () => {
      const dir = await edited(fx, { lines: memory(2, (r) => r.id = big) });
      expectVerify(
        await judge(fx, dir, "10 MB id"),
        "10 MB id",
        EXPORT_FILE,
        /^export\.json:5: memory 3: id "é+…" is not a uuid/,
      );
    },
  );
  await t.step(
    "a 10 MB text id is refused by the target's index in one line, nothing written",
    async () => {
      const dir = await edited(fx, {
        metadata: (m) => m.memories.id_type = "text",
        lines: memory(2, (r) => r.id = big),
      });
      expectRestoreRefusal(
        await judge(fx, dir, "10 MB text id"),
        "10 MB text id",
        /^Cannot restore into "public\.fz": index row/,
      );
    },
  );
  await t.step(
    "a metadata.json over 16 MiB is refused without being parsed",
    async () => {
      const dir = await copyOfBase(fx);
      const text = await Deno.readTextFile(`${dir}/${METADATA_FILE}`);
      await reseal(dir, {
        metadataBytes: new TextEncoder().encode(
          text + " ".repeat(17 * 1024 * 1024),
        ),
      });
      expectVerify(
        await judge(fx, dir, "17 MiB metadata"),
        "17 MiB metadata",
        METADATA_FILE,
        /too large for this file/,
      );
    },
  );
});

hostile("invalid UTF-8", async (t) => {
  const insert = (find: string, bytes: number[]) => (b: Uint8Array) => {
    const text = new TextDecoder().decode(b);
    const at = new TextEncoder().encode(
      text.slice(0, text.indexOf(find)),
    ).length;
    return new Uint8Array([
      ...b.subarray(0, at),
      ...bytes,
      ...b.subarray(at),
    ]);
  };
  const cases: [string, Edit, string, RegExp][] = [
    [
      "a 0xFF byte in a memory's text names the line and byte",
      { bytes: insert("Prefers", [0xff]) },
      EXPORT_FILE,
      /^export\.json:4: not valid UTF-8 at byte \d+/,
    ],
    [
      "an overlong encoding of '/' is refused",
      { bytes: insert('"supports"', [0xc0, 0xaf]) },
      EXPORT_FILE,
      /^export\.json:\d+: not valid UTF-8 at byte \d+/,
    ],
    [
      "an encoded surrogate (CESU-8) is refused",
      { bytes: insert("Budget", [0xed, 0xa0, 0x80]) },
      EXPORT_FILE,
      /^export\.json:\d+: not valid UTF-8 at byte \d+/,
    ],
    [
      "a multi-byte character cut at the end of the file is refused",
      { bytes: (b) => new Uint8Array([...b, 0xe2, 0x82]) },
      EXPORT_FILE,
      /^export\.json:\d+: not valid UTF-8 at byte \d+/,
    ],
  ];
  for (const [name, edit, file, pattern] of cases) {
    await t.step(name, async () => {
      expectVerify(
        await judge(fx, await edited(fx, edit), name),
        name,
        file,
        pattern,
      );
    });
  }
  await t.step("invalid UTF-8 in metadata.json is refused", async () => {
    const dir = await copyOfBase(fx);
    const bytes = await Deno.readFile(`${dir}/${METADATA_FILE}`);
    await reseal(dir, {
      metadataBytes: new Uint8Array([
        ...bytes.subarray(0, 20),
        0xff,
        ...bytes.subarray(20),
      ]),
    });
    expectVerify(
      await judge(fx, dir, "metadata utf-8"),
      "metadata utf-8",
      METADATA_FILE,
      /^metadata\.json: not valid JSON: /,
    );
  });
  for (
    const [name, escape] of [
      ["a lone surrogate escape", "\\ud800"],
      ["a NUL escape", "\\u0000"],
    ]
  ) {
    await t.step(
      `${name} in a payload is refused in one line, nothing written`,
      async () => {
        const dir = await edited(fx, {
          lines: memory(1, (r, spliced) => {
            (r.metadata as Record<string, unknown>).note = spliced(
              `"a${escape}b"`,
            );
          }),
        });
        const outcome = await judge(fx, dir, name!);
        if (outcome.kind === "verify") {
          assert.match(outcome.where, /^export\.json:4: memory 2: /);
        } else {
          expectRestoreRefusal(
            outcome,
            name!,
            /^Cannot restore into "public\.fz": .* \(in memories 1–6, ids "[0-9a-f-]{36}" to "[0-9a-f-]{36}"\)$/,
          );
        }
      },
    );
  }
  await t.step(
    "a leading byte-order mark is dropped and the backup restores exactly",
    async () => {
      const dir = await edited(fx, {
        bytes: (b) => new Uint8Array([0xef, 0xbb, 0xbf, ...b]),
      });
      expectExact(await judge(fx, dir, "BOM"), "BOM");
    },
  );
});

hostile("deeply nested payloads", async (t) => {
  const nested = (depth: number) =>
    "[".repeat(depth) + '"deep"' + "]".repeat(depth);
  await t.step("a payload nested 500 deep restores exactly", async () => {
    const dir = await edited(fx, {
      lines: memory(0, (r, spliced) => {
        (r.metadata as Record<string, unknown>).tree = spliced(nested(500));
      }),
    });
    expectExact(await judge(fx, dir, "500 deep"), "500 deep");
  });
  for (const depth of [20_000, 200_000]) {
    await t.step(
      `a payload nested ${
        depth.toLocaleString("en-US")
      } deep is refused in one line, never hangs or is lost`,
      async () => {
        const dir = await edited(fx, {
          lines: memory(1, (r, spliced) => {
            (r.metadata as Record<string, unknown>).tree = spliced(
              nested(depth),
            );
          }),
        });
        expectVerify(
          await judge(fx, dir, `${depth} deep`),
          `${depth} deep`,
          EXPORT_FILE,
          /^export\.json:4: memory 2: metadata is nested deeper than \d+ levels/,
        );
      },
    );
  }
  await t.step(
    "a memory text nested 20,000 deep is refused in one line",
    async () => {
      const dir = await edited(fx, {
        lines: memory(
          2,
          (r, spliced) => r.content = spliced(nested(20_000)),
        ),
      });
      expectVerify(
        await judge(fx, dir, "deep content"),
        "deep content",
        EXPORT_FILE,
        /^export\.json:5: memory 3: content is nested deeper than \d+ levels/,
      );
    },
  );
});

hostile("numbers beyond float64 precision", async (t) => {
  await t.step(
    "a payload with 12345678901234567890123 and 0.1000000000000000055511151231257827 comes back with the same digits",
    async () => {
      const dir = await edited(fx, {
        lines: memory(0, (r, spliced) => {
          const m = r.metadata as Record<string, unknown>;
          m.n = spliced("12345678901234567890123");
          m.f = spliced("0.1000000000000000055511151231257827");
        }),
      });
      expectExact(await judge(fx, dir, "digits"), "digits");
      const rows = await db.query(
        "select (payload->'n')::text, (payload->'f')::text from fz where payload ? 'n'",
      );
      assert.deepEqual(rows, [[
        "12345678901234567890123",
        "0.1000000000000000055511151231257827",
      ]]);
    },
  );
  await t.step("a heat of 1e400 restores exactly", async () => {
    const dir = await edited(fx, {
      lines: memory(1, (r, spliced) => r.heat = spliced("1e400")),
    });
    expectExact(await judge(fx, dir, "1e400"), "1e400");
  });
  await t.step(
    "a payload number beyond numeric's range is refused in one line",
    async () => {
      const dir = await edited(fx, {
        lines: memory(1, (r, spliced) => {
          (r.metadata as Record<string, unknown>).n = spliced("1e1000000");
        }),
      });
      expectRestoreRefusal(
        await judge(fx, dir, "1e1000000"),
        "1e1000000",
        /^Cannot restore into "public\.fz": value overflows numeric format/,
      );
    },
  );
  await t.step(
    "relationship numbers beyond 64-bit integers are stored as SQLite stores such literals",
    async () => {
      const dir = await edited(fx, {
        lines: relationship(1, (r, spliced) => {
          r.strength = spliced("12345678901234567890123");
          r.metadata = spliced("98765432109876543210987");
        }),
      });
      expectExact(await judge(fx, dir, "huge strength"), "huge strength");
    },
  );
});

hostile("SQL in ids, table names and payload keys", async (t) => {
  await t.step(
    `a payload key ${SQL_KEY} restores exactly and runs nothing`,
    async () => {
      const dir = await edited(fx, {
        lines: memory(0, (r) => {
          (r.metadata as Record<string, unknown>)[SQL_KEY] = SQL_ID;
          Object.defineProperty(r.metadata, "__proto__", {
            value: { polluted: true },
            enumerable: true,
          });
        }),
      });
      expectExact(await judge(fx, dir, "sql key"), "sql key");
      const keys = await db.query(
        "select count(*)::text from fz where payload ? $1 and payload ? '__proto__'",
        [SQL_KEY],
      );
      assert.deepEqual(keys, [["1"]]);
      assert.ok(await tableExists(fx, "public.memories"));
    },
  );
  await t.step(
    "a table name holding SQL is only ever a quoted name",
    async () => {
      const hostile = 'memories"; drop table t; --';
      const dir = await edited(fx, {
        metadata: (m) => m.memories.table = hostile,
      });
      const outcome = await judge(fx, dir, "sql table", {
        backupsTable: true,
      });
      if (outcome.kind === "exact") {
        assert.equal(outcome.table, `"public".${quoteIdent(hostile)}`);
        await db.query(`drop table ${outcome.table}`);
      } else {
        assertOneLine(
          outcome.kind === "verify" ? outcome.where : outcome.message,
          "sql table",
        );
      }
    },
  );
  await t.step(
    "index definitions holding SQL are not run, and the user is warned",
    async () => {
      const dir = await edited(fx, {
        metadata: (m) =>
          (m.memories.indexes as string[]).push(
            "CREATE INDEX x ON public.memories USING btree (id); DROP TABLE t",
            "DROP TABLE t",
          ),
      });
      const outcome = await judge(fx, dir, "sql index");
      expectExact(outcome, "sql index");
      if (outcome.kind === "exact") {
        assert.deepEqual(
          new Set(outcome.warnings.filter((w) => w.includes("DROP TABLE"))),
          new Set([
            "index not recreated (not a plain index definition): CREATE INDEX x ON public.memories USING btree (id); DROP TABLE t",
            "index not recreated (not a plain index definition): DROP TABLE t",
          ]),
        );
      }
    },
  );
  await t.step(
    "an id type holding SQL is refused before any table is created",
    async () => {
      const dir = await edited(fx, {
        metadata: (m) => m.memories.id_type = "uuid); drop table t; --",
      });
      expectRestoreRefusal(
        await judge(fx, dir, "sql id type"),
        "sql id type",
        /^Cannot restore: the backup records id type "uuid\); drop table t; --"/,
      );
    },
  );
  await t.step(
    "relationship values and field names holding SQL restore exactly",
    async () => {
      const dir = await edited(fx, {
        lines: relationship(0, (r) => {
          r.rel_type = "'); drop table relationships; --";
          r.source_id = SQL_ID;
          r['x"); drop table relationships; --'] = 1;
        }),
      });
      expectExact(
        await judge(fx, dir, "sql relationship"),
        "sql relationship",
      );
    },
  );
});

hostile("metadata claiming another table", async (t) => {
  await t.step(
    "metadata.json naming another table than the export's header is refused",
    async () => {
      const dir = await edited(fx, {
        metadata: (m) => m.memories.table = "other",
        headerToo: false,
      });
      expectVerify(
        await judge(fx, dir, "other table"),
        "other table",
        EXPORT_FILE,
        /^export\.json:1: the metadata header differs from metadata\.json/,
      );
    },
  );
  await t.step(
    "a backup of another table restores into that table, leaving the live one alone",
    async () => {
      const dir = await edited(fx, {
        metadata: (m) => m.memories.table = "other",
      });
      const outcome = await judge(fx, dir, "restored as other", {
        backupsTable: true,
      });
      expectExact(outcome, "restored as other");
      if (outcome.kind === "exact") {
        assert.equal(outcome.table, '"public"."other"');
      }
    },
  );
  await t.step(
    "a backup claiming pg_catalog.pg_class is refused without touching it",
    async () => {
      const dir = await edited(fx, {
        metadata: (m) => {
          m.memories.schema = "pg_catalog";
          m.memories.table = "pg_class";
        },
      });
      const live = await liveState(fx);
      const error = await rejection(
        () =>
          restore({
            source: dir,
            config: fx.live,
            dryRun: true,
            scratchDir: fx.scratch,
          }),
        "pg_class",
      );
      assert.ok(error instanceof StoreError, error.message);
      assertOneLine(error.message, "pg_class");
      assert.match(error.message, /pg_catalog\.pg_class/);
      assert.deepEqual(await liveState(fx), live);
    },
  );
  for (
    const [name, snapshot, pattern] of [
      ["outside the backup", "../relationships.db", /the file is missing/],
      [
        "at export.json",
        "export.json",
        /not a SQLite database|file is not a database/,
      ],
    ] as const
  ) {
    await t.step(`a snapshot named ${name} is refused`, async () => {
      const dir = await edited(fx, {
        metadata: (m) => m.relationships.snapshot = snapshot,
      });
      const outcome = await judge(fx, dir, name);
      assert.equal(outcome.kind, "verify");
      if (outcome.kind === "verify") assert.match(outcome.where, pattern);
    });
  }
  await t.step(
    "counts that disagree with the records are named",
    async () => {
      const dir = await edited(fx, {
        metadata: (m) => m.memory_count = MEMORIES + 1,
      });
      expectVerify(
        await judge(fx, dir, "count"),
        "count",
        EXPORT_FILE,
        /^export\.json: holds 6 memories, metadata\.json says 7/,
      );
    },
  );
});

hostile("zip-slip and zip bombs", async (t) => {
  const zipCase = async (
    name: string,
    make: (zip: string) => Promise<void>,
    pattern: RegExp,
  ) => {
    await t.step(name, async () => {
      const zip = `${fx.dir}/cases/${caseNumber++}.zip`;
      await make(zip);
      const live = await liveState(fx);
      const error = await rejection(
        () =>
          restore({
            source: zip,
            config: fx.live,
            dryRun: true,
            scratchDir: fx.scratch,
          }),
        name,
      );
      assert.ok(
        error instanceof SourceError,
        `${error.name}: ${error.message}`,
      );
      assertOneLine(error.message, name);
      assert.match(error.message, pattern);
      await assert.rejects(
        Deno.lstat(fx.scratch.replace(/\/scratch$/, "")),
        Deno.errors.NotFound,
        "nothing extracted is left, nor the directory made for it",
      );
      await assert.rejects(
        Deno.lstat(`${fx.dir}/evil`),
        Deno.errors.NotFound,
      );
      assert.deepEqual(await liveState(fx), live);
    });
  };
  for (
    const [name, entry, pattern] of [
      [
        "an entry climbing out with ../",
        "../evil",
        /zip entry "\.\.\/evil" climbs out with \.\./,
      ],
      [
        "an entry climbing out from a folder",
        "backup/../../evil",
        /climbs out with \.\./,
      ],
      [
        "an absolute path",
        "/tmp/evil",
        /zip entry "\/tmp\/evil" is an absolute path/,
      ],
      ["a Windows path", "..\\evil", /has a backslash/],
      ["a drive letter", "C:/evil", /is an absolute path/],
      [
        "a name with a line break and a terminal escape",
        "notes\n\u001b[31mred",
        /zip entry "notes\\n\\u001b\[31mred" has a control character$/,
      ],
    ] as const
  ) {
    await zipCase(
      name,
      (zip) => zipBackup(fx.base, zip, { extra: [{ name: entry, text: "x" }] }),
      pattern,
    );
  }
  await zipCase(
    "a symlink entry",
    (zip) =>
      zipBackup(fx.base, zip, {
        extra: [{ name: "notes", text: "/etc/passwd", unixMode: 0o120777 }],
      }),
    /zip entry "notes" is a link/,
  );
  await zipCase(
    "a symlink in place of export.json",
    (zip) =>
      zipBackup(fx.base, zip, {
        skip: [EXPORT_FILE],
        extra: [{
          name: EXPORT_FILE,
          text: "/etc/passwd",
          unixMode: 0o120777,
        }],
      }),
    /zip entry "export\.json" is a link/,
  );
  await zipCase(
    "more entries than a backup has",
    (zip) =>
      zipBackup(fx.base, zip, {
        extra: Array.from(
          { length: 60 },
          (_, i) => ({ name: `pad-${i}`, text: "x" }),
        ),
      }),
    /has 65 entries; a backup has a handful/,
  );
  await zipCase(
    "an entry declaring 4 GB",
    async (zip) => {
      await zipBackup(fx.base, zip);
      const bytes = await Deno.readFile(zip);
      declareSize(bytes, EXPORT_FILE, 0xfffffffe);
      await Deno.writeFile(zip, bytes);
    },
    /zip entry "export\.json" declares 4294967294 bytes, checksums\.json lists \d+/,
  );
  const bomb = async (zip: string, name: string) => {
    // The entry inflates to 32 MiB more than it declares (about 1000:1).
    const dir = await copyOfBase(fx);
    const real = await Deno.readFile(`${dir}/${name}`);
    const huge = new Uint8Array(real.length + 32 * 1024 * 1024).fill(0x20);
    huge.set(real);
    await Deno.writeFile(`${dir}/${name}`, huge);
    await zipBackup(dir, zip);
    const bytes = await Deno.readFile(zip);
    assert.ok(bytes.length < huge.length / 500, "a high ratio");
    declareSize(bytes, name, real.length);
    await Deno.writeFile(zip, bytes);
  };
  await zipCase(
    "an entry inflating far beyond the size it declares",
    (zip) => bomb(zip, EXPORT_FILE),
    /zip entry "export\.json" (holds more than the \d+ bytes it declares|is corrupt: Invalid uncompressed size)/,
  );
  await zipCase(
    "a checksums.json inflating far beyond the size it declares",
    (zip) => bomb(zip, CHECKSUMS_FILE),
    /zip entry "checksums\.json" (holds more than the \d+ bytes it declares|is corrupt: Invalid uncompressed size)/,
  );
});

hostile("links inside a backup directory", async (t) => {
  const linkCase = async (
    name: string,
    link: (dir: string) => Promise<void>,
    file: string,
  ) => {
    await t.step(name, async () => {
      const dir = await copyOfBase(fx);
      await link(dir);
      const live = await liveState(fx);
      const report = await verifyBackup(dir);
      assert.equal(report.ok, false, name);
      const p = report.problem!;
      assertOneLine(`${p.file}: ${p.reason}`, name);
      assert.equal(p.file, file);
      assert.match(p.reason, /is a symlink, not a regular file|missing/);
      const error = await rejection(
        () =>
          restore({
            source: dir,
            config: fx.live,
            dryRun: true,
            scratchDir: fx.scratch,
          }),
        name,
      );
      assert.ok(
        error instanceof RestoreError || error instanceof SourceError,
        `${error.name}: ${error.message}`,
      );
      assertOneLine(error.message, name);
      assert.ok(error.message.includes(file), error.message);
      assert.deepEqual(await liveState(fx), live);
    });
  };
  const replaceWithLink =
    (name: string, target: string) => async (dir: string) => {
      await Deno.remove(`${dir}/${name}`);
      await Deno.symlink(target, `${dir}/${name}`);
    };
  await linkCase(
    "relationships.db linked to the live store",
    (dir) => replaceWithLink(RELATIONSHIPS_COPY_FILE, fx.liveRel)(dir),
    RELATIONSHIPS_COPY_FILE,
  );
  await linkCase(
    "export.json linked to a valid export elsewhere",
    (dir) => replaceWithLink(EXPORT_FILE, `${fx.base}/${EXPORT_FILE}`)(dir),
    EXPORT_FILE,
  );
  await linkCase(
    "an extra link to /etc/passwd",
    (dir) => Deno.symlink("/etc/passwd", `${dir}/notes.txt`),
    "notes.txt",
  );
  await linkCase(
    "metadata.json linked to a valid metadata elsewhere",
    (dir) => replaceWithLink(METADATA_FILE, `${fx.base}/${METADATA_FILE}`)(dir),
    METADATA_FILE,
  );
});

hostile("the CLI, with production permissions", async (t) => {
  const checkout = await makeCheckout();
  try {
    const place = async (dir: string, name: string) => {
      await Deno.mkdir(`${checkout.dir}/backups`, { recursive: true });
      const to = `${checkout.dir}/backups/${name}`;
      await Deno.mkdir(to);
      for await (const entry of Deno.readDir(dir)) {
        if (entry.isSymlink) {
          await Deno.symlink(
            await Deno.readLink(`${dir}/${entry.name}`),
            `${to}/${entry.name}`,
          );
        } else {
          await Deno.copyFile(
            `${dir}/${entry.name}`,
            `${to}/${entry.name}`,
          );
        }
      }
      return `backups/${name}`;
    };
    const noStack = (
      out: { stdout: string; stderr: string },
      label: string,
    ) => {
      assert.ok(
        !/^\s+at /m.test(out.stderr + out.stdout),
        `${label}: a stack trace: ${out.stderr}`,
      );
      assert.ok(
        !/error: Uncaught/i.test(out.stderr),
        `${label}: ${out.stderr}`,
      );
    };
    // As the tasks run them: the launcher's exact grants.
    const verifyCli = (path: string) =>
      checkout.deno(productionArgs(checkout, "verify", [path]));
    const restoreCli = (path: string, env: Record<string, string> = {}) =>
      checkout.deno(
        productionArgs(checkout, "restore", [
          "--source",
          path,
          "--dry-run",
        ], env),
        env,
      );

    const malformed = await place(
      await edited(fx, { lines: memory(1, (r) => r.id = 42) }),
      "malformed",
    );
    await t.step(
      "verify prints the first problem on one line and exits 1",
      async () => {
        const out = await verifyCli(malformed);
        assert.equal(out.code, 1, out.stderr);
        noStack(out, "verify");
        assert.deepEqual(ownLines(out.stderr), []);
        const verdict = out.stdout.split("\n").filter((l) =>
          l.startsWith("Backup is NOT valid")
        );
        assert.deepEqual(verdict, [
          "Backup is NOT valid: export.json:4: memory 2: id: Invalid input: expected string, received number",
        ]);
      },
    );
    await t.step(
      "restore --dry-run prints one error line and exits 1",
      async () => {
        const out = await restoreCli(malformed);
        assert.equal(out.code, 1, out.stderr);
        noStack(out, "restore");
        assert.deepEqual(ownLines(out.stderr), [
          "Error: Cannot restore: the backup failed verification: export.json:4: memory 2: id: Invalid input: expected string, received number",
        ]);
      },
    );
    await t.step(
      "restore --dry-run of a zip with an entry climbing out prints one line and extracts nothing",
      async () => {
        await zipBackup(fx.base, `${checkout.dir}/backups/slip.zip`, {
          extra: [{ name: "../../evil", text: "x" }],
        });
        const out = await restoreCli("backups/slip.zip");
        assert.equal(out.code, 1, out.stderr);
        noStack(out, "zip");
        assert.deepEqual(ownLines(out.stderr), [
          'Error: Cannot restore: zip entry "../../evil" climbs out with ..',
        ]);
        await assert.rejects(
          Deno.lstat(`${checkout.dir}/evil`),
          Deno.errors.NotFound,
        );
      },
    );
    await t.step(
      "verify names a symlinked snapshot and exits 1",
      async () => {
        const dir = await copyOfBase(fx);
        await Deno.remove(`${dir}/${RELATIONSHIPS_COPY_FILE}`);
        await Deno.symlink("/etc/passwd", `${dir}/${RELATIONSHIPS_COPY_FILE}`);
        const out = await verifyCli(await place(dir, "linked"));
        assert.equal(out.code, 1, out.stderr);
        noStack(out, "link");
        assert.match(
          out.stdout,
          /^Backup is NOT valid: relationships\.db: is a symlink, not a regular file$/m,
        );
      },
    );
    await t.step(
      "verify refuses a payload nested 200,000 deep in one line",
      async () => {
        const dir = await edited(fx, {
          lines: memory(0, (r, spliced) => {
            (r.metadata as Record<string, unknown>).tree = spliced(
              "[".repeat(200_000) + "]".repeat(200_000),
            );
          }),
        });
        const out = await verifyCli(await place(dir, "deep"));
        assert.equal(out.code, 1, out.stderr);
        noStack(out, "deep");
        assert.match(
          out.stdout,
          /^Backup is NOT valid: export\.json:3: memory 1: metadata is nested deeper than \d+ levels$/m,
        );
      },
    );
    await t.step(
      "restore --dry-run of a payload the database refuses prints one line and writes nothing",
      async () => {
        const dir = await edited(fx, {
          lines: memory(0, (r, spliced) => {
            (r.metadata as Record<string, unknown>).note = spliced(
              '"a\\u0000b"',
            );
          }),
        });
        const path = await place(dir, "nul");
        const before = await liveState(fx);
        const out = await restoreCli(
          path,
          { DATABASE_URL: db.url, MEMORY_TABLE: "cli_target" },
        );
        assert.equal(out.code, 1, out.stderr);
        noStack(out, "nul");
        const lines = ownLines(out.stderr);
        assert.equal(lines.length, 1, out.stderr);
        assert.match(
          lines[0]!,
          /^Error: Cannot restore (into "public\.cli_target"|: the backup failed verification): /,
        );
        assert.equal(await tableExists(fx, "public.cli_target"), false);
        assert.deepEqual(await liveState(fx), before);
      },
    );
  } finally {
    await checkout.remove();
  }
});

hostile(
  `fuzz: ${
    FUZZ_CASES.toLocaleString("en-US")
  } mutations of a valid backup (seed ${FUZZ_SEED}) are each rejected in one line or restored exactly`,
  async () => {
    await fuzz(fx);
  },
);

type Tally = Record<
  MutationKind,
  { verify: number; restore: number; exact: number }
>;

async function fuzz(fx: Fixture): Promise<void> {
  const dir = `${fx.dir}/fuzz`;
  await Deno.mkdir(dir);
  for await (const entry of Deno.readDir(fx.base)) {
    await Deno.copyFile(`${fx.base}/${entry.name}`, `${dir}/${entry.name}`);
  }
  const baseMetadata = await Deno.readFile(`${fx.base}/${METADATA_FILE}`);
  const tally = Object.fromEntries(
    MUTATIONS.map((k) => [k, { verify: 0, restore: 0, exact: 0 }]),
  ) as Tally;
  const cases = FUZZ_ONLY === undefined
    ? Array.from({ length: FUZZ_CASES }, (_, i) => i)
    : [Number(FUZZ_ONLY)];
  for (const i of cases) {
    const rng = mulberry32((FUZZ_SEED ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0);
    const kind = pick(rng, MUTATIONS);
    const mutant = mutate(fx.exportText, fx.metadata, kind, rng);
    const label =
      `fuzz case ${i} (replay: MEMKEEP_FUZZ_SEED=${FUZZ_SEED} MEMKEEP_FUZZ_CASE=${i}), ${kind}: ${mutant.what}`;
    await reseal(dir, {
      exportBytes: mutant.exportBytes,
      metadataBytes: mutant.metadataBytes ?? baseMetadata,
    });
    const outcome = await judge(fx, dir, label, {
      realRestoreToo: i % 10 === 0,
    });
    if (outcome.kind === "verify") {
      assert.notEqual(
        outcome.checkName,
        "checksums",
        `${label}: the checksums were sealed again, so the parser must be the one to object: ${outcome.where}`,
      );
    }
    tally[kind][outcome.kind]++;
  }
  const total = { verify: 0, restore: 0, exact: 0 };
  for (const counts of Object.values(tally)) {
    total.verify += counts.verify;
    total.restore += counts.restore;
    total.exact += counts.exact;
  }
  if (FUZZ_ONLY === undefined) {
    // A fuzz that only ever rejects (or only ever accepts) tests nothing.
    assert.ok(
      total.exact >= FUZZ_CASES / 20,
      `restored exactly: ${JSON.stringify(tally)}`,
    );
    assert.ok(
      total.verify >= FUZZ_CASES / 4,
      `rejected: ${JSON.stringify(tally)}`,
    );
  }
  if (Deno.env.get("MEMKEEP_FUZZ_REPORT")) {
    // deno-lint-ignore no-console
    console.log(JSON.stringify({ seed: FUZZ_SEED, total, tally }));
  }
}
