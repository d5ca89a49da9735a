/**
 * A copy of the project in a temporary directory, as a user's clean checkout
 * would be (with `node_modules` installed), so scripts can be spawned with
 * exactly their production permissions, whose paths are relative to the
 * working directory, without touching the developer's `./data`.
 *
 * @module
 */

import { ENV_SETTINGS } from "../lib/config.ts";
import { ROOT, runCommand } from "./_helpers.ts";

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
    const copy = await runCommand("cp", [
      "-r",
      `${ROOT}/${path}`,
      `${dir}/${path}`,
    ]);
    if (copy.code !== 0) throw new Error(`cp ${path}: ${copy.stderr}`);
  }
  const base = Deno.env.toObject();
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
