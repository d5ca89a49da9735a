/**
 * Settings shared by every command. Flags override environment variables,
 * which override defaults; one zod schema validates the result and names the
 * bad setting in its error.
 *
 * | setting | flag | env | default |
 * |---|---|---|---|
 * | Postgres URL | | `DATABASE_URL` | unset: embedded PGlite at `./data/pglite` |
 * | memory table | `--table` | `MEMORY_TABLE` | `memories` |
 * | relationship store | | `RELATIONSHIPS_DB` | `./data/relationships.db` |
 * | user filter | `--user` | `MEMORY_USER_ID` | none |
 * | backup directory | `--output` / `--dir` | `BACKUP_DIR` | `./backups` |
 *
 * @module
 */

import { z } from "zod";
import { type ConnectionSettings, parseDatabaseUrl } from "./connection.ts";
import { UsageError } from "../errors.ts";

/** Where the embedded store lives unless told otherwise. */
export const DEFAULT_PGLITE_DIR = "./data/pglite";
/** Where the relationship store lives unless told otherwise. */
export const DEFAULT_RELATIONSHIPS_DB = "./data/relationships.db";
/** Where backups go unless told otherwise. */
export const DEFAULT_BACKUP_DIR = "./backups";
/** Where exports go unless told otherwise. */
export const DEFAULT_EXPORT_DIR = "./exports/memory";
/** Where fetch-artifact writes unless told otherwise. */
export const DEFAULT_DOWNLOADS_DIR = "./downloads";
/** Where publish writes the encrypted artifact. */
export const ARTIFACTS_DIR = "./artifacts";
/** The mem0 table name unless told otherwise. */
export const DEFAULT_TABLE = "memories";

/** The environment variables memkeep reads. */
export const ENV_SETTINGS = [
  "DATABASE_URL",
  "MEMORY_TABLE",
  "RELATIONSHIPS_DB",
  "MEMORY_USER_ID",
  "BACKUP_DIR",
  "PGPASSWORD",
] as const;

/** A table name as a schema and a name, both unquoted. */
export interface TableName {
  /** The schema, or `undefined` for the connection's search path. */
  readonly schema: string | undefined;
  /** The table name. */
  readonly name: string;
}

/** Where the memories are. */
export type MemoryStoreTarget =
  | { readonly kind: "postgres"; readonly connection: ConnectionSettings }
  | { readonly kind: "pglite"; readonly dataDir: string };

/** Where the relationships are. */
export interface RelationshipStoreTarget {
  /** Path of the SQLite file. */
  readonly path: string;
  /** Whether the path was configured: then it must exist. */
  readonly explicit: boolean;
}

/** The resolved settings. */
export interface Config {
  /** The memory store. */
  readonly store: MemoryStoreTarget;
  /** The memory table. */
  readonly table: TableName;
  /** The relationship store. */
  readonly relationships: RelationshipStoreTarget;
  /** Only this user's memories, when set. */
  readonly userId: string | undefined;
  /** The backup directory. */
  readonly backupDir: string;
}

