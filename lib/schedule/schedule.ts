/**
 * The pure parts of `deno task schedule`: the crontab line and the systemd
 * units that run the nightly backup and then the prune, and the edits that
 * put that line into a crontab or take it out again while leaving every other
 * line exactly as it was. Nothing here reads or writes anything; the script
 * does the I/O.
 *
 * @example
 * ```ts
 * import { cronLine, withEntry } from "./schedule.ts";
 *
 * const line = cronLine({ project: "/home/me/memkeep", deno: "/usr/bin/deno" });
 * const next = withEntry("MAILTO=me\n", line);
 * ```
 *
 * @module
 */

import { posix } from "node:path";
import { UsageError } from "../errors.ts";

/**
 * Ends memkeep's crontab line, so that `--install` and `--uninstall` find it
 * again. To `sh` it is a comment.
 */
export const CRON_MARKER = "# memkeep nightly backup";

/** The log the crontab job appends to, relative to the project. */
export const CRON_LOG = "backups/cron.log";

/** The env file the job reads its settings from, relative to the project. */
export const DEFAULT_ENV_FILE = ".env";

/** The systemd user units, in `~/.config/systemd/user/`. */
export const SYSTEMD_UNIT = {
  service: "memkeep-backup.service",
  timer: "memkeep-backup.timer",
} as const;

/** A time of day, local time. */
export interface TimeOfDay {
  /** 0–23. */
  readonly hour: number;
  /** 0–59. */
  readonly minute: number;
}

/**
 * 02:17: at night, and off the hour, when every other job on the machine (and
 * on a shared database server) starts.
 */
export const DEFAULT_TIME: TimeOfDay = { hour: 2, minute: 17 };

/** What the scheduled job runs, and when. */
export interface ScheduleOptions {
  /** The project directory the job runs in: an absolute path. */
  readonly project: string;
  /** The `deno` executable: an absolute path. */
  readonly deno: string;
  /** When it runs each day; default {@linkcode DEFAULT_TIME}. */
  readonly at?: TimeOfDay | undefined;
  /**
   * The env file with the settings (`DATABASE_URL`, `RELATIONSHIPS_DB`, …),
   * absolute or relative to the project; default `.env`. A missing file is
   * not an error: Deno warns in the log and the defaults apply.
   */
  readonly envFile?: string | undefined;
}

/** The two systemd user units, as file contents. */
export interface SystemdUnits {
  /** `memkeep-backup.service`: a oneshot that runs backup, then prune. */
  readonly service: string;
  /** `memkeep-backup.timer`: starts the service daily. */
  readonly timer: string;
}

/**
 * Parses a time of day given as `HH:MM` (24-hour clock, `H:MM` accepted).
 *
 * @param text The value of the flag.
 * @param flag The flag, named in the error.
 * @returns The time.
 * @throws {UsageError} Naming the flag when the value is not a valid time.
 */
export function parseTime(text: string, flag = "--at"): TimeOfDay {
  const match = /^(\d{1,2}):(\d{2})$/.exec(text.trim());
  const hour = Number(match?.[1]);
  const minute = Number(match?.[2]);
  if (!match || hour > 23 || minute > 59) {
    throw new UsageError(
      flag,
      `Invalid ${flag} "${text}": must be a time of day as HH:MM, from 00:00 to 23:59`,
    );
  }
  return { hour, minute };
}

/**
 * Formats a time of day as `HH:MM`.
 *
 * @param time The time.
 * @returns The time, e.g. `02:17`.
 */
export function formatTime(time: TimeOfDay): string {
  return `${pad(time.hour)}:${pad(time.minute)}`;
}

/**
 * Quotes a word for `sh`: in single quotes, where nothing is special, with
 * each `'` written as `'\''`.
 *
 * @param word Any text.
 * @returns The quoted word.
 */
export function shQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * The crontab line that runs, every day at the given time, from the project
 * directory: `deno task backup`, and when it succeeds `deno task prune`, with
 * the settings from the env file and the output appended to
 * `backups/cron.log`. It ends with {@linkcode CRON_MARKER}.
 *
 * Paths are quoted for `sh`, and `%`, which cron turns into a line break, is
 * escaped for cron.
 *
 * @param options The project, deno, time and env file.
 * @returns One line, without a line break.
 * @throws {RangeError} When a path is not absolute or contains a line break.
 */
export function cronLine(options: ScheduleOptions): string {
  const { project, deno, envFile, at } = resolved(options);
  const log = shQuote(jobFiles(options).log);
  const task = (name: string) =>
    `NO_COLOR=1 ${shQuote(deno)} task --env-file=${
      shQuote(envFile)
    } ${name} >> ${log} 2>&1`;
  const command = [
    `cd ${shQuote(project)}`,
    // `>>` cannot create a directory: without this, the job of a fresh
    // checkout would fail before Deno starts, with nothing in any log.
    `mkdir -p ${shQuote(posix.join(project, "backups"))}`,
    task("backup"),
    task("prune"),
  ].join(" && ");
  return `${at.minute} ${at.hour} * * * ${cronEscape(command)} ${CRON_MARKER}`;
}

/**
 * A systemd user service and timer that do what {@linkcode cronLine} does,
 * with the output in the journal (`journalctl --user -u memkeep-backup`).
 * `Persistent=true` runs a missed job at the next start.
 *
 * @param options The project, deno, time and env file.
 * @returns The contents of both unit files.
 * @throws {RangeError} When a path is not absolute or contains a line break.
 */
