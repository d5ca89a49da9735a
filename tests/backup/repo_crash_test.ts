/**
 * kill -9 at points of a backup into a repository (while the stores are
 * read, while packs are written, between the pack and the index, between
 * the index and the snapshot): every snapshot left is whole, a killed
 * backup leaves none, the next backup works, and prune removes what the
 * killed ones left behind; and kill -9 at points of a prune that repacks.
 *
 * @module
 */

import assert from "node:assert/strict";
import { makeCheckout } from "../_checkout.ts";
import {
  seedStores,
  spawnScript,
  startSharedDatabase,
  tick,
} from "../_crash.ts";
import { WIRE_LEG } from "../_db.ts";
import { copyDir } from "../_helpers.ts";
import { LocalStorage } from "../../lib/repo/storage.ts";
import { Repository } from "../../lib/repo/repository.ts";
import { listSnapshots } from "../../lib/repo/reader.ts";
import { checkSnapshot } from "../../lib/repo/check.ts";

interface Seen {
  packs: number;
  index: number;
  snapshots: number;
}

async function seen(dir: string): Promise<Seen> {
  const storage = new LocalStorage(dir);
  return {
    packs: (await storage.list("packs")).length,
    index: (await storage.list("index")).length,
    snapshots: (await storage.list("snapshots")).length,
  };
}

/** Every snapshot in the repository, read in full: none is broken. */
async function assertWhole(dir: string): Promise<number> {
  const repo = await Repository.open(new LocalStorage(dir));
  const snapshots = await listSnapshots(repo);
  for (const file of snapshots) await checkSnapshot(repo, file, true);
  return snapshots.length;
}

/** Every pack on disk is one the index names: nothing a killed run left. */
async function assertNoStrayPack(dir: string): Promise<void> {
  const opened = await Repository.open(new LocalStorage(dir));
  const indexed = new Set([...opened.blobs()].map((b) => b.pack));
  const onDisk = (await new LocalStorage(dir).list("packs")).map((f) =>
    f.path.slice(-64)
  );
  assert.deepEqual(
    onDisk.filter((p) => !indexed.has(p)),
    [],
    "no pack outside the index is left",
  );
}

Deno.test(
  "kill -9 at any point of a backup into a repository leaves every snapshot whole and none half-made; the next backup and prune work",
  { ignore: WIRE_LEG },
  async (t) => {
    const checkout = await makeCheckout();
    const db = await startSharedDatabase();
    try {
      const table = `${db.schema}.memories`;
      const env = await seedStores(db, checkout, table, {
        memories: 1500,
        dims: 1536,
      });
      const repo = `${checkout.dir}/repo`;
      const backup = () =>
        spawnScript(checkout, "backup", { args: ["--repo", repo], env });
      const started = performance.now();
      const first = await backup().done;
      assert.equal(first.code, 0, first.stderr);
      const runMs = performance.now() - started;

      // Each kill: new content first, so that the backup has packs to write.
      const points: [string, (s: Seen, base: Seen, ms: number) => boolean][] = [
        ["while the stores are read", (_s, _b, ms) => ms > runMs * 0.3],
        ["once a pack is written", (s, b) => s.packs > b.packs],
        ["once the index is written", (s, b) => s.index > b.index],
        ["late in the run", (_s, _b, ms) => ms > runMs * 0.8],
      ];
      let heat = 0;
      const landed: string[] = [];
      for (const [name, when] of points) {
        await t.step(`killed ${name}`, async () => {
          await db.query(
            `update ${table} set payload = jsonb_set(payload, '{heat}', '${++heat}')`,
          );
          const base = await seen(repo);
          const running = backup();
          const t0 = performance.now();
          let state = base;
          while (!running.exited) {
            state = await seen(repo);
            if (when(state, base, performance.now() - t0)) break;
            await tick();
          }
          running.kill();
          const end = await running.done;
          const after = await seen(repo);
          // Killed once its snapshot was saved, the backup had done its
          // work (it was exiting): that snapshot must be whole, as any.
          const saved = after.snapshots > base.snapshots;
          landed.push(
            end.signal === "SIGKILL" && !saved
              ? `${name}: ${after.packs - base.packs} pack(s), ${
                after.index - base.index
              } index, no snapshot`
              : `${name}: finished first`,
          );
          assert.ok(
            after.snapshots <= base.snapshots + 1,
            "a backup leaves one snapshot at most",
          );
          assert.equal(await assertWhole(repo), after.snapshots);
        });
      }
      assert.ok(
        landed.filter((l) => !l.endsWith("finished first")).length >= 3,
        `most kills landed before the end: ${landed.join("; ")}`,
      );

      await t.step(
        "the next backup works, and prune removes what the killed ones left",
        async () => {
          const next = await backup().done;
          assert.equal(next.code, 0, next.stderr);
          const before = await assertWhole(repo);
          const prune = spawnScript(checkout, "prune", {
            args: ["--repo", repo, "--keep-daily", "30"],
            env,
          });
          const pruned = await prune.done;
          assert.equal(pruned.code, 0, pruned.stderr);
          assert.equal(
            await assertWhole(repo),
            before,
            "every snapshot is kept",
          );
          await assertNoStrayPack(repo);
          const temporary: string[] = [];
          for await (const entry of Deno.readDir(`${repo}/packs`)) {
            for await (
              const file of Deno.readDir(`${repo}/packs/${entry.name}`)
            ) {
              if (file.name.startsWith(".tmp-")) temporary.push(file.name);
            }
          }
          assert.deepEqual(temporary, [], "no half-written file is left");
        },
      );
    } finally {
      await db.close();
      await checkout.remove();
    }
  },
);

