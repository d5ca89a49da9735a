/**
 * Resource faults, as a user meets them with the commands run with their
 * production permissions: a full disk (file size limit), a relationship
 * store that cannot be read, a statement timeout and a dropped connection
 * in the middle of a backup, an export or a restore. Each must fail in one
 * line with exit code 1, leave nothing that looks like a backup (no final
 * name, nothing `verify` accepts, a previous export intact) and leave both
 * stores exactly as they were.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { seedRelationshipStore } from "../lib/store/demo_data.ts";
import { LOG_FILE } from "../lib/format/layout.ts";
import { LOCK_FILE } from "../lib/util/lock.ts";
import { netGrant } from "../lib/store/connection.ts";
import {
  type Checkout,
  makeCheckout,
  ownLines,
  productionArgs,
} from "./_checkout.ts";
import {
  embeddedStep,
  seedMemories,
  startWireDatabase,
  tableDigest,
  type WireDatabase,
} from "./_db.ts";
import { backupsIn } from "./_helpers.ts";
import { type ProxyFault, startFaultProxy } from "./_fault_server.ts";

const MEMORIES = 3000; // about 12 MB of export.json
const DIMS = 384;
const RELATIONSHIPS = 1500;
const SMALL = 600; // restored in three batches of 250

type Run = { code: number; stdout: string; stderr: string };

function sha256(path: string): string {
  return createHash("sha256").update(Deno.readFileSync(path)).digest("hex");
}

/** Every file under a directory with its digest (the lock and log aside). */
function tree(dir: string, prefix = ""): Record<string, string> {
  const out: Record<string, string> = {};
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch {
    return out;
  }
  for (const e of entries) {
    if (e.name === LOG_FILE || e.name === LOCK_FILE) continue;
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) Object.assign(out, tree(path, `${prefix}${e.name}/`));
    else out[`${prefix}${e.name}`] = e.isFile ? sha256(path) : "link";
  }
  return out;
}

/**
 * Runs a script with its production permissions under `ulimit -f` (KiB),
 * with SIGXFSZ ignored so that a write fails as on a full disk. (Through
 * `deno task` the signal's default action comes back and kills the process,
 * which the tests of a killed backup cover.)
 */
