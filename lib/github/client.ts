/**
 * The GitHub REST API calls memkeep makes: list, download and delete the
 * repository's `memory_*` artifacts, and open or update the issue that
 * reports a failed nightly backup. Token from `GITHUB_TOKEN`, repository
 * from `GITHUB_REPOSITORY`, API address from `GITHUB_API_URL` (default
 * `https://api.github.com`). Pagination is followed; 429 and 5xx answers are
 * retried; the token never appears in any message.
 *
 * Longer than 400 lines because it is one client: every call shares the
 * same request, redirect, pagination, rate-limit and error-message code.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { GitHubError, UsageError } from "../errors.ts";
import { redact, registerSecret } from "../redact.ts";

/** Where and as whom to call GitHub. */
export interface GitHubSettings {
  /** API base URL without a trailing slash. */
  readonly apiUrl: string;
  /** `owner/name`. */
  readonly repository: string;
  /** The token (never printed). */
  readonly token: string;
}

/** An Actions artifact, as the API describes it. */
export interface Artifact {
  readonly id: number;
  readonly name: string;
  readonly size_in_bytes: number;
  readonly expired: boolean;
  readonly created_at: string;
  readonly expires_at?: string | null;
  /** `sha256:…` for artifacts uploaded with upload-artifact v4. */
  readonly digest?: string | null;
}

/** The environment variables the GitHub commands read. */
export const GITHUB_ENV = [
  "GITHUB_TOKEN",
  "GITHUB_REPOSITORY",
  "GITHUB_API_URL",
] as const;

/**
 * Reads and checks the GitHub settings.
 *
 * @param env Reads an environment variable.
 * @returns The settings.
 * @throws {UsageError} Naming the missing or malformed variable.
 */
export function githubSettings(
  env: (name: string) => string | undefined,
): GitHubSettings {
  const token = env("GITHUB_TOKEN")?.trim();
  if (!token) {
    throw new UsageError(
      "GITHUB_TOKEN",
      "Missing GITHUB_TOKEN: a token allowed to read (and, to prune, delete) Actions artifacts",
    );
  }
  registerSecret(token);
  const repository = env("GITHUB_REPOSITORY")?.trim();
  if (
    !repository || !/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(repository) ||
    repository.split("/").some((part) => /^\.+$/.test(part))
  ) {
    throw new UsageError(
      "GITHUB_REPOSITORY",
      `Invalid GITHUB_REPOSITORY${
        repository ? ` "${repository}"` : ""
      }: expected owner/name`,
    );
  }
  return { apiUrl: githubApiUrl(env), repository, token };
}

/**
 * The GitHub API's base URL: `GITHUB_API_URL` (GitHub Enterprise, or a test
 * server), else `https://api.github.com`.
 *
 * @param env Reads an environment variable.
 * @returns The URL, without a trailing slash.
 * @throws {UsageError} When `GITHUB_API_URL` is not an http(s) URL.
 */
export function githubApiUrl(
  env: (name: string) => string | undefined,
): string {
  const apiUrl = (env("GITHUB_API_URL")?.trim() || "https://api.github.com")
    .replace(/\/+$/, "");
  try {
    const url = new URL(apiUrl);
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      throw new TypeError("scheme");
    }
    if (url.protocol === "http:" && !LOOPBACK.has(url.hostname)) {
      throw new UsageError(
        "GITHUB_API_URL",
        `Invalid GITHUB_API_URL "${apiUrl}": the token would travel unencrypted; use https (plain http only to a loopback address)`,
      );
    }
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(
      "GITHUB_API_URL",
      `Invalid GITHUB_API_URL "${apiUrl}": not an http(s) URL`,
    );
  }
  return apiUrl;
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

/** How long to wait before retry `n` (1-based), in ms, unless the server says. */
function backoff(n: number): number {
  return Math.min(250 * 2 ** (n - 1), 8000);
}

const RETRIES = 4;

