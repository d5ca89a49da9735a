#!/usr/bin/env -S deno run -q --allow-env=DATABASE_URL,RELATIONSHIPS_DB,BACKUP_DIR
/**
 * `deno run -q -P=grants scripts/grants.ts COMMAND`
 *
 * Prints the permission flags COMMAND needs beyond its permission set in
 * `deno.json`, for the current settings: network access to the database
 * host only when `DATABASE_URL` is set, and read/write access to a
 * relationship store or backup directory outside the defaults. Prints
 * nothing when the permission set suffices. The tasks splice its output into
 * the command line, so `DATABASE_URL=… deno task backup` is granted exactly
 * `--allow-net=host:port` and no more.
 *
 * @module
 */

import denoJson from "../deno.json" with { type: "json" };
import { netGrant } from "../lib/connection.ts";
import * as log from "../lib/log.ts";

interface PermissionSet {
  read?: string[] | boolean;
  write?: string[] | boolean;
}

const SETS = denoJson.permissions as unknown as Record<string, PermissionSet>;

/**
 * The extra flags for a command.
 *
 * @param command A permission set name, e.g. `backup`.
 * @param env Reads an environment variable.
 * @returns The flags; empty when none are needed.
 */
export function grantsFor(
  command: string,
  env: (name: string) => string | undefined,
): string[] {
  const set = SETS[command];
  if (
    !set || !Array.isArray(set.read ?? []) || !Array.isArray(set.write ?? [])
  ) return [];
  const baseRead = (set.read ?? []) as string[];
  const baseWrite = (set.write ?? []) as string[];
  const flags: string[] = [];
  const url = env("DATABASE_URL")?.trim();
  if (url) {
    const host = netGrant(url);
    if (host) flags.push(`--allow-net=${host}`);
  }
  const read = [...baseRead];
  const write = [...baseWrite];
  const covered = (list: string[], path: string) =>
    list.some((p) =>
      normalise(path) === normalise(p) ||
      normalise(path).startsWith(normalise(p) + "/")
    );
  const rel = env("RELATIONSHIPS_DB")?.trim();
  if (rel && !/[\s,]/.test(rel) && !covered(read, rel)) read.push(rel);
  const dir = env("BACKUP_DIR")?.trim();
  if (dir && !/[\s,]/.test(dir) && baseWrite.length > 0) {
    if (!covered(read, dir)) read.push(dir);
    if (!covered(write, dir)) write.push(dir);
  }
  if (read.length !== baseRead.length) {
    flags.push(`--allow-read=${read.join(",")}`);
  }
  if (write.length !== baseWrite.length) {
    flags.push(`--allow-write=${write.join(",")}`);
  }
  return flags;
}

function normalise(path: string): string {
  return path.replace(/^\.\//, "").replace(/\/+$/, "");
}

/**
 * Prints the flags.
 *
 * @param args `[COMMAND]`.
 * @returns Always 0: when in doubt it prints nothing, and the command itself
 * reports what it cannot do.
 */
export function main(args: string[]): Promise<number> {
  const env = (name: string) => {
    try {
      return Deno.env.get(name);
    } catch {
      return undefined;
    }
  };
  const flags = grantsFor(args[0] ?? "", env);
  if (flags.length > 0) log.info(flags.join(" "));
  return Promise.resolve(0);
}

if (import.meta.main) Deno.exitCode = await main(Deno.args);
