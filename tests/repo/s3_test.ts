import assert from "node:assert/strict";
import { parseS3Location, S3Storage } from "../../lib/repo/s3.ts";
import { backup } from "../../lib/backup/backup.ts";
import { backupToRepo } from "../../lib/backup/repo_backup.ts";
import { writeSnapshotBackup } from "../../lib/backup/from_snapshot.ts";
import { RepoError, UsageError } from "../../lib/errors.ts";
import { rawRecordLine } from "../../lib/format/records.ts";
import { Repository } from "../../lib/repo/repository.ts";
import { findSnapshot, listSnapshots } from "../../lib/repo/reader.ts";
import { checkSnapshot } from "../../lib/repo/check.ts";
import { pruneRepo } from "../../lib/retention/repo_prune.ts";
import { openStorage } from "../../lib/repo/location.ts";
import { openEmbeddedStore, seedMemories, WIRE_LEG } from "../_db.ts";
import {
  assertRejectsWith,
  configFrom,
  memoryRecords,
  withTempDir,
} from "../_helpers.ts";
import { startS3 } from "../_s3.ts";

Deno.test("s3:// locations: bucket, prefix, endpoint and the settings named when wrong", () => {
  const env = (values: Record<string, string>) => (k: string) => values[k];
  const aws = parseS3Location("s3://my-bucket/memkeep/", env({}), "--repo");
  assert.equal(aws.endpoint.href, "https://s3.us-east-1.amazonaws.com/");
  assert.equal(aws.prefix, "memkeep");
  assert.equal(aws.pathStyle, false);
  const r2 = parseS3Location(
    "s3://b2b/p",
    env({
      S3_ENDPOINT: "https://acct.r2.cloudflarestorage.com",
      AWS_REGION: "auto",
    }),
    "--repo",
  );
  assert.equal(r2.pathStyle, true);
  assert.equal(r2.region, "auto");
  assert.throws(
    () => parseS3Location("s3://UPPER/x", env({}), "--repo"),
    (e) => e instanceof UsageError && /does not name a bucket/.test(e.message),
  );
  assert.throws(
    () =>
      parseS3Location(
        "s3://ok-bucket",
        env({ S3_ENDPOINT: "not a url" }),
        "--repo",
      ),
    (e) => e instanceof UsageError && /^Invalid S3_ENDPOINT/.test(e.message),
  );
  assert.throws(
    () => new S3Storage(aws, env({ AWS_ACCESS_KEY_ID: "AKIA" })),
    (e) =>
      e instanceof UsageError &&
      /^Missing AWS_SECRET_ACCESS_KEY/.test(e.message),
  );
});

async function demoConfig(dir: string) {
  const store = await openEmbeddedStore(`${dir}/pglite`);
  await seedMemories(store, "public.memories", {
    memories: 150,
    dims: 48,
    seed: 21,
  });
  await store.close();
  return {
    ...configFrom({ BACKUP_DIR: `${dir}/backups` }),
    store: { kind: "pglite" as const, dataDir: `${dir}/pglite` },
  };
}

