/**
 * Tests for the GitHub REST client against the fake API on 127.0.0.1:
 * settings, pagination, the download's redirect to storage, deletes, issues,
 * retries and the messages a user sees when GitHub says no.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  deleteArtifact,
  downloadArtifact,
  githubApiUrl,
  githubRequest,
  type GitHubSettings,
  githubSettings,
  listArtifacts,
  openOrUpdateIssue,
} from "../../lib/github/client.ts";
import { GitHubError, UsageError } from "../../lib/errors.ts";
import { type FakeGitHub, startFakeGitHub } from "../_fake_github.ts";
import { assertRejectsWith, withTempDir } from "../_helpers.ts";

const NAME = "memory_20240315_020000";
const ARTIFACTS = "/repos/alex/memories/actions/artifacts";
const CHECK = "; check GITHUB_REPOSITORY and the token's access";
const ACTIONS =
  '; the token needs the "actions: write" (prune) or "actions: read" permission';

function envOf(
  vars: Record<string, string | undefined>,
): (name: string) => string | undefined {
  return (name) => vars[name];
}

/** Runs `fn` with a fake GitHub and settings for it; always closes it. */
async function withFake(
  fn: (fake: FakeGitHub, gh: GitHubSettings) => Promise<void>,
  options: { pageSize?: number } = {},
): Promise<void> {
  const fake = startFakeGitHub(options);
  try {
    await fn(
      fake,
      githubSettings(envOf({
        GITHUB_TOKEN: fake.token,
        GITHUB_REPOSITORY: fake.repository,
        GITHUB_API_URL: fake.url,
      })),
    );
  } finally {
    await fake.close();
  }
}

/** `n` bytes that are not all alike. */
function zipBytes(n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 31 + (i >> 8)) & 0xff);
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * Asserts `fn` rejects with a GitHubError with exactly this status and
 * message, on one line, without any token (every token here starts `ghs_`).
 */
async function assertGitHubError(
  fn: () => Promise<unknown>,
  status: number | undefined,
  message: string,
): Promise<void> {
  const error = await assertRejectsWith(fn, GitHubError, /./);
  assert.equal(error.message, message);
  assert.equal(error.status, status);
  assert.doesNotMatch(error.message, /[\r\n]|ghs_/);
}

Deno.test("githubSettings() reads the token, repository and API URL, trimmed", () => {
  assert.deepEqual(
    githubSettings(envOf({
      GITHUB_TOKEN: " ghs_settings_token_1 \n",
      GITHUB_REPOSITORY: " alex/memories.v2 ",
      GITHUB_API_URL: "https://ghe.example.com/api/v3//",
    })),
    {
      apiUrl: "https://ghe.example.com/api/v3",
      repository: "alex/memories.v2",
      token: "ghs_settings_token_1",
    },
  );
});

/** Asserts `fn` throws a UsageError with this message, naming the variable in it. */
function assertUsage(fn: () => unknown, message: string): void {
  assert.throws(fn, (error) => {
    assert.ok(error instanceof UsageError);
    assert.equal(error.message, message);
    assert.equal(error.setting, /GITHUB_\w+/.exec(message)?.[0]);
    return true;
  });
}

Deno.test("githubSettings() names the missing or malformed variable", async (t) => {
  const noToken =
    "Missing GITHUB_TOKEN: a token allowed to read (and, to prune, delete) Actions artifacts";
  const bad = (repo: string) =>
    `Invalid GITHUB_REPOSITORY "${repo}": expected owner/name`;
  const cases: [string | undefined, string | undefined, string][] = [
    [undefined, "a/b", noToken],
    [" \n", "a/b", noToken],
    [undefined, undefined, noToken], // the token is named first
    ["t0k", undefined, "Invalid GITHUB_REPOSITORY: expected owner/name"],
    ["t0k", "memories", bad("memories")],
    ["t0k", "a/b/issues", bad("a/b/issues")],
    ["t0k", "https://github.com/a/b", bad("https://github.com/a/b")],
    ["t0k", "../x", bad("../x")],
    ["t0k", "a/..", bad("a/..")],
  ];
  for (const [token, repository, message] of cases) {
    const vars = { GITHUB_TOKEN: token, GITHUB_REPOSITORY: repository };
    await t.step(JSON.stringify(vars), () => {
      assertUsage(() => githubSettings(envOf(vars)), message);
    });
  }
});

