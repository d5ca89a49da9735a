import assert from "node:assert/strict";
import { type Checkout, makeCheckout, ownLines } from "./_checkout.ts";
import { startFakeGitHub } from "./_fake_github.ts";

const NOW = "2024-03-15T03:00:00Z";

async function withCheckout(
  fn: (checkout: Checkout) => Promise<void>,
): Promise<void> {
  const checkout = await makeCheckout();
  try {
    await fn(checkout);
  } finally {
    await checkout.remove();
  }
}

/** Makes `backups/<set>/<name>` directories in the checkout. */
async function backups(
  checkout: Checkout,
  set: string,
  names: string[],
): Promise<string> {
  await Deno.mkdir(`${checkout.dir}/backups/${set}`, { recursive: true });
  for (const name of names) {
    await Deno.mkdir(`${checkout.dir}/backups/${set}/${name}`);
  }
  return `backups/${set}`;
}

Deno.test("deno task status reports the newest local backup and fails when it is missing or too old", async (t) => {
  await withCheckout(async (checkout) => {
    const status = (...args: string[]) =>
      checkout.deno(["task", "status", "--now", NOW, ...args]);
    const fresh = await backups(checkout, "fresh", [
      "memory_20240313_020000",
      "memory_20240315_020000",
      "memory_20240314_020000",
      "memory_20240316_020000", // in the future: not the newest
      "notes",
    ]);
    const stale = await backups(checkout, "stale", [
      "memory_20240312_020000",
      "memory_20240313_020000",
    ]);
    const empty = await backups(checkout, "empty", ["notes", "memory_x"]);
    const odd = await backups(checkout, "odd", [
      "memory_20240315_020000",
      "memory_20240132_020000",
    ]);

    const cases: {
      name: string;
      args: string[];
      code: number;
      stdout: RegExp;
      error?: RegExp;
    }[] = [
      {
        name: "a backup 1 hour old is OK",
        args: ["--dir", fresh],
        code: 0,
        stdout:
          /^Newest backup in backups\/fresh: memory_20240315_020000, 1\.0 h old \(limit 26\.0 h\): OK$/m,
      },
      {
        name: "a backup 49 hours old is too old",
        args: ["--dir", stale],
        code: 1,
        stdout:
          /memory_20240313_020000, 49\.0 h old \(limit 26\.0 h\): TOO OLD/,
        error:
          /^Error: The newest backup is 49\.0 h old, older than 26\.0 h: has the nightly job stopped\?$/,
      },
      {
        name: "--max-age 3d lets it pass",
        args: ["--dir", stale, "--max-age", "3d"],
        code: 0,
        stdout: /49\.0 h old \(limit 72\.0 h\): OK$/m,
      },
      {
        name: "a directory without backups fails",
        args: ["--dir", empty],
        code: 1,
        stdout: /^No backup in backups\/empty\.$/m,
        error: /^Error: No backup in backups\/empty$/,
      },
      {
        name: "a missing directory fails",
        args: ["--dir", "backups/none"],
        code: 1,
        stdout: /^No backup in backups\/none\.$/m,
        error: /^Error: No backup in backups\/none$/,
      },
      {
        name: "a name like a backup with no such date is not one",
        args: ["--dir", odd],
        code: 0,
        stdout: /memory_20240315_020000, 1\.0 h old .*: OK$/m,
      },
    ];
    for (const c of cases) {
      await t.step(c.name, async () => {
        const run = await status(...c.args);
        assert.equal(run.code, c.code, run.stdout + run.stderr);
        assert.match(run.stdout, c.stdout);
        const lines = ownLines(run.stderr);
        if (c.error) {
          assert.equal(lines.length, 1, run.stderr);
          assert.match(lines[0]!, c.error);
        } else {
          assert.deepEqual(lines, []);
        }
      });
    }

    await t.step("--json says the same for a script", async () => {
      const run = await status("--dir", stale, "--json");
      assert.equal(run.code, 1);
      assert.deepEqual(JSON.parse(run.stdout), {
        ok: false,
        where: "backups/stale",
        newest: "memory_20240313_020000",
        age_ms: 49 * 3_600_000,
        max_age_ms: 26 * 3_600_000,
      });
    });

    await t.step(
      "bad usage exits 2 with one line naming the flag",
      async () => {
        const cases: [string[], RegExp][] = [
          [["--max-age", "26"], /^Error: Invalid --max-age "26"/],
          [["--max-age", "0h"], /^Error: Invalid --max-age "0h"/],
          [["--max-age", "1w"], /^Error: Invalid --max-age "1w"/],
          [["--max-age=-3h"], /^Error: Invalid --max-age "-3h"/],
          [["--now", "2024-03-15 03:00"], /^Error: Invalid --now/],
          [["--dirr", fresh], /--dirr/],
        ];
        for (const [args, expected] of cases) {
          const run = await status("--dir", fresh, ...args);
          assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
          const lines = ownLines(run.stderr);
          assert.equal(lines.length, 1, run.stderr);
          assert.match(lines[0]!, expected);
        }
      },
    );
  });
});

