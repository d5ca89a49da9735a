/**
 * Helpers for the crash and concurrency tests: scripts spawned with exactly
 * their production flags (read from their shebang) so they can be killed
 * with SIGKILL, what a running process has open (Linux `/proc`), and
 * digests of both stores to prove nothing changed.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { ENV_SETTINGS } from "../lib/store/config.ts";
import { BACKUP_NAME, TEMP_PREFIX } from "../lib/format/layout.ts";
import { parseDatabaseUrl } from "../lib/store/connection.ts";
import { openPostgresSession } from "../lib/store/pg_session.ts";
import { type Checkout, productionArgs } from "./_checkout.ts";
import { shellEnv } from "./_helpers.ts";
import {
  seedMemories,
  startWireDatabase,
  tableDigest,
  type WireDatabase,
} from "./_db.ts";
import { seedRelationshipStore } from "../lib/store/demo_data.ts";

/**
 * Like {@linkcode startWireDatabase}, but the pglite-socket server accepts
 * several clients at once (it serialises their transactions), as a real
 * server does: a writer, a backup, a check, and a killed client whose
 * connection the server has not noticed closing yet. With
 * `TEST_DATABASE_URL` set, that server.
 *
 * @returns The database.
 */
export function startSharedDatabase(): Promise<WireDatabase> {
  return startWireDatabase({ maxConnections: 16 });
}

/**
 * Fills a table and the checkout's relationship store (1,245 relationships
 * between the table's memories).
 *
 * @param db The database.
 * @param checkout The checkout.
 * @param table `schema.table`.
 * @param size How many memories, of how many dimensions.
 * @returns The environment for the scripts to use both.
 */
export async function seedStores(
  db: WireDatabase,
  checkout: Checkout,
  table: string,
  size: { memories: number; dims: number },
): Promise<Record<string, string>> {
  await seedMemories(db, table, size);
  const ids = (await db.query(`select id::text from ${table}`)).map((r) =>
    r[0]!
  );
  await Deno.mkdir(`${checkout.dir}/data`);
  seedRelationshipStore(`${checkout.dir}/data/relationships.db`, ids, {
    relationships: 1245,
  });
  return {
    DATABASE_URL: db.url,
    MEMORY_TABLE: table,
    RELATIONSHIPS_DB: "./data/relationships.db",
  };
}

/** How a spawned script ended. */
export interface Finished {
  /** Exit code (meaningless when killed). */
  readonly code: number;
  /** The signal that ended it, if any. */
  readonly signal: Deno.Signal | null;
  /** Its stdout. */
  readonly stdout: string;
  /** Its stderr. */
  readonly stderr: string;
}

/** A script running in a checkout. */
export interface Running {
  /** Its process id. */
  readonly pid: number;
  /** Resolves when it has ended. */
  readonly done: Promise<Finished>;
  /** Whether it has ended. */
  readonly exited: boolean;
  /** Sends SIGKILL, unless it has already ended. */
  kill(): void;
}

const decoder = new TextDecoder();

/**
 * Starts the script of a command in the checkout, itself (not through the
 * launcher, so that it is the process killed), with exactly the grants its
 * task would give it and only the given memkeep settings.
 *
 * @param checkout The checkout.
 * @param command The command, e.g. `backup`.
 * @param options Arguments and settings.
 * @returns The running script.
 */
export function spawnScript(
  checkout: Checkout,
  command: string,
  options: { args?: string[]; env?: Record<string, string> } = {},
): Running {
  const base = shellEnv();
  for (const name of [...ENV_SETTINGS, "TEST_DATABASE_URL"]) delete base[name];
  const child = new Deno.Command(Deno.execPath(), {
    args: productionArgs(checkout, command, options.args ?? [], options.env),
    cwd: checkout.dir,
    env: { ...base, ...(options.env ?? {}), NO_COLOR: "1" },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let exited = false;
  const done = child.output().then((out) => {
    exited = true;
    return {
      code: out.code,
      signal: out.signal,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
    };
  });
  return {
    pid: child.pid,
    done,
    get exited() {
      return exited;
    },
    kill() {
      if (exited) return;
      try {
        child.kill("SIGKILL");
      } catch {
        // it ended between the check and the signal
      }
    },
  };
}

/** Waits about a millisecond: the polling interval. */
export function tick(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 1));
}

/**
 * The backup directory's final backups and temporary directories.
 *
 * @param dir The backup directory.
 * @returns Sorted names of each kind.
 */
export function listBackups(
  dir: string,
): { finals: string[]; temps: string[] } {
  const finals: string[] = [];
  const temps: string[] = [];
  try {
    for (const entry of Deno.readDirSync(dir)) {
      if (BACKUP_NAME.test(entry.name)) finals.push(entry.name);
      else if (entry.name.startsWith(TEMP_PREFIX)) temps.push(entry.name);
    }
  } catch {
    // not created yet
  }
  return { finals: finals.sort(), temps: temps.sort() };
}

