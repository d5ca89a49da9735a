import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { backup, type BackupResult } from "../../lib/backup/backup.ts";
import type { Config } from "../../lib/store/config.ts";
import { seedRelationshipStore } from "../../lib/store/demo_data.ts";
import { StoreError } from "../../lib/errors.ts";
import { EXPORT_FILE, METADATA_FILE } from "../../lib/format/layout.ts";
import { restore, type RestoreOptions } from "../../lib/restore/restore.ts";
import { RestoreError } from "../../lib/errors.ts";
import { SourceError } from "../../lib/errors.ts";
import {
  openEmbeddedStore,
  seedMemories,
  startWireDatabase,
  tableDigest,
  WIRE_LEG,
} from "../_db.ts";
import {
  assertRejectsWith,
  configFrom,
  exportEntries,
  withTempDir,
} from "../_helpers.ts";
import { zipBackup } from "../_zip.ts";

const DIMS = 24;
const MEMORIES = 150;

/** A source store with odd rows and a relationship store with hostile values, backed up. */
async function sourceBackup(
  dir: string,
  options: { memories?: number } = {},
): Promise<BackupResult> {
  const store = await openEmbeddedStore(`${dir}/source/pglite`);
  const count = options.memories ?? MEMORIES;
  if (count > 0) {
    await seedMemories(store, "public.memories", {
      memories: count,
      dims: DIMS,
      seed: 3,
    });
    await store.query(`insert into memories values
      ('00000000-0000-4000-8000-00000000000a', null, '{"data": "no vector", "n": 123456789012345678901234567890}'),
      ('00000000-0000-4000-8000-00000000000b', array_fill(0.125, array[${DIMS}])::real[]::vector, null)`);
  } else {
    await store.query(
      `create table memories (id uuid primary key, vector vector(${DIMS}), payload jsonb)`,
    );
  }
  await store.query(
    "create index memories_user_idx on memories ((payload->>'user_id'))",
  );
  await store.close();
  const rel = `${dir}/source/relationships.db`;
  seedRelationshipStore(rel, ["a", "b", "c", "d", "e", "f"], {
    relationships: 12,
  });
  const db = new DatabaseSync(rel);
  const add = db.prepare(
    "insert into relationships (source_id, target_id, rel_type, strength, metadata, created_at, updated_at) values (?, ?, ?, ?, ?, ?, ?)",
  );
  add.run("x", "y", "pretty", 0.5, '{\n  "multi": "line"\n}', "c1", "u1");
  add.run("x", "y", "text", null, "not json at all", "c2", "u2");
  add.run("x", "y", "scalar", 2, '"a json string"', "c3", "u3");
  add.run(
    "x",
    "y",
    "big",
    1,
    '{"n": 123456789012345678901234567890}',
    "c4",
    "u4",
  );
  db.close();
  const config = configFrom({
    RELATIONSHIPS_DB: rel,
    BACKUP_DIR: `${dir}/backups`,
  });
  return await backup({
    config: {
      ...config,
      store: { kind: "pglite", dataDir: `${dir}/source/pglite` },
    },
  });
}

function relationshipRows(path: string): unknown[] {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const statement = db.prepare("select * from relationships order by id");
    statement.setReadBigInts(true);
    return statement.all();
  } finally {
    db.close();
  }
}

/** The records of a backup, memories keyed by id, as exact text. */
async function recordsOf(
  path: string,
): Promise<{ memories: Map<string, string>; relationships: string[] }> {
  const memories = new Map<string, string>();
  const relationships: string[] = [];
  for (const entry of await exportEntries(path)) {
    if (entry.section === "memories") {
      memories.set((entry.value as { id: string }).id, entry.text);
    }
    if (entry.section === "relationships") relationships.push(entry.text);
  }
  return { memories, relationships };
}

function embedded(
  dir: string,
  relationships: string,
  backupDir = `${dir}/rebackup`,
): Config {
  const config = configFrom({
    RELATIONSHIPS_DB: relationships,
    BACKUP_DIR: backupDir,
  });
  return { ...config, store: { kind: "pglite", dataDir: `${dir}/pglite` } };
}

