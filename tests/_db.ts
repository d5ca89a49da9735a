/**
 * Test databases: an embedded PGlite store on a temporary directory, and a
 * Postgres server on the wire: PGlite served by pglite-socket on 127.0.0.1
 * (a free port), or the server in `TEST_DATABASE_URL` when it is set (each
 * test database then gets its own schema, dropped at the end).
 *
 * @module
 */

import { PGlite } from "@electric-sql/pglite";
import { vector } from "@electric-sql/pglite-pgvector";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import { parseDatabaseUrl } from "../lib/store/connection.ts";
import { demoMemories, type DemoSize } from "../lib/store/demo_data.ts";
import { openPostgresSession } from "../lib/store/pg_session.ts";
import type { SqlSession, TextRow } from "../lib/store/sql.ts";

/** A database a test can set up and inspect. */
export interface TestDatabase {
  /** Runs SQL for set-up or checks; never while a client is connected to a socket server. */
  query(sql: string, params?: (string | null)[]): Promise<TextRow[]>;
  /** The schema test tables go in. */
  readonly schema: string;
  /** Stops the server or closes the store; removes what the test made. */
  close(): Promise<void>;
}

/** A database reachable over the Postgres wire protocol. */
export interface WireDatabase extends TestDatabase {
  /** The URL to connect to (`sslmode=disable` for the socket server). */
  readonly url: string;
  /** `socket` for pglite-socket, `external` for TEST_DATABASE_URL. */
  readonly kind: "socket" | "external";
  /** The port of the socket server. */
  readonly port: number;
  /** Stops the socket server while keeping the data (to drop connections). */
  stopServer(): Promise<void>;
}

let template: Promise<Blob> | undefined;

/**
 * A PGlite with pgvector, in memory or on `dataDir`. A new database is
 * loaded from a dump made once per test module: initdb takes 3 to 5 s of CPU
 * each time, loading its dump under one.
 *
 * @param dataDir The data directory; a new one when it holds no database.
 * @returns The database.
 */
async function newPglite(dataDir?: string): Promise<PGlite> {
  template ??= (async () => {
    const db = await PGlite.create({ extensions: { vector } });
    const dump = await db.dumpDataDir("none");
    await db.close();
    return dump;
  })();
  let fresh = true;
  if (dataDir) {
    try {
      await Deno.stat(`${dataDir}/PG_VERSION`);
      fresh = false;
    } catch {
      // a new database
    }
  }
  return await PGlite.create({
    ...(dataDir ? { dataDir } : {}),
    ...(fresh ? { loadDataDir: await template } : {}),
    extensions: { vector },
  });
}

/**
 * Starts a database on the wire.
 *
 * @param options `vector: false` leaves pgvector uninstalled;
 * `maxConnections` lets the socket server accept that many clients at once
 * (it serialises their transactions; by default it takes one at a time).
 * @returns The database.
 */
export async function startWireDatabase(
  options: { vector?: boolean; maxConnections?: number } = {},
): Promise<WireDatabase> {
  const external = Deno.env.get("TEST_DATABASE_URL");
  if (external) return await externalDatabase(external, options);
  const db = await newPglite();
  if (options.vector ?? true) {
    await db.exec("create extension if not exists vector");
  }
  const server = new PGLiteSocketServer({
    db,
    port: 0,
    host: "127.0.0.1",
    ...(options.maxConnections
      ? { maxConnections: options.maxConnections }
      : {}),
  });
  await server.start();
  const port = Number(server.getServerConn().split(":").pop());
  let stopped = false;
  return {
    url:
      `postgres://postgres:postgres@127.0.0.1:${port}/postgres?sslmode=disable`,
    kind: "socket",
    port,
    schema: "public",
    async query(sql, params = []) {
      return (await db.query<TextRow>(sql, params, { rowMode: "array" })).rows;
    },
    async stopServer() {
      if (stopped) return;
      stopped = true;
      await server.stop();
    },
    async close() {
      if (!stopped) await server.stop();
      stopped = true;
      await db.close();
    },
  };
}

async function externalDatabase(
  url: string,
  options: { vector?: boolean },
): Promise<WireDatabase> {
  const admin = parseDatabaseUrl(url, "TEST_DATABASE_URL");
  const suffix = crypto.randomUUID().replaceAll("-", "").slice(0, 12);
  const once = async (sql: string) => {
    const s = await openPostgresSession(admin);
    try {
      await s.query(sql);
    } finally {
      await s.close();
    }
  };
  if (options.vector === false) {
    // pgvector is installed per database: a database of its own without it.
    const name = `memkeep_novector_${suffix}`;
    await once(`create database ${name}`);
    const own = new URL(url);
    own.pathname = `/${name}`;
    return externalDatabaseIn(own.toString(), "public", async () => {
      await once(`drop database ${name} with (force)`);
    });
  }
  const schema = `memkeep_test_${suffix}`;
  await once("create extension if not exists vector");
  await once(`create schema ${schema}`);
  return externalDatabaseIn(url, schema, async () => {
    await once(`drop schema ${schema} cascade`);
  });
}

