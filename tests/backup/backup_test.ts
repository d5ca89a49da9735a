import assert from "node:assert/strict";
import { backup } from "../../lib/backup/backup.ts";
import { BackupError, StoreError } from "../../lib/errors.ts";
import {
  BACKUP_NAME,
  EXPORT_FILE,
  LOG_FILE,
  METADATA_FILE,
  RELATIONSHIPS_COPY_FILE,
  TEMP_PREFIX,
} from "../../lib/format/layout.ts";
import { payloadFromRecord } from "../../lib/format/records.ts";
import { seedRelationshipStore } from "../../lib/store/demo_data.ts";
import { LOCK_FILE } from "../../lib/util/lock.ts";
import { verifyBackup } from "../../lib/verify/verify.ts";
import {
  openEmbeddedStore,
  seedMemories,
  startWireDatabase,
  tableDigest,
  type TestDatabase,
  WIRE_LEG,
} from "../_db.ts";
import {
  assertRejectsWith,
  assertValid,
  configFrom,
  float32Bytes,
  memoryRecords,
  runCommand,
  withTempDir,
} from "../_helpers.ts";

const SIZE = { memories: 120, dims: 384 };

/** Checks every record against the store: same ids, bit-identical vectors, equal jsonb payloads. */
async function assertFaithful(
  db: TestDatabase,
  table: string,
  backupDir: string,
  where = "true",
) {
  const records = await memoryRecords(backupDir);
  const rows = await db.query(
    `select id::text, vector::text from ${table} where ${where}`,
  );
  assert.equal(records.length, rows.length, "one record per row");
  const vectors = new Map(rows.map(([id, v]) => [id!, v]));
  for (const record of records) {
    const id = JSON.parse(record.get("id")!) as string;
    assert.ok(vectors.has(id), `id ${id} is in the store`);
    const vector = vectors.get(id);
    if (vector === null) {
      assert.equal(record.get("embedding"), "null", `NULL vector of ${id}`);
    } else {
      assert.deepEqual(
        float32Bytes(record.get("embedding")!),
        float32Bytes(vector!),
        `vector of ${id}`,
      );
    }
    const payload = payloadFromRecord(record);
    const same = await db.query(
      `select (payload is not distinct from $2::text::jsonb)::text from ${table} where id::text = $1`,
      [id, payload],
    );
    assert.equal(
      same[0]?.[0],
      "true",
      `payload of ${id} equals the store's as jsonb`,
    );
  }
}

Deno.test("backup() over the wire backs up a table not named memories, with uuid ids and 384 dims", async () => {
  const db = await startWireDatabase();
  try {
    await withTempDir(async (dir) => {
      const table = `${db.schema}.agent_memories`;
      await seedMemories(db, table, SIZE);
      await db.query(
        `create index agent_memories_user on ${table} ((payload->>'user_id'))`,
      );
      const before = await tableDigest(db, table);
      seedRelationshipStore(`${dir}/rel.db`, ["a", "b", "c", "d"], {
        relationships: 6,
      });
      const config = configFrom({
        DATABASE_URL: db.url,
        MEMORY_TABLE: table,
        RELATIONSHIPS_DB: `${dir}/rel.db`,
        BACKUP_DIR: `${dir}/backups`,
      });
      const result = await backup({ config });

      assert.match(result.name, BACKUP_NAME);
      assert.equal(result.path, `${dir}/backups/${result.name}`);
      const files = [...Deno.readDirSync(result.path)].map((e) => e.name)
        .sort();
      assert.deepEqual(files, [
        "SHA256SUMS",
        "checksums.json",
        "export.json",
        "metadata.json",
        "relationships.db",
      ]);
      const metadata = JSON.parse(
        await Deno.readTextFile(`${result.path}/${METADATA_FILE}`),
      );
      assert.equal(metadata.memory_count, SIZE.memories);
      assert.equal(metadata.relationship_count, 6);
      assert.equal(metadata.memories.table, "agent_memories");
      assert.equal(metadata.memories.dims, 384);
      assert.equal(metadata.memories.id_type, "uuid");
      assert.match(metadata.memories.pgvector_version, /^\d+\.\d+/);
      assert.ok(
        metadata.memories.indexes.some((i: string) =>
          i.includes("agent_memories_user")
        ),
      );
      assert.equal(metadata.memories.source.kind, "postgres");
      assert.ok(
        !JSON.stringify(metadata).includes("postgres:postgres"),
        "no credentials in metadata",
      );
      assert.deepEqual(metadata.relationships.tables, {
        insights: 4,
        pattern_cache: 5,
        relationships: 6,
      });

      const report = await verifyBackup(result.path);
      assert.ok(report.ok, JSON.stringify(report.problem));
      const sums = await runCommand("sha256sum", ["-c", "SHA256SUMS"], {
        cwd: result.path,
      });
      assert.equal(sums.code, 0, sums.stdout + sums.stderr);

      await assertFaithful(db, table, result.path);
      assert.equal(
        await tableDigest(db, table),
        before,
        "the store is unchanged",
      );
    });
  } finally {
    await db.close();
  }
});