function describeStatus(status: number, body: string, what: string): string {
  let message = "";
  try {
    message = (JSON.parse(body) as { message?: string }).message ?? "";
  } catch {
    message = body.slice(0, 200);
  }
  // A server (or a proxy) may echo the request: the token never goes into
  // the message.
  const detail = message ? `: ${redact(message.replace(/\s+/g, " "))}` : "";
  if (status === 401) return `GitHub refused the token (HTTP 401)${detail}`;
  if (status === 403) {
    const needed = /\bissue/.test(what)
      ? '"issues: write"'
      : '"actions: write" (prune) or "actions: read"';
    return `GitHub refused to ${what} (HTTP 403)${detail}; the token needs the ${needed} permission`;
  }
  if (status === 404) {
    return `GitHub found nothing to ${what} (HTTP 404)${detail}; check GITHUB_REPOSITORY and the token's access`;
  }
  return `GitHub could not ${what} (HTTP ${status})${detail}`;
}

/**
 * Calls the API, retrying 429 and 5xx answers and connection failures.
 *
 * @param gh The settings.
 * @param method HTTP method.
 * @param pathOrUrl A path under the repository (`/actions/artifacts`) or a full URL.
 * @param what What the call does, for messages ("list artifacts").
 * @param init Body and extra headers.
 * @returns The response (2xx or 3xx).
 * @throws {GitHubError} For any other answer or when GitHub cannot be reached.
 */
export async function githubRequest(
  gh: GitHubSettings,
  method: string,
  pathOrUrl: string,
  what: string,
  init: { body?: unknown; redirect?: RequestRedirect } = {},
): Promise<Response> {
  const url = pathOrUrl.startsWith("http")
    ? pathOrUrl
    : `${gh.apiUrl}/repos/${gh.repository}${pathOrUrl}`;
  for (let attempt = 1;; attempt++) {
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        redirect: init.redirect ?? "follow",
        headers: {
          "Authorization": `Bearer ${gh.token}`,
          "Accept": "application/vnd.github+json",
          "X-GitHub-Api-Version": "2022-11-28",
          "User-Agent": "memkeep",
          ...(init.body === undefined
            ? {}
            : { "Content-Type": "application/json" }),
        },
        ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
      });
    } catch (error) {
      if (error instanceof Deno.errors.NotCapable) throw error;
      if (attempt <= RETRIES) {
        await sleep(backoff(attempt));
        continue;
      }
      throw new GitHubError(
        `Cannot reach GitHub at ${new URL(url).host} to ${what}: ${
          (error as Error).message
        }`,
        undefined,
        {
          cause: error,
        },
      );
    }
    if (response.ok || (response.status >= 300 && response.status < 400)) {
      return response;
    }
    const body = await response.text();
    const rateLimited = response.status === 429 ||
      (response.status === 403 &&
        response.headers.get("x-ratelimit-remaining") === "0");
    if ((rateLimited || response.status >= 500) && attempt <= RETRIES) {
      const header = response.headers.get("retry-after");
      const after = header === null ? Number.NaN : Number(header);
      await sleep(
        Number.isFinite(after) && after >= 0
          ? Math.min(after * 1000, 60_000)
          : backoff(attempt),
      );
      continue;
    }
    throw new GitHubError(
      describeStatus(response.status, body, what),
      response.status,
    );
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function nextLink(link: string | null): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(",")) {
    const m = /<([^>]+)>\s*;\s*rel="next"/.exec(part);
    if (m) return m[1];
  }
  return undefined;
}

/**
 * Every artifact of the repository, following pagination.
 *
 * @param gh The settings.
 * @returns The artifacts, as listed (newest first on GitHub).
 */
export async function listArtifacts(gh: GitHubSettings): Promise<Artifact[]> {
  const all: Artifact[] = [];
  let url: string | undefined =
    `${gh.apiUrl}/repos/${gh.repository}/actions/artifacts?per_page=100`;
  for (let page = 0; url && page < 1000; page++) {
    const response = await githubRequest(gh, "GET", url, "list artifacts");
    const body = await response.json() as { artifacts?: Artifact[] };
    if (!Array.isArray(body.artifacts)) {
      throw new GitHubError(
        "GitHub answered the artifact list without artifacts",
      );
    }
    all.push(...body.artifacts);
    url = nextLink(response.headers.get("link"));
  }
  return all;
}

