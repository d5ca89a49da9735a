/**
 * A local stand-in for the GitHub REST API on 127.0.0.1: artifacts (listed
 * with pagination, deleted, downloaded through a redirect to a "storage"
 * path that refuses a token, as Azure storage does), issues, and injected
 * failures (403, 404, 429 with Retry-After, 5xx).
 *
 * @module
 */

import { createHash } from "node:crypto";

/** An artifact held by the fake server. */
export interface FakeArtifact {
  id: number;
  name: string;
  size_in_bytes: number;
  expired: boolean;
  created_at: string;
  expires_at: string;
  digest: string | null;
  zip: Uint8Array;
}

/** A request the fake server received. */
export interface Seen {
  readonly method: string;
  readonly path: string;
  readonly auth: string | null;
}

/** The running fake. */
export interface FakeGitHub {
  /** The API base URL (for GITHUB_API_URL). */
  readonly url: string;
  /** `host:port`, for a network grant. */
  readonly host: string;
  /** The token it accepts. */
  readonly token: string;
  /** `owner/name`. */
  readonly repository: string;
  /** Artifacts, by id. */
  readonly artifacts: Map<number, FakeArtifact>;
  /** Issues. */
  readonly issues: {
    number: number;
    title: string;
    body: string;
    comments: string[];
  }[];
  /** Every request. */
  readonly seen: Seen[];
  /** Adds an artifact (as upload-artifact would). */
  add(
    name: string,
    zip: Uint8Array,
    options?: { expired?: boolean; createdAt?: string; digest?: string | null },
  ): FakeArtifact;
  /** Answers the next requests whose path matches with these statuses (then normally). */
  fail(
    pattern: RegExp,
    statuses: number[],
    headers?: Record<string, string>,
  ): void;
  /** Stops it. */
  close(): Promise<void>;
}

/**
 * Starts the fake.
 *
 * @param options Page size for the artifact list (default 3, to exercise pagination).
 * @returns The fake.
 */
export function startFakeGitHub(
  options: { pageSize?: number } = {},
): FakeGitHub {
  const token = "ghs_FAKE_TOKEN_do_not_print_0123456789";
  const repository = "alex/memories";
  const artifacts = new Map<number, FakeArtifact>();
  const issues: FakeGitHub["issues"] = [];
  const seen: Seen[] = [];
  const failures: {
    pattern: RegExp;
    statuses: number[];
    headers: Record<string, string>;
  }[] = [];
  let nextId = 1000;
  const pageSize = options.pageSize ?? 3;
  const json = (
    body: unknown,
    status = 200,
    headers: Record<string, string> = {},
  ) =>
    new Response(JSON.stringify(body), {
      status,
      headers: { "content-type": "application/json", ...headers },
    });

  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) => {
      const url = new URL(request.url);
      const auth = request.headers.get("authorization");
      seen.push({
        method: request.method,
        path: url.pathname + url.search,
        auth,
      });
      const base = `${url.protocol}//${url.host}`;
      for (const f of failures) {
        if (f.pattern.test(url.pathname) && f.statuses.length > 0) {
          const status = f.statuses.shift()!;
          return json({ message: `injected ${status}` }, status, f.headers);
        }
      }
      if (url.pathname.startsWith("/storage/")) {
        // Like Azure storage: a signed URL, and a request with a token is refused.
        if (auth) {
          return new Response(
            "AuthenticationFailed: unexpected Authorization header",
            { status: 400 },
          );
        }
        const artifact = artifacts.get(Number(url.pathname.split("/")[2]));
        if (
          !artifact || url.searchParams.get("sig") !== "ok"
        ) return new Response("not found", { status: 404 });
        return new Response(artifact.zip.slice(), {
          headers: { "content-type": "application/zip" },
        });
      }
      if (auth !== `Bearer ${token}`) {
        return json({
          message: "Bad credentials",
        }, 401);
      }
      const prefix = `/repos/${repository}`;
      if (!url.pathname.startsWith(prefix)) {
        return json({
          message: "Not Found",
        }, 404);
      }
      const path = url.pathname.slice(prefix.length);
      if (request.method === "GET" && path === "/actions/artifacts") {
        const all = [...artifacts.values()].sort((a, b) =>
          b.created_at.localeCompare(a.created_at)
        );
        const page = Number(url.searchParams.get("page") ?? "1");
        const items = all.slice((page - 1) * pageSize, page * pageSize);
        const headers: Record<string, string> = {};
        if (page * pageSize < all.length) {
          headers.link =
            `<${base}${prefix}/actions/artifacts?per_page=100&page=${
              page + 1
            }>; rel="next"`;
        }
        return json(
          {
            total_count: all.length,
            artifacts: items.map(({ zip: _, ...a }) => a),
          },
          200,
          headers,
        );
      }
      const one = /^\/actions\/artifacts\/(\d+)(\/zip)?$/.exec(path);
      if (one) {
        const artifact = artifacts.get(Number(one[1]));
        if (!artifact) return json({ message: "Not Found" }, 404);
        if (request.method === "DELETE" && !one[2]) {
          artifacts.delete(artifact.id);
          return new Response(null, { status: 204 });
        }
        if (request.method === "GET" && one[2]) {
          if (artifact.expired) {
            return json({
              message: "Artifact has expired",
            }, 410);
          }
          return new Response(null, {
            status: 302,
            headers: { location: `${base}/storage/${artifact.id}?sig=ok` },
          });
        }
      }
      if (path === "/issues" && request.method === "GET") {
        return json(
          issues.map((i) => ({
            number: i.number,
            title: i.title,
            html_url: `${base}/issues/${i.number}`,
          })),
        );
      }
      if (path === "/issues" && request.method === "POST") {
        const body = await request.json() as { title: string; body: string };
        const issue = {
          number: issues.length + 1,
          title: body.title,
          body: body.body,
          comments: [] as string[],
        };
        issues.push(issue);
        return json({
          number: issue.number,
          title: issue.title,
          html_url: `${base}/issues/${issue.number}`,
        }, 201);
      }
      const comment = /^\/issues\/(\d+)\/comments$/.exec(path);
      if (comment && request.method === "POST") {
        const issue = issues.find((i) => i.number === Number(comment[1]));
        if (!issue) return json({ message: "Not Found" }, 404);
        issue.comments.push(((await request.json()) as { body: string }).body);
        return json({ id: 1 }, 201);
      }
      return json({ message: "Not Found" }, 404);
    },
  );
  const address = server.addr as Deno.NetAddr;
  return {
    url: `http://127.0.0.1:${address.port}`,
    host: `127.0.0.1:${address.port}`,
    token,
    repository,
    artifacts,
    issues,
    seen,
    add(name, zip, o = {}) {
      const created = o.createdAt ?? new Date().toISOString();
      const artifact: FakeArtifact = {
        id: nextId++,
        name,
        size_in_bytes: zip.length,
        expired: o.expired ?? false,
        created_at: created,
        expires_at: new Date(Date.parse(created) + 40 * 86_400_000)
          .toISOString(),
        digest: o.digest === undefined
          ? `sha256:${createHash("sha256").update(zip).digest("hex")}`
          : o.digest,
        zip,
      };
      artifacts.set(artifact.id, artifact);
      return artifact;
    },
    fail(pattern, statuses, headers = {}) {
      failures.push({ pattern, statuses: [...statuses], headers });
    },
    close: () => server.shutdown(),
  };
}
