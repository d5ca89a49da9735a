/**
 * Helpers shared by the tests: temporary directories, config for a test
 * store, reading a backup's records back.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { DatabaseSync } from "node:sqlite";
import { type Config, resolveConfig } from "../lib/store/config.ts";
import {
  type FileDigest,
  hashFile,
  writeChecksums,
} from "../lib/format/checksums.ts";
import {
  BACKUP_NAME,
  CHECKSUMS_FILE,
  EXPORT_FILE,
  METADATA_FILE,
  SUMS_FILE,
} from "../lib/format/layout.ts";
import {
  type ExportEntry,
  fileChunks,
  readExport,
} from "../lib/format/json/reader.ts";
import { recordFields } from "../lib/format/json/scan.ts";
import type { RawRecord } from "../lib/format/records.ts";

/** The repository root. */
export const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/**
 * Runs `fn` with a new temporary directory, removed afterwards.
 *
 * @param fn The test body.
 * @returns What `fn` returns.
 */
export async function withTempDir<T>(
  fn: (dir: string) => Promise<T>,
): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "memkeep-test-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * Settings as a user would give them in the environment.
 *
 * @param env Environment variables.
 * @param flags Flags.
 * @returns The resolved config.
 */
export function configFrom(
  env: Record<string, string>,
  flags: Parameters<typeof resolveConfig>[0] = {},
): Config {
  const config = resolveConfig(flags, (name) => env[name]);
  // The default relationship store is relative to the working directory;
  // tests never read the developer's ./data.
  return config.relationships.explicit ? config : {
    ...config,
    relationships: {
      path: "/nonexistent/memkeep-test/relationships.db",
      explicit: false,
    },
  };
}

/**
 * Every entry of a backup's `export.json`.
 *
 * @param dir The backup directory.
 * @returns The entries in order.
 */
export async function exportEntries(dir: string): Promise<ExportEntry[]> {
  const out: ExportEntry[] = [];
  for await (const entry of readExport(fileChunks(`${dir}/${EXPORT_FILE}`))) {
    out.push(entry);
  }
  return out;
}

/**
 * The raw memory records of a backup.
 *
 * @param dir The backup directory.
 * @returns Each memory's fields as source text.
 */
export async function memoryRecords(dir: string): Promise<RawRecord[]> {
  return (await exportEntries(dir)).filter((e) => e.section === "memories").map(
    (e) => recordFields(e.text),
  );
}

/**
 * The developer's environment as a shell would give it to a command they
 * type: without `INIT_CWD`, which the outer `deno task test` sets and every
 * `deno task` a test runs would otherwise inherit (a nested `deno task`
 * keeps it), taking relative paths from the wrong directory.
 *
 * @returns The environment variables.
 */
export function shellEnv(): Record<string, string> {
  const env = Deno.env.toObject();
  delete env.INIT_CWD;
  return env;
}

/** How long a command a test runs may take before it is killed. */
export const COMMAND_TIMEOUT_MS = 180_000;

/**
 * Runs a command and captures its output. A command that hangs is killed
 * after `timeoutMs` (default {@linkcode COMMAND_TIMEOUT_MS}) and the test
 * fails naming it, instead of eating CI's time.
 *
 * @param cmd The program.
 * @param args Its arguments.
 * @param options Working directory, environment, time limit.
 * @returns Exit code, stdout and stderr.
 * @throws {Error} When the command ran out of time.
 */
export async function runCommand(
  cmd: string,
  args: string[],
  options: {
    cwd?: string;
    env?: Record<string, string>;
    clearEnv?: boolean;
    timeoutMs?: number;
  } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const limit = options.timeoutMs ?? COMMAND_TIMEOUT_MS;
  const timeout = AbortSignal.timeout(limit);
  const output = await new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    signal: timeout,
    ...(options.cwd ? { cwd: options.cwd } : {}),
    env: options.clearEnv
      ? options.env ?? {}
      : { ...shellEnv(), ...options.env },
    clearEnv: true,
  }).output();
  if (timeout.aborted) {
    throw new Error(
      `${cmd} ${args.join(" ")} did not finish within ${limit / 1000} s`,
    );
  }
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/**
 * The float32 values of a pgvector text form, for bit-exact comparison.
 *
 * @param text `[1,2,3]`.
 * @returns The bytes of the float32 array.
 */
export function float32Bytes(text: string): Uint8Array {
  return new Uint8Array(Float32Array.from(JSON.parse(text) as number[]).buffer);
}

