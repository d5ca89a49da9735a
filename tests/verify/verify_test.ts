import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { backup, type BackupResult } from "../../lib/backup/backup.ts";
import { hashFile, writeChecksums } from "../../lib/format/checksums.ts";
import { seedRelationshipStore } from "../../lib/store/demo_data.ts";
import { VerifyError } from "../../lib/errors.ts";
import {
  CHECKSUMS_FILE,
  EXPORT_FILE,
  METADATA_FILE,
  RELATIONSHIPS_COPY_FILE,
  SUMS_FILE,
} from "../../lib/format/layout.ts";
import { verifyBackup } from "../../lib/verify/verify.ts";
import { type VerifyReport } from "../../lib/verify/report.ts";
import { openEmbeddedStore, seedMemories } from "../_db.ts";
import {
  assertRejectsWith,
  configFrom,
  copyDir,
  runCommand,
  withTempDir,
} from "../_helpers.ts";

const MEMORIES = 20;
const DIMS = 16;

async function makeBackup(dir: string): Promise<BackupResult> {
  const store = await openEmbeddedStore(`${dir}/pglite`);
  await seedMemories(store, "public.memories", {
    memories: MEMORIES,
    dims: DIMS,
  });
  await store.close();
  seedRelationshipStore(`${dir}/rel.db`, ["a", "b", "c", "d", "e"], {
    relationships: 8,
  });
  const config = configFrom({
    RELATIONSHIPS_DB: `${dir}/rel.db`,
    BACKUP_DIR: `${dir}/backups`,
  });
  return await backup({
    config: { ...config, store: { kind: "pglite", dataDir: `${dir}/pglite` } },
  });
}

async function editLines(
  path: string,
  edit: (lines: string[]) => string[],
): Promise<void> {
  const lines = (await Deno.readTextFile(path)).split("\n");
  await Deno.writeTextFile(path, edit(lines).join("\n"));
}

/** Rewrites the checksums so that the verifier's parser is reached, as a careful attacker would. */
async function recomputeChecksums(dir: string): Promise<void> {
  await Deno.remove(`${dir}/${CHECKSUMS_FILE}`);
  await Deno.remove(`${dir}/${SUMS_FILE}`);
  const files: Record<string, { sha256: string; bytes: number }> = {};
  for await (const entry of Deno.readDir(dir)) {
    files[entry.name] = await hashFile(`${dir}/${entry.name}`);
  }
  await writeChecksums(dir, files);
}

function check(report: VerifyReport, name: string) {
  const found = report.checks.find((c) => c.name === name);
  assert.ok(found, `a "${name}" check is reported`);
  return found;
}

function firstRecordLine(lines: string[]): number {
  return lines.findIndex((l) => l.startsWith('{"id":'));
}

interface TamperCase {
  name: string;
  tamper: (dir: string) => Promise<void>;
  /** check name → expected reason; every other check must pass. */
  fails: Record<string, RegExp>;
  line?: number;
}

