/**
 * Servers on 127.0.0.1 that fail the way real ones do, for tests:
 *
 * - {@linkcode startFaultServer}: a "Postgres" that never answers, closes
 *   the connection mid-handshake, answers garbage or a message type no
 *   Postgres sends, refuses a connection without TLS (`hostssl` only), or
 *   offers no TLS to a client that requires it.
 * - {@linkcode startFaultProxy}: a proxy in front of a real (socket) server
 *   that passes the Postgres protocol through until a fault: it drops the
 *   connection, or answers with an error (e.g. SQLSTATE 57014, a statement
 *   timeout), after N rows of a result stream, or drops the connection when
 *   the client sends its Nth statement matching a pattern (mid-restore), or
 *   stalls the result after N rows (a slow server: the client waits).
 *
 * @module
 */

import { readExactly } from "./_fake_pg.ts";

/** How a fake server fails. */
export type FaultMode =
  /** Accepts and never answers: a connect timeout. */
  | "silent"
  /** Reads the start-up message and closes the connection. */
  | "close"
  /** Answers like an HTTP server, then closes. */
  | "garbage"
  /** Answers a message type no Postgres sends, then closes. */
  | "unknown-message"
  /** Refuses a plain connection as a `hostssl`-only server does (28000). */
  | "tls-only"
  /** Answers `N` to the TLS request (no TLS here), then closes. */
  | "no-tls";

/** A running fake server. */
export interface FaultServer {
  /** Its port. */
  readonly port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Stops it and closes every connection. */
  close(): Promise<void>;
}

const SSL_REQUEST = 80877103;
const encoder = new TextEncoder();

function message(type: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + body.length);
  out[0] = type.charCodeAt(0);
  new DataView(out.buffer).setInt32(1, 4 + body.length);
  out.set(body, 5);
  return out;
}

/**
 * An ErrorResponse message.
 *
 * @param severity `ERROR` or `FATAL`.
 * @param code The SQLSTATE.
 * @param text The message.
 * @returns The bytes.
 */
export function errorResponse(
  severity: string,
  code: string,
  text: string,
): Uint8Array {
  const fields = [`S${severity}`, `V${severity}`, `C${code}`, `M${text}`];
  return message(
    "E",
    encoder.encode(fields.map((f) => f + "\0").join("") + "\0"),
  );
}

async function readMessage(conn: Deno.Conn): Promise<Uint8Array | undefined> {
  const head = await readExactly(conn, 4);
  if (!head) return undefined;
  const length = new DataView(head.buffer).getInt32(0);
  return await readExactly(conn, length - 4);
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

async function serveFault(conn: Deno.Conn, mode: FaultMode): Promise<void> {
  let body = await readMessage(conn);
  if (!body) return;
  if (new DataView(body.buffer).getInt32(0) === SSL_REQUEST) {
    await conn.write(encoder.encode("N"));
    if (mode === "no-tls") {
      // The client starts TLS anyway; a real server reads that as a bad
      // start-up message and hangs up.
      await conn.read(new Uint8Array(1024));
      return;
    }
    body = await readMessage(conn);
    if (!body) return;
  }
  switch (mode) {
    case "silent":
      // Keeps the connection open, answering nothing, until the client goes.
      while ((await conn.read(new Uint8Array(1024))) !== null) {
        // discard
      }
      return;
    case "close":
    case "no-tls":
      return;
    case "garbage":
      await conn.write(
        encoder.encode(
          "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nThis is not a Postgres server\r\n",
        ),
      );
      return;
    case "unknown-message":
      await conn.write(new Uint8Array([1, 0, 0, 0, 8, 1, 2, 3, 4]));
      await new Promise((r) => setTimeout(r, 50));
      return;
    case "tls-only":
      await conn.write(
        errorResponse(
          "FATAL",
          "28000",
          'no pg_hba.conf entry for host "127.0.0.1", user "me", database "db", no encryption',
        ),
      );
      return;
  }
}

/**
 * Starts a fake server that fails in one way.
 *
 * @param mode How it fails.
 * @returns The server.
 */
export function startFaultServer(mode: FaultMode): FaultServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  const served: Promise<void>[] = [];
  let connections = 0;
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        connections++;
        open.add(conn);
        served.push(
          serveFault(conn, mode).catch(() => {}).finally(() => {
            open.delete(conn);
            closeQuietly(conn);
          }),
        );
      }
    } catch {
      // listener closed
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    get connections() {
      return connections;
    },
    async close() {
      listener.close();
      for (const conn of open) closeQuietly(conn);
      await accepting;
      await Promise.all(served);
    },
  };
}

/** What the proxy does to the connection. */
export type ProxyFault =
  | {
    /** Closes both sides after `rows` rows, counted once `armedBy` is sent. */
    readonly kind: "drop";
    readonly armedBy: RegExp;
    readonly rows: number;
  }
  | {
    /**
     * Replaces the rest of the result with this error after `rows` rows,
     * counted once `armedBy` is sent; once only.
     */
    readonly kind: "error";
    readonly armedBy: RegExp;
    readonly rows: number;
    /**
     * `complete`: instead, replaces the armed statement's completion (the
     * end of a `COPY FROM STDIN`, which returns no rows).
     */
    readonly at?: "complete";
    readonly code: string;
    readonly message: string;
  }
  | {
    /**
     * Stops passing the server's answers on after `rows` rows, counted once
     * `armedBy` is sent: the client waits, mid-stream, until it gives up.
     */
    readonly kind: "stall";
    readonly armedBy: RegExp;
    readonly rows: number;
  }
  | {
    /** Closes both sides when the client sends its `count`th statement matching `pattern`. */
    readonly kind: "drop-on-statement";
    readonly pattern: RegExp;
    readonly count: number;
  };

