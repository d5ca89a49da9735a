/**
 * The stores the benchmark runs memkeep against, one kind per `--server`:
 *
 * - `pglite`: the demo store in a PGlite data directory, served over the
 *   wire by pglite-socket in its own process; its bulk-load limit is PGlite
 *   loading the rows in-process (`bench/ingest.ts`);
 * - `postgres`: the same rows in a real PostgreSQL (`TEST_DATABASE_URL`, or
 *   one started with `../shared/postgres/start-postgres.sh` under
 *   `.bench/postgres` and stopped afterwards), in the schema
 *   `memkeep_bench_<memories>x<dims>` (kept for the next run; drop it when
 *   done); its bulk-load limit is `psql \copy … from FILE` into an empty
 *   table.
 *
 * Demo stores are built once with the demo generator and cached under
 * `.bench/stores/` (the key names the generator's version).
 *
 * @module
 */

import { PGlite } from "@electric-sql/pglite";
import { vector } from "@electric-sql/pglite-pgvector";
import {
  seedMemoryTable,
  seedRelationshipStore,
} from "../lib/store/demo_data.ts";
import * as log from "../lib/cli/log.ts";
import { startPostgres, startPostgresScript } from "../tests/_postgres.ts";
import {
  BENCH,
  DENO,
  type Measure,
  psql,
  ROOT,
  runSql,
  timed,
} from "./measure.ts";

/** The demo generator's version: a new one rebuilds the cached stores. */
const STORE_KEY = "f32";

/** What a restore or a scaled backup runs against, and its cleanup. */
export interface Target {
  /** memkeep's settings. */
  readonly env: Record<string, string>;
  /** Memories it holds. */
  readonly memories: number;
  stop(): Promise<void>;
}

/** One `--server`: the store, the server's own bulk load, fresh targets. */
export interface BenchServer extends Target {
  /** What serves the store, for the report (e.g. `PostgreSQL 15.20`). */
  readonly description: string;
  /** The server's URL, for psql. */
  readonly url: string;
  /** The store's table, schema-qualified. */
  readonly table: string;
  /** The bulk load's row name in the report, and its short name. */
  readonly load: { readonly work: string; readonly name: string };
  /**
   * Times the server's own bulk load of a COPY text file into an empty
   * table with a primary key (what a restore into an empty store does).
   */
  bulkLoad(copyFile: string): Promise<Measure>;
  /** An empty store for one restore. */
  emptyTarget(name: string): Promise<Target>;
  /** The store at `scale` × its size. */
  scaled(scale: number): Promise<Target>;
  /**
   * A copy of the store (memories and relationship store) that a run may
   * change; its table is `MEMORY_TABLE` (or `memories`) in its settings.
   */
  copy(name: string): Promise<Target>;
}

/** The store's size. */
export interface Size {
  readonly memories: number;
  readonly dims: number;
  readonly relationships: number;
}

/** Builds (once) a demo store of the given size; returns its directory. */
async function ensureStore(size: Size): Promise<string> {
  const { memories, dims, relationships } = size;
  const dir =
    `${BENCH}/stores/m${memories}-d${dims}-r${relationships}-${STORE_KEY}`;
  try {
    await Deno.stat(`${dir}/done`);
    return dir;
  } catch {
    // build it
  }
  await buildStore(dir, size);
  await Deno.writeTextFile(`${dir}/done`, new Date().toISOString());
  return dir;
}

/**
 * Builds the demo store of the given size in `dir` (replacing what is
 * there): the same rows for the same size, every time.
 */
async function buildStore(dir: string, size: Size): Promise<void> {
  const { memories, dims, relationships } = size;
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  await Deno.mkdir(dir, { recursive: true });
  log.progress({
    what: `building a store of ${memories} memories × ${dims} dims`,
  });
  const db = await PGlite.create({
    dataDir: `${dir}/pglite`,
    extensions: { vector },
  });
  await seedMemoryTable(
    db,
    "memories",
    { memories, dims },
    (n) => log.progress({ what: "building", done: n, total: memories }),
  );
  const ids =
    (await db.query<{ id: string }>(`select id::text from memories limit 5000`))
      .rows.map((r) => r.id);
  await db.close();
  seedRelationshipStore(`${dir}/relationships.db`, ids, { relationships });
  log.clearProgress();
}

