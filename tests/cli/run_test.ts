/**
 * The launcher as a user meets it: every form the README and a new user
 * type, run with `deno task …` in a checkout, with the files, counts and
 * exit code each should give; bad command lines; Ctrl-C; progress on a
 * terminal.
 *
 * @module
 */

import assert from "node:assert/strict";
import { COMMANDS } from "../../lib/cli/commands.ts";
import { METADATA_FILE, TEMP_PREFIX } from "../../lib/format/layout.ts";
import {
  type Checkout,
  makeCheckout,
  onTerminal,
  ownLines,
} from "../_checkout.ts";
import {
  embeddedStep,
  seedMemories,
  startWireDatabase,
  WIRE_LEG,
} from "../_db.ts";
import { startFaultProxy } from "../_fault_server.ts";
import { backupsIn, shellEnv } from "../_helpers.ts";
import { zipBackup } from "../_zip.ts";

const MEMORIES = 60;
const RELATIONSHIPS = 20;

function metadataOf(dir: string): Record<string, unknown> {
  return JSON.parse(Deno.readTextFileSync(`${dir}/${METADATA_FILE}`));
}

/** Every entry under a directory, recursively, for "nothing was created". */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, prefix: string) => {
    for (const e of Deno.readDirSync(d)) {
      if (e.name === "node_modules") continue;
      out.push(`${prefix}${e.name}`);
      if (e.isDirectory) walk(`${d}/${e.name}`, `${prefix}${e.name}/`);
    }
  };
  walk(dir, "");
  return out.sort();
}

