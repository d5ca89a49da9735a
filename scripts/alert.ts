#!/usr/bin/env -S deno run -q --no-prompt --allow-net=api.github.com:443 --allow-env=GITHUB_TOKEN,GITHUB_REPOSITORY,GITHUB_API_URL,GITHUB_SERVER_URL,GITHUB_RUN_ID,GITHUB_WORKFLOW
/**
 * `deno task alert [--json]`
 *
 * Run by the nightly workflow when a step failed: opens the issue "Nightly
 * memory backup failed", or comments on it when it is already open, with a
 * link to the failed run. Exit codes: 0 success, 1 failure, 2 bad usage.
 *
 * @module
 */

import { githubSettings, openOrUpdateIssue } from "../lib/github/client.ts";
import * as log from "../lib/cli/log.ts";
import { EXIT_OK, optionalEnv, parseCommand, run } from "../lib/cli/run.ts";

/** The title of the issue that reports failed backups. */
export const ALERT_TITLE = "Nightly memory backup failed";

/**
 * Opens or updates the alert issue.
 *
 * @param args Command-line arguments.
 * @returns The exit code.
 */
export async function main(args: string[]): Promise<number> {
  let json = false;
  return await run(async () => {
    const { values } = parseCommand("alert", args);
    if (values.help) {
      log.info(
        'Usage: deno task alert [--json]\n\nOpens or updates the issue "Nightly memory backup failed" with a link to this run.',
      );
      return EXIT_OK;
    }
    json = values.json ?? false;
    const gh = githubSettings(optionalEnv);
    const server = optionalEnv("GITHUB_SERVER_URL") ?? "https://github.com";
    const runId = optionalEnv("GITHUB_RUN_ID");
    const link = runId
      ? `${server}/${gh.repository}/actions/runs/${runId}`
      : "(run link unknown: GITHUB_RUN_ID is not set)";
    const body = [
      `The nightly memory backup failed at ${new Date().toISOString()}.`,
      "",
      `Run: ${link}`,
      "",
      "Open the run for the step that failed and its one-line error. Until a backup succeeds, the newest artifact is the last good one; `deno task status --artifacts` tells its age.",
    ].join("\n");
    const { issue, created } = await openOrUpdateIssue(gh, ALERT_TITLE, body);
    if (json) {
      log.info(
        JSON.stringify({
          ok: true,
          issue: issue.number,
          url: issue.html_url,
          created,
        }),
      );
    } else {log.info(
        `${
          created ? "Opened" : "Updated"
        } issue #${issue.number} "${ALERT_TITLE}": ${issue.html_url}`,
      );}
    return EXIT_OK;
  }, { json: () => json });
}

if (import.meta.main) Deno.exitCode = await main(Deno.args);