/** A pglite-socket server for a data directory, in its own process. */
async function servePglite(
  dataDir: string,
): Promise<{ url: string; stop(): Promise<void> }> {
  const child = new Deno.Command(DENO, {
    args: [
      "run",
      "-q",
      `--allow-read`,
      `--allow-write=${dataDir}`,
      "--allow-net=127.0.0.1",
      "--allow-env",
      "--allow-sys",
      `${ROOT}/bench/pglite_server.ts`,
      dataDir,
      "0",
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  let text = "";
  while (!/listening (\d+)/.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`the PGlite server for ${dataDir} did not start`);
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  const port = Number(/listening (\d+)/.exec(text)![1]);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres?sslmode=disable`,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

async function pgliteTarget(dir: string, memories: number): Promise<Target> {
  const server = await servePglite(`${dir}/pglite`);
  return {
    env: {
      DATABASE_URL: server.url,
      RELATIONSHIPS_DB: `${dir}/relationships.db`,
    },
    memories,
    stop: () => server.stop(),
  };
}

/**
 * The demo store on pglite-socket.
 *
 * @param size The store's size.
 * @param out Where the benchmark writes.
 * @returns The server.
 */
export async function pgliteServer(
  size: Size,
  out: string,
): Promise<BenchServer> {
  const store = await pgliteTarget(await ensureStore(size), size.memories);
  return {
    ...store,
    description: "pglite-socket (PGlite over the wire, one session)",
    url: store.env.DATABASE_URL!,
    table: "memories",
    load: {
      work: "PGlite in-process COPY FROM (ingest limit)",
      name: "ingest limit",
    },
    bulkLoad: (copyFile) =>
      timed([
        DENO,
        "run",
        "-q",
        "--allow-read",
        `--allow-write=${out}`,
        "--allow-env",
        `${ROOT}/bench/ingest.ts`,
        `${out}/ingest-pglite`,
        copyFile,
        String(size.dims),
      ]),
    emptyTarget: (name) => pgliteTarget(`${out}/restore-${name}`, 0),
    async scaled(scale) {
      const n = Math.round(size.memories * scale);
      const dir = await ensureStore({
        memories: n,
        dims: size.dims,
        relationships: Math.round(size.relationships * scale),
      });
      return pgliteTarget(dir, n);
    },
    async copy(name) {
      // Built again rather than copied: the cached store's data directory
      // is being served.
      await buildStore(`${out}/${name}`, size);
      return pgliteTarget(`${out}/${name}`, size.memories);
    },
  };
}

/**
 * The demo store's rows in a real PostgreSQL: `TEST_DATABASE_URL`, or a
 * server started for the run.
 *
 * @param size The store's size.
 * @param out Where the benchmark writes.
 * @returns The server.
 */
export async function postgresServer(
  size: Size,
  out: string,
): Promise<BenchServer> {
  // One schema per size, so that runs of two sizes keep out of each other.
  const schema = `memkeep_bench_${size.memories}x${size.dims}`;
  const store = await ensureStore(size);
  const rows = await storeRows(store);
  let url = Deno.env.get("TEST_DATABASE_URL");
  let stopServer = () => Promise.resolve();
  if (!url) {
    const dir = `${BENCH}/postgres`;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    log.progress({ what: "starting PostgreSQL (start-postgres.sh)" });
    const started = await startPostgres(startPostgresScript(), false, dir);
    url = started.env.TEST_DATABASE_URL!;
    stopServer = started.stop;
  }
  const server = url;
  const table = `${schema}.memories`;
  const version = await runSql(server, "show server_version");
  const key = `${size.memories}/${size.dims}/${STORE_KEY}`;
  const loaded = await runSql(
    server,
    `select obj_description(to_regclass('${table}'), 'pg_class')`,
  );
  if (loaded !== key) {
    log.progress({ what: `loading the store into PostgreSQL ${version}` });
    await runSql(
      server,
      `create extension if not exists vector;
       drop schema if exists ${schema} cascade; create schema ${schema};
       ${createTable(table, size.dims)}`,
    );
    await runSql(
      server,
      `\\copy ${table} (id, vector, payload) from '${rows}'`,
    );
    await runSql(
      server,
      `create index on ${table} ((payload->>'user_id'));
       comment on table ${table} is '${key}'`,
    );
    await settle(server, table);
  }
  const relationships = `${store}/relationships.db`;
  const tableTarget = (
    name: string,
    memories: number,
    relationshipsDb: string,
  ): Target => ({
    env: {
      DATABASE_URL: server,
      MEMORY_TABLE: `${schema}.${name}`,
      RELATIONSHIPS_DB: relationshipsDb,
    },
    memories,
    stop: async () => {
      await runSql(server, `drop table if exists ${schema}.${name}`);
    },
  });
  return {
    env: {
      DATABASE_URL: server,
      MEMORY_TABLE: table,
      RELATIONSHIPS_DB: relationships,
    },
    memories: size.memories,
    description: `PostgreSQL ${version}`,
    url: server,
    table,
    load: {
      work: "psql \\copy FROM (into an empty table)",
      name: "COPY FROM",
    },
    async bulkLoad(copyFile) {
      const ref = `${schema}.load_ref`;
      await runSql(
        server,
        `drop table if exists ${ref}; ${createTable(ref, size.dims)}`,
      );
      try {
        return await timed(
          psql(
            server,
            `\\copy ${ref} (id, vector, payload) from '${copyFile}'`,
          ),
        );
      } finally {
        await runSql(server, `drop table if exists ${ref}`);
      }
    },
    async emptyTarget(name) {
      const target = await tableTarget(
        `restored_${name.replaceAll("-", "_")}`,
        0,
        `${out}/restore-${name}/relationships.db`,
      );
      await target.stop();
      await Deno.mkdir(`${out}/restore-${name}`, { recursive: true });
      return target;
    },
    async scaled(scale) {
      const n = Math.round(size.memories * scale);
      const name = `scale_${n}`;
      // Beyond the store's size, copies of its rows under new ids.
      await runSql(
        server,
        `drop table if exists ${schema}.${name};
         ${createTable(`${schema}.${name}`, size.dims)}
         insert into ${schema}.${name}
           select case when k = 0 then id else gen_random_uuid() end,
                  vector, payload
             from ${table}, generate_series(0, ${Math.ceil(scale) - 1}) k
            order by k limit ${n}`,
      );
      await settle(server, `${schema}.${name}`);
      return tableTarget(name, n, relationships);
    },
    async copy(name) {
      const dir = `${out}/${name}`;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      await Deno.mkdir(dir, { recursive: true });
      await Deno.copyFile(relationships, `${dir}/relationships.db`);
      await runSql(
        server,
        `drop table if exists ${schema}.${name};
         ${createTable(`${schema}.${name}`, size.dims)}
         insert into ${schema}.${name} select * from ${table}`,
      );
      await settle(server, `${schema}.${name}`);
      return tableTarget(name, size.memories, `${dir}/relationships.db`);
    },
    async stop() {
      await stopServer();
    },
  };
}

/**
 * Brings a table just loaded to the state of a store in use: the first read
 * after a bulk load sets every row's hint bits (rewriting the table) while
 * autovacuum and the checkpointer write it again, on the cores and the disk
 * the commands measured share (one run had `backup --no-verify` at 14.2 s
 * against 5.8 s for the same rows read a few minutes later).
 */
async function settle(server: string, table: string): Promise<void> {
  await runSql(server, `vacuum (freeze, analyze) ${table}`);
  await runSql(server, "checkpoint").catch(() => {}); // needs pg_checkpoint
}

function createTable(table: string, dims: number): string {
  return `create table ${table} (id uuid primary key, vector vector(${dims}), payload jsonb);`;
}

/** The store's rows as a COPY text file (made once, from the PGlite store). */
async function storeRows(store: string): Promise<string> {
  const file = `${store}/rows.copy`;
  try {
    await Deno.stat(file);
    return file;
  } catch {
    // make it
  }
  log.progress({ what: "dumping the store's rows for PostgreSQL" });
  const server = await servePglite(`${store}/pglite`);
  try {
    await runSql(
      server.url,
      `\\copy (select id, vector, payload from memories) to '${file}.part'`,
    );
  } finally {
    await server.stop();
  }
  await Deno.rename(`${file}.part`, file);
  return file;
}
