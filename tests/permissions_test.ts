/**
 * Least privilege, proven by running each script as its task runs it (the
 * task's command line, with `scripts/grants.ts`'s flags for the settings
 * given) and by reaching outside the grant from inside the script, through a
 * preloaded probe and through the script's own flags.
 *
 * @module
 */

import assert from "node:assert/strict";
import denoJson from "../deno.json" with { type: "json" };
import { grantsFor } from "../scripts/grants.ts";
import { type Checkout, makeCheckout, ownLines } from "./_checkout.ts";
import { seedMemories, startWireDatabase } from "./_db.ts";
import { startFakeGitHub } from "./_fake_github.ts";
import { backupsIn, ROOT } from "./_helpers.ts";
import { zipBackup } from "./_zip.ts";

type Grant = string[] | boolean | undefined;
type PermissionSet = {
  read?: Grant;
  write?: Grant;
  net?: Grant;
  run?: Grant;
  sys?: Grant;
  ffi?: Grant;
  import?: Grant;
  env?: Grant | { allow?: string[]; ignore?: string[] };
};

const SETS = denoJson.permissions as unknown as Record<string, PermissionSet>;
const TASKS = denoJson.tasks as Record<
  string,
  { description: string; command: string }
>;
/** Development tasks, never run on a user's data. */
const DEV_SETS = ["test", "bench"];
const PROBE = "tests/testdata/outside_probe.ts";
const NOT_PERMITTED =
  '(memkeep runs with least privilege; see README "Permissions" for the flag to add)';

/** The permission set of each script: the file name with `-` for `_`. */
function setOf(script: string): string {
  return script.replace("_", "-");
}

Deno.test("no task grants everything, and only schedule may run a program: crontab", () => {
  const scripts = [...Deno.readDirSync(`${ROOT}/scripts`)].map((e) =>
    e.name.replace(/\.ts$/, "")
  ).sort();
  for (const script of scripts) {
    assert.ok(SETS[setOf(script)], `scripts/${script}.ts has a permission set`);
  }
  for (const [name, task] of Object.entries(TASKS)) {
    const tokens = task.command.split(/\s+/);
    assert.deepEqual(
      tokens.filter((t) =>
        t === "-A" || t.startsWith("--allow-") || t.startsWith("--deny-")
      ),
      [],
      `the ${name} task grants only through a permission set`,
    );
    const sets = tokens.filter((t) => t.startsWith("-P=")).map((t) =>
      t.slice(3)
    );
    if (name === "test" || name === "bench") {
      assert.deepEqual(sets, [name]);
      continue;
    }
    if (tokens[1] !== "run") continue; // check, ok: no program of ours
    const script = /scripts\/(\w+)\.ts$/.exec(task.command)?.[1];
    assert.ok(script, `the ${name} task runs a script`);
    const set = setOf(script);
    // The script's own set, and grants.ts asked about that same set.
    assert.deepEqual(
      sets,
      task.command.includes("grants.ts") ? [set, "grants"] : [set],
    );
    const asked = /scripts\/grants\.ts ([\w-]+)\)/.exec(task.command)?.[1];
    if (asked !== undefined) assert.equal(asked, set);
  }
  const broad = (set: PermissionSet) =>
    (Object.entries(set) as [string, unknown][]).filter(([, value]) =>
      value === true ||
      (typeof value === "object" && value !== null && !Array.isArray(value) &&
        (value as { allow?: unknown }).allow === true)
    ).map(([kind]) => kind);
  for (const [name, set] of Object.entries(SETS)) {
    if (DEV_SETS.includes(name)) {
      assert.ok(broad(set).length > 0, `${name} is a broad development set`);
      continue;
    }
    // A restore reads the backup wherever the user keeps it (README
    // "Permissions"); nothing else is granted broadly.
    assert.deepEqual(broad(set), name === "restore" ? ["read"] : [], name);
    assert.deepEqual(
      set.run,
      name === "schedule" ? ["crontab"] : undefined,
      `${name} runs no program${name === "schedule" ? " but crontab" : ""}`,
    );
    for (const kind of ["sys", "ffi", "import"] as const) {
      assert.equal(set[kind], undefined, `${name}: no ${kind}`);
    }
    for (const host of Array.isArray(set.net) ? set.net : []) {
      assert.match(host, /:\d+$/, `${name}: ${host} names its port`);
    }
    for (const path of Array.isArray(set.write) ? set.write : []) {
      assert.doesNotMatch(
        path,
        /^(\.\/?|\/)?$/,
        `${name} may not write the checkout root`,
      );
    }
  }
});

