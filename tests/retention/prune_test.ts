import { LOCK_FILE } from "../../lib/util/lock.ts";
import assert from "node:assert/strict";
import { backup } from "../../lib/backup/backup.ts";
import {
  backupName,
  EXPORT_FILE,
  parseBackupName,
} from "../../lib/format/layout.ts";
import { pruneArtifacts, pruneBackups } from "../../lib/retention/prune.ts";
import {
  DEFAULT_POLICY,
  type RetentionPolicy,
} from "../../lib/retention/policy.ts";
import { makeCheckout, ownLines } from "../_checkout.ts";
import { openEmbeddedStore, seedMemories } from "../_db.ts";
import { type FakeGitHub, startFakeGitHub } from "../_fake_github.ts";
import { configFrom, copyDir, withTempDir } from "../_helpers.ts";

const DAY = 86_400_000;
const HOUR = 3_600_000;
/** A Friday; its ISO week starts on Monday 2024-03-11. */
const NOW = new Date("2024-03-15T03:00:00Z");
const NOW_FLAG = NOW.toISOString();

/** The nightly backup taken `days` days before the one at 02:00 on NOW's day. */
function daily(days: number): string {
  return backupName(new Date(Date.UTC(2024, 2, 15, 2) - days * DAY));
}

const NEWEST = daily(0); // memory_20240315_020000
const DAILIES = Array.from({ length: 90 }, (_, i) => daily(i));
/** Names that are not backups, though some look close. */
const ODD = ["memory_20240132_020000", "notes", "memory_x"];
/** A link named like an old backup, pointing outside the backup directory. */
const LINK = "memory_20231201_020000";
/** A regular file named like a backup. */
const FILE = "memory_20231110_020000";
/** Temporary directories of killed backups, named as backup() names them. */
const STALE_TEMP = ".tmp-memory_20240313_020000-4242";
const FRESH_TEMP = ".tmp-memory_20240315_020500-4343";

/**
 * What the default policy keeps of DAILIES as of NOW: every backup of the last
 * 7 × 24 h (03-09 to 03-15), and the newest (Sunday's) of each of the 4 ISO
 * weeks before the week of 03-11.
 */
const KEPT_DEFAULT = [
  ...Array.from({ length: 7 }, (_, i) => daily(i)),
  "memory_20240303_020000",
  "memory_20240225_020000",
  "memory_20240218_020000",
];

const CASES: { name: string; policy: RetentionPolicy; kept: string[] }[] = [
  {
    name: "the default policy keeps 7 dailies and the newest of 4 ISO weeks",
    policy: DEFAULT_POLICY,
    kept: KEPT_DEFAULT,
  },
  {
    name: "2 months more keep the newest of February (29th) and January",
    policy: { daily: 7, weekly: 4, monthly: 2 },
    kept: [...KEPT_DEFAULT, "memory_20240229_020000", "memory_20240131_020000"],
  },
  {
    name: "a policy keeping nothing still keeps the newest backup",
    policy: { daily: 0, weekly: 0, monthly: 0 },
    kept: [NEWEST],
  },
];

/** Makes one real, valid backup named NEWEST in `work/made`. */
async function makeRealBackup(work: string): Promise<string> {
  const store = await openEmbeddedStore(`${work}/pglite`);
  await seedMemories(store, "public.memories", { memories: 6, dims: 4 });
  await store.close();
  const config = configFrom({ BACKUP_DIR: `${work}/made` });
  const result = await backup({
    config: { ...config, store: { kind: "pglite", dataDir: `${work}/pglite` } },
    now: () => new Date(Date.UTC(2024, 2, 15, 2)),
    onWarning: () => {},
  });
  assert.equal(result.name, NEWEST);
  return result.path;
}

/**
 * Fills `dir` with 90 nightly backups (only the newest a real one), odd
 * names, a link to `outside` and two temporary directories of killed runs.
 */
