/**
 * kill -9 at every stage of a backup and of a restore, run as a user runs
 * them (their production permissions, over the wire). Kill points are chosen
 * from what the process is observed to have done, not from delays: the files
 * of a backup's temporary directory, their sizes and whether they have been
 * read back; the bytes a restore has sent to the database (through a
 * counting proxy), the growth of the embedded table's file, and the
 * relationship store's WAL. Each kill records where it landed.
 *
 * `MEMKEEP_CRASH_POINTS=N` raises the number of backup kill points to N (and
 * of restore kill points to N / 2) for a long run; `MEMKEEP_CRASH_REPORT=FILE`
 * writes where each kill landed to FILE as JSON.
 *
 * @module
 */

import assert from "node:assert/strict";
import { backup, DatabaseSync } from "node:sqlite";
import {
  CHECKSUMS_FILE,
  EXPORT_FILE,
  LOG_FILE,
  METADATA_FILE,
  RELATIONSHIPS_COPY_FILE,
  SUMS_FILE,
  TEMP_PREFIX,
} from "../lib/format/layout.ts";
import { verifyBackup } from "../lib/verify/verify.ts";
import { type Checkout, makeCheckout } from "./_checkout.ts";
import {
  openEmbeddedStore,
  seedMemories,
  tableDigest,
  type WireDatabase,
} from "./_db.ts";
import {
  atimeMoves,
  type FileSeen,
  fileSha256,
  filesIn,
  listBackups,
  messages,
  seedStores,
  spawnScript,
  startCountingProxy,
  startSharedDatabase,
  tick,
  wireTableDigest,
} from "./_crash.ts";
import { sqliteDigest } from "./_helpers.ts";

/** About 18 MB of export.json: a backup takes about a second. */
const BIG = { memories: 1200, dims: 1536 };
/** The restore source: eight batches of 250 memories. */
const SMALL = { memories: 2000, dims: 128 };
const DAY = 86_400_000;
const POINTS = Number(Deno.env.get("MEMKEEP_CRASH_POINTS") ?? 0);
const REPORT = Deno.env.get("MEMKEEP_CRASH_REPORT");

/** Where a kill can land in a backup, in order. */
const BACKUP_PHASES = [
  "connected, no file yet",
  "copying relationships.db",
  "writing export.json",
  "finishing export.json",
  "writing metadata and checksums",
  "verifying",
  "after the rename",
] as const;
type BackupPhase =
  | typeof BACKUP_PHASES[number]
  | "before the temporary directory"
  | "finished before the kill";

/** Where a kill can land in a restore, in order. */
const RESTORE_PHASES = [
  "verifying the backup",
  "checking the target",
  "loading memories",
  "merging relationships",
] as const;

/** What a poll sees of a running backup. */
interface BackupView {
  /** Its temporary directory's files, once it exists. */
  files: Map<string, FileSeen> | undefined;
  /** Whether its final directory exists. */
  renamed: boolean;
  /** Whether the backup log grew. */
  logged: boolean;
}

interface BackupPoint {
  /** What the kill waits for. */
  readonly label: string;
  /** Where it is meant to land. */
  readonly aim: BackupPhase;
  /** Kill at the first poll where this holds. */
  readonly when: (v: BackupView) => boolean;
}

/** One kill and where it landed. */
interface Kill {
  readonly label: string;
  readonly landed: string;
  readonly detail: string;
}

