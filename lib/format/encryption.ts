/**
 * Encrypted backups, for artifacts that leave your machine: every file of a
 * backup compressed with zstd (encrypted data no longer compresses, and
 * GitHub counts every byte) and encrypted with age (npm `age-encryption`,
 * the same format as the `age` CLI) to `NAME.zst.age`, beside a plaintext
 * `encryption.json` (the recipients' public keys and the file list) and
 * `checksums.json` + `SHA256SUMS` over the ciphertext. By hand:
 * `age -d -i key.txt export.json.zst.age | zstd -d > export.json`. Without a key, anyone can check the
 * ciphertext's integrity; with one, every check of the backup runs on the
 * decrypted stream. The workflow only ever holds public keys.
 *
 * @module
 */

import { Duplex } from "node:stream";
import zlib from "node:zlib";
import { Decrypter, Encrypter } from "age-encryption";
import { z } from "zod";
import {
  createHashingWriter,
  type FileDigest,
  writeChecksums,
  writeTextDurably,
} from "./checksums.ts";
import { errorMessage, UsageError, VerifyError } from "../errors.ts";
import { CHECKSUMS_FILE, SUMS_FILE } from "./layout.ts";
import { registerSecret } from "../redact.ts";

/** The plaintext description of an encrypted backup. */
export const ENCRYPTION_FILE = "encryption.json";
/** The suffix of an encrypted file: zstd, then age. */
export const AGE_SUFFIX = ".zst.age";
/** The first line of every age file. */
const AGE_HEADER = "age-encryption.org/v1\n";

/** `encryption.json`. */
export const EncryptionInfoSchema = z.object({
  tool: z.literal("memkeep"),
  encryption: z.literal("age"),
  format_version: z.literal(1),
  /** Each file is compressed before it is encrypted. */
  compression: z.literal("zstd"),
  /** Public keys the backup is encrypted to (not secret). */
  recipients: z.array(z.string()),
  /** The backup's files, each stored as `NAME.age`. */
  files: z.array(z.string().regex(/^[A-Za-z0-9_.-]+$/)).min(1),
}).strict();

/** The parsed `encryption.json`. */
export type EncryptionInfo = z.infer<typeof EncryptionInfoSchema>;

/** Keys that can decrypt. */
export interface Keys {
  /** age identities (`AGE-SECRET-KEY-1…`). */
  readonly identities: readonly string[];
  /** A passphrase, for passphrase-encrypted files. */
  readonly passphrase: string | undefined;
}

/**
 * Parses age recipients: public keys separated by spaces, commas or lines;
 * `#` starts a comment.
 *
 * @param text The recipients, e.g. the `AGE_RECIPIENTS` secret.
 * @param setting The setting named in errors.
 * @returns The recipients.
 * @throws {UsageError} When one is not an age recipient.
 */
