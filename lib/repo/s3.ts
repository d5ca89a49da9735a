/**
 * A repository in S3-compatible object storage (AWS S3, Cloudflare R2,
 * Backblaze B2, MinIO): `s3://BUCKET/PREFIX`, with `S3_ENDPOINT` (unset:
 * AWS, `https://s3.<region>.amazonaws.com`; set: that server, path-style),
 * `AWS_REGION` (default `us-east-1`; R2 takes `auto`), `AWS_ACCESS_KEY_ID`,
 * `AWS_SECRET_ACCESS_KEY` and, for temporary credentials,
 * `AWS_SESSION_TOKEN`.
 *
 * Five requests are all a repository needs (GET, ranged GET, PUT, DELETE,
 * ListObjectsV2), so they are signed by `sigv4.ts` (AWS Signature Version
 * 4, with `node:crypto`) rather than with the AWS SDK, whose client is hundreds of
 * modules and, since 3.729, sends CRC32 checksums R2 and B2 refuse. A PUT
 * carries its SHA-256 (`x-amz-content-sha256`), which S3 checks. A 5xx, a
 * 429 or a dropped connection is retried (four attempts, backing off); a
 * 403 is one line naming the bucket and the settings to check. The secret
 * key is registered for redaction and never appears in a message.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { encode, signV4 } from "./sigv4.ts";
import { RepoError, UsageError } from "../errors.ts";
import { registerSecret } from "../redact.ts";
import { isTemporary, type RepoStorage, type StoredFile } from "./storage.ts";

/** The settings an S3 repository reads. */
export const S3_ENV = [
  "S3_ENDPOINT",
  "AWS_REGION",
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
] as const;

const ATTEMPTS = 4;
const EMPTY_SHA256 = createHash("sha256").update("").digest("hex");

/** Where an S3 repository is and how to reach it. */
export interface S3Location {
  readonly bucket: string;
  /** Key prefix, without leading or trailing slash (may be empty). */
  readonly prefix: string;
  /** The server, e.g. `https://s3.us-east-1.amazonaws.com`. */
  readonly endpoint: URL;
  /** Bucket in the path (custom endpoints) or in the host name (AWS). */
  readonly pathStyle: boolean;
  readonly region: string;
}

/**
 * Parses `s3://BUCKET/PREFIX` with the endpoint settings (no credentials).
 *
 * @param location The repository as given.
 * @param env Reads `S3_ENDPOINT` and `AWS_REGION`.
 * @param setting The flag or variable that named it, for errors.
 * @returns The location.
 * @throws {UsageError} When the bucket or the endpoint is not valid.
 */
export function parseS3Location(
  location: string,
  env: (name: string) => string | undefined,
  setting: string,
): S3Location {
  const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(location);
  const bucket = match?.[1] ?? "";
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new UsageError(
      setting,
      `Invalid ${setting}: "${location}" does not name a bucket (s3://BUCKET/PREFIX, a bucket of 3 to 63 lowercase letters, digits, dots and hyphens)`,
    );
  }
  const region = env("AWS_REGION")?.trim() || "us-east-1";
  const custom = env("S3_ENDPOINT")?.trim();
  let endpoint: URL;
  try {
    endpoint = new URL(custom || `https://s3.${region}.amazonaws.com`);
  } catch {
    throw new UsageError(
      "S3_ENDPOINT",
      `Invalid S3_ENDPOINT: "${custom}" is not a URL (e.g. https://ACCOUNT.r2.cloudflarestorage.com)`,
    );
  }
  if (endpoint.protocol !== "https:" && endpoint.protocol !== "http:") {
    throw new UsageError(
      "S3_ENDPOINT",
      `Invalid S3_ENDPOINT: "${custom}" is not an http(s) URL`,
    );
  }
  return {
    bucket,
    prefix: (match?.[2] ?? "").replace(/^\/+|\/+$/g, ""),
    endpoint,
    pathStyle: Boolean(custom),
    region,
  };
}

/**
 * The `host:port` a location connects to, for the permission grant.
 *
 * @param s3 The location.
 * @returns E.g. `my-bucket.s3.us-east-1.amazonaws.com:443`.
 */
