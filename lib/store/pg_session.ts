/**
 * A {@linkcode SqlSession} over the Postgres wire protocol with postgres.js.
 *
 * @module
 */

import { isIP } from "node:net";
import { checkServerIdentity, type PeerCertificate } from "node:tls";
import postgres from "postgres";
import type { ConnectionSettings } from "./connection.ts";
import { oneLine, StoreError } from "../errors.ts";
import type { Readable, Writable } from "node:stream";
import { copyChunks } from "./copy_stream.ts";
import type { CopyWriter, SqlSession, TextRow } from "./sql.ts";

// postgres.js prints every message type it does not know on stderr, over
// and over for a server that is not Postgres; the failed handshake is
// reported in one line instead.
// deno-lint-ignore no-console
const consoleError = console.error;
// deno-lint-ignore no-console
console.error = (...args: unknown[]): void => {
  if (args[0] === "Postgres.js : Unknown Message:") return;
  consoleError(...args);
};

/**
 * Opens one connection and keeps it for the whole session, so that a
 * transaction and its cursor stay on the same backend.
 *
 * @param settings The parsed `DATABASE_URL`.
 * @returns The session.
 * @throws {StoreError} When the server cannot be reached or refuses the login.
 */
export async function openPostgresSession(
  settings: ConnectionSettings,
): Promise<SqlSession> {
  const tls = settings.tls === false ? "not asked" : await askTls(settings);
  if (tls === "refused") {
    throw new StoreError(
      `Cannot connect to ${settings.display}: the server does not support SSL, but sslmode asks for it (sslmode=disable only on a network you trust)`,
    );
  }
  if (tls === "no answer") {
    throw new StoreError(
      `Cannot connect to ${settings.display}: ${
        describeConnectError({ code: "CONNECT_TIMEOUT" }, settings)
      }`,
    );
  }
  let lost = false;
  // Every option postgres.js would otherwise read from PG* environment
  // variables is given here, so the script needs no extra env grants.
  const options = {
    host: settings.host,
    port: settings.port,
    database: settings.database,
    username: settings.user,
    password: settings.password,
    ssl: settings.tls === false ? false : tlsOptions(settings.tls),
    prepare: settings.prepare,
    connect_timeout: settings.connectTimeout,
    max: 1,
    idle_timeout: 0,
    max_lifetime: null,
    max_pipeline: 100,
    keep_alive: 60,
    backoff: () => 0,
    debug: false,
    // fetch_types: false makes reserve() hang (postgres.js 3.4.9).
    fetch_types: true,
    publications: "alltables",
    target_session_attrs: undefined,
    onnotice: () => {},
    onclose: () => {
      lost = true;
    },
    sslnegotiation: null,
    connection: { application_name: "memkeep", ...settings.params },
  };
  const sql = postgres(options as postgres.Options<Record<string, never>>);
  let reserved: postgres.ReservedSql;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    // postgres.js reconnects without end when the server closes the
    // connection before the handshake completes (or answers with something
    // that is not Postgres), restarting its connect timeout each time: bound
    // the whole handshake.
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(Object.assign(new Error(""), { code: "NO_HANDSHAKE" })),
        settings.connectTimeout * 1000 + 500,
      );
    });
    const reserving = sql.reserve();
    reserving.catch(() => {});
    reserved = await Promise.race([reserving, deadline]);
    await Promise.race([reserved.unsafe("select 1"), deadline]);
  } catch (error) {
    clearTimeout(timer);
    await sql.end({ timeout: 0 }).catch(() => {});
    if (error instanceof Deno.errors.NotCapable) throw error;
    throw new StoreError(
      `Cannot connect to ${settings.display}: ${
        describeConnectError(error, settings)
      }`,
      { cause: error },
    );
  }
  clearTimeout(timer);
  let closed = false;
  // pglite-socket speaks the protocol but hangs on COPY FROM STDIN, and a
  // COPY TO STDOUT of more than a few rows never ends there.
  const version = await reserved.unsafe("select version()").values()
    .catch(() => [[""]]) as unknown as TextRow[];
  const takesCopy = !/PGlite/.test(version[0]?.[0] ?? "");
  const fail = (error: unknown): StoreError => {
    if (error instanceof StoreError) return error;
    if (CONNECTION_LOST.has((error as { code?: string }).code ?? "")) {
      lost = true;
    }
    return new StoreError(describeQueryError(error, settings), {
      cause: error,
    });
  };
  const live = () => {
    if (lost) {
      throw new StoreError(`Lost the connection to ${settings.display}`);
    }
  };
  return {
    async query(
      text: string,
      params: (string | null)[] = [],
    ): Promise<TextRow[]> {
      // On a connection that has dropped, postgres.js writes to a socket
      // that is gone (an uncaught TypeError): fail the query here instead.
      if (lost) {
        throw new StoreError(`Lost the connection to ${settings.display}`);
      }
      try {
        return await reserved.unsafe(text, params)
          .values() as unknown as TextRow[];
      } catch (error) {
        // The socket may report the loss before it closes.
        if (CONNECTION_LOST.has((error as { code?: string }).code ?? "")) {
          lost = true;
        }
        throw new StoreError(describeQueryError(error, settings), {
          cause: error,
        });
      }
    },
    ...(takesCopy
      ? {
        async *copyOut(text: string): AsyncIterable<Uint8Array> {
          live();
          const query = reserved.unsafe(text) as unknown as Settled & {
            readable(): Promise<Readable>;
          };
          const finished = copyFinished(query);
          try {
            yield* copyChunks(await query.readable(), finished);
          } catch (error) {
            throw fail(error);
          }
        },
        async copyIn(text: string): Promise<CopyWriter> {
          live();
          const query = reserved.unsafe(text) as unknown as Settled & {
            writable(): Promise<Writable>;
          };
          const finished = copyFinished(query);
          let stream: Writable;
          try {
            stream = await query.writable();
          } catch (error) {
            throw fail(error);
          }
          // The server's reason settles the query; writes waiting then fail
          // with a bare "destroyed".
          let failure: unknown;
          const failed = finished.then(
            () => new Promise<never>(() => {}),
            (error) => {
              failure ??= error;
              throw fail(error);
            },
          );
          failed.catch(() => {});
          stream.on("error", (error) => {
            failure ??= error;
          });
          return {
            write(chunk: Uint8Array): Promise<void> {
              if (failure !== undefined) return Promise.reject(fail(failure));
              const written = new Promise<void>((resolve, reject) => {
                stream.write(chunk, (error) => {
                  if (error) reject(fail(failure ?? error));
                  else resolve();
                });
              });
              written.catch(() => {});
              return Promise.race([written, failed]);
            },
            async end(): Promise<void> {
              if (failure !== undefined) throw fail(failure);
              stream.end();
              try {
                await finished;
              } catch (error) {
                throw fail(error);
              }
            },
          };
        },
      }
      : {}),
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      reserved.release();
      await sql.end({ timeout: 1 });
    },
  };
}