/** The task's command line for a script, as argv after `deno`. */
async function productionArgs(
  checkout: Checkout,
  script: string,
  env: Record<string, string>,
): Promise<string[]> {
  const task = Object.values(TASKS).find((t) =>
    t.command.endsWith(`scripts/${script}.ts`)
  );
  let command = task?.command ??
    // grants.ts has no task: the tasks run it like this.
    `deno run -q -P=grants scripts/grants.ts`;
  const call = /\$\((deno run -q -P=grants scripts\/grants\.ts [\w-]+)\)/
    .exec(command);
  let grants: string[] = [];
  if (call) {
    const run = await checkout.deno(call[1]!.split(" ").slice(1), env);
    assert.equal(run.code, 0, run.stderr);
    grants = run.stdout.trim().split(/\s+/).filter((f) => f !== "");
    command = command.replace(call[0], "GRANTS");
  }
  const tokens = command.split(/\s+/).slice(1).flatMap((t) =>
    t === "GRANTS" ? grants : [t]
  );
  return [...tokens.slice(0, -1), "--preload", PROBE, tokens.at(-1)!];
}

function probeOf(stderr: string): Record<string, string> {
  const line = /^PROBE (.*)$/m.exec(stderr);
  assert.ok(line, `the probe ran: ${stderr}`);
  return JSON.parse(line[1]!);
}

