#!/usr/bin/env -S deno run -q --no-prompt --allow-env=AGE_IDENTITY_FILE,AWS_REGION,BACKUP_DIR,DATABASE_URL,GITHUB_API_URL,GITHUB_OUTPUT,GITHUB_STEP_SUMMARY,INIT_CWD,MEMKEEP_REPO,RELATIONSHIPS_DB,S3_ENDPOINT
/**
 * `deno task grants COMMAND [ARGS…]`
 *
 * Prints the command line the launcher would run for `deno task COMMAND
 * ARGS…` with the current settings, and runs nothing: the exact permission
 * flags this command line gets. Exit codes: 0, or 2 when the command line
 * cannot be used.
 *
 * @module
 */

import { childArgs, launcherEnv } from "../lib/cli/launcher.ts";
import * as log from "../lib/cli/log.ts";
import { shQuote } from "../lib/schedule/schedule.ts";
import { describeError, EXIT_OK, EXIT_USAGE } from "../lib/cli/run.ts";

/**
 * Prints the child command line.
 *
 * @param args `COMMAND ARGS…`.
 * @returns The exit code.
 */
export function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  if (command === undefined || command === "--help" || command === "-h") {
    log.info(
      "Usage: deno task grants COMMAND [ARGS…]\n\nPrints the exact command line (and permission flags) deno task COMMAND ARGS… runs.",
    );
    return Promise.resolve(command === undefined ? EXIT_USAGE : EXIT_OK);
  }
  const env = launcherEnv;
  try {
    const argv = childArgs(command, rest, env, {
      cwd: Deno.cwd(),
      initCwd: env("INIT_CWD"),
    });
    log.info(
      ["deno", ...argv].map((a) => /^[\w@%+=:,./-]+$/.test(a) ? a : shQuote(a))
        .join(" "),
    );
    return Promise.resolve(EXIT_OK);
  } catch (error) {
    log.error(describeError(error));
    return Promise.resolve(EXIT_USAGE);
  }
}

if (import.meta.main) Deno.exitCode = await main(Deno.args);