Deno.test(
  "backup() of the embedded store keeps vectors bit-exact and payloads equal as jsonb",
  { ignore: WIRE_LEG },
  async () => {
    await withTempDir(async (dir) => {
      const store = await openEmbeddedStore(`${dir}/pglite`);
      await seedMemories(store, "public.memories", {
        memories: 300,
        dims: 32,
        seed: 9,
      });
      // Keys absent vs null, nested objects, numbers beyond float64, odd types.
      await store.query(`insert into memories values
        ('00000000-0000-4000-8000-000000000001', '[1e-08,3.4028235e+38,-0.333333,0]'::vector || array_fill(0.5, array[28])::real[]::vector,
         '{"data": null, "n": 12345678901234567890123, "f": 0.1000000000000000055511151231257827, "e": 1e400, "nested": {"a": [1, {"b": null}]}, "heat": "hot"}'),
        ('00000000-0000-4000-8000-000000000002', null, '{"created_at": "2025-01-01T10:00:00", "emptyish": {}, "arr": []}'),
        ('00000000-0000-4000-8000-000000000003', array_fill(0.25, array[32])::real[]::vector, null)`);
      const before = await tableDigest(store, "memories");
      await store.close();

      const config = configFrom({ BACKUP_DIR: `${dir}/backups` });
      const warnings: string[] = [];
      const result = await backup({
        config: {
          ...config,
          store: { kind: "pglite", dataDir: `${dir}/pglite` },
        },
        onWarning: (w) => warnings.push(w),
      });
      assert.deepEqual(warnings, [
        'no relationship store at "/nonexistent/memkeep-test/relationships.db": backing up memories only (set RELATIONSHIPS_DB to include one)',
      ]);
      assert.equal(result.metadata.memory_count, 303);
      assert.equal(result.metadata.relationship_count, 0);
      assert.equal(
        result.metadata.relationships.source,
        null,
        "no relationship store: metadata says so",
      );
      assertValid(await verifyBackup(result.path));

      const text = await Deno.readTextFile(`${result.path}/${EXPORT_FILE}`);
      assert.ok(
        text.includes('"n": 12345678901234567890123'),
        "big integer kept digit for digit",
      );
      assert.ok(
        text.includes("0.1000000000000000055511151231257827"),
        "long decimal kept digit for digit",
      );
      const records = await memoryRecords(result.path);
      const odd = records.find((r) =>
        r.get("id") === '"00000000-0000-4000-8000-000000000001"'
      )!;
      assert.equal(
        odd.get("content"),
        "null",
        "data: null stays a present null",
      );
      assert.equal(
        odd.get("heat"),
        '"hot"',
        "a string where a number is usual",
      );
      const noVector = records.find((r) =>
        r.get("id") === '"00000000-0000-4000-8000-000000000002"'
      )!;
      assert.equal(noVector.get("embedding"), "null");
      assert.equal(
        noVector.has("content"),
        false,
        "a key absent from the payload is absent from the record",
      );
      const noPayload = records.find((r) =>
        r.get("id") === '"00000000-0000-4000-8000-000000000003"'
      )!;
      assert.equal(
        noPayload.has("metadata"),
        false,
        "a NULL payload has no metadata",
      );

      const reopened = await openEmbeddedStore(`${dir}/pglite`);
      try {
        assert.equal(
          await tableDigest(reopened, "memories"),
          before,
          "the store is unchanged",
        );
        await assertFaithful(
          reopened,
          "memories",
          result.path,
        );
      } finally {
        await reopened.close();
      }
    });
  },
);

