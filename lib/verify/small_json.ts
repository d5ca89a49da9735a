/**
 * Reads the small JSON files of a backup (`metadata.json`,
 * `checksums.json`, `encryption.json`) with a size limit, as a problem to
 * report rather than an exception.
 *
 * @module
 */

import { errorMessage } from "../errors.ts";
import { joinChunks } from "../util/fs.ts";
import { CHECKSUMS_FILE } from "../format/layout.ts";
import {
  type Checksums,
  ChecksumsSchema,
  firstIssue,
} from "../format/records.ts";
import { type BackupView } from "../format/view.ts";
import type { VerifyProblem } from "../format/check.ts";

/** `metadata.json` and `checksums.json` are small; anything larger is not ours. */
export const MAX_SMALL_FILE = 16 * 1024 * 1024;

export interface JsonFileResult {
  ok: boolean;
  value?: unknown;
  problem?: VerifyProblem;
}

export async function readJsonFile(
  view: BackupView,
  name: string,
): Promise<JsonFileResult> {
  if (view.entries.get(name) !== "file") {
    return {
      ok: false,
      problem: { file: name, reason: "the file is missing" },
    };
  }
  const parts: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of view.chunks(name)) {
      size += chunk.length;
      if (size > MAX_SMALL_FILE) {
        return {
          ok: false,
          problem: {
            file: name,
            reason:
              `more than ${MAX_SMALL_FILE} bytes is too large for this file`,
          },
        };
      }
      parts.push(chunk);
    }
    return {
      ok: true,
      value: JSON.parse(
        new TextDecoder("utf-8", { fatal: true }).decode(joinChunks(parts)),
      ),
    };
  } catch (error) {
    return {
      ok: false,
      problem: { file: name, reason: `not valid JSON: ${errorMessage(error)}` },
    };
  }
}

/** `checksums.json`, read and checked against its schema; or the problem. */
export async function readChecksums(
  view: BackupView,
): Promise<{ checksums?: Checksums; problem?: VerifyProblem }> {
  const result = await readJsonFile(view, CHECKSUMS_FILE);
  if (!result.ok) return { problem: result.problem! };
  const parsed = ChecksumsSchema.safeParse(result.value);
  return parsed.success
    ? { checksums: parsed.data }
    : { problem: { file: CHECKSUMS_FILE, reason: firstIssue(parsed.error) } };
}
