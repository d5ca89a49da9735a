import assert from "node:assert/strict";
import denoJson from "../../deno.json" with { type: "json" };
import {
  CRON_MARKER,
  cronLine,
  entriesIn,
  parseTime,
  type ScheduleOptions,
  systemdUnits,
  withEntry,
  withoutEntry,
} from "../../lib/schedule/schedule.ts";
import { UsageError } from "../../lib/errors.ts";
import { ROOT, shellEnv, withTempDir } from "../_helpers.ts";

const SCRIPT = `${ROOT}/scripts/schedule.ts`;
const OPTIONS: ScheduleOptions = {
  project: "/home/me/memkeep",
  deno: "/usr/local/bin/deno",
};

/** A crontab as people keep them: settings, comments, blank lines, CRLF. */
const OTHERS = [
  "# m h  dom mon dow   command\n",
  "MAILTO=me@example.com\n",
  "\n",
  "*/5 * * * * /usr/bin/env true # memkeep is mentioned but not the marker\n",
  "0 3 * * 1 /home/me/bin/rotate --keep 4\r\n",
  "   # indented comment, trailing spaces   \n",
  "@reboot echo 'café' > /tmp/boot\n",
].join("");

Deno.test("cronLine() runs backup then prune daily at 02:17 from the project, logging to backups/cron.log", () => {
  const d = "'/usr/local/bin/deno' task --env-file='/home/me/memkeep/.env'";
  const log = ">> '/home/me/memkeep/backups/cron.log' 2>&1";
  assert.equal(
    cronLine(OPTIONS),
    "17 2 * * * cd '/home/me/memkeep' && mkdir -p '/home/me/memkeep/backups'" +
      ` && NO_COLOR=1 ${d} backup ${log} && NO_COLOR=1 ${d} prune ${log}` +
      " # memkeep nightly backup",
  );
  assert.match(
    cronLine({ ...OPTIONS, at: { hour: 23, minute: 5 } }),
    /^5 23 \* \* \* cd /,
  );
  assert.ok(
    cronLine({ ...OPTIONS, envFile: "config/nightly.env" }).includes(
      "--env-file='/home/me/memkeep/config/nightly.env' backup",
    ),
    "a relative env file is relative to the project",
  );
});

Deno.test("parseTime() accepts HH:MM and names --at otherwise", async (t) => {
  const valid: [string, number, number][] = [
    ["02:17", 2, 17],
    ["2:17", 2, 17],
    ["00:00", 0, 0],
    ["23:59", 23, 59],
  ];
  for (const [text, hour, minute] of valid) {
    await t.step(`"${text}" is ${hour}:${minute}`, () => {
      assert.deepEqual(parseTime(text), { hour, minute });
    });
  }
  for (const text of ["24:00", "12:60", "2", "2pm", "02:17:00", "-1:10", ""]) {
    await t.step(`"${text}" is refused`, () => {
      assert.throws(() => parseTime(text), (error) => {
        assert.ok(error instanceof UsageError);
        assert.equal(error.setting, "--at");
        assert.equal(
          error.message,
          `Invalid --at "${text}": must be a time of day as HH:MM, from 00:00 to 23:59`,
        );
        return true;
      });
    });
  }
});