Deno.test("each script, run with exactly its production permissions, is refused everything outside its grant", async (t) => {
  const checkout = await makeCheckout();
  const db = await startWireDatabase();
  const fake = startFakeGitHub();
  const outside = await Deno.makeTempDir({ prefix: "memkeep-outside-" });
  const notGranted = `${outside}/not-granted`;
  try {
    await seedMemories(db, `${db.schema}.memories`, { memories: 12, dims: 4 });
    const wire = {
      DATABASE_URL: db.url,
      MEMORY_TABLE: `${db.schema}.memories`,
    };
    const github = {
      GITHUB_TOKEN: fake.token,
      GITHUB_REPOSITORY: fake.repository,
      GITHUB_API_URL: fake.url,
    };
    let name = "";
    /** What each script does when all is well, and one way it reaches out. */
    const cases: {
      script: string;
      args: () => string[];
      env?: Record<string, string>;
      then?: (run: { stdout: string }) => Promise<void> | void;
      outOfGrant?: {
        args: () => string[];
        env?: Record<string, string>;
        /** Run without the task's grants, as `deno run -P=SET`. */
        bare?: boolean;
        expected: RegExp;
        after?: () => Promise<void>;
      };
    }[] = [
      {
        script: "demo",
        args: () => ["--memories", "6", "--dims", "4", "--relationships", "4"],
        then: () => {
          name = backupsIn(`${checkout.dir}/backups`)[0]!;
        },
        outOfGrant: {
          args: () => ["--output", notGranted],
          expected:
            /^Error: Not permitted: Requires (read|write) access to ".*\/not-granted"/,
        },
      },
      {
        script: "backup",
        args: () => ["--json"],
        env: wire,
        then: (run) => {
          assert.equal(JSON.parse(run.stdout).memory_count, 12);
        },
        outOfGrant: {
          args: () => ["--output", notGranted],
          env: wire,
          expected:
            /^Error: Not permitted: Requires (read|write) access to ".*\/not-granted"/,
        },
      },
      {
        script: "export",
        args: () => ["--format", "csv"],
        env: wire,
        outOfGrant: {
          args: () => ["--output", notGranted],
          env: wire,
          expected:
            /^Error: Not permitted: Requires (read|write) access to ".*\/not-granted"/,
        },
      },
      {
        script: "verify",
        args: () => [`backups/${name}`],
        outOfGrant: {
          args: () => ["/etc"],
          expected: /^Error: Not permitted: Requires read access to "\/etc"/,
        },
      },
      {
        script: "restore",
        args: () => ["--source", `backups/${name}`, "--dry-run"],
        env: wire,
        outOfGrant: {
          // Into the embedded store, a new table, and a relationship store
          // in a directory the task would have granted.
          args: () => [
            "--source",
            `backups/${name}`,
            "--force",
            "--table",
            "restored_outside",
          ],
          env: { RELATIONSHIPS_DB: `${notGranted}/relationships.db` },
          bare: true,
          expected:
            /^Error: Not permitted: Requires (read|write) access to ".*\/not-granted/,
          after: async () => {
            // All or nothing: the memory store is as it was.
            const preview = await checkout.deno([
              "run",
              "-q",
              "-P=restore",
              "scripts/restore.ts",
              "--source",
              `backups/${name}`,
              "--dry-run",
              "--json",
              "--table",
              "restored_outside",
            ]);
            assert.equal(preview.code, 0, preview.stderr);
            const result = JSON.parse(preview.stdout);
            assert.deepEqual(
              [result.creates_table, result.memories.restored],
              [true, 6],
              "the refused restore left no table restored_outside behind",
            );
          },
        },
      },
      {
        script: "prune",
        args: () => ["--json"],
        outOfGrant: {
          args: () => ["--dir", notGranted],
          expected:
            /^Error: Not permitted: Requires read access to ".*\/not-granted"/,
        },
      },
      {
        script: "status",
        args: () => [],
        outOfGrant: {
          args: () => ["--dir", "/etc"],
          expected: /^Error: Not permitted: Requires read access to "\/etc"/,
        },
      },
      {
        script: "publish",
        args: () => [],
        env: {
          GITHUB_OUTPUT: `${outside}/output`,
          GITHUB_STEP_SUMMARY: `${outside}/summary.md`,
        },
        outOfGrant: {
          args: () => [],
          // The runner's files, without the task that grants them.
          env: { GITHUB_OUTPUT: `${notGranted}-output` },
          bare: true,
          expected:
            /^Error: Not permitted: Requires write access to ".*\/not-granted-output"/,
        },
      },
      {
        script: "fetch_artifact",
        args: () => [],
        env: github,
        outOfGrant: {
          args: () => ["--out", notGranted],
          env: github,
          expected:
            /^Error: Not permitted: Requires (read|write) access to ".*\/not-granted"/,
        },
      },
      {
        script: "alert",
        args: () => [],
        env: github,
        then: () => assert.equal(fake.issues.length, 1),
        outOfGrant: {
          // Another API host than api.github.com, without the task's grant.
          args: () => [],
          env: github,
          bare: true,
          expected: new RegExp(
            `^Error: Not permitted: Requires net access to "${fake.host}"`,
          ),
        },
      },
      // Neither reaches outside through its interface: schedule reads no
      // file (--env-file is only written into the crontab line) and runs
      // crontab only for --install/--uninstall; grants prints flags.
      { script: "schedule", args: () => ["--print"] },
      { script: "grants", args: () => ["backup"], env: wire },
    ];
    assert.deepEqual(
      cases.map((c) => c.script).sort(),
      [...Deno.readDirSync(`${ROOT}/scripts`)].map((e) =>
        e.name.replace(/\.ts$/, "")
      ).sort(),
      "every script is probed",
    );

    for (const c of cases) {
      await t.step(c.script, async () => {
        if (c.script === "fetch_artifact") {
          const zip = `${outside}/${name}.zip`;
          await zipBackup(`${checkout.dir}/backups/${name}`, zip);
          fake.add(name, await Deno.readFile(zip));
        }
        const env = c.env ?? {};
        const run = await checkout.deno([
          ...await productionArgs(checkout, c.script, env),
          ...c.args(),
        ], env);
        assert.equal(run.code, 0, run.stderr);
        assert.deepEqual(probeOf(run.stderr), {
          "write a file in the checkout root": "NotCapable",
          "read /etc/hostname": c.script === "restore"
            ? "allowed"
            : "NotCapable",
          "open a socket to 127.0.0.1:9": "NotCapable",
          "read HOME": "NotCapable",
          "run a program": "NotCapable",
        });
        await c.then?.(run);
        const out = c.outOfGrant;
        if (out) {
          const outEnv = out.env ?? {};
          const args = out.bare
            ? ["run", "-q", `-P=${setOf(c.script)}`, `scripts/${c.script}.ts`]
            : (await productionArgs(checkout, c.script, outEnv)).filter((
              a,
              i,
              all,
            ) => a !== "--preload" && all[i - 1] !== "--preload");
          const refused = await checkout.deno(
            [...args, ...out.args()],
            outEnv,
          );
          const lines = ownLines(refused.stderr).filter((l) =>
            !l.startsWith("Warning: ")
          );
          assert.equal(lines.length, 1, refused.stderr);
          assert.match(lines[0]!, out.expected);
          assert.ok(lines[0]!.endsWith(NOT_PERMITTED), lines[0]);
          assert.equal(refused.code, 1, refused.stderr);
          await out.after?.();
        }
        assert.deepEqual(
          [...Deno.readDirSync(outside)].map((e) => e.name).filter((n) =>
            n.startsWith("not-granted")
          ),
          [],
          "nothing was written outside the grant",
        );
        assert.throws(() => Deno.lstatSync(`${checkout.dir}/probe-root.txt`));
      });
    }
  } finally {
    await fake.close();
    await db.close();
    await checkout.remove();
    await Deno.remove(outside, { recursive: true });
  }
});