/** A file as a poll sees it. */
export interface FileSeen {
  /** Its size. */
  readonly size: number;
  /**
   * Whether it has been read since it was last written: its access time
   * moved past its modification time (see {@linkcode atimeMoves}).
   */
  readonly read: boolean;
}

/**
 * The files of a directory.
 *
 * @param dir The directory.
 * @returns Name → size and whether it was read; `undefined` when the
 * directory is gone.
 */
export function filesIn(dir: string): Map<string, FileSeen> | undefined {
  const files = new Map<string, FileSeen>();
  try {
    for (const entry of Deno.readDirSync(dir)) {
      try {
        const info = Deno.statSync(`${dir}/${entry.name}`);
        files.set(entry.name, {
          size: info.size,
          read: (info.atime?.getTime() ?? 0) > (info.mtime?.getTime() ?? 0),
        });
      } catch {
        // removed while we looked
      }
    }
  } catch {
    return undefined;
  }
  return files;
}

/**
 * Whether reading a file written a moment ago moves its access time here (it
 * does under the default `relatime`, not under `noatime`).
 *
 * @param dir A directory to try it in.
 * @returns `true` when {@linkcode FileSeen.read} can be trusted.
 */
export async function atimeMoves(dir: string): Promise<boolean> {
  const path = `${dir}/.atime-probe`;
  try {
    await Deno.writeTextFile(path, "probe");
    // File times move with the kernel's clock tick.
    await new Promise((resolve) => setTimeout(resolve, 20));
    await Deno.readTextFile(path);
    return filesIn(dir)?.get(".atime-probe")?.read ?? false;
  } finally {
    await Deno.remove(path);
  }
}

/** Counts what clients send through it to a Postgres server. */
export interface CountingProxy {
  /** The database URL through the proxy. */
  readonly url: string;
  /** Bytes clients have sent so far. */
  readonly sent: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Stops it and closes every connection. */
  close(): Promise<void>;
}

/**
 * A TCP proxy in front of a Postgres server that counts the bytes clients
 * send: how far a restore has got with its inserts, observed from outside.
 * When either side closes, it closes the other, so the server sees a killed
 * client go.
 *
 * @param url The server.
 * @returns The proxy.
 */
export function startCountingProxy(url: string): CountingProxy {
  const target = new URL(url);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  const piping: Promise<void>[] = [];
  let sent = 0;
  let connections = 0;
  const pump = async (from: Deno.Conn, to: Deno.Conn, count: boolean) => {
    const buffer = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const n = await from.read(buffer);
        if (n === null) return;
        if (count) sent += n;
        for (let offset = 0; offset < n;) {
          offset += await to.write(buffer.subarray(offset, n));
        }
      }
    } catch {
      // reset by a killed client, or closed by the other direction
    }
  };
  const serve = async (client: Deno.Conn) => {
    open.add(client);
    let server: Deno.Conn | undefined;
    const closeBoth = () => {
      for (const conn of [client, server]) {
        if (conn && open.delete(conn)) conn.close();
      }
    };
    try {
      server = await Deno.connect({
        hostname: target.hostname,
        port: Number(target.port || 5432),
      });
      open.add(server);
    } catch {
      closeBoth();
      return;
    }
    await Promise.all([
      pump(client, server, true).finally(closeBoth),
      pump(server, client, false).finally(closeBoth),
    ]);
  };
  const accepting = (async () => {
    try {
      for await (const client of listener) {
        connections++;
        piping.push(serve(client));
      }
    } catch {
      // closed
    }
  })();
  const proxied = new URL(url);
  proxied.hostname = "127.0.0.1";
  proxied.port = String((listener.addr as Deno.NetAddr).port);
  return {
    url: proxied.toString(),
    get sent() {
      return sent;
    },
    get connections() {
      return connections;
    },
    async close() {
      listener.close();
      await accepting;
      for (const conn of open) conn.close();
      open.clear();
      await Promise.all(piping);
    },
  };
}

/**
 * A digest of a table read over a new connection to the server. On the
 * pglite-socket server that connection waits until the server has rolled
 * back the transaction of a client that was killed, so it never sees
 * uncommitted rows (an in-process query would run inside that transaction).
 *
 * @param url The server.
 * @param table Qualified table name.
 * @returns The digest of {@linkcode tableDigest}.
 */
export async function wireTableDigest(
  url: string,
  table: string,
): Promise<string> {
  const session = await openPostgresSession(parseDatabaseUrl(url));
  try {
    return await tableDigest(session, table);
  } finally {
    await session.close();
  }
}

/**
 * The SHA-256 of a file's bytes.
 *
 * @param path The file.
 * @returns Lowercase hex.
 */
export function fileSha256(path: string): string {
  return createHash("sha256").update(Deno.readFileSync(path)).digest("hex");
}

/**
 * The `Warning:` and `Error:` lines a script printed.
 *
 * @param stderr Its stderr.
 * @returns The lines.
 */
export function messages(stderr: string): string[] {
  return stderr.split("\n").filter((l) => /^(Warning|Error): /.test(l));
}
