/**
 * Least privilege from the actual command line: what one run of a command
 * reads, writes and connects to, computed from its flags and settings, as
 * Deno permission flags. The launcher runs the command with exactly these.
 *
 * | command | reads | writes | network |
 * |---|---|---|---|
 * | demo | the embedded store's files, `./data`, `--output` | `./data`, `--output` | none |
 * | backup | the memory store, the relationship store, the backup directory (or `--repo`) | the backup directory (or `--repo`) | the database host |
 * | export | the memory store, the relationship store, `--output` | `--output` and its work directory | the database host |
 * | verify | `DIR` (or `--repo`), `AGE_IDENTITY_FILE` | nothing | none |
 * | snapshots | `--repo` | nothing | none |
 * | restore | `--source` (or `--repo`), the stores, `AGE_IDENTITY_FILE` | the stores (and `--repo`, for its scratch copy) | the database host |
 * | prune, status | the backup directory (prune: or `--repo`) | (prune) the same | the GitHub API, with `--artifacts` |
 * | fetch-artifact | `--out` | `--out` | the GitHub API and its artifact storage |
 * | publish | the backup directory, `--backup`, `./artifacts` | `./artifacts`, the runner's output files | none |
 * | alert | nothing | nothing | the GitHub API |
 * | schedule | `--env-file` | nothing | none; runs `crontab` |
 *
 * "The memory store" is the database host (and the CA file `sslrootcert`
 * names) when `DATABASE_URL` is set, else the embedded store `./data/pglite`
 * and the PGlite packages' own files.
 *
 * @module
 */

import {
  ARTIFACTS_DIR,
  databaseUrlOf,
  DEFAULT_BACKUP_DIR,
  DEFAULT_DOWNLOADS_DIR,
  DEFAULT_EXPORT_DIR,
  DEFAULT_PGLITE_DIR,
  resolveBackupDir,
  resolveRelationshipStore,
} from "../store/config.ts";
import {
  certificateGrant,
  netGrant,
  parseDatabaseUrl,
} from "../store/connection.ts";
import { UsageError } from "../errors.ts";
import {
  exportWorkDir,
  restoreScratch,
  restoringCopy,
} from "../format/layout.ts";
import { githubApiUrl } from "../github/client.ts";
import { DEFAULT_ENV_FILE } from "../schedule/schedule.ts";
import { parentDir } from "../util/fs.ts";
import { isRemote, repoLocation, settingOf } from "../repo/location.ts";
import { parseS3Location, s3Host } from "../repo/s3.ts";
import { type CommandName, COMMANDS } from "./commands.ts";

/** What one run of a command may touch. */
export interface Grants {
  /** Paths it reads. */
  readonly read: readonly string[];
  /** Paths it writes. */
  readonly write: readonly string[];
  /** `host:port`s it connects to. */
  readonly net: readonly string[];
  /** Environment variables it reads. */
  readonly env: readonly string[];
  /** Environment variables it is refused quietly. */
  readonly ignoreEnv: readonly string[];
  /** Programs it runs. */
  readonly run: readonly string[];
}

/** A parsed command line. */
export interface Invocation {
  /** The command. */
  readonly command: CommandName;
  /** Its flags' values. */
  readonly values: Readonly<Record<string, string | boolean | undefined>>;
  /** Its positional arguments. */
  readonly positionals: readonly string[];
}

/** Reads an environment variable. */
export type Env = (name: string) => string | undefined;

/** The GitHub hosts an artifact download is redirected to. */
export const ARTIFACT_STORAGE = [
  "*.blob.core.windows.net:443",
  "*.actions.githubusercontent.com:443",
] as const;

interface Access {
  read?: (string | undefined)[];
  write?: (string | undefined)[];
  net?: (string | undefined)[];
  run?: string[];
}

/**
 * What a command line needs.
 *
 * @param invocation The parsed command line.
 * @param env Reads the settings (`DATABASE_URL`, `RELATIONSHIPS_DB`,
 * `BACKUP_DIR`, `AGE_IDENTITY_FILE`, `GITHUB_API_URL`, `GITHUB_OUTPUT`,
 * `GITHUB_STEP_SUMMARY`); no other variable is read.
 * @returns The grants.
 * @throws {UsageError} When a setting the grants depend on is not valid
 * (a `DATABASE_URL` that does not parse, an empty path).
 */
