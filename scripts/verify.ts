#!/usr/bin/env -S deno run -q --no-prompt --allow-env=AGE_IDENTITY_FILE,AGE_PASSPHRASE
/**
 * `deno task verify DIR [--json]`
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
import {
  directoryArgument,
  EXIT_FAILURE,
  EXIT_OK,
  optionalEnv,
  printVerifyReport,
  runCommand,
} from "../lib/cli/run.ts";

const HELP = `Usage: deno task verify DIR [--json]

Verifies the backup in DIR: every file's SHA-256, the required files, the
metadata and every record, counts, unique ids, embedding lengths, and the
relationship snapshot.

Options:
  --json      print the report as JSON
  -h, --help  show this help

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
    async ({ positionals, json }) => {
      const dir = positionals[0];
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

if (import.meta.main) Deno.exitCode = await main(Deno.args);
