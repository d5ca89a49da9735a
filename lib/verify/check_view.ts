/**
 * Checks the files of one backup as a view gives them (a directory, or the
 * decrypted stream of an encrypted one), in order: files, checksums,
 * metadata, the format's own records checks, the relationship store's copy.
 *
 * @module
 */

import { hashChunks } from "../format/checksums.ts";
import {
  CHECKSUMS_FILE,
  EXPORT_FILE,
  FORMAT_VERSION,
  METADATA_FILE,
  SUMS_FILE,
} from "../format/layout.ts";
import {
  type BackupMetadata,
  BackupMetadataSchema,
  type ExportFormat,
  firstIssue,
} from "../format/records.ts";
import { checkCsv } from "../format/csv/check.ts";
import { MEMORIES_CSV, RELATIONSHIPS_CSV } from "../format/csv/columns.ts";
import { checkMarkdown } from "../format/markdown/check.ts";
import { MEMORIES_MD } from "../format/markdown/text.ts";
import { type BackupView, type EntryKind } from "../format/view.ts";
import { reportOf, type VerifyOptions, type VerifyReport } from "./report.ts";
import { readChecksums, readJsonFile } from "./small_json.ts";
import { checkChecksums } from "./checksums_check.ts";
import { checkSnapshot } from "./relationships_check.ts";
import { checkExport, checkHeader } from "../format/json/check.ts";
import type { VerifyCheck, VerifyProblem } from "../format/check.ts";

export async function verifyView(
  dir: string,
  view: BackupView,
  options: VerifyOptions,
): Promise<VerifyReport> {
  const pass = (name: string, detail: string): VerifyCheck => ({
    name,
    ok: true,
    detail,
  });
  const fail = (
    name: string,
    detail: string,
    problem: VerifyProblem,
  ): VerifyCheck => ({ name, ok: false, detail, problem });

  // 1. Files.
  const entries = view.entries;
  const metadataResult = await readJsonFile(view, METADATA_FILE);
  let metadata: BackupMetadata | undefined;
  if (metadataResult.ok) {
    const parsed = BackupMetadataSchema.safeParse(metadataResult.value);
    if (parsed.success) metadata = parsed.data;
    else {
      const version = (metadataResult.value as { format_version?: unknown })
        ?.format_version;
      const reason = typeof version === "number" && version !== FORMAT_VERSION
        ? `format version ${version} is not supported (this memkeep reads version ${FORMAT_VERSION})`
        : `not a valid backup metadata: ${firstIssue(parsed.error)}`;
      metadataResult.problem = { file: METADATA_FILE, reason };
    }
  }
  const format = metadata?.format ?? guessFormat(entries);
  const required = [
    ...FORMAT_FILES[format],
    METADATA_FILE,
    CHECKSUMS_FILE,
    SUMS_FILE,
  ];
  if (metadata?.relationships.snapshot) {
    required.push(metadata.relationships.snapshot);
  }
  const missing = required.filter((name) => !entries.has(name));
  const notFiles = [...entries].filter(([, kind]) => kind !== "file").map((
    [name],
  ) => name);
  let filesCheck: VerifyCheck;
  if (missing.length > 0) {
    filesCheck = fail("files", `missing ${missing.join(", ")}`, {
      file: missing[0]!,
      reason: "the file is missing",
    });
  } else if (notFiles.length > 0) {
    filesCheck = fail("files", `${notFiles[0]} is not a regular file`, {
      file: notFiles[0]!,
      reason: `is a ${entries.get(notFiles[0]!)}, not a regular file`,
    });
  } else {
    filesCheck = pass(
      "files",
      `required files present (${required.join(", ")})`,
    );
  }

  // 2. Checksums (export.json is hashed during the record pass below).
  const { checksums, problem: checksumsProblem } = await readChecksums(
    view,
  );
  const hashes = new Map<string, { sha256: string; bytes: number }>();
  for (const [name, kind] of entries) {
    if (kind !== "file" || name === EXPORT_FILE || name === CHECKSUMS_FILE) {
      continue;
    }
    hashes.set(name, await hashChunks(view.chunks(name)));
  }

  // 3. Metadata.
  const metadataCheck = metadata
    ? pass(
      "metadata",
      `format ${metadata.format_version}, memkeep ${metadata.tool_version}, ${metadata.backup_name}`,
    )
    : fail("metadata", "metadata.json is not valid", metadataResult.problem!);

  // 4. Records: export.json is hashed in the same pass; CSV and Markdown
  // exports have checks of their own.
  const recordChecks: VerifyCheck[] = [];
  let counted = { memories: 0, relationships: 0 };
  let exportFacts: Pick<VerifyReport, "exportDigest" | "firstNonUuidId"> = {};
  if (format === "json" && entries.get(EXPORT_FILE) === "file") {
    const records = options.exportChecked ??
      await checkExport(view.chunks(EXPORT_FILE), metadata, options);
    hashes.set(EXPORT_FILE, records.digest);
    // Checked while the file was written, before metadata.json existed:
    // compare the header with it now.
    const header = options.exportChecked && records.headerValue
      ? checkHeader(
        records.headerValue.value,
        metadata,
        records.headerValue.line,
      )
      : records.header;
    if (header) recordChecks.push(header);
    recordChecks.push(records.memoryCheck, records.relationshipCheck);
    counted = records;
    exportFacts = {
      exportDigest: records.digest,
      firstNonUuidId: records.firstNonUuidId,
    };
  } else if (
    metadata && format !== "json" &&
    FORMAT_FILES[format].every((f) => entries.get(f) === "file")
  ) {
    const result = format === "csv"
      ? await checkCsv(view, metadata)
      : await checkMarkdown(view, metadata);
    recordChecks.push(...result.checks);
    counted = result;
  }

  // 5. The relationship store's copy.
  const copyCheck = metadata ? await checkSnapshot(view, metadata) : undefined;

  // Checksums are reported second, though compared last: export.json is
  // hashed during the record pass.
  const checks = [
    filesCheck,
    checkChecksums(checksums, checksumsProblem, hashes, entries),
    metadataCheck,
    ...recordChecks,
    ...(copyCheck ? [copyCheck] : []),
  ];

  return reportOf(dir, checks, {
    metadata,
    memories: counted.memories,
    relationships: counted.relationships,
    encrypted: false,
    contentsVerified: true,
    ...exportFacts,
  });
}

/** The data files of each format. */
const FORMAT_FILES: Record<ExportFormat, string[]> = {
  json: [EXPORT_FILE],
  csv: [MEMORIES_CSV, RELATIONSHIPS_CSV],
  markdown: [MEMORIES_MD],
};

/** The format of a directory whose metadata is not usable, by its files. */
function guessFormat(entries: Map<string, EntryKind>): ExportFormat {
  if (entries.has(MEMORIES_CSV) || entries.has(RELATIONSHIPS_CSV)) return "csv";
  if (entries.has(MEMORIES_MD)) return "markdown";
  return "json";
}