export function systemdUnits(options: ScheduleOptions): SystemdUnits {
  const { project, deno, envFile, at } = resolved(options);
  const exec = (name: string) =>
    `ExecStart=${
      [deno, "task", `--env-file=${envFile}`, name].map(systemdQuote).join(" ")
    }`;
  const service = [
    "[Unit]",
    "Description=memkeep nightly backup, then prune",
    "",
    "[Service]",
    "Type=oneshot",
    `WorkingDirectory=${systemdEscape(project)}`,
    "Environment=NO_COLOR=1",
    // A oneshot runs its ExecStart lines in order and stops at the first
    // that fails: no prune after a failed backup.
    exec("backup"),
    exec("prune"),
    "",
  ].join("\n");
  const timer = [
    "[Unit]",
    `Description=Run ${SYSTEMD_UNIT.service} every day at ${formatTime(at)}`,
    "",
    "[Timer]",
    `OnCalendar=*-*-* ${formatTime(at)}:00`,
    "Persistent=true",
    "",
    "[Install]",
    "WantedBy=timers.target",
    "",
  ].join("\n");
  return { service, timer };
}

/**
 * The files the job uses, as absolute paths.
 *
 * @param options The project and env file.
 * @returns The env file it reads and the log it appends to (the crontab
 *   job; the systemd service logs to the journal).
 * @throws {RangeError} When a path is not absolute or contains a line break.
 */
export function jobFiles(
  options: ScheduleOptions,
): { envFile: string; log: string } {
  const { project, envFile } = resolved(options);
  return { envFile, log: posix.join(project, CRON_LOG) };
}

/**
 * Whether a crontab line is memkeep's: it ends with {@linkcode CRON_MARKER}.
 *
 * @param line One line, with or without its line break.
 * @returns `true` for memkeep's line.
 */
export function isEntry(line: string): boolean {
  return line.trimEnd().endsWith(CRON_MARKER);
}

/**
 * memkeep's lines in a crontab.
 *
 * @param crontab The crontab text.
 * @returns The lines that end with {@linkcode CRON_MARKER}, without line
 *   breaks.
 */
export function entriesIn(crontab: string): string[] {
  return linesOf(crontab).filter(isEntry).map((l) => l.replace(/\n$/, ""));
}

/**
 * A crontab with memkeep's line: every earlier memkeep line removed, the new
 * one appended at the end. Every other line is kept byte for byte; a last
 * line without a line break gets one, since cron ignores an unterminated
 * last line. Applying it twice gives the same text as applying it once.
 *
 * @param crontab The current crontab text (`""` for none).
 * @param line The line from {@linkcode cronLine}.
 * @returns The new crontab text, ending with a line break.
 * @throws {RangeError} When `line` is not one line ending with the marker.
 */
export function withEntry(crontab: string, line: string): string {
  if (/[\r\n]/.test(line) || !isEntry(line)) {
    throw new RangeError(
      `Cannot add ${JSON.stringify(line)} to the crontab: ` +
        `must be one line ending with "${CRON_MARKER}"`,
    );
  }
  const rest = withoutEntry(crontab);
  const separator = rest === "" || rest.endsWith("\n") ? "" : "\n";
  return `${rest}${separator}${line}\n`;
}

/**
 * A crontab without memkeep's line(s); every other line byte for byte,
 * including its line break or the lack of one.
 *
 * @param crontab The crontab text.
 * @returns The text without the lines that end with {@linkcode CRON_MARKER}.
 */
export function withoutEntry(crontab: string): string {
  return linesOf(crontab).filter((line) => !isEntry(line)).join("");
}

/** The lines of a text, each with its `\n` (the last may have none). */
function linesOf(text: string): string[] {
  return text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
}

interface Resolved {
  readonly project: string;
  readonly deno: string;
  readonly envFile: string;
  readonly at: TimeOfDay;
}

function resolved(options: ScheduleOptions): Resolved {
  const project = checkedPath(options.project, "project directory");
  const deno = checkedPath(options.deno, "deno executable");
  const envFile = checkedPath(
    posix.resolve(project, options.envFile ?? DEFAULT_ENV_FILE),
    "env file",
  );
  return { project, deno, envFile, at: options.at ?? DEFAULT_TIME };
}

function checkedPath(path: string, what: string): string {
  if (/[\r\n]/.test(path)) {
    throw new RangeError(
      `Cannot schedule the job: the ${what} ${
        JSON.stringify(path)
      } contains a line break, which cannot be written into one line`,
    );
  }
  if (!posix.isAbsolute(path)) {
    throw new RangeError(
      `Cannot schedule the job: the ${what} "${path}" is not an absolute path`,
    );
  }
  return path;
}

/**
 * Escapes `%` for cron, which turns an unescaped `%` into a line break and
 * sends the rest of the line to the command's stdin. Cron reads `\%` as `%`
 * but `\\` as `\\`, so a path's own `\` before a `%` would swallow the escape:
 * there the single-quoted word is closed and reopened (`''`) in between. Every
 * `%` here is inside single quotes (only paths can contain one).
 */
function cronEscape(command: string): string {
  return command.replaceAll("\\%", "\\''%").replaceAll("%", "\\%");
}

/**
 * A word for `ExecStart=`: `%` as `%%`; unless plain, in double quotes with C
 * escapes and `$` as `$$` (no variable expansion).
 */
function systemdQuote(word: string): string {
  const escaped = systemdEscape(word);
  if (/^[\w+=:,./@-]+$/.test(escaped)) return escaped;
  return `"${escaped.replace(/[\\"]/g, "\\$&").replaceAll("$", "$$$$")}"`;
}

/** A value for a unit file setting: `%` starts a specifier, `%%` is `%`. */
function systemdEscape(value: string): string {
  return value.replaceAll("%", "%%");
}

function pad(n: number): string {
  return String(n).padStart(2, "0");
}