Deno.test("deno task backup and export are granted read access to the sslrootcert that DATABASE_URL names", async () => {
  const checkout = await makeCheckout();
  const db = await startWireDatabase();
  const outside = await Deno.makeTempDir({ prefix: "memkeep-ca-" });
  try {
    // Any file will do: the server (no TLS) fails the connection first.
    const ca = `${outside}/ca.pem`;
    await Deno.writeTextFile(ca, "-----BEGIN CERTIFICATE-----\n");
    const url = new URL(db.url.replace("127.0.0.1", "localhost"));
    url.searchParams.set("sslmode", "verify-full");
    url.searchParams.set("sslrootcert", ca);
    url.searchParams.set("connect_timeout", "1");
    for (const task of ["backup", "export"]) {
      const run = await checkout.deno(["task", task], {
        DATABASE_URL: url.toString(),
        MEMORY_TABLE: `${db.schema}.memories`,
      });
      const lines = ownLines(run.stderr).filter((l) =>
        !l.startsWith("Warning: ")
      );
      assert.equal(lines.length, 1, run.stderr);
      assert.doesNotMatch(
        lines[0]!,
        /Not permitted/,
        `${task}: README: "sslrootcert=/path/ca.pem [is] honoured"`,
      );
      assert.match(lines[0]!, /^Error: (Cannot connect|Invalid DATABASE_URL)/);
      assert.equal(run.code === 1 || run.code === 2, true);
    }
  } finally {
    await db.close();
    await checkout.remove();
    await Deno.remove(outside, { recursive: true });
  }
});

const SCOPE_PROBE = "tests/testdata/permission_probe_scope.ts";
/** One variable of each script's grant, and others no script is granted. */
const SECRETS_ENV = {
  DATABASE_URL: "postgres://me:pw@127.0.0.1:1/db",
  BACKUP_DIR: "./backups",
  GITHUB_TOKEN: "t0ken",
  AGE_PASSPHRASE: "passphrase",
  AGE_RECIPIENTS: "age1none",
  GITHUB_WORKFLOW: "nightly",
  AWS_SECRET_ACCESS_KEY: "not-for-memkeep",
};

/** What the scope probe must find for a script, from its permission set. */
function expectedScope(script: string): Record<string, string> {
  const set = SETS[setOf(script)]!;
  return {
    "read a system file": set.read === true ? "allowed" : "NotCapable",
    "read the checkout's deno.json": set.read === true
      ? "allowed"
      : "NotCapable",
    "write outside the checkout": "NotCapable",
    "write into the checkout root": "NotCapable",
    "connect to a host not granted": "NotCapable",
    "fetch from a host not granted": "NotCapable",
    "read an environment variable": "NotCapable",
    // Refused, or (with --ignore-env) only the granted variables.
    "read the whole environment": "refused or only the granted variables",
    "run a program": "NotCapable",
    "read system information": "NotCapable",
  };
}

const REQUIRES = {
  "read a system file": /^Requires read access to "\/etc\/hostname"/,
  "read the checkout's deno.json": /^Requires read access to "\.\/deno\.json"/,
  "write outside the checkout":
    /^Requires write access to "\/tmp\/memkeep-probe-outside\.txt"/,
  "write into the checkout root":
    /^Requires write access to "\.\/probe-scope\.txt"/,
  "connect to a host not granted": /^Requires net access to "127\.0\.0\.1:9"/,
  "fetch from a host not granted":
    /^Requires net access to "memkeep-probe\.invalid:8080"/,
  "read an environment variable": /^Requires env access to "HOME"/,
  "read the whole environment": /^Requires env access/,
  "run a program": /^Requires run access to "true"/,
  "read system information": /^Requires sys access to "hostname"/,
} as Record<string, RegExp>;