function options(
  source: string,
  config: Config,
  extra: Partial<RestoreOptions> = {},
): RestoreOptions {
  return {
    source,
    config,
    scratchDir: `${config.backupDir}/../scratch-${crypto.randomUUID()}`,
    ...extra,
  };
}

Deno.test(
  "restore() into an empty embedded store, then a backup again, gives back the same records",
  { ignore: WIRE_LEG },
  async () => {
    await withTempDir(async (dir) => {
      const original = await sourceBackup(dir);
      const target = `${dir}/target`;
      await Deno.mkdir(target);
      const config = embedded(target, `${target}/relationships.db`);
      const result = await restore(options(original.path, config));
      assert.equal(result.committed, true);
      assert.equal(result.createsTable, true);
      assert.equal(result.relationships.how, "copy");
      assert.deepEqual(result.memories, {
        restored: MEMORIES + 2,
        skipped: 0,
        updated: 0,
      });
      assert.deepEqual(result.relationshipCounts, {
        restored: 16,
        skipped: 0,
        updated: 0,
      });

      const again = await backup({
        config: {
          ...config,
          relationships: { path: `${target}/relationships.db`, explicit: true },
        },
      });
      const a = await recordsOf(original.path);
      const b = await recordsOf(again.path);
      assert.deepEqual(
        [...b.memories.keys()].sort(),
        [...a.memories.keys()].sort(),
        "same ids",
      );
      for (const [id, text] of a.memories) {
        assert.equal(
          b.memories.get(id),
          text,
          `record ${id}: same vector and payload text`,
        );
      }
      assert.deepEqual(
        b.relationships,
        a.relationships,
        "equal relationship rows",
      );
      assert.deepEqual(
        again.metadata.memories.indexes,
        original.metadata.memories.indexes,
        "indexes recreated",
      );
      assert.deepEqual(
        again.metadata.relationships.tables,
        original.metadata.relationships.tables,
        "every table",
      );
    });
  },
);

Deno.test("restore() over the wire into an empty table merges relationships into an existing store", async () => {
  const db = await startWireDatabase();
  try {
    await withTempDir(async (dir) => {
      const original = await sourceBackup(dir);
      // An existing relationship store with the table but no rows.
      const rel = `${dir}/existing.db`;
      seedRelationshipStore(rel, [], { relationships: 0 });
      const table = `${db.schema}.restored_memories`;
      const config = configFrom({
        DATABASE_URL: db.url,
        RELATIONSHIPS_DB: rel,
        BACKUP_DIR: `${dir}/rebackup`,
      });
      const result = await restore(options(original.path, config, {
        table: { schema: db.schema, name: "restored_memories" },
      }));
      assert.equal(result.relationships.how, "merge");
      assert.deepEqual(result.memories, {
        restored: MEMORIES + 2,
        skipped: 0,
        updated: 0,
      });
      assert.deepEqual(result.relationshipCounts, {
        restored: 16,
        skipped: 0,
        updated: 0,
      });
      const again = await backup({
        config: {
          ...config,
          table: { schema: db.schema, name: "restored_memories" },
        },
      });
      const a = await recordsOf(original.path);
      const b = await recordsOf(again.path);
      for (const [id, text] of a.memories) {
        assert.equal(b.memories.get(id), text, `record ${id}`);
      }
      assert.equal(b.memories.size, a.memories.size);
      assert.deepEqual(
        b.relationships,
        a.relationships,
        "equal relationship rows, ids kept",
      );
      assert.ok(
        again.metadata.memories.indexes.some((i) =>
          i.includes("restored_memories_user_idx")
        ),
        "the index is recreated under the new table's name",
      );
      assert.equal(await tableDigest(db, table) !== "", true);
    });
  } finally {
    await db.close();
  }
});