/** Settings given as flags; each overrides its environment variable. */
export interface ConfigFlags {
  /** `--table`. */
  readonly table?: string | undefined;
  /** `--user`. */
  readonly user?: string | undefined;
  /** `--output` or `--dir`. */
  readonly backupDir?: string | undefined;
  /** The flag name that carried `backupDir`, for messages. */
  readonly backupDirFlag?: string | undefined;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;

const tableSchema = z.string().trim().refine(
  (value) =>
    value.split(".").length <= 2 &&
    value.split(".").every((part) => IDENTIFIER.test(part)),
  "must be a table name like memories or public.memories (letters, digits, _ and $)",
);
const pathSchema = z.string().trim().min(1, "must not be empty").refine(
  (value) => !value.includes("\0"),
  "must not contain a NUL character",
);
const userSchema = z.string().min(1, "must not be empty").max(
  512,
  "must be at most 512 characters",
)
  .refine(
    (value) => !/\p{Cc}/u.test(value),
    "must not contain control characters",
  );

/**
 * Splits `schema.table` into its parts.
 *
 * @param value A validated table name.
 * @returns The schema (if given) and name.
 */
export function parseTableName(value: string): TableName {
  const parts = value.trim().split(".");
  return parts.length === 2
    ? { schema: parts[0], name: parts[1]! }
    : { schema: undefined, name: parts[0]! };
}

/**
 * Formats a table name for messages: `public.memories` or `memories`.
 *
 * @param table The table name.
 * @returns The name as a person would write it.
 */
export function formatTableName(table: TableName): string {
  return table.schema === undefined
    ? table.name
    : `${table.schema}.${table.name}`;
}

function check<T>(schema: z.ZodType<T>, value: unknown, setting: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const reason = result.error.issues[0]?.message ?? "is not valid";
  const shown = typeof value === "string" ? ` "${value}"` : "";
  throw new UsageError(setting, `Invalid ${setting}${shown}: ${reason}`);
}

function setting(
  env: (name: string) => string | undefined,
  name: string,
): string | undefined {
  const value = env(name);
  return value === undefined || value.trim() === "" ? undefined : value;
}

/**
 * The backup directory: the flag, else `BACKUP_DIR`, else `./backups`,
 * trimmed and checked. The launcher grants exactly this.
 *
 * @param dir The flag's value, if given.
 * @param flag The flag's name, for messages (`--output`, `--dir`).
 * @param env Reads an environment variable.
 * @returns The directory.
 * @throws {UsageError} Naming the flag or variable when it is not valid.
 */
export function resolveBackupDir(
  dir: string | undefined,
  flag: string,
  env: (name: string) => string | undefined,
): string {
  return check(
    pathSchema,
    dir ?? setting(env, "BACKUP_DIR") ?? DEFAULT_BACKUP_DIR,
    dir === undefined ? "BACKUP_DIR" : flag,
  );
}

/**
 * The relationship store: `RELATIONSHIPS_DB`, else the default.
 *
 * @param env Reads an environment variable.
 * @returns The store's path, and whether it was configured.
 * @throws {UsageError} Naming `RELATIONSHIPS_DB` when it is not valid.
 */
export function resolveRelationshipStore(
  env: (name: string) => string | undefined,
): RelationshipStoreTarget {
  const value = setting(env, "RELATIONSHIPS_DB");
  return {
    path: value === undefined
      ? DEFAULT_RELATIONSHIPS_DB
      : check(pathSchema, value, "RELATIONSHIPS_DB"),
    explicit: value !== undefined,
  };
}

/**
 * `DATABASE_URL` as given, or `undefined` for the embedded store.
 *
 * @param env Reads an environment variable.
 * @returns The URL text (not yet parsed).
 */
export function databaseUrlOf(
  env: (name: string) => string | undefined,
): string | undefined {
  return setting(env, "DATABASE_URL");
}

/**
 * Resolves the settings from flags, environment and defaults.
 *
 * @param flags Values given as command-line flags.
 * @param env Reads an environment variable (defaults to `Deno.env.get`).
 * @returns The validated settings.
 * @throws {UsageError} Naming the flag or variable that is not valid.
 */
export function resolveConfig(
  flags: ConfigFlags = {},
  env: (name: string) => string | undefined = (name) => Deno.env.get(name),
): Config {
  const read = (name: string) => setting(env, name);
  const databaseUrl = databaseUrlOf(env);
  const store: MemoryStoreTarget = databaseUrl === undefined
    ? { kind: "pglite", dataDir: DEFAULT_PGLITE_DIR }
    : {
      kind: "postgres",
      connection: parseDatabaseUrl(databaseUrl, "DATABASE_URL", {
        fallbackPassword: env("PGPASSWORD"),
      }),
    };

  const tableValue = flags.table ?? read("MEMORY_TABLE") ?? DEFAULT_TABLE;
  const table = parseTableName(
    check(
      tableSchema,
      tableValue,
      flags.table === undefined ? "MEMORY_TABLE" : "--table",
    ),
  );

  const userValue = flags.user ?? read("MEMORY_USER_ID");
  const userId = userValue === undefined ? undefined : check(
    userSchema,
    userValue,
    flags.user === undefined ? "MEMORY_USER_ID" : "--user",
  );

  return {
    store,
    table,
    relationships: resolveRelationshipStore(env),
    userId,
    backupDir: resolveBackupDir(
      flags.backupDir,
      flags.backupDirFlag ?? "--output",
      env,
    ),
  };
}