async function populate(
  dir: string,
  real: string,
  outside: string,
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await copyDir(real, `${dir}/${NEWEST}`);
  for (const name of [...DAILIES.slice(1), ...ODD]) {
    await Deno.mkdir(`${dir}/${name}`);
  }
  await Deno.symlink(outside, `${dir}/${LINK}`);
  await Deno.writeTextFile(`${dir}/${FILE}`, "not a directory");
  for (
    const [name, age] of [[STALE_TEMP, 2 * DAY], [FRESH_TEMP, HOUR]] as const
  ) {
    await Deno.mkdir(`${dir}/${name}`);
    const mtime = new Date(NOW.getTime() - age);
    await Deno.utime(`${dir}/${name}`, mtime, mtime);
  }
}

async function makeOutside(work: string): Promise<string> {
  const outside = `${work}/outside`;
  await Deno.mkdir(outside, { recursive: true });
  await Deno.writeTextFile(`${outside}/keep.txt`, "precious");
  return outside;
}

function listing(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
    n !== LOCK_FILE
  ).sort();
}

/** What the directory holds after pruning with `kept` backups kept. */
function after(kept: string[]): string[] {
  return [...kept, ...ODD, LINK, FILE, FRESH_TEMP].sort();
}

function before(): string[] {
  return [...DAILIES, ...ODD, LINK, FILE, STALE_TEMP, FRESH_TEMP].sort();
}

/** Changes the case of one letter of a file: same size, still valid JSON. */
async function tamper(path: string): Promise<void> {
  const bytes = await Deno.readFile(path);
  const at = bytes.findIndex((b, i) =>
    i > bytes.length / 2 && b >= 0x61 && b <= 0x7a
  );
  bytes[at] = bytes[at]! ^ 0x20;
  await Deno.writeFile(path, bytes);
}

Deno.test("pruneBackups() deletes exactly what the policy does not keep, and never odd names, links or fresh temporaries", async (t) => {
  await withTempDir(async (work) => {
    const real = await makeRealBackup(work);
    const outside = await makeOutside(work);
    let n = 0;
    for (const c of CASES) {
      await t.step(c.name, async () => {
        const dir = `${work}/case-${n++}`;
        await populate(dir, real, outside);
        const deleted = DAILIES.filter((d) => !c.kept.includes(d)).sort();
        const options = { policy: c.policy, now: NOW, force: false };

        const dry = await pruneBackups(dir, { ...options, dryRun: true });
        assert.deepEqual(listing(dir), before(), "a dry run deletes nothing");
        assert.equal(dry.refused, undefined);
        assert.ok(dry.verification?.ok, "the newest backup was verified");
        assert.deepEqual([...dry.deleted].sort(), deleted);
        assert.deepEqual(dry.removedTemps, [STALE_TEMP]);

        const wet = await pruneBackups(dir, { ...options, dryRun: false });
        assert.deepEqual(
          wet.decisions,
          dry.decisions,
          "the dry run reported the same decisions",
        );
        assert.deepEqual([...wet.deleted].sort(), deleted);
        assert.deepEqual(wet.removedTemps, [STALE_TEMP]);
        assert.deepEqual(
          wet.decisions.filter((d) => d.keep).map((d) => d.name).sort(),
          [...c.kept, ...ODD.filter((o) => o.startsWith("memory_")), LINK]
            .sort(),
        );
        assert.deepEqual(listing(dir), after(c.kept));
        assert.equal(
          await Deno.readTextFile(`${dir}/${LINK}/keep.txt`),
          "precious",
          "the link's target survives",
        );
        assert.deepEqual(
          wet.decisions.find((d) => d.name === LINK)?.reasons,
          ["a link: never touched"],
        );
        for (const name of ODD.filter((o) => o.startsWith("memory_"))) {
          assert.deepEqual(
            wet.decisions.find((d) => d.name === name)?.reasons,
            ["not a backup name"],
          );
        }
      });
    }
  });
});

Deno.test("pruneBackups() deletes nothing when the newest backup fails verification, unless forced", async () => {
  await withTempDir(async (work) => {
    const real = await makeRealBackup(work);
    const outside = await makeOutside(work);
    const dir = `${work}/backups`;
    await populate(dir, real, outside);
    await tamper(`${dir}/${NEWEST}/${EXPORT_FILE}`);
    const options = { policy: DEFAULT_POLICY, now: NOW, dryRun: false };

    const refused = await pruneBackups(dir, { ...options, force: false });
    assert.match(
      refused.refused ?? "",
      /^the newest backup memory_20240315_020000 failed verification \(export\.json: checksum mismatch: .+\); nothing was deleted \(pass --force to prune anyway\)$/,
    );
    assert.equal(refused.verification?.ok, false);
    assert.deepEqual(refused.deleted, []);
    assert.deepEqual(refused.removedTemps, []);
    assert.ok(refused.decisions.every((d) => d.keep));
    assert.deepEqual(listing(dir), before());

    const forced = await pruneBackups(dir, { ...options, force: true });
    assert.equal(forced.refused, undefined);
    assert.equal(forced.deleted.length, 80);
    assert.deepEqual(listing(dir), after(KEPT_DEFAULT));
  });
});