Deno.test("backup() with a user filter, without vectors, and of an empty table", async (t) => {
  const db = await startWireDatabase();
  try {
    const table = `${db.schema}.memories`;
    await seedMemories(db, table, { memories: 50, dims: 8 });
    await db.query(
      `create table ${db.schema}.empty_memories (id text primary key, vector vector(8), payload jsonb)`,
    );
    await withTempDir(async (dir) => {
      const env = {
        DATABASE_URL: db.url,
        MEMORY_TABLE: table,
        BACKUP_DIR: dir,
      };

      await t.step(
        "--user alice keeps only alice's memories and says so",
        async () => {
          const result = await backup({
            config: configFrom(env, { user: "alice" }),
            now: () => new Date(1e12),
          });
          assert.equal(result.metadata.user_id, "alice");
          assert.equal(result.metadata.memory_count, 25);
          await assertFaithful(
            db,
            table,
            result.path,
            `payload->>'user_id' = 'alice'`,
          );
        },
      );

      await t.step(
        "--no-vectors leaves embeddings out and records it",
        async () => {
          const result = await backup({
            config: configFrom(env),
            includeVectors: false,
            now: () => new Date(2e12),
          });
          assert.equal(result.metadata.includes_vectors, false);
          const records = await memoryRecords(result.path);
          assert.equal(records.length, 50);
          assert.ok(records.every((r) => !r.has("embedding")));
          assertValid(await verifyBackup(result.path));
        },
      );

      await t.step(
        "an empty table gives a valid backup with 0 memories",
        async () => {
          const result = await backup({
            config: configFrom({
              ...env,
              MEMORY_TABLE: `${db.schema}.empty_memories`,
            }),
            now: () => new Date(3e12),
          });
          assert.equal(result.metadata.memory_count, 0);
          assert.equal(result.metadata.memories.id_type, "text");
          assertValid(await verifyBackup(result.path));
        },
      );
    });
  } finally {
    await db.close();
  }
});

Deno.test(
  "backup() copies a live WAL-mode relationship store with every table",
  { ignore: WIRE_LEG },
  async () => {
    await withTempDir(async (dir) => {
      const store = await openEmbeddedStore(`${dir}/pglite`);
      await seedMemories(store, "public.memories", { memories: 5, dims: 4 });
      await store.close();
      const relPath = `${dir}/relationships.db`;
      seedRelationshipStore(relPath, ["a", "b", "c"], { relationships: 4 });
      // The assistant still has the store open with writes only in the WAL.
      const { DatabaseSync } = await import("node:sqlite");
      const live = new DatabaseSync(relPath);
      live.exec("pragma wal_autocheckpoint = 0");
      live.exec(
        "insert into relationships (source_id, target_id, rel_type, created_at, updated_at) values ('x', 'y', 'late', 't', 't')",
      );
      try {
        const config = configFrom({
          RELATIONSHIPS_DB: relPath,
          BACKUP_DIR: `${dir}/backups`,
        });
        const result = await backup({
          config: {
            ...config,
            store: { kind: "pglite", dataDir: `${dir}/pglite` },
          },
        });
        assert.equal(
          result.metadata.relationship_count,
          5,
          "rows still in the WAL are in the backup",
        );
        const copy = new DatabaseSync(
          `${result.path}/${RELATIONSHIPS_COPY_FILE}`,
          {
            readOnly: true,
          },
        );
        const mode = copy.prepare("pragma journal_mode").get() as {
          journal_mode: string;
        };
        copy.close();
        assert.equal(
          mode.journal_mode,
          "delete",
          "the snapshot is one self-contained file",
        );
        assertValid(await verifyBackup(result.path));
      } finally {
        live.close();
      }
    });
  },
);