/**
 * Asserts that `fn` rejects with an instance of `ErrorClass` whose message
 * matches `pattern`.
 *
 * @param fn The call.
 * @param ErrorClass The expected class.
 * @param pattern The expected message.
 * @returns The error.
 */
export async function assertRejectsWith<E extends Error>(
  fn: () => Promise<unknown>,
  // deno-lint-ignore no-explicit-any
  ErrorClass: new (...args: any[]) => E,
  pattern: RegExp,
): Promise<E> {
  try {
    await fn();
  } catch (error) {
    if (!(error instanceof ErrorClass)) {
      throw new Error(
        `expected ${ErrorClass.name}, got ${
          error instanceof Error
            ? `${error.name}: ${error.message}`
            : String(error)
        }`,
      );
    }
    if (!pattern.test(error.message)) {
      throw new Error(
        `message ${JSON.stringify(error.message)} does not match ${pattern}`,
      );
    }
    return error;
  }
  throw new Error(`expected a ${ErrorClass.name}, but it did not fail`);
}

/**
 * The backups (final names only) in a directory, oldest first.
 *
 * @param dir The backup directory.
 * @returns Their names; none when the directory does not exist.
 */
export function backupsIn(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
      BACKUP_NAME.test(n)
    ).sort();
  } catch {
    return [];
  }
}

/**
 * Copies a directory (recursively) to a new path.
 *
 * @param from The directory.
 * @param to Where the copy goes; it must not exist.
 */
export async function copyDir(from: string, to: string): Promise<void> {
  const copy = await runCommand("cp", ["-r", from, to]);
  if (copy.code !== 0) throw new Error(`cp -r ${from} ${to}: ${copy.stderr}`);
}

/**
 * Writes a backup's `export.json` and `metadata.json` and seals it again with
 * fresh `checksums.json` and `SHA256SUMS`, written by memkeep's own
 * {@linkcode writeChecksums}, as a careful attacker would, so that the
 * parser, not the checksum check, meets the hostile bytes.
 *
 * @param dir The backup directory (holding the other files already).
 * @param files New content of `export.json` and `metadata.json`.
 */
export async function reseal(
  dir: string,
  files: { exportBytes?: Uint8Array; metadataBytes?: Uint8Array } = {},
): Promise<void> {
  if (files.exportBytes) {
    await Deno.writeFile(`${dir}/${EXPORT_FILE}`, files.exportBytes);
  }
  if (files.metadataBytes) {
    await Deno.writeFile(`${dir}/${METADATA_FILE}`, files.metadataBytes);
  }
  for (const name of [CHECKSUMS_FILE, SUMS_FILE]) {
    await Deno.remove(`${dir}/${name}`).catch(() => {});
  }
  const digests: Record<string, FileDigest> = {};
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile) {
      digests[entry.name] = await hashFile(`${dir}/${entry.name}`);
    }
  }
  await writeChecksums(dir, digests);
}

/**
 * A digest of every row of every table (and the schema) of a SQLite file,
 * opened the way the assistant opens it: a hot journal or WAL left by a
 * killed writer is recovered first.
 *
 * @param path The SQLite file.
 * @returns A SHA-256 over the schema and the rows in rowid order.
 */
export function sqliteDigest(path: string): string {
  const db = new DatabaseSync(path);
  const hash = createHash("sha256");
  const text = (row: unknown) =>
    JSON.stringify(
      row,
      (_, v) =>
        typeof v === "bigint"
          ? `${v}n`
          : typeof v === "number" && !Number.isFinite(v)
          ? `${v}`
          : v instanceof Uint8Array
          ? `x'${[...v].map((b) => b.toString(16).padStart(2, "0")).join("")}'`
          : v,
    );
  try {
    const schema = db.prepare(
      "select type, name, tbl_name, sql from sqlite_schema order by type, name",
    ).all() as { type: string; name: string }[];
    hash.update(text(schema));
    for (const { type, name } of schema) {
      if (type !== "table") continue;
      const rows = db.prepare(
        `select * from "${name.replaceAll('"', '""')}" order by rowid`,
      );
      rows.setReadBigInts(true);
      hash.update(`${name}\n`);
      for (const row of rows.iterate()) hash.update(text(row) + "\n");
    }
  } finally {
    db.close();
  }
  return hash.digest("hex");
}

/**
 * Asserts that a backup verified, naming the first problem when it did not.
 *
 * @param report What `verifyBackup` returned.
 */
export function assertValid(
  report: { ok: boolean; problem?: unknown },
): void {
  assert.ok(
    report.ok,
    `the backup is not valid: ${JSON.stringify(report.problem)}`,
  );
}