const CASES: TamperCase[] = [
  {
    name: "one byte changed inside a memory's text (JSON still valid)",
    tamper: (dir) =>
      editLines(`${dir}/${EXPORT_FILE}`, (lines) => {
        const i = firstRecordLine(lines);
        lines[i] = lines[i]!.replace(/"content":"(.)/, (_m, c: string) =>
          `"content":"${c === "X" ? "Y" : "X"}`);
        return lines;
      }),
    fails: { checksums: /^export\.json: checksum mismatch/ },
  },
  {
    name: "one memory line deleted",
    tamper: (dir) =>
      editLines(`${dir}/${EXPORT_FILE}`, (lines) => {
        lines.splice(firstRecordLine(lines) + 1, 1);
        return lines;
      }),
    fails: {
      checksums: /^export\.json: size differs/,
      memories: new RegExp(
        `holds ${MEMORIES - 1} memories, metadata\\.json says ${MEMORIES}`,
      ),
    },
  },
  {
    name: "a metadata count edited",
    tamper: (dir) =>
      editLines(
        `${dir}/${METADATA_FILE}`,
        (lines) =>
          lines.map((l) =>
            l.replace(
              `"memory_count": ${MEMORIES}`,
              `"memory_count": ${MEMORIES + 1}`,
            )
          ),
      ),
    fails: {
      checksums: /^metadata\.json: checksum mismatch/,
      header: /header disagrees with metadata\.json/,
      memories: new RegExp(
        `holds ${MEMORIES} memories, metadata\\.json says ${MEMORIES + 1}`,
      ),
    },
  },
  {
    name: "export.json truncated",
    tamper: async (dir) => {
      const data = await Deno.readFile(`${dir}/${EXPORT_FILE}`);
      await Deno.writeFile(
        `${dir}/${EXPORT_FILE}`,
        data.subarray(0, Math.floor(data.length / 2)),
      );
    },
    fails: {
      checksums: /^export\.json: size differs/,
      memories: /ends inside a value begun on line \d+/,
      relationships: /ends inside a value begun on line \d+/,
    },
  },
  {
    name: "the relationship snapshot missing",
    tamper: (dir) => Deno.remove(`${dir}/${RELATIONSHIPS_COPY_FILE}`),
    fails: {
      files: /missing relationships\.db/,
      checksums: /relationships\.db is missing/,
    },
  },
  {
    name: "export.json missing",
    tamper: (dir) => Deno.remove(`${dir}/${EXPORT_FILE}`),
    fails: {
      files: /missing export\.json/,
      checksums: /export\.json is missing/,
    },
  },
  {
    name: "a vector with one number too few",
    tamper: (dir) =>
      editLines(`${dir}/${EXPORT_FILE}`, (lines) => {
        const i = firstRecordLine(lines);
        lines[i] = lines[i]!.replace(/,[^,\]]+\],"metadata"/, '],"metadata"');
        return lines;
      }),
    fails: {
      checksums: /^export\.json: size differs/,
      memories: new RegExp(
        `memory 1: embedding has ${DIMS - 1} numbers, expected ${DIMS}`,
      ),
    },
    line: 3,
  },
  {
    name: "a file added after the backup",
    tamper: (dir) => Deno.writeTextFile(`${dir}/notes.txt`, "hello"),
    fails: { checksums: /notes\.txt is not listed/ },
  },
  {
    name: "SHA256SUMS edited",
    tamper: (dir) =>
      editLines(
        `${dir}/${SUMS_FILE}`,
        (lines) => lines.map((l) => l.replace(/^./, "0")),
      ),
    fails: { checksums: /SHA256SUMS disagrees with checksums\.json/ },
  },
  {
    name: "a duplicate memory id (checksums recomputed)",
    tamper: async (dir) => {
      await editLines(`${dir}/${EXPORT_FILE}`, (lines) => {
        const i = firstRecordLine(lines);
        const firstId = /"id":("[^"]+")/.exec(lines[i]!)![1]!;
        lines[i + 1] = lines[i + 1]!.replace(/"id":"[^"]+"/, `"id":${firstId}`);
        return lines;
      });
      await recomputeChecksums(dir);
    },
    fails: { memories: /memory id ".*" appears twice/ },
    line: 4,
  },
  {
    name: "a number beyond float range in an embedding (checksums recomputed)",
    tamper: async (dir) => {
      await editLines(`${dir}/${EXPORT_FILE}`, (lines) => {
        const i = firstRecordLine(lines) + 2;
        lines[i] = lines[i]!.replace(
          /"embedding":\[[^,]+,/,
          '"embedding":[1e400,',
        );
        return lines;
      });
      await recomputeChecksums(dir);
    },
    fails: {
      memories: /memory 3: embedding\[0\] is Infinity, not a finite number/,
    },
    line: 5,
  },
  {
    name: "an id of the wrong type (checksums recomputed)",
    tamper: async (dir) => {
      await editLines(`${dir}/${EXPORT_FILE}`, (lines) => {
        const i = firstRecordLine(lines);
        lines[i] = lines[i]!.replace(/"id":"[^"]+"/, `"id":42`);
        return lines;
      });
      await recomputeChecksums(dir);
    },
    fails: { memories: /memory 1: id: .*expected string/i },
    line: 3,
  },
  {
    name: "a relationship row deleted from the snapshot (checksums recomputed)",
    tamper: async (dir) => {
      const db = new DatabaseSync(`${dir}/${RELATIONSHIPS_COPY_FILE}`);
      db.exec(
        "delete from relationships where id = (select min(id) from relationships)",
      );
      db.close();
      await recomputeChecksums(dir);
    },
    fails: { snapshot: /snapshot tables differ from metadata/ },
  },
  {
    name: "metadata from a future format (checksums recomputed)",
    tamper: async (dir) => {
      await editLines(
        `${dir}/${METADATA_FILE}`,
        (lines) =>
          lines.map((l) =>
            l.replace('"format_version": 1', '"format_version": 2')
          ),
      );
      await recomputeChecksums(dir);
    },
    fails: { metadata: /metadata\.json is not valid/ },
  },
];

