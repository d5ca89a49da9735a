/**
 * S3-compatible storage for tests: the npm package `s3rver` (a real S3
 * server in Node) on 127.0.0.1, with one bucket, and a proxy in front of it
 * that fails on demand as object storage does: a 500 (then the real
 * answer to the retry), a 403, or a connection dropped mid-upload.
 *
 * s3rver accepts any Signature Version 4 signature from a known access key
 * (it checks the key, not the signature): the signer is tested against
 * AWS's published example instead.
 *
 * s3rver makes its ListObjectsV2 continuation tokens with DES, which
 * neither Deno's crypto nor OpenSSL 3 offers (a listing of more than 1,000
 * keys answered 500): here DES is AES-128-CTR under a key and IV padded to
 * 16 bytes. A token is opaque to a client, so what the client does with it
 * is unchanged.
 *
 * @module
 */

import crypto from "node:crypto";
import { Buffer } from "node:buffer";
import S3rver from "s3rver";

const pad = (bytes: Uint8Array) => Buffer.concat([bytes, Buffer.alloc(8)]);
for (const name of ["createCipheriv", "createDecipheriv"] as const) {
  const original = crypto[name] as (...args: unknown[]) => unknown;
  Object.assign(crypto, {
    [name]: (algorithm: string, key: Uint8Array, iv: Uint8Array) =>
      algorithm === "des"
        ? original("aes-128-ctr", pad(key), pad(iv))
        : original(algorithm, key, iv),
  });
}

/** A running S3 server. */
export interface TestS3 {
  /** `http://127.0.0.1:PORT` of the proxy. */
  readonly endpoint: string;
  /** The settings a command needs to reach `s3://memkeep-test/...`. */
  readonly env: Record<string, string>;
  /** The bucket. */
  readonly bucket: string;
  /** Requests the proxy passed on, as `METHOD /path`. */
  readonly requests: string[];
  /**
   * Makes the next requests matching `pattern` (`METHOD /path?query`) fail
   * `times` times.
   */
  fail(
    pattern: RegExp,
    how: "500" | "403" | "drop",
    times?: number,
  ): void;
  close(): Promise<void>;
}

/** s3rver's built-in account. */
const ACCESS_KEY = "S3RVER";

/**
 * Starts s3rver and the proxy.
 *
 * @returns The server.
 */
export async function startS3(): Promise<TestS3> {
  const dir = await Deno.makeTempDir({ prefix: "memkeep-s3-" });
  const bucket = "memkeep-test";
  const server = new S3rver({
    port: 0,
    address: "127.0.0.1",
    silent: true,
    directory: dir,
    configureBuckets: [{ name: bucket }],
  });
  const info = await server.run();
  const upstream = `http://127.0.0.1:${info.port}`;
  const faults: { pattern: RegExp; how: string; left: number }[] = [];
  const requests: string[] = [];
  // A proxy at the TCP level, one request per connection (it asks the
  // server to close after each), so that it can drop a connection
  // mid-upload as a network does.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    for await (const conn of listener) {
      handle(conn, upstream, faults, requests).catch(() => conn.close());
    }
  })();
  const endpoint = `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`;
  return {
    endpoint,
    bucket,
    requests,
    env: {
      S3_ENDPOINT: endpoint,
      AWS_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: ACCESS_KEY,
      AWS_SECRET_ACCESS_KEY: "S3RVER-secret-never-printed",
    },
    fail(pattern, how, times = 1) {
      faults.push({ pattern, how, left: times });
    },
    async close() {
      listener.close();
      await serving.catch(() => {});
      await server.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

const HEAD_END = new TextEncoder().encode("\r\n\r\n");

function indexOf(bytes: Uint8Array, part: Uint8Array): number {
  outer: for (let i = 0; i + part.length <= bytes.length; i++) {
    for (let j = 0; j < part.length; j++) {
      if (bytes[i + j] !== part[j]) continue outer;
    }
    return i;
  }
  return -1;
}

async function readHead(
  conn: Deno.Conn,
): Promise<{ head: string; rest: Uint8Array } | undefined> {
  let buffer = new Uint8Array(0);
  const chunk = new Uint8Array(64 * 1024);
  for (;;) {
    const at = indexOf(buffer, HEAD_END);
    if (at >= 0) {
      return {
        head: new TextDecoder().decode(buffer.subarray(0, at)),
        rest: buffer.subarray(at + 4),
      };
    }
    const n = await conn.read(chunk);
    if (n === null) return undefined;
    const joined = new Uint8Array(buffer.length + n);
    joined.set(buffer);
    joined.set(chunk.subarray(0, n), buffer.length);
    buffer = joined;
  }
}

async function drain(conn: Deno.Conn, have: number, length: number) {
  const chunk = new Uint8Array(64 * 1024);
  while (have < length) {
    const n = await conn.read(chunk);
    if (n === null) return;
    have += n;
  }
}

async function handle(
  conn: Deno.Conn,
  upstream: string,
  faults: { pattern: RegExp; how: string; left: number }[],
  requests: string[],
): Promise<void> {
  const request = await readHead(conn);
  if (!request) return conn.close();
  const [method, target] = request.head.split(" ");
  const line = `${method} ${target}`;
  const length = Number(
    /^content-length:\s*(\d+)/im.exec(request.head)?.[1] ?? 0,
  );
  const fault = faults.find((f) => f.left > 0 && f.pattern.test(line));
  if (fault) {
    fault.left--;
    if (fault.how === "drop") {
      // Half the body arrives, then the connection is gone.
      await drain(conn, request.rest.length, Math.floor(length / 2));
      return conn.close();
    }
    await drain(conn, request.rest.length, length);
    const code = fault.how === "403" ? "AccessDenied" : "InternalError";
    const body =
      `<Error><Code>${code}</Code><Message>from the test</Message></Error>`;
    await conn.write(
      new TextEncoder().encode(
        `HTTP/1.1 ${
          fault.how === "403" ? "403 Forbidden" : "500 Internal Server Error"
        }\r\ncontent-type: application/xml\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
      ),
    );
    return conn.close();
  }
  requests.push(line);
  const head =
    request.head.split("\r\n").filter((h) => !/^connection:/i.test(h)).join(
      "\r\n",
    ) + "\r\nconnection: close\r\n\r\n";
  const url = new URL(upstream);
  const up = await Deno.connect({
    hostname: url.hostname,
    port: Number(url.port),
  });
  await up.write(new TextEncoder().encode(head));
  if (request.rest.length > 0) await up.write(request.rest);
  await Promise.all([
    conn.readable.pipeTo(up.writable).catch(() => {}),
    up.readable.pipeTo(conn.writable).catch(() => {}),
  ]);
}