Deno.test("pruneBackups() removes only the stale temporaries of backups, not other .tmp- directories", async () => {
  await withTempDir(async (dir) => {
    const twoDaysAgo = new Date(NOW.getTime() - 2 * DAY);
    for (const name of [STALE_TEMP, ".tmp-notes"]) {
      await Deno.mkdir(`${dir}/${name}`);
      await Deno.writeTextFile(`${dir}/${name}/file.txt`, "text");
      await Deno.utime(`${dir}/${name}`, twoDaysAgo, twoDaysAgo);
    }
    const outcome = await pruneBackups(dir, {
      policy: DEFAULT_POLICY,
      now: NOW,
      dryRun: false,
      force: false,
    });
    assert.deepEqual(outcome.removedTemps, [STALE_TEMP]);
    assert.deepEqual(listing(dir), [".tmp-notes"]);
  });
});

Deno.test("deno task prune prunes ./backups with its production permissions", async (t) => {
  const checkout = await makeCheckout();
  try {
    const work = `${checkout.dir}/work`;
    const real = await makeRealBackup(work);
    const outside = await makeOutside(work);
    const dir = `${checkout.dir}/backups`;
    await populate(dir, real, outside);
    const prune = (...args: string[]) =>
      checkout.deno(["task", "prune", ...args]);

    await t.step(
      "bad usage exits 2 with one line naming the flag",
      async () => {
        const cases: [string[], RegExp][] = [
          [["--now", "2024-13-45"], /^Error: Invalid --now "2024-13-45"/],
          [["--now", "yesterday"], /^Error: Invalid --now "yesterday"/],
          [["--keep-weekly", "-1"], /--keep-weekly/],
          [["--keep-weekly=-1"], /^Error: Invalid --keep-weekly "-1"/],
          [["--keep-daily", "1.5"], /^Error: Invalid --keep-daily "1\.5"/],
          [["--bogus"], /--bogus/],
        ];
        for (const [args, expected] of cases) {
          // A later flag wins: the bad value is the one parsed.
          const run = await prune("--now", NOW_FLAG, ...args);
          assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
          const lines = ownLines(run.stderr);
          assert.equal(lines.length, 1, run.stderr);
          assert.match(lines[0]!, expected);
        }
        assert.deepEqual(listing(dir), before());
      },
    );

    await t.step(
      "a dry run prints a keep or delete line per backup and deletes nothing",
      async () => {
        const run = await prune("--now", NOW_FLAG, "--dry-run");
        assert.equal(run.code, 0, run.stderr);
        assert.deepEqual(ownLines(run.stderr), []);
        const lines = run.stdout.split("\n");
        for (const name of DAILIES) {
          const verb = KEPT_DEFAULT.includes(name) ? "keep  " : "delete";
          assert.ok(
            lines.some((l) => l.startsWith(`  ${verb}  ${name} `)),
            `${verb} ${name}:\n${run.stdout}`,
          );
        }
        assert.ok(lines.some((l) => l.startsWith(`  keep    ${LINK} `)));
        assert.ok(
          lines.some((l) => l.startsWith(`  would remove  ${STALE_TEMP}`)),
        );
        assert.match(run.stdout, /^Would delete 80 backup\(s\), kept 13\.$/m);
        assert.deepEqual(listing(dir), before());
      },
    );

    await t.step("a real run deletes exactly those", async () => {
      const run = await prune("--now", NOW_FLAG);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /^Deleted 80 backup\(s\), kept 13\.$/m);
      assert.deepEqual(listing(dir), after(KEPT_DEFAULT));
      assert.equal(
        await Deno.readTextFile(`${outside}/keep.txt`),
        "precious",
      );
    });

    await t.step(
      "a broken newest backup makes prune refuse: exit 1, one line, nothing deleted",
      async () => {
        await tamper(`${dir}/${NEWEST}/${EXPORT_FILE}`);
        const kept = listing(dir);
        const run = await prune("--now", NOW_FLAG, "--keep-daily", "1");
        assert.equal(run.code, 1, run.stderr);
        const lines = ownLines(run.stderr);
        assert.equal(lines.length, 1, run.stderr);
        assert.match(
          lines[0]!,
          /^Error: Prune refused: the newest backup memory_20240315_020000 failed verification .*--force/,
        );
        assert.deepEqual(listing(dir), kept);
      },
    );
  } finally {
    await checkout.remove();
  }
});

