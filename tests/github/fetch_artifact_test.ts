import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { backup } from "../../lib/backup/backup.ts";
import { EXPORT_FILE } from "../../lib/format/layout.ts";
import { makeCheckout, ownLines } from "../_checkout.ts";
import { openEmbeddedStore, seedMemories } from "../_db.ts";
import { startFakeGitHub } from "../_fake_github.ts";
import { configFrom } from "../_helpers.ts";
import { zipBackup } from "../_zip.ts";

const NEWEST = "memory_20240315_020000";
const OLDER = "memory_20240314_020000";

/** Makes a real backup named `memory_…` for `at` and returns its zip. */
async function makeBackupZip(
  work: string,
  at: Date,
  options: { tamper?: boolean } = {},
): Promise<Uint8Array> {
  const dataDir = `${work}/pglite`;
  try {
    await Deno.lstat(dataDir);
  } catch {
    const store = await openEmbeddedStore(dataDir);
    await seedMemories(store, "public.memories", { memories: 8, dims: 4 });
    await store.close();
  }
  const config = configFrom({ BACKUP_DIR: `${work}/backups` });
  const result = await backup({
    config: { ...config, store: { kind: "pglite", dataDir } },
    now: () => at,
    onWarning: () => {},
  });
  if (options.tamper) {
    // Same size, one byte different: the zip's sizes agree, the checksums do not.
    const path = `${result.path}/${EXPORT_FILE}`;
    const bytes = await Deno.readFile(path);
    const at = bytes.findIndex((b, i) =>
      i > bytes.length / 2 && b >= 0x61 && b <= 0x7a
    );
    bytes[at] = bytes[at]! ^ 0x20; // a letter changes case; the JSON stays valid
    await Deno.writeFile(path, bytes);
  }
  const zipPath = `${work}/${result.name}${options.tamper ? "-bad" : ""}.zip`;
  await zipBackup(result.path, zipPath);
  return await Deno.readFile(zipPath);
}

