/**
 * The checksums check: every file's size and SHA-256 against
 * `checksums.json`, no file unlisted, `SHA256SUMS` and the combined checksum
 * consistent with it.
 *
 * @module
 */

import { sha256Text, sumsText } from "../format/checksums.ts";
import { CHECKSUMS_FILE, SUMS_FILE } from "../format/layout.ts";
import { type Checksums } from "../format/records.ts";
import { type EntryKind } from "../format/view.ts";
import type { VerifyCheck, VerifyProblem } from "../format/check.ts";

export function checkChecksums(
  checksums: Checksums | undefined,
  problem: VerifyProblem | undefined,
  hashes: Map<string, { sha256: string; bytes: number }>,
  entries: Map<string, EntryKind>,
): VerifyCheck {
  const name = "checksums";
  if (!checksums) {
    return {
      name,
      ok: false,
      detail: "checksums.json is not valid",
      problem: problem!,
    };
  }
  const listed = Object.keys(checksums.files);
  for (const file of listed) {
    if (file === CHECKSUMS_FILE || file === SUMS_FILE || file.includes("/")) {
      return fault(`checksums.json lists "${file}"`, {
        file: CHECKSUMS_FILE,
        reason: `lists "${file}"`,
      });
    }
    const expected = checksums.files[file]!;
    const actual = hashes.get(file);
    if (!actual) {
      return fault(`${file} is missing`, {
        file,
        reason: "listed in checksums.json but missing",
      });
    }
    if (actual.bytes !== expected.bytes) {
      return fault(`${file}: size differs`, {
        file,
        reason:
          `size is ${actual.bytes} bytes, checksums.json says ${expected.bytes} (truncated or changed)`,
      });
    }
    if (actual.sha256 !== expected.sha256) {
      return fault(`${file}: checksum mismatch`, {
        file,
        reason:
          `checksum mismatch: SHA-256 is ${actual.sha256}, checksums.json says ${expected.sha256}`,
      });
    }
  }
  for (const [file, kind] of entries) {
    if (
      kind === "file" && file !== CHECKSUMS_FILE && file !== SUMS_FILE &&
      !listed.includes(file)
    ) {
      return fault(`${file} is not listed`, {
        file,
        reason: "not listed in checksums.json (added after the backup?)",
      });
    }
  }
  const sums = sumsText(checksums.files);
  const sumsActual = hashes.get(SUMS_FILE);
  if (!sumsActual || sumsActual.sha256 !== sha256Text(sums)) {
    return fault("SHA256SUMS disagrees with checksums.json", {
      file: SUMS_FILE,
      reason: "does not match checksums.json",
    });
  }
  if (checksums.combined !== sha256Text(sums)) {
    return fault("combined checksum mismatch", {
      file: CHECKSUMS_FILE,
      reason: `combined checksum is ${checksums.combined}, the files give ${
        sha256Text(sums)
      }`,
    });
  }
  return {
    name,
    ok: true,
    detail: `checksums match (${listed.length} files, combined ${
      checksums.combined.slice(0, 16)
    }…)`,
  };

  function fault(detail: string, p: VerifyProblem): VerifyCheck {
    return { name, ok: false, detail, problem: p };
  }
}
