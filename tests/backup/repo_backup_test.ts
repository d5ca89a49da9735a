import assert from "node:assert/strict";
import { backup } from "../../lib/backup/backup.ts";
import { backupToRepo } from "../../lib/backup/repo_backup.ts";
import { BackupError, RepoError, UsageError } from "../../lib/errors.ts";
import { generateIdentity, identityToRecipient } from "age-encryption";
import { writeSnapshotBackup } from "../../lib/backup/from_snapshot.ts";
import { verifyBackup } from "../../lib/verify/verify.ts";
import { rawRecordLine } from "../../lib/format/records.ts";
import { seedRelationshipStore } from "../../lib/store/demo_data.ts";
import { LocalStorage } from "../../lib/repo/storage.ts";
import type { BlobEntry } from "../../lib/repo/layout.ts";
import { decodeIndex } from "../../lib/repo/index_file.ts";
import zlib from "node:zlib";
import { Repository } from "../../lib/repo/repository.ts";
import {
  findSnapshot,
  listSnapshots,
  snapshotMemories,
  writeRelationshipsFile,
} from "../../lib/repo/reader.ts";
import { checkFileNames, checkSnapshot } from "../../lib/repo/check.ts";
import {
  openEmbeddedStore,
  seedMemories,
  startWireDatabase,
  WIRE_LEG,
} from "../_db.ts";
import {
  assertRejectsWith,
  configFrom,
  memoryRecords,
  sqliteDigest,
  withTempDir,
} from "../_helpers.ts";

async function demoStore(dir: string) {
  const store = await openEmbeddedStore(`${dir}/pglite`);
  await seedMemories(store, "public.memories", {
    memories: 400,
    dims: 64,
    seed: 4,
  });
  // The edges of float32 and of the record layout: NULL vector, NULL payload.
  await store.query(`insert into memories values
    ('00000000-0000-4000-8000-000000000001', '[1e-45,3.4028235e+38,-0,1.1754942e-38,-1e-05,999999.94,1e+06]'::vector || array_fill(0.5, array[57])::real[]::vector,
     '{"data": "edge", "n": 12345678901234567890123, "heat": "hot"}'),
    ('00000000-0000-4000-8000-000000000002', null, '{"created_at": "2025-01-01T10:00:00"}'),
    ('00000000-0000-4000-8000-000000000003', array_fill(0.25, array[64])::real[]::vector, null)`);
  const ids = (await store.query("select id::text from memories")).map((r) =>
    r[0]!
  );
  await store.close();
  seedRelationshipStore(`${dir}/relationships.db`, ids, { relationships: 50 });
  const config = configFrom({
    BACKUP_DIR: `${dir}/backups`,
    RELATIONSHIPS_DB: `${dir}/relationships.db`,
  });
  return {
    ...config,
    store: { kind: "pglite" as const, dataDir: `${dir}/pglite` },
  };
}

Deno.test(
  "backup --repo holds exactly what a backup directory holds, and a second backup of an unchanged store adds almost nothing",
  { ignore: WIRE_LEG },
  async () => {
    await withTempDir(async (dir) => {
      const config = await demoStore(dir);
      const plain = await backup({ config });
      const repoDir = `${dir}/repo`;
      let second = 0;
      const clock = () => new Date(Date.UTC(2026, 11, 2, 2, 17, second));
      const first = await backupToRepo({ config, repo: repoDir, now: clock });
      assert.equal(first.snapshot.name, "memory_20261202_021700");
      assert.equal(first.snapshot.metadata.memory_count, 403);
      assert.equal(first.check?.memories, 403);

      // Field for field, the records a backup directory holds.
      const repo = await Repository.open(new LocalStorage(repoDir));
      const expected = (await memoryRecords(plain.path)).map(rawRecordLine);
      const got: string[] = [];
      for await (
        const record of snapshotMemories(repo, first.snapshot)
      ) got.push(rawRecordLine(record));
      assert.deepEqual(got, expected);
      await writeRelationshipsFile(repo, first.snapshot, `${dir}/rel.db`);
      assert.equal(
        sqliteDigest(`${dir}/rel.db`),
        sqliteDigest(`${plain.path}/relationships.db`),
      );

      second = 30;
      const again = await backupToRepo({ config, repo: repoDir, now: clock });
      assert.equal(again.snapshot.name, "memory_20261202_021730");
      assert.ok(
        again.snapshot.bytes_added === 0,
        `an unchanged store adds no pack (added ${again.snapshot.bytes_added} bytes)`,
      );
      const snapshots = await listSnapshots(
        await Repository.open(new LocalStorage(repoDir)),
      );
      assert.deepEqual(snapshots.map((s) => s.snapshot.name), [
        "memory_20261202_021700",
        "memory_20261202_021730",
      ]);
      assert.ok(
        first.repositoryBytes < 0.9 * plain.bytes,
        `one snapshot (${first.repositoryBytes} bytes) is smaller than the backup directory (${plain.bytes})`,
      );
      assert.ok(
        again.repositoryBytes - first.repositoryBytes < 8 * 1024,
        `the second snapshot costs its snapshot file only (${
          again.repositoryBytes - first.repositoryBytes
        } bytes)`,
      );
    });
  },
);

