/**
 * The launcher behind every task: `deno task backup --output ./my-backups`
 * runs `scripts/run.ts backup --output ./my-backups`, which parses the flags
 * with the command's own definitions, computes exactly what this command
 * line needs ({@linkcode grantsFor}), and runs the script in a child Deno
 * with those grants and the memory flags. The child gets the terminal
 * (stdin, stdout, stderr), Ctrl-C and the exit code pass through.
 *
 * ```
 * deno task CMD ARGS ─▶ scripts/run.ts ─ parse ARGS ─▶ grants ─▶ deno run --allow-…=exact scripts/CMD.ts ARGS
 * ```
 *
 * @module
 */

import { isAbsolute, resolve } from "node:path";
import { UsageError } from "../errors.ts";
import { optionalEnv, parseFlags } from "./run.ts";
import {
  type CommandName,
  COMMANDS,
  isCommand,
  MEMORY_FLAGS,
} from "./commands.ts";
import { type Env, grantsFor, permissionFlags } from "./grants.ts";

/** The environment variables the launcher reads: settings that name places or hosts, and where the user typed the command. */
export const LAUNCHER_ENV = [
  "AGE_IDENTITY_FILE",
  "AWS_REGION",
  "BACKUP_DIR",
  "DATABASE_URL",
  "GITHUB_API_URL",
  "GITHUB_OUTPUT",
  "GITHUB_STEP_SUMMARY",
  "INIT_CWD",
  "MEMKEEP_REPO",
  "RELATIONSHIPS_DB",
  "S3_ENDPOINT",
] as const;

/**
 * Reads one of {@linkcode LAUNCHER_ENV}, as unset when it is not granted;
 * any other variable is not read.
 *
 * @param name The variable.
 * @returns Its value, or `undefined`.
 */
export function launcherEnv(name: string): string | undefined {
  return (LAUNCHER_ENV as readonly string[]).includes(name)
    ? optionalEnv(name)
    : undefined;
}

/** Where a command line is run from. */
export interface Place {
  /** The working directory (the project's, under `deno task`). */
  readonly cwd: string;
  /**
   * Where the user typed the command (`deno task` sets `INIT_CWD`); relative
   * paths on the command line are taken from there.
   */
  readonly initCwd?: string | undefined;
}

/**
 * The arguments of the child Deno for a command line (everything after
 * `deno`).
 *
 * @param command The command's task name, e.g. `backup`.
 * @param args Its arguments, as the user typed them.
 * @param env Reads the settings in {@linkcode LAUNCHER_ENV}.
 * @param place Where it runs.
 * @returns `["run", "-q", "--no-prompt", …flags, script, …args]`.
 * @throws {UsageError} For an unknown command or flag, a flag without its
 * value, too many arguments, or a setting that names no usable place.
 */
export function childArgs(
  command: string,
  args: readonly string[],
  env: Env,
  place: Place,
): string[] {
  if (!isCommand(command)) {
    throw new UsageError(
      "COMMAND",
      `Unknown command ${JSON.stringify(command)}: expected one of ${
        Object.keys(COMMANDS).join(", ")
      }`,
    );
  }
  const line = COMMANDS[command];
  // `deno task backup -- --output x`, as with npm, means the same.
  const given = args[0] === "--" ? args.slice(1) : [...args];
  const parsed = parseFlags(given, line.flags, line.positionals);
  const base = ["run", "-q", "--no-prompt"];
  if (parsed.values.help === true) {
    return [...base, line.script, ...given];
  }
  const typed = fromWhereTyped(command, given, parsed.tokens, place);
  const again = typed === given
    ? parsed
    : parseFlags(typed, line.flags, line.positionals);
  const grants = grantsFor({
    command,
    values: again.values as Record<string, string | boolean | undefined>,
    positionals: again.positionals,
  }, env);
  return [
    ...base,
    ...(line.data ? [MEMORY_FLAGS] : []),
    ...permissionFlags(grants),
    line.script,
    ...typed,
  ];
}

/**
 * The arguments with each relative path resolved from where the user typed
 * the command, when that is not the working directory (`cd sub && deno task
 * verify ../backups/…`). Unchanged otherwise, so messages show the paths as
 * typed.
 */
function fromWhereTyped(
  command: CommandName,
  args: string[],
  tokens: ReturnType<typeof parseFlags>["tokens"],
  place: Place,
): string[] {
  const from = place.initCwd?.trim();
  if (!from || resolve(from) === resolve(place.cwd)) return args;
  const paths: readonly (string | number)[] = COMMANDS[command].paths;
  const out = [...args];
  const absolute = (value: string) =>
    value === "" || isAbsolute(value) ? value : resolve(from, value);
  let positional = 0;
  for (const token of tokens) {
    if (token.kind === "positional") {
      if (paths.includes(positional++)) {
        out[token.index] = absolute(out[token.index]!);
      }
    } else if (token.kind === "option" && paths.includes(token.name)) {
      if (token.inlineValue) {
        const arg = out[token.index]!;
        const eq = arg.indexOf("=");
        out[token.index] = `${arg.slice(0, eq + 1)}${
          absolute(arg.slice(eq + 1))
        }`;
      } else if (token.inlineValue === false) {
        out[token.index + 1] = absolute(out[token.index + 1]!);
      }
    }
  }
  return out;
}

/**
 * Runs a command line in a child Deno with exactly its grants.
 *
 * @param command The command's task name.
 * @param args Its arguments.
 * @param env Reads the settings in {@linkcode LAUNCHER_ENV}.
 * @returns The child's exit code (128 + the signal's number when a signal
 * ended it).
 * @throws {UsageError} When the grants cannot be computed: nothing ran.
 */
export async function launch(
  command: string,
  args: readonly string[],
  env: Env,
): Promise<number> {
  const child = new Deno.Command(Deno.execPath(), {
    args: childArgs(command, args, env, {
      cwd: Deno.cwd(),
      initCwd: env("INIT_CWD"),
    }),
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  // A Ctrl-C on a terminal reaches the child by itself (one process
  // group); a signal sent to the launcher alone is passed on. Either way
  // the launcher waits: the child removes its temporary files first.
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  const forward = signals.map((signal) => {
    const handler = () => {
      try {
        child.kill(signal);
      } catch {
        // it has already ended
      }
    };
    Deno.addSignalListener(signal, handler);
    return () => Deno.removeSignalListener(signal, handler);
  });
  try {
    const status = await child.status;
    return status.code;
  } finally {
    for (const remove of forward) remove();
  }
}