Deno.test(
  "restore() into a store holding half the rows gives exact counts in each mode, and the dry run matches",
  { ignore: WIRE_LEG },
  async (t) => {
    await withTempDir(async (dir) => {
      const original = await sourceBackup(dir);
      for (const mode of ["skip", "update"] as const) {
        await t.step(mode, async () => {
          const target = `${dir}/half-${mode}`;
          const store = await openEmbeddedStore(`${target}/pglite`);
          await seedMemories(store, "public.memories", {
            memories: MEMORIES / 2,
            dims: DIMS,
            seed: 3,
          });
          // Ten of them changed since the backup.
          await store.query(
            `update memories set payload = payload || '{"changed": true}' where id in (select id from memories order by id limit 10)`,
          );
          const changed = await store.query(
            "select id::text, payload::text from memories where payload ? 'changed'",
          );
          await store.close();
          const rel = `${target}/relationships.db`;
          await Deno.copyFile(original.path + "/relationships.db", rel);
          const live = new DatabaseSync(rel);
          live.exec("delete from relationships where id > 8");
          live.exec(
            "update relationships set strength = 0.001, created_at = 'kept' where id <= 3",
          );
          live.close();
          const config = embedded(target, rel);
          const expected = {
            memories: mode === "skip"
              ? {
                restored: MEMORIES / 2 + 2,
                skipped: MEMORIES / 2,
                updated: 0,
              }
              : {
                restored: MEMORIES / 2 + 2,
                skipped: MEMORIES / 2 - 10,
                updated: 10,
              },
            relationships: mode === "skip"
              ? { restored: 8, skipped: 8, updated: 0 }
              : { restored: 8, skipped: 5, updated: 3 },
          };

          const digest = await storeDigest(target);
          const relBefore = relationshipRows(rel);
          const dry = await restore(
            options(original.path, config, {
              conflictMode: mode,
              dryRun: true,
            }),
          );
          assert.equal(dry.committed, false);
          assert.deepEqual(dry.memories, expected.memories);
          assert.deepEqual(dry.relationshipCounts, expected.relationships);
          assert.equal(
            await storeDigest(target),
            digest,
            "a dry run writes nothing to the memory store",
          );
          assert.deepEqual(
            relationshipRows(rel),
            relBefore,
            "nor to the relationship store",
          );

          const real = await restore(
            options(original.path, config, { conflictMode: mode }),
          );
          assert.deepEqual(
            real.memories,
            dry.memories,
            "the real restore reports the dry run's numbers",
          );
          assert.deepEqual(real.relationshipCounts, dry.relationshipCounts);

          const after = await openEmbeddedStore(`${target}/pglite`);
          try {
            const stillChanged = await after.query(
              "select count(*)::text from memories where payload ? 'changed'",
            );
            assert.equal(
              stillChanged[0]![0],
              mode === "skip" ? "10" : "0",
              `${mode}: changed rows kept or replaced`,
            );
            if (mode === "skip") {
              const rows = await after.query(
                "select id::text, payload::text from memories where payload ? 'changed'",
              );
              assert.deepEqual(rows, changed);
            }
            assert.equal(
              (await after.query("select count(*)::text from memories"))[0]![0],
              String(MEMORIES + 2),
            );
          } finally {
            await after.close();
          }
          const rows = relationshipRows(rel) as {
            id: bigint;
            strength: number;
            created_at: string;
          }[];
          assert.equal(rows.length, 16);
          const first = rows.filter((r) => r.id <= 3n);
          assert.ok(
            first.every((r) => r.created_at === "kept"),
            "created_at is kept in both modes",
          );
          assert.ok(
            first.every((
              r,
            ) => (mode === "skip"
              ? r.strength === 0.001
              : r.strength !== 0.001)
            ),
          );
        });
      }
    });
  },
);

async function storeDigest(target: string): Promise<string> {
  const store = await openEmbeddedStore(`${target}/pglite`);
  try {
    return await tableDigest(store, "memories");
  } finally {
    await store.close();
  }
}

Deno.test("restore() of a backup with no memories restores its relationships", {
  ignore: WIRE_LEG,
}, async () => {
  await withTempDir(async (dir) => {
    const original = await sourceBackup(dir, { memories: 0 });
    assert.equal(original.metadata.memory_count, 0);
    const target = `${dir}/target`;
    const rel = `${target}/relationships.db`;
    await Deno.mkdir(target);
    seedRelationshipStore(rel, [], { relationships: 0 });
    const result = await restore(options(original.path, embedded(target, rel)));
    assert.deepEqual(result.memories, { restored: 0, skipped: 0, updated: 0 });
    assert.deepEqual(result.relationshipCounts, {
      restored: 16,
      skipped: 0,
      updated: 0,
    });
    assert.equal(relationshipRows(rel).length, 16);
  });
});

