/**
 * A damaged repository, as a user meets one: a pack missing or corrupt, an
 * index that lies (a well-formed file, named by its hash, giving a wrong
 * place), a truncated snapshot, a newer format version. `verify --repo
 * --read-data` and `restore --repo` each say so in one line naming the
 * file, exit 1, and write nothing to any store.
 *
 * @module
 */

import assert from "node:assert/strict";
import zlib from "node:zlib";
import { makeCheckout, ownLines } from "../_checkout.ts";
import { openEmbeddedStore, WIRE_LEG } from "../_db.ts";
import { copyDir } from "../_helpers.ts";
import { decodeIndex, encodeIndex } from "../../lib/repo/index_file.ts";
import type { BlobEntry, IndexFile } from "../../lib/repo/layout.ts";
import { sha256Hex } from "../../lib/repo/pack.ts";

function oneLine(stderr: string, what: string): string {
  const lines = ownLines(stderr);
  assert.equal(lines.length, 1, `${what}: ${stderr}`);
  assert.match(lines[0]!, /^Error: /, what);
  return lines[0]!;
}

function filesIn(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    if (e.isDirectory) {
      out.push(...filesIn(`${dir}/${e.name}`).map((f) => `${e.name}/${f}`));
    } else out.push(e.name);
  }
  return out.sort();
}

/** Rewrites the first index file with one vector's offset moved by 4 bytes. */
async function lie(repo: string): Promise<string> {
  const [name] = filesIn(`${repo}/index`);
  const path = `${repo}/index/${name}`;
  const packs = new Map<string, BlobEntry[]>();
  decodeIndex(zlib.zstdDecompressSync(await Deno.readFile(path)), {
    set: (p, b) => packs.set(p, [...(packs.get(p) ?? []), b]),
  });
  let moved = false;
  const lying: IndexFile["packs"] = [...packs].map(([id, blobs]) => ({
    id,
    size: Deno.statSync(`${repo}/packs/${id.slice(0, 2)}/${id}`).size,
    blobs: blobs.map((b) => {
      if (moved || b.type !== "vector") return b;
      moved = true;
      return { ...b, offset: b.offset + 4 };
    }),
  }));
  assert.ok(moved);
  const bytes = zlib.zstdCompressSync(encodeIndex(lying));
  const id = sha256Hex(bytes);
  await Deno.writeFile(`${repo}/index/${id}`, bytes);
  await Deno.remove(path);
  return id;
}

Deno.test(
  "a damaged repository: verify --read-data and restore --repo each say so in one line naming the file, exit 1, and write nothing to any store",
  { ignore: WIRE_LEG },
  async (t) => {
    const checkout = await makeCheckout();
    try {
      const demo = await checkout.deno([
        "task",
        "demo",
        "--memories",
        "60",
        "--dims",
        "32",
        "--relationships",
        "12",
      ]);
      assert.equal(demo.code, 0, demo.stderr);
      for (let i = 0; i < 2; i++) {
        const run = await checkout.deno(["task", "backup", "--repo", "good"]);
        assert.equal(run.code, 0, run.stderr);
      }
      const good = `${checkout.dir}/good`;
      const pack = filesIn(`${good}/packs`)[0]!;
      const snapshot = filesIn(`${good}/snapshots`).at(-1)!;

      const damages: [string, (repo: string) => Promise<RegExp>][] = [
        ["a pack missing", async (repo) => {
          await Deno.remove(`${repo}/packs/${pack}`);
          // verify names the snapshot that needs it; restore, reading it,
          // the file.
          return new RegExp(
            `Damaged repository: (snapshot memory_\\d{8}_\\d{6} needs pack ${
              pack.slice(3, 15)
            }, which is missing|".*${pack}" is missing)`,
          );
        }],
        ["a pack corrupt", async (repo) => {
          const bytes = await Deno.readFile(`${repo}/packs/${pack}`);
          bytes[20] = bytes[20]! ^ 0xff;
          await Deno.writeFile(`${repo}/packs/${pack}`, bytes);
          return new RegExp(`pack ".*${pack.slice(3)}" does not`);
        }],
        ["an index that lies", async (repo) => {
          await lie(repo);
          return /Damaged repository: blob [0-9a-f]{12} in pack ".*" does not match its SHA-256/;
        }],
        ["a truncated snapshot", async (repo) => {
          const path = `${repo}/snapshots/${snapshot}`;
          const bytes = await Deno.readFile(path);
          await Deno.writeFile(path, bytes.subarray(0, bytes.length >> 1));
          return new RegExp(
            `Damaged repository: snapshot file ".*${snapshot}" does not match its name`,
          );
        }],
        ["a newer format version", async (repo) => {
          const config = JSON.parse(
            await Deno.readTextFile(`${repo}/config.json`),
          );
          config.repository_version = 3;
          await Deno.writeTextFile(
            `${repo}/config.json`,
            JSON.stringify(config),
          );
          return /has format version 3; this memkeep reads version 2 \(upgrade memkeep\)/;
        }],
      ];
      let n = 0;
      for (const [name, damage] of damages) {
        await t.step(name, async () => {
          const repo = `bad-${++n}`;
          await copyDir(good, `${checkout.dir}/${repo}`);
          const expected = await damage(`${checkout.dir}/${repo}`);
          const before = filesIn(`${checkout.dir}/${repo}`);

          const verify = await checkout.deno([
            "task",
            "verify",
            "--repo",
            repo,
            "--read-data",
          ]);
          assert.equal(verify.code, 1, `verify: ${verify.stdout}`);
          assert.match(oneLine(verify.stderr, "verify"), expected);

          const restored = `${checkout.dir}/restored-${n}.db`;
          const restore = await checkout.deno([
            "task",
            "restore",
            "--repo",
            repo,
            "--snapshot",
            "latest",
            "--force",
          ], { MEMORY_TABLE: `restored_${n}`, RELATIONSHIPS_DB: restored });
          assert.equal(restore.code, 1, `restore: ${restore.stdout}`);
          assert.match(oneLine(restore.stderr, "restore"), expected);
          // Nothing written: no table, no relationship store, the
          // repository as it was (no scratch directory left).
          await assert.rejects(Deno.stat(restored), Deno.errors.NotFound);
          const store = await openEmbeddedStore(`${checkout.dir}/data/pglite`);
          try {
            const rows = await store.query(
              `select to_regclass('restored_${n}')::text`,
            );
            assert.equal(rows[0]![0], null, "no table was made");
          } finally {
            await store.close();
          }
          assert.deepEqual(filesIn(`${checkout.dir}/${repo}`), before);
        });
      }
    } finally {
      await checkout.remove();
    }
  },
);
