#!/usr/bin/env -S deno run -q --no-prompt --allow-read=./node_modules/.deno/@electric-sql+pglite@0.5.14/node_modules/@electric-sql/pglite,./node_modules/.deno/@electric-sql+pglite-pgvector@0.0.15/node_modules/@electric-sql/pglite-pgvector,./data/relationships.db,./data/pglite,./backups --allow-write=./data/pglite,./backups --allow-env=DATABASE_URL,MEMORY_TABLE,RELATIONSHIPS_DB,MEMORY_USER_ID,BACKUP_DIR,PGPASSWORD --ignore-env=PGAPPNAME,PGTARGETSESSIONATTRS
/**
 * `deno task backup [--output DIR] [--no-verify] [--no-vectors] [--user ID]
 * [--table T] [--json]`
 *
 * Backs up the memory store (`DATABASE_URL`, or the embedded store) and the
 * relationship store (`RELATIONSHIPS_DB`) into `DIR/memory_YYYYMMDD_HHMMSS`.
 * Exit codes: 0 success, 1 failure (including failed verification), 2 bad
 * usage.
 *
 * @module
 */

import { backup } from "../lib/backup/backup.ts";
import { resolveConfig } from "../lib/store/config.ts";
import * as log from "../lib/cli/log.ts";
import { directoryArgument, EXIT_OK, runCommand } from "../lib/cli/run.ts";

const HELP = `Usage: deno task backup [options]

Backs up the memory store and the relationship store into a new, checksummed,
verified directory DIR/memory_YYYYMMDD_HHMMSS (UTC).

Options:
  --output DIR    backup directory (env BACKUP_DIR, default ./backups)
  --table T       memory table (env MEMORY_TABLE, default memories)
  --user ID       only this user's memories (env MEMORY_USER_ID)
  --no-vectors    leave the embeddings out
  --no-verify     skip the verification before the final rename
  --json          print the result as JSON
  -h, --help      show this help

Environment: DATABASE_URL (unset: the embedded store ./data/pglite),
RELATIONSHIPS_DB (default ./data/relationships.db).
Exit codes: 0 success, 1 failure, 2 bad usage.`;

/**
 * Runs a backup.
 *
 * @param args Command-line arguments.
 * @returns The exit code.
 */
export async function main(args: string[]): Promise<number> {
  return await runCommand("backup", args, HELP, async ({ values, json }) => {
    const config = resolveConfig({
      table: values.table,
      user: values.user,
      backupDir: values.output,
      backupDirFlag: "--output",
    });
    directoryArgument(
      config.backupDir,
      values.output === undefined ? "BACKUP_DIR" : "--output",
    );
    const result = await backup({
      config,
      includeVectors: !values["no-vectors"],
      verify: !values["no-verify"],
      onProgress: json ? undefined : log.progress,
      onWarning: log.warn,
    });
    log.clearProgress();
    const m = result.metadata;
    if (json) {
      log.info(JSON.stringify({
        ok: true,
        path: result.path,
        name: result.name,
        memory_count: m.memory_count,
        relationship_count: m.relationship_count,
        includes_vectors: m.includes_vectors,
        bytes: result.bytes,
        combined_sha256: result.checksums.combined,
        duration_ms: m.duration_ms,
        verified: result.verification?.ok ?? false,
      }));
    } else {
      log.info(
        `✓ Backed up ${log.count(m.memory_count)} memories and ${
          log.count(m.relationship_count)
        } relationships to ${result.path}`,
      );
      log.info(
        `  ${log.bytes(result.bytes)} in ${log.duration(m.duration_ms)}, ${
          result.verification ? "verified" : "not verified (--no-verify)"
        }, combined SHA-256 ${result.checksums.combined}`,
      );
    }
    return EXIT_OK;
  });
}

if (import.meta.main) Deno.exitCode = await main(Deno.args);