Deno.test("githubApiUrl() takes https, plain http only to a loopback address, and refuses anything else", async (t) => {
  const accepted: [string | undefined, string][] = [
    [undefined, "https://api.github.com"],
    ["", "https://api.github.com"],
    ["  https://ghe.example.com/api/v3/ ", "https://ghe.example.com/api/v3"],
    ["http://127.0.0.1:8080///", "http://127.0.0.1:8080"],
    ["http://localhost:3000", "http://localhost:3000"],
  ];
  for (const [value, expected] of accepted) {
    await t.step(`accepts ${JSON.stringify(value)}`, () => {
      const vars = value === undefined ? {} : { GITHUB_API_URL: value };
      assert.equal(githubApiUrl(envOf(vars)), expected);
    });
  }
  const refused = ["ftp://ghe.example.com", "api.github.com", "file:///etc"];
  for (const value of refused) {
    await t.step(`refuses ${JSON.stringify(value)}`, () =>
      assertUsage(
        () => githubApiUrl(envOf({ GITHUB_API_URL: value })),
        `Invalid GITHUB_API_URL "${value}": not an http(s) URL`,
      ));
  }
  await t.step(
    "refuses plain http to another host (the token would travel unencrypted)",
    () =>
      assertUsage(
        () =>
          githubApiUrl(envOf({ GITHUB_API_URL: "http://ghe.internal/api/v3" })),
        'Invalid GITHUB_API_URL "http://ghe.internal/api/v3": the token would travel unencrypted; use https (plain http only to a loopback address)',
      ),
  );
});

/** The requests the fake saw, one line each, with the token shown as TOKEN. */
function requests(fake: FakeGitHub): string[] {
  return fake.seen.map((s) =>
    `${s.method} ${s.path} ${s.auth?.replace(fake.token, "TOKEN") ?? "-"}`
  );
}

Deno.test("listArtifacts() follows every page, marks the expired artifacts and refuses an answer without a list", async () => {
  await withFake(async (fake, gh) => {
    assert.deepEqual(await listArtifacts(gh), []);
    fake.seen.length = 0;
    for (let day = 10; day <= 16; day++) {
      fake.add(`memory_202403${day}_020000`, zipBytes(day), {
        createdAt: `2024-03-${day}T02:05:00Z`,
        expired: day <= 11,
      });
    }
    const artifacts = await listArtifacts(gh);
    assert.deepEqual(
      artifacts.map((a) => [a.name, a.expired, a.size_in_bytes]),
      [16, 15, 14, 13, 12, 11, 10].map((
        d,
      ) => [`memory_202403${d}_020000`, d <= 11, d]),
    );
    assert.equal(artifacts[0]!.digest, `sha256:${sha256(zipBytes(16))}`);
    assert.deepEqual(requests(fake), [
      `GET ${ARTIFACTS}?per_page=100 Bearer TOKEN`,
      `GET ${ARTIFACTS}?per_page=100&page=2 Bearer TOKEN`,
      `GET ${ARTIFACTS}?per_page=100&page=3 Bearer TOKEN`,
    ]);
    fake.fail(/\/actions\/artifacts$/, [200]); // {"message":"injected 200"}
    const message = "GitHub answered the artifact list without artifacts";
    await assertGitHubError(() => listArtifacts(gh), undefined, message);
  }, { pageSize: 3 });
});

Deno.test("downloadArtifact() follows the redirect to storage without the token and writes the zip as uploaded", async () => {
  await withFake(async (fake, gh) => {
    await withTempDir(async (dir) => {
      const zip = zipBytes(300_000);
      const artifact = fake.add(NAME, zip);
      const result = await downloadArtifact(gh, artifact, `${dir}/a.zip`);
      assert.deepEqual(result, { sha256: sha256(zip), bytes: 300_000 });
      assert.equal(`sha256:${result.sha256}`, artifact.digest);
      assert.deepEqual(await Deno.readFile(`${dir}/a.zip`), zip);
      assert.deepEqual(requests(fake), [
        `GET ${ARTIFACTS}/${artifact.id}/zip Bearer TOKEN`,
        `GET /storage/${artifact.id}?sig=ok -`,
      ]);
      // It reports the hash of what arrived, not the digest GitHub recorded:
      // refusing a mismatch is fetchArtifact()'s job, and it needs the truth.
      const recorded = `sha256:${"0".repeat(64)}`;
      const wrong = fake.add("memory_20240314_020000", zip, {
        digest: recorded,
      });
      const got = await downloadArtifact(gh, wrong, `${dir}/b.zip`);
      assert.equal(got.sha256, sha256(zip));
      assert.notEqual(`sha256:${got.sha256}`, recorded);
    });
  });
});

