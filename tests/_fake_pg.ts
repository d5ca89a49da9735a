/**
 * A fake Postgres server on 127.0.0.1 that asks for a password and refuses
 * it, as a server does for a wrong password (SQLSTATE 28P01).
 *
 * @module
 */

/** The running server. */
export interface FakeServer {
  /** Its port. */
  readonly port: number;
  /** Passwords clients sent. */
  readonly passwords: string[];
  /** Stops it. */
  close(): Promise<void>;
}

/**
 * Reads exactly `n` bytes.
 *
 * @param conn The connection.
 * @param n How many bytes.
 * @returns The bytes, or `undefined` when the peer closed first.
 */
export async function readExactly(
  conn: Deno.Conn,
  n: number,
): Promise<Uint8Array | undefined> {
  const out = new Uint8Array(n);
  let off = 0;
  while (off < n) {
    const r = await conn.read(out.subarray(off));
    if (r === null) return undefined;
    off += r;
  }
  return out;
}

function message(type: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + body.length);
  out[0] = type.charCodeAt(0);
  new DataView(out.buffer).setInt32(1, 4 + body.length);
  out.set(body, 5);
  return out;
}

async function serve(conn: Deno.Conn, passwords: string[]): Promise<void> {
  const encoder = new TextEncoder();
  try {
    while (true) {
      const head = await readExactly(conn, 4);
      if (!head) return;
      const len = new DataView(head.buffer).getInt32(0);
      const body = await readExactly(conn, len - 4);
      if (!body) return;
      const code = new DataView(body.buffer).getInt32(0);
      if (code === 80877103) {
        await conn.write(encoder.encode("N")); // no SSL
        continue;
      }
      break; // the startup message
    }
    const auth = new Uint8Array(4);
    new DataView(auth.buffer).setInt32(0, 3); // cleartext password
    await conn.write(message("R", auth));
    const type = await readExactly(conn, 1);
    const head = await readExactly(conn, 4);
    if (!type || !head) return;
    const body = await readExactly(
      conn,
      new DataView(head.buffer).getInt32(0) - 4,
    );
    if (body) passwords.push(new TextDecoder().decode(body).replace(/\0$/, ""));
    const fields = [
      "SFATAL",
      "VFATAL",
      "C28P01",
      'Mpassword authentication failed for user "me"',
    ];
    await conn.write(
      message("E", encoder.encode(fields.map((f) => f + "\0").join("") + "\0")),
    );
  } finally {
    try {
      conn.close();
    } catch {
      // closed by the client
    }
  }
}

/**
 * Starts the fake server.
 *
 * @returns The server.
 */
export function startFakeAuthServer(): FakeServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const passwords: string[] = [];
  const connections: Promise<void>[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        connections.push(serve(conn, passwords));
      }
    } catch {
      // listener closed
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    passwords,
    async close() {
      listener.close();
      await accepting;
      await Promise.all(connections);
    },
  };
}