Deno.test("kill -9 at any point of a backup or a restore leaves no broken backup and both stores as they were", async (t) => {
  const db = await startSharedDatabase();
  const checkout = await makeCheckout();
  const kills: Kill[] = [];
  try {
    const table = `${db.schema}.crash_memories`;
    const env = await seedStores(db, checkout, table, BIG);

    await t.step("a backup killed at any point", async () => {
      const done = await backupKills(checkout, env);
      kills.push(...done);
      const landed = new Set(done.map((k) => k.landed));
      for (const phase of BACKUP_PHASES) {
        assert.ok(
          landed.has(phase),
          `a kill landed while ${phase}; landed: ${summary(done)}`,
        );
      }
      const tenths = new Set(
        done.filter((k) => k.landed === "writing export.json").map((k) =>
          k.detail
        ),
      );
      assert.ok(
        tenths.size >= 4,
        `kills in 4 or more tenths of export.json; landed: ${summary(done)}`,
      );
    });

    await t.step(
      "a restore killed at any point, into stores holding other data",
      async () => {
        const done = await restoreKills(checkout, db, env);
        kills.push(...done);
        const landed = new Set(done.map((k) => k.landed));
        for (const phase of RESTORE_PHASES) {
          assert.ok(
            landed.has(phase),
            `a kill landed while ${phase}; landed: ${summary(done)}`,
          );
        }
        assert.ok(
          done.filter((k) => k.landed === "loading memories").length >= 6,
          `6 or more kills while loading; landed: ${summary(done)}`,
        );
      },
    );
  } finally {
    if (REPORT) await Deno.writeTextFile(REPORT, JSON.stringify(kills));
    await db.close();
    await checkout.remove();
  }
});

function summary(kills: Kill[]): string {
  const counts = new Map<string, number>();
  for (const k of kills) counts.set(k.landed, (counts.get(k.landed) ?? 0) + 1);
  return [...counts].map(([phase, n]) => `${phase} ×${n}`).join(", ");
}

/** Evenly spread fractions for a longer run. */
function spread(base: number[], total: number): number[] {
  const more = Math.max(0, total - base.length);
  return [...base, ...Array.from({ length: more }, (_, i) => (i + 0.5) / more)]
    .sort((a, b) => a - b);
}

function backupPoints(exportSize: number, atime: boolean): BackupPoint[] {
  const has = (v: BackupView, name: string) => v.files?.has(name) ?? false;
  const size = (v: BackupView, name: string) => v.files?.get(name)?.size ?? -1;
  // Verification reads metadata.json, checksums.json, then hashes
  // SHA256SUMS and relationships.db; the seal only wrote them.
  const readBack = (v: BackupView, name: string) =>
    atime ? v.files?.get(name)?.read ?? false : has(v, CHECKSUMS_FILE);
  const fractions = spread(
    [0, 0.02, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 0.97, 0.995],
    POINTS - 11,
  );
  return [
    {
      label: "the temporary directory appears (connected, before any file)",
      aim: "connected, no file yet",
      when: (v) => v.files?.size === 0,
    },
    {
      label: "the copy of relationships.db starts",
      aim: "copying relationships.db",
      when: (v) =>
        [...v.files?.keys() ?? []].some((n) =>
          n.startsWith(RELATIONSHIPS_COPY_FILE)
        ),
    },
    {
      label: "relationships.db holds data, export.json not started",
      aim: "copying relationships.db",
      when: (v) => size(v, RELATIONSHIPS_COPY_FILE) > 0,
    },
    ...fractions.map((fraction): BackupPoint => ({
      label: `export.json reaches ${
        Math.round(fraction * 1000) / 10
      }% of its size`,
      aim: "writing export.json",
      when: (v) => size(v, EXPORT_FILE) >= fraction * exportSize,
    })),
    {
      label: "export.json has its final size",
      aim: "finishing export.json",
      when: (v) => size(v, EXPORT_FILE) >= exportSize,
    },
    {
      label: "metadata.json appears",
      aim: "writing metadata and checksums",
      when: (v) => has(v, METADATA_FILE),
    },
    {
      label: "SHA256SUMS appears",
      aim: "writing metadata and checksums",
      when: (v) => has(v, SUMS_FILE),
    },
    {
      label: "checksums.json appears",
      aim: "verifying",
      when: (v) => has(v, CHECKSUMS_FILE),
    },
    {
      label: "verification has read metadata.json",
      aim: "verifying",
      when: (v) => readBack(v, METADATA_FILE),
    },
    {
      label: "verification has read SHA256SUMS, just before the rename",
      aim: "verifying",
      when: (v) => readBack(v, SUMS_FILE),
    },
    {
      label: "the final directory appears",
      aim: "after the rename",
      when: (v) => v.renamed,
    },
    {
      label: "the backup log gets its line",
      aim: "after the rename",
      when: (v) => v.renamed && v.logged,
    },
  ];
}