Deno.test("downloadArtifact() fails in one line, without the token, and writes or overwrites no file", async (t) => {
  await withFake(async (fake, gh) => {
    await withTempDir(async (dir) => {
      const zip = zipBytes(100);
      const ok = fake.add(NAME, zip);
      const old = "memory_20240101_020000";
      const expired = fake.add(old, zip, { expired: true });
      const gone = { ...fake.add("memory_20240102_020000", zip) };
      fake.artifacts.delete(gone.id);
      /** Asserts the message and status, and how many requests were made. */
      const check = async (
        artifact: typeof ok,
        message: string,
        status: number,
        asked: number,
      ) => {
        const path = `${dir}/${artifact.name}.zip`;
        await assertGitHubError(
          () => downloadArtifact(gh, artifact, path),
          status,
          message,
        );
        await assert.rejects(() => Deno.lstat(path), Deno.errors.NotFound);
        assert.equal(fake.seen.length, asked, JSON.stringify(fake.seen));
        fake.seen.length = 0;
      };
      const what = `download artifact ${NAME}`;
      await t.step("an expired artifact (HTTP 410, not retried)", async () => {
        const message =
          `GitHub could not download artifact ${old} (HTTP 410): Artifact has expired`;
        await check(expired, message, 410, 1);
      });
      await t.step("a deleted artifact (HTTP 404)", async () => {
        const message =
          `GitHub found nothing to download artifact ${gone.name} (HTTP 404): Not Found${CHECK}`;
        await check(gone, message, 404, 1);
      });
      await t.step("a token without actions: read (HTTP 403)", async () => {
        fake.fail(/\/zip$/, [403]);
        const message =
          `GitHub refused to ${what} (HTTP 403): injected 403${ACTIONS}`;
        await check(ok, message, 403, 1);
      });
      await t.step("a redirect without a Location", async () => {
        fake.fail(/\/zip$/, [302]);
        await check(ok, `GitHub did not say where to ${what}`, 302, 1);
      });
      await t.step("a storage error (asked once, not retried)", async () => {
        fake.fail(/^\/storage\//, [503]); // a retry would succeed
        const message =
          `Cannot ${what}: the storage answered HTTP 503 {"message":"injected 503"}`;
        await check(ok, message, 503, 2);
      });
      await t.step("an existing file (kept as it was)", async () => {
        await Deno.writeTextFile(`${dir}/a.zip`, "keep me");
        await assert.rejects(
          () => downloadArtifact(gh, ok, `${dir}/a.zip`),
          Deno.errors.AlreadyExists,
        );
        assert.equal(await Deno.readTextFile(`${dir}/a.zip`), "keep me");
      });
    });
  });
});

Deno.test("deleteArtifact() deletes the artifact, and names it when it is already gone", async () => {
  await withFake(async (fake, gh) => {
    const artifact = fake.add(NAME, zipBytes(10));
    const other = fake.add("memory_20240314_020000", zipBytes(10));
    await deleteArtifact(gh, artifact);
    assert.deepEqual([...fake.artifacts.keys()], [other.id]);
    assert.deepEqual(requests(fake), [
      `DELETE ${ARTIFACTS}/${artifact.id} Bearer TOKEN`,
    ]);
    const message =
      `GitHub found nothing to delete artifact ${NAME} (HTTP 404): Not Found${CHECK}`;
    await assertGitHubError(() => deleteArtifact(gh, artifact), 404, message);
  });
});

/** One call to list artifacts, as listArtifacts() makes it. */
function listOnce(gh: GitHubSettings): Promise<Response> {
  return githubRequest(gh, "GET", "/actions/artifacts", "list artifacts");
}

Deno.test("githubRequest() retries 429, 5xx and an exhausted rate limit at most 4 times", async (t) => {
  const messages: Record<number, string> = {
    429: "GitHub could not list artifacts (HTTP 429): injected 429",
    502: "GitHub could not list artifacts (HTTP 502): injected 502",
    403: `GitHub refused to list artifacts (HTTP 403): injected 403${ACTIONS}`,
    404:
      `GitHub found nothing to list artifacts (HTTP 404): injected 404${CHECK}`,
  };
  const now = { "retry-after": "0" };
  const limit = { ...now, "x-ratelimit-remaining": "0" };
  const cases: [string, number[], Record<string, string>, number][] = [
    ["four 429s, then an answer", [429, 429, 429, 429], now, 5],
    ["five 429s: fails", [429, 429, 429, 429, 429], now, 5],
    ["four 5xx, then an answer", [500, 502, 503, 504], now, 5],
    ["five 502s: fails", [502, 502, 502, 502, 502], now, 5],
    ["a 403 with no rate limit left, then an answer", [403], limit, 2],
    ["a plain 403: fails, not retried", [403], now, 1],
    ["a 404: fails, not retried", [404], now, 1],
  ];
  await withFake(async (fake, gh) => {
    for (const [name, statuses, headers, asked] of cases) {
      await t.step(name, async () => {
        fake.seen.length = 0;
        fake.fail(/\/actions\/artifacts$/, statuses, headers);
        if (name.includes(": fails")) {
          const status = statuses[0]!;
          const message = messages[status]!;
          await assertGitHubError(() => listOnce(gh), status, message);
        } else {
          const response = await listOnce(gh);
          assert.equal(response.status, 200);
          assert.deepEqual(await response.json(), {
            total_count: 0,
            artifacts: [],
          });
        }
        assert.equal(fake.seen.length, asked);
      });
    }
    await t.step("a wrong token: fails, not retried, not printed", async () => {
      fake.seen.length = 0;
      const wrong = { ...gh, token: "ghs_WRONG_token_value_987654" };
      const message = "GitHub refused the token (HTTP 401): Bad credentials";
      await assertGitHubError(() => listOnce(wrong), 401, message);
      assert.equal(fake.seen.length, 1);
    });
  });
});

Deno.test("githubRequest() waits as long as Retry-After says, else backs off", async (t) => {
  await withFake(async (fake, gh) => {
    const cases: [string, Record<string, string>, number][] = [
      ["Retry-After: 1", { "retry-after": "1" }, 1000],
      ["no Retry-After", {}, 250],
    ];
    for (const [name, headers, wait] of cases) {
      await t.step(`${name} waits at least ${wait} ms`, async () => {
        fake.fail(/\/actions\/artifacts$/, [429], headers);
        const started = performance.now();
        const response = await listOnce(gh);
        await response.body?.cancel();
        assert.ok(performance.now() - started >= wait - 10);
      });
    }
  });
});

Deno.test("githubRequest() names the host it cannot reach after retrying", async () => {
  const closed = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response(),
  );
  const host = `127.0.0.1:${closed.addr.port}`;
  await closed.shutdown();
  const token = "ghs_unreachable_0001";
  const gh = { apiUrl: `http://${host}`, repository: "a/b", token };
  const error = await assertRejectsWith(
    () => listOnce(gh),
    GitHubError,
    /^Cannot reach GitHub at /,
  );
  const prefix = `Cannot reach GitHub at ${host} to list artifacts: `;
  assert.ok(error.message.startsWith(prefix), error.message);
  assert.equal(error.status, undefined);
  assert.ok(error.cause instanceof Error);
  assert.doesNotMatch(error.message, /[\r\n]|ghs_/);
});