Deno.test("cronLine() quotes any path for sh and escapes % for cron: the job runs where it should", async (t) => {
  const names = [
    "my memkeep",
    `it's "quoted"`,
    "$HOME `date` $(id) ; rm -rf x &",
    "100% done",
    "back\\slash \\%d 50\\\\%",
    "tab\there café",
  ];
  for (const name of names) {
    await t.step(JSON.stringify(name), async () => {
      await withTempDir(async (tmp) => {
        const project = `${tmp}/${name}`;
        const bin = `${tmp}/bin ${name}`;
        await Deno.mkdir(project);
        await Deno.mkdir(bin);
        const calls = `${tmp}/calls`;
        const deno = `${bin}/deno`;
        await fakeDeno(deno, calls);
        const line = cronLine({ project, deno, envFile: "my .env" });
        assert.ok(!line.includes("\n"));
        const run = await sh(asCronRuns(line), tmp);
        assert.equal(run.code, 0, run.stderr);
        const lines = (await Deno.readTextFile(calls)).split("\n");
        assert.deepEqual(lines, [
          project,
          "task",
          `--env-file=${project}/my .env`,
          "backup",
          "NO_COLOR=1",
          project,
          "task",
          `--env-file=${project}/my .env`,
          "prune",
          "NO_COLOR=1",
          "",
        ]);
        assert.equal(
          await Deno.readTextFile(`${project}/backups/cron.log`),
          "ran backup\nran prune\n",
          "the output goes to backups/cron.log, created when missing",
        );
      });
    });
  }
  await t.step("prune does not run when the backup fails", async () => {
    await withTempDir(async (tmp) => {
      const deno = `${tmp}/deno`;
      await fakeDeno(deno, `${tmp}/calls`, "backup");
      const run = await sh(asCronRuns(cronLine({ project: tmp, deno })), tmp);
      assert.equal(run.code, 1);
      assert.equal(
        await Deno.readTextFile(`${tmp}/backups/cron.log`),
        "ran backup\n",
      );
    });
  });
});

Deno.test("cronLine() and systemdUnits() refuse a relative path or one with a line break", () => {
  for (
    const [options, expected] of [
      [
        { ...OPTIONS, project: "/tmp/a\nb" },
        /the project directory "\/tmp\/a\\nb" contains a line break/,
      ],
      [
        { ...OPTIONS, envFile: "x\r.env" },
        /the env file ".*x\\r\.env" contains a line break/,
      ],
      [
        { ...OPTIONS, deno: "deno" },
        /the deno executable "deno" is not an absolute path/,
      ],
    ] as const
  ) {
    assert.throws(() => cronLine(options), expected);
    assert.throws(() => systemdUnits(options), expected);
  }
});

Deno.test("withEntry() adds one line, is idempotent and keeps every other line byte for byte", async (t) => {
  const line = cronLine(OPTIONS);
  const cases: [string, string][] = [
    ["no crontab yet", ""],
    ["a crontab ending with a line break", OTHERS],
    [
      "a crontab whose last line has no line break",
      `${OTHERS}30 4 * * * /usr/bin/last-line`,
    ],
    [
      "a crontab with an earlier memkeep line in the middle",
      `${OTHERS.slice(0, 50)}${
        cronLine({ ...OPTIONS, at: { hour: 4, minute: 0 } })
      }\n${OTHERS.slice(50)}`,
    ],
  ];
  for (const [name, crontab] of cases) {
    await t.step(name, () => {
      const once = withEntry(crontab, line);
      assert.equal(withEntry(once, line), once, "idempotent");
      assert.deepEqual(entriesIn(once), [line], "exactly one memkeep line");
      assert.ok(once.endsWith(`\n${line}\n`) || once === `${line}\n`);
      const others = withoutEntry(crontab);
      assert.equal(
        once,
        others === "" || others.endsWith("\n")
          ? `${others}${line}\n`
          : `${others}\n${line}\n`,
        "every other line as it was, in order, then memkeep's",
      );
      assert.ok(once.startsWith(others), "byte for byte");
    });
  }
  await t.step("the last line without a line break gets one", () => {
    const crontab = `${OTHERS}30 4 * * * /usr/bin/last-line`;
    assert.equal(
      withEntry(crontab, line),
      `${crontab}\n${line}\n`,
    );
  });
  await t.step("a line that is not memkeep's is refused", () => {
    assert.throws(
      () => withEntry(OTHERS, "0 1 * * * true"),
      /must be one line ending with "# memkeep nightly backup"/,
    );
    assert.throws(() => withEntry(OTHERS, `true\n${line}`), RangeError);
  });
});

