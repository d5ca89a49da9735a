#!/usr/bin/env -S deno run -q --no-prompt --allow-read=./node_modules/.deno/@electric-sql+pglite@0.5.14/node_modules/@electric-sql/pglite,./node_modules/.deno/@electric-sql+pglite-pgvector@0.0.15/node_modules/@electric-sql/pglite-pgvector,./data/relationships.db,./data/pglite,./backups --allow-write=./data/pglite,./backups --allow-env=DATABASE_URL,MEMORY_TABLE,RELATIONSHIPS_DB,MEMORY_USER_ID,BACKUP_DIR,PGPASSWORD,MEMKEEP_REPO,S3_ENDPOINT,AWS_REGION,AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY,AWS_SESSION_TOKEN,AGE_IDENTITY_FILE,AGE_PASSPHRASE,AGE_RECIPIENTS --ignore-env=PGAPPNAME,PGTARGETSESSIONATTRS
/**
 * `deno task backup [--output DIR | --repo REPO] [--no-verify] [--no-vectors]
 * [--user ID] [--table T] [--json]`
 *
 * Backs up the memory store (`DATABASE_URL`, or the embedded store) and the
 * relationship store (`RELATIONSHIPS_DB`) into `DIR/memory_YYYYMMDD_HHMMSS`,
 * or as a snapshot of that name into the deduplicated repository REPO.
 * Exit codes: 0 success, 1 failure (including failed verification), 2 bad
 * usage.
 *
 * @module
 */

import { backup } from "../lib/backup/backup.ts";
import { backupToRepo } from "../lib/backup/repo_backup.ts";
import { repoLocation } from "../lib/repo/location.ts";
import { UsageError } from "../lib/errors.ts";
import { loadKeys, parseRecipients } from "../lib/format/encryption.ts";
import { resolveConfig } from "../lib/store/config.ts";
import * as log from "../lib/cli/log.ts";
import {
  directoryArgument,
  EXIT_OK,
  optionalEnv,
  repoArgument,
  runCommand,
} from "../lib/cli/run.ts";

const HELP = `Usage: deno task backup [options]

Backs up the memory store and the relationship store into a new, checksummed,
verified directory DIR/memory_YYYYMMDD_HHMMSS (UTC).

Options:
  --output DIR    backup directory (env BACKUP_DIR, default ./backups)
  --repo REPO     back up into the deduplicated repository REPO instead, a
                  directory or s3://BUCKET/PREFIX (env MEMKEEP_REPO; created
                  when absent, encrypted to AGE_RECIPIENTS when set then):
                  only what it does not hold yet is written
  --table T       memory table (env MEMORY_TABLE, default memories)
  --user ID       only this user's memories (env MEMORY_USER_ID)
  --no-vectors    leave the embeddings out
  --no-verify     skip the verification before the final rename (with
                  --repo: the read-back of the snapshot)
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
    // --output overrides MEMKEEP_REPO as flags override settings.
    const repo = repoLocation(
      values.repo,
      values.output === undefined ? optionalEnv : () => undefined,
    );
    if (repo !== undefined) {
      if (values.output !== undefined) {
        throw new UsageError(
          "--output",
          "Invalid --output: a backup goes to --output or --repo, not both",
        );
      }
      if (values["no-vectors"]) {
        throw new UsageError(
          "--no-vectors",
          "Invalid --no-vectors: a repository holds every vector (an unchanged vector costs nothing)",
        );
      }
      repoArgument(repo, values.repo);
      return await backupIntoRepo(config, repo, !values["no-verify"], json);
    }
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

async function backupIntoRepo(
  config: ReturnType<typeof resolveConfig>,
  repo: string,
  verify: boolean,
  json: boolean,
): Promise<number> {
  const recipients = optionalEnv("AGE_RECIPIENTS")?.trim();
  const result = await backupToRepo({
    config,
    repo,
    env: optionalEnv,
    recipients: recipients ? parseRecipients(recipients) : undefined,
    keys: await loadKeys(optionalEnv),
    verify,
    onProgress: json ? undefined : log.progress,
    onWarning: log.warn,
  });
  log.clearProgress();
  const s = result.snapshot;
  if (json) {
    log.info(JSON.stringify({
      ok: true,
      repo: result.repo,
      name: s.name,
      snapshot_id: result.id,
      memory_count: s.metadata.memory_count,
      relationship_count: s.metadata.relationship_count,
      bytes_added: s.bytes_added,
      repository_bytes: result.repositoryBytes,
      duration_ms: s.metadata.duration_ms,
      verified: result.check !== undefined ||
        result.filesChecked !== undefined,
    }));
  } else {
    log.info(
      `✓ Backed up ${log.count(s.metadata.memory_count)} memories and ${
        log.count(s.metadata.relationship_count)
      } relationships to ${result.repo} as snapshot ${s.name}`,
    );
    log.info(
      `  added ${log.bytes(s.bytes_added)} (repository: ${
        log.bytes(result.repositoryBytes)
      }) in ${log.duration(s.metadata.duration_ms)}, ${
        result.check
          ? "read back and checked"
          : result.filesChecked
          ? "encrypted: its files read back and hashed (AGE_IDENTITY_FILE opens them)"
          : "not read back (--no-verify)"
      }`,
    );
  }
  return EXIT_OK;
}

if (import.meta.main) Deno.exitCode = await main(Deno.args);
