#!/usr/bin/env -S deno run -q --no-prompt --allow-read=./node_modules/.deno/@electric-sql+pglite@0.5.14/node_modules/@electric-sql/pglite,./node_modules/.deno/@electric-sql+pglite-pgvector@0.0.15/node_modules/@electric-sql/pglite-pgvector,./data,./backups --allow-write=./data,./backups
/**
 * `deno task demo [--memories 1000] [--relationships 300] [--dims 1536]
 * [--output ./backups] [--json]`
 *
 * Creates (once) the embedded store `./data/pglite` with realistic sample
 * memories and the relationship store `./data/relationships.db`, backs both
 * up and verifies the backup. The demo always uses the embedded store; it
 * never reads `DATABASE_URL`.
 *
 * @module
 */

import { backup } from "../lib/backup/backup.ts";
import {
  type Config,
  DEFAULT_BACKUP_DIR,
  DEFAULT_PGLITE_DIR,
  DEFAULT_RELATIONSHIPS_DB,
  DEFAULT_TABLE,
} from "../lib/store/config.ts";
import {
  DEMO_USERS,
  seedMemoryTable,
  seedRelationshipStore,
} from "../lib/store/demo_data.ts";
import * as log from "../lib/cli/log.ts";
import { verifyBackup } from "../lib/verify/verify.ts";
import {
  directoryArgument,
  EXIT_FAILURE,
  EXIT_OK,
  integerFlag,
  printVerifyReport,
  runCommand,
} from "../lib/cli/run.ts";
import { openPgliteSession } from "../lib/store/pglite_session.ts";
import { exists } from "../lib/util/fs.ts";

const HELP = `Usage: deno task demo [options]

Creates the embedded demo store (once), backs it up and verifies the backup.

Options:
  --memories N        memories to create (default 1000)
  --relationships N   relationships to create (default 300)
  --dims N            vector dimension (default 1536)
  --output DIR        backup directory (default ./backups)
  --json              print the result as JSON
  -h, --help          show this help`;

/**
 * Runs the demo.
 *
 * @param args Command-line arguments.
 * @returns The exit code.
 */
export async function main(args: string[]): Promise<number> {
  return await runCommand("demo", args, HELP, async ({ values, json }) => {
    const memories = integerFlag(values.memories, "--memories", 1000, 1);
    const relationships = integerFlag(
      values.relationships,
      "--relationships",
      300,
    );
    const dims = integerFlag(values.dims, "--dims", 1536, 1);
    if (dims > 16000) {
      throw new RangeError(
        `Invalid --dims "${dims}": pgvector allows at most 16,000`,
      );
    }
    const say = json ? () => {} : log.info;
    const output = values.output === undefined
      ? DEFAULT_BACKUP_DIR
      : directoryArgument(values.output, "--output");

    say("memkeep demo: the embedded store, a backup, and its verification");
    const started = performance.now();
    await Deno.mkdir("./data", { recursive: true });
    const session = await openPgliteSession(DEFAULT_PGLITE_DIR, {
      create: true,
    });
    let ids: string[] = [];
    let created = false;
    try {
      const existing = await session.query(
        "select to_regclass('memories')::text",
      );
      if (existing[0]?.[0] === null || existing[0]?.[0] === undefined) {
        created = true;
        await seedMemoryTable(
          session.db,
          DEFAULT_TABLE,
          { memories, dims },
          json ? undefined : (n) =>
            log.progress({
              what: "creating memories",
              done: n,
              total: memories,
            }),
        );
        log.clearProgress();
      }
      const [[count, storeDims]] = await session.query(
        "select count(*)::text, (select atttypmod::text from pg_attribute where attrelid = 'memories'::regclass and attname = 'vector') from memories",
      ) as [[string, string]];
      say(
        `  Embedded store: ${DEFAULT_PGLITE_DIR} (${
          created ? "created" : "already there"
        }: ${log.count(Number(count))} memories × ${storeDims} dims, users ${
          DEMO_USERS.join(" and ")
        })`,
      );
      if (
        !created &&
        (values.memories !== undefined || values.dims !== undefined) &&
        (Number(count) !== memories || Number(storeDims) !== dims)
      ) {
        say(
          `  (to create it again with ${
            log.count(memories)
          } × ${dims}, remove ${DEFAULT_PGLITE_DIR} first)`,
        );
      }
      if (!(await exists(DEFAULT_RELATIONSHIPS_DB))) {
        ids = (await session.query(
          "select id::text from memories order by id limit 5000",
        )).map((r) => r[0]!);
      }
    } finally {
      await session.close();
    }
    if (ids.length > 0) {
      const counts = seedRelationshipStore(DEFAULT_RELATIONSHIPS_DB, ids, {
        relationships,
      });
      say(
        `  Relationship store: ${DEFAULT_RELATIONSHIPS_DB} (created: ${
          log.count(counts.relationships ?? 0)
        } relationships, tables ${Object.keys(counts).join(", ")})`,
      );
    } else {
      say(`  Relationship store: ${DEFAULT_RELATIONSHIPS_DB} (already there)`);
    }

    const config: Config = {
      store: { kind: "pglite", dataDir: DEFAULT_PGLITE_DIR },
      table: { schema: undefined, name: DEFAULT_TABLE },
      relationships: { path: DEFAULT_RELATIONSHIPS_DB, explicit: true },
      userId: undefined,
      backupDir: output,
    };
    const result = await backup({
      config,
      onProgress: json ? undefined : log.progress,
      onWarning: log.warn,
    });
    log.clearProgress();
    say(
      `✓ Backed up ${log.count(result.metadata.memory_count)} memories and ${
        log.count(result.metadata.relationship_count)
      } relationships to ${result.path}`,
    );
    say(
      `  ${log.bytes(result.bytes)} in ${
        log.duration(result.metadata.duration_ms)
      }, combined SHA-256 ${result.checksums.combined}`,
    );

    const report = await verifyBackup(result.path);
    if (json) {
      log.info(JSON.stringify({
        ok: report.ok,
        path: result.path,
        memory_count: result.metadata.memory_count,
        relationship_count: result.metadata.relationship_count,
        bytes: result.bytes,
        combined_sha256: result.checksums.combined,
        backup_ms: result.metadata.duration_ms,
        total_ms: Math.round(performance.now() - started),
        checks: report.checks,
      }));
    } else {
      say(`Verifying ${result.path}`);
      printVerifyReport(report, "  ");
      say("");
      say("Next:");
      say(`  deno task verify ${result.path}`);
      say(`  (cd ${result.path} && sha256sum -c SHA256SUMS)`);
      say(`  DATABASE_URL=postgres://… deno task backup     # your own store`);
    }
    return report.ok ? EXIT_OK : EXIT_FAILURE;
  });
}

if (import.meta.main) Deno.exitCode = await main(Deno.args);
