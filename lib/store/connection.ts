/**
 * Turns a `DATABASE_URL` into postgres.js connection options that are safe for
 * Neon, Supabase and any Postgres: the certificate is verified for every host
 * that is not loopback, libpq-only URL parameters are stripped (postgres.js
 * would send them to the server as settings, and the server would refuse
 * them), prepared statements are off behind a transaction pooler, and there is
 * a connect timeout.
 *
 * @module
 */

import { UsageError } from "../errors.ts";
import { registerSecret } from "../redact.ts";

/** Parameters only libpq understands; never sent to the server. */
const LIBPQ_ONLY = new Set([
  "sslmode",
  "sslrootcert",
  "sslcert",
  "sslkey",
  "sslpassword",
  "sslcrl",
  "sslcrldir",
  "sslcompression",
  "sslsni",
  "sslnegotiation",
  "sslcertmode",
  "ssl_min_protocol_version",
  "ssl_max_protocol_version",
  "channel_binding",
  "connect_timeout",
  "gssencmode",
  "gsslib",
  "gssdelegation",
  "krbsrvname",
  "requirepeer",
  "requiressl",
  "require_auth",
  "passfile",
  "service",
  "servicefile",
  "target_session_attrs",
  "load_balance_hosts",
  "hostaddr",
  "host",
  "port",
  "dbname",
  "user",
  "password",
  "keepalives",
  "keepalives_idle",
  "keepalives_interval",
  "keepalives_count",
  "tcp_user_timeout",
  "fallback_application_name",
  "replication",
  "pgbouncer",
  "statement_cache_size",
  "schema",
]);

const SSL_MODES = [
  "disable",
  "allow",
  "prefer",
  "require",
  "verify-ca",
  "verify-full",
] as const;

/** How to secure the connection. */
export type TlsSetting =
  | false
  | {
    readonly rejectUnauthorized: true;
    readonly servername: string;
    readonly ca?: string;
  };

/** Everything needed to open a connection, with the secret kept apart. */
export interface ConnectionSettings {
  /** Host name or IP address. */
  readonly host: string;
  /** TCP port. */
  readonly port: number;
  /** Database name. */
  readonly database: string;
  /** User name. */
  readonly user: string;
  /** Password; never printed. */
  readonly password: string;
  /** TLS options, or `false` for a plain connection. */
  readonly tls: TlsSetting;
  /** `false` behind a transaction pooler (Neon `-pooler`, PgBouncer). */
  readonly prepare: boolean;
  /** Seconds to wait for the connection. */
  readonly connectTimeout: number;
  /** Server settings sent at start-up (libpq-only parameters removed). */
  readonly params: Readonly<Record<string, string>>;
  /** Whether the host is a loopback address. */
  readonly loopback: boolean;
  /** The URL without password or parameters, for messages. */
  readonly display: string;
}

/**
 * Whether a host name is a loopback address.
 *
 * @param host A host name or IP address.
 * @returns `true` for `localhost`, `127.x.x.x` and `::1`.
 */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h);
}

/**
 * Parses and checks a Postgres URL.
 *
 * @param url A `postgres://` or `postgresql://` URL.
 * @param setting The setting it came from, named in errors.
 * @param options `fallbackPassword`: `PGPASSWORD`, used when the URL has none;
 * `readCertificate: false` checks the URL without reading the CA file that
 * `sslrootcert` names (the launcher, which reads no file).
 * @returns The connection settings.
 * @throws {UsageError} When the URL cannot be used; the message never holds
 * the password.
 */
