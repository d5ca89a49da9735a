#!/usr/bin/env -S deno run -q --no-prompt --allow-read=./node_modules/.deno/@electric-sql+pglite@0.5.14/node_modules/@electric-sql/pglite,./node_modules/.deno/@electric-sql+pglite-pgvector@0.0.15/node_modules/@electric-sql/pglite-pgvector,./data/pglite,./data --allow-write=./data/pglite,./data --allow-env=DATABASE_URL,MEMORY_TABLE,RELATIONSHIPS_DB,MEMORY_USER_ID,BACKUP_DIR,PGPASSWORD,MEMKEEP_REPO,S3_ENDPOINT,AWS_REGION,AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY,AWS_SESSION_TOKEN,AGE_IDENTITY_FILE,AGE_PASSPHRASE --ignore-env=PGAPPNAME,PGTARGETSESSIONATTRS
/**
 * `deno task restore --source DIR|ZIP | --repo REPO --snapshot NAME|latest [--dry-run] [--force]
 * [--conflict-mode skip|update] [--table T] [--allow-missing-vectors] [--json]`
 *
 * Verifies the backup, checks the target, previews exactly what would
 * change, asks, and restores all or nothing. A repository snapshot is first
 * written out as a backup directory in the repository's scratch directory
 * (removed afterwards), so that it is restored exactly as a backup is. Exit codes: 0 restored (or
 * previewed), 1 failure or cancelled, 2 bad usage.
 *
 * @module
 */

import { resolveConfig } from "../lib/store/config.ts";
import { loadKeys } from "../lib/format/encryption.ts";
import { UsageError } from "../lib/errors.ts";
import { writeSnapshotBackup } from "../lib/backup/from_snapshot.ts";
import {
  isRemote,
  openRepository,
  repoLocation,
} from "../lib/repo/location.ts";
import { findSnapshot } from "../lib/repo/reader.ts";
import { TEMP_PREFIX } from "../lib/format/layout.ts";
import { removeQuietly } from "../lib/util/fs.ts";
import { removeOnInterrupt } from "../lib/util/interrupt.ts";
import * as log from "../lib/cli/log.ts";
import {
  restore,
  type RestoreCounts,
  type RestorePreview,
  type RestoreResult,
} from "../lib/restore/restore.ts";
import {
  EXIT_FAILURE,
  EXIT_OK,
  optionalEnv,
  runCommand,
} from "../lib/cli/run.ts";

const HELP = `Usage: deno task restore --source DIR|ZIP [options]
       deno task restore --repo REPO --snapshot NAME|latest [options]

Verifies a backup, previews exactly what a restore would change, asks, and
restores it all or nothing into the memory store (DATABASE_URL, or the
embedded store) and the relationship store (RELATIONSHIPS_DB).

Options:
  --source DIR|ZIP          a backup directory, the folder "gh run download" made,
                            or an artifact zip
  --repo REPO               a deduplicated repository (env MEMKEEP_REPO), with
  --snapshot NAME|latest    the snapshot to restore (deno task snapshots lists them)
  --dry-run                 show what would change; write nothing
  --force                   restore without asking
  --conflict-mode MODE      skip (default): keep rows already there;
                            update: replace vector and payload (memories), and
                            strength, metadata, updated_at (relationships)
  --table T                 target table (default: MEMORY_TABLE, else the backup's)
  --allow-missing-vectors   restore a backup made with --no-vectors
  --json                    print the result as JSON
  -h, --help                show this help

Exit codes: 0 restored or previewed, 1 failure or cancelled, 2 bad usage.`;

const MODES = ["skip", "update"] as const;

/**
 * Runs a restore.
 *
 * @param args Command-line arguments.
 * @returns The exit code.
 */
