#!/usr/bin/env -S deno run -q --no-prompt --allow-read=./backups,./artifacts --allow-write=./artifacts --allow-env=BACKUP_DIR,AGE_RECIPIENTS,GITHUB_OUTPUT,GITHUB_STEP_SUMMARY
/**
 * `deno task publish [--backup DIR] [--json]`
 *
 * The nightly workflow's step between the backup and the upload: takes the
 * newest backup (or DIR), encrypts it with age into `./artifacts/NAME` when
 * `AGE_RECIPIENTS` is set (the workflow never holds a key that can read it),
 * writes `name`, `path` and `encrypted` to `GITHUB_OUTPUT` for the upload
 * step, and the job summary to `GITHUB_STEP_SUMMARY` (and stdout). Exit
 * codes: 0 success, 1 failure, 2 bad usage.
 *
 * @module
 */

import { ARTIFACTS_DIR, resolveBackupDir } from "../lib/store/config.ts";
import { encryptBackup, parseRecipients } from "../lib/format/encryption.ts";
import { BackupError } from "../lib/errors.ts";
import { BACKUP_NAME, METADATA_FILE } from "../lib/format/layout.ts";
import * as log from "../lib/cli/log.ts";
import {
  BackupMetadataSchema,
  ChecksumsSchema,
} from "../lib/format/records.ts";
import { summaryMarkdown } from "../lib/github/summary.ts";
import { verifyBackup } from "../lib/verify/verify.ts";
import {
  directoryArgument,
  EXIT_OK,
  optionalEnv,
  runCommand,
} from "../lib/cli/run.ts";
import { removeQuietly } from "../lib/util/fs.ts";
import { removeOnInterrupt } from "../lib/util/interrupt.ts";

const HELP = `Usage: deno task publish [--backup DIR] [--json]

Prepares the newest backup in BACKUP_DIR (or DIR) for upload as a GitHub
Actions artifact: encrypts it with age into ./artifacts/NAME when
AGE_RECIPIENTS holds public keys, writes name, path and encrypted to
GITHUB_OUTPUT, and the job summary to GITHUB_STEP_SUMMARY.`;

/**
 * Prepares the artifact.
 *
 * @param args Command-line arguments.
 * @returns The exit code.
 */
export async function main(args: string[]): Promise<number> {
  return await runCommand("publish", args, HELP, async ({ values, json }) => {
    const dir = directoryArgument(
      resolveBackupDir(undefined, "BACKUP_DIR", optionalEnv),
      "BACKUP_DIR",
    );
    if (values.backup !== undefined) {
      directoryArgument(values.backup, "--backup");
    }
    const names = backupNames(dir);
    const backup = values.backup ??
      (names.length > 0 ? `${dir}/${names.at(-1)}` : undefined);
    if (!backup) {
      throw new BackupError(dir, `Nothing to publish: no backup in "${dir}"`);
    }
    const name = backup.replace(/\/+$/, "").split("/").pop()!;
    const report = await verifyBackup(backup);
    if (!report.ok || !report.metadata) {
      throw new BackupError(
        backup,
        `Refusing to publish "${backup}": it fails verification (${report.problem?.reason})`,
      );
    }
    const metadata = report.metadata;
    const checksums = ChecksumsSchema.parse(
      JSON.parse(await Deno.readTextFile(`${backup}/checksums.json`)),
    );
    const backupBytes = Object.values(checksums.files).reduce(
      (s, f) => s + f.bytes,
      0,
    );
    const recipientsText = optionalEnv("AGE_RECIPIENTS")?.trim();
    let path = backup;
    let artifactBytes = backupBytes;
    const encrypted = Boolean(recipientsText);
    if (recipientsText) {
      const recipients = parseRecipients(recipientsText);
      path = `${ARTIFACTS_DIR}/${name}`;
      await Deno.mkdir(ARTIFACTS_DIR, { recursive: true });
      await removeQuietly(path);
      using _ = removeOnInterrupt(path);
      const files = await encryptBackup(backup, path, recipients);
      artifactBytes = Object.values(files).reduce((s, f) => s + f.bytes, 0);
    } else {
      log.warn(
        "AGE_RECIPIENTS is not set: the artifact is uploaded unencrypted",
      );
    }
    const previousName = names.filter((n) => n < name).at(-1);
    let previous;
    if (previousName && values.backup === undefined) {
      try {
        previous = BackupMetadataSchema.parse(
          JSON.parse(
            await Deno.readTextFile(`${dir}/${previousName}/${METADATA_FILE}`),
          ),
        );
      } catch {
        previous = undefined;
      }
    }
    const summary = summaryMarkdown({
      metadata,
      combined: checksums.combined,
      backupBytes,
      artifactBytes,
      artifact: name,
      encrypted,
      previous,
    });
    const output = optionalEnv("GITHUB_OUTPUT");
    if (output) {
      await Deno.writeTextFile(
        output,
        `name=${name}\npath=${path}\nencrypted=${encrypted}\n`,
        { append: true },
      );
    }
    const stepSummary = optionalEnv("GITHUB_STEP_SUMMARY");
    if (stepSummary) {
      await Deno.writeTextFile(stepSummary, summary, { append: true });
    }
    if (json) {
      log.info(
        JSON.stringify({
          ok: true,
          name,
          path,
          encrypted,
          bytes: artifactBytes,
        }),
      );
    } else log.info(summary);
    return EXIT_OK;
  });
}

/** The backups in a directory, oldest first; none when it does not exist. */
function backupNames(dir: string): string[] {
  try {
    return [...Deno.readDirSync(dir)].filter((e) =>
      e.isDirectory && BACKUP_NAME.test(e.name)
    ).map((e) => e.name).sort();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
}

if (import.meta.main) Deno.exitCode = await main(Deno.args);