/**
 * How the server answers an SSLRequest: `refused` ("N"), `no answer` within
 * the connect timeout, or `other` (yes, or a failure postgres.js then
 * reports in its own words). postgres.js would go on with a TLS handshake
 * the server never answers, and report a timeout.
 */
async function askTls(
  settings: ConnectionSettings,
): Promise<"refused" | "no answer" | "other"> {
  let conn: Deno.TcpConn | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timedOut = false;
  try {
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => {
        timedOut = true;
        resolve(undefined);
      }, settings.connectTimeout * 1000);
    });
    const connecting = Deno.connect({
      hostname: settings.host,
      port: settings.port,
    });
    // A connection made after the deadline is closed at once.
    connecting.then((c) => {
      if (timedOut) c.close();
    }, () => {});
    conn = await Promise.race([connecting, timeout]);
    if (!conn) return "no answer";
    // Length 8, then the SSLRequest code 80877103.
    await conn.write(new Uint8Array([0, 0, 0, 8, 4, 210, 22, 47]));
    const answer = new Uint8Array(1);
    const read = await Promise.race([conn.read(answer), timeout]);
    if (read === undefined) return "no answer";
    return read === 1 && answer[0] === 0x4e ? "refused" : "other"; // "N"
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) throw error;
    return "other";
  } finally {
    clearTimeout(timer);
    try {
      conn?.close();
    } catch {
      // already closed
    }
  }
}

/**
 * Node refuses an IP address as the TLS server name (an uncaught TypeError
 * inside postgres.js): for an IP, no SNI, and the certificate is checked
 * against the IP itself.
 */
function tlsOptions(
  tls: Exclude<ConnectionSettings["tls"], false>,
): Record<string, unknown> {
  const { servername, ...rest } = tls;
  if (!isIP(servername)) return { ...tls };
  return {
    ...rest,
    checkServerIdentity: (_host: string, cert: PeerCertificate) =>
      checkServerIdentity(servername, cert),
  };
}

function describeConnectError(
  error: unknown,
  settings: ConnectionSettings,
): string {
  const e = error as { code?: string; message?: string };
  switch (e.code) {
    case "ECONNREFUSED":
      return `connection refused (is the server running on ${settings.host}:${settings.port}?)`;
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return `host "${settings.host}" not found`;
    case "CONNECT_TIMEOUT":
      return `no answer within ${settings.connectTimeout} s`;
    case "NO_HANDSHAKE":
      return `no Postgres handshake within ${settings.connectTimeout} s (the server at ${settings.host}:${settings.port} closed the connection or answered something else)`;
    case "ECONNRESET":
      return "the server closed the connection";
    case "28P01":
      return `password authentication failed for user "${settings.user}"`;
    case "3D000":
      return `database "${settings.database}" does not exist`;
    default:
      return oneLine((e.message ?? String(error)).replace(/\s+/g, " "));
  }
}

/** A postgres.js query's own settle functions, which its connection calls. */
interface Settled {
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * When a COPY ends. postgres.js settles a COPY query twice: with the stream
 * when the server starts the COPY, then when it ends; it drops that second
 * outcome, and with it an error the server sends mid-COPY or after the last
 * row (which would leave the reader or writer waiting for ever). The second
 * settle is caught here.
 *
 * @param query The query, before its stream is asked for.
 * @returns Resolves when the server has completed the COPY, rejects with its
 * reason.
 */
function copyFinished(query: Settled): Promise<void> {
  let streaming = false;
  const { promise, resolve: done, reject: failed } = Promise.withResolvers<
    void
  >();
  promise.catch(() => {});
  const { resolve, reject } = query;
  query.resolve = (value) => {
    if (streaming) return done();
    streaming = true;
    resolve(value);
  };
  query.reject = (error) => {
    if (streaming) return failed(error);
    streaming = true;
    reject(error);
  };
  return promise;
}

/** Error codes of a connection that is gone. */
const CONNECTION_LOST = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
]);

function describeQueryError(
  error: unknown,
  settings: ConnectionSettings,
): string {
  const e = error as { code?: string; message?: string };
  if (CONNECTION_LOST.has(e.code ?? "")) {
    return `Lost the connection to ${settings.display}`;
  }
  // The server may quote a whole value from the backup: keep it short.
  return oneLine((e.message ?? String(error)).replace(/\s+/g, " "));
}