Deno.test("an error quoting the token never holds it once githubSettings() has read it", async () => {
  const token = "ghs_echoed_back_by_a_proxy_77";
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) =>
      Response.json(
        { message: `bad ${request.headers.get("authorization")}` },
        { status: 422 },
      ),
  );
  try {
    const gh = githubSettings(envOf({
      GITHUB_TOKEN: token,
      GITHUB_REPOSITORY: "a/b",
      GITHUB_API_URL: `http://127.0.0.1:${server.addr.port}`,
    }));
    const error = await assertRejectsWith(
      () => githubRequest(gh, "GET", "/x", "list x"),
      GitHubError,
      /^GitHub could not list x \(HTTP 422\): bad Bearer /,
    );
    assert.equal(
      error.message,
      "GitHub could not list x (HTTP 422): bad Bearer ***",
    );
  } finally {
    await server.shutdown();
  }
});

Deno.test("openOrUpdateIssue() opens the issue once, then comments on it", async () => {
  await withFake(async (fake, gh) => {
    const title = "Nightly memory backup failed";
    const first = await openOrUpdateIssue(gh, title, "Run 1 failed");
    assert.deepEqual(first, {
      created: true,
      issue: { number: 1, title, html_url: `${fake.url}/issues/1` },
    });
    const second = await openOrUpdateIssue(gh, title, "Run 2 failed");
    assert.deepEqual(second, { created: false, issue: first.issue });
    const other = await openOrUpdateIssue(gh, "Something else", "x");
    assert.equal(other.created, true);
    assert.equal(other.issue.number, 2);
    assert.deepEqual(
      fake.issues.map((i) => [i.title, i.body, i.comments]),
      [[title, "Run 1 failed", ["Run 2 failed"]], ["Something else", "x", []]],
    );
    assert.ok(fake.seen.every((s) => s.auth === `Bearer ${fake.token}`));
  });
});

Deno.test("openOrUpdateIssue() names the issues permission when GitHub refuses", async (t) => {
  await withFake(async (fake, gh) => {
    await openOrUpdateIssue(gh, "Backup failed", "first");
    const cases: [string, RegExp, string][] = [
      ["listing issues", /\/issues$/, "list issues"],
      ["commenting", /\/comments$/, "comment on the issue"],
    ];
    for (const [name, pattern, what] of cases) {
      await t.step(name, async () => {
        fake.fail(pattern, [403]);
        const message =
          `GitHub refused to ${what} (HTTP 403): injected 403; the token needs the "issues: write" permission`;
        const call = () => openOrUpdateIssue(gh, "Backup failed", "again");
        await assertGitHubError(call, 403, message);
      });
    }
    assert.deepEqual(fake.issues[0]!.comments, []);
  });
});