Deno.test(
  "restore() reads a GitHub artifact zip and the folder gh run download makes",
  { ignore: WIRE_LEG },
  async (t) => {
    await withTempDir(async (dir) => {
      const original = await sourceBackup(dir);
      const cases: [string, () => Promise<string>][] = [
        ["an artifact zip with the files at its root", async () => {
          await zipBackup(original.path, `${dir}/artifact.zip`);
          return `${dir}/artifact.zip`;
        }],
        ["a zip with the backup one folder down", async () => {
          await zipBackup(original.path, `${dir}/nested.zip`, {
            folder: original.name,
          });
          return `${dir}/nested.zip`;
        }],
        ["the folder gh run download makes", async () => {
          const folder = `${dir}/download`;
          await Deno.mkdir(`${folder}/${original.name}`, { recursive: true });
          for (const e of Deno.readDirSync(original.path)) {
            await Deno.copyFile(
              `${original.path}/${e.name}`,
              `${folder}/${original.name}/${e.name}`,
            );
          }
          return folder;
        }],
      ];
      let n = 0;
      for (const [name, make] of cases) {
        await t.step(name, async () => {
          const source = await make();
          const target = `${dir}/t${n++}`;
          await Deno.mkdir(target);
          const config = embedded(target, `${target}/relationships.db`);
          const scratch = `${target}/scratch`;
          const result = await restore({ source, config, scratchDir: scratch });
          assert.deepEqual(result.memories, {
            restored: MEMORIES + 2,
            skipped: 0,
            updated: 0,
          });
          assert.deepEqual(result.relationshipCounts, {
            restored: 16,
            skipped: 0,
            updated: 0,
          });
          assert.equal(
            await exists(scratch),
            false,
            "nothing extracted is left behind",
          );
        });
      }
    });
  },
);

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("restore() refuses bad sources and unfit targets before writing anything", async (t) => {
  await withTempDir(async (dir) => {
    const original = await sourceBackup(dir);
    const target = `${dir}/target`;
    const store = await openEmbeddedStore(`${target}/pglite`);
    await store.query(
      `create table small (id uuid primary key, vector vector(3), payload jsonb)`,
    );
    await store.query(
      `create table textids (id text primary key, vector vector(${DIMS}), payload jsonb)`,
    );
    await store.query(
      `create table shape (id uuid primary key, embedding vector(${DIMS}), metadata jsonb)`,
    );
    await store.query(
      `create table nokey (id uuid, vector vector(${DIMS}), payload jsonb)`,
    );
    await store.close();
    const rel = `${target}/relationships.db`;
    seedRelationshipStore(rel, ["a", "b"], { relationships: 1 });
    const config = embedded(target, rel);
    const before = await storeDigest(target).catch(() => "none");
    const relBefore = relationshipRows(rel);

    // A backup with text ids, for a uuid table.
    const textSource = `${dir}/text-source`;
    const textStore = await openEmbeddedStore(`${textSource}/pglite`);
    await textStore.query(
      `create table memories (id text primary key, vector vector(${DIMS}), payload jsonb)`,
    );
    await textStore.query(
      `insert into memories values ('00000000-0000-4000-8000-000000000001', array_fill(0.5, array[${DIMS}])::real[]::vector, '{}'), ('note-7', array_fill(0.5, array[${DIMS}])::real[]::vector, '{}')`,
    );
    await textStore.close();
    const textBackup = await backup({
      config: {
        ...configFrom({ BACKUP_DIR: `${dir}/backups` }),
        store: { kind: "pglite", dataDir: `${textSource}/pglite` },
      },
    });
    const noVectors = await backup({
      config: {
        ...configFrom({ BACKUP_DIR: `${dir}/backups` }),
        store: { kind: "pglite", dataDir: `${dir}/source/pglite` },
      },
      includeVectors: false,
    });

    // A backup that fails its checksum.
    const tampered = `${dir}/tampered`;
    await Deno.mkdir(tampered);
    for (const e of Deno.readDirSync(original.path)) {
      await Deno.copyFile(
        `${original.path}/${e.name}`,
        `${tampered}/${e.name}`,
      );
    }
    const text = await Deno.readTextFile(`${tampered}/${EXPORT_FILE}`);
    await Deno.writeTextFile(
      `${tampered}/${EXPORT_FILE}`,
      text.replace('"heat":0.', '"heat":1.'),
    );

    // A zip with a corrupt entry.
    await zipBackup(original.path, `${dir}/corrupt.zip`);
    const zip = await Deno.readFile(`${dir}/corrupt.zip`);
    const at = findEntryData(zip, "export.json") + 40;
    for (let i = at; i < at + 16; i++) zip[i] = zip[i]! ^ 0xff;
    await Deno.writeFile(`${dir}/corrupt.zip`, zip);

    const table = (name: string) => ({ schema: "public", name });
    const cases: [
      string,
      Partial<RestoreOptions>,
      typeof StoreError | typeof RestoreError | typeof SourceError,
      RegExp,
    ][] = [
      [
        "a missing source",
        { source: `${dir}/nope` },
        SourceError,
        /source ".*nope" no such file or directory/,
      ],
      [
        "a backup whose checksum fails",
        { source: tampered },
        RestoreError,
        /failed verification: export\.json: checksum mismatch/,
      ],
      [
        "a zip with a corrupt entry",
        { source: `${dir}/corrupt.zip` },
        SourceError,
        /zip entry "export\.json" is corrupt/,
      ],
      [
        "a table of another dimension",
        { table: table("small") },
        StoreError,
        /vectors have 3 dimensions, the backup's have 24/,
      ],
      [
        "a table of another shape",
        { table: table("shape") },
        StoreError,
        /has no column "vector", "payload"/,
      ],
      [
        "a table without a key on id",
        { table: table("nokey") },
        StoreError,
        /no primary key or unique index/,
      ],
      [
        "text ids into a uuid column",
        { source: textBackup.path, table: table("memories_uuid") },
        StoreError,
        /id column is uuid, but the backup holds id "note-7"/,
      ],
      [
        "a backup without vectors",
        { source: noVectors.path },
        RestoreError,
        /made with --no-vectors; pass --allow-missing-vectors/,
      ],
      [
        "a target that cannot be reached",
        {
          config: {
            ...config,
            ...configFrom({
              DATABASE_URL: "postgres://me:pw@127.0.0.1:1/db?sslmode=disable",
            }),
          },
        },
        StoreError,
        /Cannot connect to postgresql:\/\/me@127\.0\.0\.1:1\/db: connection refused/,
      ],
    ];
    const prep = await openEmbeddedStore(`${target}/pglite`);
    await prep.query(
      `create table memories_uuid (id uuid primary key, vector vector(${DIMS}), payload jsonb)`,
    );
    await prep.close();
    const digest = await storeDigest(target).catch(() => "none");
    for (const [name, extra, ErrorClass, pattern] of cases) {
      await t.step(name, async () => {
        await assertRejectsWith(
          () => restore(options(original.path, config, extra)),
          ErrorClass,
          pattern,
        );
        assert.equal(
          await storeDigest(target).catch(() => "none"),
          digest,
          "the memory store is unchanged",
        );
        assert.deepEqual(
          relationshipRows(rel),
          relBefore,
          "the relationship store is unchanged",
        );
      });
    }
    assert.ok(before.length > 0);
  });
});

