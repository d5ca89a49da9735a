/**
 * What every script shares: flag parsing that names the bad flag, the
 * mapping from errors to exit codes and one-line messages, and printing of
 * verification reports.
 *
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";
import { errorMessage, UsageError } from "../errors.ts";
import * as log from "./log.ts";
import { type CommandName, COMMANDS } from "./commands.ts";
import { stopOnInterrupt } from "../util/interrupt.ts";
import type { VerifyReport } from "../verify/report.ts";
import { isRemote, settingOf } from "../repo/location.ts";

/** Exit code for success. */
export const EXIT_OK = 0;
/** Exit code for a failure, including a backup that fails verification. */
export const EXIT_FAILURE = 1;
/** Exit code for bad usage: an unknown flag, a bad value. */
export const EXIT_USAGE = 2;

type Options = NonNullable<ParseArgsConfig["options"]>;

/** One parsed argument: a flag (with where its value is) or a positional. */
export type FlagToken =
  | {
    readonly kind: "option";
    readonly name: string;
    readonly index: number;
    readonly inlineValue: boolean | undefined;
  }
  | { readonly kind: "positional"; readonly index: number }
  | { readonly kind: "option-terminator"; readonly index: number };

/**
 * Parses command-line flags strictly.
 *
 * @param args The arguments.
 * @param options The flags, as for `node:util` `parseArgs`.
 * @param positionals How many positional arguments are allowed.
 * @returns The parsed values, the positionals, and where each argument is.
 * @throws {UsageError} Naming the unknown flag or missing value.
 */
export function parseFlags<T extends Options>(
  args: string[],
  options: T,
  positionals = 0,
): {
  values: ReturnType<
    typeof parseArgs<{ options: T; allowPositionals: true }>
  >["values"];
  positionals: string[];
  tokens: FlagToken[];
} {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options,
      allowPositionals: true,
      strict: true,
      tokens: true,
    });
  } catch (error) {
    const message = errorMessage(error);
    const flag = /'(-[^']+)'/.exec(message)?.[1] ?? "arguments";
    throw new UsageError(
      flag,
      message.replace(/\. To specify a positional.*$/, ""),
    );
  }
  if (parsed.positionals.length > positionals) {
    const extra = parsed.positionals[positionals]!;
    throw new UsageError(extra, `Unexpected argument "${extra}"`);
  }
  return {
    values: parsed.values,
    positionals: parsed.positionals,
    tokens: parsed.tokens,
  };
}

/**
 * Parses a command's arguments with its own row of the command table (the
 * same definitions the launcher parses with).
 *
 * @param name The command.
 * @param args Its arguments.
 * @returns The values, positionals and tokens.
 * @throws {UsageError} As {@linkcode parseFlags}.
 */
export function parseCommand<N extends CommandName>(
  name: N,
  args: string[],
): ReturnType<typeof parseFlags<(typeof COMMANDS)[N]["flags"]>> {
  const command: { flags: (typeof COMMANDS)[N]["flags"]; positionals: number } =
    COMMANDS[name];
  return parseFlags(args, command.flags, command.positionals);
}

/**
 * Runs one command the way every script does: parses its arguments with its
 * row of the command table, prints `help` for `--help`, then runs `body`
 * inside {@linkcode run} (one-line errors, exit codes, Ctrl-C; with `--json`
 * a failure is also printed as JSON).
 *
 * @param name The command.
 * @param args Its arguments.
 * @param help The `--help` text.
 * @param body The work: gets the parsed values, positionals and `--json`.
 * @returns The exit code.
 */
export async function runCommand<N extends CommandName>(
  name: N,
  args: string[],
  help: string,
  body: (
    parsed: ReturnType<typeof parseCommand<N>> & { json: boolean },
  ) => Promise<number>,
): Promise<number> {
  let json = false;
  return await run(async () => {
    const parsed = parseCommand(name, args);
    const values: { help?: unknown; json?: unknown } = parsed.values;
    if (values.help) {
      log.info(help);
      return EXIT_OK;
    }
    json = values.json === true;
    return await body({ ...parsed, json });
  }, { json: () => json });
}

/**
 * Parses a positive integer flag value.
 *
 * @param value The text, or `undefined`.
 * @param flag The flag, named in errors.
 * @param fallback The default.
 * @returns The number.
 * @throws {UsageError} When it is not a whole number ≥ 0 (or ≥ 1 with `min`).
 */