Deno.test("verifyBackup() detects each kind of tampering with its own reason", async (t) => {
  await withTempDir(async (dir) => {
    const pristine = await makeBackup(dir);

    await t.step(
      "a pristine backup passes every check, and sha256sum -c agrees",
      async () => {
        const report = await verifyBackup(pristine.path);
        assert.ok(report.ok, JSON.stringify(report.problem));
        assert.deepEqual(report.checks.map((c) => c.name), [
          "files",
          "checksums",
          "metadata",
          "header",
          "memories",
          "relationships",
          "snapshot",
        ]);
        assert.equal(report.memories, MEMORIES);
        assert.equal(report.relationships, 8);
        const sums = await runCommand("sha256sum", ["-c", SUMS_FILE], {
          cwd: pristine.path,
        });
        assert.equal(sums.code, 0);
      },
    );

    let n = 0;
    for (const c of CASES) {
      await t.step(c.name, async () => {
        const copy = `${dir}/case-${n++}`;
        await copyDir(pristine.path, copy);
        await c.tamper(copy);
        const report = await verifyBackup(copy);
        assert.equal(report.ok, false);
        for (const result of report.checks) {
          const expected = c.fails[result.name];
          if (expected) {
            assert.equal(result.ok, false, `${result.name} fails`);
            assert.match(
              result.detail,
              expected,
              `${result.name}: ${result.detail}`,
            );
          } else {
            assert.ok(
              result.ok,
              `${result.name} passes, but: ${result.detail}`,
            );
          }
        }
        for (const name of Object.keys(c.fails)) check(report, name);
        assert.ok(report.problem, "the first problem is named");
        if (c.line !== undefined) {
          const problem = report.checks.find((r) => r.name === "memories")!
            .problem!;
          assert.equal(problem.line, c.line, "the line of the problem");
        }
      });
    }

    await t.step("a tampered backup fails sha256sum -c too", async () => {
      const copy = `${dir}/sums`;
      await copyDir(pristine.path, copy);
      await CASES[0]!.tamper(copy);
      const sums = await runCommand("sha256sum", ["-c", SUMS_FILE], {
        cwd: copy,
      });
      assert.notEqual(sums.code, 0);
      assert.match(sums.stdout, /export\.json: FAILED/);
    });

    await t.step(
      "a pretty-printed export.json with recomputed checksums is still valid",
      async () => {
        const copy = `${dir}/pretty`;
        await copyDir(pristine.path, copy);
        const doc = JSON.parse(
          await Deno.readTextFile(`${copy}/${EXPORT_FILE}`),
        );
        await Deno.writeTextFile(
          `${copy}/${EXPORT_FILE}`,
          JSON.stringify(doc, null, 2),
        );
        await recomputeChecksums(copy);
        const report = await verifyBackup(copy);
        assert.ok(report.ok, JSON.stringify(report.problem));
        assert.equal(report.memories, MEMORIES);
      },
    );
  });
});

Deno.test("verifyBackup() names a directory that is not there", async () => {
  await withTempDir(async (dir) => {
    await assertRejectsWith(
      () => verifyBackup(`${dir}/nope`),
      VerifyError,
      /no such backup directory/,
    );
    await Deno.writeTextFile(`${dir}/file`, "x");
    await assertRejectsWith(
      () => verifyBackup(`${dir}/file`),
      VerifyError,
      /not a directory/,
    );
  });
});
