/**
 * Backups, prunes and writers at the same time, run as a user runs them
 * (their production permissions, over the wire): one memkeep process at a
 * time works in a backup directory, the others wait or say who holds it,
 * and every backup is one consistent snapshot. With `TEST_DATABASE_URL`
 * set, the writer really runs during the backup; on the pglite-socket
 * server it queues behind the backup's transaction.
 *
 * @module
 */

import assert from "node:assert/strict";
import { backup } from "../../lib/backup/backup.ts";
import { parseDatabaseUrl } from "../../lib/store/connection.ts";
import { BackupError } from "../../lib/errors.ts";
import { LOG_FILE, TEMP_PREFIX } from "../../lib/format/layout.ts";
import { pruneBackups } from "../../lib/retention/prune.ts";
import { DEFAULT_POLICY } from "../../lib/retention/policy.ts";
import { verifyBackup } from "../../lib/verify/verify.ts";
import { LOCK_FILE } from "../../lib/util/lock.ts";
import { openPostgresSession } from "../../lib/store/pg_session.ts";
import { makeCheckout } from "../_checkout.ts";
import {
  listBackups,
  messages,
  type Running,
  seedStores,
  spawnScript,
  startSharedDatabase,
  tick,
} from "../_crash.ts";
import { assertRejectsWith, configFrom, memoryRecords } from "../_helpers.ts";

/** About half a second of backup over the wire. */
const SIZE = { memories: 1000, dims: 1536 };
const DAY = 86_400_000;
const HOLDER =
  /\(process (\d+) is trying to back up since \d{4}-\d\d-\d\dT[\d:.]+Z\); try again when it has finished$/;

