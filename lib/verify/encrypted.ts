/**
 * Verifies an encrypted backup: the ciphertext's checksums always; its
 * contents too, decrypted as a stream (nothing plain is written), when keys
 * are given.
 *
 * @module
 */

import { hashChunks } from "../format/checksums.ts";
import { VerifyError } from "../errors.ts";
import { CHECKSUMS_FILE } from "../format/layout.ts";
import { firstIssue } from "../format/records.ts";
import { type BackupView, streamView } from "../format/view.ts";
import {
  AGE_SUFFIX,
  decryptedChunks,
  ENCRYPTION_FILE,
  type EncryptionInfo,
  EncryptionInfoSchema,
  looksLikeAge,
  PLAINTEXT_FILES,
} from "../format/encryption.ts";
import { reportOf, type VerifyOptions, type VerifyReport } from "./report.ts";
import { verifyView } from "./check_view.ts";
import { readChecksums, readJsonFile } from "./small_json.ts";
import { checkChecksums } from "./checksums_check.ts";
import type { VerifyCheck, VerifyProblem } from "../format/check.ts";

export async function verifyEncrypted(
  dir: string,
  plain: BackupView,
  options: VerifyOptions,
): Promise<VerifyReport> {
  const checks: VerifyCheck[] = [];
  const infoResult = await readJsonFile(plain, ENCRYPTION_FILE);
  let info: EncryptionInfo | undefined;
  if (infoResult.ok) {
    const parsed = EncryptionInfoSchema.safeParse(infoResult.value);
    if (parsed.success) info = parsed.data;
    else {infoResult.problem = {
        file: ENCRYPTION_FILE,
        reason: firstIssue(parsed.error),
      };}
  }
  if (!info) {
    checks.push({
      name: "encryption",
      ok: false,
      detail: "encryption.json is not valid",
      problem: infoResult.problem!,
    });
  } else {
    const expected = new Set([
      ...info.files.map((f) => `${f}${AGE_SUFFIX}`),
      ...PLAINTEXT_FILES,
    ]);
    const missing = [...expected].filter((f) =>
      plain.entries.get(f) !== "file"
    );
    const extra = [...plain.entries.keys()].filter((f) => !expected.has(f));
    let problem: VerifyProblem | undefined = missing.length > 0
      ? { file: missing[0]!, reason: "the file is missing" }
      : extra.length > 0
      ? { file: extra[0]!, reason: "not listed in encryption.json" }
      : undefined;
    if (!problem) {
      for (const file of info.files) {
        const first = await plain.chunks(`${file}${AGE_SUFFIX}`).next();
        if (first.done || !looksLikeAge(first.value)) {
          problem = {
            file: `${file}${AGE_SUFFIX}`,
            reason: "not an age-encrypted file",
          };
          break;
        }
      }
    }
    checks.push(
      problem
        ? {
          name: "encryption",
          ok: false,
          detail: `${problem.file}: ${problem.reason}`,
          problem,
        }
        : {
          name: "encryption",
          ok: true,
          detail:
            `age-encrypted to ${info.recipients.length} recipient(s): ${info.files.length} files`,
        },
    );
  }
  const { checksums, problem: checksumsProblem } = await readChecksums(
    plain,
  );
  const hashes = new Map<string, { sha256: string; bytes: number }>();
  for (const [name, kind] of plain.entries) {
    if (kind === "file" && name !== CHECKSUMS_FILE) {
      hashes.set(name, await hashChunks(plain.chunks(name)));
    }
  }
  const ciphertext = checkChecksums(
    checksums,
    checksumsProblem,
    hashes,
    plain.entries,
  );
  checks.push({
    ...ciphertext,
    name: "ciphertext",
    detail: ciphertext.detail.replace(
      /^checksums match/,
      "ciphertext checksums match",
    ),
  });

  let inner: VerifyReport | undefined;
  if (info && options.keys && checks.every((c) => c.ok)) {
    const keys = options.keys;
    const view = streamView(
      info.files,
      (name) => decryptedChunks(dir, name, keys),
    );
    try {
      inner = await verifyView(dir, view, options);
      checks.push(...inner.checks);
    } catch (error) {
      if (!(error instanceof VerifyError)) throw error;
      checks.push({
        name: "contents",
        ok: false,
        detail: error.message,
        problem: { file: error.file, reason: error.reason },
      });
    }
  } else if (checks.every((c) => c.ok)) {
    checks.push({
      name: "contents",
      ok: true,
      detail:
        "not checked: encrypted, and no key given (set AGE_IDENTITY_FILE or AGE_PASSPHRASE to check everything)",
    });
  }
  return reportOf(dir, checks, {
    metadata: inner?.metadata,
    memories: inner?.memories ?? 0,
    relationships: inner?.relationships ?? 0,
    encrypted: true,
    contentsVerified: inner !== undefined,
    exportDigest: inner?.exportDigest,
    firstNonUuidId: inner?.firstNonUuidId,
  });
}