/** Runs a backup, kills it at the first poll where `point` holds. */
async function killBackup(
  checkout: Checkout,
  env: Record<string, string>,
  point: BackupPoint,
  exportSize: number,
): Promise<{ kill: Kill; pid: number }> {
  const dir = `${checkout.dir}/backups`;
  const logSize = () => filesIn(dir)?.get(LOG_FILE)?.size ?? 0;
  const logBefore = logSize();
  const run = spawnScript(checkout, "backup", { env });
  const ownTemp = () =>
    listBackups(dir).temps.find((n) => n.endsWith(`-${run.pid}`));
  let temp: string | undefined;
  while (!run.exited) {
    temp ??= ownTemp();
    if (temp) {
      const final = temp.slice(TEMP_PREFIX.length).replace(/-\d+$/, "");
      const view: BackupView = {
        files: filesIn(`${dir}/${temp}`),
        renamed: listBackups(dir).finals.includes(final),
        logged: logSize() > logBefore,
      };
      if (point.when(view)) {
        run.kill();
        break;
      }
    }
    await tick();
  }
  const finished = await run.done;
  temp ??= ownTemp();
  const final = temp?.slice(TEMP_PREFIX.length).replace(/-\d+$/, "");
  const files = temp ? filesIn(`${dir}/${temp}`) : undefined;
  const exported = files?.get(EXPORT_FILE)?.size;
  let landed: BackupPhase;
  let detail = "";
  if (finished.signal !== "SIGKILL") landed = "finished before the kill";
  else if (final && listBackups(dir).finals.includes(final)) {
    landed = "after the rename";
  } else if (!files) landed = "before the temporary directory";
  else if (files.size === 0) landed = "connected, no file yet";
  else if (exported === undefined) landed = "copying relationships.db";
  else if (exported < exportSize) {
    landed = "writing export.json";
    detail = `${Math.floor((exported / exportSize) * 10) * 10}%`;
  } else if (!files.has(METADATA_FILE)) landed = "finishing export.json";
  else if (!isJson(`${dir}/${temp}/${CHECKSUMS_FILE}`)) {
    landed = "writing metadata and checksums";
  } else landed = "verifying";
  return { kill: { label: point.label, landed, detail }, pid: run.pid };
}

function isJson(path: string): boolean {
  try {
    JSON.parse(Deno.readTextFileSync(path));
    return true;
  } catch {
    return false;
  }
}