/** Artifacts for 30 nights before NOW, plus other names and expired ones. */
function fillArtifacts(fake: FakeGitHub): void {
  fake.artifacts.clear();
  fake.seen.length = 0;
  const zip = new Uint8Array([
    0x50,
    0x4b,
    0x05,
    0x06,
    ...new Array(18).fill(0),
  ]);
  // Uploaded five minutes after the backup started, as the nightly job does.
  const at = (name: string) =>
    new Date(parseBackupName(name)!.getTime() + 5 * 60_000).toISOString();
  for (const name of DAILIES.slice(0, 30)) {
    fake.add(name, zip, { createdAt: at(name) });
  }
  fake.add("coverage-report", zip, { createdAt: "2024-01-01T00:00:00Z" });
  fake.add("memory_20240132_020000", zip, {
    createdAt: "2024-01-02T00:00:00Z",
  });
  fake.add("memory_latest", zip, { createdAt: "2024-01-03T00:00:00Z" });
  for (const name of ["memory_20240101_020000", "memory_20240102_020000"]) {
    fake.add(name, zip, { createdAt: at(name), expired: true });
  }
}

/** The ids of the artifacts the default policy deletes. */
function doomedIds(fake: FakeGitHub): number[] {
  return [...fake.artifacts.values()].filter((a) =>
    DAILIES.slice(0, 30).includes(a.name) && !KEPT_DEFAULT.includes(a.name)
  ).map((a) => a.id).sort();
}

function deletes(fake: FakeGitHub): number[] {
  return fake.seen.filter((s) => s.method === "DELETE").map((s) =>
    Number(s.path.split("/").at(-1))
  ).sort();
}