Deno.test(
  "a new repository (version 2) compresses records together in frames; a version 1 repository is still read, and written to as version 1",
  { ignore: WIRE_LEG },
  async () => {
    await withTempDir(async (dir) => {
      const config = await demoStore(dir);
      const plain = await backup({ config });
      const expected = (await memoryRecords(plain.path)).map(rawRecordLine);
      const sizes: Record<string, number> = {};
      for (const version of [1, 2]) {
        const repoDir = `${dir}/repo-v${version}`;
        if (version === 1) {
          await Deno.mkdir(repoDir);
          await Deno.writeTextFile(
            `${repoDir}/config.json`,
            JSON.stringify({
              tool: "memkeep",
              repository_version: 1,
              id: "0123456789abcdef0123456789abcdef",
              created_at: "2026-11-01T00:00:00.000Z",
            }),
          );
        }
        const taken = await backupToRepo({ config, repo: repoDir });
        assert.equal(taken.snapshot.repository_version, version);
        const repo = await Repository.open(new LocalStorage(repoDir));
        assert.equal(repo.config.repository_version, version);
        const got: string[] = [];
        for await (
          const record of snapshotMemories(repo, taken.snapshot)
        ) got.push(rawRecordLine(record));
        assert.deepEqual(got, expected, `version ${version} reads back`);
        await checkSnapshot(repo, await findSnapshot(repo, "latest"), true);
        // What the index says of the records: in frames, or each alone.
        const storage = new LocalStorage(repoDir);
        const index: (BlobEntry & { pack: string })[] = [];
        for (const file of await storage.list("index")) {
          const bytes = zlib.zstdDecompressSync(
            (await storage.read(file.path))!,
          );
          // Binary in version 2, JSON (still read) in version 1.
          assert.equal(
            new TextDecoder().decode(bytes.subarray(0, 5)),
            version === 2 ? "MKIX2" : '{"pac',
          );
          assert.ok(
            decodeIndex(bytes, {
              set: (pack, b) => index.push({ ...b, pack }),
            }),
          );
        }
        const records = index.filter((b) => b.type === "record");
        assert.equal(records.length, 403);
        const inFrames = records.filter((b) => b.at !== undefined).length;
        assert.equal(inFrames, version === 2 ? 403 : 0);
        // Bytes stored: each record's, or each frame's once.
        const stored = new Map(
          records.map((b) => [`${b.pack}@${b.offset}`, b.length]),
        );
        sizes[version] = [...stored.values()].reduce((n, l) => n + l, 0);
      }
      assert.ok(
        sizes[2]! < 0.5 * sizes[1]!,
        `records in frames (${
          sizes[2]
        } bytes) take under half the space of records alone (${sizes[1]})`,
      );
    });
  },
);

Deno.test(
  "a damaged pack is found by the read-back check, naming the pack",
  { ignore: WIRE_LEG },
  async () => {
    await withTempDir(async (dir) => {
      const config = await demoStore(dir);
      const repoDir = `${dir}/repo`;
      await backupToRepo({ config, repo: repoDir });
      const storage = new LocalStorage(repoDir);
      const [pack] = await storage.list("packs");
      const bytes = (await storage.read(pack!.path))!;
      bytes[100] = bytes[100]! ^ 0xff;
      await Deno.writeFile(`${repoDir}/${pack!.path}`, bytes);
      const repo = await Repository.open(storage);
      const file = await findSnapshot(repo, "latest");
      // The structure is intact: only reading the data finds it.
      await checkSnapshot(repo, file, false);
      await assertRejectsWith(
        () => checkSnapshot(repo, file, true),
        RepoError,
        new RegExp(
          `^Damaged repository: (blob [0-9a-f]{12} in pack ".*${
            pack!.path.slice(-64)
          }" does not (decompress|match its SHA-256)|pack ".*${
            pack!.path.slice(-64)
          }" does not match its name \\(SHA-256\\))$`,
        ),
      );
      await assertRejectsWith(
        () => findSnapshot(repo, "memory_20200101_000000"),
        RepoError,
        /^No snapshot "memory_20200101_000000" in ".*" \(it holds 1: memory_\d{8}_\d{6}; or use latest\)$/,
      );
    });
  },
);

Deno.test(
  "a snapshot written out as a backup directory verifies and equals the backup taken at the same moment",
  { ignore: WIRE_LEG },
  async () => {
    await withTempDir(async (dir) => {
      const config = await demoStore(dir);
      const plain = await backup({ config });
      await backupToRepo({ config, repo: `${dir}/repo` });
      const repo = await Repository.open(new LocalStorage(`${dir}/repo`));
      const file = await findSnapshot(repo, "latest");
      const out = await writeSnapshotBackup(repo, file, `${dir}/out`);
      assert.equal(out.path, `${dir}/out/${file.snapshot.name}`);
      const report = await verifyBackup(out.path);
      assert.equal(report.ok, true);
      assert.deepEqual(
        (await memoryRecords(out.path)).map(rawRecordLine),
        (await memoryRecords(plain.path)).map(rawRecordLine),
      );
      assert.deepEqual(out.metadata, file.snapshot.metadata);
      await assertRejectsWith(
        () => writeSnapshotBackup(repo, file, `${dir}/out`),
        BackupError,
        /^Cannot write ".*\/out\/memory_\d{8}_\d{6}": it already exists$/,
      );
    });
  },
);