/** A running proxy. */
export interface FaultProxy {
  /** Its port. */
  readonly port: number;
  /** Whether the fault has happened. */
  readonly triggered: boolean;
  /** Resolves when the fault has happened and both sides are closed. */
  readonly done: Promise<void>;
  /** Stops it. */
  close(): Promise<void>;
}

/** Splits a byte stream into Postgres messages (the first may be untyped). */
class MessageReader {
  #buffer = new Uint8Array(0);
  #typed: boolean;

  constructor(typed: boolean) {
    this.#typed = typed;
  }

  push(chunk: Uint8Array): Uint8Array[] {
    const joined = new Uint8Array(this.#buffer.length + chunk.length);
    joined.set(this.#buffer);
    joined.set(chunk, this.#buffer.length);
    const out: Uint8Array[] = [];
    let off = 0;
    while (true) {
      const head = this.#typed ? 5 : 4;
      if (joined.length - off < head) break;
      const length = new DataView(joined.buffer, off + (this.#typed ? 1 : 0))
        .getInt32(0);
      const total = length + (this.#typed ? 1 : 0);
      if (joined.length - off < total) break;
      out.push(joined.slice(off, off + total));
      off += total;
      this.#typed = true;
    }
    this.#buffer = joined.slice(off);
    return out;
  }
}

const latin1 = new TextDecoder("latin1");

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}

/**
 * Starts a proxy to a Postgres server on 127.0.0.1 (without TLS) that
 * injects one fault.
 *
 * @param targetPort The real server's port.
 * @param fault What to do.
 * @returns The proxy.
 */
export function startFaultProxy(
  targetPort: number,
  fault: ProxyFault,
): FaultProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let triggered = false;
  const { promise: done, resolve: finished } = Promise.withResolvers<void>();
  const open = new Set<Deno.Conn>();
  const sessions: Promise<void>[] = [];
  let statements = 0;

  const session = async (client: Deno.Conn) => {
    const server = await Deno.connect({
      hostname: "127.0.0.1",
      port: targetPort,
    });
    open.add(server);
    let armed = false;
    let rows = 0;
    let swallowing = false;
    let stalled = false;
    const drop = () => {
      triggered = true;
      closeQuietly(client);
      closeQuietly(server);
      finished();
    };
    const upstream = (async () => {
      const reader = new MessageReader(false);
      for await (const chunk of client.readable) {
        for (const msg of reader.push(chunk)) {
          const text = latin1.decode(msg);
          if (fault.kind !== "drop-on-statement") {
            if (!triggered && fault.armedBy.test(text)) armed = true;
          } else if (
            !triggered && (msg[0] === 0x50 || msg[0] === 0x51) &&
            fault.pattern.test(text) && ++statements === fault.count
          ) {
            drop();
            return;
          }
          await writeAll(server, msg);
        }
      }
    })();
    const downstream = (async () => {
      const reader = new MessageReader(true);
      for await (const chunk of server.readable) {
        for (const msg of reader.push(chunk)) {
          if (stalled) continue;
          if (swallowing) {
            if (msg[0] !== 0x5a) continue; // until ReadyForQuery
            swallowing = false;
            const ready = msg.slice();
            ready[5] = 0x45; // "E": in a failed transaction
            await writeAll(client, ready);
            finished();
            continue;
          }
          const atComplete = fault.kind === "error" &&
            fault.at === "complete";
          if (
            armed && !triggered && fault.kind !== "drop-on-statement" &&
            (atComplete
              ? msg[0] === 0x43 // CommandComplete
              // DataRow, or CopyData of a COPY TO STDOUT
              : (msg[0] === 0x44 || msg[0] === 0x64) && ++rows > fault.rows)
          ) {
            if (fault.kind === "drop") {
              drop();
              return;
            }
            if (fault.kind === "stall") {
              triggered = stalled = true;
              finished();
              continue;
            }
            triggered = true;
            swallowing = true;
            await writeAll(
              client,
              errorResponse("ERROR", fault.code, fault.message),
            );
            continue;
          }
          await writeAll(client, msg);
        }
      }
    })();
    // When either side ends, so does the other.
    await Promise.race([upstream, downstream]).catch(() => {});
    closeQuietly(client);
    closeQuietly(server);
    await Promise.allSettled([upstream, downstream]);
    closeQuietly(client);
    closeQuietly(server);
    open.delete(server);
  };

  const accepting = (async () => {
    try {
      for await (const client of listener) {
        open.add(client);
        sessions.push(
          session(client).catch(() => {}).finally(() => {
            open.delete(client);
            closeQuietly(client);
          }),
        );
      }
    } catch {
      // listener closed
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    get triggered() {
      return triggered;
    },
    done,
    async close() {
      listener.close();
      for (const conn of open) closeQuietly(conn);
      await accepting;
      await Promise.all(sessions);
      finished();
    },
  };
}