Deno.test("withoutEntry() removes only memkeep's lines and gives back the crontab before withEntry()", async (t) => {
  const line = cronLine(OPTIONS);
  await t.step("back to the original text", () => {
    assert.equal(withoutEntry(withEntry(OTHERS, line)), OTHERS);
    assert.equal(withoutEntry(withEntry("", line)), "");
  });
  await t.step("every memkeep line, wherever it is, and nothing else", () => {
    const crontab = `${line}\n${OTHERS}${line}   \r\n${OTHERS}${line}`;
    assert.equal(withoutEntry(crontab), `${OTHERS}${OTHERS}`);
    assert.equal(entriesIn(crontab).length, 3);
  });
  await t.step("lines that only mention memkeep stay", () => {
    const crontab = `# ${CRON_MARKER} is memkeep's marker\n` +
      `0 1 * * * echo "${CRON_MARKER}" > /tmp/x\n`;
    assert.equal(withoutEntry(crontab), crontab);
  });
  await t.step("a crontab without memkeep's line is returned as is", () => {
    assert.equal(withoutEntry(OTHERS), OTHERS);
    assert.equal(withoutEntry("0 1 * * * x"), "0 1 * * * x");
    assert.equal(withoutEntry(""), "");
  });
});

Deno.test("systemdUnits() gives a oneshot service, backup then prune, and a persistent daily timer", () => {
  const units = systemdUnits(OPTIONS);
  assert.equal(
    units.service,
    [
      "[Unit]",
      "Description=memkeep nightly backup, then prune",
      "",
      "[Service]",
      "Type=oneshot",
      "WorkingDirectory=/home/me/memkeep",
      "Environment=NO_COLOR=1",
      "ExecStart=/usr/local/bin/deno task --env-file=/home/me/memkeep/.env backup",
      "ExecStart=/usr/local/bin/deno task --env-file=/home/me/memkeep/.env prune",
      "",
    ].join("\n"),
  );
  assert.match(units.timer, /^\[Timer\]\nOnCalendar=\*-\*-\* 02:17:00\n/m);
  assert.match(units.timer, /^Persistent=true$/m);
  assert.match(units.timer, /^WantedBy=timers\.target$/m);
  assert.match(
    systemdUnits({ ...OPTIONS, at: { hour: 23, minute: 5 } }).timer,
    /^OnCalendar=\*-\*-\* 23:05:00$/m,
  );
  const odd = systemdUnits({
    project: `/home/me/50% "mem" $HOME \\x`,
    deno: "/opt/deno 2/deno",
  });
  assert.match(
    odd.service,
    /^WorkingDirectory=\/home\/me\/50%% "mem" \$HOME \\x$/m,
  );
  assert.ok(
    odd.service.includes(
      `ExecStart="/opt/deno 2/deno" task "--env-file=/home/me/50%% \\"mem\\" $$HOME \\\\x/.env" backup\n`,
    ),
    odd.service,
  );
});

