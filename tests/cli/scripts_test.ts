import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { BACKUP_NAME, LOG_FILE, TEMP_PREFIX } from "../../lib/format/layout.ts";
import { startFakeAuthServer } from "../_fake_pg.ts";
import {
  openEmbeddedStore,
  seedMemories,
  startWireDatabase,
  tableDigest,
} from "../_db.ts";
import {
  type Checkout,
  makeCheckout,
  onTerminal,
  ownLines,
  productionArgs,
} from "../_checkout.ts";
import { zipBackup } from "../_zip.ts";
import { backupsIn } from "../_helpers.ts";
import { netGrant } from "../../lib/store/connection.ts";

function tempsIn(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
      n.startsWith(TEMP_PREFIX)
    );
  } catch {
    return [];
  }
}

Deno.test("the commands work as a user runs them, with their production permissions", async (t) => {
  const checkout = await makeCheckout();
  const db = await startWireDatabase();
  try {
    await t.step(
      "deno task demo creates the embedded store, backs it up and verifies it",
      async () => {
        const run = await checkout.deno([
          "task",
          "demo",
          "--memories",
          "60",
          "--dims",
          "32",
          "--relationships",
          "20",
        ]);
        assert.equal(run.code, 0, run.stderr);
        assert.match(
          run.stdout,
          /Embedded store: \.\/data\/pglite \(created: 60 memories × 32 dims/,
        );
        assert.match(
          run.stdout,
          /✓ Backed up 60 memories and 20 relationships to \.\/backups\/memory_\d{8}_\d{6}/,
        );
        assert.match(
          run.stdout,
          /Backup is valid: 60 memories, 20 relationships\./,
        );
        assert.equal(backupsIn(`${checkout.dir}/backups`).length, 1);
        assert.deepEqual(ownLines(run.stderr), []);
      },
    );

    await t.step(
      "deno task export writes each format into ./exports, verified",
      async () => {
        for (const format of ["json", "csv", "markdown"]) {
          const run = await checkout.deno([
            "task",
            "export",
            "--format",
            format,
            "--verify",
            "--output",
            `exports/${format}`,
          ]);
          assert.equal(run.code, 0, run.stderr);
          assert.match(
            run.stdout,
            new RegExp(
              `✓ Exported 60 memories and 20 relationships as ${format} to exports/${format}`,
            ),
          );
          const verify = await checkout.deno([
            "task",
            "verify",
            `exports/${format}`,
            "--json",
          ]);
          assert.equal(
            JSON.parse(verify.stdout).ok,
            true,
            `${format}: ${verify.stdout}`,
          );
        }
        const bad = await checkout.deno(["task", "export", "--format", "xml"]);
        assert.equal(bad.code, 2);
        assert.deepEqual(ownLines(bad.stderr), [
          'Error: Invalid --format "xml": must be one of json, csv, markdown',
        ]);
        // Anywhere the user names: the task grants that directory.
        const elsewhere = await Deno.makeTempDir({
          prefix: "memkeep-elsewhere-",
        });
        try {
          const run = await checkout.deno([
            "task",
            "export",
            "--output",
            `${elsewhere}/my export`,
          ]);
          assert.equal(run.code, 0, run.stderr);
          assert.deepEqual(
            [...Deno.readDirSync(elsewhere)].map((e) => e.name),
            ["my export"],
            "the export, and no work directory left beside it",
          );
        } finally {
          await Deno.remove(elsewhere, { recursive: true });
        }
      },
    );

    await t.step(
      "deno task verify checks a backup with read access to the backups only",
      async () => {
        const [name] = backupsIn(`${checkout.dir}/backups`);
        const run = await checkout.deno(["task", "verify", `backups/${name}`]);
        assert.equal(run.code, 0, run.stderr);
        for (
          const check of [
            "files",
            "checksums",
            "metadata",
            "header",
            "memories",
            "relationships",
            "snapshot",
          ]
        ) {
          assert.match(run.stdout, new RegExp(`^✓ ${check}: `, "m"));
        }
        const json = await checkout.deno([
          "task",
          "verify",
          `backups/${name}`,
          "--json",
        ]);
        assert.equal(JSON.parse(json.stdout).ok, true);
      },
    );

    await t.step(
      "verify, run with its production permissions, cannot write, open a socket or read elsewhere",
      async () => {
        const [name] = backupsIn(`${checkout.dir}/backups`);
        const argv = productionArgs(checkout, "verify", [`backups/${name}`]);
        const run = await checkout.deno([
          ...argv.slice(0, -2),
          "--preload",
          "tests/testdata/permission_probe.ts",
          ...argv.slice(-2),
        ]);
        assert.equal(run.code, 0, run.stderr);
        const probe = JSON.parse(/PROBE (.*)/.exec(run.stderr)![1]!);
        assert.deepEqual(probe, {
          "write inside the granted directory": "NotCapable",
          "read outside the grant": "NotCapable",
          "open a socket": "NotCapable",
          "read an environment variable": "NotCapable",
          "run a program": "NotCapable",
        });
        const strict = await checkout.deno([
          "run",
          "-q",
          `--allow-read=backups/${name}`,
          "scripts/verify.ts",
          `backups/${name}`,
        ]);
        assert.equal(strict.code, 0, "read access to the one backup is enough");
        const elsewhere = await checkout.deno(["task", "verify", "/etc"]);
        assert.equal(elsewhere.code, 1);
        // Granted (it was asked for), read, and found not to be a backup.
        assert.deepEqual(ownLines(elsewhere.stderr), []);
        assert.match(elsewhere.stdout, /^Backup is NOT valid: /m);
      },
    );

    const table = `${db.schema}.thanos_memories`;
    await seedMemories(db, table, { memories: 40, dims: 16 });
    const wire = { DATABASE_URL: db.url, MEMORY_TABLE: table };
    const big = `${db.schema}.big_memories`; // about 12 MB of export.json
    await seedMemories(db, big, { memories: 3000, dims: 384 });

    await t.step(
      "deno task backup over the wire gets network access to the database host only",
      async () => {
        const grants = await checkout.deno(["task", "grants", "backup"], wire);
        assert.equal(grants.code, 0, grants.stderr);
        assert.deepEqual(
          grants.stdout.trim().split(" ").filter((a) =>
            a.startsWith("--allow-net")
          ),
          [`--allow-net=${netGrant(db.url)}`],
        );
        assert.doesNotMatch(grants.stdout, /pglite/, "no embedded store");
        const run = await checkout.deno(["task", "backup", "--json"], wire);
        assert.equal(run.code, 0, run.stderr);
        const result = JSON.parse(run.stdout);
        assert.equal(result.ok, true);
        assert.equal(result.memory_count, 40);
        assert.equal(result.verified, true);
        assert.match(result.name, BACKUP_NAME);
        const verify = await checkout.deno([
          "task",
          "verify",
          `backups/${result.name}`,
        ]);
        assert.equal(verify.code, 0, verify.stdout);
        // The same permissions refuse any other host.
        const other = await checkout.deno(
          [
            "run",
            "-q",
            "-P=backup",
            `--allow-net=${netGrant(db.url)}`,
            "scripts/backup.ts",
          ],
          { ...wire, DATABASE_URL: db.url.replace(`:${db.port}/`, ":1/") },
        );
        assert.equal(other.code, 1);
        assert.match(
          ownLines(other.stderr).join("\n"),
          new RegExp(
            `^Error: Not permitted: Requires net access to "${
              new URL(db.url).hostname
            }:1"`,
          ),
        );
      },
    );

    await t.step(
      "bad usage exits 2 with one line naming the flag or setting",
      async () => {
        const cases: [string[], Record<string, string>, RegExp][] = [
          [
            ["scripts/backup.ts", "--bogus"],
            {},
            /^Error: Unknown option '--bogus'/,
          ],
          [
            ["scripts/backup.ts"],
            { MEMORY_TABLE: "x; drop table y" },
            /^Error: Invalid MEMORY_TABLE "x; drop table y": /,
          ],
          [
            ["scripts/backup.ts", "--table", "a.b.c"],
            {},
            /^Error: Invalid --table "a\.b\.c": /,
          ],
          [["scripts/backup.ts"], {
            DATABASE_URL: "mysql://u:hunter2hunter2@h/db",
          }, /^Error: Invalid DATABASE_URL: scheme "mysql"/],
          [["scripts/verify.ts"], {}, /^Error: Missing the backup directory/],
          [
            ["scripts/demo.ts", "--memories", "lots"],
            {},
            /^Error: Invalid --memories "lots": must be a whole number/,
          ],
        ];
        for (const [args, env, expected] of cases) {
          const script = args[0]!.replace(/^scripts\/|\.ts$/g, "");
          const run = await checkout.deno([
            "run",
            "-q",
            `-P=${script}`,
            ...args,
          ], env);
          assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
          const lines = ownLines(run.stderr);
          assert.equal(lines.length, 1, run.stderr);
          assert.match(lines[0]!, expected);
          assert.ok(
            !run.stderr.includes("hunter2hunter2"),
            "no password in the message",
          );
        }
      },
    );

    await t.step(
      "a wrong password fails in one line and is never echoed",
      async () => {
        const fake = startFakeAuthServer();
        try {
          const sentinel = "S3ntinel-Pa55w0rd-do-not-print";
          const before = await Deno.readTextFile(
            `${checkout.dir}/backups/${LOG_FILE}`,
          );
          const run = await checkout.deno(["task", "backup"], {
            DATABASE_URL:
              `postgres://me:${sentinel}@127.0.0.1:${fake.port}/db?sslmode=disable`,
          });
          assert.equal(run.code, 1);
          assert.deepEqual(ownLines(run.stderr), [
            `Error: Cannot connect to postgresql://me@127.0.0.1:${fake.port}/db: password authentication failed for user "me"`,
          ]);
          assert.ok(
            fake.passwords.includes(sentinel),
            "the password reached the server",
          );
          const log = await Deno.readTextFile(
            `${checkout.dir}/backups/${LOG_FILE}`,
          );
          assert.ok(log.length > before.length, "the failure is logged");
          for (const text of [run.stdout, run.stderr, log]) {
            assert.ok(!text.includes(sentinel));
          }
        } finally {
          await fake.close();
        }
      },
    );

    await t.step(
      "an unreachable host and a missing table fail in one line, leaving no backup",
      async () => {
        const count = backupsIn(`${checkout.dir}/backups`).length;
        const cases: [Record<string, string>, RegExp][] = [
          [
            { DATABASE_URL: "postgres://me:pw@127.0.0.1:1/db?sslmode=disable" },
            /connection refused/,
          ],
          [
            { DATABASE_URL: "postgres://me:pw@no-such-host.invalid:5432/db" },
            /host "no-such-host\.invalid" not found/,
          ],
          [
            { DATABASE_URL: db.url, MEMORY_TABLE: `${db.schema}.nope` },
            /table ".*nope": it does not exist/,
          ],
        ];
        for (const [env, expected] of cases) {
          const run = await checkout.deno(["task", "backup"], env);
          assert.equal(run.code, 1, run.stderr);
          const lines = ownLines(run.stderr);
          assert.equal(lines.length, 1, run.stderr);
          assert.match(lines[0]!, expected);
        }
        assert.equal(backupsIn(`${checkout.dir}/backups`).length, count);
        assert.deepEqual(tempsIn(`${checkout.dir}/backups`), []);
      },
    );

    await t.step(
      "a full disk (file size limit) fails in one line and leaves nothing behind",
      async () => {
        const count = backupsIn(`${checkout.dir}/backups`).length;
        const script =
          `trap '' XFSZ; ulimit -f 1024; exec "$0" run -q -P=backup --allow-net=${
            netGrant(db.url)
          } scripts/backup.ts`;
        const run = await new Deno.Command("bash", {
          args: ["-c", script, Deno.execPath()],
          cwd: checkout.dir,
          env: { NO_COLOR: "1", ...wire, MEMORY_TABLE: big },
          stdout: "piped",
          stderr: "piped",
        }).output();
        const stderr = new TextDecoder().decode(run.stderr);
        assert.equal(run.code, 1, stderr);
        assert.deepEqual(ownLines(stderr), [
          'Error: Cannot write backup in "./backups": file too large (size limit reached)',
        ]);
        assert.equal(backupsIn(`${checkout.dir}/backups`).length, count);
        assert.deepEqual(tempsIn(`${checkout.dir}/backups`), []);
      },
    );

    await t.step(
      "a backup killed mid-run leaves no final backup, and the next one works",
      async () => {
        await killMidBackup(checkout, netGrant(db.url)!, {
          ...wire,
          MEMORY_TABLE: big,
        });
      },
    );

    await restoreSteps(t, checkout, db.url, db.schema);
  } finally {
    await db.close();
    await checkout.remove();
  }
});

async function killMidBackup(
  checkout: Checkout,
  host: string,
  env: Record<string, string>,
) {
  const before = backupsIn(`${checkout.dir}/backups`);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-q",
      "-P=backup",
      `--allow-net=${host}`,
      "scripts/backup.ts",
    ],
    cwd: checkout.dir,
    env,
    stdout: "null",
    stderr: "null",
  }).spawn();
  let killedWith = "";
  for (let i = 0; i < 2000 && !killedWith; i++) {
    const temp = tempsIn(`${checkout.dir}/backups`)[0];
    if (temp) {
      try {
        const size =
          Deno.statSync(`${checkout.dir}/backups/${temp}/export.json`).size;
        if (size > 0) {
          child.kill("SIGKILL");
          killedWith = `${size} bytes written`;
        }
      } catch {
        // not created yet
      }
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  const status = await child.status;
  assert.ok(killedWith, "the backup was killed while writing");
  assert.equal(status.signal, "SIGKILL");
  assert.deepEqual(
    backupsIn(`${checkout.dir}/backups`),
    before,
    "no directory under a final backup name",
  );
  assert.equal(
    tempsIn(`${checkout.dir}/backups`).length,
    1,
    "the partial backup keeps its temporary name",
  );
  const next = await checkout.deno(["task", "backup"], env);
  assert.equal(next.code, 0, next.stderr);
  assert.equal(backupsIn(`${checkout.dir}/backups`).length, before.length + 1);
}

/** Runs a command on a pseudo-terminal, typing `input`. */
async function typed(
  checkout: Checkout,
  command: string,
  input: string,
  env: Record<string, string> = {},
) {
  const terminal = onTerminal(checkout, command, env);
  await terminal.type(input);
  const { code, screen } = await terminal.done;
  return { code, stdout: screen };
}

function sqliteCount(path: string): number {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return Number(
      (db.prepare("select count(*) as n from relationships").get() as {
        n: number;
      }).n,
    );
  } finally {
    db.close();
  }
}