async function backupKills(
  checkout: Checkout,
  env: Record<string, string>,
): Promise<Kill[]> {
  const dir = `${checkout.dir}/backups`;
  const first = await spawnScript(checkout, "backup", {
    args: ["--json"],
    env,
  }).done;
  assert.equal(first.code, 0, first.stderr);
  const { name } = JSON.parse(first.stdout) as { name: string };
  const exportSize = Deno.statSync(`${dir}/${name}/${EXPORT_FILE}`).size;
  const verified = new Set<string>();
  const verifyAll = async (context: string) => {
    for (const final of listBackups(dir).finals) {
      if (verified.has(final)) continue;
      const report = await verifyBackup(`${dir}/${final}`);
      assert.ok(
        report.ok,
        `${context}: ${final} is under a final name and fails verification: ${
          JSON.stringify(report.problem)
        }`,
      );
      verified.add(final);
    }
  };
  await verifyAll("first backup");

  const kills: Kill[] = [];
  let cycle = 0;
  for (const point of backupPoints(exportSize, await atimeMoves(dir))) {
    // A short phase can be missed on a loaded machine: up to three tries
    // to land in it; every kill is checked all the same.
    for (let attempt = 0; attempt < 3; attempt++) {
      const { kill, pid } = await killBackup(
        checkout,
        env,
        point,
        exportSize,
      );
      kills.push(kill);
      const context = `kill when ${point.label} (landed: ${kill.landed})`;
      const beforeRename = kill.landed !== "after the rename" &&
        kill.landed !== "finished before the kill";

      // No directory under a final name fails verification; a partial
      // backup keeps its temporary name.
      await verifyAll(context);
      const { temps } = listBackups(dir);
      if (beforeRename) {
        assert.ok(
          temps.some((n) => n.endsWith(`-${pid}`)),
          `${context}: the partial backup keeps its temporary name`,
        );
      }

      // The next backup takes over the killed process's lock, says so,
      // and works.
      const next = await spawnScript(checkout, "backup", {
        args: ["--json"],
        env,
      }).done;
      assert.equal(next.code, 0, `${context}: next backup: ${next.stderr}`);
      const stale = new RegExp(
        `^Warning: took over the lock of "\\./backups" left by process ${pid} \\(back up since \\d{4}-[^)]+\\), which is no longer running$`,
      );
      const warnings = messages(next.stderr);
      if (beforeRename) {
        assert.equal(warnings.length, 1, `${context}: ${next.stderr}`);
        assert.match(warnings[0]!, stale, context);
      } else {
        // Killed after the rename, it may have released the lock already.
        assert.ok(
          warnings.every((w) => stale.test(w)),
          `${context}: ${next.stderr}`,
        );
      }
      const result = JSON.parse(next.stdout);
      assert.equal(result.verified, true);

      // Prune keeps the newest backup only; it removes the temporary
      // directories of killed backups once they are over a day old (every
      // other cycle prunes as of two days later), never before.
      const later = cycle++ % 2 === 1;
      const finals = listBackups(dir).finals;
      const prune = await spawnScript(checkout, "prune", {
        args: [
          "--json",
          "--keep-daily",
          "0",
          "--keep-weekly",
          "0",
          ...(later
            ? ["--now", new Date(Date.now() + 2 * DAY).toISOString()]
            : []),
        ],
      }).done;
      assert.equal(prune.code, 0, `${context}: prune: ${prune.stderr}`);
      const pruned = JSON.parse(prune.stdout);
      assert.equal(pruned.ok, true);
      assert.deepEqual(
        [...pruned.deleted].sort(),
        finals.filter((n) => n !== result.name),
        context,
      );
      assert.deepEqual(
        [...pruned.removed_temporary].sort(),
        later ? temps : [],
        `${context}: prune removes temporary directories over a day old only`,
      );
      assert.deepEqual(listBackups(dir), {
        finals: [result.name],
        temps: later ? [] : temps,
      });
      // Prune verified the newest backup before deleting anything (it
      // refuses, exit 1, when that fails).
      verified.add(result.name);
      if (kill.landed === point.aim) break;
    }
  }
  return kills;
}

/** What a poll sees of a running restore. */
interface RestoreView {
  /** It connected to the database: verification is done. */
  connected: boolean;
  /** Bytes it sent to the database, as a fraction of a whole load's. */
  sent: number;
  /** Growth of the embedded table's file, as a fraction of a whole load's. */
  grown: number;
  /** It opened the relationship store: its WAL appeared. */
  merging: boolean;
  /** Milliseconds since it started. */
  ms: number;
}

interface RestorePoint {
  readonly label: string;
  readonly when: (v: RestoreView) => boolean;
}

/** What a whole restore does, measured by a dry run. */
interface Calibration {
  /** Milliseconds until it connects. */
  connectMs: number;
  /** Bytes it sends to the database. */
  sent: number;
  /** Bytes the embedded table's file grows by. */
  grown: number;
}