Deno.test("deno task schedule edits the crontab as a user runs it, with its production permissions", async (t) => {
  const shebang = (await Deno.readTextFile(SCRIPT)).split("\n")[0]!;
  const flags = shebang.split(" ").filter((f) => f.startsWith("--"));
  await t.step(
    "the shebang grants running crontab and reading the env file, nothing else",
    () => {
      assert.equal(
        shebang,
        "#!/usr/bin/env -S deno run -q --no-prompt --allow-read=.env --allow-run=crontab",
      );
    },
  );
  const sets = denoJson.permissions as Record<string, unknown>;
  await t.step({
    name: 'deno.json\'s "schedule" permission set is the same grant',
    ignore: !("schedule" in sets),
    fn: () =>
      assert.deepEqual(sets.schedule, { read: [".env"], run: ["crontab"] }),
  });

  await withTempDir(async (tmp) => {
    const real = await Deno.realPath(tmp);
    // A project directory whose path needs quoting, as the job runs in it.
    const project = `${real}/my "memkeep" it's`;
    const bin = `${real}/bin`;
    const empty = `${real}/empty`;
    const store = `${real}/crontab.txt`;
    const calls = `${real}/crontab-calls`;
    for (const dir of [project, bin, empty]) await Deno.mkdir(dir);
    await fakeCrontab(`${bin}/crontab`, store, calls);
    const line = cronLine({ project, deno: Deno.execPath() });
    const expectedWarnings = Deno.execPath().includes("/_npx/")
      ? [
        `Warning: Deno runs from npx's cache (${Deno.execPath()}): the job stops working if that cache is cleared; install Deno and run this again with it`,
      ]
      : [];

    const schedule = async (
      args: string[],
      { path = bin, env = {} }: {
        path?: string;
        env?: Record<string, string>;
      } = {},
    ) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-q", ...flags, SCRIPT, ...args],
        cwd: project,
        env: { ...shellEnv(), ...env, PATH: path, NO_COLOR: "1" },
        clearEnv: true,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const decode = (b: Uint8Array) => new TextDecoder().decode(b);
      return {
        code: out.code,
        stdout: decode(out.stdout),
        stderr: decode(out.stderr).split("\n").filter((l) => l !== ""),
      };
    };
    const stored = () => Deno.readFile(store);
    const callsMade = async () =>
      (await Deno.readTextFile(calls).catch(() => "")).split("\n").filter((
        l,
      ) => l);

    await t.step(
      "--install into no crontab adds exactly the line",
      async () => {
        const run = await schedule(["--install"]);
        assert.equal(run.code, 0, run.stderr.join("\n"));
        assert.deepEqual(run.stderr, expectedWarnings);
        assert.equal(await Deno.readTextFile(store), `${line}\n`);
        assert.match(
          run.stdout,
          /^Added the nightly job in your crontab: daily at 02:17, backup then prune:\n/,
        );
        assert.ok(run.stdout.includes(`  ${line}\n`));
        assert.ok(
          run.stdout.includes(
            `Settings from ${project}/.env (if it exists); output appended to ${project}/backups/cron.log`,
          ),
        );
        assert.deepEqual(await callsMade(), ["-l", "-"]);
      },
    );

    // Other lines, one of them not UTF-8, one with CRLF.
    const original = new Uint8Array([
      ...new TextEncoder().encode(OTHERS),
      ...[0x23, 0x20, 0xe9, 0x74, 0xe9, 0x0a], // "# été" in Latin-1
      ...new TextEncoder().encode("15 * * * * /usr/bin/hourly\r\n"),
    ]);

    await t.step(
      "--install twice leaves one memkeep line and every other byte as it was",
      async () => {
        await Deno.writeFile(store, original);
        await Deno.remove(calls);
        const first = await schedule(["--install"]);
        assert.equal(first.code, 0, first.stderr.join("\n"));
        const once = await stored();
        const expected = new Uint8Array([
          ...original,
          ...new TextEncoder().encode(`${line}\n`),
        ]);
        assert.deepEqual(once, expected);
        const second = await schedule(["--install"]);
        assert.equal(second.code, 0);
        assert.match(
          second.stdout,
          /^The nightly job is already in your crontab/,
        );
        assert.deepEqual(await stored(), expected);
        assert.deepEqual(
          await callsMade(),
          ["-l", "-", "-l"],
          "nothing to write",
        );
        const later = await schedule(["--install", "--at", "03:45"]);
        assert.equal(later.code, 0);
        assert.match(
          later.stdout,
          /^Replaced the nightly job in your crontab: daily at 03:45/,
        );
        const text = new TextDecoder().decode(await stored());
        assert.equal(
          text.split("\n").filter((l) => l.endsWith(CRON_MARKER)).length,
          1,
        );
        assert.match(text, /\n45 3 \* \* \* cd .* # memkeep nightly backup\n$/);
      },
    );

    await t.step(
      "--uninstall gives back the original crontab, byte for byte",
      async () => {
        const run = await schedule(["--uninstall"]);
        assert.equal(run.code, 0, run.stderr.join("\n"));
        assert.deepEqual(run.stderr, [], "uninstall does not need deno's path");
        assert.deepEqual(await stored(), original);
        assert.ok(
          run.stdout.startsWith(
            "Removed the nightly job from your crontab (1 line):\n  45 3 ",
          ),
          run.stdout,
        );
        const again = await schedule(["--uninstall"]);
        assert.equal(again.code, 0);
        assert.equal(
          again.stdout,
          "No memkeep job in your crontab: nothing to remove\n",
        );
        assert.deepEqual(await stored(), original);
      },
    );

    await t.step("--print prints the line and never runs crontab", async () => {
      const before = await callsMade();
      const run = await schedule(["--print"]);
      assert.equal(run.code, 0);
      assert.equal(run.stdout, `${line}\n`);
      const systemd = await schedule(["--print", "--systemd", "--at", "4:05"]);
      assert.equal(systemd.code, 0);
      assert.match(
        systemd.stdout,
        /^# ~\/\.config\/systemd\/user\/memkeep-backup\.service\n\[Unit\]/,
      );
      assert.match(systemd.stdout, /^OnCalendar=\*-\*-\* 04:05:00$/m);
      assert.match(systemd.stdout, /^Persistent=true$/m);
      assert.match(
        systemd.stdout,
        /systemctl --user enable --now memkeep-backup\.timer/,
      );
      assert.deepEqual(await callsMade(), before);
      assert.deepEqual(await stored(), original);
      const nowhere = await schedule(["--print"], { path: empty });
      assert.equal(nowhere.code, 0, "--print works without crontab");
    });

    await t.step(
      "bad usage exits 2 with one line naming the flag, and changes nothing",
      async () => {
        const before = await callsMade();
        const cases: [string[], string][] = [
          [
            [],
            "Error: Missing the action: choose one of --install, --uninstall or --print",
          ],
          [
            ["--install", "--print"],
            "Error: Cannot use --install and --print together: choose one of --install, --uninstall or --print",
          ],
          [
            ["--install", "--at", "25:00"],
            'Error: Invalid --at "25:00": must be a time of day as HH:MM, from 00:00 to 23:59',
          ],
          [
            ["--print", "--at", "2pm"],
            'Error: Invalid --at "2pm": must be a time of day as HH:MM, from 00:00 to 23:59',
          ],
          [
            ["--install", "--systemd"],
            "Error: Cannot use --systemd with --install: use --print --systemd and install the printed units yourself",
          ],
          [
            ["--uninstall", "--at", "01:00"],
            "Error: Cannot use --at with --uninstall: it removes memkeep's line whatever its settings",
          ],
          [["--install", "--bogus"], "Error: Unknown option '--bogus'"],
        ];
        for (const [args, expected] of cases) {
          const run = await schedule(args);
          assert.equal(
            run.code,
            2,
            `${args.join(" ")}: ${run.stderr.join("\n")}`,
          );
          assert.deepEqual(run.stderr, [expected]);
          assert.equal(run.stdout, "");
        }
        assert.deepEqual(await callsMade(), before);
        assert.deepEqual(await stored(), original);
      },
    );

    await t.step(
      "without crontab on PATH, --install and --uninstall fail in one line that names it and suggests --print or --systemd",
      async () => {
        for (const action of ["--install", "--uninstall"]) {
          const run = await schedule([action], { path: empty });
          assert.equal(run.code, 1);
          assert.deepEqual(run.stderr, [
            ...(action === "--install" ? expectedWarnings : []),
            'Error: Cannot run "crontab": it is not installed or not on PATH; install cron, or schedule the job yourself with --print (crontab line) or --print --systemd (systemd timer)',
          ]);
        }
      },
    );

    await t.step(
      "a crontab that refuses is reported in one line, and nothing is written",
      async () => {
        const run = await schedule(["--install"], {
          env: { FAKE_CRONTAB_DENY: "1" },
        });
        assert.equal(run.code, 1);
        assert.deepEqual(run.stderr, [
          ...expectedWarnings,
          "Error: Cannot read your crontab: crontab -l failed: You (me) are not allowed to use this program (crontab)",
        ]);
        assert.deepEqual(await stored(), original);
      },
    );

    await t.step(
      "with its production permissions it cannot read, write, connect, read the environment or run another program",
      async () => {
        const run = await new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-q",
            ...flags,
            "--preload",
            `${ROOT}/tests/testdata/permission_probe.ts`,
            SCRIPT,
            "--print",
          ],
          cwd: project,
          // `true`, which the probe tries to run, must be found to be refused.
          env: { PATH: `${bin}:/usr/bin:/bin`, NO_COLOR: "1" },
          stdout: "piped",
          stderr: "piped",
        }).output();
        const stderr = new TextDecoder().decode(run.stderr);
        assert.equal(run.code, 0, stderr);
        assert.deepEqual(JSON.parse(/PROBE (.*)/.exec(stderr)![1]!), {
          "write inside the granted directory": "NotCapable",
          "read outside the grant": "NotCapable",
          "open a socket": "NotCapable",
          "read an environment variable": "NotCapable",
          "run a program": "NotCapable",
        });
      },
    );
  });
});

