/**
 * What only a real PostgreSQL can show (TLS, PgBouncer in transaction mode,
 * real timeouts, a restart mid-backup, privileges, concurrent writers),
 * against a server this file starts itself with
 * `../shared/postgres/start-postgres.sh --pgbouncer` (or the script in
 * `START_POSTGRES`: PostgreSQL 15 with pgvector 0.8.6, TLS on, on free
 * loopback ports) and stops at the end.
 *
 * The script installs PostgreSQL when it is missing (apt, as root). On a
 * machine where it cannot, `MEMKEEP_SKIP_POSTGRES=1` skips this file, and
 * says so; CI never sets it.
 *
 * @module
 */

import assert from "node:assert/strict";
import { backup } from "../../lib/backup/backup.ts";
import { exportMemories } from "../../lib/backup/export.ts";
import { restore } from "../../lib/restore/restore.ts";
import { parseDatabaseUrl } from "../../lib/store/connection.ts";
import { openPostgresSession } from "../../lib/store/pg_session.ts";
import type { SqlSession } from "../../lib/store/sql.ts";
import type { Config } from "../../lib/store/config.ts";
import { StoreError } from "../../lib/errors.ts";
import {
  demoMemories,
  seedRelationshipStore,
} from "../../lib/store/demo_data.ts";
import {
  assertRejectsWith,
  backupsIn,
  configFrom,
  memoryRecords,
  withTempDir,
} from "../_helpers.ts";
import { startPostgres, startPostgresScript } from "../_postgres.ts";
import { wireTableDigest } from "../_crash.ts";

const SKIP = Deno.env.get("MEMKEEP_SKIP_POSTGRES") === "1";
const DIMS = 16;

interface Server {
  readonly url: string;
  readonly tlsUrl: string;
  readonly otherCa: string;
  readonly bouncerUrl: string;
  /** The server's directory (its data is in `data/`). */
  readonly dir: string;
}

let server: Server | undefined;

let stopServer: (() => Promise<void>) | undefined;

Deno.test.beforeAll(async () => {
  if (SKIP) return;
  const started = await startPostgres(startPostgresScript(), true);
  stopServer = started.stop;
  const env = started.env;
  server = {
    url: env.TEST_DATABASE_URL!,
    tlsUrl: env.TEST_DATABASE_TLS_URL!,
    otherCa: env.TEST_DATABASE_OTHER_CA!,
    bouncerUrl: env.TEST_PGBOUNCER_URL!,
    dir: env.TEST_POSTGRES_DIR!,
  };
});

Deno.test.afterAll(async () => {
  await stopServer?.();
});

function real(
  name: string,
  fn: (s: Server, t: Deno.TestContext) => Promise<void>,
): void {
  Deno.test({
    name: `real PostgreSQL: ${name}`,
    ignore: SKIP,
    // The server outlives each test.
    sanitizeOps: false,
    sanitizeResources: false,
    fn: (t) => fn(server!, t),
  });
}

async function withSession<T>(
  url: string,
  fn: (s: SqlSession) => Promise<T>,
): Promise<T> {
  const session = await openPostgresSession(
    parseDatabaseUrl(url, "DATABASE_URL"),
  );
  try {
    return await fn(session);
  } finally {
    await session.close();
  }
}