export function grantsFor(invocation: Invocation, env: Env): Grants {
  const { command, values, positionals } = invocation;
  const text = (flag: string): string | undefined => {
    const value = values[flag];
    return typeof value === "string" ? value : undefined;
  };
  const line = COMMANDS[command];
  const access = ACCESS[command]({
    text,
    flag: (f) => values[f] === true,
    positionals,
    env,
  });
  const list = (paths: (string | undefined)[] | undefined) =>
    unique((paths ?? []).filter((p): p is string => p !== undefined));
  return {
    read: list([...(access.read ?? []), ...(access.write ?? [])]),
    write: list(access.write),
    net: list(access.net),
    env: [...line.env],
    ignoreEnv: [...("ignoreEnv" in line ? line.ignoreEnv : [])],
    run: [...(access.run ?? [])],
  };
}

interface Given {
  text(flag: string): string | undefined;
  flag(flag: string): boolean;
  readonly positionals: readonly string[];
  readonly env: Env;
}

const ACCESS: Record<CommandName, (given: Given) => Access> = {
  demo: ({ text }) => ({
    read: pgliteFiles(),
    write: [
      "./data",
      nonEmpty(text("output"), "--output") ?? DEFAULT_BACKUP_DIR,
    ],
  }),
  backup: ({ text, env }) => {
    const repo = repoLocation(
      text("repo"),
      text("output") === undefined ? env : () => undefined,
    );
    const backupDir = resolveBackupDir(text("output"), "--output", env);
    return merge(
      memoryStore(env),
      repo === undefined
        ? { read: [resolveRelationshipStore(env).path], write: [backupDir] }
        : merge(
          { read: [resolveRelationshipStore(env).path] },
          repoAccess(repo, text("repo"), env, "write", backupDir),
        ),
    );
  },
  export: ({ text, env }) => {
    const output = nonEmpty(text("output"), "--output") ?? DEFAULT_EXPORT_DIR;
    if (text("repo") !== undefined || text("snapshot") !== undefined) {
      // As json, a snapshot written out as a backup directory in
      // --output; as csv or markdown, an export in --output.
      const repo = repoLocation(text("repo"), env);
      const json = (text("format") ?? "json") === "json";
      return merge(
        { write: json ? [output] : [output, exportWorkDir(output)] },
        repo === undefined ? {} : repoAccess(repo, text("repo"), env, "read"),
      );
    }
    return merge(memoryStore(env), {
      read: [resolveRelationshipStore(env).path],
      write: [output, exportWorkDir(output)],
    });
  },
  verify: ({ text, positionals, env }) => {
    const repo = repoLocation(
      text("repo"),
      positionals[0] ? () => undefined : env,
    );
    return merge(
      { read: [positionals[0], setting(env, "AGE_IDENTITY_FILE")] },
      repo === undefined ? {} : repoAccess(repo, text("repo"), env, "read"),
    );
  },
  snapshots: ({ text, env }) => {
    const repo = repoLocation(text("repo"), env);
    return repo === undefined
      ? {}
      : repoAccess(repo, text("repo"), env, "read");
  },
  restore: ({ text, env }) => {
    const source = nonEmpty(text("source"), "--source");
    // A snapshot is written out as a backup in the repository's scratch
    // directory, then restored like any backup.
    const repo = repoLocation(text("repo"), source ? () => undefined : env);
    return merge(
      merge(memoryStore(env), {
        read: [source, setting(env, "AGE_IDENTITY_FILE")],
        write: relationshipStoreFiles(resolveRelationshipStore(env).path),
      }),
      repo === undefined ? {} : repoAccess(
        repo,
        text("repo"),
        env,
        "write",
        resolveBackupDir(undefined, "BACKUP_DIR", env),
      ),
    );
  },
  prune: ({ text, flag, env }) => {
    if (flag("artifacts")) return { net: [githubHost(env)] };
    const repo = repoLocation(
      text("repo"),
      text("dir") === undefined ? env : () => undefined,
    );
    return repo === undefined
      ? { write: [resolveBackupDir(text("dir"), "--dir", env)] }
      : repoAccess(repo, text("repo"), env, "write");
  },
  status: ({ text, flag, env }) =>
    flag("artifacts")
      ? { net: [githubHost(env)] }
      : { read: [resolveBackupDir(text("dir"), "--dir", env)] },
  "fetch-artifact": ({ text, env }) => ({
    write: [nonEmpty(text("out"), "--out") ?? DEFAULT_DOWNLOADS_DIR],
    net: [githubHost(env), ...ARTIFACT_STORAGE],
  }),
  publish: ({ text, env }) => ({
    read: [
      resolveBackupDir(undefined, "BACKUP_DIR", env),
      nonEmpty(text("backup"), "--backup"),
    ],
    write: [
      ARTIFACTS_DIR,
      setting(env, "GITHUB_OUTPUT"),
      setting(env, "GITHUB_STEP_SUMMARY"),
    ],
  }),
  alert: ({ env }) => ({ net: [githubHost(env)] }),
  schedule: ({ text }) => ({
    read: [nonEmpty(text("env-file"), "--env-file") ?? DEFAULT_ENV_FILE],
    run: ["crontab"],
  }),
};

