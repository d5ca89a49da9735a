#!/usr/bin/env -S deno run -q --no-prompt --allow-read=./downloads --allow-write=./downloads --allow-net=api.github.com:443,*.blob.core.windows.net:443,*.actions.githubusercontent.com:443 --allow-env=GITHUB_TOKEN,GITHUB_REPOSITORY,GITHUB_API_URL
/**
 * `deno task fetch-artifact [latest|NAME] [--out ./downloads] [--json]`
 *
 * Downloads a backup artifact (following GitHub's redirect to its storage),
 * checks it against the digest GitHub recorded and against the backup's own
 * checksums, and leaves `NAME.zip` for `deno task restore --source`. Exit
 * codes: 0 success, 1 failure, 2 bad usage.
 *
 * @module
 */

import { DEFAULT_DOWNLOADS_DIR } from "../lib/store/config.ts";
import { fetchArtifact } from "../lib/github/fetch_artifact.ts";
import { UsageError } from "../lib/errors.ts";
import { BACKUP_NAME } from "../lib/format/layout.ts";
import { githubSettings } from "../lib/github/client.ts";
import * as log from "../lib/cli/log.ts";
import { directoryArgument, EXIT_OK, runCommand } from "../lib/cli/run.ts";

const HELP = `Usage: deno task fetch-artifact [latest|NAME] [options]

Downloads the newest backup artifact (or the one named NAME) of the
repository in GITHUB_REPOSITORY, checks its digest and checksums, and writes
DIR/NAME.zip for "deno task restore --source".

Options:
  --out DIR    where to write the zip (default ./downloads)
  --json       print the result as JSON
  -h, --help   show this help

Environment: GITHUB_TOKEN (actions: read), GITHUB_REPOSITORY (owner/name),
GITHUB_API_URL (default https://api.github.com).
Exit codes: 0 success, 1 failure, 2 bad usage.`;

/**
 * Fetches an artifact.
 *
 * @param args Command-line arguments.
 * @returns The exit code.
 */
export async function main(args: string[]): Promise<number> {
  return await runCommand(
    "fetch-artifact",
    args,
    HELP,
    async ({ values, positionals, json }) => {
      const which = positionals[0] ?? "latest";
      if (which !== "latest" && !BACKUP_NAME.test(which)) {
        throw new UsageError(
          which,
          `Invalid artifact "${which}": expected latest or memory_YYYYMMDD_HHMMSS`,
        );
      }
      const gh = githubSettings((name) => Deno.env.get(name));
      const fetched = await fetchArtifact(
        gh,
        which,
        values.out === undefined
          ? DEFAULT_DOWNLOADS_DIR
          : directoryArgument(values.out, "--out"),
      );
      if (json) {
        log.info(JSON.stringify({
          ok: true,
          name: fetched.artifact.name,
          path: fetched.path,
          sha256: fetched.sha256,
          bytes: fetched.bytes,
          digest_checked: fetched.digestChecked,
          encrypted: fetched.encrypted,
        }));
      } else {
        log.info(
          `✓ Fetched ${fetched.artifact.name} to ${fetched.path} (${
            log.bytes(fetched.bytes)
          })`,
        );
        log.info(
          `  ${
            fetched.digestChecked
              ? "digest matches GitHub's record"
              : "no digest recorded by GitHub"
          }, checksums verified${
            fetched.encrypted ? " (encrypted: ciphertext)" : ""
          }`,
        );
        log.info(
          `  Next: deno task restore --source ${fetched.path} --dry-run`,
        );
      }
      return EXIT_OK;
    },
  );
}

if (import.meta.main) Deno.exitCode = await main(Deno.args);