Deno.test("the forms a user types work, with the files where they asked, the counts and exit code 0", async (t) => {
  const checkout = await makeCheckout();
  const db = await startWireDatabase();
  const outside = await Deno.makeTempDir({ prefix: "memkeep-elsewhere " });
  const task = (args: string[], env: Record<string, string> = {}) =>
    checkout.deno(["task", ...args], env);
  const at = (path: string) => `${checkout.dir}/${path}`;
  try {
    const demo = await task([
      "demo",
      "--memories",
      String(MEMORIES),
      "--dims",
      "8",
      "--relationships",
      String(RELATIONSHIPS),
    ]);
    assert.equal(demo.code, 0, demo.stderr);
    const first = `backups/${backupsIn(at("backups"))[0]}`;

    const forms: {
      args: string[];
      env?: Record<string, string>;
      check: (run: { stdout: string; stderr: string }) => void;
    }[] = [
      {
        args: ["export", "--format", "json", "--output", "./my-export"],
        check: () => {
          const m = metadataOf(at("my-export"));
          assert.equal(m.memory_count, MEMORIES);
          assert.equal(m.includes_vectors, true);
          assert.ok(Deno.statSync(at("my-export/export.json")).size > 0);
          assert.ok(Deno.statSync(at("my-export/relationships.db")).isFile);
        },
      },
      {
        args: ["backup", "--output", "./my-backups"],
        check: (run) => {
          const names = backupsIn(at("my-backups"));
          assert.equal(names.length, 1);
          assert.equal(
            metadataOf(at(`my-backups/${names[0]}`)).memory_count,
            MEMORIES,
          );
          assert.match(run.stdout, /, verified, combined SHA-256 /);
        },
      },
      {
        args: ["export", "--format", "markdown", "--output", "./archive"],
        check: () => {
          assert.match(
            Deno.readTextFileSync(at("archive/memories.md")),
            /^# /m,
          );
          assert.equal(metadataOf(at("archive")).memory_count, MEMORIES);
        },
      },
      {
        args: ["export", "--no-vectors", "--output", "./lightweight-backup"],
        check: () => {
          const m = metadataOf(at("lightweight-backup"));
          assert.equal(m.includes_vectors, false);
          assert.equal(m.memory_count, MEMORIES);
        },
      },
      {
        args: ["export", "--format", "csv", "--output", "./analysis"],
        check: () => {
          assert.ok(Deno.statSync(at("analysis/memories.csv")).size > 0);
          assert.ok(Deno.statSync(at("analysis/relationships.csv")).size > 0);
          assert.equal(
            metadataOf(at("analysis")).relationship_count,
            RELATIONSHIPS,
          );
        },
      },
      {
        args: ["export", "--format", "json", "--verify"],
        check: (run) => {
          assert.match(run.stdout, /to \.\/exports\/memory\n.*, verified$/m);
          assert.equal(metadataOf(at("exports/memory")).memory_count, MEMORIES);
        },
      },
      {
        args: ["backup", "--no-verify"],
        check: (run) => {
          assert.match(run.stdout, /not verified \(--no-verify\)/);
          assert.equal(backupsIn(at("backups")).length, 2);
        },
      },
      {
        args: ["restore", "--source", first, "--dry-run"],
        check: (run) => {
          assert.match(run.stdout, /^\[DRY RUN COMPLETE\] Restore preview$/m);
          assert.match(
            run.stdout,
            new RegExp(`Skipped: ${MEMORIES} \\(duplicates\\)`),
          );
        },
      },
      {
        // An absolute path outside the project, with a space and non-ASCII.
        args: ["backup", "--output", `${outside}/säkerhetskopior`],
        check: () => {
          assert.equal(backupsIn(`${outside}/säkerhetskopior`).length, 1);
        },
      },
      {
        args: ["verify", `${outside}/säkerhetskopior/${"NAME"}`],
        check: (run) => {
          assert.match(
            run.stdout,
            new RegExp(
              `Backup is valid: ${MEMORIES} memories, ${RELATIONSHIPS} relationships\\.`,
            ),
          );
        },
      },
      {
        args: ["prune", "--dir", `${outside}/säkerhetskopior`, "--dry-run"],
        check: (run) =>
          assert.match(run.stdout, /^Would delete 0 backup\(s\), kept 1\.$/m),
      },
      {
        args: ["status", "--dir", `${outside}/säkerhetskopior`],
        check: (run) => assert.match(run.stdout, /: OK$/m),
      },
      {
        // A zip in another directory.
        args: [
          "restore",
          "--source",
          `${outside}/zips/backup.zip`,
          "--dry-run",
          "--json",
        ],
        check: (run) => {
          assert.equal(JSON.parse(run.stdout).memories.skipped, MEMORIES);
        },
      },
      {
        // Over the wire: the database host is granted, nothing else.
        args: ["restore", "--source", first, "--dry-run", "--json"],
        env: { DATABASE_URL: db.url, MEMORY_TABLE: `${db.schema}.restored` },
        check: (run) => {
          const result = JSON.parse(run.stdout);
          assert.equal(result.creates_table, true);
          assert.equal(result.memories.restored, MEMORIES);
        },
      },
      {
        args: ["schedule", "--print", "--env-file", `${outside}/memkeep.env`],
        check: (run) => {
          assert.ok(
            run.stdout.includes(`--env-file='${outside}/memkeep.env' backup`),
            run.stdout,
          );
        },
      },
    ];
    for (const form of forms) {
      await t.step(`deno task ${form.args.join(" ")}`, async () => {
        if (form.args[0] === "verify") {
          const name = backupsIn(`${outside}/säkerhetskopior`)[0]!;
          form.args[1] = `${outside}/säkerhetskopior/${name}`;
          await Deno.mkdir(`${outside}/zips`);
          await zipBackup(form.args[1], `${outside}/zips/backup.zip`);
        }
        if (form.args[0] === "schedule") {
          await Deno.writeTextFile(
            `${outside}/memkeep.env`,
            "BACKUP_DIR=./backups\n",
          );
        }
        const run = await task(form.args, form.env);
        assert.equal(run.code, 0, run.stderr);
        assert.deepEqual(
          ownLines(run.stderr).filter((l) => !l.startsWith("Warning: ")),
          [],
        );
        form.check(run);
      });
    }

    await t.step(
      "the design card's form: deno run -A scripts/restore.ts --source DIR --dry-run",
      async () => {
        const run = await checkout.deno([
          "run",
          "-A",
          "scripts/restore.ts",
          "--source",
          first,
          "--dry-run",
        ]);
        assert.equal(run.code, 0, run.stderr);
        assert.match(run.stdout, /Nothing was written \(dry run\)\./);
      },
    );

    await t.step(
      "from a subdirectory, paths are taken from where they are typed",
      async () => {
        await Deno.mkdir(at("notes"));
        const base = shellEnv();
        const inSub = (args: string[]) =>
          new Deno.Command(Deno.execPath(), {
            args: ["task", ...args],
            cwd: at("notes"),
            env: { ...base, NO_COLOR: "1" },
            clearEnv: true,
            stdout: "piped",
            stderr: "piped",
          }).output();
        const verify = await inSub(["verify", `../${first}`]);
        assert.equal(verify.code, 0, new TextDecoder().decode(verify.stderr));
        const exported = await inSub([
          "export",
          "--format",
          "csv",
          "--output",
          "out",
        ]);
        assert.equal(
          exported.code,
          0,
          new TextDecoder().decode(exported.stderr),
        );
        assert.ok(Deno.statSync(at("notes/out/memories.csv")).isFile);
      },
    );

    await embeddedStep(
      t,
      "deno task CMD --help works for every command",
      async () => {
        for (const command of [...Object.keys(COMMANDS), "grants"]) {
          const run = await task([command, "--help"]);
          assert.equal(run.code, 0, `${command}: ${run.stderr}`);
          assert.match(
            run.stdout,
            new RegExp(`^Usage: deno task ${command}\\b`),
            command,
          );
        }
      },
    );

    await embeddedStep(
      t,
      "bad input: one line naming the flag or path, exit 2, nothing created",
      async () => {
        await Deno.writeTextFile(at("afile"), "not a directory\n");
        const cases: [string[], RegExp][] = [
          [["backup", "--bogus"], /^Error: Unknown option '--bogus'/],
          [
            ["export", "--output"],
            /^Error: Option '--output <value>' argument missing/,
          ],
          [
            ["backup", "--output", "afile"],
            /^Error: Invalid --output "afile": it is a file, not a directory$/,
          ],
          [
            ["export", "--output", "afile"],
            /^Error: Cannot export to "afile": it is a file, not a directory$/,
          ],
          [
            ["demo", "--output", "afile"],
            /^Error: Invalid --output "afile": it is a file, not a directory$/,
          ],
          [
            ["verify", "afile"],
            /^Error: Invalid DIR "afile": it is a file, not a directory$/,
          ],
          [
            ["prune", "--dir", "afile"],
            /^Error: Invalid --dir "afile": it is a file, not a directory$/,
          ],
          [
            ["status", "--dir", "afile"],
            /^Error: Invalid --dir "afile": it is a file, not a directory$/,
          ],
          [
            ["publish", "--backup", "afile"],
            /^Error: Invalid --backup "afile": it is a file, not a directory$/,
          ],
          [
            ["schedule", "--print", "--env-file", "backups"],
            /^Error: Invalid --env-file ".*\/backups": it is a directory, not a file of settings$/,
          ],
          [
            ["restore", "--source", "a,b", "--dry-run"],
            /^Error: Cannot grant access to "a,b": Deno's permission flags cannot name a path with a comma/,
          ],
          [["backup"], /^Error: Invalid DATABASE_URL: not a URL/],
        ];
        for (const [args, expected] of cases) {
          const before = tree(checkout.dir);
          const run = await task(
            args,
            args.length === 1 ? { DATABASE_URL: "not a url" } : {},
          );
          assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
          const lines = ownLines(run.stderr);
          assert.equal(lines.length, 1, run.stderr);
          assert.match(lines[0]!, expected);
          assert.deepEqual(
            tree(checkout.dir),
            before,
            `${args.join(" ")} created nothing`,
          );
        }
      },
    );
  } finally {
    await db.close();
    await checkout.remove();
    await Deno.remove(outside, { recursive: true });
  }
});

