/**
 * The launcher's computation: the exact grants each command line gets
 * (lib/cli/grants.ts), the child command line (lib/cli/launcher.ts), and
 * what it refuses to compute.
 *
 * @module
 */

import assert from "node:assert/strict";
import denoJson from "../../deno.json" with { type: "json" };
import { COMMANDS, MEMORY_FLAGS } from "../../lib/cli/commands.ts";
import {
  grantsFor,
  permissionFlags,
  pgliteFiles,
} from "../../lib/cli/grants.ts";
import { childArgs } from "../../lib/cli/launcher.ts";
import { UsageError } from "../../lib/errors.ts";
import { progressLine } from "../../lib/progress.ts";
import { assertRejectsWith, ROOT } from "../_helpers.ts";

/** The permission flags `deno task CMD ARGS` gets with these settings. */
function flags(
  command: string,
  args: string[],
  env: Record<string, string> = {},
  initCwd?: string,
): Record<string, string[]> {
  const argv = childArgs(command, args, (name) => env[name], {
    cwd: ROOT,
    initCwd,
  });
  const out: Record<string, string[]> = {};
  for (const arg of argv) {
    const m = /^--(allow-\w+|ignore-env)=(.*)$/.exec(arg);
    if (m) out[m[1]!] = m[2]!.split(",");
  }
  return out;
}

const PGLITE = pgliteFiles();
const NEON =
  "postgresql://alex:AbC123dEf@ep-cool-darkness-123456.us-east-2.aws.neon.tech/neondb?sslmode=require";

Deno.test("the PGlite packages' own directories are granted, not all of node_modules", () => {
  assert.equal(PGLITE.length, 2);
  for (const dir of PGLITE) {
    assert.match(dir, /^\.\/node_modules\/\.deno\/@electric-sql\+pglite/);
    assert.ok(Deno.statSync(`${ROOT}/${dir}`).isDirectory, dir);
  }
});

Deno.test("each path flag is granted exactly the path given, and nothing else is", async (t) => {
  const cases: {
    line: string;
    env?: Record<string, string>;
    read: string[];
    write: string[];
    net?: string[];
  }[] = [
    {
      line: "backup --output ./my-backups",
      read: [
        ...PGLITE,
        "./data/relationships.db",
        "./data/pglite",
        "./my-backups",
      ],
      write: ["./data/pglite", "./my-backups"],
    },
    {
      line: "backup --no-verify",
      env: { BACKUP_DIR: "/srv/backups", RELATIONSHIPS_DB: "State/rel.db" },
      read: [...PGLITE, "State/rel.db", "./data/pglite", "/srv/backups"],
      write: ["./data/pglite", "/srv/backups"],
    },
    {
      line: "backup",
      env: { DATABASE_URL: NEON, RELATIONSHIPS_DB: "/var/mem/rel.db" },
      read: ["/var/mem/rel.db", "./backups"],
      write: ["./backups"],
      net: ["ep-cool-darkness-123456.us-east-2.aws.neon.tech:5432"],
    },
    {
      line: "backup",
      env: {
        DATABASE_URL:
          "postgres://u:p@db.example.com:6543/m?sslmode=verify-full&sslrootcert=/etc/ca%20me.pem",
      },
      read: ["/etc/ca me.pem", "./data/relationships.db", "./backups"],
      write: ["./backups"],
      net: ["db.example.com:6543"],
    },
    {
      line: "export --format markdown --output ./archive",
      read: [
        ...PGLITE,
        "./data/relationships.db",
        "./data/pglite",
        "./archive",
        "./.tmp-archive",
      ],
      write: ["./data/pglite", "./archive", "./.tmp-archive"],
    },
    {
      line: "export --output /home/me/My Exports/ü/",
      env: { DATABASE_URL: "postgres://u:p@127.0.0.1:5999/m" },
      read: [
        "./data/relationships.db",
        "/home/me/My Exports/ü/",
        "/home/me/My Exports/.tmp-ü",
      ],
      write: ["/home/me/My Exports/ü/", "/home/me/My Exports/.tmp-ü"],
      net: ["127.0.0.1:5999"],
    },
    {
      line: "verify /srv/backups/memory_20261202_040257",
      env: { AGE_IDENTITY_FILE: "/home/me/key.txt" },
      read: ["/srv/backups/memory_20261202_040257", "/home/me/key.txt"],
      write: [],
    },
    {
      line:
        "restore --source /home/me/Downloads/memory_20261202_040257.zip --dry-run",
      read: [
        ...PGLITE,
        "/home/me/Downloads/memory_20261202_040257.zip",
        "./data/pglite",
        "./data",
      ],
      write: ["./data/pglite", "./data"],
    },
    {
      line: "restore --source B --dry-run",
      env: { DATABASE_URL: NEON, RELATIONSHIPS_DB: "rel.db" },
      // A store in the project's root: its files only, never the root.
      read: [
        "B",
        "rel.db",
        "rel.db.memkeep-restoring",
        "rel.db.memkeep-restore",
      ],
      write: ["rel.db", "rel.db.memkeep-restoring", "rel.db.memkeep-restore"],
      net: ["ep-cool-darkness-123456.us-east-2.aws.neon.tech:5432"],
    },
    {
      line: "prune --dir /srv/backups --dry-run",
      read: ["/srv/backups"],
      write: ["/srv/backups"],
    },
    {
      line: "prune --artifacts",
      env: { GITHUB_API_URL: "http://127.0.0.1:8080" },
      read: [],
      write: [],
      net: ["127.0.0.1:8080"],
    },
    { line: "status --dir /srv/backups", read: ["/srv/backups"], write: [] },
    {
      line: "status --artifacts",
      read: [],
      write: [],
      net: ["api.github.com:443"],
    },
    {
      line: "fetch-artifact latest --out /tmp/dl",
      read: ["/tmp/dl"],
      write: ["/tmp/dl"],
      net: [
        "api.github.com:443",
        "*.blob.core.windows.net:443",
        "*.actions.githubusercontent.com:443",
      ],
    },
    {
      line: "publish --backup /srv/backups/memory_20261202_040257",
      env: { GITHUB_OUTPUT: "/runner/out", GITHUB_STEP_SUMMARY: "/runner/sum" },
      read: [
        "./backups",
        "/srv/backups/memory_20261202_040257",
        "./artifacts",
        "/runner/out",
        "/runner/sum",
      ],
      write: ["./artifacts", "/runner/out", "/runner/sum"],
    },
    { line: "alert", read: [], write: [], net: ["api.github.com:443"] },
    {
      line: "schedule --print --env-file /etc/memkeep.env",
      read: ["/etc/memkeep.env"],
      write: [],
    },
  ];
  for (const c of cases) {
    await t.step(c.line, () => {
      // Split on spaces, keeping the one path with spaces whole.
      const args = c.line.includes("My Exports")
        ? ["--output", "/home/me/My Exports/ü/"]
        : c.line.split(" ").slice(1);
      const got = flags(c.line.split(" ")[0]!, args, c.env);
      assert.deepEqual(got["allow-read"] ?? [], c.read);
      assert.deepEqual(got["allow-write"] ?? [], c.write);
      assert.deepEqual(got["allow-net"] ?? [], c.net ?? []);
    });
  }
});