async function withFileLimit(
  checkout: Checkout,
  kib: number,
  script: string,
  args: string[],
  env: Record<string, string>,
): Promise<Run> {
  const host = netGrant(env.DATABASE_URL!)!;
  const base: Record<string, string> = {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: Deno.env.get("HOME") ?? "/root",
    NO_COLOR: "1",
  };
  const denoDir = Deno.env.get("DENO_DIR");
  if (denoDir) base.DENO_DIR = denoDir;
  const out = await new Deno.Command("bash", {
    args: [
      "-c",
      `trap '' XFSZ; ulimit -f ${kib}; exec "$0" "$@"`,
      Deno.execPath(),
      "run",
      "-q",
      `-P=${script}`,
      `--allow-net=${host}`,
      `scripts/${script}.ts`,
      ...args,
    ],
    cwd: checkout.dir,
    env: { ...base, ...env },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return {
    code: out.code,
    stdout: text.decode(out.stdout),
    stderr: text.decode(out.stderr),
  };
}

/** Asserts exit code 1 and exactly one line on stderr, matching `expected`. */
function assertOneLineFailure(run: Run, expected: RegExp, what: string): void {
  const lines = ownLines(run.stderr);
  assert.equal(run.code, 1, `${what}: exit code\n${run.stderr}`);
  assert.equal(lines.length, 1, `${what}: one line\n${run.stderr}`);
  assert.match(lines[0]!, /^Error: /, `${what}: ${lines[0]}`);
  assert.match(lines[0]!, expected, `${what}: ${lines[0]}`);
}

Deno.test("resource faults fail in one line, leave nothing that looks like a backup and change no store", async (t) => {
  const checkout = await makeCheckout();
  const db = await startWireDatabase();
  const dir = checkout.dir;
  try {
    const table = `${db.schema}.memories`;
    await seedMemories(db, table, { memories: MEMORIES, dims: DIMS });
    const ids = (await db.query(`select id::text from ${table} limit 600`))
      .map((r) => r[0]!);
    await Deno.mkdir(`${dir}/data`, { recursive: true });
    seedRelationshipStore(`${dir}/data/relationships.db`, ids, {
      relationships: RELATIONSHIPS,
    });
    const env = { DATABASE_URL: db.url, MEMORY_TABLE: table };

    // A good backup and a good export, which no failure may disturb.
    const good = await checkout.deno(["task", "backup", "--json"], env);
    assert.equal(good.code, 0, good.stderr);
    const goodBackup = JSON.parse(good.stdout).name as string;
    // A smaller backup to restore from: a few batches of inserts.
    const small = `${db.schema}.small`;
    await seedMemories(db, small, { memories: SMALL, dims: DIMS, seed: 5 });
    const smallRun = await checkout.deno(["task", "backup", "--json"], {
      ...env,
      MEMORY_TABLE: small,
    });
    assert.equal(smallRun.code, 0, smallRun.stderr);
    const smallBackup = JSON.parse(smallRun.stdout).name as string;
    const goodBackups = [goodBackup, smallBackup].sort();
    const goodExport = await checkout.deno(["task", "export"], env);
    assert.equal(goodExport.code, 0, goodExport.stderr);

    const state = async () => ({
      table: await tableDigest(db, table),
      relationships: sha256(`${dir}/data/relationships.db`),
      backups: tree(`${dir}/backups`),
      exports: tree(`${dir}/exports`),
    });
    const before = await state();
    assert.deepEqual(backupsIn(`${dir}/backups`), goodBackups);

    /** Nothing new that looks like a backup or export; the stores as they were. */
    const assertUnchanged = async (what: string) => {
      const after = await state();
      assert.deepEqual(
        backupsIn(`${dir}/backups`),
        goodBackups,
        `${what}: no new backup under a final name`,
      );
      assert.deepEqual(
        after.backups,
        before.backups,
        `${what}: no partial or temporary files among the backups`,
      );
      assert.deepEqual(
        after.exports,
        before.exports,
        `${what}: the previous export is intact, no partial one beside it`,
      );
      assert.equal(after.table, before.table, `${what}: memory table`);
      assert.equal(
        after.relationships,
        before.relationships,
        `${what}: relationship store`,
      );
    };

    await t.step("the previous backup and export still verify", async () => {
      for (
        const path of [
          ...goodBackups.map((n) => `backups/${n}`),
          "exports/memory",
        ]
      ) {
        const verify = await checkout.deno(["task", "verify", path]);
        assert.equal(verify.code, 0, verify.stdout);
      }
    });

    await embeddedStep(
      t,
      "a file size limit (full disk) stops backup and every export format",
      async () => {
        const cases: [string, number, string, string[], RegExp][] = [
          [
            "backup, export.json over the limit",
            1024,
            "backup",
            [],
            /^Error: Cannot write backup in "\.\/backups": file too large \(size limit reached\)$/,
          ],
          [
            "backup, the relationship snapshot over the limit",
            64,
            "backup",
            [],
            /file too large|size limit|disk is full|is the disk full/i,
          ],
          ...["json", "csv", "markdown"].map((format): [
            string,
            number,
            string,
            string[],
            RegExp,
          ] => [
            `export --format ${format}`,
            1024,
            "export",
            ["--format", format],
            /^Error: Cannot write the export to "\.\/exports\/memory": file too large \(size limit reached\)$/,
          ]),
        ];
        for (const [what, kib, script, args, expected] of cases) {
          const run = await withFileLimit(checkout, kib, script, args, env);
          assertOneLineFailure(run, expected, what);
          await assertUnchanged(what);
        }
      },
    );

    await t.step(
      "a relationship store that cannot be read fails backup and export, naming the file",
      async (t) => {
        const real = await Deno.readFile(`${dir}/data/relationships.db`);
        assert.ok(real.length > 64 * 1024, "a store of many pages");
        const variants: [string, string, () => Promise<void>, RegExp][] = [
          [
            "a file that is not a database",
            "./data/notes.db",
            () =>
              Deno.writeTextFile(
                `${dir}/data/notes.db`,
                "these are my notes, not a database\n".repeat(200),
              ),
            /it is not a SQLite database/,
          ],
          [
            "a truncated database",
            "./data/truncated.db",
            () =>
              Deno.writeFile(
                `${dir}/data/truncated.db`,
                real.slice(0, Math.floor(real.length / 2)),
              ),
            /malformed|corrupt|not a SQLite database/i,
          ],
          [
            "a corrupt database (pages overwritten)",
            "./data/corrupt.db",
            () => {
              const bytes = real.slice();
              bytes.fill(0xa5, 4096, bytes.length - 4096);
              return Deno.writeFile(`${dir}/data/corrupt.db`, bytes);
            },
            /malformed|corrupt|not a SQLite database/i,
          ],
          [
            "a directory in place of the file",
            "./data/folder.db",
            () => Deno.mkdir(`${dir}/data/folder.db`),
            /it is a directory/,
          ],
          [
            "a file without read permission",
            "./data/locked.db",
            async () => {
              await Deno.writeFile(`${dir}/data/locked.db`, real);
              await Deno.chmod(`${dir}/data/locked.db`, 0o000);
            },
            /cannot be opened|permission denied/i,
          ],
        ];
        for (const [name, path, make, reason] of variants) {
          await t.step({
            name,
            // root reads any file whatever its mode
            ignore: name.includes("permission") && Deno.uid() === 0,
            fn: async () => {
              await make();
              const digest = () => {
                try {
                  return sha256(`${dir}/${path}`);
                } catch {
                  return "directory";
                }
              };
              const fileBefore = digest();
              for (const command of ["backup", "export"]) {
                const run = await checkout.deno(["task", command], {
                  ...env,
                  RELATIONSHIPS_DB: path,
                });
                assertOneLineFailure(
                  run,
                  new RegExp(
                    `relationship store "${
                      path.replaceAll(".", "\\.")
                    }": .*${reason.source}`,
                    "i",
                  ),
                  `${command} with ${name}`,
                );
                await assertUnchanged(`${command} with ${name}`);
                assert.equal(digest(), fileBefore, "the bad file is untouched");
              }
            },
          });
        }
      },
    );

    const throughProxy = async (
      fault: ProxyFault,
      args: string[],
      extra: Record<string, string> = {},
    ) => {
      const proxy = startFaultProxy(db.port, fault);
      try {
        const url = db.url.replace(`:${db.port}/`, `:${proxy.port}/`);
        const run = await checkout.deno(args, {
          ...env,
          ...extra,
          DATABASE_URL: url,
        });
        assert.ok(proxy.triggered, "the fault happened mid-stream");
        return { run, port: proxy.port };
      } finally {
        await proxy.close();
      }
    };
    const midStream = {
      armedBy: /declare memkeep_rows|copy \(select/,
      rows: 1000,
    };
    const timeout = {
      code: "57014",
      message: "canceling statement due to statement timeout",
    };

    await t.step(
      "a statement timeout (SQLSTATE 57014) mid-stream fails backup and export",
      async () => {
        for (const command of ["backup", "export"]) {
          const { run } = await throughProxy(
            { kind: "error", ...midStream, ...timeout },
            ["task", command],
          );
          assertOneLineFailure(run, /statement timeout/, command);
          await assertUnchanged(`${command} with a statement timeout`);
        }
      },
    );

    await t.step(
      "a connection dropped mid-stream fails backup and export, naming the server",
      async () => {
        for (const command of ["backup", "export"]) {
          const { run, port } = await throughProxy(
            { kind: "drop", ...midStream },
            ["task", command],
          );
          assertOneLineFailure(
            run,
            new RegExp(
              `Lost the connection to postgresql://.*@127\\.0\\.0\\.1:${port}/`,
            ),
            command,
          );
          await assertUnchanged(`${command} with a dropped connection`);
        }
      },
    );

    await t.step(
      "a restore that loses its connection or times out mid-load changes neither target store",
      async () => {
        const target = `${db.schema}.target`;
        await seedMemories(db, target, { memories: 50, dims: DIMS, seed: 9 });
        seedRelationshipStore(`${dir}/data/target.db`, ids.slice(0, 100), {
          relationships: 40,
          seed: 3,
        });
        const targetEnv = {
          MEMORY_TABLE: target,
          RELATIONSHIPS_DB: "./data/target.db",
        };
        const targetState = async () => ({
          table: await tableDigest(db, target),
          relationships: sha256(`${dir}/data/target.db`),
          files: [...Deno.readDirSync(`${dir}/data`)].map((e) => e.name)
            .filter((n) => !n.startsWith("target.db-")).sort(),
        });
        const targetBefore = await targetState();
        const faults: [string, ProxyFault, RegExp][] = [
          [
            "connection dropped",
            // The second batch, or on a server that takes COPY FROM STDIN,
            // the merge from the staging table after the COPY.
            {
              kind: "drop-on-statement",
              pattern: /insert into|from stdin/i,
              count: 2,
            },
            /Cannot restore into ".*target": Lost the connection to postgresql:\/\//,
          ],
          [
            "statement timeout",
            db.kind === "external"
              ? {
                kind: "error",
                armedBy: /from stdin/i,
                rows: 0,
                at: "complete",
                ...timeout,
              }
              : {
                kind: "error",
                armedBy: /insert into/i,
                rows: 300,
                ...timeout,
              },
            /Cannot restore into ".*target": .*statement timeout/,
          ],
        ];
        for (const [what, fault, expected] of faults) {
          const { run } = await throughProxy(fault, [
            "task",
            "restore",
            "--source",
            `backups/${smallBackup}`,
            "--force",
          ], targetEnv);
          assertOneLineFailure(run, expected, `restore, ${what}`);
          // The server rolls back when the client has gone.
          await new Promise((r) => setTimeout(r, 100));
          assert.deepEqual(await targetState(), targetBefore, what);
          await assertUnchanged(`restore, ${what}`);
        }
        const again = await checkout.deno([
          "task",
          "restore",
          "--source",
          `backups/${smallBackup}`,
          "--force",
          "--json",
        ], { ...env, ...targetEnv });
        assert.equal(again.code, 0, again.stderr);
        assert.equal(
          JSON.parse(again.stdout).memories.restored,
          SMALL,
          "the next restore works",
        );
      },
    );

    await t.step({
      name:
        "a server stopped mid-backup or mid-export fails in one line and leaves nothing",
      ignore: db.kind !== "socket",
      fn: async () => {
        await stopMidStream(checkout, db, "backup", env);
        await assertUnchanged("server stopped mid-backup");
        // The server is gone for good: the export needs one of its own.
        const other = await startWireDatabase();
        try {
          await seedMemories(other, table, { memories: MEMORIES, dims: DIMS });
          const otherTable = await tableDigest(other, table);
          await stopMidStream(checkout, other, "export", env);
          assert.equal(await tableDigest(other, table), otherTable);
          await assertUnchanged("server stopped mid-export");
        } finally {
          await other.close();
        }
      },
    });
  } finally {
    await db.close();
    await checkout.remove();
  }
});

/**
 * Starts a backup or export and stops the database server once its
 * export.json (under a temporary name) grows.
 */
async function stopMidStream(
  checkout: Checkout,
  db: WireDatabase,
  script: "backup" | "export",
  env: Record<string, string>,
): Promise<void> {
  const watched = `${checkout.dir}/${
    script === "backup" ? "backups" : "exports"
  }`;
  const settings = { ...env, DATABASE_URL: db.url };
  const child = new Deno.Command(Deno.execPath(), {
    args: productionArgs(checkout, script, [], settings),
    cwd: checkout.dir,
    env: { ...settings, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = child.output();
  let stopped = false;
  for (let i = 0; i < 5000 && !stopped; i++) {
    const temp = [...Deno.readDirSync(watched)].find((e) =>
      e.name.startsWith(".tmp-")
    );
    if (temp) {
      // A backup writes its temporary directory; an export its work
      // directory's new/.
      const file = script === "backup"
        ? `${watched}/${temp.name}/export.json`
        : `${watched}/${temp.name}/new/export.json`;
      try {
        if (Deno.statSync(file).size > 0) {
          await db.stopServer();
          stopped = true;
        }
      } catch {
        // not created yet
      }
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  const out = await output;
  assert.ok(stopped, `the server was stopped while the ${script} streamed`);
  assertOneLineFailure(
    {
      code: out.code,
      stdout: new TextDecoder().decode(out.stdout),
      stderr: new TextDecoder().decode(out.stderr),
    },
    new RegExp(
      `^Error: Cannot read the memories of [\\w.]+ \\(after \\d+ rows\\): Lost the connection to postgresql://.*@127\\.0\\.0\\.1:${db.port}/`,
    ),
    `${script} with the server stopped`,
  );
}
