/**
 * A copy of the project in a temporary directory, as a user's clean checkout
 * would be (with `node_modules` installed), so scripts can be spawned with
 * exactly their production permissions, whose paths are relative to the
 * working directory, without touching the developer's `./data`.
 *
 * @module
 */

import { childArgs } from "../lib/cli/launcher.ts";
import { ENV_SETTINGS } from "../lib/store/config.ts";
import { ROOT, runCommand, shellEnv } from "./_helpers.ts";

/** A checkout to run commands in. */
export interface Checkout {
  /** Its directory. */
  readonly dir: string;
  /**
   * Runs `deno ARGS` in the checkout with the given memkeep settings (and
   * none inherited from the developer's environment).
   */
  deno(
    args: string[],
    env?: Record<string, string>,
  ): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Removes it. */
  remove(): Promise<void>;
}

const COPIED = [
  "deno.json",
  "deno.lock",
  "mod.ts",
  "lib",
  "scripts",
  "node_modules",
  "tests/testdata",
];

/**
 * Copies the project into a new temporary directory.
 *
 * @returns The checkout.
 */
export async function makeCheckout(): Promise<Checkout> {
  const dir = await Deno.makeTempDir({ prefix: "memkeep-checkout-" });
  await Deno.mkdir(`${dir}/tests`);
  for (const path of COPIED) {
    // node_modules (270 MB) is linked file by file, not copied: 1 s instead
    // of 10 for each checkout. Nothing writes into a package; Deno's own
    // files at the top of node_modules/.deno are copied so that the
    // checkout's deno never rewrites the developer's.
    const linked = path === "node_modules" &&
      (await runCommand("cp", ["-al", `${ROOT}/${path}`, `${dir}/${path}`]))
          .code === 0;
    if (linked) {
      for await (const entry of Deno.readDir(`${dir}/node_modules/.deno`)) {
        if (!entry.isFile) continue;
        const file = `${dir}/node_modules/.deno/${entry.name}`;
        await Deno.remove(file);
        // Another deno's lock files come and go (`.deno.lock.poll`): one
        // gone since the listing is not copied.
        await Deno.copyFile(`${ROOT}/node_modules/.deno/${entry.name}`, file)
          .catch((error) => {
            if (!(error instanceof Deno.errors.NotFound)) throw error;
          });
      }
      continue;
    }
    await Deno.remove(`${dir}/${path}`, { recursive: true }).catch(() => {});
    const copy = await runCommand("cp", [
      "-r",
      `${ROOT}/${path}`,
      `${dir}/${path}`,
    ]);
    if (copy.code !== 0) throw new Error(`cp ${path}: ${copy.stderr}`);
  }
  const base = shellEnv();
  for (const name of [...ENV_SETTINGS, "TEST_DATABASE_URL"]) delete base[name];
  return {
    dir,
    deno: (args, env = {}) =>
      runCommand(Deno.execPath(), args, {
        cwd: dir,
        env: { ...base, ...env, NO_COLOR: "1" },
        clearEnv: true,
      }),
    remove: () => Deno.remove(dir, { recursive: true }),
  };
}

/**
 * The arguments `deno task COMMAND ARGS…` runs its script with in a
 * checkout: the launcher's exact grants, for spawning the script itself
 * (to kill it, or to preload a probe).
 *
 * @param checkout The checkout.
 * @param command The command, e.g. `restore`.
 * @param args Its arguments.
 * @param env The settings.
 * @returns The arguments after `deno`.
 */
export function productionArgs(
  checkout: Checkout,
  command: string,
  args: string[],
  env: Record<string, string> = {},
): string[] {
  return childArgs(command, args, (name) => env[name], { cwd: checkout.dir });
}

/** A command running on a pseudo-terminal. */
export interface OnTerminal {
  /** Types text (`\x03` is Ctrl-C). */
  type(text: string): Promise<void>;
  /** Resolves when it has ended: its exit code and all it showed. */
  readonly done: Promise<{ code: number; screen: string }>;
}

/**
 * Runs a shell command line in the checkout on a pseudo-terminal
 * (util-linux `script`), as a person at a terminal would.
 *
 * @param checkout The checkout.
 * @param command The command line, for `sh`.
 * @param env memkeep settings (nothing else of the developer's is passed).
 * @returns The running command.
 */
export function onTerminal(
  checkout: Checkout,
  command: string,
  env: Record<string, string> = {},
): OnTerminal {
  const base = shellEnv();
  for (const name of [...ENV_SETTINGS, "TEST_DATABASE_URL"]) delete base[name];
  const child = new Deno.Command("script", {
    args: ["-qec", command, "/dev/null"],
    cwd: checkout.dir,
    env: { ...base, ...env, NO_COLOR: "1" },
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  return {
    type: (text) => writer.write(new TextEncoder().encode(text)),
    done: (async () => {
      const out = await child.output().finally(() =>
        writer.close().catch(() => {})
      );
      return { code: out.code, screen: new TextDecoder().decode(out.stdout) };
    })(),
  };
}

/**
 * The lines a command printed on stderr, without Deno's own `Task …` echo.
 *
 * @param stderr Captured stderr.
 * @returns The command's own lines.
 */
export function ownLines(stderr: string): string[] {
  return stderr.split("\n").filter((l) =>
    l.trim() !== "" && !l.startsWith("Task ")
  );
}
