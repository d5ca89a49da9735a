/**
 * Where the user says the repository is: `--repo` or `MEMKEEP_REPO`, either
 * a directory path as typed (relative or absolute) or `s3://BUCKET/PREFIX`
 * (see `s3.ts` for its settings).
 *
 * @module
 */

import { UsageError } from "../errors.ts";
import { parseS3Location, S3Storage } from "./s3.ts";
import { LocalStorage, type RepoStorage } from "./storage.ts";
import { Repository } from "./repository.ts";
import { type Keys, loadKeys } from "../format/encryption.ts";

/** The setting that names the repository when `--repo` is not given. */
export const REPO_ENV = "MEMKEEP_REPO";

/**
 * The repository a command line names, if any.
 *
 * @param flag `--repo`'s value.
 * @param env Reads `MEMKEEP_REPO`.
 * @returns The location, or `undefined` when neither is set.
 * @throws {UsageError} When it is empty or a URL other than `s3://`.
 */
export function repoLocation(
  flag: string | undefined,
  env: (name: string) => string | undefined,
): string | undefined {
  const setting = settingOf(flag);
  const value = flag ?? env(REPO_ENV);
  if (value === undefined) return undefined;
  if (value.trim() === "") {
    throw new UsageError(setting, `Invalid ${setting}: it is empty`);
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(value)?.[1];
  if (scheme !== undefined && scheme !== "s3") {
    throw new UsageError(
      setting,
      `Invalid ${setting}: ${scheme}:// repositories are not supported; give a directory or s3://BUCKET/PREFIX`,
    );
  }
  return value.replace(/(.)\/+$/, "$1");
}

/** The flag or variable a location came from. */
export function settingOf(flag: string | undefined): string {
  return flag === undefined ? REPO_ENV : "--repo";
}

/** Whether a location is in object storage. */
export function isRemote(location: string): boolean {
  return location.startsWith("s3://");
}

/**
 * The storage of a repository location.
 *
 * @param location What {@linkcode repoLocation} returned.
 * @param env Reads the S3 settings, for an `s3://` location.
 * @returns Its storage.
 * @throws {UsageError} When an S3 setting is missing or not valid.
 */
export function openStorage(
  location: string,
  env: (name: string) => string | undefined = () => undefined,
): RepoStorage {
  if (!isRemote(location)) return new LocalStorage(location);
  return new S3Storage(parseS3Location(location, env, "--repo"), env);
}

/**
 * Opens the repository a command names, with the S3 settings and the keys
 * (`AGE_IDENTITY_FILE`, `AGE_PASSPHRASE`) the environment gives.
 *
 * @param location What {@linkcode repoLocation} returned.
 * @param env Reads the settings.
 * @param options `structure`, `index`: see {@linkcode Repository.open}.
 * @returns The repository, and the keys (`undefined` when none is set).
 */
export async function openRepository(
  location: string,
  env: (name: string) => string | undefined,
  options: { structure?: boolean; index?: boolean } = {},
): Promise<{ repo: Repository; keys: Keys | undefined }> {
  const storage = openStorage(location, env);
  const keys = await loadKeys(env);
  const repo = await Repository.open(storage, {
    keys,
    structure: options.structure ?? false,
    index: options.index ?? true,
  });
  return { repo, keys };
}