Deno.test(
  "kill -9 at any point of a prune that repacks (a snapshot file deleted, the repacked pack written, the new index written, old packs removed) leaves the kept snapshot whole; the next prune finishes the work",
  { ignore: WIRE_LEG },
  async (t) => {
    const checkout = await makeCheckout();
    const db = await startSharedDatabase();
    try {
      const table = `${db.schema}.memories`;
      const env = await seedStores(db, checkout, table, {
        memories: 1500,
        dims: 1536,
      });
      const made = `${checkout.dir}/made`;
      const backup = () =>
        spawnScript(checkout, "backup", { args: ["--repo", made], env })
          .done;
      assert.equal((await backup()).code, 0);
      // Four memories in five forgotten: once the first snapshot goes, its
      // pack is mostly garbage, and prune repacks what is still needed.
      await db.query(
        `delete from ${table} where id in (select id from ${table} order by id limit 1200)`,
      );
      const second = await backup();
      assert.equal(second.code, 0, second.stderr);
      const newest = (await listSnapshots(
        await Repository.open(new LocalStorage(made)),
      )).at(-1)!.snapshot.name;
      const indexFiles = async (dir: string) =>
        (await new LocalStorage(dir).list("index")).map((f) => f.path).sort()
          .join();

      const points: [
        string,
        (s: Seen, b: Seen, i: string, bi: string) => boolean,
      ][] = [
        [
          "once a snapshot file is deleted",
          (s, b) => s.snapshots < b.snapshots,
        ],
        ["once the repacked pack is written", (s, b) => s.packs > b.packs],
        ["once the new index is written", (_s, _b, i, bi) => i !== bi],
        ["while old packs are removed", (s, b) => s.packs < b.packs],
      ];
      const landed: string[] = [];
      let n = 0;
      for (const [name, when] of points) {
        await t.step(`killed ${name}`, async () => {
          const repo = `${checkout.dir}/repo-${++n}`;
          await copyDir(made, repo);
          const base = await seen(repo);
          const baseIndex = await indexFiles(repo);
          const running = spawnScript(checkout, "prune", {
            args: ["--repo", repo, "--keep-daily", "0", "--keep-weekly", "0"],
            env,
          });
          while (!running.exited) {
            if (
              when(await seen(repo), base, await indexFiles(repo), baseIndex)
            ) {
              break;
            }
            await tick();
          }
          running.kill();
          const end = await running.done;
          landed.push(
            end.signal === "SIGKILL" ? name : `${name}: finished first`,
          );
          // Whatever the kill left, the kept snapshot reads back whole.
          const names = async () =>
            (await listSnapshots(await Repository.open(new LocalStorage(repo))))
              .map((s) => s.snapshot.name);
          assert.ok((await names()).includes(newest), "the newest is kept");
          await assertWhole(repo);
          const again = await spawnScript(checkout, "prune", {
            args: ["--repo", repo, "--keep-daily", "0", "--keep-weekly", "0"],
            env,
          }).done;
          assert.equal(again.code, 0, again.stderr);
          assert.deepEqual(await names(), [newest]);
          assert.equal(await assertWhole(repo), 1);
          await assertNoStrayPack(repo);
        });
      }
      assert.ok(
        landed.filter((l) => !l.endsWith("finished first")).length >= 2,
        `most kills landed before the end: ${landed.join("; ")}`,
      );
    } finally {
      await db.close();
      await checkout.remove();
    }
  },
);