Deno.test("deno task prune --artifacts deletes exactly the artifacts the policy does not keep", async (t) => {
  const checkout = await makeCheckout();
  const fake = startFakeGitHub({ pageSize: 3 });
  const env = {
    GITHUB_API_URL: fake.url,
    GITHUB_TOKEN: fake.token,
    GITHUB_REPOSITORY: fake.repository,
  };
  const outputs: string[] = [];
  const prune = async (
    args: string[] = [],
    extra: Record<string, string> = env,
  ) => {
    const run = await checkout.deno(
      ["task", "prune", "--artifacts", "--now", NOW_FLAG, ...args],
      extra,
    );
    outputs.push(run.stdout, run.stderr);
    return run;
  };
  try {
    await t.step("--dry-run lists the decisions and deletes none", async () => {
      fillArtifacts(fake);
      const count = fake.artifacts.size;
      const run = await prune(["--dry-run"]);
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(deletes(fake), []);
      assert.equal(fake.artifacts.size, count);
      assert.match(
        run.stdout,
        /^Would delete 20 artifact\(s\), kept 11; 4 other or expired artifact\(s\) left alone\.$/m,
      );
      assert.ok(
        fake.seen.some((s) => s.path.includes("page=12")),
        "every page of 3 was read",
      );
    });

    // [case, failures to inject, list requests, delete requests]
    const works: [string, () => void, number, number][] = [
      ["without failures", () => {}, 12, 20],
      [
        "after a 429 with Retry-After: 0 on the list",
        () => fake.fail(/\/actions\/artifacts$/, [429], { "retry-after": "0" }),
        13,
        20,
      ],
      [
        "after two 503s on a delete",
        () => fake.fail(/\/actions\/artifacts\/\d+$/, [503, 503]),
        12,
        22,
      ],
    ];
    for (const [name, inject, lists, deleteCalls] of works) {
      await t.step(`a real run deletes exactly those ${name}`, async () => {
        fillArtifacts(fake);
        const doomed = doomedIds(fake);
        assert.equal(doomed.length, 20);
        inject();
        const run = await prune();
        assert.equal(run.code, 0, run.stderr);
        assert.match(run.stdout, /^Deleted 20 artifact\(s\), kept 11;/m);
        assert.equal(
          fake.seen.filter((s) => s.method === "GET").length,
          lists,
          "every page of 3 was listed (a retried page twice)",
        );
        assert.equal(deletes(fake).length, deleteCalls);
        assert.deepEqual([...new Set(deletes(fake))], doomed);
        assert.deepEqual(
          [...fake.artifacts.values()].map((a) => a.name).sort(),
          [
            ...KEPT_DEFAULT,
            "coverage-report",
            "memory_20240132_020000",
            "memory_latest",
            "memory_20240101_020000",
            "memory_20240102_020000",
          ].sort(),
        );
        assert.ok(
          fake.seen.every((s) => s.auth === `Bearer ${fake.token}`),
          "every call carried the token",
        );
      });
    }

    await t.step(
      "a 403 on delete fails in one line naming the permission",
      async () => {
        fillArtifacts(fake);
        const count = fake.artifacts.size;
        fake.fail(/\/actions\/artifacts\/\d+$/, [403]);
        const run = await prune();
        assert.equal(run.code, 1, run.stderr);
        const lines = ownLines(run.stderr);
        assert.equal(lines.length, 1, run.stderr);
        assert.match(
          lines[0]!,
          /^Error: GitHub refused to delete artifact memory_\d{8}_\d{6} \(HTTP 403\).*"actions: write"/,
        );
        assert.equal(fake.artifacts.size, count);
      },
    );

    await t.step("an unknown repository fails in one line (404)", async () => {
      fillArtifacts(fake);
      const run = await prune([], { ...env, GITHUB_REPOSITORY: "alex/gone" });
      assert.equal(run.code, 1, run.stderr);
      const lines = ownLines(run.stderr);
      assert.equal(lines.length, 1, run.stderr);
      assert.match(lines[0]!, /HTTP 404.*GITHUB_REPOSITORY/);
    });

    await t.step("an unreachable API fails in one line", async () => {
      const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (closed.addr as Deno.NetAddr).port;
      closed.close();
      const run = await prune([], {
        ...env,
        GITHUB_API_URL: `http://127.0.0.1:${port}`,
      });
      assert.equal(run.code, 1, run.stderr);
      const lines = ownLines(run.stderr);
      assert.equal(lines.length, 1, run.stderr);
      assert.match(
        lines[0]!,
        new RegExp(`^Error: Cannot reach GitHub at 127\\.0\\.0\\.1:${port}`),
      );
    });

    await t.step("a missing GITHUB_TOKEN exits 2 naming it", async () => {
      const { GITHUB_TOKEN: _, ...rest } = env;
      const run = await prune([], rest);
      assert.equal(run.code, 2, run.stderr);
      const lines = ownLines(run.stderr);
      assert.equal(lines.length, 1, run.stderr);
      assert.match(lines[0]!, /^Error: Missing GITHUB_TOKEN/);
    });

    await t.step("the token never appears in any output", () => {
      for (const text of outputs) assert.ok(!text.includes(fake.token), text);
    });
  } finally {
    await fake.close();
    await checkout.remove();
  }
});

Deno.test("pruneArtifacts() waits before retrying a 5xx that gives no Retry-After", async () => {
  const fake = startFakeGitHub({ pageSize: 3 });
  try {
    fillArtifacts(fake);
    fake.fail(/\/actions\/artifacts$/, [503, 503]);
    const started = performance.now();
    const outcome = await pruneArtifacts(
      { apiUrl: fake.url, repository: fake.repository, token: fake.token },
      { policy: DEFAULT_POLICY, now: NOW, dryRun: true },
    );
    const waited = performance.now() - started;
    assert.equal(outcome.deleted.length, 20);
    // Backoff is 250 ms, then 500 ms; without it the retries hammer GitHub.
    assert.ok(waited >= 700, `retried after ${waited.toFixed(0)} ms in all`);
  } finally {
    await fake.close();
  }
});