function externalDatabaseIn(
  url: string,
  schema: string,
  close: () => Promise<void>,
): WireDatabase {
  const settings = parseDatabaseUrl(url, "TEST_DATABASE_URL");
  const withSession = async <T>(
    fn: (s: SqlSession) => Promise<T>,
  ): Promise<T> => {
    const session = await openPostgresSession(settings);
    try {
      return await fn(session);
    } finally {
      await session.close();
    }
  };
  return {
    url,
    kind: "external",
    port: settings.port,
    schema,
    query: (sql, params = []) => withSession((s) => s.query(sql, params)),
    stopServer() {
      return Promise.reject(new Error("cannot stop an external server"));
    },
    close,
  };
}

/**
 * Opens (creating) an embedded store on a directory.
 *
 * @param dataDir The PGlite data directory.
 * @returns The store; close it before memkeep opens the same directory.
 */
export async function openEmbeddedStore(
  dataDir: string,
): Promise<TestDatabase> {
  await Deno.mkdir(dataDir, { recursive: true });
  const db = await newPglite(dataDir);
  await db.exec("create extension if not exists vector");
  return {
    schema: "public",
    async query(sql, params = []) {
      return (await db.query<TextRow>(sql, params, { rowMode: "array" })).rows;
    },
    async close() {
      await db.close();
    },
  };
}

/**
 * Creates a mem0 table and fills it with demo memories.
 *
 * @param db The database.
 * @param table Qualified table name, e.g. `public.memories`.
 * @param size How many, which dimension, which seed.
 * @param options `idType` (default `uuid`).
 * @returns The number of rows.
 */
export async function seedMemories(
  db: TestDatabase,
  table: string,
  size: DemoSize,
  options: { idType?: string } = {},
): Promise<number> {
  await db.query(
    `create table ${table} (id ${
      options.idType ?? "uuid"
    } primary key, vector vector(${size.dims}), payload jsonb)`,
  );
  let values: string[] = [];
  let params: string[] = [];
  let n = 0;
  const flush = async () => {
    if (values.length === 0) return;
    await db.query(
      `insert into ${table} (id, vector, payload) values ${values.join(",")}`,
      params,
    );
    values = [];
    params = [];
  };
  for (const m of demoMemories(size)) {
    const i = params.length;
    values.push(
      `($${i + 1}::text::${options.idType ?? "uuid"}, $${
        i + 2
      }::text::vector, $${i + 3}::text::jsonb)`,
    );
    params.push(m.id, m.vector, m.payload);
    n++;
    if (values.length === 100) await flush();
  }
  await flush();
  return n;
}

/**
 * A digest of every row of a table, to prove it did not change.
 *
 * @param db The database.
 * @param table Qualified table name.
 * @returns An MD5 over the rows in id order.
 */
export async function tableDigest(
  db: Pick<TestDatabase, "query">,
  table: string,
): Promise<string> {
  const rows = await db.query(
    `select count(*)::text || ':' || coalesce(md5(string_agg(id::text || '|' || coalesce(vector::text, '-') || '|' || coalesce(payload::text, '-'), ',' order by id::text)), '') from ${table}`,
  );
  return rows[0]![0]!;
}

/**
 * True in the real-server leg (`deno task test:postgres` sets
 * `MEMKEEP_WIRE_LEG=1`): a test of a wire test file that never talks to a
 * server on the wire is ignored there, since `deno task test` runs it the
 * same way.
 */
export const WIRE_LEG = Deno.env.get("MEMKEEP_WIRE_LEG") === "1";

/**
 * A step that never talks to a server on the wire, in a test that does:
 * ignored in the real-server leg ({@linkcode WIRE_LEG}).
 *
 * @param t The test's context.
 * @param name The step's name.
 * @param fn The step.
 * @returns Whether it passed (true when ignored).
 */
export function embeddedStep(
  t: Deno.TestContext,
  name: string,
  fn: (t: Deno.TestContext) => void | Promise<void>,
): Promise<boolean> {
  return t.step({ name, ignore: WIRE_LEG, fn });
}
