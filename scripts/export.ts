#!/usr/bin/env -S deno run -q --no-prompt --allow-read=./node_modules/.deno/@electric-sql+pglite@0.5.14/node_modules/@electric-sql/pglite,./node_modules/.deno/@electric-sql+pglite-pgvector@0.0.15/node_modules/@electric-sql/pglite-pgvector,./data/relationships.db,./data/pglite,./exports/memory,./exports/.tmp-memory --allow-write=./data/pglite,./exports/memory,./exports/.tmp-memory --allow-env=DATABASE_URL,MEMORY_TABLE,RELATIONSHIPS_DB,MEMORY_USER_ID,BACKUP_DIR,PGPASSWORD --ignore-env=PGAPPNAME,PGTARGETSESSIONATTRS
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
import { EXPORT_FORMATS, exportMemories } from "../lib/backup/export.ts";
import * as log from "../lib/cli/log.ts";
import type { ExportFormat } from "../lib/format/records.ts";
import { EXIT_OK, runCommand } from "../lib/cli/run.ts";

const HELP = `Usage: deno task export [options]

Exports the memory store and the relationship store.

Options:
  --format F      json (the backup format), csv (for analysis) or markdown
                  (for people); default json
  --output DIR    output directory (default ${DEFAULT_EXPORT_DIR}); a previous
                  export there is replaced
  --verify        verify the export before moving it into place
  --no-vectors    leave the embeddings out
  --user ID       only this user's memories (env MEMORY_USER_ID)
  --table T       memory table (env MEMORY_TABLE, default memories)
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
    const config = resolveConfig({ table: values.table, user: values.user });
    const result = await exportMemories({
      config,
      format: format as ExportFormat,
      output,
      includeVectors: !values["no-vectors"],
      verify: values.verify ?? false,
      onProgress: json ? undefined : log.progress,
      onWarning: log.warn,
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
        } relationships as ${m.format} to ${result.path}`,
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
  });
}

if (import.meta.main) Deno.exitCode = await main(Deno.args);