Deno.test("backup() never overwrites a backup and logs every run", {
  ignore: WIRE_LEG,
}, async () => {
  await withTempDir(async (dir) => {
    const store = await openEmbeddedStore(`${dir}/pglite`);
    await seedMemories(store, "public.memories", { memories: 5, dims: 4 });
    await store.close();
    const config = configFrom({ BACKUP_DIR: `${dir}/backups` });
    const options = {
      config: {
        ...config,
        store: { kind: "pglite" as const, dataDir: `${dir}/pglite` },
      },
    };
    const now = () => new Date("2026-11-23T02:00:00Z");
    const first = await backup({ ...options, now });
    assert.equal(first.name, "memory_20261123_020000");
    const digest = await Deno.readTextFile(`${first.path}/SHA256SUMS`);
    await assertRejectsWith(
      () => backup({ ...options, now }),
      BackupError,
      /already exists/,
    );
    assert.equal(
      await Deno.readTextFile(`${first.path}/SHA256SUMS`),
      digest,
      "the first backup is untouched",
    );
    const entries = [...Deno.readDirSync(`${dir}/backups`)].map((e) => e.name)
      .filter((n) => n !== LOCK_FILE)
      .sort();
    assert.deepEqual(
      entries,
      [LOG_FILE, "memory_20261123_020000"],
      "no temporary directory left behind",
    );
    const log = (await Deno.readTextFile(`${dir}/backups/${LOG_FILE}`)).trim()
      .split("\n");
    assert.equal(log.length, 2);
    assert.match(
      log[0]!,
      /^2026-11-23T02:00:00\.000Z OK memory_20261123_020000 memories=5 relationships=0 /,
    );
    assert.match(log[1]!, /FAILED - error=".*already exists/);
  });
});

Deno.test("backup() refuses stores it cannot read, leaving no backup and no temporary directory", async (t) => {
  const db = await startWireDatabase();
  const bare = await startWireDatabase({ vector: false });
  try {
    await db.query(
      `create table ${db.schema}.wrong_shape (id uuid primary key, embedding vector(3), metadata jsonb)`,
    );
    await db.query(
      `create table ${db.schema}.arrays (id text primary key, vector vector(2), payload jsonb)`,
    );
    await db.query(
      `insert into ${db.schema}.arrays values ('ok', '[1,2]', '{}'), ('bad-one', '[1,2]', '[1, 2]')`,
    );
    await seedMemories(db, `${db.schema}.memories`, { memories: 2, dims: 2 });
    await withTempDir(async (dir) => {
      const cases: {
        name: string;
        env: Record<string, string>;
        error: typeof StoreError;
        message: RegExp;
      }[] = [
        {
          name: "a missing table",
          env: { DATABASE_URL: db.url, MEMORY_TABLE: `${db.schema}.nope` },
          error: StoreError,
          message: /table ".*nope": it does not exist/,
        },
        {
          name: "a table of the wrong shape",
          env: {
            DATABASE_URL: db.url,
            MEMORY_TABLE: `${db.schema}.wrong_shape`,
          },
          error: StoreError,
          message:
            /has no column "vector", "payload" \(columns: id, embedding, metadata\)/,
        },
        {
          name: "a payload that is not an object",
          env: { DATABASE_URL: db.url, MEMORY_TABLE: `${db.schema}.arrays` },
          error: StoreError,
          message: /memory "bad-one": its payload is a JSON array/,
        },
        {
          name: "no vector extension",
          env: { DATABASE_URL: bare.url },
          error: StoreError,
          message: /"vector" extension \(pgvector\) is not installed/,
        },
        {
          name: "an unreachable host",
          env: {
            DATABASE_URL: "postgres://me:pw@127.0.0.1:1/db?sslmode=disable",
          },
          error: StoreError,
          message:
            /Cannot connect to postgresql:\/\/me@127\.0\.0\.1:1\/db: connection refused/,
        },
        {
          name: "a configured relationship store that does not exist",
          env: {
            DATABASE_URL: db.url,
            MEMORY_TABLE: `${db.schema}.memories`,
            RELATIONSHIPS_DB: `${dir}/missing.db`,
          },
          error: StoreError,
          message:
            /relationship store ".*missing\.db" \(RELATIONSHIPS_DB\) does not exist/,
        },
        {
          name: "a relationship store that is not SQLite",
          env: {
            DATABASE_URL: db.url,
            MEMORY_TABLE: `${db.schema}.memories`,
            RELATIONSHIPS_DB: `${dir}/not-sqlite.db`,
          },
          error: StoreError,
          message: /not-sqlite\.db": it is not a SQLite database/,
        },
      ];
      await Deno.writeTextFile(
        `${dir}/not-sqlite.db`,
        "hello, this is text\n".repeat(100),
      );
      for (const c of cases) {
        await t.step(c.name, async () => {
          const out = `${dir}/out-${c.name.replaceAll(" ", "-")}`;
          await assertRejectsWith(
            () => backup({ config: configFrom({ ...c.env, BACKUP_DIR: out }) }),
            c.error,
            c.message,
          );
          const left = [...Deno.readDirSync(out)].map((e) => e.name).filter((
            n,
          ) => n !== LOCK_FILE);
          assert.deepEqual(
            left,
            [LOG_FILE],
            "only the log line; no backup, no temporary directory",
          );
          assert.ok(!left.some((n) => n.startsWith(TEMP_PREFIX)));
        });
      }
      await t.step("an output path under a file", async () => {
        await Deno.writeTextFile(`${dir}/a-file`, "x");
        await assertRejectsWith(
          () =>
            backup({
              config: configFrom({
                DATABASE_URL: db.url,
                BACKUP_DIR: `${dir}/a-file/backups`,
              }),
            }),
          BackupError,
          /Cannot create backup directory ".*a-file\/backups"/,
        );
      });
    });
  } finally {
    await db.close();
    await bare.close();
  }
});
