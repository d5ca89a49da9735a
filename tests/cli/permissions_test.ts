/**
 * Least privilege, proven: every task runs its command through the launcher,
 * which grants exactly what the command line needs; each command, run with
 * those grants, works on the paths it was given and is refused a sibling of
 * each, the checkout root, and every other file, host, variable and program
 * (a preloaded probe reaches for each from inside the script).
 *
 * @module
 */

import assert from "node:assert/strict";
import denoJson from "../../deno.json" with { type: "json" };
import { type CommandName, COMMANDS } from "../../lib/cli/commands.ts";
import { grantsFor } from "../../lib/cli/grants.ts";
import { childArgs, LAUNCHER_ENV } from "../../lib/cli/launcher.ts";
import { type Checkout, makeCheckout, ownLines } from "../_checkout.ts";
import { seedMemories, startWireDatabase, WIRE_LEG } from "../_db.ts";
import { startFakeGitHub } from "../_fake_github.ts";
import { backupsIn, ROOT } from "../_helpers.ts";
import { zipBackup } from "../_zip.ts";

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
/** The demo store, as small as it can be. */
const TINY_DEMO = ["--memories", "6", "--dims", "4", "--relationships", "4"];
const NOT_PERMITTED =
  '(memkeep runs with least privilege; see README "Permissions" for the flag to add)';

/** The scripts, by file name without `.ts`. */
const SCRIPTS = [...Deno.readDirSync(`${ROOT}/scripts`)].map((e) =>
  e.name.replace(/\.ts$/, "")
).sort();

/** The permission set of a script: its command's name; the launcher's for run.ts. */
function setOf(script: string): string {
  return script === "run" ? "launcher" : script.replace("_", "-");
}

/** The command-line flags equivalent to a permission set in deno.json. */
function flagsOf(set: PermissionSet): string[] {
  const flags: string[] = [];
  const list = (name: string, value: Grant) => {
    if (value === true) flags.push(`--allow-${name}`);
    else if (Array.isArray(value) && value.length > 0) {
      flags.push(`--allow-${name}=${value.join(",")}`);
    }
  };
  list("read", set.read);
  list("write", set.write);
  list("net", set.net);
  list("run", set.run);
  if (Array.isArray(set.env)) list("env", set.env);
  else if (typeof set.env === "object") {
    list("env", set.env.allow);
    if (set.env.ignore?.length) {
      flags.push(`--ignore-env=${set.env.ignore.join(",")}`);
    }
  }
  return flags.sort();
}

Deno.test(
  "every command's task runs it through the launcher, and no task or set grants everything",
  { ignore: WIRE_LEG },
  () => {
    for (const name of Object.keys(COMMANDS)) {
      assert.equal(
        TASKS[name]?.command,
        `deno run -q --no-prompt -P=launcher scripts/run.ts ${name}`,
        `the ${name} task`,
      );
    }
    for (const script of SCRIPTS) {
      assert.ok(
        SETS[setOf(script)],
        `scripts/${script}.ts has a permission set`,
      );
    }
    for (const [name, task] of Object.entries(TASKS)) {
      assert.deepEqual(
        task.command.split(/\s+/).filter((t) =>
          t === "-A" || t.startsWith("--allow-") || t.startsWith("--deny-")
        ),
        [],
        `the ${name} task grants only through a permission set`,
      );
    }
    const broad = (set: PermissionSet) =>
      (Object.entries(set) as [string, unknown][]).filter(([, value]) =>
        value === true ||
        (typeof value === "object" && value !== null && !Array.isArray(value) &&
          (value as { allow?: unknown }).allow === true)
      ).map(([kind]) => kind);
    for (const [name, set] of Object.entries(SETS)) {
      if (DEV_SETS.includes(name)) continue;
      // The launcher runs Deno itself (whose path is known only once it
      // runs): README "Permissions".
      assert.deepEqual(broad(set), name === "launcher" ? ["run"] : [], name);
      if (name !== "launcher") {
        assert.deepEqual(
          set.run,
          name === "schedule" ? ["crontab"] : undefined,
          `${name} runs no program${name === "schedule" ? " but crontab" : ""}`,
        );
      }
      for (const kind of ["sys", "ffi", "import"] as const) {
        assert.equal(set[kind], undefined, `${name}: no ${kind}`);
      }
      for (const host of Array.isArray(set.net) ? set.net : []) {
        assert.match(host, /:\d+$/, `${name}: ${host} names its port`);
      }
      for (
        const path of [set.read, set.write].flatMap((p) =>
          Array.isArray(p) ? p : []
        )
      ) {
        assert.doesNotMatch(
          path,
          /^(\.\/?|\/)?$/,
          `${name} may not touch the checkout root`,
        );
        assert.notEqual(
          path,
          "./node_modules",
          `${name}: not all of node_modules`,
        );
      }
    }
  },
);