export function parseDatabaseUrl(
  url: string,
  setting = "DATABASE_URL",
  options: {
    fallbackPassword?: string | undefined;
    readCertificate?: boolean;
  } = {},
): ConnectionSettings {
  let parsed: URL;
  try {
    parsed = new URL(url.trim());
  } catch {
    throw new UsageError(
      setting,
      `Invalid ${setting}: not a URL (expected postgres://user:password@host:5432/database)`,
    );
  }
  // Register the secret in every spelling before anything can fail.
  registerSecret(parsed.password);
  registerSecret(parsed.searchParams.get("password") ?? undefined);
  // An unescaped "/", "?" or "#" in the password ends the host part early:
  // the rest of it would become the database name, a parameter or a
  // fragment, and be printed or sent to the server.
  if (
    parsed.pathname.includes("@") || parsed.hash.includes("@") ||
    [...parsed.searchParams.keys()].some((key) => key.includes("@"))
  ) {
    throw new UsageError(
      setting,
      `Invalid ${setting}: it has an "@" after the host; percent-encode "/", "?", "#" and "@" in the user name and password (%2F, %3F, %23, %40)`,
    );
  }
  const decode = (part: string, what: string): string => {
    try {
      return decodeURIComponent(part);
    } catch {
      throw new UsageError(
        setting,
        `Invalid ${setting}: the ${what} has a malformed %-escape`,
      );
    }
  };
  // libpq also takes the password as a parameter: ?password=…
  // As libpq: the URL, then ?password=, then PGPASSWORD.
  const password = decode(parsed.password, "password") ||
    (parsed.searchParams.get("password") ?? "") ||
    (options.fallbackPassword ?? "");
  registerSecret(password);
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
    throw new UsageError(
      setting,
      `Invalid ${setting}: scheme "${
        parsed.protocol.slice(0, -1)
      }" is not postgres:// or postgresql://`,
    );
  }
  const host = parsed.hostname.replace(/^\[|\]$/g, "");
  if (host === "") {
    throw new UsageError(setting, `Invalid ${setting}: it names no host`);
  }
  if (host.includes(",")) {
    throw new UsageError(
      setting,
      `Invalid ${setting}: several hosts are not supported; name one`,
    );
  }
  const port = parsed.port === "" ? 5432 : Number(parsed.port);
  const user = decode(parsed.username, "user name");
  if (user === "") {
    throw new UsageError(setting, `Invalid ${setting}: it names no user`);
  }
  const database =
    decode(parsed.pathname.replace(/^\//, ""), "database name") ||
    user;
  const query = parsed.searchParams;
  const sslmode = query.get("sslmode") ?? undefined;
  if (
    sslmode !== undefined &&
    !(SSL_MODES as readonly string[]).includes(sslmode)
  ) {
    throw new UsageError(
      setting,
      `Invalid ${setting}: sslmode "${sslmode}" is not one of ${
        SSL_MODES.join(", ")
      }`,
    );
  }
  const loopback = isLoopback(host);
  const rootCert = query.get("sslrootcert") ?? undefined;
  let tls: TlsSetting;
  if (sslmode === "disable" || (loopback && !sslmode)) {
    tls = false;
  } else if (loopback && (sslmode === "allow" || sslmode === "prefer")) {
    tls = false;
  } else {
    // Every other case verifies the certificate: libpq's "require" does not,
    // which would let anyone on the path read the memories.
    tls = { rejectUnauthorized: true, servername: host };
    if (
      rootCert !== undefined && rootCert !== "system" &&
      options.readCertificate !== false
    ) {
      tls = { ...tls, ca: readCertificate(rootCert, setting) };
    }
  }
  const timeoutText = query.get("connect_timeout");
  const connectTimeout = timeoutText === null ? 10 : Number(timeoutText);
  if (!Number.isFinite(connectTimeout) || connectTimeout <= 0) {
    throw new UsageError(
      setting,
      `Invalid ${setting}: connect_timeout "${timeoutText}" is not a positive number of seconds`,
    );
  }
  const params: Record<string, string> = {};
  for (const [key, value] of query) {
    if (!LIBPQ_ONLY.has(key)) params[key] = value;
  }
  const pooler = /-pooler\./i.test(host) || port === 6543 ||
    query.get("pgbouncer") === "true";
  // Built from the parts, never from the URL: no password can be in it.
  const display = `postgresql://${encodeURIComponent(user)}@${
    host.includes(":") ? `[${host}]` : host
  }:${port}/${encodeURIComponent(database)}`;
  return {
    host,
    port,
    database,
    user,
    password,
    tls,
    prepare: !pooler,
    connectTimeout,
    params,
    loopback,
    display,
  };
}

function readCertificate(path: string, setting: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) throw error;
    throw new UsageError(
      setting,
      `Invalid ${setting}: cannot read sslrootcert "${path}"`,
      { cause: error },
    );
  }
}

/**
 * The CA certificate file a connection reads (`sslrootcert`), for a scoped
 * `--allow-read` grant.
 *
 * @param url The database URL.
 * @returns The path, or `undefined` when none (or `system`) is named.
 */
export function certificateGrant(url: string): string | undefined {
  try {
    const path = new URL(url.trim()).searchParams.get("sslrootcert");
    return path === null || path === "" || path === "system" ? undefined : path;
  } catch {
    return undefined;
  }
}

/**
 * The `host:port` a connection needs network access to, for a scoped
 * `--allow-net` grant.
 *
 * @param url A Postgres URL.
 * @returns `host:port`, or `undefined` when the URL is not usable.
 */
export function netGrant(url: string): string | undefined {
  try {
    const parsed = new URL(url.trim());
    const port = parsed.port === "" ? "5432" : parsed.port;
    return parsed.hostname === "" ? undefined : `${parsed.hostname}:${port}`;
  } catch {
    return undefined;
  }
}
