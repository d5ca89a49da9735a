#!/usr/bin/env -S deno run -q --no-prompt --allow-env=MEMKEEP_REPO,S3_ENDPOINT,AWS_REGION,AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY,AWS_SESSION_TOKEN,AGE_IDENTITY_FILE,AGE_PASSPHRASE
/**
 * `deno task snapshots --repo REPO [--json]`
 *
 * Lists the snapshots of a deduplicated repository, oldest first, with their
 * counts and the bytes each added, and the repository's size. Exit codes: 0,
 * 1 when the repository cannot be read, 2 bad usage.
 *
 * @module
 */

import * as log from "../lib/cli/log.ts";
import { UsageError } from "../lib/errors.ts";
import {
  EXIT_OK,
  optionalEnv,
  repoArgument,
  runCommand,
} from "../lib/cli/run.ts";
import { openRepository, repoLocation } from "../lib/repo/location.ts";
import { listSnapshots } from "../lib/repo/reader.ts";
import { storedBytes } from "../lib/repo/storage.ts";

const HELP = `Usage: deno task snapshots --repo REPO [--json]

Lists the snapshots in the repository REPO (a directory), oldest first: name,
memories, relationships and the bytes each backup added.

Options:
  --repo REPO  the repository (env MEMKEEP_REPO)
  --json       print {"repository_bytes": N, "snapshots": [...]}
  -h, --help   show this help

Exit codes: 0 success, 1 failure, 2 bad usage.`;

/**
 * Lists snapshots.
 *
 * @param args Command-line arguments.
 * @returns The exit code.
 */
export async function main(args: string[]): Promise<number> {
  return await runCommand("snapshots", args, HELP, async ({ values, json }) => {
    const location = repoLocation(values.repo, optionalEnv);
    if (location === undefined) {
      throw new UsageError(
        "--repo",
        "Missing --repo: deno task snapshots --repo REPO (or set MEMKEEP_REPO)",
      );
    }
    repoArgument(location, values.repo);
    // A listing reads the snapshot files only, not the index.
    const { repo } = await openRepository(location, optionalEnv, {
      index: false,
    });
    const storage = repo.storage;
    const snapshots = await listSnapshots(repo);
    const repositoryBytes = await storedBytes(storage);
    if (json) {
      log.info(JSON.stringify({
        repository_bytes: repositoryBytes,
        snapshots: snapshots.map(({ snapshot: s }) => ({
          name: s.name,
          created_at: s.metadata.created_at,
          memory_count: s.metadata.memory_count,
          relationship_count: s.metadata.relationship_count,
          bytes_added: s.bytes_added,
        })),
      }));
      return EXIT_OK;
    }
    log.info(
      `${location}: ${snapshots.length} snapshot${
        snapshots.length === 1 ? "" : "s"
      }, ${log.bytes(repositoryBytes)}`,
    );
    for (const { snapshot: s } of snapshots) {
      log.info(
        `  ${s.name}  ${log.count(s.metadata.memory_count)} memories, ${
          log.count(s.metadata.relationship_count)
        } relationships, added ${log.bytes(s.bytes_added)}`,
      );
    }
    return EXIT_OK;
  });
}

if (import.meta.main) Deno.exitCode = await main(Deno.args);