Deno.test("backups, prunes and writers at the same time end well, one at a time", async (t) => {
  const db = await startSharedDatabase();
  const checkout = await makeCheckout();
  try {
    const table = `${db.schema}.concurrent_memories`;
    const env = await seedStores(db, checkout, table, SIZE);
    const ids = (await db.query(`select id::text from ${table}`)).map((r) =>
      r[0]!
    );
    const dir = `${checkout.dir}/backups`;
    const startBackup = () =>
      spawnScript(checkout, "backup", {
        args: ["--json"],
        env,
      });
    const prune = (...args: string[]) =>
      spawnScript(checkout, "prune", {
        args: ["--json", "--keep-daily", "0", "--keep-weekly", "0", ...args],
      });
    /** Resolves once the backup holds the lock and has connected. */
    const started = async (run: Running) => {
      while (!tempOf(run) && !run.exited) await tick();
      assert.ok(tempOf(run), "the backup started writing");
    };
    const tempOf = (run: Running) =>
      listBackups(dir).temps.find((n) => n.endsWith(`-${run.pid}`));
    const assertAllVerify = async () => {
      for (const name of listBackups(dir).finals) {
        const report = await verifyBackup(`${dir}/${name}`);
        assert.ok(report.ok, `${name}: ${JSON.stringify(report.problem)}`);
      }
    };
    // In-process calls from the test, with the same settings.
    const config = configFrom({
      ...env,
      RELATIONSHIPS_DB: `${checkout.dir}/data/relationships.db`,
      BACKUP_DIR: dir,
    });

    await t.step(
      "two backups started at once both succeed under distinct names, or the second names the holder",
      async () => {
        const outs = await Promise.all(
          [startBackup(), startBackup()].map((r) => r.done),
        );
        const names: string[] = [];
        for (const out of outs) {
          if (out.code === 0) {
            const result = JSON.parse(out.stdout);
            assert.equal(result.verified, true);
            names.push(result.name);
            assert.deepEqual(messages(out.stderr), []);
          } else {
            assert.equal(out.code, 1);
            const [line, ...rest] = messages(out.stderr);
            assert.deepEqual(rest, []);
            assert.match(
              line!,
              /^Error: Cannot back up: another memkeep process is working in "\.\/backups" /,
            );
            assert.match(line!, HOLDER);
          }
        }
        assert.ok(names.length >= 1, "at least one backup succeeded");
        assert.equal(new Set(names).size, names.length, "distinct names");
        assert.deepEqual(listBackups(dir), { finals: names.sort(), temps: [] });
        await assertAllVerify();
        const log = await Deno.readTextFile(`${dir}/${LOG_FILE}`);
        for (const name of names) assert.match(log, new RegExp(` OK ${name} `));
      },
    );

    await t.step(
      "a backup that cannot wait for the lock fails naming the process that holds it",
      async () => {
        const holder = startBackup();
        await started(holder);
        const error = await assertRejectsWith(
          () => backup({ config, lockWaitMs: 0 }),
          BackupError,
          /^Cannot back up: another memkeep process is working in ".*\/backups" /,
        );
        assert.equal(HOLDER.exec(error.message)?.[1], String(holder.pid));
        const out = await holder.done;
        assert.equal(out.code, 0, out.stderr);
        await assertAllVerify();
      },
    );

    await t.step(
      "a prune during a backup waits for it and never deletes its temporary directory",
      async () => {
        // A temporary directory of a backup killed three days ago: prune
        // removes it; the running backup's is left alone.
        const old = `${TEMP_PREFIX}memory_20200101_000000-999999`;
        await Deno.mkdir(`${dir}/${old}`);
        await Deno.writeTextFile(`${dir}/${old}/export.json`, "{");
        const then = new Date(Date.now() - 3 * DAY);
        await Deno.utime(`${dir}/${old}`, then, then);
        const before = listBackups(dir).finals;

        const run = startBackup();
        await started(run);
        const temp = tempOf(run)!;
        const final = temp.slice(TEMP_PREFIX.length).replace(/-\d+$/, "");
        // Without waiting, prune says who holds the lock.
        const error = await assertRejectsWith(
          () =>
            pruneBackups(dir, {
              policy: DEFAULT_POLICY,
              now: new Date(),
              dryRun: false,
              force: false,
              lockWaitMs: 0,
            }),
          Error,
          /^Cannot prune: another memkeep process is working in ".*\/backups" /,
        );
        assert.equal(HOLDER.exec(error.message)?.[1], String(run.pid));
        // The script waits.
        const pruning = prune();
        while (!run.exited) {
          // The rename is atomic: once the temporary directory is gone,
          // the final one is there.
          if (!listBackups(dir).temps.includes(temp)) {
            assert.ok(
              listBackups(dir).finals.includes(final),
              "the temporary directory is gone only by its rename",
            );
          }
          await tick();
        }
        const out = await run.done;
        assert.equal(out.code, 0, out.stderr);
        const pruned = await pruning.done;
        assert.equal(pruned.code, 0, pruned.stderr);
        const outcome = JSON.parse(pruned.stdout);
        assert.deepEqual(
          outcome.decisions.find((d: { keep: boolean }) => d.keep),
          { name: final, keep: true, reasons: ["newest backup"] },
          "prune ran after the backup had finished",
        );
        assert.deepEqual([...outcome.deleted].sort(), before);
        assert.deepEqual(outcome.removed_temporary, [old]);
        assert.deepEqual(listBackups(dir), { finals: [final], temps: [] });
        await assertAllVerify();
      },
    );

    await t.step(
      "a backup while another client writes memories holds one consistent snapshot",
      async () => {
        const writer = await openPostgresSession(parseDatabaseUrl(db.url));
        let seq = 0;
        let stop = false;
        let afterBackup = 0;
        let backupDone = false;
        // Each transaction inserts memory `seq` and marks an existing one
        // with it: a consistent snapshot holds memories 1..k and marks up
        // to k, for one k.
        const writing = (async () => {
          while (!stop) {
            const n = seq + 1;
            await writer.query("begin");
            await writer.query(
              `insert into ${table} (id, vector, payload)
               select md5('writer-' || $1)::uuid, vector,
                      jsonb_build_object('data', 'written ' || $1, 'seq', $1::int)
                 from ${table} where id = $2::uuid`,
              [String(n), ids[0]!],
            );
            await writer.query(
              `update ${table} set payload = payload || jsonb_build_object('touched_by', $1::int) where id = $2::uuid`,
              [String(n), ids[n % ids.length]!],
            );
            await writer.query("commit");
            seq = n;
            if (backupDone) afterBackup++;
            await tick();
          }
        })();
        try {
          while (seq < 3) await tick();
          const out = await startBackup().done;
          backupDone = true;
          while (afterBackup < 3) await tick();
          stop = true;
          await writing;
          assert.equal(out.code, 0, out.stderr);
          const result = JSON.parse(out.stdout);
          assert.equal(result.verified, true);
          const backupDir = `${dir}/${result.name}`;
          const report = await verifyBackup(backupDir);
          assert.ok(report.ok, JSON.stringify(report.problem));
          const seqs: number[] = [];
          let touched = 0;
          for (const record of await memoryRecords(backupDir)) {
            const metadata = JSON.parse(record.get("metadata")!);
            if (metadata.seq !== undefined) seqs.push(metadata.seq);
            touched = Math.max(touched, metadata.touched_by ?? 0);
          }
          const k = seqs.length;
          assert.ok(k >= 3, "the writes before the backup are in it");
          assert.deepEqual(
            seqs.sort((a, b) => a - b),
            Array.from({ length: k }, (_, i) => i + 1),
            "memories 1..k, no gap",
          );
          assert.equal(touched, k, "the marks of the same transactions");
          assert.equal(result.memory_count, SIZE.memories + k);
          assert.ok(seq > k, "the writer went on after the snapshot");
        } finally {
          stop = true;
          await writing.catch(() => {});
          await writer.close();
        }
      },
    );

    await t.step(
      "a lock left by a killed process blocks nothing and the next backup names it",
      async () => {
        // Killed while holding the lock: prune gets it at once.
        const first = startBackup();
        await started(first);
        first.kill();
        assert.equal((await first.done).signal, "SIGKILL");
        const lock = JSON.parse(await Deno.readTextFile(`${dir}/${LOCK_FILE}`));
        assert.equal(lock.pid, first.pid, "the lock file names the killed one");
        const pruned = await prune().done;
        assert.equal(pruned.code, 0, pruned.stderr);
        assert.deepEqual(JSON.parse(pruned.stdout).removed_temporary, []);
        assert.ok(tempOf(first), "its fresh temporary directory is kept");

        // Killed again: the next backup takes over and says from whom.
        const second = startBackup();
        await started(second);
        second.kill();
        assert.equal((await second.done).signal, "SIGKILL");
        const next = await startBackup().done;
        assert.equal(next.code, 0, next.stderr);
        const warnings = messages(next.stderr);
        assert.equal(warnings.length, 1, next.stderr);
        assert.match(
          warnings[0]!,
          new RegExp(
            `^Warning: took over the lock of "\\./backups" left by process ${second.pid} \\(back up since \\d{4}-[^)]+\\), which is no longer running$`,
          ),
        );

        // A lock file naming a process that is gone, written by hand.
        const since = "2026-01-01T00:00:00.000Z";
        await Deno.writeTextFile(
          `${dir}/${LOCK_FILE}`,
          JSON.stringify({ pid: 999999, what: "prune", since }) + "\n",
        );
        const taken: string[] = [];
        const result = await backup({
          config,
          onWarning: (w) => taken.push(w),
        });
        assert.deepEqual(taken, [
          `took over the lock of "${dir}" left by process 999999 (prune since ${since}), which is no longer running`,
        ]);
        assert.equal(result.verification?.ok, true);
        assert.equal(
          (await Deno.readTextFile(`${dir}/${LOCK_FILE}`)).trim(),
          "",
          "released when done",
        );
        await assertAllVerify();
      },
    );
  } finally {
    await db.close();
    await checkout.remove();
  }
});
