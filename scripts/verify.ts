#!/usr/bin/env -S deno run -q --no-prompt --allow-env=MEMKEEP_REPO,S3_ENDPOINT,AWS_REGION,AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY,AWS_SESSION_TOKEN,AGE_IDENTITY_FILE,AGE_PASSPHRASE
/**
 * `deno task verify DIR [--json]`, or `deno task verify --repo REPO
 * [--snapshot NAME|latest] [--read-data] [--json]`
 *
 * Verifies a backup: checksums, required files, schemas, counts, unique ids,
 * embedding lengths, and the relationship snapshot. Needs read access to the
 * backup only. Exit codes: 0 valid, 1 not valid, 2 bad usage.
 *
 * @module
 */

import * as log from "../lib/cli/log.ts";
import { loadKeys } from "../lib/format/encryption.ts";
import { verifyBackup } from "../lib/verify/verify.ts";
import { UsageError } from "../lib/errors.ts";
import { openRepository, repoLocation } from "../lib/repo/location.ts";
import { findSnapshot, listSnapshots } from "../lib/repo/reader.ts";
import {
  checkFileNames,
  checkSnapshot,
  samplePacks,
} from "../lib/repo/check.ts";
import {
  directoryArgument,
  EXIT_FAILURE,
  EXIT_OK,
  optionalEnv,
  printVerifyReport,
  repoArgument,
  runCommand,
} from "../lib/cli/run.ts";

const HELP = `Usage: deno task verify DIR [--json]
       deno task verify --repo REPO [--snapshot NAME|latest]
                        [--read-data | --read-data-subset P%] [--json]

Verifies the backup in DIR: every file's SHA-256, the required files, the
metadata and every record, counts, unique ids, embedding lengths, and the
relationship snapshot. With --repo, checks the repository's snapshots (all,
or one): every index and snapshot file against its name, every blob they
need listed and its pack present; with --read-data, every such blob read,
decompressed and hashed, the memory counts and the relationship copy.

Options:
  --repo REPO        check a repository (env MEMKEEP_REPO) instead of DIR
  --snapshot NAME    only this snapshot (or latest)
  --read-data        read and hash every blob too (slower: reads it all)
  --read-data-subset P%
                     read and hash the blobs of a random P% of the packs
  --json             print the report as JSON
  -h, --help         show this help

Exit codes: 0 valid, 1 not valid, 2 bad usage.`;

/**
 * Verifies a backup.
 *
 * @param args Command-line arguments.
 * @returns The exit code.
 */
export async function main(args: string[]): Promise<number> {
  return await runCommand(
    "verify",
    args,
    HELP,
    async ({ positionals, values, json }) => {
      const dir = positionals[0];
      if (dir !== undefined && values.repo !== undefined) {
        throw new UsageError(
          "--repo",
          "Invalid --repo: verify DIR or --repo REPO, not both",
        );
      }
      const repo = repoLocation(
        values.repo,
        dir === undefined ? optionalEnv : () => undefined,
      );
      if (repo !== undefined) {
        repoArgument(repo, values.repo);
        return await verifyRepo(
          repo,
          values.snapshot,
          readDataOf(values["read-data"], values["read-data-subset"]),
          json,
        );
      }
      for (
        const flag of ["snapshot", "read-data", "read-data-subset"] as const
      ) {
        if (values[flag] !== undefined) {
          throw new UsageError(
            `--${flag}`,
            `Invalid --${flag}: it applies to a repository; give --repo REPO`,
          );
        }
      }
      if (dir === undefined) {
        throw new UsageError(
          "DIR",
          "Missing the backup directory: deno task verify DIR",
        );
      }
      directoryArgument(dir, "DIR");
      const report = await verifyBackup(dir, {
        keys: await loadKeys(optionalEnv),
        onProgress: json ? undefined : log.progress,
      });
      log.clearProgress();
      if (json) {
        log.info(JSON.stringify({
          ok: report.ok,
          dir: report.dir,
          memories: report.memories,
          relationships: report.relationships,
          problem: report.problem ?? null,
          checks: report.checks,
        }));
      } else {
        log.info(`Verifying ${dir}`);
        printVerifyReport(report);
      }
      return report.ok ? EXIT_OK : EXIT_FAILURE;
    },
  );
}

/** `--read-data` (all), `--read-data-subset P%` (a share), or neither. */
function readDataOf(
  all: boolean | undefined,
  subset: string | undefined,
): boolean | number {
  if (subset === undefined) return all ?? false;
  if (all) {
    throw new UsageError(
      "--read-data-subset",
      "Invalid --read-data-subset: give it or --read-data, not both",
    );
  }
  const match = /^(\d+(?:\.\d+)?)%$/.exec(subset.trim());
  const percent = match ? Number(match[1]) : NaN;
  if (!(percent > 0 && percent <= 100)) {
    throw new UsageError(
      "--read-data-subset",
      `Invalid --read-data-subset "${subset}": must be a share of the packs such as 10%`,
    );
  }
  return percent;
}

async function verifyRepo(
  location: string,
  name: string | undefined,
  readDataFlag: boolean | number,
  json: boolean,
): Promise<number> {
  const { repo, keys } = await openRepository(location, optionalEnv, {
    structure: true,
  });
  const storage = repo.storage;
  if (repo.sealer.encrypted && keys === undefined) {
    // Without the key: every file against its name, and no more.
    const files = await checkFileNames(storage);
    if (json) {
      log.info(JSON.stringify({
        ok: true,
        repo: location,
        encrypted: true,
        files_checked: files.files,
        snapshots: null,
      }));
    } else {
      log.info(
        `✓ ${location} is encrypted: ${log.count(files.files)} files (${
          log.bytes(files.bytes)
        }) match their names; set AGE_IDENTITY_FILE (or AGE_PASSPHRASE) to check the snapshots inside`,
      );
    }
    return EXIT_OK;
  }
  const files = name === undefined
    ? await listSnapshots(repo)
    : [await findSnapshot(repo, name)];
  if (!json) log.info(`Checking ${location}`);
  const readData = typeof readDataFlag === "number"
    ? samplePacks(repo, readDataFlag)
    : readDataFlag;
  const checks = [];
  for (const file of files) {
    if (!json) log.progress({ what: `snapshot ${file.snapshot.name}` });
    const check = await checkSnapshot(repo, file, readData);
    checks.push(check);
    if (!json) {
      log.clearProgress();
      log.info(
        `  ✓ ${check.name}: ${log.count(check.memories)} memories, ${
          log.count(check.blobs)
        } blobs ${
          readData === true
            ? `read and hashed (${log.bytes(check.bytesRead)})`
            : readData
            ? `present, ${log.bytes(check.bytesRead)} of them read and hashed`
            : "present"
        }`,
      );
    }
  }
  if (json) {
    log.info(JSON.stringify({
      ok: true,
      repo: location,
      read_data: typeof readDataFlag === "number"
        ? `${readDataFlag}%`
        : readDataFlag,
      snapshots: checks.map((c) => ({
        name: c.name,
        memories: c.memories,
        blobs: c.blobs,
        bytes_read: c.bytesRead,
      })),
    }));
  } else {
    log.info(
      `✓ ${files.length} snapshot${files.length === 1 ? "" : "s"} ${
        readData === true
          ? "read in full"
          : readData
          ? `complete, the blobs of ${readData.size} pack(s) (${readDataFlag}%) read`
          : "complete (add --read-data to read every blob)"
      }`,
    );
  }
  return EXIT_OK;
}

if (import.meta.main) Deno.exitCode = await main(Deno.args);
