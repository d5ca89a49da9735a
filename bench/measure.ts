/**
 * How the benchmark measures: each command as its own process under
 * `/usr/bin/time`, for wall time and peak resident memory.
 *
 * @module
 */

import { childArgs } from "../lib/cli/launcher.ts";

export const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
export const BENCH = `${ROOT}/.bench`;
export const DENO = Deno.execPath();

/** Wall time and peak memory of one command. */
export interface Measure {
  readonly seconds: number;
  readonly peakMb: number;
  readonly stdout: string;
}

/**
 * Bytes in a file, or in a directory's files.
 *
 * @param path The file or directory.
 * @returns Its size (0 when missing).
 */
export function size(path: string): number {
  try {
    const info = Deno.statSync(path);
    if (info.isFile) return info.size;
    let total = 0;
    for (const e of Deno.readDirSync(path)) total += size(`${path}/${e.name}`);
    return total;
  } catch {
    return 0;
  }
}

/**
 * Runs a command under /usr/bin/time.
 *
 * @param args The command and its arguments.
 * @param env Settings added to the environment.
 * @returns Wall seconds, peak RSS and what it printed.
 * @throws {Error} When the command fails.
 */
export async function timed(
  args: string[],
  env: Record<string, string> = {},
): Promise<Measure> {
  await Deno.mkdir(`${BENCH}/tmp`, { recursive: true });
  const report = await Deno.makeTempFile({ dir: `${BENCH}/tmp` });
  const started = performance.now();
  const out = await new Deno.Command("/usr/bin/time", {
    args: ["-f", "%M", "-o", report, ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const seconds = (performance.now() - started) / 1000;
  const stderr = new TextDecoder().decode(out.stderr);
  if (out.code !== 0) {
    await Deno.remove(report).catch(() => {});
    throw new Error(
      `${args.slice(0, 4).join(" ")} … failed (${out.code}): ${
        stderr.slice(-600)
      }`,
    );
  }
  const peakKb = Number(
    (await Deno.readTextFile(report)).trim().split("\n").pop(),
  );
  await Deno.remove(report);
  return {
    seconds,
    peakMb: peakKb / 1024,
    stdout: new TextDecoder().decode(out.stdout),
  };
}

/**
 * The `psql` command line for one meta-command or statement (stops on the
 * first error).
 *
 * @param url The server.
 * @param command What to run, e.g. `\copy … to 'FILE'`.
 * @returns The command line.
 */
export function psql(url: string, command: string): string[] {
  return ["psql", url, "-q", "-X", "-v", "ON_ERROR_STOP=1", "-c", command];
}

/**
 * Runs SQL with `psql`, untimed (set-up between measurements).
 *
 * @param url The server.
 * @param sql The statements.
 * @returns What psql printed (unaligned, tuples only).
 * @throws {Error} When psql fails.
 */
export async function runSql(url: string, sql: string): Promise<string> {
  const out = await new Deno.Command("psql", {
    args: [url, "-q", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `psql: ${new TextDecoder().decode(out.stderr).trim().slice(-600)}`,
    );
  }
  return new TextDecoder().decode(out.stdout).trim();
}

/**
 * The command line `deno task COMMAND ARGS` runs with these settings: the
 * script with exactly the launcher's grants and memory flags.
 *
 * @param command The task, e.g. `backup`.
 * @param args Its arguments.
 * @param env Its settings.
 * @returns The command line.
 */
export function memkeep(
  command: string,
  args: string[],
  env: Record<string, string>,
): string[] {
  return [
    DENO,
    ...childArgs(command, args, (name) => env[name], { cwd: ROOT }),
  ];
}
