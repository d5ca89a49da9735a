/**
 * AWS Signature Version 4 for S3 requests (the header form): the canonical
 * request, the string to sign, the signing key derived from the secret for
 * the day, region and service, and the `authorization` header. Tested
 * against AWS's published example.
 *
 * @module
 */

import { createHash, createHmac } from "node:crypto";

/** RFC 3986 encoding, as SigV4 wants it (`/` kept in paths). */
export function encode(text: string, keepSlash: boolean): string {
  const encoded = encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return keepSlash ? encoded.replace(/%2F/g, "/") : encoded;
}

function hmac(key: string | Buffer, text: string): Buffer {
  return createHmac("sha256", key).update(text).digest();
}

/** One request to sign. */
export interface SignInput {
  readonly method: string;
  readonly url: URL;
  /** Headers to sign besides host and the x-amz ones. */
  readonly headers: Readonly<Record<string, string>>;
  /** SHA-256 of the body, hex. */
  readonly payloadHash: string;
  readonly accessKey: string;
  readonly secretKey: string;
  readonly sessionToken?: string | undefined;
  readonly region: string;
  /** `YYYYMMDDTHHMMSSZ`. */
  readonly amzDate: string;
}

/**
 * Signs a request with AWS Signature Version 4 (header form, service s3).
 *
 * @param input The request and the credentials.
 * @returns The headers to send (all signed ones but host, and
 * `authorization`).
 */
export function signV4(input: SignInput): Headers {
  const { url, amzDate } = input;
  const date = amzDate.slice(0, 8);
  const headers: Record<string, string> = {
    host: url.host,
    "x-amz-content-sha256": input.payloadHash,
    "x-amz-date": amzDate,
  };
  for (const [k, v] of Object.entries(input.headers)) {
    headers[k.toLowerCase()] = v;
  }
  if (input.sessionToken) headers["x-amz-security-token"] = input.sessionToken;
  const names = Object.keys(headers).sort();
  const query = [...url.searchParams.entries()]
    .map(([k, v]) => `${encode(k, false)}=${encode(v, false)}`)
    .sort()
    .join("&");
  const canonical = [
    input.method,
    url.pathname,
    query,
    names.map((n) => `${n}:${headers[n]!.trim()}\n`).join(""),
    names.join(";"),
    input.payloadHash,
  ].join("\n");
  const scope = `${date}/${input.region}/s3/aws4_request`;
  const toSign = [
    "AWS4-HMAC-SHA256",
    amzDate,
    scope,
    createHash("sha256").update(canonical).digest("hex"),
  ].join("\n");
  const key = hmac(
    hmac(hmac(hmac(`AWS4${input.secretKey}`, date), input.region), "s3"),
    "aws4_request",
  );
  const signature = createHmac("sha256", key).update(toSign).digest("hex");
  const out = new Headers();
  for (const n of names) if (n !== "host") out.set(n, headers[n]!);
  out.set(
    "authorization",
    `AWS4-HMAC-SHA256 Credential=${input.accessKey}/${scope}, SignedHeaders=${
      names.join(";")
    }, Signature=${signature}`,
  );
  return out;
}
