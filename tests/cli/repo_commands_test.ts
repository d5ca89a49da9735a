import assert from "node:assert/strict";
import { makeCheckout, ownLines } from "../_checkout.ts";
import { startWireDatabase } from "../_db.ts";
import { backupsIn } from "../_helpers.ts";
import { startS3 } from "../_s3.ts";
import { generateIdentity, identityToRecipient } from "age-encryption";

/** The command printed exactly one line on stderr, an error. */
function assertOneLineError(stderr: string, what: string): string {
  const lines = ownLines(stderr);
  assert.equal(lines.length, 1, `${what}: ${stderr}`);
  assert.match(lines[0]!, /^Error: /, what);
  return lines[0]!;
}

Deno.test("backup --repo, snapshots, verify --repo and restore --repo work as a user runs them", async (t) => {
  const checkout = await makeCheckout();
  const db = await startWireDatabase();
  const outside = await Deno.makeTempDir({ prefix: "memkeep-repo-" });
  try {
    const demo = await checkout.deno([
      "task",
      "demo",
      "--memories",
      "80",
      "--dims",
      "32",
      "--relationships",
      "25",
    ]);
    assert.equal(demo.code, 0, demo.stderr);
    const [plain] = backupsIn(`${checkout.dir}/backups`);

    await t.step(
      "two backups into a relative path: the second adds nothing",
      async () => {
        for (let i = 0; i < 2; i++) {
          const run = await checkout.deno([
            "task",
            "backup",
            "--repo",
            "./my-repo",
          ]);
          assert.equal(run.code, 0, run.stderr);
          assert.match(
            run.stdout,
            /✓ Backed up 80 memories and 25 relationships to \.\/my-repo as snapshot memory_\d{8}_\d{6}\n {2}added .* read back and checked\n$/,
          );
        }
        const list = await checkout.deno([
          "task",
          "snapshots",
          "--repo",
          "my-repo",
          "--json",
        ]);
        assert.equal(list.code, 0, list.stderr);
        const parsed = JSON.parse(list.stdout);
        assert.deepEqual(Object.keys(parsed), [
          "repository_bytes",
          "snapshots",
        ]);
        assert.equal(parsed.snapshots.length, 2);
        for (const s of parsed.snapshots) {
          assert.deepEqual(Object.keys(s), [
            "name",
            "created_at",
            "memory_count",
            "relationship_count",
            "bytes_added",
          ]);
          assert.equal(s.memory_count, 80);
          assert.equal(s.relationship_count, 25);
        }
        assert.ok(parsed.snapshots[0].bytes_added > 0);
        assert.equal(parsed.snapshots[1].bytes_added, 0);
        assert.ok(parsed.repository_bytes >= parsed.snapshots[0].bytes_added);
      },
    );

    await t.step(
      "MEMKEEP_REPO and an absolute path outside the project",
      async () => {
        const run = await checkout.deno(["task", "backup"], {
          MEMKEEP_REPO: `${outside}/repo`,
        });
        assert.equal(run.code, 0, run.stderr);
        const verify = await checkout.deno([
          "task",
          "verify",
          "--repo",
          `${outside}/repo`,
          "--read-data",
        ]);
        assert.equal(verify.code, 0, verify.stderr);
        assert.match(
          verify.stdout,
          /✓ memory_\d{8}_\d{6}: 80 memories, \d+ blobs read and hashed/,
        );
        const sample = await checkout.deno([
          "task",
          "verify",
          "--repo",
          `${outside}/repo`,
          "--read-data-subset",
          "10%",
          "--json",
        ]);
        assert.equal(sample.code, 0, sample.stderr);
        const report = JSON.parse(sample.stdout);
        assert.equal(report.read_data, "10%");
        assert.ok(
          report.snapshots[0].bytes_read > 0,
          "at least one pack is read",
        );
      },
    );

    await t.step(
      "restore --repo into a new table over the wire equals restoring the backup directory",
      async () => {
        const env = {
          DATABASE_URL: db.url,
          RELATIONSHIPS_DB: `${outside}/rel-a.db`,
          MEMORY_TABLE: `${db.schema}.from_repo`,
        };
        const dry = await checkout.deno([
          "task",
          "restore",
          "--repo",
          "my-repo",
          "--snapshot",
          "latest",
          "--dry-run",
        ], env);
        assert.equal(dry.code, 0, dry.stderr);
        assert.match(dry.stdout, /Memories: +Restored: 80 /);
        assert.match(dry.stdout, /Nothing was written \(dry run\)\./);
        const real = await checkout.deno([
          "task",
          "restore",
          "--repo",
          "my-repo",
          "--snapshot",
          "latest",
          "--force",
        ], env);
        assert.equal(real.code, 0, real.stderr);
        const direct = await checkout.deno([
          "task",
          "restore",
          "--source",
          `./backups/${plain}`,
          "--force",
        ], {
          ...env,
          RELATIONSHIPS_DB: `${outside}/rel-b.db`,
          MEMORY_TABLE: `${db.schema}.from_dir`,
        });
        assert.equal(direct.code, 0, direct.stderr);
        const digest = async (table: string) =>
          (await db.query(
            `select count(*)::text, md5(string_agg(id::text || vector::text || payload::text, ',' order by id)) from ${db.schema}.${table}`,
          ))[0];
        assert.deepEqual(await digest("from_repo"), await digest("from_dir"));
        assert.equal((await digest("from_repo"))![0], "80");
        const left = [...Deno.readDirSync(`${checkout.dir}/my-repo`)].map((e) =>
          e.name
        ).filter((n) => n.startsWith(".tmp-"));
        assert.deepEqual(left, [], "the scratch copy is removed");
      },
    );

    await t.step(
      "a repository in a bucket (s3rver), through the launcher's grants",
      async () => {
        const s3 = await startS3();
        try {
          const repo = `s3://${s3.bucket}/nightly`;
          const outputs: string[] = [];
          const run = async (
            args: string[],
            extra: Record<string, string> = {},
          ) => {
            const result = await checkout.deno(["task", ...args], {
              ...s3.env,
              ...extra,
            });
            outputs.push(result.stdout, result.stderr);
            assert.equal(result.code, 0, `${args.join(" ")}: ${result.stderr}`);
            return result;
          };
          const first = await run(["backup", "--repo", repo]);
          assert.match(first.stdout, /as snapshot memory_\d{8}_\d{6}/);
          const list = JSON.parse(
            (await run(["snapshots", "--json"], { MEMKEEP_REPO: repo })).stdout,
          );
          assert.equal(list.snapshots.length, 1);
          assert.equal(list.snapshots[0].memory_count, 80);
          const verify = await run(["verify", "--repo", repo, "--read-data"]);
          assert.match(verify.stdout, /✓ 1 snapshot read in full/);
          const dry = await run([
            "restore",
            "--repo",
            repo,
            "--snapshot",
            "latest",
            "--dry-run",
          ]);
          assert.match(dry.stdout, /Memories: +Restored: 0 +Skipped: 80/);
          for (const text of outputs) {
            assert.ok(
              !text.includes(s3.env.AWS_SECRET_ACCESS_KEY!),
              "the secret key is never printed",
            );
          }
          const wrongKey = await checkout.deno(
            ["task", "snapshots", "--repo", repo],
            { ...s3.env, AWS_ACCESS_KEY_ID: "NOT-A-KEY" },
          );
          assert.equal(wrongKey.code, 1);
          assert.match(
            assertOneLineError(wrongKey.stderr, "a wrong key"),
            /S3 refused to read config\.json in s3:\/\/memkeep-test\/nightly \(HTTP 403 InvalidAccessKeyId\)/,
          );
        } finally {
          await s3.close();
        }
      },
    );

    await t.step(
      "an encrypted repository: AGE_RECIPIENTS to create it, AGE_IDENTITY_FILE to read it",
      async () => {
        const identity = await generateIdentity();
        const keyFile = `${outside}/key.txt`;
        await Deno.writeTextFile(keyFile, `${identity}\n`);
        const recipients = {
          AGE_RECIPIENTS: await identityToRecipient(identity),
        };
        const made = await checkout.deno(
          ["task", "backup", "--repo", `${outside}/sealed`],
          recipients,
        );
        assert.equal(made.code, 0, made.stderr);
        const locked = await checkout.deno([
          "task",
          "verify",
          "--repo",
          `${outside}/sealed`,
        ]);
        assert.equal(locked.code, 0, locked.stderr);
        assert.match(
          locked.stdout,
          /is encrypted: \d+ files \(.*\) match their names; set AGE_IDENTITY_FILE/,
        );
        const refused = await checkout.deno([
          "task",
          "snapshots",
          "--repo",
          `${outside}/sealed`,
        ]);
        assert.equal(refused.code, 2);
        assert.match(
          assertOneLineError(refused.stderr, "snapshots without a key"),
          /is encrypted: set AGE_IDENTITY_FILE \(or AGE_PASSPHRASE\) to read it$/,
        );
        const full = await checkout.deno(
          ["task", "verify", "--repo", `${outside}/sealed`, "--read-data"],
          { AGE_IDENTITY_FILE: keyFile },
        );
        assert.equal(full.code, 0, full.stderr);
        assert.match(full.stdout, /✓ 1 snapshot read in full/);
        assert.ok(
          !full.stdout.includes(identity) && !full.stderr.includes(identity),
        );
      },
    );

    await t.step(
      "bad input: one line naming the flag, exit 2 (usage) or 1",
      async () => {
        const cases: [string[], number, RegExp][] = [
          [
            ["backup", "--repo", "r", "--output", "o"],
            2,
            /--output or --repo, not both/,
          ],
          [
            ["backup", "--repo", "gs://bucket/p"],
            2,
            /Invalid --repo: gs:\/\/ repositories are not supported/,
          ],
          [
            ["snapshots", "--repo", "s3://No_Such"],
            2,
            /Invalid --repo: "s3:\/\/No_Such" does not name a bucket/,
          ],
          [
            ["snapshots", "--repo", "s3://a-bucket/x"],
            2,
            /Missing AWS_ACCESS_KEY_ID/,
          ],
          [
            ["restore", "--repo", "my-repo", "--dry-run"],
            2,
            /Missing --snapshot/,
          ],
          [
            ["restore", "--snapshot", "latest", "--dry-run"],
            2,
            /Invalid --snapshot: .*give --repo REPO too/,
          ],
          [
            [
              "restore",
              "--repo",
              "my-repo",
              "--snapshot",
              "memory_20200101_000000",
              "--dry-run",
            ],
            1,
            /No snapshot "memory_20200101_000000" in "my-repo" \(it holds 2: /,
          ],
          [
            ["prune", "--repo", "my-repo", "--dir", "./backups"],
            2,
            /Invalid --repo: prune --dir or --repo, not both/,
          ],
          [["snapshots", "--repo", `${outside}/none`], 1, /No repository at/],
          [["snapshots"], 2, /Missing --repo/],
          [
            [
              "export",
              "--repo",
              "my-repo",
              "--snapshot",
              "latest",
              "--format",
              "xml",
            ],
            2,
            /Invalid --format "xml": must be one of json, csv, markdown/,
          ],
          [
            [
              "export",
              "--repo",
              "my-repo",
              "--snapshot",
              "latest",
              "--format",
              "csv",
              "--user",
              "alice",
            ],
            2,
            /Invalid --user with --repo: a snapshot is exported whole/,
          ],
          [["verify", "./backups", "--repo", "my-repo"], 2, /not both/],
          [["verify", "./backups", "--read-data"], 2, /Invalid --read-data/],
          [
            ["verify", "--repo", "my-repo", "--read-data-subset", "150%"],
            2,
            /Invalid --read-data-subset "150%": must be a share of the packs such as 10%/,
          ],
        ];
        for (const [args, code, message] of cases) {
          const run = await checkout.deno(["task", ...args]);
          assert.equal(run.code, code, `${args.join(" ")}: ${run.stderr}`);
          assert.match(assertOneLineError(run.stderr, args.join(" ")), message);
        }
      },
    );

    await t.step(
      "export --repo writes a snapshot out as a backup directory that verify accepts",
      async () => {
        const run = await checkout.deno([
          "task",
          "export",
          "--repo",
          "my-repo",
          "--snapshot",
          "latest",
          "--output",
          `${outside}/exported`,
          "--json",
        ]);
        assert.equal(run.code, 0, run.stderr);
        const { path, memory_count } = JSON.parse(run.stdout);
        assert.equal(memory_count, 80);
        assert.match(path, /\/exported\/memory_\d{8}_\d{6}$/);
        const verify = await checkout.deno(["task", "verify", path]);
        assert.equal(verify.code, 0, verify.stderr);
        assert.match(
          verify.stdout,
          /Backup is valid: 80 memories, 25 relationships\./,
        );
      },
    );

    await t.step(
      "export --repo --format csv|markdown writes what an export of the store at that moment writes, and verify accepts it",
      async () => {
        for (const format of ["csv", "markdown"]) {
          const fromSnapshot = `${outside}/snapshot-${format}`;
          const run = await checkout.deno([
            "task",
            "export",
            "--repo",
            "my-repo",
            "--snapshot",
            "latest",
            "--format",
            format,
            "--output",
            fromSnapshot,
          ]);
          assert.equal(run.code, 0, run.stderr);
          assert.match(
            run.stdout,
            new RegExp(
              `✓ Exported 80 memories and 25 relationships of snapshot memory_\\d{8}_\\d{6} as ${format} to ${fromSnapshot}`,
            ),
          );
          const verify = await checkout.deno(["task", "verify", fromSnapshot]);
          assert.equal(verify.code, 0, verify.stderr);
          const fromStore = `${outside}/store-${format}`;
          const store = await checkout.deno([
            "task",
            "export",
            "--format",
            format,
            "--output",
            fromStore,
          ]);
          assert.equal(store.code, 0, store.stderr);
          // The same files, but for the moment each was taken.
          const files = format === "csv"
            ? ["memories.csv", "relationships.csv"]
            : ["memories.md"];
          for (const name of files) {
            const strip = (text: string) =>
              text.replace(/^- Exported: .*$/m, "- Exported: …");
            assert.equal(
              strip(await Deno.readTextFile(`${fromSnapshot}/${name}`)),
              strip(await Deno.readTextFile(`${fromStore}/${name}`)),
              `${format}: ${name}`,
            );
          }
        }
      },
    );

    await t.step(
      "prune --repo keeps the newest snapshot and all it needs",
      async () => {
        const args = [
          "task",
          "prune",
          "--repo",
          "my-repo",
          "--keep-daily",
          "0",
          "--keep-weekly",
          "0",
        ];
        const dry = await checkout.deno([...args, "--dry-run"]);
        assert.equal(dry.code, 0, dry.stderr);
        assert.match(
          dry.stdout,
          /Would delete 1 snapshot\(s\), kept 1; would free 0 B \(0 pack\(s\) deleted, 0 repacked\)/,
        );
        const run = await checkout.deno([...args, "--json"]);
        assert.equal(run.code, 0, run.stderr);
        assert.equal(JSON.parse(run.stdout).deleted.length, 1);
        const verify = await checkout.deno([
          "task",
          "verify",
          "--repo",
          "my-repo",
          "--read-data",
        ]);
        assert.equal(verify.code, 0, verify.stderr);
        assert.match(verify.stdout, /✓ 1 snapshot read in full/);
      },
    );

    await t.step(
      "a damaged pack: verify --repo --read-data names it and exits 1",
      async () => {
        const packs = `${checkout.dir}/my-repo/packs`;
        const [sub] = [...Deno.readDirSync(packs)];
        const [pack] = [...Deno.readDirSync(`${packs}/${sub!.name}`)];
        const path = `${packs}/${sub!.name}/${pack!.name}`;
        const bytes = await Deno.readFile(path);
        bytes[10] = bytes[10]! ^ 0xff;
        await Deno.writeFile(path, bytes);
        const structure = await checkout.deno([
          "task",
          "verify",
          "--repo",
          "my-repo",
        ]);
        assert.equal(structure.code, 0, structure.stderr);
        const full = await checkout.deno([
          "task",
          "verify",
          "--repo",
          "my-repo",
          "--read-data",
        ]);
        assert.equal(full.code, 1);
        assert.match(
          assertOneLineError(full.stderr, "verify --read-data"),
          new RegExp(
            `Damaged repository: (blob [0-9a-f]{12} in )?pack ".*${
              pack!.name
            }" does not`,
          ),
        );
      },
    );
  } finally {
    await db.close();
    await checkout.remove();
    await Deno.remove(outside, { recursive: true });
  }
});