Deno.test("each script, run with its permission set (-P=NAME), is refused every other file, host, variable, program and system call, and says which", async (t) => {
  const checkout = await makeCheckout();
  try {
    const scripts = [...Deno.readDirSync(`${ROOT}/scripts`)].map((e) =>
      e.name.replace(/\.ts$/, "")
    ).sort();
    const runs = await Promise.all(scripts.map((script) =>
      checkout.deno([
        "run",
        "-q",
        `-P=${setOf(script)}`,
        "--preload",
        SCOPE_PROBE,
        `scripts/${script}.ts`,
        script === "grants" ? "backup" : "--help",
      ], SECRETS_ENV)
    ));
    for (const [i, script] of scripts.entries()) {
      await t.step(script, () => {
        const run = runs[i]!;
        assert.equal(run.code, 0, run.stderr);
        const line = /^PROBE (.*)$/m.exec(run.stderr);
        assert.ok(line, `the probe ran: ${run.stderr}`);
        const probe = JSON.parse(line[1]!) as Record<
          string,
          { name: string; message: string }
        >;
        const env = SETS[setOf(script)]!.env;
        const granted = env === undefined
          ? []
          : Array.isArray(env)
          ? env
          : typeof env === "object" && Array.isArray(env.allow)
          ? env.allow
          : [];
        const found = Object.fromEntries(
          Object.entries(probe).map(([what, o]) => {
            if (what !== "read the whole environment") {
              return [
                what,
                o.name === "NotCapable" || o.name === "allowed"
                  ? o.name
                  : `${o.name}: ${o.message}`,
              ];
            }
            const names = o.message.split(",").filter((n) => n !== "");
            const scoped = o.name === "NotCapable" ||
              (o.name === "allowed" && names.length > 0 &&
                names.every((n) => granted.includes(n)));
            return [
              what,
              scoped
                ? "refused or only the granted variables"
                : `${o.name}: ${o.message}`,
            ];
          }),
        );
        assert.deepEqual(found, expectedScope(script));
        for (const [what, o] of Object.entries(probe)) {
          if (o.name === "NotCapable") assert.match(o.message, REQUIRES[what]!);
        }
      });
    }
    assert.throws(() => Deno.lstatSync("/tmp/memkeep-probe-outside.txt"));
    assert.throws(() => Deno.lstatSync(`${checkout.dir}/probe-scope.txt`));
  } finally {
    await checkout.remove();
  }
});