/** The offset of an entry's data in a zip (after its local header). */
function findEntryData(zip: Uint8Array, name: string): number {
  const target = new TextEncoder().encode(name);
  for (let i = 0; i < zip.length - 30; i++) {
    if (
      zip[i] === 0x50 && zip[i + 1] === 0x4b && zip[i + 2] === 3 &&
      zip[i + 3] === 4
    ) {
      const view = new DataView(zip.buffer, zip.byteOffset + i);
      const nameLength = view.getUint16(26, true);
      const extraLength = view.getUint16(28, true);
      const entryName = zip.subarray(i + 30, i + 30 + nameLength);
      if (
        entryName.length === target.length &&
        entryName.every((b, k) => b === target[k])
      ) {
        return i + 30 + nameLength + extraLength;
      }
    }
  }
  throw new Error(`no entry ${name}`);
}

Deno.test("restore() refuses unsafe zips before extracting anything", {
  ignore: WIRE_LEG,
}, async (t) => {
  await withTempDir(async (dir) => {
    const original = await sourceBackup(dir);
    const cases: [string, Parameters<typeof zipBackup>[2], RegExp][] = [
      [
        "an absolute path",
        { extra: [{ name: "/etc/evil", text: "x" }] },
        /entry "\/etc\/evil" is an absolute path/,
      ],
      ["a path climbing out with ..", {
        extra: [{ name: "../evil", text: "x" }],
      }, /entry "\.\.\/evil" climbs out with \.\./],
      ["a link", {
        extra: [{ name: "link", text: "/etc/passwd", unixMode: 0o120777 }],
      }, /entry "link" is a link/],
      ["an entry not in the manifest", {
        extra: [{ name: "notes.txt", text: "x" }],
      }, /entry "notes\.txt" is not listed in checksums\.json/],
      ["no backup at all", { skip: ["checksums.json"] }, /holds no backup/],
    ];
    let n = 0;
    for (const [name, zipOptions, pattern] of cases) {
      await t.step(name, async () => {
        const zip = `${dir}/case-${n++}.zip`;
        await zipBackup(original.path, zip, zipOptions);
        const scratch = `${dir}/scratch-${n}`;
        const config = embedded(
          `${dir}/t-${n}`,
          `${dir}/t-${n}/relationships.db`,
        );
        await assertRejectsWith(
          () => restore({ source: zip, config, scratchDir: scratch }),
          SourceError,
          pattern,
        );
        assert.equal(await exists(scratch), false, "nothing extracted");
        assert.equal(
          await exists(`${dir}/t-${n}/pglite`),
          false,
          "no store touched",
        );
      });
    }
    await t.step(
      "a size in the zip that disagrees with the manifest",
      async () => {
        const metadata = await Deno.readTextFile(
          `${original.path}/${METADATA_FILE}`,
        );
        const copy = `${dir}/resized`;
        await Deno.mkdir(copy);
        for (const e of Deno.readDirSync(original.path)) {
          await Deno.copyFile(
            `${original.path}/${e.name}`,
            `${copy}/${e.name}`,
          );
        }
        await Deno.writeTextFile(
          `${copy}/${METADATA_FILE}`,
          metadata + " ".repeat(10_000_000),
        );
        await zipBackup(copy, `${dir}/bomb.zip`);
        await assertRejectsWith(
          () =>
            restore({
              source: `${dir}/bomb.zip`,
              config: embedded(`${dir}/tb`, `${dir}/tb/r.db`),
              scratchDir: `${dir}/sb`,
            }),
          SourceError,
          /entry "metadata\.json" declares \d+ bytes, checksums\.json lists \d+/,
        );
        assert.equal(await exists(`${dir}/sb`), false);
      },
    );
  });
});