/** A fresh schema with a mem0 table of `count` demo memories; returns `schema.memories`. */
async function seededTable(url: string, count: number): Promise<string> {
  const schema = `t_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const table = `${schema}.memories`;
  await withSession(url, async (s) => {
    await s.query("create extension if not exists vector");
    await s.query(`create schema ${schema}`);
    await s.query(
      `create table ${table} (id uuid primary key, vector vector(${DIMS}), payload jsonb)`,
    );
    let values: string[] = [];
    let params: string[] = [];
    const flush = async () => {
      if (values.length === 0) return;
      await s.query(
        `insert into ${table} values ${values.join(",")}`,
        params,
      );
      values = [];
      params = [];
    };
    for (const m of demoMemories({ memories: count, dims: DIMS, seed: 7 })) {
      const i = params.length;
      values.push(
        `($${i + 1}::text::uuid, $${i + 2}::text::vector, $${
          i + 3
        }::text::jsonb)`,
      );
      params.push(m.id, m.vector, m.payload);
      if (values.length === 100) await flush();
    }
    await flush();
  });
  return table;
}

function configOf(url: string, table: string, dir: string): Config {
  Deno.mkdirSync(dir, { recursive: true });
  const relationships = `${dir}/relationships.db`;
  try {
    Deno.statSync(relationships);
  } catch {
    seedRelationshipStore(relationships, ["a", "b", "c"], { relationships: 3 });
  }
  return configFrom({
    DATABASE_URL: url,
    MEMORY_TABLE: table,
    BACKUP_DIR: `${dir}/backups`,
    RELATIONSHIPS_DB: `${dir}/relationships.db`,
  });
}

function parseTarget(qualified: string): { schema: string; name: string } {
  const [schema, name] = qualified.split(".");
  return { schema: schema!, name: name! };
}

/**
 * A login that may only read `table`.
 *
 * @returns Its URL: the server's, with this login and password.
 */
async function selectOnlyLogin(
  url: string,
  table: string,
  role: string,
  password: string,
): Promise<string> {
  const { schema } = parseTarget(table);
  await withSession(url, async (q) => {
    await q.query(`create role ${role} login password '${password}'`);
    await q.query(`grant usage on schema ${schema} to ${role}`);
    await q.query(`grant select on ${table} to ${role}`);
  });
  const login = new URL(url);
  login.username = role;
  login.password = password;
  return login.toString();
}

async function count(url: string, table: string): Promise<number> {
  return await withSession(
    url,
    async (s) =>
      Number((await s.query(`select count(*) from ${table}`))[0]![0]),
  );
}

real(
  "sslmode=verify-full with the test CA backs up; another CA or a name the certificate does not hold is refused in one line, without the password",
  async (s, t) => {
    const table = await seededTable(s.url, 20);
    const password = new URL(s.url).password;
    await withTempDir(async (dir) => {
      await t.step("verify-full with the test CA", async () => {
        const result = await backup({ config: configOf(s.tlsUrl, table, dir) });
        assert.equal(result.metadata.memory_count, 20);
        assert.ok(result.verification?.ok);
      });
      const refused = async (url: string, pattern: RegExp) => {
        const error = await assertRejectsWith(
          () => backup({ config: configOf(url, table, `${dir}/refused`) }),
          StoreError,
          pattern,
        );
        assert.doesNotMatch(error.message, /\n/);
        assert.ok(!error.message.includes(password), error.message);
        assert.deepEqual(backupsIn(`${dir}/refused/backups`), []);
      };
      await t.step(
        "a CA that did not sign the server's certificate",
        async () => {
          const url = new URL(s.tlsUrl);
          url.searchParams.set("sslrootcert", s.otherCa);
          await refused(url.toString(), /certificate/i);
        },
      );
      await t.step("a host name the certificate does not name", async () => {
        // 127.0.0.2 is loopback too, but not in the certificate: forward it.
        const target = new URL(s.tlsUrl);
        const listener = Deno.listen({ hostname: "127.0.0.2", port: 0 });
        const forwarding = (async () => {
          for await (const conn of listener) {
            const upstream = await Deno.connect({
              hostname: "127.0.0.1",
              port: Number(target.port),
            });
            conn.readable.pipeTo(upstream.writable).catch(() => {});
            upstream.readable.pipeTo(conn.writable).catch(() => {});
          }
        })();
        try {
          const url = new URL(s.tlsUrl);
          url.hostname = "127.0.0.2";
          url.port = String(listener.addr.port);
          await refused(url.toString(), /certificate|host ?name|altnames/i);
        } finally {
          listener.close();
          await forwarding.catch(() => {});
        }
      });
    });
  },
);

real(
  "behind PgBouncer in transaction mode: backup, export, restore --dry-run and restore",
  async (s) => {
    const table = await seededTable(s.url, 60);
    await withTempDir(async (dir) => {
      const config = configOf(s.bouncerUrl, table, dir);
      const made = await backup({ config });
      assert.equal(made.metadata.memory_count, 60);
      const exported = await exportMemories({
        config,
        format: "csv",
        output: `${dir}/csv`,
        verify: true,
      });
      assert.equal(exported.metadata.memory_count, 60);
      const target = `${table}_restored`;
      const into = { ...config, table: parseTarget(target) };
      const dry = await restore({
        source: made.path,
        config: into,
        table: parseTarget(target),
        dryRun: true,
      });
      assert.deepEqual(dry.memories, { restored: 60, skipped: 0, updated: 0 });
      const done = await restore({
        source: made.path,
        config: into,
        table: parseTarget(target),
      });
      assert.deepEqual(done.memories, dry.memories);
      assert.equal(await count(s.url, target), 60);
      // The restored table backs up to the same records.
      const again = await backup({
        config: { ...config, table: parseTarget(target) },
      });
      assert.deepEqual(
        await memoryRecords(again.path),
        await memoryRecords(made.path),
      );
    });
  },
);

real(
  "a backup while four clients insert, update and delete holds the table as of one instant",
  async (s) => {
    const table = await seededTable(s.url, 400);
    // Every writer transaction adds one row and keeps the sum of payload.n
    // over all rows at 0. A backup that read from two instants (the count,
    // or a page of rows, from another) would show it.
    await withSession(
      s.url,
      (q) => q.query(`update ${table} set payload = payload || '{"n": 0}'`),
    );
    let stop = false;
    let transactions = 0;
    const writer = async (w: number) => {
      await withSession(s.url, async (q) => {
        for (let i = 0; !stop; i++) {
          await q.query("begin");
          const rows = await q.query(
            `select id::text from ${table} order by random() limit 2`,
          );
          const k = 1 + ((i * 7 + w) % 5);
          // b moves: deleted and inserted again under a new id with n - k; a
          // gets n + k. Another writer may have moved either first: then this
          // transaction changes nothing.
          const moved = await q.query(
            `delete from ${table} where id = $1::text::uuid returning (payload->>'n')::int`,
            [rows[1]![0]!],
          );
          const raised = moved.length === 1
            ? await q.query(
              `update ${table} set payload = jsonb_set(payload, '{n}', to_jsonb((payload->>'n')::int + ${k})) where id = $1::text::uuid returning 1`,
              [rows[0]![0]!],
            )
            : [];
          if (raised.length !== 1) {
            await q.query("rollback");
            continue;
          }
          await q.query(
            `insert into ${table} values (gen_random_uuid(), null, jsonb_build_object('data', 'moved', 'n', $1::text::int))`,
            [String(Number(moved[0]![0]) - k)],
          );
          // And one row more each time, with n = 0: the count grows.
          await q.query(
            `insert into ${table} values (gen_random_uuid(), null, '{"data": "new", "n": 0}')`,
          );
          await q.query("commit");
          transactions++;
        }
      });
    };
    await withTempDir(async (dir) => {
      const writers = [0, 1, 2, 3].map(writer);
      try {
        // Let them run, then back up in the middle of it (small fetches, so the
        // read spans many of their commits).
        while (transactions < 50) await new Promise((r) => setTimeout(r, 20));
        const before = transactions;
        const made = await backup({ config: configOf(s.url, table, dir) });
        assert.ok(
          transactions > before + 10,
          "the writers ran during the backup",
        );
        const after = transactions;
        const records = await memoryRecords(made.path);
        // The count, read first, and the rows, read after it, are of one
        // instant.
        assert.equal(records.length, made.metadata.memory_count);
        assert.ok(
          records.length >= 400 + before && records.length <= 400 + after,
          `${records.length} rows: between ${400 + before} and ${400 + after}`,
        );
        const sum = records.reduce(
          (n, r) => n + (JSON.parse(r.get("metadata")!) as { n: number }).n,
          0,
        );
        assert.equal(sum, 0, "the sum over one instant is 0");
      } finally {
        stop = true;
        await Promise.all(writers);
      }
    });
  },
);

real(
  "statement_timeout, idle_in_transaction_session_timeout and a restart mid-backup: one line, no backup left",
  async (s, t) => {
    const table = await seededTable(s.url, 300);
    // Every row read costs 20 ms for this login (a row-level security
    // policy that sleeps; superusers are exempt from row-level security).
    const slowUrl = new URL(
      await selectOnlyLogin(
        s.url,
        table,
        `slow_${parseTarget(table).schema}`,
        "slow-pw-123",
      ),
    );
    await withSession(s.url, async (q) => {
      await q.query(`alter table ${table} enable row level security`);
      await q.query(
        `create policy slow on ${table} using (pg_sleep(0.02) is not null)`,
      );
    });
    await withTempDir(async (dir) => {
      await t.step("statement_timeout=300 (a URL parameter)", async () => {
        const url = new URL(slowUrl);
        url.searchParams.set("statement_timeout", "300");
        const error = await assertRejectsWith(
          () => backup({ config: configOf(url.toString(), table, `${dir}/a`) }),
          StoreError,
          /statement timeout/,
        );
        assert.doesNotMatch(error.message, /\n/);
        assert.deepEqual(backupsIn(`${dir}/a/backups`), []);
        assert.deepEqual(
          [...Deno.readDirSync(`${dir}/a/backups`)].map((e) => e.name).filter(
            (n) => n !== "backup.log" && n !== ".memkeep.lock",
          ),
          [],
          "nothing left but the log and the lock file (as after any backup)",
        );
      });
      await t.step(
        "a restart mid-backup (pg_ctl restart -m fast)",
        async () => {
          const running = backup({
            config: configOf(slowUrl.toString(), table, `${dir}/b`),
          });
          running.catch(() => {});
          await new Promise((r) => setTimeout(r, 1500));
          const restart = await new Deno.Command("runuser", {
            args: [
              "-u",
              "postgres",
              "--",
              "/usr/lib/postgresql/15/bin/pg_ctl",
              "-D",
              `${s.dir}/data`,
              "-m",
              "fast",
              "-w",
              "restart",
            ],
            stdout: "null",
            stderr: "piped",
          }).output();
          assert.ok(restart.success, new TextDecoder().decode(restart.stderr));
          const error = await assertRejectsWith(
            () => running,
            StoreError,
            /terminat|lost the connection|connection/i,
          );
          assert.doesNotMatch(error.message, /\n/);
          assert.deepEqual(backupsIn(`${dir}/b/backups`), []);
        },
      );
    });
    await t.step(
      "a restore that asks first holds no transaction while it waits (idle_in_transaction_session_timeout=500)",
      async () => {
        await withSession(
          s.url,
          (q) => q.query(`alter table ${table} disable row level security`),
        );
        await withTempDir(async (dir) => {
          const made = await backup({ config: configOf(s.url, table, dir) });
          const url = new URL(s.url);
          url.searchParams.set("idle_in_transaction_session_timeout", "500");
          const target = `${table}_again`;
          const result = await restore({
            source: made.path,
            config: configOf(url.toString(), target, dir),
            table: parseTarget(target),
            confirm: async () => {
              await new Promise((r) => setTimeout(r, 1500));
              return true;
            },
          });
          assert.equal(result.committed, true);
          assert.equal(await count(s.url, target), 300);
        });
      },
    );
  },
);

real(
  "a login with only SELECT backs up, and a restore with it is refused in one line naming the privilege, nothing written",
  async (s) => {
    const table = await seededTable(s.url, 30);
    const url = await selectOnlyLogin(
      s.url,
      table,
      `reader_${parseTarget(table).schema}`,
      "reader-pw-123",
    );
    await withTempDir(async (dir) => {
      const made = await backup({
        config: configOf(url, table, dir),
      });
      assert.equal(made.metadata.memory_count, 30);
      // Into the same table (rows already there are changed in update mode).
      await withSession(s.url, (q) => q.query(`delete from ${table}`));
      const error = await assertRejectsWith(
        () =>
          restore({
            source: made.path,
            config: configOf(url, table, dir),
          }),
        StoreError,
        /permission denied/,
      );
      assert.doesNotMatch(error.message, /\n/);
      assert.ok(!error.message.includes("reader-pw-123"));
      assert.equal(await count(s.url, table), 0, "nothing was written");
    });
  },
);

real(
  "column types and indexes: halfvec, sparsevec and extra columns refused in one line; a mixed-case table in another schema with hnsw, ivfflat and partial indexes restores exactly, indexes recreated; one in another tablespace is reported with its SQL",
  async (s, t) => {
    const schema = `T_${crypto.randomUUID().replaceAll("-", "").slice(0, 8)}`;
    await withSession(s.url, async (q) => {
      await q.query("create extension if not exists vector");
      await q.query(`create schema "${schema}"`);
    });
    await withTempDir(async (dir) => {
      const refusals = [
        [
          "halfvec",
          "vector halfvec(8)",
          /halfvec\(8\); memkeep supports pgvector's vector\(N\) only/,
        ],
        [
          "sparsevec",
          "vector sparsevec(8)",
          /sparsevec\(8\); memkeep supports pgvector's vector\(N\) only/,
        ],
        [
          "two vector columns",
          "vector vector(8), small vector(4), note text",
          /columns beyond mem0's id, vector, payload \(small vector, note text\)/,
        ],
      ] as const;
      for (const [name, columns, pattern] of refusals) {
        await t.step(name, async () => {
          const table = `${schema}.t_${name.replaceAll(" ", "_")}`;
          await withSession(s.url, (q) =>
            q.query(
              `create table "${schema}".${
                table.split(".")[1]
              } (id uuid primary key, ${columns}, payload jsonb)`,
            ));
          const config = configOf(s.url, table, `${dir}/${name}`);
          const error = await assertRejectsWith(
            () => backup({ config }),
            StoreError,
            pattern,
          );
          assert.doesNotMatch(error.message, /\n/);
          assert.deepEqual(backupsIn(`${dir}/${name}/backups`), []);
        });
      }

      await t.step(
        "an index in another tablespace: recorded, and reported with its SQL by a restore",
        async () => {
          const space = `ts_${schema.toLowerCase()}`;
          const location = `${s.dir}/${space}`;
          await Deno.mkdir(location);
          await new Deno.Command("chown", { args: ["postgres", location] })
            .output();
          const seeded = await seededTable(s.url, 5);
          await withSession(s.url, async (db) => {
            await db.query(`create tablespace ${space} location '${location}'`);
            await db.query(
              `create index spaced_idx on ${seeded} ((payload->>'user_id')) tablespace ${space}`,
            );
          });
          const made = await backup({
            config: configOf(s.url, seeded, `${dir}/ts`),
          });
          const recorded = made.metadata.memories.indexes.find((d) =>
            d.includes("spaced_idx")
          );
          assert.match(
            recorded ?? "",
            new RegExp(`^SET default_tablespace = ${space}; CREATE INDEX`),
          );
          const warnings: string[] = [];
          const target = `${seeded.split(".")[0]}.spaced_copy`;
          await restore({
            source: made.path,
            config: configOf(s.url, target, `${dir}/ts`),
            table: parseTarget(target),
            onWarning: (w) => warnings.push(w),
          });
          assert.deepEqual(warnings, [
            `index not recreated (not a plain index definition): ${recorded}`,
          ]);
          assert.equal(await count(s.url, target), 5);
        },
      );

      await t.step(
        "MyMemories in another schema, with its indexes",
        async () => {
          const source = `${schema}.MyMemories`;
          const q = `"${schema}"."MyMemories"`;
          const seeded = await seededTable(s.url, 60);
          await withSession(s.url, async (db) => {
            await db.query(`create table ${q} as select * from ${seeded}`);
            await db.query(`alter table ${q} add primary key (id)`);
            await db.query(
              `create index "MyMemories_hnsw" on ${q} using hnsw (vector vector_cosine_ops) with (m = 8, ef_construction = 32)`,
            );
            await db.query(
              `create index "MyMemories_ivf" on ${q} using ivfflat (vector vector_l2_ops) with (lists = 2)`,
            );
            await db.query(
              `create index "MyMemories_user" on ${q} ((payload->>'user_id')) where payload ? 'user_id'`,
            );
          });
          const made = await backup({ config: configOf(s.url, source, dir) });
          assert.equal(made.metadata.memory_count, 60);
          assert.equal(made.metadata.memories.table, "MyMemories");
          const target = `${schema}.Restored`;
          const warnings: string[] = [];
          const done = await restore({
            source: made.path,
            config: configOf(s.url, target, dir),
            table: parseTarget(target),
            onWarning: (w) => warnings.push(w),
          });
          assert.deepEqual(done.memories, {
            restored: 60,
            skipped: 0,
            updated: 0,
          });
          assert.deepEqual(warnings, []);
          assert.equal(
            await wireTableDigest(s.url, `"${schema}"."Restored"`),
            await wireTableDigest(s.url, q),
          );
          // The same indexes, named after the new table.
          const indexes = (table: string) =>
            withSession(s.url, async (db) =>
              (await db.query(
                `select regexp_replace(indexdef, '(MyMemories|Restored)', 'T', 'g')
                 from pg_indexes where schemaname = $1 and tablename = $2 order by 1`,
                [schema, table],
              )).map((r) => r[0]));
          const recreated = await indexes("Restored");
          assert.deepEqual(recreated, await indexes("MyMemories"));
          assert.ok(
            recreated.some((d) =>
              /USING hnsw \(vector vector_cosine_ops\) WITH \(m='8', ef_construction='32'\)/
                .test(d!)
            ),
            recreated.join("\n"),
          );
          assert.ok(
            recreated.some((d) =>
              /USING ivfflat \(vector( vector_l2_ops)?\) WITH \(lists='2'\)/
                .test(
                  d!,
                )
            ),
          );
          assert.ok(
            recreated.some((d) =>
              /WHERE \(payload \? 'user_id'::text\)/.test(d!)
            ),
          );
        },
      );
    });
  },
);