Deno.test(
  "a repository in S3 (s3rver): backup, read back exactly, prune; a 500 is retried, a 403 and a dropped upload fail in one line and leave no snapshot",
  { ignore: WIRE_LEG },
  async (t) => {
    const s3 = await startS3();
    try {
      await withTempDir(async (dir) => {
        const config = await demoConfig(dir);
        const env = (k: string) => s3.env[k];
        const repo = `s3://${s3.bucket}/team memories/prod`;
        const plain = await backup({ config });

        await t.step(
          "backup, then the snapshot written out equals the backup directory",
          async () => {
            s3.fail(/^PUT .*\/packs\//, "500");
            const result = await backupToRepo({ config, repo, env });
            assert.equal(result.snapshot.metadata.memory_count, 150);
            assert.equal(result.check?.memories, 150);
            const opened = await Repository.open(openStorage(repo, env));
            const file = await findSnapshot(opened, "latest");
            const out = await writeSnapshotBackup(opened, file, `${dir}/out`);
            assert.deepEqual(
              (await memoryRecords(out.path)).map(rawRecordLine),
              (await memoryRecords(plain.path)).map(rawRecordLine),
            );
            assert.ok(
              s3.requests.some((r) =>
                /^PUT \/memkeep-test\/team%20memories\/prod\/packs\//.test(r)
              ),
              "the pack went to the prefix, after the 500",
            );
          },
        );

        await t.step(
          "a folder of more than 1,000 objects is listed whole, page by page (ListObjectsV2's continuation token)",
          async () => {
            const storage = openStorage(`s3://${s3.bucket}/many`, env);
            const bytes = new TextEncoder().encode("x");
            const names = Array.from(
              { length: 1_005 },
              (_, i) => `packs/ab/${String(i).padStart(4, "0")}`,
            );
            for (let i = 0; i < names.length; i += 50) {
              await Promise.all(
                names.slice(i, i + 50).map((n) => storage.write(n, bytes)),
              );
            }
            const listed = await storage.list("packs");
            assert.deepEqual(listed.map((f) => f.path).sort(), names);
            assert.ok(
              s3.requests.some((r) => /continuation-token=/.test(r)),
              "the second page was asked for",
            );
          },
        );

        await t.step(
          "a 403 is one line naming the bucket and the settings, without the secret",
          async () => {
            s3.fail(/^GET /, "403");
            const error = await assertRejectsWith(
              () => Repository.open(openStorage(repo, env)),
              RepoError,
              /^S3 refused to read config\.json in s3:\/\/memkeep-test\/team memories\/prod \(HTTP 403 AccessDenied\): check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the bucket's permissions$/,
            );
            assert.ok(!error.message.includes(s3.env.AWS_SECRET_ACCESS_KEY!));
          },
        );

        await t.step(
          "an upload dropped on every attempt fails the backup and leaves no snapshot; the next backup works",
          async () => {
            const store = await openEmbeddedStore(`${dir}/pglite`);
            await store.query(
              `update memories set payload = jsonb_set(payload, '{heat}', '0.5')`,
            );
            await store.close();
            s3.fail(/^PUT .*\/packs\//, "drop", 4);
            await assertRejectsWith(
              () => backupToRepo({ config, repo, env }),
              RepoError,
              /^Cannot write packs\/[0-9a-f]{2}\/[0-9a-f]{64} in s3:\/\/memkeep-test\/team memories\/prod: the connection failed \(.*\) after 4 attempts$/,
            );
            const opened = await Repository.open(openStorage(repo, env));
            assert.equal((await listSnapshots(opened)).length, 1);
            const again = await backupToRepo({ config, repo, env });
            assert.ok(again.snapshot.bytes_added > 0);
            const reopened = await Repository.open(openStorage(repo, env));
            for (const file of await listSnapshots(reopened)) {
              await checkSnapshot(reopened, file, true);
            }
          },
        );

        await t.step(
          "a fresh backup lock refuses a prune; a stale one is removed by the next",
          async () => {
            const storage = openStorage(repo, env);
            const lock = (kind: string, ms: number) =>
              new TextEncoder().encode(JSON.stringify({
                kind,
                pid: 4242,
                created_at: new Date(Date.now() - ms).toISOString(),
              }));
            await storage.write("locks/fresh", lock("backup", 1000));
            await assertRejectsWith(
              () =>
                pruneRepo(repo, {
                  policy: { daily: 0, weekly: 0, monthly: 0 },
                  now: new Date(),
                  dryRun: true,
                  force: false,
                  env,
                }),
              RepoError,
              /^Cannot prune s3:\/\/memkeep-test\/team memories\/prod: another memkeep process holds it \(backup by process 4242 since .*\); try again when it has finished$/,
            );
            await storage.remove("locks/fresh");
            await storage.write("locks/stale", lock("backup", 3 * 3600 * 1000));
          },
        );

        await t.step(
          "prune in the bucket keeps the newest and all it needs",
          async () => {
            const outcome = await pruneRepo(repo, {
              policy: { daily: 0, weekly: 0, monthly: 0 },
              now: new Date(Date.now() + 60_000),
              dryRun: false,
              force: false,
              env,
            });
            assert.equal(outcome.deleted.length, 1);
            const opened = await Repository.open(openStorage(repo, env));
            const [kept, ...rest] = await listSnapshots(opened);
            assert.equal(rest.length, 0);
            await checkSnapshot(opened, kept!, true);
            const locks = await openStorage(repo, env).list("locks");
            assert.deepEqual(locks, [], "every lock object is released");
          },
        );
      });
    } finally {
      await s3.close();
    }
  },
);