async function restoreKills(
  checkout: Checkout,
  db: WireDatabase,
  env: Record<string, string>,
): Promise<Kill[]> {
  // The source: a backup of a smaller table, kept out of ./backups.
  const sourceTable = `${db.schema}.restore_source`;
  await seedMemories(db, sourceTable, SMALL);
  const made = await spawnScript(checkout, "backup", {
    args: ["--json"],
    env: { ...env, MEMORY_TABLE: sourceTable },
  }).done;
  assert.equal(made.code, 0, made.stderr);
  const { name } = JSON.parse(made.stdout) as { name: string };
  const source = `${checkout.dir}/restore-source/${name}`;
  await Deno.mkdir(`${checkout.dir}/restore-source`);
  await Deno.rename(`${checkout.dir}/backups/${name}`, source);

  // The wire target holds other data: 300 of the backup's memories, edited,
  // and 50 the backup does not have.
  const target = `${db.schema}.restore_target`;
  await seedMemories(db, target, { ...SMALL, memories: 300 });
  await db.query(
    `update ${target} set payload = payload || '{"edited": true}'`,
  );
  await db.query(
    `insert into ${target} select md5('extra' || id::text)::uuid, vector, payload || '{"extra": true}' from ${target} order by id limit 50`,
  );
  // So does the relationship store (in WAL mode, as the assistant keeps
  // it): rows changed, rows missing, a row in another table.
  const relationships = `${checkout.dir}/data/restore-target.db`;
  const original = new DatabaseSync(`${checkout.dir}/data/relationships.db`);
  try {
    await backup(original, relationships);
  } finally {
    original.close();
  }
  const changes = new DatabaseSync(relationships);
  changes.exec(`
    pragma journal_mode = wal;
    update relationships set strength = strength / 2 where id % 3 = 0;
    delete from relationships where id % 5 = 0;
    insert into insights (memory_id, insight, created_at) values ('m', 'only here', '2026-01-01');
  `);
  const count = (where: string) =>
    Number(
      (changes.prepare(`select count(*) as n from relationships ${where}`)
        .get() as { n: number }).n,
    );
  const expectedRelationships = {
    restored: 1245 - count(""),
    skipped: count("where id % 3 != 0"),
    updated: count("where id % 3 = 0"),
  };
  changes.close();

  const wireBefore = await wireTableDigest(db.url, target);
  const sqliteBefore = sqliteDigest(relationships);
  const fileBefore = fileSha256(relationships);
  const assertUnchanged = async (context: string, embedded?: () => unknown) => {
    assert.equal(
      await wireTableDigest(db.url, target),
      wireBefore,
      `${context}: the table is exactly as it was`,
    );
    if (embedded) await embedded();
    assert.equal(
      sqliteDigest(relationships),
      sqliteBefore,
      `${context}: every row of the relationship store is as it was`,
    );
    assert.equal(
      fileSha256(relationships),
      fileBefore,
      `${context}: the relationship store is byte for byte as it was`,
    );
  };

  const proxy = startCountingProxy(db.url);
  try {
    // The embedded store (./data/pglite) holds other data too.
    const dataDir = `${checkout.dir}/data/pglite`;
    const store = await openEmbeddedStore(dataDir);
    await seedMemories(store, "public.memories", { ...SMALL, memories: 300 });
    await store.query(
      `update public.memories set payload = payload || '{"edited": true}'`,
    );
    const heap = `${dataDir}/${
      (await store.query("select pg_relation_filepath('public.memories')"))[0]![
        0
      ]
    }`;
    await store.close();
    const embeddedDigest = async () => {
      const opened = await openEmbeddedStore(dataDir);
      try {
        const tables = await opened.query(
          "select string_agg(relname::text, ',' order by relname) from pg_class where relkind = 'r' and relnamespace = 'public'::regnamespace",
        );
        return `${tables[0]![0]} ${await tableDigest(
          opened,
          "public.memories",
        )}`;
      } finally {
        await opened.close();
      }
    };
    const embeddedBefore = await embeddedDigest();

    const restore = (embedded: boolean, dryRun = false) =>
      spawnScript(checkout, "restore", {
        args: [
          "--source",
          source,
          "--force",
          "--conflict-mode",
          "update",
          "--json",
          ...(dryRun ? ["--dry-run"] : []),
        ],
        env: {
          ...(embedded ? {} : { DATABASE_URL: proxy.url }),
          MEMORY_TABLE: embedded ? "public.memories" : target,
          RELATIONSHIPS_DB: "./data/restore-target.db",
        },
      });
    const watch = async (
      embedded: boolean,
      calibration: Calibration,
      point?: RestorePoint,
    ) => {
      const run = restore(embedded, point === undefined);
      const started = performance.now();
      const connections = proxy.connections;
      const sent = proxy.sent;
      const size = Deno.statSync(heap).size;
      const view: RestoreView = {
        connected: false,
        sent: 0,
        grown: 0,
        merging: false,
        ms: 0,
      };
      let connectMs = 0;
      while (!run.exited) {
        view.ms = performance.now() - started;
        if (!view.connected && proxy.connections > connections) {
          view.connected = true;
          connectMs = view.ms;
        }
        view.sent = (proxy.sent - sent) / (calibration.sent || 1);
        view.grown = (Deno.statSync(heap).size - size) /
          (calibration.grown || 1);
        view.merging ||= filesIn(`${checkout.dir}/data`)?.has(
          "restore-target.db-wal",
        ) ?? false;
        if (point?.when(view)) {
          run.kill();
          break;
        }
        await tick();
      }
      return {
        finished: await run.done,
        view,
        measured: {
          connectMs,
          sent: proxy.sent - sent,
          grown: Deno.statSync(heap).size - size,
        },
      };
    };
    const kill = async (
      embedded: boolean,
      calibration: Calibration,
      point: RestorePoint,
    ): Promise<Kill> => {
      const { finished, view } = await watch(embedded, calibration, point);
      const loaded = embedded ? view.grown : view.sent;
      const landed = finished.signal !== "SIGKILL"
        ? "finished before the kill"
        : view.merging
        ? "merging relationships"
        : !embedded && !view.connected
        ? "verifying the backup"
        : loaded < 0.02
        ? "checking the target"
        : "loading memories";
      const detail = landed === "loading memories"
        ? `${Math.min(90, Math.floor(loaded * 10) * 10)}%`
        : "";
      const label = `${embedded ? "embedded store: " : ""}${point.label}`;
      const context = `kill when ${label} (landed: ${landed})`;
      assert.notEqual(
        landed,
        "finished before the kill",
        `${context}: the restore was still running`,
      );
      await assertUnchanged(
        context,
        embedded
          ? async () =>
            assert.equal(
              await embeddedDigest(),
              embeddedBefore,
              `${context}: the embedded store opens and is exactly as it was`,
            )
          : undefined,
      );
      return { label, landed, detail };
    };
    /** A dry run: writes nothing, and measures a whole restore. */
    const calibrate = async (embedded: boolean): Promise<Calibration> => {
      const none = { connectMs: 0, sent: 0, grown: 0 };
      const { finished, measured } = await watch(embedded, none);
      assert.equal(finished.code, 0, finished.stderr);
      assert.equal(JSON.parse(finished.stdout).committed, false);
      await assertUnchanged(
        "dry run",
        embedded
          ? async () => assert.equal(await embeddedDigest(), embeddedBefore)
          : undefined,
      );
      return measured;
    };
    const sentAt = (fraction: number): RestorePoint => ({
      label: `the restore has sent ${
        Math.round(fraction * 100)
      }% of its inserts`,
      when: (v) => v.sent >= fraction,
    });

    const kills: Kill[] = [];
    // Twice: the first run in a checkout starts slower (cold caches), and a
    // kill timed by it can land after the connection it aims before.
    await calibrate(false);
    const wire = await calibrate(false);
    const wirePoints: RestorePoint[] = [
      {
        label:
          "halfway to the restore's connection (time: verification is not observable)",
        when: (v) => v.ms >= wire.connectMs / 2,
      },
      {
        label: "the restore connects to the database (verification done)",
        when: (v) => v.connected,
      },
      ...spread([0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 0.97], POINTS / 2 - 3).map(
        sentAt,
      ),
      {
        label: "the relationship store's WAL appears (the merge starts)",
        when: (v) => v.merging,
      },
    ];
    for (const point of wirePoints) kills.push(await kill(false, wire, point));

    const embedded = await calibrate(true);
    for (const fraction of [0.3, 0.7]) {
      kills.push(
        await kill(true, embedded, {
          label: `the table's file has grown by ${
            fraction * 100
          }% of a whole load`,
          when: (v) => v.grown >= fraction,
        }),
      );
    }

    // After all that, a restore runs to the end and changes exactly what
    // the backup says.
    const full = await restore(false).done;
    assert.equal(full.code, 0, full.stderr);
    const result = JSON.parse(full.stdout);
    assert.equal(result.committed, true);
    assert.deepEqual(result.memories, {
      restored: 1700,
      skipped: 0,
      updated: 300,
    });
    assert.deepEqual(result.relationships, expectedRelationships);
    assert.match(await wireTableDigest(db.url, target), /^2050:/);
    return kills;
  } finally {
    await proxy.close();
  }
}
