#!/usr/bin/env -S deno run -q --no-prompt --allow-read=./backups --allow-write=./backups --allow-env=BACKUP_DIR,MEMKEEP_REPO,S3_ENDPOINT,AWS_REGION,AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY,AWS_SESSION_TOKEN,AGE_IDENTITY_FILE,AGE_PASSPHRASE,GITHUB_TOKEN,GITHUB_REPOSITORY,GITHUB_API_URL
/**
 * `deno task prune [--dir ./backups | --repo REPO | --artifacts]
 * [--keep-daily 7] [--keep-weekly 4] [--keep-monthly 0] [--dry-run] [--force]
 * [--now ISO-8601] [--json]`
 *
 * Deletes the backups the retention policy does not keep, in the backup
 * directory, among a repository's snapshots (then the data no kept snapshot
 * needs), or (with `--artifacts`) among the GitHub repository's artifacts.
 * Exit codes: 0 success, 1 failure or refusal, 2 bad usage.
 *
 * @module
 */

import { resolveBackupDir } from "../lib/store/config.ts";
import { githubSettings } from "../lib/github/client.ts";
import * as log from "../lib/cli/log.ts";
import {
  pruneArtifacts,
  pruneBackups,
  type PruneOptions,
} from "../lib/retention/prune.ts";
import { pruneRepo } from "../lib/retention/repo_prune.ts";
import { loadKeys } from "../lib/format/encryption.ts";
import { repoLocation } from "../lib/repo/location.ts";
import { UsageError } from "../lib/errors.ts";
import {
  DEFAULT_POLICY,
  type RetentionDecision,
  type RetentionPolicy,
} from "../lib/retention/policy.ts";
import {
  directoryArgument,
  EXIT_FAILURE,
  EXIT_OK,
  integerFlag,
  optionalEnv,
  repoArgument,
  runCommand,
} from "../lib/cli/run.ts";
import { parseMoment } from "../lib/util/moment.ts";

const HELP = `Usage: deno task prune [options]

Deletes the backups the retention policy does not keep: every backup of the
last 7 days, the newest of each of the 4 ISO weeks before this one, and the
newest of each of the previous N months. Names that are not exactly
memory_YYYYMMDD_HHMMSS, links and the newest backup are never deleted; when
the newest backup fails verification nothing is deleted.

Options:
  --dir DIR           backup directory (env BACKUP_DIR, default ./backups)
  --repo REPO         prune the snapshots of the repository REPO instead (env
                      MEMKEEP_REPO), then delete the data no kept snapshot
                      needs and repack packs less than half of which is needed
  --artifacts         prune this repository's GitHub artifacts instead
                      (GITHUB_TOKEN, GITHUB_REPOSITORY, GITHUB_API_URL)
  --keep-daily N      days of backups to keep (default 7)
  --keep-weekly N     weeks before this one to keep one backup of (default 4)
  --keep-monthly N    months before this one to keep one backup of (default 0)
  --dry-run           show the decisions, delete nothing
  --force             prune even when the newest backup fails verification
  --now ISO-8601      the time to prune as of (default: now)
  --json              print the decisions as JSON
  -h, --help          show this help

Exit codes: 0 success, 1 failure or refusal, 2 bad usage.`;

/**
 * Runs a prune.
 *
 * @param args Command-line arguments.
 * @returns The exit code.
 */