function listing(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

Deno.test("deno task fetch-artifact downloads a checked backup zip that restore takes", async (t) => {
  const checkout = await makeCheckout();
  const fake = startFakeGitHub({ pageSize: 3 });
  const env = {
    GITHUB_API_URL: fake.url,
    GITHUB_TOKEN: fake.token,
    GITHUB_REPOSITORY: fake.repository,
  };
  const outputs: string[] = [];
  const fetch = async (args: string[], extra: Record<string, string> = env) => {
    const run = await checkout.deno(["task", "fetch-artifact", ...args], extra);
    outputs.push(run.stdout, run.stderr);
    return run;
  };
  const downloads = `${checkout.dir}/downloads`;
  try {
    const work = `${checkout.dir}/work`;
    const newest = await makeBackupZip(work, new Date("2024-03-15T02:00:00Z"));
    const older = await makeBackupZip(work, new Date("2024-03-14T02:00:00Z"));
    const broken = await makeBackupZip(
      work,
      new Date("2024-03-13T02:00:00Z"),
      { tamper: true },
    );
    fake.add(OLDER, older, { createdAt: "2024-03-14T02:05:00Z" });
    fake.add(NEWEST, newest, { createdAt: "2024-03-15T02:05:00Z" });
    fake.add("memory_20240316_020000", newest, {
      createdAt: "2024-03-16T02:05:00Z",
      expired: true,
    });
    fake.add("coverage-report", older, { createdAt: "2024-03-17T00:00:00Z" });
    fake.add("memory_20240313_020000", broken, {
      createdAt: "2024-03-13T02:05:00Z",
    });
    fake.add("memory_20240312_020000", newest, {
      createdAt: "2024-03-12T02:05:00Z",
      digest: `sha256:${"0".repeat(64)}`,
    });

    const cases: [string, string[], string, Uint8Array][] = [
      ["latest, by default", [], NEWEST, newest],
      ["latest, named", ["latest"], NEWEST, newest],
      ["by name", [OLDER], OLDER, older],
    ];
    for (const [name, args, artifact, bytes] of cases) {
      await t.step(`fetches ${name}: NAME.zip equals the upload`, async () => {
        fake.seen.length = 0;
        const run = await fetch(args);
        assert.equal(run.code, 0, run.stderr);
        assert.deepEqual(ownLines(run.stderr), []);
        assert.match(
          run.stdout,
          new RegExp(
            `^✓ Fetched ${artifact} to \\./downloads/${artifact}\\.zip`,
          ),
        );
        assert.match(run.stdout, /digest matches GitHub's record/);
        const saved = await Deno.readFile(`${downloads}/${artifact}.zip`);
        assert.equal(sha256(saved), sha256(bytes));
        const storage = fake.seen.filter((s) => s.path.startsWith("/storage/"));
        assert.equal(storage.length, 1, JSON.stringify(fake.seen));
        assert.equal(
          storage[0]!.auth,
          null,
          "the storage never sees the token",
        );
        assert.ok(
          fake.seen.filter((s) => !s.path.startsWith("/storage/")).every((s) =>
            s.auth === `Bearer ${fake.token}`
          ),
        );
      });
    }

    await t.step(
      "restore --dry-run takes the downloaded zip into the embedded store",
      async () => {
        const run = await checkout.deno([
          "task",
          "restore",
          "--source",
          `downloads/${NEWEST}.zip`,
          "--dry-run",
        ]);
        assert.equal(run.code, 0, run.stdout + run.stderr);
        assert.match(run.stdout, /^\[DRY RUN COMPLETE\] Restore preview$/m);
        assert.match(run.stdout, /Memories: +Restored: 8 /);
        assert.match(run.stdout, /Nothing was written \(dry run\)\./);
      },
    );

    const failures: [string, string[], number, RegExp][] = [
      [
        "a digest mismatch",
        ["memory_20240312_020000"],
        1,
        /^Error: Artifact memory_20240312_020000 does not match its digest: got sha256:[0-9a-f]{64}, GitHub recorded sha256:0{64}$/,
      ],
      [
        "a backup failing its checksums",
        ["memory_20240313_020000"],
        1,
        /^Error: Artifact memory_20240313_020000 holds a backup that fails verification: export\.json: checksum mismatch: /,
      ],
      [
        "an expired artifact",
        ["memory_20240316_020000"],
        1,
        /^Error: Artifact memory_20240316_020000 has expired/,
      ],
      [
        "an unknown name",
        ["memory_20200101_000000"],
        1,
        /^Error: No artifact named memory_20200101_000000 in alex\/memories$/,
      ],
      [
        "a name that is not a backup name",
        ["coverage-report"],
        2,
        /^Error: Invalid artifact "coverage-report": expected latest or memory_YYYYMMDD_HHMMSS$/,
      ],
      [
        "a path for a name",
        ["../memory_20240315_020000"],
        2,
        /^Error: Invalid artifact "\.\.\/memory_20240315_020000"/,
      ],
      ["two names", [NEWEST, OLDER], 2, /^Error: Unexpected argument/],
    ];
    for (const [name, args, code, expected] of failures) {
      await t.step(
        `${name} fails in one line (exit ${code}) and leaves nothing`,
        async () => {
          const before = listing(downloads);
          const run = await fetch(args);
          assert.equal(run.code, code, run.stdout + run.stderr);
          const lines = ownLines(run.stderr);
          assert.equal(lines.length, 1, run.stderr);
          assert.match(lines[0]!, expected);
          assert.deepEqual(listing(downloads), before, "no zip, no partial");
        },
      );
    }

    await t.step("a missing GITHUB_TOKEN exits 2 naming it", async () => {
      const { GITHUB_TOKEN: _, ...rest } = env;
      const run = await fetch([], rest);
      assert.equal(run.code, 2, run.stderr);
      assert.match(ownLines(run.stderr)[0]!, /^Error: Missing GITHUB_TOKEN/);
    });

    await t.step("the token never appears in any output", () => {
      for (const text of outputs) assert.ok(!text.includes(fake.token));
    });
  } finally {
    await fake.close();
    await checkout.remove();
  }
});
