#!/usr/bin/env -S deno run -q --no-prompt --allow-read=./node_modules/.deno/@electric-sql+pglite@0.5.14/node_modules/@electric-sql/pglite,./node_modules/.deno/@electric-sql+pglite-pgvector@0.0.15/node_modules/@electric-sql/pglite-pgvector,./data/relationships.db,./data/pglite,./exports/memory,./exports/.tmp-memory --allow-write=./data/pglite,./exports/memory,./exports/.tmp-memory --allow-env=DATABASE_URL,MEMORY_TABLE,RELATIONSHIPS_DB,MEMORY_USER_ID,BACKUP_DIR,PGPASSWORD,MEMKEEP_REPO,S3_ENDPOINT,AWS_REGION,AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY,AWS_SESSION_TOKEN,AGE_IDENTITY_FILE,AGE_PASSPHRASE --ignore-env=PGAPPNAME,PGTARGETSESSIONATTRS
/**
 * `deno task export [--format json|csv|markdown] [--output DIR] [--verify]
 * [--no-vectors] [--user ID] [--table T] [--json]`
 *
 * Exports the memory store and the relationship store as JSON (the backup
 * format), CSV (for analysis) or Markdown (for people) into DIR (default
 * `./exports/memory`). Exit codes: 0 success, 1 failure, 2 bad usage.
 *
 * @module
 */

import { DEFAULT_EXPORT_DIR, resolveConfig } from "../lib/store/config.ts";
import { UsageError } from "../lib/errors.ts";
import {
  EXPORT_FORMATS,
  exportMemories,
  type ExportResult,
} from "../lib/backup/export.ts";
import * as log from "../lib/cli/log.ts";
import type { ExportFormat } from "../lib/format/records.ts";
import { EXIT_OK, optionalEnv, runCommand } from "../lib/cli/run.ts";
import { writeSnapshotBackup } from "../lib/backup/from_snapshot.ts";
import { openRepository, repoLocation } from "../lib/repo/location.ts";
import { findSnapshot } from "../lib/repo/reader.ts";

const HELP = `Usage: deno task export [options]
       deno task export --repo REPO --snapshot NAME|latest [--format F] [--output DIR]

Exports the memory store and the relationship store, or a snapshot of a
repository: as json, a snapshot is written as a self-contained backup
directory DIR/memory_… (deno task verify and restore take it); as csv or
markdown, as an export of the store at that moment.

Options:
  --format F      json (the backup format), csv (for analysis) or markdown
                  (for people); default json
  --output DIR    output directory (default ${DEFAULT_EXPORT_DIR}); a previous
                  export there is replaced
  --verify        verify the export before moving it into place
  --no-vectors    leave the embeddings out
  --user ID       only this user's memories (env MEMORY_USER_ID)
  --table T       memory table (env MEMORY_TABLE, default memories)
  --repo REPO     export a snapshot of this repository (env MEMKEEP_REPO)
  --snapshot NAME the snapshot, or latest
  --json          print the result as JSON
  -h, --help      show this help

Exit codes: 0 success, 1 failure, 2 bad usage.`;

/**
 * Runs an export.
 *
 * @param args Command-line arguments.
 * @returns The exit code.
 */
export async function main(args: string[]): Promise<number> {
  return await runCommand("export", args, HELP, async ({ values, json }) => {
    if (values.repo !== undefined || values.snapshot !== undefined) {
      return await exportSnapshot(values, json);
    }
    const { format, output } = formatAndOutput(values);
    const config = resolveConfig({ table: values.table, user: values.user });
    const result = await exportMemories({
      config,
      format,
      output,
      includeVectors: !values["no-vectors"],
      verify: values.verify ?? false,
      onProgress: json ? undefined : log.progress,
      onWarning: log.warn,
    });
    return report(result, json, "");
  });
}

