#!/usr/bin/env -S deno run -q --allow-env=AGE_IDENTITY_FILE,BACKUP_DIR,DATABASE_URL,GITHUB_API_URL,GITHUB_OUTPUT,GITHUB_STEP_SUMMARY,GITHUB_TOKEN,RELATIONSHIPS_DB
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
import { certificateGrant, netGrant } from "../lib/connection.ts";
import { parentDir } from "../lib/_fs.ts";
import * as log from "../lib/log.ts";

interface PermissionSet {
  read?: string[] | boolean;
  write?: string[] | boolean;
  net?: string[] | boolean;
}

const SETS = denoJson.permissions as unknown as Record<string, PermissionSet>;

/** What each command reads or writes beyond its permission set, by setting. */
const NEEDS: Record<
  string,
  { read: string[]; write: string[]; net: "database" | "github" | "none" }
> = {
  backup: {
    read: ["RELATIONSHIPS_DB", "BACKUP_DIR"],
    write: ["BACKUP_DIR"],
    net: "database",
  },
  // A restore writes the relationship store, its journal and, when it
  // creates the store, a temporary file beside it: the whole directory.
  restore: { read: [], write: ["dir:RELATIONSHIPS_DB"], net: "database" },
  export: { read: ["RELATIONSHIPS_DB"], write: [], net: "database" },
  prune: { read: ["BACKUP_DIR"], write: ["BACKUP_DIR"], net: "github" },
  "fetch-artifact": { read: [], write: [], net: "github" },
  status: { read: ["BACKUP_DIR"], write: [], net: "github" },
  alert: { read: [], write: [], net: "github" },
  // The runner's files for step outputs and the job summary.
  publish: {
    read: ["BACKUP_DIR"],
    write: ["GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"],
    net: "none",
  },
  // To check an encrypted backup's contents: the identity file.
  verify: { read: ["AGE_IDENTITY_FILE"], write: [], net: "none" },
};

/** The `host:port` of the GitHub API, when a token is set. */
function githubHost(
  env: (name: string) => string | undefined,
): string | undefined {
  if (!env("GITHUB_TOKEN")?.trim()) return undefined;
  try {
    const url = new URL(
      env("GITHUB_API_URL")?.trim() || "https://api.github.com",
    );
    return `${url.hostname}:${
      url.port || (url.protocol === "http:" ? "80" : "443")
    }`;
  } catch {
    return undefined;
  }
}

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
  const needs = NEEDS[command];
  if (!set || !needs) return [];
  const flags: string[] = [];
  const url = env("DATABASE_URL")?.trim();
  const host = needs.net === "github"
    ? githubHost(env)
    : needs.net === "database" && url
    ? netGrant(url)
    : undefined;
  if (host) {
    // A flag replaces the set's list: repeat the set's hosts.
    const base = Array.isArray(set.net) ? set.net : [];
    flags.push(
      `--allow-net=${[...base.filter((h) => h !== host), host].join(",")}`,
    );
  }
  const pathOf = (need: string): string | undefined => {
    const [dirOnly, name] = need.startsWith("dir:")
      ? [true, need.slice(4)]
      : [false, need];
    const value = env(name)?.trim();
    if (!value || !grantable(value)) return undefined;
    return dirOnly ? parentDir(value) : value;
  };
  for (const kind of ["read", "write"] as const) {
    const base = set[kind];
    if (!Array.isArray(base)) continue; // `true`: everything is granted already
    const list = [...base];
    const paths = needs[kind].map(pathOf);
    // The CA certificate `sslrootcert` names, read when connecting.
    if (kind === "read" && needs.net === "database" && url) {
      paths.push(certificateGrant(url));
    }
    for (const path of paths) {
      if (path === undefined || !grantable(path)) continue;
      if (!covered(list, path)) list.push(path);
    }
    if (list.length !== base.length) {
      flags.push(`--allow-${kind}=${list.join(",")}`);
    }
  }
  return flags;
}

/**
 * Whether a path can go into a flag's list: a comma would split it, so such
 * a path is left to the command, which then names the grant it misses.
 */
function grantable(path: string): boolean {
  return !/[\s,]/.test(path);
}

function covered(list: string[], path: string): boolean {
  return list.some((p) =>
    normalise(path) === normalise(p) ||
    normalise(path).startsWith(normalise(p) + "/")
  );
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
