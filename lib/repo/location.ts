/**
 * Where the user says the repository is: `--repo` or `MEMKEEP_REPO`, a
 * directory path as typed (relative or absolute). Object storage
 * (`s3://bucket/prefix`) is named by the issue that brings it and refused
 * here in one line until then.
 *
 * @module
 */

import { UsageError } from "../errors.ts";
import { LocalStorage, type RepoStorage } from "./storage.ts";

/** The setting that names the repository when `--repo` is not given. */
export const REPO_ENV = "MEMKEEP_REPO";

/**
 * The repository a command line names, if any.
 *
 * @param flag `--repo`'s value.
 * @param env Reads `MEMKEEP_REPO`.
 * @returns The location, or `undefined` when neither is set.
 * @throws {UsageError} When it is empty or a URL this version cannot use.
 */
export function repoLocation(
  flag: string | undefined,
  env: (name: string) => string | undefined,
): string | undefined {
  const setting = flag === undefined ? REPO_ENV : "--repo";
  const value = flag ?? env(REPO_ENV);
  if (value === undefined) return undefined;
  if (value.trim() === "") {
    throw new UsageError(setting, `Invalid ${setting}: it is empty`);
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(value)?.[1];
  if (scheme !== undefined) {
    throw new UsageError(
      setting,
      `Invalid ${setting}: ${scheme}:// repositories are not supported by this version; give a directory`,
    );
  }
  return value.replace(/(.)\/+$/, "$1");
}

/**
 * The storage of a repository location.
 *
 * @param location What {@linkcode repoLocation} returned.
 * @returns Its storage.
 */
export function openStorage(location: string): RepoStorage {
  return new LocalStorage(location);
}