export function integerFlag(
  value: string | undefined,
  flag: string,
  fallback: number,
  min = 0,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min) {
    throw new UsageError(
      flag,
      `Invalid ${flag} "${value}": must be a whole number ≥ ${min}`,
    );
  }
  return n;
}

/**
 * Refuses a path given for a directory that is something else.
 *
 * @param path The path; one that does not exist yet is fine.
 * @param setting The flag or variable that gave it, named in the error.
 * @returns The path.
 * @throws {UsageError} When the path is a file.
 */
export function directoryArgument(path: string, setting: string): string {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (error) {
    if (
      error instanceof Deno.errors.NotFound ||
      error instanceof Deno.errors.NotADirectory
    ) return path;
    throw error;
  }
  if (!info.isDirectory) {
    throw new UsageError(
      setting,
      `Invalid ${setting} "${path}": it is a file, not a directory`,
    );
  }
  return path;
}

/**
 * Refuses a repository directory that is a file; a bucket is checked when
 * it is opened.
 *
 * @param location What `repoLocation` returned.
 * @param flag `--repo`'s value (else `MEMKEEP_REPO` gave it).
 * @returns The location.
 * @throws {UsageError} When a local repository path is a file.
 */
export function repoArgument(
  location: string,
  flag: string | undefined,
): string {
  if (!isRemote(location)) directoryArgument(location, settingOf(flag));
  return location;
}

/**
 * Runs a script body and turns whatever it throws into a one-line message
 * and an exit code; never a stack trace for an expected failure.
 *
 * @param body The script's work; returns its exit code.
 * @param options `json: true` also prints `{"ok": false, "error": …}` on stdout.
 * @returns The exit code.
 */
export async function run(
  body: () => Promise<number>,
  options: { json?: () => boolean } = {},
): Promise<number> {
  stopOnInterrupt((signal) => {
    log.error(
      `Interrupted (${signal}): stopped before finishing; nothing half-done is left behind`,
    );
    if (options.json?.()) {
      log.info(JSON.stringify({ ok: false, error: `interrupted (${signal})` }));
    }
    // The only exit outside `main`: the work cannot be unwound from here.
    Deno.exit(signal === "SIGINT" ? 130 : 143);
  });
  try {
    return await body();
  } catch (error) {
    const message = describeError(error);
    log.error(message);
    if (options.json?.()) {
      log.info(JSON.stringify({ ok: false, error: message }));
    }
    return error instanceof UsageError ? EXIT_USAGE : EXIT_FAILURE;
  }
}

/**
 * The one-line message for an error.
 *
 * @param error What was thrown.
 * @returns The message.
 */
export function describeError(error: unknown): string {
  if (error instanceof Deno.errors.NotCapable) {
    return `Not permitted: ${
      errorMessage(error).replace(/, run again with.*$/, "")
    } ` +
      `(memkeep runs with least privilege; see README "Permissions" for the flag to add)`;
  }
  return errorMessage(error);
}

/**
 * Prints a verification report: each check with ✓ or ✗, then the verdict.
 *
 * @param report The report.
 * @param indent Prefix for each check line.
 */
export function printVerifyReport(report: VerifyReport, indent = ""): void {
  for (const check of report.checks) {
    log.info(`${indent}${check.ok ? "✓" : "✗"} ${check.name}: ${check.detail}`);
  }
  if (report.ok && !report.contentsVerified) {
    log.info(
      `${indent}Encrypted backup is intact (ciphertext verified; set AGE_IDENTITY_FILE to check its contents).`,
    );
  } else if (report.ok) {
    log.info(
      `${indent}Backup is valid: ${log.count(report.memories)} memories, ${
        log.count(report.relationships)
      } relationships.`,
    );
  } else {
    const p = report.problem;
    const where = p
      ? `${p.file}${p.line === undefined ? "" : `:${p.line}`}: ${p.reason}`
      : "unknown problem";
    log.info(`${indent}Backup is NOT valid: ${where}`);
  }
}

/**
 * Reads an optional environment variable, as unset when the script was not
 * granted it (e.g. `verify` run with `--allow-read=DIR` only).
 *
 * @param name The variable.
 * @returns Its value, or `undefined`.
 */
export function optionalEnv(name: string): string | undefined {
  if (
    Deno.permissions.querySync({ name: "env", variable: name }).state !==
      "granted"
  ) return undefined;
  return Deno.env.get(name);
}
