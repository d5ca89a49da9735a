#!/usr/bin/env -S deno run -q --no-prompt --allow-read=.env --allow-run=crontab
/**
 * `deno task schedule --install|--uninstall|--print [--at HH:MM] [--systemd]
 * [--env-file FILE]`
 *
 * Schedules the nightly job for a relationship store (and memory store) that
 * lives on this machine: every day `deno task backup`, then, when it
 * succeeded, `deno task prune`, run from this project directory with the
 * settings from an env file. `--install` and `--uninstall` edit the user's
 * crontab through `crontab -l` and `crontab -`, touching no line but
 * memkeep's own; `--print` only prints the crontab line, or with `--systemd`
 * a systemd user service and timer to install by hand.
 *
 * This is the only memkeep script allowed to run a program, and the one
 * program is `crontab` (`--allow-run=crontab`): the crontab can be read and
 * written in no other way. It needs no file, network or environment access:
 * `Deno.execPath()` and `Deno.cwd()` need no grant, and `crontab` inherits
 * the environment without the script reading it.
 *
 * Exit codes: 0 success, 1 failure (including no `crontab` on PATH), 2 bad
 * usage.
 *
 * @module
 */

import * as log from "../lib/cli/log.ts";
import { UsageError } from "../lib/errors.ts";
import {
  CRON_LOG,
  cronLine,
  DEFAULT_ENV_FILE,
  DEFAULT_TIME,
  entriesIn,
  formatTime,
  jobFiles,
  parseTime,
  type ScheduleOptions,
  SYSTEMD_UNIT,
  systemdUnits,
  type TimeOfDay,
  withEntry,
  withoutEntry,
} from "../lib/schedule/schedule.ts";
import { EXIT_OK, runCommand } from "../lib/cli/run.ts";
import {
  binary,
  readCrontab,
  text,
  writeCrontab,
} from "../lib/schedule/crontab.ts";

const HELP = `Usage: deno task schedule --install|--uninstall|--print [options]

Schedules the nightly job for stores on this machine: every day, from this
directory, "deno task backup", then (if it succeeded) "deno task prune", with
the settings from the env file and the output appended to ${CRON_LOG}.

Options:
  --install         add the job to your crontab, replacing memkeep's earlier
                    line (every other line is left as it is)
  --uninstall       remove memkeep's line from your crontab
  --print           print the crontab line and change nothing
  --systemd         with --print: print a systemd user service and timer
  --at HH:MM        time of day, local time (default 02:17)
  --env-file FILE   settings for the job, relative to this directory
                    (default ${DEFAULT_ENV_FILE}; a missing file means defaults)
  -h, --help        show this help

Exit codes: 0 success, 1 failure, 2 bad usage.`;

/**
 * Installs, removes or prints the nightly job.
 *
 * @param args Command-line arguments.
 * @returns The exit code.
 */
export async function main(args: string[]): Promise<number> {
  return await runCommand("schedule", args, HELP, async ({ values }) => {
    const actions = (["install", "uninstall", "print"] as const).filter((a) =>
      values[a]
    );
    const action = actions[0];
    if (action === undefined || actions.length > 1) {
      throw new UsageError(
        "--install",
        actions.length > 1
          ? `Cannot use ${
            actions.map((a) => `--${a}`).join(" and ")
          } together: choose one of --install, --uninstall or --print`
          : "Missing the action: choose one of --install, --uninstall or --print",
      );
    }
    if (values.systemd && action !== "print") {
      throw new UsageError(
        "--systemd",
        `Cannot use --systemd with --${action}: use --print --systemd and install the printed units yourself`,
      );
    }
    const at: TimeOfDay | undefined = values.at === undefined
      ? undefined
      : parseTime(values.at, "--at");
    const envFile = values["env-file"];
    if (action === "uninstall") {
      for (const flag of ["at", "env-file"] as const) {
        if (values[flag] !== undefined) {
          throw new UsageError(
            `--${flag}`,
            `Cannot use --${flag} with --uninstall: it removes memkeep's line whatever its settings`,
          );
        }
      }
      return await uninstall();
    }
    if (envFile !== undefined && /[\r\n]/.test(envFile)) {
      throw new UsageError(
        "--env-file",
        `Invalid --env-file ${
          JSON.stringify(envFile)
        }: must not contain a line break`,
      );
    }
    const options: ScheduleOptions = {
      project: Deno.cwd(),
      deno: Deno.execPath(),
      at,
      envFile,
    };
    // Bad input first: an error is the only line a wrong command prints.
    checkEnvFile(jobFiles(options).envFile, envFile !== undefined);
    warnIfTransient(options.deno);
    if (action === "print") {
      if (values.systemd) printUnits(options);
      else log.info(cronLine(options));
      return EXIT_OK;
    }
    return await install(options);
  });
}