Deno.test("the child runs the script with the memory flags (data commands only), no prompts, and the arguments as typed", () => {
  const argv = childArgs(
    "backup",
    ["--output", "./my backups", "--json"],
    () => undefined,
    { cwd: ROOT },
  );
  assert.deepEqual(argv.slice(0, 4), [
    "run",
    "-q",
    "--no-prompt",
    MEMORY_FLAGS,
  ]);
  assert.deepEqual(argv.slice(-4), [
    "scripts/backup.ts",
    "--output",
    "./my backups",
    "--json",
  ]);
  const prune = childArgs("prune", [], () => undefined, { cwd: ROOT });
  assert.ok(!prune.includes(MEMORY_FLAGS));
  // MEMORY_FLAGS is the one place the V8 flags are written.
  const tasks = Object.values(denoJson.tasks).map((t) => t.command).join("\n");
  assert.doesNotMatch(tasks, /--v8-flags/);
  for (const entry of Deno.readDirSync(`${ROOT}/scripts`)) {
    const first = Deno.readTextFileSync(`${ROOT}/scripts/${entry.name}`)
      .split("\n")[0]!;
    assert.doesNotMatch(first, /--v8-flags/, entry.name);
  }
});

Deno.test("paths typed in a subdirectory are taken from there (INIT_CWD), the defaults stay the project's", () => {
  const sub = `${ROOT}/notes`;
  const argv = childArgs(
    "verify",
    ["../backups/memory_20261202_040257", "--json"],
    () => undefined,
    { cwd: ROOT, initCwd: sub },
  );
  assert.deepEqual(argv.slice(-3), [
    "scripts/verify.ts",
    `${ROOT}/backups/memory_20261202_040257`,
    "--json",
  ]);
  assert.deepEqual(
    flags(
      "export",
      ["--output=out", "--format", "csv"],
      {},
      sub,
    )["allow-write"],
    ["./data/pglite", `${sub}/out`, `${sub}/.tmp-out`],
  );
  assert.deepEqual(
    flags("backup", ["--output", "/abs"], {}, sub)["allow-write"],
    ["./data/pglite", "/abs"],
  );
  // From the project directory itself, nothing is rewritten.
  const same = childArgs("backup", ["--output", "./b"], () => undefined, {
    cwd: ROOT,
    initCwd: ROOT,
  });
  assert.equal(same.at(-1), "./b");
});

