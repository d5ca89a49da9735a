#!/usr/bin/env -S deno run -q --no-prompt --allow-read=./backups --allow-env=BACKUP_DIR,GITHUB_TOKEN,GITHUB_REPOSITORY,GITHUB_API_URL
/**
 * `deno task status [--dir DIR | --artifacts] [--max-age 26h] [--now ISO]
 * [--json]`
 *
 * Reports the newest backup, locally or among the repository's artifacts,
 * and exits 1 when there is none or it is older than the limit: a nightly
 * job that silently stopped is a failure too.
 *
 * @module
 */

import { resolveBackupDir } from "../lib/store/config.ts";
import { parseBackupName } from "../lib/format/layout.ts";
import { githubSettings, listArtifacts } from "../lib/github/client.ts";
import * as log from "../lib/cli/log.ts";
import {
  directoryArgument,
  EXIT_FAILURE,
  EXIT_OK,
  optionalEnv,
  runCommand,
} from "../lib/cli/run.ts";
import { parseDuration, parseMoment } from "../lib/util/moment.ts";

const HELP =
  `Usage: deno task status [--dir DIR | --artifacts] [--max-age 26h] [--now ISO] [--json]

Reports the newest backup and its age; exits 1 when there is none or it is
older than --max-age (default 26h).`;

/**
 * Reports the newest backup.
 *
 * @param args Command-line arguments.
 * @returns 0 when fresh, 1 when missing or stale, 2 on bad usage.
 */
export async function main(args: string[]): Promise<number> {
  return await runCommand("status", args, HELP, async ({ values, json }) => {
    const maxAge = parseDuration(values["max-age"] ?? "26h", "--max-age");
    const now = parseMoment(values.now);
    let where: string;
    let names: string[];
    if (values.artifacts) {
      const gh = githubSettings(optionalEnv);
      where = `artifacts of ${gh.repository}`;
      names = (await listArtifacts(gh)).filter((a) => !a.expired).map((a) =>
        a.name
      );
    } else {
      const dir = directoryArgument(
        resolveBackupDir(values.dir, "--dir", optionalEnv),
        values.dir === undefined ? "BACKUP_DIR" : "--dir",
      );
      where = dir;
      try {
        names = [...Deno.readDirSync(dir)].filter((e) => e.isDirectory).map((
          e,
        ) => e.name);
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
        names = [];
      }
    }
    const newest = names.filter((n) =>
      (parseBackupName(n)?.getTime() ?? Infinity) <= now.getTime()
    )
      .sort().at(-1);
    const age = newest
      ? now.getTime() - parseBackupName(newest)!.getTime()
      : undefined;
    const fresh = age !== undefined && age <= maxAge;
    const hours = (ms: number) => `${(ms / 3_600_000).toFixed(1)} h`;
    if (json) {
      log.info(
        JSON.stringify({
          ok: fresh,
          where,
          newest: newest ?? null,
          age_ms: age ?? null,
          max_age_ms: maxAge,
        }),
      );
    } else if (!newest) {
      log.info(`No backup in ${where}.`);
    } else {
      log.info(
        `Newest backup in ${where}: ${newest}, ${hours(age!)} old (limit ${
          hours(maxAge)
        }): ${fresh ? "OK" : "TOO OLD"}`,
      );
    }
    if (!fresh) {
      log.error(
        newest
          ? `The newest backup is ${hours(age!)} old, older than ${
            hours(maxAge)
          }: has the nightly job stopped?`
          : `No backup in ${where}`,
      );
      return EXIT_FAILURE;
    }
    return EXIT_OK;
  });
}

if (import.meta.main) Deno.exitCode = await main(Deno.args);