export function parseRecipients(
  text: string,
  setting = "AGE_RECIPIENTS",
): string[] {
  const recipients = text.split("\n").map((line) => line.replace(/#.*$/, ""))
    .join(" ")
    .split(/[\s,]+/).filter((r) => r !== "");
  if (recipients.length === 0) {
    throw new UsageError(setting, `Invalid ${setting}: it holds no recipient`);
  }
  recipients.forEach((recipient, i) => {
    if (recipient.startsWith("AGE-SECRET-KEY-")) {
      registerSecret(recipient);
      throw new UsageError(
        setting,
        `Invalid ${setting}: recipient ${
          i + 1
        } is a secret key; give the public key (age1…)`,
      );
    }
    try {
      new Encrypter().addRecipient(recipient);
    } catch {
      throw new UsageError(
        setting,
        `Invalid ${setting}: recipient ${
          i + 1
        } "${recipient}" is not an age public key (age1…)`,
      );
    }
  });
  return recipients;
}

/**
 * Reads the keys from `AGE_IDENTITY_FILE` (an age identity file) and
 * `AGE_PASSPHRASE`.
 *
 * @param env Reads an environment variable.
 * @returns The keys, or `undefined` when neither is set.
 * @throws {UsageError} When the identity file cannot be read or holds no identity.
 */
export async function loadKeys(
  env: (name: string) => string | undefined,
): Promise<Keys | undefined> {
  const file = env("AGE_IDENTITY_FILE")?.trim();
  const passphrase = env("AGE_PASSPHRASE") || undefined;
  registerSecret(passphrase);
  if (!file && !passphrase) return undefined;
  const identities: string[] = [];
  if (file) {
    let text: string;
    try {
      text = await Deno.readTextFile(file);
    } catch (error) {
      if (error instanceof Deno.errors.NotCapable) throw error;
      throw new UsageError(
        "AGE_IDENTITY_FILE",
        `Cannot read AGE_IDENTITY_FILE "${file}": ${(error as Error).message}`,
      );
    }
    for (const line of text.split(/\r?\n/)) {
      const key = line.trim();
      if (key.startsWith("AGE-SECRET-KEY-")) {
        registerSecret(key);
        identities.push(key);
      }
    }
    if (identities.length === 0) {
      throw new UsageError(
        "AGE_IDENTITY_FILE",
        `Invalid AGE_IDENTITY_FILE "${file}": it holds no AGE-SECRET-KEY- line`,
      );
    }
  }
  return { identities, passphrase };
}

/**
 * Encrypts every file of a backup directory into a new directory.
 *
 * @param source The backup directory.
 * @param target The new directory (created).
 * @param recipients age public keys.
 * @returns The digests of the files written.
 */
export async function encryptBackup(
  source: string,
  target: string,
  recipients: readonly string[],
): Promise<Record<string, FileDigest>> {
  await Deno.mkdir(target);
  const names = [...Deno.readDirSync(source)].filter((e) => e.isFile).map((e) =>
    e.name
  ).sort();
  const files: Record<string, FileDigest> = {};
  for (const name of names) {
    const encrypter = encrypterFor(recipients);
    using input = await Deno.open(`${source}/${name}`, { read: true });
    const encrypted = await encrypter.encrypt(
      input.readable.pipeThrough(zstd("compress")),
    );
    const out = await createHashingWriter(`${target}/${name}${AGE_SUFFIX}`);
    try {
      for await (const chunk of encrypted) await out.writeBytes(chunk);
      files[`${name}${AGE_SUFFIX}`] = await out.close();
    } catch (error) {
      out.abort();
      throw error;
    }
  }
  const info: EncryptionInfo = {
    tool: "memkeep",
    encryption: "age",
    format_version: 1,
    compression: "zstd",
    recipients: [...recipients],
    files: names,
  };
  files[ENCRYPTION_FILE] = await writeTextDurably(
    `${target}/${ENCRYPTION_FILE}`,
    JSON.stringify(info, null, 2) + "\n",
  );
  await writeChecksums(target, files);
  return files;
}

/**
 * A decrypting stream over an age file.
 *
 * @param keys The keys.
 * @param ciphertext The encrypted bytes.
 * @returns The plaintext.
 */
export async function decryptStream(
  keys: Keys,
  ciphertext: ReadableStream<Uint8Array>,
): Promise<ReadableStream<Uint8Array>> {
  return await decrypterFor(keys).decrypt(ciphertext);
}

/**
 * An age encrypter to these public keys.
 *
 * @param recipients The recipients.
 * @returns The encrypter.
 */
export function encrypterFor(recipients: readonly string[]): Encrypter {
  const encrypter = new Encrypter();
  for (const recipient of recipients) encrypter.addRecipient(recipient);
  return encrypter;
}

/**
 * An age decrypter with these keys.
 *
 * @param keys The identities and passphrase.
 * @returns The decrypter.
 */
export function decrypterFor(keys: Keys): Decrypter {
  const decrypter = new Decrypter();
  for (const identity of keys.identities) decrypter.addIdentity(identity);
  if (keys.passphrase) decrypter.addPassphrase(keys.passphrase);
  return decrypter;
}

/**
 * The original content of one file of an encrypted backup: decrypted, then
 * decompressed.
 *
 * @param keys The keys.
 * @param ciphertext The `NAME.zst.age` bytes.
 * @returns The file's content.
 */
export async function openEncrypted(
  keys: Keys,
  ciphertext: ReadableStream<Uint8Array>,
): Promise<ReadableStream<Uint8Array>> {
  return (await decryptStream(keys, ciphertext)).pipeThrough(
    zstd("decompress"),
  );
}

/** A zstd transform stream (node:zlib's native zstd). */
function zstd(
  direction: "compress" | "decompress",
): ReadableWritablePair<Uint8Array, Uint8Array> {
  // deno-lint-ignore no-explicit-any
  const z = zlib as any;
  const transform = direction === "compress"
    ? z.createZstdCompress({
      params: { [z.constants.ZSTD_c_compressionLevel]: 3 },
    })
    : z.createZstdDecompress();
  return Duplex.toWeb(transform) as unknown as ReadableWritablePair<
    Uint8Array,
    Uint8Array
  >;
}

/**
 * The decrypted content of one file of an encrypted backup, as a stream.
 * age authenticates every chunk, so a changed byte ends the stream with an
 * error before any of its plaintext is given out.
 *
 * @param dir The encrypted backup.
 * @param name The file's plain name (`export.json`), read from `NAME.zst.age`.
 * @param keys The keys.
 * @returns The plaintext, in chunks.
 * @throws {VerifyError} When the key does not open the file or the
 * ciphertext was altered (the age error as `cause`).
 */
export async function* decryptedChunks(
  dir: string,
  name: string,
  keys: Keys,
): AsyncGenerator<Uint8Array> {
  const file = `${name}${AGE_SUFFIX}`;
  using input = await Deno.open(`${dir}/${file}`, { read: true });
  let plain: ReadableStream<Uint8Array>;
  try {
    plain = await openEncrypted(keys, input.readable);
  } catch (error) {
    throw new VerifyError(
      file,
      `cannot be decrypted with the key given: ${errorMessage(error)}`,
      undefined,
      { cause: error },
    );
  }
  try {
    yield* plain;
  } catch (error) {
    throw new VerifyError(
      file,
      `cannot be decrypted: the ciphertext is damaged or was altered (${
        errorMessage(error)
      })`,
      undefined,
      { cause: error },
    );
  }
}

/**
 * Decrypts an encrypted backup into a plain backup directory (for a
 * restore, which then verifies it as any backup), with
 * {@linkcode decryptedChunks}.
 *
 * @param source The encrypted backup.
 * @param target The directory to create.
 * @param keys The keys.
 * @returns `target`.
 * @throws {VerifyError} As {@linkcode decryptedChunks}.
 */
export async function decryptBackup(
  source: string,
  target: string,
  keys: Keys,
): Promise<string> {
  const info = EncryptionInfoSchema.parse(
    JSON.parse(await Deno.readTextFile(`${source}/${ENCRYPTION_FILE}`)),
  );
  await Deno.mkdir(target, { recursive: true });
  for (const name of info.files) {
    using out = await Deno.open(`${target}/${name}`, {
      write: true,
      createNew: true,
    });
    for await (const chunk of decryptedChunks(source, name, keys)) {
      let offset = 0;
      while (offset < chunk.length) {
        offset += await out.write(chunk.subarray(offset));
      }
    }
  }
  return target;
}

/**
 * Whether a file starts like an age file.
 *
 * @param head The first bytes of the file.
 * @returns `true` for the age v1 header.
 */
export function looksLikeAge(head: Uint8Array): boolean {
  return new TextDecoder().decode(head.subarray(0, AGE_HEADER.length)) ===
    AGE_HEADER;
}

/** Files of an encrypted backup that are not ciphertext. */
export const PLAINTEXT_FILES = [ENCRYPTION_FILE, CHECKSUMS_FILE, SUMS_FILE];