export function s3Host(s3: S3Location): string {
  const host = s3.pathStyle
    ? s3.endpoint.hostname
    : `${s3.bucket}.${s3.endpoint.hostname}`;
  const port = s3.endpoint.port ||
    (s3.endpoint.protocol === "http:" ? "80" : "443");
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/** A repository in a bucket. */
export class S3Storage implements RepoStorage {
  readonly location: string;
  readonly cheapRanges = false;
  readonly #accessKey: string;
  readonly #secretKey: string;
  readonly #sessionToken: string | undefined;

  /**
   * @param s3 Where.
   * @param env Reads the credentials.
   * @throws {UsageError} When the credentials are not set.
   */
  constructor(
    private readonly s3: S3Location,
    env: (name: string) => string | undefined,
  ) {
    this.location = `s3://${s3.bucket}${s3.prefix ? `/${s3.prefix}` : ""}`;
    const accessKey = env("AWS_ACCESS_KEY_ID")?.trim();
    const secretKey = env("AWS_SECRET_ACCESS_KEY")?.trim();
    if (!accessKey || !secretKey) {
      throw new UsageError(
        accessKey ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID",
        `Missing ${
          accessKey ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID"
        }: a repository in ${this.location} needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`,
      );
    }
    registerSecret(secretKey);
    this.#sessionToken = env("AWS_SESSION_TOKEN")?.trim() || undefined;
    registerSecret(this.#sessionToken);
    this.#accessKey = accessKey;
    this.#secretKey = secretKey;
  }

  #key(path: string): string {
    const clean = path.replace(/^\.\/?/, "");
    return this.s3.prefix ? `${this.s3.prefix}/${clean}` : clean;
  }

  #url(key: string, query: Record<string, string> = {}): URL {
    const url = new URL(this.s3.endpoint.origin);
    if (!this.s3.pathStyle) url.hostname = `${this.s3.bucket}.${url.hostname}`;
    const object = key === "" ? "" : `/${encode(key, true)}`;
    url.pathname = this.s3.pathStyle
      ? `/${this.s3.bucket}${object}`
      : object || "/";
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    return url;
  }

  /** Signs and sends one request, retrying what is worth retrying. */
  async #send(
    method: string,
    url: URL,
    options: { body?: Uint8Array; headers?: Record<string, string> } = {},
    what: string,
  ): Promise<Response> {
    let lastProblem = "";
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      let response: Response;
      try {
        response = await fetch(url, {
          method,
          headers: this.#sign(method, url, options),
          ...(options.body
            ? { body: options.body as Uint8Array<ArrayBuffer> }
            : {}),
        });
      } catch (error) {
        if (error instanceof Deno.errors.NotCapable) throw error;
        lastProblem = `the connection failed (${
          error instanceof Error ? error.message : String(error)
        })`;
        await backOff(attempt);
        continue;
      }
      if (response.status >= 500 || response.status === 429) {
        lastProblem = `HTTP ${response.status}${await errorCode(response)}`;
        await backOff(attempt);
        continue;
      }
      if (response.status === 403 || response.status === 401) {
        throw new RepoError(
          this.location,
          `S3 refused to ${what} in ${this.location} (HTTP ${response.status}${await errorCode(
            response,
          )}): check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the bucket's permissions`,
        );
      }
      return response;
    }
    throw new RepoError(
      this.location,
      `Cannot ${what} in ${this.location}: ${lastProblem} after ${ATTEMPTS} attempts`,
    );
  }

  #sign(
    method: string,
    url: URL,
    options: { body?: Uint8Array; headers?: Record<string, string> },
  ): Headers {
    return signV4({
      method,
      url,
      headers: options.headers ?? {},
      payloadHash: options.body
        ? createHash("sha256").update(options.body).digest("hex")
        : EMPTY_SHA256,
      accessKey: this.#accessKey,
      secretKey: this.#secretKey,
      sessionToken: this.#sessionToken,
      region: this.s3.region,
      amzDate: new Date().toISOString().replace(/[-:]/g, "").replace(
        /\.\d{3}/,
        "",
      ),
    });
  }

  async read(path: string): Promise<Uint8Array | undefined> {
    const response = await this.#send(
      "GET",
      this.#url(this.#key(path)),
      {},
      `read ${path}`,
    );
    if (response.status === 404) {
      await response.body?.cancel();
      return undefined;
    }
    await this.#expect(response, [200], `read ${path}`);
    return new Uint8Array(await response.arrayBuffer());
  }

  async readRange(
    path: string,
    offset: number,
    length: number,
  ): Promise<Uint8Array> {
    const response = await this.#send("GET", this.#url(this.#key(path)), {
      headers: { range: `bytes=${offset}-${offset + length - 1}` },
    }, `read ${path}`);
    await this.#expect(response, [200, 206], `read ${path}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    // A server may answer a range with more (the whole object, or a wider
    // range): take the part asked for from where the answer starts.
    const from = response.status === 206
      ? Number(
        /bytes (\d+)-/.exec(response.headers.get("content-range") ?? "")?.[1] ??
          offset,
      )
      : 0;
    const start = offset - from;
    const part = bytes.subarray(start, start + length);
    if (part.length !== length) {
      throw new RepoError(
        this.location,
        `Damaged repository: "${this.location}/${path}" is shorter than its index says`,
      );
    }
    return part;
  }

  async write(
    path: string,
    bytes: Uint8Array,
    exclusive = false,
  ): Promise<void> {
    if (exclusive && (await this.#exists(path))) {
      throw new RepoError(
        this.location,
        `"${this.location}/${path}" already exists`,
      );
    }
    const response = await this.#send("PUT", this.#url(this.#key(path)), {
      body: bytes,
    }, `write ${path}`);
    await this.#expect(response, [200, 201, 204], `write ${path}`);
    await response.body?.cancel();
  }

  async #exists(path: string): Promise<boolean> {
    const response = await this.#send(
      "HEAD",
      this.#url(this.#key(path)),
      {},
      `read ${path}`,
    );
    await response.body?.cancel();
    return response.status === 200;
  }

  async list(folder: string): Promise<StoredFile[]> {
    const base = this.#key(folder === "." ? "" : folder);
    const prefix = base === "" ? "" : `${base.replace(/\/$/, "")}/`;
    const strip = this.s3.prefix ? this.s3.prefix.length + 1 : 0;
    const found: StoredFile[] = [];
    let token: string | undefined;
    do {
      const query: Record<string, string> = { "list-type": "2", prefix };
      if (token) query["continuation-token"] = token;
      const response = await this.#send(
        "GET",
        this.#url("", query),
        {},
        `list ${folder}`,
      );
      await this.#expect(response, [200], `list ${folder}`);
      const xml = await response.text();
      for (
        const [, body] of xml.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)
      ) {
        const key = unescapeXml(
          /<Key>([\s\S]*?)<\/Key>/.exec(body!)?.[1] ?? "",
        );
        const size = Number(/<Size>(\d+)<\/Size>/.exec(body!)?.[1] ?? 0);
        const path = key.slice(strip);
        if (isTemporary(path)) continue;
        found.push({ path, size });
      }
      token = /<IsTruncated>true<\/IsTruncated>/.test(xml)
        ? unescapeXml(
          /<NextContinuationToken>([\s\S]*?)<\/NextContinuationToken>/.exec(
            xml,
          )?.[1] ?? "",
        ) || undefined
        : undefined;
    } while (token);
    return found;
  }

  async remove(path: string): Promise<void> {
    const response = await this.#send(
      "DELETE",
      this.#url(this.#key(path)),
      {},
      `delete ${path}`,
    );
    await response.body?.cancel();
    if (![200, 204, 404].includes(response.status)) {
      throw new RepoError(
        this.location,
        `Cannot delete "${this.location}/${path}": HTTP ${response.status}`,
      );
    }
  }

  async #expect(
    response: Response,
    statuses: number[],
    what: string,
  ): Promise<void> {
    if (statuses.includes(response.status)) return;
    const code = await errorCode(response);
    throw new RepoError(
      this.location,
      response.status === 404 && /NoSuchBucket/.test(code)
        ? `Bucket "${this.s3.bucket}" does not exist at ${this.s3.endpoint.origin}`
        : `Cannot ${what} in ${this.location}: HTTP ${response.status}${code}`,
    );
  }
}

async function errorCode(response: Response): Promise<string> {
  const text = await response.text().catch(() => "");
  const code = /<Code>([^<]{1,64})<\/Code>/.exec(text)?.[1];
  return code ? ` ${code}` : "";
}

function unescapeXml(text: string): string {
  return text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(
    /&quot;/g,
    '"',
  ).replace(/&apos;/g, "'").replace(/&amp;/g, "&");
}

function backOff(attempt: number): Promise<void> {
  return attempt >= ATTEMPTS
    ? Promise.resolve()
    : new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
}