/**
 * Deletes one artifact.
 *
 * @param gh The settings.
 * @param artifact The artifact.
 */
export async function deleteArtifact(
  gh: GitHubSettings,
  artifact: Artifact,
): Promise<void> {
  const response = await githubRequest(
    gh,
    "DELETE",
    `/actions/artifacts/${artifact.id}`,
    `delete artifact ${artifact.name}`,
  );
  await response.body?.cancel();
}

/**
 * Downloads an artifact's zip to a file, following GitHub's redirect to its
 * storage (without the token, which the storage must not see), hashing while
 * it writes.
 *
 * @param gh The settings.
 * @param artifact The artifact.
 * @param path The file to write (created; must not exist).
 * @returns The SHA-256 of the zip and its size.
 * @throws {GitHubError} When the download fails.
 */
export async function downloadArtifact(
  gh: GitHubSettings,
  artifact: Artifact,
  path: string,
): Promise<{ sha256: string; bytes: number }> {
  const what = `download artifact ${artifact.name}`;
  const first = await githubRequest(
    gh,
    "GET",
    `/actions/artifacts/${artifact.id}/zip`,
    what,
    { redirect: "manual" },
  );
  let response = first;
  if (first.status >= 300 && first.status < 400) {
    const location = first.headers.get("location");
    await first.body?.cancel();
    if (!location) {
      throw new GitHubError(
        `GitHub did not say where to ${what}`,
        first.status,
      );
    }
    try {
      response = await fetch(new URL(location, first.url || gh.apiUrl), {
        headers: { "User-Agent": "memkeep" },
      });
    } catch (error) {
      if (error instanceof Deno.errors.NotCapable) throw error;
      throw new GitHubError(
        `Cannot ${what} from ${new URL(location).host}: ${
          (error as Error).message
        }`,
        undefined,
        {
          cause: error,
        },
      );
    }
    if (!response.ok) {
      const body = await response.text();
      throw new GitHubError(
        `Cannot ${what}: the storage answered HTTP ${response.status} ${
          redact(body.slice(0, 120).replace(/\s+/g, " "))
        }`,
        response.status,
      );
    }
  }
  const hash = createHash("sha256");
  let bytes = 0;
  const file = await Deno.open(path, { write: true, createNew: true });
  try {
    for await (
      const chunk of response.body ?? new ReadableStream<Uint8Array>()
    ) {
      hash.update(chunk);
      bytes += chunk.length;
      let offset = 0;
      while (offset < chunk.length) {
        offset += await file.write(chunk.subarray(offset));
      }
    }
    await file.sync();
  } finally {
    file.close();
  }
  return { sha256: hash.digest("hex"), bytes };
}

/** An issue, as the API describes it. */
export interface Issue {
  readonly number: number;
  readonly title: string;
  readonly html_url: string;
}

/**
 * Opens an issue with this title, or comments on the open one that has it.
 *
 * @param gh The settings.
 * @param title The issue title.
 * @param body The text of the issue or comment.
 * @returns The issue and whether it was created.
 */
export async function openOrUpdateIssue(
  gh: GitHubSettings,
  title: string,
  body: string,
): Promise<{ issue: Issue; created: boolean }> {
  let url: string | undefined =
    `${gh.apiUrl}/repos/${gh.repository}/issues?state=open&per_page=100`;
  for (let page = 0; url && page < 50; page++) {
    const response = await githubRequest(gh, "GET", url, "list issues");
    const issues = await response
      .json() as (Issue & { pull_request?: unknown })[];
    const found = issues.find((i) => i.title === title && !i.pull_request);
    if (found) {
      const comment = await githubRequest(
        gh,
        "POST",
        `/issues/${found.number}/comments`,
        "comment on the issue",
        {
          body: { body },
        },
      );
      await comment.body?.cancel();
      return { issue: found, created: false };
    }
    url = nextLink(response.headers.get("link"));
  }
  const response = await githubRequest(gh, "POST", "/issues", "open an issue", {
    body: { title, body },
  });
  return { issue: await response.json() as Issue, created: true };
}