Deno.test("a command line the launcher cannot compute grants for is refused with one line naming the flag or setting", async (t) => {
  const cases: [string, string[], Record<string, string>, RegExp][] = [
    ["backup", ["--bogus"], {}, /^Unknown option '--bogus'/],
    ["backup", ["--output"], {}, /^Option '--output <value>' argument missing/],
    ["backup", ["extra"], {}, /^Unexpected argument "extra"/],
    ["verify", ["a", "b"], {}, /^Unexpected argument "b"/],
    [
      "frobnicate",
      [],
      {},
      /^Unknown command "frobnicate": expected one of demo, backup/,
    ],
    [
      "backup",
      [],
      { DATABASE_URL: "not a url" },
      /^Invalid DATABASE_URL: not a URL/,
    ],
    [
      "backup",
      [],
      { DATABASE_URL: "mysql://u:hunter2hunter2@h/db" },
      /^Invalid DATABASE_URL: scheme "mysql"/,
    ],
    [
      "backup",
      ["--output", "  "],
      {},
      /^Invalid --output " {2}": must not be empty/,
    ],
    ["export", ["--output", ""], {}, /^Invalid --output: it is empty/],
    [
      "restore",
      ["--source", "a,b"],
      {},
      /^Cannot grant access to "a,b": Deno's permission flags cannot name a path with a comma/,
    ],
    [
      "status",
      ["--artifacts"],
      { GITHUB_API_URL: "ftp://x" },
      /^Invalid GITHUB_API_URL "ftp:\/\/x"/,
    ],
  ];
  for (const [command, args, env, expected] of cases) {
    await t.step(
      `${command} ${args.join(" ")} ${JSON.stringify(env)}`,
      async () => {
        const error = await assertRejectsWith(
          () =>
            Promise.resolve(
              childArgs(command, args, (n) => env[n], { cwd: ROOT }),
            ),
          UsageError,
          expected,
        );
        assert.ok(!error.message.includes("hunter2hunter2"));
        assert.ok(!error.message.includes("\n"));
      },
    );
  }
});

Deno.test("--help needs no grant: the child gets none", () => {
  for (const command of Object.keys(COMMANDS)) {
    const argv = childArgs(command, ["--help"], () => "postgres://u:p@h/d", {
      cwd: ROOT,
    });
    assert.deepEqual(argv.filter((a) => a.startsWith("--allow-")), [], command);
  }
});

Deno.test("grants are only ever scoped: named paths and host:port, never the root or everything", () => {
  const envs: Record<string, string>[] = [
    {},
    { DATABASE_URL: "postgres://me:pw@db.example.com/app" },
    { DATABASE_URL: "postgres://me:pw@[::1]:6543/app" },
    { GITHUB_API_URL: "http://127.0.0.1:8080" },
    {
      BACKUP_DIR: "/srv/backups",
      RELATIONSHIPS_DB: "/srv/memory/relationships.db",
      AGE_IDENTITY_FILE: "/home/me/key.txt",
      GITHUB_OUTPUT: "/runner/output",
      GITHUB_STEP_SUMMARY: "/runner/summary",
    },
    { RELATIONSHIPS_DB: "/relationships.db", BACKUP_DIR: "has space" },
  ];
  for (const command of Object.keys(COMMANDS) as (keyof typeof COMMANDS)[]) {
    for (const env of envs) {
      const grants = grantsFor(
        { command, values: {}, positionals: [] },
        (n) => env[n],
      );
      for (const flag of permissionFlags(grants)) {
        assert.match(
          flag,
          /^--(allow-(net|read|write|env|run)|ignore-env)=[^,]+(,[^,]+)*$/,
        );
        assert.doesNotMatch(
          flag,
          /=(\*|\/|\.|\.\/)(,|$)/,
          `${command}: ${flag}`,
        );
        assert.doesNotMatch(
          flag,
          /,(\*|\/|\.|\.\/)(,|$)/,
          `${command}: ${flag}`,
        );
      }
    }
  }
});

Deno.test("progress shows done / total, percent, rate and time left, each once it can be known", () => {
  assert.equal(progressLine({ what: "connecting" }, 0), "connecting");
  assert.equal(
    progressLine({ what: "memories", done: 1000, total: 38664 }, 100),
    "memories 1,000 / 38,664 · 2%",
  );
  assert.equal(
    progressLine(
      { what: "memories", done: 13000, total: 38664, bytes: 250e6 },
      4000,
    ),
    "memories 13,000 / 38,664 · 33% · 63 MB/s · 8 s left",
  );
  assert.equal(
    progressLine({ what: "records", done: 5000 }, 2000),
    "records 5,000 · 2,500/s",
  );
  assert.equal(
    progressLine({ what: "memories", done: 100, total: 38664 }, 1000),
    "memories 100 / 38,664 · 0% · 100/s · 6 min 26 s left",
  );
});