Deno.test("deno task status --artifacts counts the newest artifact that has not expired", async (t) => {
  const fake = startFakeGitHub({ pageSize: 3 });
  const zip = new Uint8Array([
    0x50,
    0x4b,
    0x05,
    0x06,
    ...new Array(18).fill(0),
  ]);
  const env = {
    GITHUB_API_URL: fake.url,
    GITHUB_TOKEN: fake.token,
    GITHUB_REPOSITORY: fake.repository,
  };
  const outputs: string[] = [];
  try {
    await withCheckout(async (checkout) => {
      const status = async (
        args: string[],
        extra: Record<string, string> = env,
      ) => {
        const run = await checkout.deno(
          ["task", "status", "--artifacts", "--now", NOW, ...args],
          extra,
        );
        outputs.push(run.stdout, run.stderr);
        return run;
      };
      for (
        const [name, expired] of [
          ["memory_20240310_020000", false],
          ["memory_20240314_020000", false],
          ["coverage-report", false],
          ["memory_20240312_020000", false],
          ["memory_20240315_020000", true],
        ] as const
      ) {
        fake.add(name, zip, { expired });
      }

      await t.step(
        "an artifact 25 hours old is OK; the expired newer one does not count",
        async () => {
          const run = await status([]);
          assert.equal(run.code, 0, run.stderr);
          assert.match(
            run.stdout,
            /^Newest backup in artifacts of alex\/memories: memory_20240314_020000, 25\.0 h old \(limit 26\.0 h\): OK$/m,
          );
          assert.ok(
            fake.seen.some((s) => s.path.includes("page=2")),
            "the list was paged",
          );
        },
      );

      await t.step("with --max-age 24h it is too old", async () => {
        const run = await status(["--max-age", "24h"]);
        assert.equal(run.code, 1, run.stderr);
        assert.match(
          run.stdout,
          /memory_20240314_020000, 25\.0 h old.*TOO OLD/,
        );
        assert.equal(ownLines(run.stderr).length, 1, run.stderr);
      });

      await t.step("only expired backups count as none", async () => {
        for (const a of fake.artifacts.values()) a.expired = true;
        const run = await status([]);
        assert.equal(run.code, 1, run.stderr);
        assert.deepEqual(ownLines(run.stderr), [
          "Error: No backup in artifacts of alex/memories",
        ]);
      });

      await t.step("a missing GITHUB_TOKEN exits 2 naming it", async () => {
        const { GITHUB_TOKEN: _, ...rest } = env;
        const run = await status([], rest);
        assert.equal(run.code, 2, run.stderr);
        assert.match(ownLines(run.stderr)[0]!, /^Error: Missing GITHUB_TOKEN/);
      });

      await t.step("the token never appears in any output", () => {
        for (const text of outputs) assert.ok(!text.includes(fake.token));
      });
    });
  } finally {
    await fake.close();
  }
});