async function install(options: ScheduleOptions): Promise<number> {
  const line = cronLine(options);
  const current = await readCrontab();
  const next = withEntry(current, binary(line));
  const when = formatTime(options.at ?? DEFAULT_TIME);
  if (next === current) {
    log.info(`The nightly job is already in your crontab (daily at ${when}):`);
    log.info(`  ${line}`);
    return EXIT_OK;
  }
  const earlier = entriesIn(current).length;
  await writeCrontab(next);
  log.info(
    `${
      earlier > 0 ? "Replaced" : "Added"
    } the nightly job in your crontab: daily at ${when}, backup then prune:`,
  );
  log.info(`  ${line}`);
  const files = jobFiles(options);
  log.info(
    `Settings from ${files.envFile} (if it exists); output appended to ${files.log}`,
  );
  return EXIT_OK;
}

async function uninstall(): Promise<number> {
  const current = await readCrontab();
  const removed = entriesIn(current);
  if (removed.length === 0) {
    log.info("No memkeep job in your crontab: nothing to remove");
    return EXIT_OK;
  }
  await writeCrontab(withoutEntry(current));
  log.info(
    `Removed the nightly job from your crontab (${removed.length} line${
      removed.length === 1 ? "" : "s"
    }):`,
  );
  for (const entry of removed) log.info(`  ${text(entry)}`);
  return EXIT_OK;
}

function printUnits(options: ScheduleOptions): void {
  const units = systemdUnits(options);
  const dir = "~/.config/systemd/user";
  log.info(`# ${dir}/${SYSTEMD_UNIT.service}`);
  log.info(units.service);
  log.info(`# ${dir}/${SYSTEMD_UNIT.timer}`);
  log.info(units.timer);
  log.info(
    `# Then: systemctl --user daemon-reload && systemctl --user enable --now ${SYSTEMD_UNIT.timer}`,
  );
  log.info(
    "# To run it while you are logged out: loginctl enable-linger",
  );
}

/**
 * The job reads its settings from the env file each night: a directory there
 * is a mistake; a missing file only means defaults until it is written.
 */
function checkEnvFile(path: string, given: boolean): void {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    if (given) {
      log.warn(
        `--env-file "${path}" does not exist (yet): the job runs with the defaults until it does`,
      );
    }
    return;
  }
  if (!info.isFile) {
    throw new UsageError(
      "--env-file",
      `Invalid --env-file "${path}": it is a directory, not a file of settings`,
    );
  }
}

/**
 * Deno run through `npx` lives in npx's cache, which `npm cache clean` or an
 * upgrade may remove, taking the scheduled job's deno with it.
 */
function warnIfTransient(deno: string): void {
  if (deno.includes("/_npx/")) {
    log.warn(
      `Deno runs from npx's cache (${deno}): the job stops working if that cache is cleared; install Deno and run this again with it`,
    );
  }
}

if (import.meta.main) Deno.exitCode = await main(Deno.args);