Deno.test(
  "an encrypted repository (AGE_RECIPIENTS): every pack, index and snapshot is an age file; a key reads it back exactly; without one only the files' names can be checked",
  { ignore: WIRE_LEG },
  async () => {
    await withTempDir(async (dir) => {
      const config = await demoStore(dir);
      const plain = await backup({ config });
      const identity = await generateIdentity();
      const recipient = await identityToRecipient(identity);
      const keys = { identities: [identity], passphrase: undefined };
      const repoDir = `${dir}/repo`;
      const first = await backupToRepo({
        config,
        repo: repoDir,
        recipients: [recipient],
        keys,
      });
      assert.equal(first.check?.memories, 403);
      const storage = new LocalStorage(repoDir);
      for (const folder of ["packs", "index", "snapshots"]) {
        const files = await storage.list(folder);
        assert.ok(files.length > 0, folder);
        for (const file of files) {
          const head = new TextDecoder().decode(
            (await storage.read(file.path))!.subarray(0, 22),
          );
          assert.equal(head, "age-encryption.org/v1\n", file.path);
        }
      }
      // A second backup needs the key to skip what the repository holds.
      await assertRejectsWith(
        () => backupToRepo({ config, repo: repoDir }),
        UsageError,
        /^Repository .*\/repo is encrypted: set AGE_IDENTITY_FILE \(or AGE_PASSPHRASE\) to read it$/,
      );
      const second = await backupToRepo({ config, repo: repoDir, keys });
      assert.equal(second.snapshot.bytes_added, 0);

      const repo = await Repository.open(storage, { keys });
      const file = await findSnapshot(repo, "latest");
      const out = await writeSnapshotBackup(repo, file, `${dir}/out`);
      assert.deepEqual(
        (await memoryRecords(out.path)).map(rawRecordLine),
        (await memoryRecords(plain.path)).map(rawRecordLine),
      );

      const other = await generateIdentity();
      await assertRejectsWith(
        () =>
          Repository.open(storage, {
            keys: { identities: [other], passphrase: undefined },
          }),
        RepoError,
        /^Cannot decrypt ".*\/repo\/index\/[0-9a-f]{64}": none of the keys given opens it \(AGE_IDENTITY_FILE, AGE_PASSPHRASE\)$/,
      );
      const locked = await Repository.open(storage, { structure: true });
      assert.equal(locked.sealer.encrypted, true);
      const names = await checkFileNames(storage);
      assert.ok(names.files >= 3);
      const [pack] = await storage.list("packs");
      const bytes = (await storage.read(pack!.path))!;
      bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 1;
      await Deno.writeFile(`${repoDir}/${pack!.path}`, bytes);
      await assertRejectsWith(
        () => checkFileNames(storage),
        RepoError,
        /^Damaged repository: ".*\/packs\/.*" does not match its name \(SHA-256\)$/,
      );
      await assertRejectsWith(
        async () => {
          await backupToRepo({ config, repo: `${dir}/plain` });
          await backupToRepo({
            config,
            repo: `${dir}/plain`,
            recipients: [recipient],
          });
        },
        UsageError,
        /^Invalid AGE_RECIPIENTS: repository .*\/plain was created without encryption, and stays so; back up into a new repository to encrypt$/,
      );
    });
  },
);

Deno.test("backup --repo over the wire (on a real server: pgvector's binary vectors) holds exactly what a backup directory holds", async () => {
  const db = await startWireDatabase();
  try {
    await withTempDir(async (dir) => {
      const table = `${db.schema}.memories`;
      await seedMemories(db, table, { memories: 300, dims: 96, seed: 8 });
      await db.query(`insert into ${table} values
        ('00000000-0000-4000-8000-000000000001', '[1e-45,3.4028235e+38,-0,1.1754942e-38]'::vector || array_fill(0.5, array[92])::real[]::vector, '{"data": "edge", "heat": "hot"}'),
        ('00000000-0000-4000-8000-000000000002', null, '{"created_at": "2025-01-01T10:00:00"}'),
        ('00000000-0000-4000-8000-000000000003', array_fill(0.25, array[96])::real[]::vector, null)`);
      const config = configFrom({
        DATABASE_URL: db.url,
        MEMORY_TABLE: table,
        BACKUP_DIR: `${dir}/backups`,
      });
      const plain = await backup({ config });
      const result = await backupToRepo({ config, repo: `${dir}/repo` });
      assert.equal(result.check?.memories, 303);
      const repo = await Repository.open(new LocalStorage(`${dir}/repo`));
      const got: string[] = [];
      for await (const r of snapshotMemories(repo, result.snapshot)) {
        got.push(rawRecordLine(r));
      }
      assert.deepEqual(
        got,
        (await memoryRecords(plain.path)).map(rawRecordLine),
      );
    });
  } finally {
    await db.close();
  }
});