function fileDigest(path: string): string {
  return Array.from(Deno.readFileSync(path)).reduce(
    (h, b) => (h * 31 + b) >>> 0,
    7,
  ).toString(16);
}

async function restoreSteps(
  t: Deno.TestContext,
  checkout: Checkout,
  url: string,
  schema: string,
): Promise<void> {
  const names = backupsIn(`${checkout.dir}/backups`);
  const demoBackup = `backups/${names[0]}`;

  await t.step(
    "deno task restore --dry-run previews exactly, in the seed's style, and writes nothing",
    async () => {
      const run = await checkout.deno([
        "task",
        "restore",
        "--source",
        demoBackup,
        "--dry-run",
      ]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /^\[DRY RUN COMPLETE\] Restore preview$/m);
      const lines = run.stdout.split("\n");
      assert.ok(
        lines.includes(
          "  Memories:      Restored: 0   Skipped: 60 (duplicates)   Updated: 0",
        ),
        run.stdout,
      );
      assert.ok(
        lines.includes(
          "  Relationships: Restored: 0   Skipped: 20 (duplicates)   Updated: 0",
        ),
        run.stdout,
      );
      assert.match(run.stdout, /Nothing was written \(dry run\)\./);
    },
  );

  await t.step(
    "without a terminal and without --force, restore refuses and names --force",
    async () => {
      const before = fileDigest(`${checkout.dir}/data/relationships.db`);
      const run = await checkout.deno([
        "task",
        "restore",
        "--source",
        demoBackup,
      ]);
      assert.equal(run.code, 2);
      const lines = ownLines(run.stderr);
      assert.equal(lines.length, 1);
      assert.match(
        lines[0]!,
        /^Error: Refusing to restore without confirmation: .*--force/,
      );
      assert.equal(fileDigest(`${checkout.dir}/data/relationships.db`), before);
    },
  );

  await t.step("bad restore usage exits 2 naming the flag", async () => {
    const cases: [string[], RegExp][] = [
      [[], /^Error: Missing --source/],
      [
        ["--source", demoBackup, "--conflict-mode", "merge"],
        /^Error: Invalid --conflict-mode "merge": must be skip or update/,
      ],
      [
        ["--source", demoBackup, "--table", "x y"],
        /^Error: Invalid --table "x y"/,
      ],
    ];
    for (const [args, expected] of cases) {
      const run = await checkout.deno([
        "run",
        "-q",
        "-P=restore",
        "scripts/restore.ts",
        ...args,
      ]);
      assert.equal(run.code, 2, run.stderr);
      assert.match(ownLines(run.stderr)[0]!, expected);
    }
  });

  const target = {
    DATABASE_URL: url,
    MEMORY_TABLE: `${schema}.restored`,
    RELATIONSHIPS_DB: "./data/restored/relationships.db",
  };
  const command = `"${Deno.execPath()}" task restore --source ${demoBackup}`;

  await t.step(
    "on a terminal, restore shows the preview and asks; anything but yes cancels",
    async () => {
      const run = await typed(checkout, command, "no\n", target);
      assert.equal(run.code, 1, run.stdout);
      assert.match(run.stdout, /\[PREVIEW\] Restore preview/);
      assert.match(
        run.stdout,
        /Memories: {6}Restored: 60 {3}Skipped: 0 \(duplicates\)/,
      );
      assert.match(run.stdout, /Continue with restore\? \(yes\/no\)/);
      assert.match(run.stdout, /Restore cancelled: nothing was written\./);
      const check = await checkout.deno([
        "task",
        "restore",
        "--source",
        demoBackup,
        "--dry-run",
        "--json",
      ], target);
      const preview = JSON.parse(check.stdout);
      assert.equal(preview.creates_table, true, "the table is still not there");
      assert.equal(
        preview.relationships_store,
        "./data/restored/relationships.db",
      );
    },
  );

  await t.step(
    "on a terminal, yes restores, with the counts the preview showed",
    async () => {
      const run = await typed(checkout, command, "yes\n", target);
      assert.equal(run.code, 0, run.stdout);
      assert.match(run.stdout, /\[RESTORE COMPLETE\] Restored into /);
      assert.ok(
        run.stdout.includes(
          "  Memories:      Restored: 60   Skipped: 0 (duplicates)   Updated: 0",
        ),
        run.stdout,
      );
      assert.ok(
        run.stdout.includes(
          "  Relationships: Restored: 20   Skipped: 0 (duplicates)   Updated: 0",
        ),
        run.stdout,
      );
      assert.equal(
        sqliteCount(`${checkout.dir}/data/restored/relationships.db`),
        20,
      );
    },
  );

  await t.step(
    "--force with --conflict-mode update restores an artifact zip without asking",
    async () => {
      const zip = `${checkout.dir}/artifact.zip`;
      await zipBackup(`${checkout.dir}/${demoBackup}`, zip);
      const run = await checkout.deno([
        "task",
        "restore",
        "--source",
        zip,
        "--force",
        "--conflict-mode",
        "update",
        "--json",
      ], target);
      assert.equal(run.code, 0, run.stderr);
      const result = JSON.parse(run.stdout);
      assert.equal(result.committed, true);
      assert.deepEqual(result.memories, {
        restored: 0,
        skipped: 60,
        updated: 0,
      });
      assert.deepEqual(result.relationships, {
        restored: 0,
        skipped: 20,
        updated: 0,
      });
      assert.deepEqual(
        [...Deno.readDirSync(`${checkout.dir}/data/restored`)].map((e) =>
          e.name
        ),
        ["relationships.db"],
        "the extracted copy is removed",
      );
    },
  );

  await t.step(
    "a restore killed mid-load leaves both stores exactly as they were",
    async () => {
      const big = backupsIn(`${checkout.dir}/backups`).at(-1)!; // the 3,000-memory backup
      // The restore creates its table's files at the start of its
      // transaction: once they appear, it is loading.
      const base = `${checkout.dir}/data/pglite/base`;
      const files = () => {
        const found = new Set<string>();
        for (const db of Deno.readDirSync(base)) {
          for (const f of Deno.readDirSync(`${base}/${db.name}`)) {
            found.add(`${db.name}/${f.name}`);
          }
        }
        return found;
      };
      const rel = `${checkout.dir}/data/relationships.db`;
      const relBefore = fileDigest(rel);
      const digest = async () => {
        const store = await openEmbeddedStore(`${checkout.dir}/data/pglite`);
        try {
          const tables = await store.query(
            "select string_agg(relname::text, ',' order by relname) from pg_class where relkind = 'r' and relnamespace = 'public'::regnamespace",
          );
          return `${tables[0]![0]} ${await tableDigest(
            store,
            "public.memories",
          )}`;
        } finally {
          await store.close();
        }
      };
      const before = await digest();
      const filesBefore = files();
      // Into the embedded store's public schema, whichever schema the
      // wire server's test table was in.
      const into = { MEMORY_TABLE: "public.big_memories" };
      const child = new Deno.Command(Deno.execPath(), {
        args: productionArgs(checkout, "restore", [
          "--source",
          `backups/${big}`,
          "--force",
        ], into),
        cwd: checkout.dir,
        env: into,
        stdout: "null",
        stderr: "null",
      }).spawn();
      let killed = false;
      for (let i = 0; i < 3000 && !killed; i++) {
        if ([...files()].some((f) => !filesBefore.has(f))) {
          await new Promise((r) => setTimeout(r, 300));
          child.kill("SIGKILL");
          killed = true;
        }
        await new Promise((r) => setTimeout(r, 5));
      }
      const status = await child.status;
      assert.ok(killed, "the restore was killed while loading");
      assert.equal(status.signal, "SIGKILL");
      assert.equal(
        await digest(),
        before,
        "the embedded store is exactly as it was (no new table, same rows)",
      );
      assert.equal(
        fileDigest(rel),
        relBefore,
        "the relationship store is byte for byte the same",
      );
      const again = await checkout.deno([
        "task",
        "restore",
        "--source",
        `backups/${big}`,
        "--force",
        "--json",
      ], into);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(
        JSON.parse(again.stdout).memories.restored,
        3000,
        "the next restore works",
      );
    },
  );
}
