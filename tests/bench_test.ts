import assert from "node:assert/strict";
import { WIRE_LEG } from "./_db.ts";
import { ROOT, runCommand } from "./_helpers.ts";

const tools = ["/usr/bin/time", "/usr/bin/psql"].filter((tool) => {
  try {
    return !Deno.statSync(tool).isFile;
  } catch {
    return true;
  }
});

// On PGlite in `deno task test`; on the real server in `deno task
// test:postgres` (TEST_DATABASE_URL set).
const server = Deno.env.get("TEST_DATABASE_URL") ? "postgres" : "pglite";

Deno.test({
  name: tools.length === 0
    ? `deno task bench --server ${server} runs end to end at a tiny size (a smoke test: timings are not tested)`
    : `deno task bench runs end to end (skipped: ${
      tools.join(", ")
    } missing; apt-get install time postgresql-client)`,
  ignore: tools.length > 0,
  fn: async () => {
    const run = await runCommand(
      Deno.execPath(),
      [
        "task",
        "bench",
        "--server",
        server,
        "--memories",
        "40",
        "--dims",
        "8",
        "--relationships",
        "6",
        "--scales",
        "1,2",
        "--json",
        // Targets at 40 memories measure process start-up, not memkeep.
        "--ignore-targets",
      ],
      { cwd: ROOT },
    );
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout);
    assert.equal(result.memories, 40);
    assert.equal(result.server, server);
    const works = result.rows.map((r: { work: string }) => r.work);
    for (
      const work of [
        "raw COPY (psql \\copy)",
        "raw COPY, binary (the floor)",
        "backup --no-verify",
        "verify",
        "backup",
        "export --format csv",
        "export --format markdown",
        server === "postgres"
          ? "psql \\copy FROM (into an empty table)"
          : "PGlite in-process COPY FROM (ingest limit)",
        "restore --dry-run (empty store)",
        "restore (empty store)",
      ]
    ) assert.ok(works.includes(work), `measures ${work}`);
    for (const row of result.rows) {
      assert.ok(row.seconds > 0 && row.peak_mb > 0, JSON.stringify(row));
    }
    assert.deepEqual(
      result.scaling.map((s: { memories: number }) => s.memories),
      [40, 80],
    );
  },
});

Deno.test({
  name: tools.length === 0
    ? `deno task bench --repo --server ${server} runs nine nights end to end at a tiny size, and every restored snapshot equals its day (a smoke test: timings are not tested)`
    : `deno task bench --repo runs end to end (skipped: ${
      tools.join(", ")
    } missing)`,
  ignore: tools.length > 0,
  fn: async () => {
    const run = await runCommand(
      Deno.execPath(),
      [
        "task",
        "bench",
        "--repo",
        "--server",
        server,
        "--memories",
        "60",
        "--dims",
        "8",
        "--relationships",
        "10",
        "--days",
        "9",
        "--json",
        "--ignore-targets",
      ],
      { cwd: ROOT },
    );
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout);
    const days = result.days as {
      day: number;
      weekday: string;
      memories: number;
      bytes_added: number;
      snapshots_kept: number;
    }[];
    assert.deepEqual(days.map((d) => d.day), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // +150 −20 a night; a Sunday on night 7; 7 daily kept from night 7 on.
    assert.deepEqual(
      days.map((d) => d.memories),
      days.map((_, i) => 60 + 130 * i),
    );
    assert.equal(days[6]!.weekday, "Sun");
    assert.deepEqual(days.map((d) => d.snapshots_kept), [
      1,
      2,
      3,
      4,
      5,
      6,
      7,
      7,
      7,
    ]);
    for (const d of days) assert.ok(d.bytes_added > 0, JSON.stringify(d));
    assert.equal(result.restores.length, 3);
    for (const r of result.restores) {
      assert.equal(r.exact, true, `${r.snapshot} restores as it was`);
    }
  },
});

Deno.test(
  "bench/long_records.ts reads records of each size in both layouts, with no permissions (a smoke test: timings are not tested)",
  { ignore: WIRE_LEG },
  async () => {
    const run = await runCommand(
      Deno.execPath(),
      ["run", "-q", "bench/long_records.ts", "--sizes", "1,2", "--json"],
      { cwd: ROOT },
    );
    assert.equal(run.code, 0, run.stderr);
    const { rows } = JSON.parse(run.stdout);
    assert.deepEqual(
      rows.map((r: { mib: number; layout: string }) => `${r.mib} ${r.layout}`),
      [
        "1 one record per line",
        "2 one record per line",
        "1 one line",
        "2 one line",
      ],
    );
  },
);
