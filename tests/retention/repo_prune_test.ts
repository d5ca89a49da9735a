import assert from "node:assert/strict";
import { backup } from "../../lib/backup/backup.ts";
import { backupToRepo } from "../../lib/backup/repo_backup.ts";
import { rawRecordLine } from "../../lib/format/records.ts";
import { pruneRepo } from "../../lib/retention/repo_prune.ts";
import { LocalStorage } from "../../lib/repo/storage.ts";
import { Repository } from "../../lib/repo/repository.ts";
import { listSnapshots, snapshotMemories } from "../../lib/repo/reader.ts";
import { checkSnapshot } from "../../lib/repo/check.ts";
import { openEmbeddedStore, seedMemories, WIRE_LEG } from "../_db.ts";
import { configFrom, memoryRecords, withTempDir } from "../_helpers.ts";

async function files(dir: string): Promise<string[]> {
  return (await new LocalStorage(dir).list(".")).map((f) =>
    `${f.path} ${f.size}`
  )
    .sort();
}

Deno.test(
  "prune --repo deletes the snapshots the policy drops, then their data, repacking mostly-dead packs; the dry run changes nothing and says the same",
  { ignore: WIRE_LEG },
  async () => {
    await withTempDir(async (dir) => {
      const pglite = `${dir}/pglite`;
      let store = await openEmbeddedStore(pglite);
      await seedMemories(store, "public.memories", {
        memories: 400,
        dims: 64,
        seed: 11,
      });
      await store.close();
      const config = {
        ...configFrom({ BACKUP_DIR: `${dir}/backups` }),
        store: { kind: "pglite" as const, dataDir: pglite },
      };
      const repoDir = `${dir}/repo`;
      const day = (d: number) => () => new Date(Date.UTC(2026, 10, d, 2, 17));
      await backupToRepo({ config, repo: repoDir, now: day(1) });

      // A day of churn: three quarters forgotten, heat changed, some learned.
      store = await openEmbeddedStore(pglite);
      await store.query(
        "delete from memories where id in (select id from memories order by id limit 300)",
      );
      await store.query(
        `update memories set payload = jsonb_set(payload, '{heat}', '0.99') where id in (select id from memories order by id limit 30)`,
      );
      await seedMemories(store, "public.fresh", {
        memories: 10,
        dims: 64,
        seed: 12,
      });
      await store.query("insert into memories select * from fresh");
      await store.query("drop table fresh");
      await store.close();
      await backupToRepo({ config, repo: repoDir, now: day(2) });
      const plain = await backup({ config });

      const options = {
        policy: { daily: 0, weekly: 0, monthly: 0 },
        now: new Date(Date.UTC(2026, 10, 2, 3)),
        dryRun: true,
        force: false,
      };
      const before = await files(repoDir);
      const dry = await pruneRepo(repoDir, options);
      assert.deepEqual(
        await files(repoDir),
        before,
        "a dry run changes nothing",
      );
      assert.deepEqual(dry.deleted, ["memory_20261101_021700"]);

      const real = await pruneRepo(repoDir, { ...options, dryRun: false });
      assert.deepEqual(real.deleted, dry.deleted);
      assert.ok(
        real.collection!.repackedPacks >= 1,
        "the first pack is repacked",
      );
      assert.equal(real.collection!.bytesRemoved, dry.collection!.bytesRemoved);
      const after = (await new LocalStorage(repoDir).list(".")).reduce(
        (n, f) => n + f.size,
        0,
      );
      assert.ok(
        after < 0.6 * real.bytesBefore,
        `the repository shrank from ${real.bytesBefore} to ${after} bytes`,
      );

      // What is left is whole, and equals the store as it is now.
      const repo = await Repository.open(new LocalStorage(repoDir));
      const [kept, ...others] = await listSnapshots(repo);
      assert.equal(others.length, 0);
      assert.equal(kept!.snapshot.name, "memory_20261102_021700");
      await checkSnapshot(repo, kept!, true);
      const got: string[] = [];
      for await (const r of snapshotMemories(repo, kept!.snapshot)) {
        got.push(rawRecordLine(r));
      }
      assert.deepEqual(
        got,
        (await memoryRecords(plain.path)).map(rawRecordLine),
      );
      assert.equal(got.length, 110);
    });
  },
);