export async function main(args: string[]): Promise<number> {
  return await runCommand("prune", args, HELP, async ({ values, json }) => {
    const policy: RetentionPolicy = {
      daily: integerFlag(
        values["keep-daily"],
        "--keep-daily",
        DEFAULT_POLICY.daily,
      ),
      weekly: integerFlag(
        values["keep-weekly"],
        "--keep-weekly",
        DEFAULT_POLICY.weekly,
      ),
      monthly: integerFlag(
        values["keep-monthly"],
        "--keep-monthly",
        DEFAULT_POLICY.monthly,
      ),
    };
    const now = parseMoment(values.now);
    const dryRun = values["dry-run"] ?? false;
    const env = (name: string) => Deno.env.get(name);
    const header =
      `keep ${policy.daily} daily, ${policy.weekly} weekly, ${policy.monthly} monthly; as of ${now.toISOString()}`;

    if (values.artifacts) {
      const gh = githubSettings(env);
      const outcome = await pruneArtifacts(gh, { policy, now, dryRun });
      if (json) {
        log.info(JSON.stringify({
          ok: true,
          dry_run: dryRun,
          repository: gh.repository,
          decisions: outcome.decisions,
          deleted: outcome.deleted.map((a) => ({ id: a.id, name: a.name })),
        }));
        return EXIT_OK;
      }
      log.info(
        `Pruning artifacts of ${gh.repository} (${header})${
          dryRun ? " — dry run" : ""
        }`,
      );
      printDecisions(outcome.decisions);
      log.info(
        `${
          dryRun ? "Would delete" : "Deleted"
        } ${outcome.deleted.length} artifact(s), kept ${
          outcome.decisions.filter((d) => d.keep).length
        }; ${outcome.ignored.length} other or expired artifact(s) left alone.`,
      );
      return EXIT_OK;
    }

    const repo = values.artifacts ? undefined : repoLocation(
      values.repo,
      values.dir === undefined ? optionalEnv : () => undefined,
    );
    if (values.repo !== undefined && values.dir !== undefined) {
      throw new UsageError(
        "--repo",
        "Invalid --repo: prune --dir or --repo, not both",
      );
    }
    if (repo !== undefined) {
      repoArgument(repo, values.repo);
      return await pruneRepository(
        repo,
        {
          policy,
          now,
          dryRun,
          force: values.force ?? false,
          env: optionalEnv,
          keys: await loadKeys(optionalEnv),
        },
        header,
        json,
      );
    }
    const dir = directoryArgument(
      resolveBackupDir(values.dir, "--dir", env),
      values.dir === undefined ? "BACKUP_DIR" : "--dir",
    );
    const outcome = await pruneBackups(dir, {
      policy,
      now,
      dryRun,
      force: values.force ?? false,
    });
    if (json) {
      log.info(JSON.stringify({
        ok: outcome.refused === undefined,
        dry_run: dryRun,
        dir,
        refused: outcome.refused ?? null,
        decisions: outcome.decisions,
        deleted: outcome.deleted,
        removed_temporary: outcome.removedTemps,
      }));
    } else {
      log.info(`Pruning ${dir} (${header})${dryRun ? " — dry run" : ""}`);
      printDecisions(outcome.decisions);
      for (const name of outcome.removedTemps) {
        log.info(
          `  ${
            dryRun ? "would remove" : "removed"
          }  ${name}  (left by an interrupted backup, over a day old)`,
        );
      }
      if (!outcome.refused) {
        log.info(
          `${
            dryRun ? "Would delete" : "Deleted"
          } ${outcome.deleted.length} backup(s), kept ${
            outcome.decisions.filter((d) => d.keep).length
          }.`,
        );
      }
    }
    if (outcome.refused) {
      log.error(`Prune refused: ${outcome.refused}`);
      return EXIT_FAILURE;
    }
    return EXIT_OK;
  });
}

async function pruneRepository(
  repo: string,
  options: PruneOptions & { env: (name: string) => string | undefined },
  header: string,
  json: boolean,
): Promise<number> {
  const outcome = await pruneRepo(repo, options);
  const c = outcome.collection;
  const freed = c ? c.bytesRemoved - c.bytesWritten : 0;
  if (json) {
    log.info(JSON.stringify({
      ok: outcome.refused === undefined,
      dry_run: options.dryRun,
      repo,
      refused: outcome.refused ?? null,
      decisions: outcome.decisions,
      deleted: outcome.deleted,
      packs_deleted: c?.deletedPacks ?? 0,
      packs_repacked: c?.repackedPacks ?? 0,
      bytes_freed: freed,
    }));
  } else {
    log.info(
      `Pruning snapshots of ${repo} (${header})${
        options.dryRun ? " — dry run" : ""
      }`,
    );
    printDecisions(outcome.decisions);
    if (c) {
      log.info(
        `${
          options.dryRun ? "Would delete" : "Deleted"
        } ${outcome.deleted.length} snapshot(s), kept ${
          outcome.decisions.filter((d) => d.keep).length
        }; ${options.dryRun ? "would free" : "freed"} ${
          log.bytes(freed)
        } (${c.deletedPacks} pack(s) deleted, ${c.repackedPacks} repacked) of ${
          log.bytes(outcome.bytesBefore)
        }.`,
      );
    }
  }
  if (outcome.refused) {
    log.error(`Prune refused: ${outcome.refused}`);
    return EXIT_FAILURE;
  }
  return EXIT_OK;
}

function printDecisions(decisions: RetentionDecision[]): void {
  const width = Math.max(0, ...decisions.map((d) => d.name.length));
  for (const d of decisions) {
    log.info(
      `  ${d.keep ? "keep  " : "delete"}  ${d.name.padEnd(width)}  ${
        d.reasons.join("; ")
      }`,
    );
  }
}

if (import.meta.main) Deno.exitCode = await main(Deno.args);