Deno.test(
  "each script's permission set and shebang are what the launcher grants its command with the default settings",
  { ignore: WIRE_LEG },
  async (t) => {
    for (const script of SCRIPTS) {
      await t.step(script, () => {
        const set = SETS[setOf(script)]!;
        const first = Deno.readTextFileSync(`${ROOT}/scripts/${script}.ts`)
          .split("\n")[0]!;
        assert.match(first, /^#!\/usr\/bin\/env -S deno run -q --no-prompt /);
        assert.deepEqual(
          first.split(" ").filter((f) =>
            f.startsWith("--allow-") || f.startsWith("--ignore-env")
          ).sort(),
          flagsOf(set),
        );
        const command = setOf(script);
        if (!(command in COMMANDS)) return; // the launcher and grants.ts
        const grants = grantsFor(
          { command: command as CommandName, values: {}, positionals: [] },
          () => undefined,
        );
        const env = Array.isArray(set.env)
          ? { allow: set.env, ignore: [] }
          : typeof set.env === "object"
          ? { allow: set.env.allow ?? [], ignore: set.env.ignore ?? [] }
          : { allow: [], ignore: [] };
        assert.deepEqual(
          {
            read: set.read ?? [],
            write: set.write ?? [],
            net: set.net ?? [],
            env: env.allow,
            ignoreEnv: env.ignore,
            run: set.run ?? [],
          },
          { ...grants },
        );
      });
    }
    assert.deepEqual(SETS.launcher!.env, [...LAUNCHER_ENV]);
    assert.deepEqual(SETS.grants!.env, [...LAUNCHER_ENV]);
  },
);

/**
 * A probe, preloaded into a script, that reaches for `beside` (a sibling of
 * a path the command was given) and for everything no command is granted,
 * and prints the outcomes as `PROBE {...}`.
 */
async function writeProbe(
  checkout: Checkout,
  beside: string[],
): Promise<string> {
  const path = `tests/testdata/.probe-${crypto.randomUUID()}.ts`;
  const attempts = [
    ...beside.flatMap((p) => [
      [`read ${p}`, `() => Deno.readTextFile(${JSON.stringify(p)})`],
      [`write ${p}`, `() => Deno.writeTextFile(${JSON.stringify(p)}, "x")`],
    ]),
    [
      "write the checkout root",
      `() => Deno.writeTextFile("./probe-root.txt", "x")`,
    ],
    ["read the checkout's deno.json", `() => Deno.readTextFile("./deno.json")`],
    ["read /etc/hostname", `() => Deno.readTextFile("/etc/hostname")`],
    [
      "open a socket to 127.0.0.1:9",
      `async () => (await Deno.connect({ hostname: "127.0.0.1", port: 9 })).close()`,
    ],
    ["read HOME", `() => Promise.resolve(Deno.env.get("HOME"))`],
    ["run a program", `() => new Deno.Command("true").output()`],
  ];
  await Deno.writeTextFile(
    `${checkout.dir}/${path}`,
    `import { reportProbe } from "./_probe_report.ts";\nawait reportProbe({\n${
      attempts.map(([what, fn]) => `  ${JSON.stringify(what)}: ${fn},`).join(
        "\n",
      )
    }\n});\n`,
  );
  return path;
}

function probeOf(stderr: string): Record<string, string> {
  const line = /^PROBE (.*)$/m.exec(stderr);
  assert.ok(line, `the probe ran: ${stderr}`);
  return JSON.parse(line[1]!);
}

/** Runs a command line as its task would, with a probe preloaded into the script. */
async function runProbed(
  checkout: Checkout,
  command: string,
  args: string[],
  env: Record<string, string>,
  probe: string,
) {
  const argv = childArgs(command, args, (n) => env[n], { cwd: checkout.dir });
  const script = argv.indexOf(COMMANDS[command as CommandName].script);
  return await checkout.deno(
    [...argv.slice(0, script), "--preload", probe, ...argv.slice(script)],
    env,
  );
}

Deno.test("each command, run with the grants its command line gets, works on the paths given (outside the project, with spaces and non-ASCII) and is refused a sibling of each and everything else", async (t) => {
  const checkout = await makeCheckout();
  const db = await startWireDatabase();
  const fake = startFakeGitHub();
  const outside = await Deno.makeTempDir({ prefix: "memkeep-outside ü " });
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
    const backups = `${outside}/my backups`;
    let name = "";
    const cases: {
      command: string;
      args: () => string[];
      env?: Record<string, string>;
      /** The paths given, whose siblings the probe reaches for. */
      given: () => string[];
      then?: (run: { stdout: string }) => Promise<void> | void;
    }[] = [
      {
        command: "demo",
        args: () => [...TINY_DEMO, "--output", `${outside}/démo`],
        given: () => [`${outside}/démo`],
        then: () => assert.equal(backupsIn(`${outside}/démo`).length, 1),
      },
      {
        command: "backup",
        args: () => ["--output", backups, "--json"],
        env: wire,
        given: () => [backups],
        then: (run) => {
          assert.equal(JSON.parse(run.stdout).memory_count, 12);
          name = backupsIn(backups)[0]!;
        },
      },
      {
        command: "export",
        args: () => ["--format", "csv", "--output", `${outside}/analysis`],
        env: wire,
        given: () => [`${outside}/analysis`],
        then: () => {
          assert.ok(Deno.statSync(`${outside}/analysis/memories.csv`).isFile);
        },
      },
      {
        command: "verify",
        args: () => [`${backups}/${name}`],
        given: () => [`${backups}/${name}`],
      },
      {
        command: "snapshots",
        args: () => ["--repo", `${outside}/repo dir`, "--json"],
        given: () => [`${outside}/repo dir`],
        then: (run) =>
          assert.equal(JSON.parse(run.stdout).snapshots[0].memory_count, 12),
      },
      {
        command: "restore",
        args: () => [
          "--source",
          `${outside}/zips/${name}.zip`,
          "--dry-run",
          "--json",
        ],
        env: wire,
        given: () => [`${outside}/zips/${name}.zip`],
        then: (run) =>
          assert.equal(JSON.parse(run.stdout).memories.skipped, 12),
      },
      {
        command: "prune",
        args: () => ["--dir", backups, "--dry-run"],
        given: () => [backups],
      },
      {
        command: "status",
        args: () => ["--dir", backups],
        given: () => [backups],
      },
      {
        command: "publish",
        args: () => ["--backup", `${backups}/${name}`],
        env: {
          GITHUB_OUTPUT: `${outside}/output`,
          GITHUB_STEP_SUMMARY: `${outside}/summary.md`,
        },
        given: () => [`${backups}/${name}`, `${outside}/output`],
      },
      {
        command: "fetch-artifact",
        args: () => ["--out", `${outside}/downloads`],
        env: github,
        given: () => [`${outside}/downloads`],
        then: () =>
          assert.ok(Deno.statSync(`${outside}/downloads/${name}.zip`).isFile),
      },
      {
        command: "alert",
        args: () => [],
        env: github,
        given: () => [],
        then: () => assert.equal(fake.issues.length, 1),
      },
      {
        command: "schedule",
        args: () => ["--print", "--env-file", `${outside}/memkeep env`],
        given: () => [`${outside}/memkeep env`],
      },
    ];
    assert.deepEqual(
      cases.map((c) => c.command).sort(),
      Object.keys(COMMANDS).sort(),
      "every command is probed",
    );
    await Deno.writeTextFile(
      `${outside}/memkeep env`,
      "BACKUP_DIR=./backups\n",
    );
    for (const c of cases) {
      await t.step(`${c.command} ${c.args().join(" ")}`, async () => {
        if (c.command === "snapshots") {
          const made = await checkout.deno([
            "task",
            "backup",
            "--repo",
            `${outside}/repo dir`,
          ], wire);
          assert.equal(made.code, 0, made.stderr);
        }
        if (c.command === "restore") {
          await Deno.mkdir(`${outside}/zips`);
          await zipBackup(`${backups}/${name}`, `${outside}/zips/${name}.zip`);
        }
        if (c.command === "fetch-artifact") {
          fake.add(name, await Deno.readFile(`${outside}/zips/${name}.zip`));
        }
        const siblings = c.given().map((p) =>
          `${p.replace(/\/+$/, "")}-sibling`
        );
        const probe = await writeProbe(checkout, siblings);
        const env = c.env ?? {};
        const run = await runProbed(checkout, c.command, c.args(), env, probe);
        assert.equal(run.code, 0, run.stderr);
        const expected: Record<string, string> = {};
        for (const s of siblings) {
          expected[`read ${s}`] = "NotCapable";
          expected[`write ${s}`] = "NotCapable";
        }
        assert.deepEqual(probeOf(run.stderr), {
          ...expected,
          "write the checkout root": "NotCapable",
          "read the checkout's deno.json": "NotCapable",
          "read /etc/hostname": "NotCapable",
          "open a socket to 127.0.0.1:9": "NotCapable",
          "read HOME": "NotCapable",
          "run a program": "NotCapable",
        });
        await c.then?.(run);
        for (const s of siblings) assert.throws(() => Deno.lstatSync(s));
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

Deno.test("the launcher reads only the settings that name places and hosts, no secret, no file, no host", async () => {
  const checkout = await makeCheckout();
  try {
    const secrets = {
      DATABASE_URL: "postgres://me:Pw-launcher-s3cret@127.0.0.1:1/db",
      PGPASSWORD: "Pg-launcher-s3cret",
      GITHUB_TOKEN: "ghs_launcher_s3cret",
      AGE_PASSPHRASE: "age-launcher-s3cret",
      AGE_RECIPIENTS: "age1none",
    };
    const probe = `tests/testdata/.launcher-probe.ts`;
    await Deno.writeTextFile(
      `${checkout.dir}/${probe}`,
      `import { reportProbe } from "./_probe_report.ts";
await reportProbe({
  "read PGPASSWORD": () => Promise.resolve(Deno.env.get("PGPASSWORD")),
  "read GITHUB_TOKEN": () => Promise.resolve(Deno.env.get("GITHUB_TOKEN")),
  "read AGE_PASSPHRASE": () => Promise.resolve(Deno.env.get("AGE_PASSPHRASE")),
  "read deno.json": () => Deno.readTextFile("./deno.json"),
  "write a file": () => Deno.writeTextFile("./probe-root.txt", "x"),
  "open a socket": async () => (await Deno.connect({ hostname: "127.0.0.1", port: 9 })).close(),
});
`,
    );
    const run = await checkout.deno([
      "run",
      "-q",
      "-P=launcher",
      "--preload",
      probe,
      "scripts/run.ts",
      "backup",
      "--json",
    ], secrets);
    assert.deepEqual(probeOf(run.stderr), {
      "read PGPASSWORD": "NotCapable",
      "read GITHUB_TOKEN": "NotCapable",
      "read AGE_PASSPHRASE": "NotCapable",
      "read deno.json": "NotCapable",
      "write a file": "NotCapable",
      "open a socket": "NotCapable",
    });
    // The backup itself fails to connect (port 1), in one line, without
    // any secret.
    assert.equal(run.code, 1, run.stderr);
    for (
      const secret of [
        "Pw-launcher-s3cret",
        "Pg-launcher-s3cret",
        "ghs_launcher_s3cret",
        "age-launcher-s3cret",
      ]
    ) {
      assert.ok(
        !run.stdout.includes(secret) && !run.stderr.includes(secret),
        secret,
      );
    }
  } finally {
    await checkout.remove();
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

Deno.test(
  "each script, run with its permission set (-P=NAME), is refused every other file, host, variable, program and system call, and says which",
  { ignore: WIRE_LEG },
  async (t) => {
    const checkout = await makeCheckout();
    try {
      const runs = await Promise.all(SCRIPTS.map((script) =>
        checkout.deno([
          "run",
          "-q",
          `-P=${setOf(script)}`,
          "--preload",
          SCOPE_PROBE,
          `scripts/${script}.ts`,
          "--help",
        ], SECRETS_ENV)
      ));
      for (const [i, script] of SCRIPTS.entries()) {
        await t.step(script, () => {
          const run = runs[i]!;
          assert.equal(run.code, 0, run.stderr);
          const line = /^PROBE (.*)$/m.exec(run.stderr);
          assert.ok(line, `the probe ran: ${run.stderr}`);
          const probe = JSON.parse(line[1]!) as Record<
            string,
            { name: string; message: string }
          >;
          const set = SETS[setOf(script)]!;
          const env = set.env;
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
                (o.name === "allowed" &&
                  names.every((n) => granted.includes(n)));
              return [
                what,
                scoped
                  ? "refused or only the granted variables"
                  : `${o.name}: ${o.message}`,
              ];
            }),
          );
          assert.deepEqual(found, {
            "read a system file": "NotCapable",
            "read the checkout's deno.json": "NotCapable",
            "write outside the checkout": "NotCapable",
            "write into the checkout root": "NotCapable",
            "connect to a host not granted": "NotCapable",
            "fetch from a host not granted": "NotCapable",
            "read an environment variable": "NotCapable",
            "read the whole environment":
              "refused or only the granted variables",
            // Only the launcher runs a program that is not crontab: Deno.
            "run a program": script === "run" ? "allowed" : "NotCapable",
            "read system information": "NotCapable",
          });
          for (const [what, o] of Object.entries(probe)) {
            if (o.name === "NotCapable") {
              assert.match(o.message, REQUIRES[what]!);
            }
          }
        });
      }
      assert.throws(() => Deno.lstatSync("/tmp/memkeep-probe-outside.txt"));
      assert.throws(() => Deno.lstatSync(`${checkout.dir}/probe-scope.txt`));
    } finally {
      await checkout.remove();
    }
  },
);

Deno.test("a script run bare with its permission set is refused a setting outside it in one line naming the permission, and its task grants it", async (t) => {
  const checkout = await makeCheckout();
  const fake = startFakeGitHub();
  const outside = await Deno.makeTempDir({ prefix: "memkeep-scope-" });
  try {
    const demo = await checkout.deno(["task", "demo", ...TINY_DEMO]);
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
        {},
        `read access to "backups/${name}"`,
      ],
      [
        "verify",
        [`backups/${name}`],
        {},
        `read access to "backups/${name}"`,
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
        assert.ok(lines[0]!.endsWith(NOT_PERMITTED));
      });
    }
    await t.step(
      "deno task backup, export, verify and restore get the grants those settings and paths need",
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
        const verified = await checkout.deno([
          "task",
          "verify",
          `backups/${name}`,
        ]);
        assert.equal(verified.code, 0, verified.stderr);
        const previewed = await checkout.deno([
          "task",
          "restore",
          "--source",
          `backups/${name}`,
          "--dry-run",
        ]);
        assert.equal(previewed.code, 0, previewed.stderr);
      },
    );
  } finally {
    await fake.close();
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
