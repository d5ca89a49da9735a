/**
 * The command line of every memkeep command, in one table: its script, its
 * flags (the same definitions the script parses with), which of them are
 * paths, which environment variables it reads, and whether it handles data
 * (and so runs with the memory flags). The launcher (`scripts/run.ts`) reads
 * this table to compute a command's grants from its actual command line;
 * each script reads its own row to parse its flags.
 *
 * @module
 */

import type { ParseArgsConfig } from "node:util";
import { ENV_SETTINGS } from "../store/config.ts";
import { S3_ENV } from "../repo/s3.ts";

/** Flag definitions, as for `node:util` `parseArgs`. */
export type Flags = NonNullable<ParseArgsConfig["options"]>;

/** One command's command line. */
export interface CommandLine {
  /** The script, relative to the project directory. */
  readonly script: string;
  /** Its flags. */
  readonly flags: Flags;
  /** How many positional arguments it takes. */
  readonly positionals: number;
  /**
   * The flags (by name) and positionals (by index) that are paths, which the
   * launcher resolves from where the user typed them.
   */
  readonly paths: readonly (string | number)[];
  /** The environment variables it reads. */
  readonly env: readonly string[];
  /** Variables a dependency asks for that it is refused quietly. */
  readonly ignoreEnv?: readonly string[];
  /** Whether it streams the data set (then it runs with {@linkcode MEMORY_FLAGS}). */
  readonly data: boolean;
}

/**
 * V8 limits for the commands that stream the data set: a 2 MB young
 * generation (objects die young here: one record at a time) and a 192 MB
 * heap. Memory stays bounded without them (every reader and writer streams);
 * with them the garbage collector keeps the peak near the working set.
 */
export const MEMORY_FLAGS =
  "--v8-flags=--max-semi-space-size=4,--max-old-space-size=192";

const help = { type: "boolean", short: "h" } as const;
const json = { type: "boolean" } as const;
const string = { type: "string" } as const;
const boolean = { type: "boolean" } as const;

/** What the store settings read from the environment. */
const STORE_ENV = ENV_SETTINGS;
/** postgres.js asks for these; the URL decides instead. */
const PG_IGNORED = ["PGAPPNAME", "PGTARGETSESSIONATTRS"] as const;
const GITHUB_ENV = [
  "GITHUB_TOKEN",
  "GITHUB_REPOSITORY",
  "GITHUB_API_URL",
] as const;
/** The keys that open an encrypted backup or repository. */
const AGE_ENV = ["AGE_IDENTITY_FILE", "AGE_PASSPHRASE"] as const;
/**
 * Name the repository when `--repo` is not given, reach a bucket, open an
 * encrypted one.
 */
const REPO_ENV = ["MEMKEEP_REPO", ...S3_ENV, ...AGE_ENV] as const;

/** Every command, by its task name. */
export const COMMANDS = {
  demo: {
    script: "scripts/demo.ts",
    flags: {
      memories: string,
      relationships: string,
      dims: string,
      output: string,
      json,
      help,
    },
    positionals: 0,
    paths: ["output"],
    env: [],
    data: true,
  },
  backup: {
    script: "scripts/backup.ts",
    flags: {
      output: string,
      repo: string,
      table: string,
      user: string,
      "no-vectors": boolean,
      "no-verify": boolean,
      json,
      help,
    },
    positionals: 0,
    paths: ["output", "repo"],
    env: [...STORE_ENV, ...REPO_ENV, "AGE_RECIPIENTS"],
    ignoreEnv: PG_IGNORED,
    data: true,
  },
  export: {
    script: "scripts/export.ts",
    flags: {
      format: string,
      output: string,
      repo: string,
      snapshot: string,
      verify: boolean,
      "no-vectors": boolean,
      user: string,
      table: string,
      json,
      help,
    },
    positionals: 0,
    paths: ["output", "repo"],
    env: [...STORE_ENV, ...REPO_ENV],
    ignoreEnv: PG_IGNORED,
    data: true,
  },
  verify: {
    script: "scripts/verify.ts",
    flags: {
      repo: string,
      snapshot: string,
      "read-data": boolean,
      "read-data-subset": string,
      json,
      help,
    },
    positionals: 1,
    paths: [0, "repo"],
    env: [...REPO_ENV],
    data: true,
  },
  snapshots: {
    script: "scripts/snapshots.ts",
    flags: { repo: string, json, help },
    positionals: 0,
    paths: ["repo"],
    env: [...REPO_ENV],
    data: false,
  },
  restore: {
    script: "scripts/restore.ts",
    flags: {
      source: string,
      repo: string,
      snapshot: string,
      "dry-run": boolean,
      force: boolean,
      "conflict-mode": string,
      table: string,
      "allow-missing-vectors": boolean,
      json,
      help,
    },
    positionals: 0,
    paths: ["source", "repo"],
    env: [...STORE_ENV, ...REPO_ENV],
    ignoreEnv: PG_IGNORED,
    data: true,
  },
  prune: {
    script: "scripts/prune.ts",
    flags: {
      dir: string,
      repo: string,
      artifacts: boolean,
      "keep-daily": string,
      "keep-weekly": string,
      "keep-monthly": string,
      "dry-run": boolean,
      force: boolean,
      now: string,
      json,
      help,
    },
    positionals: 0,
    paths: ["dir", "repo"],
    env: ["BACKUP_DIR", ...REPO_ENV, ...GITHUB_ENV],
    data: false,
  },
  "fetch-artifact": {
    script: "scripts/fetch_artifact.ts",
    flags: { out: string, json, help },
    positionals: 1,
    paths: ["out"],
    env: GITHUB_ENV,
    data: false,
  },
  status: {
    script: "scripts/status.ts",
    flags: {
      dir: string,
      artifacts: boolean,
      "max-age": string,
      now: string,
      json,
      help,
    },
    positionals: 0,
    paths: ["dir"],
    env: ["BACKUP_DIR", ...GITHUB_ENV],
    data: false,
  },
  publish: {
    script: "scripts/publish.ts",
    flags: { backup: string, json, help },
    positionals: 0,
    paths: ["backup"],
    env: [
      "BACKUP_DIR",
      "AGE_RECIPIENTS",
      "GITHUB_OUTPUT",
      "GITHUB_STEP_SUMMARY",
    ],
    data: false,
  },
  alert: {
    script: "scripts/alert.ts",
    flags: { json, help },
    positionals: 0,
    paths: [],
    env: [
      ...GITHUB_ENV,
      "GITHUB_SERVER_URL",
      "GITHUB_RUN_ID",
      "GITHUB_WORKFLOW",
    ],
    data: false,
  },
  schedule: {
    script: "scripts/schedule.ts",
    flags: {
      install: boolean,
      uninstall: boolean,
      print: boolean,
      systemd: boolean,
      at: string,
      "env-file": string,
      help,
    },
    positionals: 0,
    paths: ["env-file"],
    env: [],
    data: false,
  },
} as const satisfies Record<string, CommandLine>;

/** A command's task name. */
export type CommandName = keyof typeof COMMANDS;

/**
 * Whether a name is a command.
 *
 * @param name A task name, e.g. `fetch-artifact`.
 * @returns `true` for the commands in {@linkcode COMMANDS}.
 */
export function isCommand(name: string): name is CommandName {
  return Object.hasOwn(COMMANDS, name);
}
