/**
 * A repository's `config.json`: read and checked (a memkeep repository, of
 * a version this one reads), or written when a backup creates the
 * repository (with the age recipients it is to be encrypted to).
 *
 * @module
 */

import { RepoError } from "../errors.ts";
import {
  CONFIG_FILE,
  ConfigSchema,
  type RepoConfig,
  REPOSITORY_VERSION,
} from "./layout.ts";
import { sha256Hex } from "./pack.ts";
import type { RepoStorage } from "./storage.ts";

/**
 * The config, created first when `create` is set and there is none.
 *
 * @param storage The repository.
 * @param options `create`, and `recipients` for a new encrypted one.
 * @returns The config.
 * @throws {RepoError} When there is none (without `create`), or it is not a
 * memkeep repository config of a version this one reads.
 */
export async function readConfig(
  storage: RepoStorage,
  options: {
    create?: boolean;
    recipients?: readonly string[] | undefined;
  },
): Promise<RepoConfig> {
  const where = storage.location;
  let bytes = await storage.read(CONFIG_FILE);
  if (bytes === undefined) {
    if (!options.create) {
      throw new RepoError(
        where,
        `No repository at "${where}" (no ${CONFIG_FILE}); a backup with --repo creates one`,
      );
    }
    const config: RepoConfig = {
      tool: "memkeep",
      repository_version: REPOSITORY_VERSION,
      id: sha256Hex(crypto.getRandomValues(new Uint8Array(32))).slice(0, 32),
      created_at: new Date().toISOString(),
      ...(options.recipients?.length
        ? { recipients: [...options.recipients] }
        : {}),
    };
    bytes = new TextEncoder().encode(JSON.stringify(config, null, 2) + "\n");
    await storage.write(CONFIG_FILE, bytes, true).catch(async (error) => {
      // Another backup made it first: use theirs.
      if (!(await storage.read(CONFIG_FILE))) throw error;
    });
    bytes = await storage.read(CONFIG_FILE) ?? bytes;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new RepoError(
      where,
      `Damaged repository: "${where}/${CONFIG_FILE}" is not JSON`,
    );
  }
  const version = (parsed as { repository_version?: unknown })
    ?.repository_version;
  if (typeof version === "number" && version > REPOSITORY_VERSION) {
    throw new RepoError(
      where,
      `Repository "${where}" has format version ${version}; this memkeep reads version ${REPOSITORY_VERSION} (upgrade memkeep)`,
    );
  }
  const config = ConfigSchema.safeParse(parsed);
  if (!config.success) {
    throw new RepoError(
      where,
      `"${where}/${CONFIG_FILE}" is not a memkeep repository config`,
    );
  }
  return config.data;
}