/**
 * A fake `crontab` for one user: `-l` prints the stored file (or "no crontab
 * for me", exit 1, like the real one), `-` stores stdin. Each call is logged.
 * Only shell built-ins and absolute paths: PATH holds nothing else.
 */
async function fakeCrontab(path: string, store: string, calls: string) {
  await Deno.writeTextFile(
    path,
    `#!/bin/sh
echo "$*" >> '${calls}'
if [ -n "$FAKE_CRONTAB_DENY" ]; then
  echo "You (me) are not allowed to use this program (crontab)" >&2
  exit 1
fi
case "$1" in
  -l)
    if [ -f '${store}' ]; then exec /bin/cat '${store}'; fi
    echo "no crontab for me" >&2
    exit 1 ;;
  -) exec /bin/cat > '${store}' ;;
  *) echo "usage: crontab [-l | -]" >&2; exit 2 ;;
esac
`,
  );
  await Deno.chmod(path, 0o755);
}

/**
 * A fake `deno` that records its working directory, arguments and NO_COLOR,
 * prints "ran TASK" and fails for the task named in `failing`.
 */
async function fakeDeno(path: string, calls: string, failing = "") {
  await Deno.writeTextFile(
    path,
    `#!/bin/sh
printf '%s\\n' "$PWD" "$@" "NO_COLOR=$NO_COLOR" >> ${shWord(calls)}
echo "ran $3"
[ "$3" = ${shWord(failing)} ] && exit 1
exit 0
`,
  );
  await Deno.chmod(path, 0o755);
}

function shWord(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/**
 * What cron hands to `sh -c` for a crontab line (Vixie cron and cronie): the
 * text after the five time fields, where `\%` becomes `%` and an unescaped
 * `%` ends the command (the rest would be its stdin: a test failure here).
 */
function asCronRuns(line: string): string {
  const command = /^(?:\S+\s+){5}(.*)$/.exec(line)![1]!;
  let out = "";
  let escaped = false;
  for (const ch of command) {
    if (escaped) {
      out += ch === "%" ? "%" : `\\${ch}`;
      escaped = false;
    } else if (ch === "\\") escaped = true;
    else if (ch === "%") throw new Error(`unescaped % in ${line}`);
    else out += ch;
  }
  return escaped ? `${out}\\` : out;
}

async function sh(command: string, cwd: string) {
  const out = await new Deno.Command("/bin/sh", {
    args: ["-c", command],
    cwd,
    env: { PATH: "/usr/bin:/bin", HOME: cwd },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stderr: new TextDecoder().decode(out.stderr),
  };
}