Deno.test(
  "restore() is all or nothing: a failure late in either store leaves both as they were",
  { ignore: WIRE_LEG },
  async (t) => {
    await withTempDir(async (dir) => {
      const original = await sourceBackup(dir);
      const ids = [...(await recordsOf(original.path)).memories.keys()];
      const lastId = ids[ids.length - 3]!;
      const cases: [
        string,
        (target: string, rel: string) => Promise<void>,
        RegExp,
      ][] = [
        ["a memory refused by the target near the end", async (target) => {
          const store = await openEmbeddedStore(`${target}/pglite`);
          await seedMemories(store, "public.memories", {
            memories: 10,
            dims: DIMS,
            seed: 99,
          });
          await store.query(
            `alter table memories add constraint no_late check (id <> '${lastId}')`,
          );
          await store.close();
        }, /violates check constraint "no_late"/],
        [
          "a relationship refused by the target after every memory went in",
          async (target, rel) => {
            const store = await openEmbeddedStore(`${target}/pglite`);
            await seedMemories(store, "public.memories", {
              memories: 10,
              dims: DIMS,
              seed: 99,
            });
            await store.close();
            const db = new DatabaseSync(rel);
            db.exec(
              `create trigger refuse before insert on relationships when new.rel_type = 'big'
                 begin select raise(abort, 'refused by trigger'); end`,
            );
            db.close();
          },
          /refused by trigger/,
        ],
      ];
      let n = 0;
      for (const [name, prepare, pattern] of cases) {
        await t.step(name, async () => {
          const target = `${dir}/t${n++}`;
          const rel = `${target}/relationships.db`;
          await Deno.mkdir(target);
          seedRelationshipStore(rel, ["p", "q", "r"], { relationships: 2 });
          await prepare(target, rel);
          const digest = await storeDigest(target);
          const relBefore = relationshipRows(rel);
          await assertRejectsWith(
            () => restore(options(original.path, embedded(target, rel))),
            Error,
            pattern,
          );
          assert.equal(
            await storeDigest(target),
            digest,
            "no memory was written",
          );
          assert.deepEqual(
            relationshipRows(rel),
            relBefore,
            "no relationship was written",
          );
        });
      }
      await t.step(
        "a new relationship store that cannot be written, after every memory went in",
        async () => {
          const target = `${dir}/t${n++}`;
          await Deno.mkdir(target);
          const store = await openEmbeddedStore(`${target}/pglite`);
          await seedMemories(store, "public.memories", {
            memories: 10,
            dims: DIMS,
            seed: 99,
          });
          await store.close();
          // Something is in the way of the copy's temporary name.
          const rel = `${target}/data/relationships.db`;
          await Deno.mkdir(`${rel}.memkeep-restoring/mine`, {
            recursive: true,
          });
          const digest = await storeDigest(target);
          await assertRejectsWith(
            () => restore(options(original.path, embedded(target, rel))),
            Error,
            /^Cannot restore relationships to ".*\/data\/relationships\.db": ".*\.memkeep-restoring" is in the way \(not a file\); move it$/,
          );
          assert.equal(
            await storeDigest(target),
            digest,
            "no memory was written",
          );
          assert.deepEqual(
            [...Deno.readDirSync(`${target}/data`)].map((e) => e.name),
            ["relationships.db.memkeep-restoring"],
            "no relationship store was made, and what was in the way is kept",
          );
          assert.ok(Deno.statSync(`${rel}.memkeep-restoring/mine`).isDirectory);
        },
      );
      await t.step(
        "export.json changed after it was verified (between the preview and yes): refused, nothing written",
        async () => {
          const target = `${dir}/changed`;
          const rel = `${target}/relationships.db`;
          await Deno.mkdir(target);
          seedRelationshipStore(rel, ["p", "q", "r"], { relationships: 2 });
          const seeded = await openEmbeddedStore(`${target}/pglite`);
          await seedMemories(seeded, "public.memories", {
            memories: 10,
            dims: DIMS,
            seed: 99,
          });
          await seeded.close();
          const digest = await storeDigest(target);
          const copy = `${dir}/changed-backup`;
          await Deno.mkdir(copy);
          for (const entry of Deno.readDirSync(original.path)) {
            await Deno.copyFile(
              `${original.path}/${entry.name}`,
              `${copy}/${entry.name}`,
            );
          }
          const relBefore = relationshipRows(rel);
          let previewed = 0;
          await assertRejectsWith(
            () =>
              restore(options(copy, embedded(target, rel), {
                confirm: async (preview) => {
                  previewed = preview.memories.restored +
                    preview.memories.skipped;
                  // The same length, still valid JSON: only the digest can tell.
                  const path = `${copy}/${EXPORT_FILE}`;
                  const text = await Deno.readTextFile(path);
                  const at = text.lastIndexOf('"content":"') + 11;
                  await Deno.writeTextFile(
                    path,
                    text.slice(0, at) +
                      (text[at] === "X" ? "Y" : "X") + text.slice(at + 1),
                  );
                  return true;
                },
              })),
            RestoreError,
            /^Cannot restore: export\.json changed after it was verified; nothing was written$/,
          );
          assert.equal(
            previewed,
            MEMORIES + 2,
            "the preview ran on the verified file",
          );
          assert.equal(
            await storeDigest(target),
            digest,
            "no memory was written",
          );
          assert.deepEqual(relationshipRows(rel), relBefore);
        },
      );
    });
  },
);