/** Bytes in a directory's files (0 once it is gone). */
function treeSize(dir: string): number {
  let total = 0;
  try {
    for (const e of Deno.readDirSync(dir)) {
      total += e.isDirectory
        ? treeSize(`${dir}/${e.name}`)
        : Deno.statSync(`${dir}/${e.name}`).size;
    }
  } catch {
    // removed meanwhile
  }
  return total;
}

/** Starts a backup through a proxy that stalls mid-stream, on a terminal. */
async function stalledOnTerminal(
  checkout: Checkout,
  command: "backup" | "export",
  args: string[],
) {
  const db = await startWireDatabase();
  const table = `${db.schema}.memories`;
  await seedMemories(db, table, { memories: 3000, dims: 16 });
  const proxy = startFaultProxy(db.port, {
    kind: "stall",
    armedBy: /declare memkeep_rows|copy \(select/,
    rows: 2500,
  });
  const env = {
    DATABASE_URL: db.url.replace(`:${db.port}/`, `:${proxy.port}/`),
    MEMORY_TABLE: table,
  };
  const terminal = onTerminal(
    checkout,
    [JSON.stringify(Deno.execPath()), "task", command, ...args].join(" "),
    env,
  );
  return {
    terminal,
    proxy,
    async close() {
      await proxy.close();
      await db.close();
    },
    /** The settings without the proxy. */
    direct: { DATABASE_URL: db.url, MEMORY_TABLE: table },
  };
}

Deno.test(
  "Ctrl-C on a terminal stops a backup or export at once: exit 130, one line, no temporary files, the next run works",
  { ignore: WIRE_LEG },
  async (t) => {
    const checkout = await makeCheckout();
    try {
      for (const command of ["backup", "export"] as const) {
        await t.step(command, async () => {
          const dir = command === "backup" ? "backups" : "exports";
          const run = await stalledOnTerminal(checkout, command, []);
          try {
            for (let i = 0; i < 3000 && !run.proxy.triggered; i++) {
              await new Promise((r) => setTimeout(r, 10));
            }
            assert.ok(run.proxy.triggered, "the stream stalled mid-way");
            const temps = () =>
              [...Deno.readDirSync(`${checkout.dir}/${dir}`)].filter((e) =>
                e.name.startsWith(TEMP_PREFIX)
              ).map((e) => e.name);
            assert.equal(temps().length, 1, "work in progress");
            // The stall is at the proxy; memkeep is still writing what it
            // got (a COPY arrives all at once): wait until it waits.
            const written = () =>
              treeSize(`${checkout.dir}/${dir}/${temps()[0]}`);
            for (let last = -1, now = written(); now === 0 || now !== last;) {
              await new Promise((r) => setTimeout(r, 200));
              [last, now] = [now, written()];
            }
            await run.terminal.type("\x03");
            const { code, screen } = await run.terminal.done;
            assert.equal(code, 130, screen);
            assert.match(
              screen,
              /Error: Interrupted \(SIGINT\): stopped before finishing; nothing half-done is left behind/,
            );
            // Progress was shown on the terminal, with done / total and percent.
            assert.match(screen, /\[2Kmemories [\d,]+ \/ 3,000 · \d+%/);
            assert.deepEqual(temps(), []);
            assert.deepEqual(backupsIn(`${checkout.dir}/${dir}`), []);
            assert.throws(() =>
              Deno.statSync(`${checkout.dir}/exports/memory`)
            );
            if (command === "backup") {
              assert.match(
                Deno.readTextFileSync(`${checkout.dir}/backups/backup.log`),
                /FAILED - error="interrupted"\n$/,
              );
            }
            // The next run works, and takes the lock without a warning.
            const next = await checkout.deno(
              ["task", command, "--json"],
              run.direct,
            );
            assert.equal(next.code, 0, next.stderr);
            assert.equal(JSON.parse(next.stdout).memory_count, 3000);
            assert.doesNotMatch(next.stderr, /took over the lock/);
          } finally {
            await run.close();
          }
        });
      }
    } finally {
      await checkout.remove();
    }
  },
);

Deno.test("progress on a terminal is one line, cleared at the end; none with --json or without a terminal", async () => {
  const checkout = await makeCheckout();
  const db = await startWireDatabase();
  try {
    const table = `${db.schema}.memories`;
    await seedMemories(db, table, { memories: 3000, dims: 16 });
    const env = { DATABASE_URL: db.url, MEMORY_TABLE: table };
    const deno = JSON.stringify(Deno.execPath());
    const shown = onTerminal(checkout, `${deno} task backup`, env);
    const { code, screen } = await shown.done;
    assert.equal(code, 0, screen);
    assert.match(screen, /\[2Kmemories [\d,]+ \/ 3,000 · \d+%/);
    // Cleared before the result is printed.
    assert.match(screen, /\[2K✓ Backed up 3,000 memories/);
    const json = onTerminal(checkout, `${deno} task backup --json`, env);
    const quiet = await json.done;
    assert.equal(quiet.code, 0, quiet.screen);
    assert.doesNotMatch(quiet.screen, /memories [\d,]+ \//);
    assert.doesNotMatch(quiet.screen, /\[2K/);
    const piped = await checkout.deno(["task", "backup"], env);
    assert.equal(piped.code, 0, piped.stderr);
    assert.doesNotMatch(piped.stderr, /memories [\d,]+ \/|\r/);
  } finally {
    await db.close();
    await checkout.remove();
  }
});