/** `--format` (default json) and `--output` (default ./exports/memory), checked. */
function formatAndOutput(
  values: { format?: string | undefined; output?: string | undefined },
): { format: ExportFormat; output: string } {
  const format = values.format ?? "json";
  if (!(EXPORT_FORMATS as readonly string[]).includes(format)) {
    throw new UsageError(
      "--format",
      `Invalid --format "${format}": must be one of ${
        EXPORT_FORMATS.join(", ")
      }`,
    );
  }
  const output = values.output ?? DEFAULT_EXPORT_DIR;
  if (output.trim() === "") {
    throw new UsageError("--output", "Invalid --output: it is empty");
  }
  return { format: format as ExportFormat, output };
}

/** Prints an export's result; `what` follows "memories and N relationships". */
function report(result: ExportResult, json: boolean, what: string): number {
  log.clearProgress();
  const m = result.metadata;
  if (json) {
    log.info(JSON.stringify({
      ok: true,
      path: result.path,
      format: m.format,
      memory_count: m.memory_count,
      relationship_count: m.relationship_count,
      includes_vectors: m.includes_vectors,
      user_id: m.user_id,
      bytes: result.bytes,
      combined_sha256: result.checksums.combined,
      duration_ms: m.duration_ms,
      verified: result.verification?.ok ?? false,
    }));
  } else {
    log.info(
      `✓ Exported ${log.count(m.memory_count)} memories and ${
        log.count(m.relationship_count)
      } relationships${what} as ${m.format} to ${result.path}`,
    );
    log.info(
      `  ${Object.keys(result.checksums.files).join(", ")}: ${
        log.bytes(result.bytes)
      } in ${log.duration(m.duration_ms)}${
        result.verification ? ", verified" : ""
      }`,
    );
  }
  return EXIT_OK;
}

async function exportSnapshot(
  values: {
    repo?: string | undefined;
    snapshot?: string | undefined;
    format?: string | undefined;
    output?: string | undefined;
    verify?: boolean | undefined;
    "no-vectors"?: boolean | undefined;
    user?: string | undefined;
    table?: string | undefined;
  },
  json: boolean,
): Promise<number> {
  const repo = repoLocation(values.repo, optionalEnv);
  if (repo === undefined) {
    throw new UsageError(
      "--snapshot",
      "Invalid --snapshot: it names a snapshot of a repository; give --repo REPO too",
    );
  }
  if (values.snapshot === undefined) {
    throw new UsageError(
      "--snapshot",
      "Missing --snapshot: the snapshot to export, by name or latest (deno task snapshots --repo REPO lists them)",
    );
  }
  const { format, output } = formatAndOutput(values);
  const flags = format === "json"
    ? ["no-vectors", "user", "table"] as const
    : ["user", "table"] as const;
  for (const flag of flags) {
    if (values[flag] !== undefined) {
      throw new UsageError(
        `--${flag}`,
        `Invalid --${flag} with --repo: a snapshot is exported whole`,
      );
    }
  }
  const { repo: opened } = await openRepository(repo, optionalEnv);
  const file = await findSnapshot(opened, values.snapshot);
  if (format !== "json") {
    const result = await exportMemories({
      snapshot: { repo: opened, file },
      format,
      output,
      includeVectors: !values["no-vectors"],
      verify: values.verify ?? false,
      onProgress: json ? undefined : log.progress,
    });
    return report(result, json, ` of snapshot ${file.snapshot.name}`);
  }
  const result = await writeSnapshotBackup(opened, file, output, {
    onProgress: json ? undefined : log.progress,
  });
  log.clearProgress();
  const m = result.metadata;
  if (json) {
    log.info(JSON.stringify({
      ok: true,
      path: result.path,
      format: m.format,
      memory_count: m.memory_count,
      relationship_count: m.relationship_count,
      bytes: result.bytes,
      combined_sha256: result.checksums.combined,
      verified: true,
    }));
  } else {
    log.info(
      `✓ Wrote snapshot ${file.snapshot.name} (${
        log.count(m.memory_count)
      } memories, ${
        log.count(m.relationship_count)
      } relationships) as a backup directory: ${result.path}`,
    );
    log.info(
      `  ${log.bytes(result.bytes)}, verified; deno task verify ${result.path}`,
    );
  }
  return EXIT_OK;
}

if (import.meta.main) Deno.exitCode = await main(Deno.args);
