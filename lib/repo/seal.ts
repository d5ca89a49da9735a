/**
 * How a repository's files are stored: as they are, or, for a repository
 * created with `AGE_RECIPIENTS`, each pack, index and snapshot file
 * encrypted with age to those public keys (the same format as the `age`
 * CLI: `age -d -i key.txt FILE`). A file is named by the SHA-256 of what is
 * stored, so without a key the repository can still be checked file by
 * file, and its names leak nothing but sizes. Blobs are compressed before
 * their pack is encrypted (ciphertext does not compress).
 *
 * @module
 */

import { RepoError, UsageError } from "../errors.ts";
import { decrypterFor, encrypterFor, type Keys } from "../format/encryption.ts";

/** Seals files for storage and opens them again. */
export interface Sealer {
  /** Whether files are encrypted. */
  readonly encrypted: boolean;
  seal(bytes: Uint8Array): Promise<Uint8Array>;
  /**
   * @param where The file, for messages.
   * @throws {UsageError} When the repository is encrypted and there is no key.
   * @throws {RepoError} When the key does not open the file.
   */
  open(bytes: Uint8Array, where: string): Promise<Uint8Array>;
}

/** Files stored as they are. */
export const PLAIN: Sealer = {
  encrypted: false,
  seal: (bytes) => Promise.resolve(bytes),
  open: (bytes) => Promise.resolve(bytes),
};

/**
 * Files encrypted with age.
 *
 * @param recipients The repository's public keys (from its config).
 * @param keys The identities or passphrase that open them, if given.
 * @param location The repository, for messages.
 * @returns The sealer.
 */
export function ageSealer(
  recipients: readonly string[],
  keys: Keys | undefined,
  location: string,
): Sealer {
  return {
    encrypted: true,
    async seal(bytes) {
      return await encrypterFor(recipients).encrypt(bytes);
    },
    async open(bytes, where) {
      if (!keys) {
        throw new UsageError(
          "AGE_IDENTITY_FILE",
          `Repository ${location} is encrypted: set AGE_IDENTITY_FILE (or AGE_PASSPHRASE) to read it`,
        );
      }
      try {
        return await decrypterFor(keys).decrypt(bytes);
      } catch (error) {
        throw new RepoError(
          location,
          `Cannot decrypt "${where}": ${
            /no identity matched/i.test(String(error))
              ? "none of the keys given opens it (AGE_IDENTITY_FILE, AGE_PASSPHRASE)"
              : "it is damaged or not an age file"
          }`,
          { cause: error },
        );
      }
    },
  };
}
