#!/usr/bin/env -S deno run -q --no-prompt --allow-env=AGE_IDENTITY_FILE,AWS_REGION,BACKUP_DIR,DATABASE_URL,GITHUB_API_URL,GITHUB_OUTPUT,GITHUB_STEP_SUMMARY,INIT_CWD,MEMKEEP_REPO,RELATIONSHIPS_DB,S3_ENDPOINT --allow-run
/**
 * `deno task COMMAND [ARGS…]` runs `scripts/run.ts COMMAND ARGS…`: the
 * launcher. It parses ARGS with COMMAND's own flag definitions, computes
 * exactly what this command line reads, writes and connects to (the paths in
 * `--output`, `--dir`, `--source`, `--out`, `--backup`, `--env-file` and a
 * positional DIR; `RELATIONSHIPS_DB`, `BACKUP_DIR`, `sslrootcert`,
 * `AGE_IDENTITY_FILE`; the host of `DATABASE_URL` or the GitHub API), and
 * runs `scripts/COMMAND.ts` in a child Deno with those grants only.
 *
 * The launcher itself reads no file, opens no connection and reads only the
 * variables that name places and hosts; it runs one program, this Deno.
 * Exit codes: the command's own; 2 when the command line cannot be used
 * (nothing ran then).
 *
 * @module
 */

import { launch, launcherEnv } from "../lib/cli/launcher.ts";
import { COMMANDS } from "../lib/cli/commands.ts";
import * as log from "../lib/cli/log.ts";
import { describeError, EXIT_USAGE } from "../lib/cli/run.ts";

const HELP = `Usage: deno task COMMAND [options]

Commands: ${Object.keys(COMMANDS).join(", ")}.
Each runs with exactly the access its command line needs; see
"deno task COMMAND --help".`;

/**
 * Runs a command.
 *
 * @param args `COMMAND ARGS…`.
 * @returns The command's exit code.
 */
export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  if (command === undefined || command === "--help" || command === "-h") {
    log.info(HELP);
    return command === undefined ? EXIT_USAGE : 0;
  }
  const env = launcherEnv;
  try {
    return await launch(command, rest, env);
  } catch (error) {
    log.error(describeError(error));
    return EXIT_USAGE;
  }
}

if (import.meta.main) Deno.exitCode = await main(Deno.args);