/**
 * A repository: its directory (read, or written), or for a bucket its
 * host, and the local directory a command works in beside it (`scratch`:
 * the relationship copy of a backup, the backup a restore writes out).
 */
function repoAccess(
  repo: string,
  flag: string | undefined,
  env: Env,
  mode: "read" | "write",
  scratch?: string,
): Access {
  const keys = setting(env, "AGE_IDENTITY_FILE");
  if (!isRemote(repo)) {
    return mode === "read"
      ? { read: [repo, keys] }
      : { read: [keys], write: [repo] };
  }
  const s3 = parseS3Location(repo, env, settingOf(flag));
  return { net: [s3Host(s3)], read: [keys], write: scratch ? [scratch] : [] };
}

/** The memory store: the database host, or the embedded store's files. */
function memoryStore(env: Env): Access {
  const url = databaseUrlOf(env);
  if (url === undefined) {
    return {
      read: pgliteFiles(),
      write: [DEFAULT_PGLITE_DIR],
    };
  }
  // Validates the URL as the command will (one line, password redacted).
  parseDatabaseUrl(url, "DATABASE_URL", { readCertificate: false });
  return { net: [netGrant(url)], read: [certificateGrant(url)] };
}

/**
 * What a restore writes beside the relationship store: the store's
 * directory (SQLite's journal, the copy a new store is written to first,
 * the scratch directory for a zip), or only those files when the store sits
 * in the project's root or the file system's.
 */
function relationshipStoreFiles(path: string): string[] {
  const dir = parentDir(path);
  return dir === "." || dir === "/" || dir === "./"
    ? [path, restoringCopy(path), restoreScratch(path)]
    : [dir];
}

/**
 * The directories PGlite and its pgvector extension read their `.wasm`,
 * `.data` and extension files from at run time; not the rest of
 * `node_modules`.
 */
export function pgliteFiles(): string[] {
  return ["@electric-sql/pglite", "@electric-sql/pglite-pgvector"].map(
    (name) => {
      const entry = new URL(import.meta.resolve(name)).pathname;
      const at = entry.lastIndexOf(`/node_modules/${name}/`);
      const dir = entry.slice(0, at + `/node_modules/${name}`.length);
      return relativeToProject(dir);
    },
  );
}

const PROJECT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

/** A path in the project as `./…`, as the permission sets write it. */
function relativeToProject(path: string): string {
  return path.startsWith(`${PROJECT}/`)
    ? `./${path.slice(PROJECT.length + 1)}`
    : path;
}

function githubHost(env: Env): string {
  const url = new URL(githubApiUrl(env));
  return `${url.hostname}:${
    url.port || (url.protocol === "http:" ? "80" : "443")
  }`;
}

function setting(env: Env, name: string): string | undefined {
  const value = env(name)?.trim();
  return value ? value : undefined;
}

function nonEmpty(value: string | undefined, flag: string): string | undefined {
  if (value === undefined) return undefined;
  if (value.trim() === "") {
    throw new UsageError(flag, `Invalid ${flag}: it is empty`);
  }
  return value;
}

function merge(a: Access, b: Access): Access {
  return {
    read: [...(a.read ?? []), ...(b.read ?? [])],
    write: [...(a.write ?? []), ...(b.write ?? [])],
    net: [...(a.net ?? []), ...(b.net ?? [])],
    run: [...(a.run ?? []), ...(b.run ?? [])],
  };
}

function unique(paths: string[]): string[] {
  return [...new Set(paths)];
}

/**
 * The Deno permission flags for grants.
 *
 * @param grants What to grant.
 * @returns `--allow-read=…` and the like; nothing for an empty list.
 * @throws {UsageError} For a path with a comma, which Deno's flags cannot
 * name (they split on commas).
 */
export function permissionFlags(grants: Grants): string[] {
  const flags: string[] = [];
  const add = (flag: string, items: readonly string[]) => {
    if (items.length === 0) return;
    for (const item of items) {
      if (item.includes(",")) {
        throw new UsageError(
          item,
          `Cannot grant access to ${
            JSON.stringify(item)
          }: Deno's permission flags cannot name a path with a comma; rename it, or run the script with deno run -A (README "Permissions")`,
        );
      }
    }
    flags.push(`${flag}=${items.join(",")}`);
  };
  add("--allow-read", grants.read);
  add("--allow-write", grants.write);
  add("--allow-net", grants.net);
  add("--allow-env", grants.env);
  add("--ignore-env", grants.ignoreEnv);
  add("--allow-run", grants.run);
  return flags;
}