Deno.test("a setting outside a script's permission set is refused in one line naming the permission, and the task grants it", async (t) => {
  const checkout = await makeCheckout();
  const fake = startFakeGitHub();
  const outside = await Deno.makeTempDir({ prefix: "memkeep-scope-" });
  try {
    const demo = await checkout.deno([
      "task",
      "demo",
      "--memories",
      "6",
      "--dims",
      "4",
      "--relationships",
      "4",
    ]);
    assert.equal(demo.code, 0, demo.stderr);
    const name = backupsIn(`${checkout.dir}/backups`)[0]!;
    await Deno.copyFile(
      `${checkout.dir}/data/relationships.db`,
      `${outside}/relationships.db`,
    );
    await Deno.writeTextFile(`${outside}/key.txt`, "# no key\n");
    const github = {
      GITHUB_TOKEN: fake.token,
      GITHUB_REPOSITORY: fake.repository,
      GITHUB_API_URL: fake.url,
    };
    const database = "postgres://me:pw-not-needed@127.0.0.1:5999/db";
    const cases: [string, string[], Record<string, string>, string][] = [
      [
        "backup",
        [],
        { BACKUP_DIR: `${outside}/backups` },
        `(read|write) access to "${outside}/backups"`,
      ],
      [
        "backup",
        [],
        { RELATIONSHIPS_DB: `${outside}/relationships.db` },
        `read access to "${outside}/relationships.db"`,
      ],
      [
        "export",
        [],
        { RELATIONSHIPS_DB: `${outside}/relationships.db` },
        `read access to "${outside}/relationships.db"`,
      ],
      [
        "export",
        [],
        { DATABASE_URL: database },
        `net access to "127.0.0.1:5999"`,
      ],
      [
        "restore",
        ["--source", `backups/${name}`, "--dry-run"],
        { DATABASE_URL: database },
        `net access to "127.0.0.1:5999"`,
      ],
      [
        "verify",
        [`backups/${name}`],
        { AGE_IDENTITY_FILE: `${outside}/key.txt` },
        `read access to "${outside}/key.txt"`,
      ],
      [
        "publish",
        [],
        { BACKUP_DIR: outside },
        `read access to "${outside}"`,
      ],
      ...["status", "prune"].map((script): [
        string,
        string[],
        Record<string, string>,
        string,
      ] => [script, ["--artifacts"], github, `net access to "${fake.host}"`]),
      ["fetch_artifact", [], github, `net access to "${fake.host}"`],
      ["alert", [], github, `net access to "${fake.host}"`],
    ];
    for (const [script, args, env, missing] of cases) {
      const what = `${[script, ...args].join(" ")} with ${
        Object.keys(env).join(", ")
      }`;
      await t.step(what, async () => {
        const bare = await checkout.deno([
          "run",
          "-q",
          `-P=${setOf(script)}`,
          `scripts/${script}.ts`,
          ...args,
        ], env);
        const lines = ownLines(bare.stderr).filter((l) =>
          !l.startsWith("Warning: ")
        );
        assert.equal(bare.code, 1, bare.stderr);
        assert.equal(lines.length, 1, bare.stderr);
        assert.match(
          lines[0]!,
          new RegExp(
            `^Error: Not permitted: Requires ${
              missing.replaceAll("/", "\\/").replaceAll(".", "\\.")
            } \\(memkeep runs with least privilege; see README "Permissions" for the flag to add\\)$`,
          ),
        );
      });
    }
    await t.step(
      "deno task backup and export get the grants those settings need",
      async () => {
        const backup = await checkout.deno(["task", "backup", "--json"], {
          BACKUP_DIR: `${outside}/backups`,
          RELATIONSHIPS_DB: `${outside}/relationships.db`,
        });
        assert.equal(backup.code, 0, backup.stderr);
        assert.equal(JSON.parse(backup.stdout).relationship_count, 4);
        assert.equal(backupsIn(`${outside}/backups`).length, 1);
        const exported = await checkout.deno(["task", "export", "--json"], {
          RELATIONSHIPS_DB: `${outside}/relationships.db`,
        });
        assert.equal(exported.code, 0, exported.stderr);
      },
    );
  } finally {
    await fake.close();
    await checkout.remove();
    await Deno.remove(outside, { recursive: true });
  }
});

Deno.test("scripts/grants.ts only ever adds scoped grants: a host:port, named paths", () => {
  const envs: Record<string, string>[] = [
    {},
    { DATABASE_URL: "postgres://me:pw@db.example.com/app" },
    { DATABASE_URL: "postgres://me:pw@[::1]:6543/app" },
    { DATABASE_URL: "not a url" },
    { GITHUB_TOKEN: "t", GITHUB_API_URL: "http://127.0.0.1:8080" },
    { GITHUB_TOKEN: "t" },
    {
      BACKUP_DIR: "/srv/backups",
      RELATIONSHIPS_DB: "/srv/memory/relationships.db",
      AGE_IDENTITY_FILE: "/home/me/key.txt",
      GITHUB_OUTPUT: "/runner/output",
      GITHUB_STEP_SUMMARY: "/runner/summary",
    },
    { BACKUP_DIR: "has,comma", RELATIONSHIPS_DB: "has space.db" },
  ];
  for (const set of Object.keys(SETS)) {
    for (const env of envs) {
      for (const flag of grantsFor(set, (name) => env[name])) {
        assert.match(
          flag,
          /^--allow-(net|read|write)=[^\s,]+(,[^\s,]+)*$/,
          `${set} with ${JSON.stringify(env)}: ${flag}`,
        );
        assert.doesNotMatch(flag, /=(\*|\/)(,|$)/, flag);
      }
    }
  }
  // Every task names its permission set, and no set grants everything.
  for (const [name, task] of Object.entries(TASKS)) {
    assert.doesNotMatch(task.command, /(^|\s)(-A|--allow-all|-P)(\s|$)/, name);
    for (const [, set] of task.command.matchAll(/-P=([\w-]+)/g)) {
      assert.ok(SETS[set!], `${name}: -P=${set} exists`);
      assert.ok(!("all" in SETS[set!]!), `${name}: -P=${set} is not allow-all`);
    }
  }
});