export async function main(args: string[]): Promise<number> {
  return await runCommand("restore", args, HELP, async ({ values, json }) => {
    if (values.source !== undefined && values.repo !== undefined) {
      throw new UsageError(
        "--repo",
        "Invalid --repo: restore from --source or from --repo, not both",
      );
    }
    if (
      values.snapshot !== undefined && values.repo === undefined &&
      (values.source !== undefined || optionalEnv("MEMKEEP_REPO") === undefined)
    ) {
      throw new UsageError(
        "--snapshot",
        "Invalid --snapshot: it names a snapshot of a repository; give --repo REPO too",
      );
    }
    const repo = repoLocation(
      values.repo,
      values.source === undefined ? optionalEnv : () => undefined,
    );
    if (!values.source && repo === undefined) {
      throw new UsageError(
        "--source",
        "Missing --source: the backup directory or zip to restore (or --repo REPO --snapshot NAME)",
      );
    }
    if (repo !== undefined && values.snapshot === undefined) {
      throw new UsageError(
        "--snapshot",
        "Missing --snapshot: the snapshot of the repository to restore, by name or latest (deno task snapshots --repo REPO lists them)",
      );
    }
    const mode = values["conflict-mode"] ?? "skip";
    if (!(MODES as readonly string[]).includes(mode)) {
      throw new UsageError(
        "--conflict-mode",
        `Invalid --conflict-mode "${mode}": must be ${MODES.join(" or ")}`,
      );
    }
    const config = resolveConfig({ table: values.table });
    const dryRun = values["dry-run"] ?? false;
    const force = values.force ?? false;
    const interactive = Deno.stdin.isTerminal() && !json;
    if (!dryRun && !force && !interactive) {
      throw new UsageError(
        "--force",
        "Refusing to restore without confirmation: there is no terminal to ask on; preview with --dry-run, then pass --force to restore",
      );
    }
    const tableGiven = values.table !== undefined ||
      (Deno.env.get("MEMORY_TABLE") ?? "").trim() !== "";
    let source = values.source ?? "";
    let scratch: string | undefined;
    let interrupted: Disposable | undefined;
    const cleanup = async () => {
      if (scratch !== undefined) await removeQuietly(scratch);
      interrupted?.[Symbol.dispose]();
    };
    if (repo !== undefined) {
      const { repo: opened } = await openRepository(repo, optionalEnv);
      const file = await findSnapshot(opened, values.snapshot!);
      // Beside the repository, or for a bucket in the backup directory.
      scratch = `${
        isRemote(repo) ? config.backupDir : repo
      }/${TEMP_PREFIX}restore-${Deno.pid}`;
      interrupted = removeOnInterrupt(scratch);
      // The restore verifies it in full, first.
      source = (await writeSnapshotBackup(opened, file, scratch, {
        verify: false,
        onProgress: json ? undefined : log.progress,
      }).catch(async (error) => {
        await cleanup();
        throw error;
      })).path;
    }
    const result = await restore({
      source,
      config,
      table: tableGiven ? config.table : undefined,
      conflictMode: mode as "skip" | "update",
      dryRun,
      allowMissingVectors: values["allow-missing-vectors"] ?? false,
      keys: await loadKeys(optionalEnv),
      confirm: dryRun || force ? undefined : (preview) => {
        log.clearProgress();
        printPreview(preview, "[PREVIEW] Restore preview");
        const answer = prompt("Continue with restore? (yes/no)")?.trim()
          .toLowerCase();
        return Promise.resolve(answer === "yes" || answer === "y");
      },
      onProgress: json ? undefined : log.progress,
      onWarning: log.warn,
    }).finally(cleanup);
    log.clearProgress();
    if (json) {
      log.info(JSON.stringify(toJson(result)));
    } else if (result.dryRun) {
      printPreview(result, "[DRY RUN COMPLETE] Restore preview");
      log.info("Nothing was written (dry run).");
    } else if (result.cancelled) {
      log.info("Restore cancelled: nothing was written.");
    } else {
      printPreview(result, `[RESTORE COMPLETE] Restored into ${result.table}`);
    }
    return result.cancelled ? EXIT_FAILURE : EXIT_OK;
  });
}

function printPreview(preview: RestorePreview, title: string): void {
  const b = preview.backup;
  log.info(
    `Backup ${b.backup_name} (verified: ${
      log.count(b.memory_count)
    } memories, ${
      log.count(b.relationship_count)
    } relationships, taken ${b.created_at})`,
  );
  const how = {
    none: "none in the backup",
    copy: "created from the backup",
    merge: "merged",
  }[preview.relationships.how];
  log.info(
    `Target: table ${preview.table}${
      preview.createsTable ? " (created)" : ""
    }; relationships ${preview.relationships.path} (${how})`,
  );
  log.info(title);
  const width = Math.max(
    log.count(preview.memories.restored).length,
    log.count(preview.relationshipCounts.restored).length,
  );
  const line = (label: string, c: RestoreCounts) =>
    `  ${label.padEnd(15)}Restored: ${
      log.count(c.restored).padEnd(width)
    }   Skipped: ${log.count(c.skipped)} (duplicates)   Updated: ${
      log.count(c.updated)
    }`;
  log.info(line("Memories:", preview.memories));
  log.info(line("Relationships:", preview.relationshipCounts));
}

function toJson(result: RestoreResult) {
  return {
    ok: !result.cancelled,
    dry_run: result.dryRun,
    committed: result.committed,
    cancelled: result.cancelled,
    backup: result.backup.backup_name,
    table: result.table,
    creates_table: result.createsTable,
    relationships_store: result.relationships.path,
    memories: result.memories,
    relationships: result.relationshipCounts,
  };
}

if (import.meta.main) Deno.exitCode = await main(Deno.args);
