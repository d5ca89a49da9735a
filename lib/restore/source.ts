/**
 * Where a restore reads its backup from: a backup directory, the folder
 * `gh run download` makes (the backup one level down), or the zip of a
 * backup exactly as GitHub Actions serves a downloaded artifact (deflate
 * entries with data descriptors, the backup at the root or one folder down).
 *
 * A zip is checked before anything is extracted: entries with absolute
 * paths, `..`, backslashes or links are refused, every file must be listed in
 * the zip's own `checksums.json` with the size the zip declares, and
 * extraction stops at the listed size (a zip bomb cannot fill the disk). The
 * extracted copy then goes through the full verifier like any backup.
 *
 * Longer than 400 lines because the three sources (directory, artifact zip,
 * download folder) share one safety rule set for what may be extracted, and
 * each rule is tested against all three.
 *
 * @module
 */

import {
  configure,
  type Entry,
  type FileEntry,
  Reader,
  ZipReader,
} from "@zip.js/zip.js";
import { CHECKSUMS_FILE, METADATA_FILE, SUMS_FILE } from "../format/layout.ts";
import { ENCRYPTION_FILE } from "../format/encryption.ts";
import { ChecksumsSchema, firstIssue } from "../format/records.ts";
import { quote, SourceError } from "../errors.ts";
import { describeFsError, joinChunks, removeQuietly } from "../util/fs.ts";

configure({ useWebWorkers: false });

/** A backup ready to read from a directory. */
export interface BackupSource {
  /** The backup directory (extracted, for a zip). */
  readonly dir: string;
  /** What the user named. */
  readonly origin: string;
  /** `directory`, `download` (one level down) or `zip`. */
  readonly kind: "directory" | "download" | "zip";
  /** Removes what was extracted; nothing for a directory. */
  cleanup(): Promise<void>;
}

const MAX_ENTRIES = 64;
const MAX_SIDE_FILE = 16 * 1024 * 1024;

/**
 * Opens a restore source.
 *
 * @param source A backup directory, a folder holding one backup, or a zip.
 * @param scratch A directory to extract a zip into (created, and removed by
 * `cleanup`).
 * @returns The backup directory to verify and read.
 * @throws {SourceError} When the source is missing, holds no single backup,
 * or is an unsafe or damaged zip.
 */
export async function openBackupSource(
  source: string,
  scratch: string,
): Promise<BackupSource> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(source);
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) throw error;
    throw new SourceError(
      source,
      `Cannot restore: source "${source}" ${describeFsError(error)}`,
      { cause: error },
    );
  }
  if (info.isDirectory) return await directorySource(source);
  if (!info.isFile) {
    throw new SourceError(
      source,
      `Cannot restore: source "${source}" is not a directory or a zip`,
    );
  }
  return await zipSource(source, scratch);
}

/** Whether a directory is a backup: plain (metadata.json) or encrypted (encryption.json). */
async function hasMetadata(dir: string): Promise<boolean> {
  for (const name of [METADATA_FILE, ENCRYPTION_FILE]) {
    try {
      if ((await Deno.lstat(`${dir}/${name}`)).isFile) return true;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  return false;
}

async function directorySource(dir: string): Promise<BackupSource> {
  const none = async () => {};
  if (await hasMetadata(dir)) {
    return { dir, origin: dir, kind: "directory", cleanup: none };
  }
  const found: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isDirectory && await hasMetadata(`${dir}/${entry.name}`)) {
      found.push(entry.name);
    }
  }
  if (found.length === 1) {
    return {
      dir: `${dir}/${found[0]}`,
      origin: dir,
      kind: "download",
      cleanup: none,
    };
  }
  if (found.length === 0) {
    throw new SourceError(
      dir,
      `Cannot restore: "${dir}" holds no backup (no ${METADATA_FILE} in it or one level down)`,
    );
  }
  throw new SourceError(
    dir,
    `Cannot restore: "${dir}" holds ${found.length} backups (${
      found.sort().join(", ")
    }); name one of them`,
  );
}

/** Reads a file with random access, without loading it into memory. */
class FileReader extends Reader<Deno.FsFile> {
  #file: Deno.FsFile;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(file: Deno.FsFile) {
    super(file);
    this.#file = file;
  }

  override async init(): Promise<void> {
    this.size = (await this.#file.stat()).size;
  }

  override readUint8Array(offset: number, length: number): Promise<Uint8Array> {
    // zip.js may ask for several ranges at once; seek and read in turn.
    const result = this.#queue.then(async () => {
      await this.#file.seek(offset, Deno.SeekMode.Start);
      const data = new Uint8Array(length);
      let read = 0;
      while (read < length) {
        const n = await this.#file.read(data.subarray(read));
        if (n === null) return data.subarray(0, read);
        read += n;
      }
      return data;
    });
    this.#queue = result.catch(() => undefined);
    return result;
  }
}

function unsafeName(name: string): string | undefined {
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return "has a control character";
  if (name.startsWith("/") || /^[A-Za-z]:/.test(name)) {
    return "is an absolute path";
  }
  if (name.includes("\\")) return "has a backslash";
  if (name.split("/").some((part) => part === "..")) {
    return "climbs out with ..";
  }
  return undefined;
}

async function zipSource(path: string, scratch: string): Promise<BackupSource> {
  using file = await Deno.open(path, { read: true });
  const head = new Uint8Array(4);
  const n = await file.read(head);
  if (n !== 4 || head[0] !== 0x50 || head[1] !== 0x4b) {
    throw new SourceError(
      path,
      `Cannot restore: "${path}" is not a backup directory or a zip`,
    );
  }
  const reader = new ZipReader(new FileReader(file), { checkSignature: true });
  let entries: Entry[];
  try {
    entries = await reader.getEntries();
  } catch (error) {
    const name = (error as { filename?: unknown }).filename;
    if (typeof name === "string") {
      throw new SourceError(
        path,
        `Cannot restore: zip entry ${quote(name)} ${
          unsafeName(name) ?? "has an unsafe name"
        }`,
        { cause: error },
      );
    }
    throw new SourceError(
      path,
      `Cannot restore: "${path}" is not a readable zip: ${errorText(error)}`,
      { cause: error },
    );
  }
  try {
    if (entries.length > MAX_ENTRIES) {
      throw new SourceError(
        path,
        `Cannot restore: "${path}" has ${entries.length} entries; a backup has a handful`,
      );
    }
    for (const entry of entries) {
      const problem = unsafeName(entry.filename) ??
        (entry.symlink ? "is a link" : undefined) ??
        (entry.encrypted ? "is encrypted" : undefined);
      if (problem) {
        throw new SourceError(
          path,
          `Cannot restore: zip entry ${quote(entry.filename)} ${problem}`,
        );
      }
    }
    const files = entries.filter((e): e is FileEntry => !e.directory);
    const manifests = files.filter((e) =>
      e.filename.split("/").pop() === CHECKSUMS_FILE
    );
    const manifest = manifests.length === 1 ? manifests[0]! : undefined;
    const root = manifest
      ? manifest.filename.slice(0, -CHECKSUMS_FILE.length)
      : undefined;
    if (!manifest || root === undefined || root.split("/").length > 2) {
      throw new SourceError(
        path,
        `Cannot restore: "${path}" holds ${
          manifests.length === 0 ? "no backup" : "several backups"
        } (${CHECKSUMS_FILE} at its root or one folder down)`,
      );
    }
    const checksums = ChecksumsSchema.safeParse(
      JSON.parse(await readSmall(manifest, path)),
    );
    if (!checksums.success) {
      throw new SourceError(
        path,
        `Cannot restore: ${root}${CHECKSUMS_FILE} in the zip is not valid: ${
          firstIssue(checksums.error)
        }`,
      );
    }
    const expected = new Map<string, number>(
      Object.entries(checksums.data.files).map(([k, v]) => [k, v.bytes]),
    );
    const plan: { entry: FileEntry; name: string; bytes: number }[] = [];
    for (const entry of files) {
      if (!entry.filename.startsWith(root)) {
        throw new SourceError(
          path,
          `Cannot restore: zip entry "${entry.filename}" is outside the backup folder "${root}"`,
        );
      }
      const name = entry.filename.slice(root.length);
      const bytes = name === CHECKSUMS_FILE || name === SUMS_FILE
        ? Math.min(entry.uncompressedSize, MAX_SIDE_FILE)
        : expected.get(name);
      if (bytes === undefined || name.includes("/")) {
        throw new SourceError(
          path,
          `Cannot restore: zip entry "${entry.filename}" is not listed in ${CHECKSUMS_FILE}`,
        );
      }
      if (entry.uncompressedSize !== bytes) {
        throw new SourceError(
          path,
          `Cannot restore: zip entry "${entry.filename}" declares ${entry.uncompressedSize} bytes, ${CHECKSUMS_FILE} lists ${bytes}`,
        );
      }
      plan.push({ entry, name, bytes });
    }
    const dir = `${scratch}/${root.replace(/\/$/, "") || "backup"}`;
    try {
      await Deno.mkdir(dir, { recursive: true });
      for (const { entry, name, bytes } of plan) {
        await extract(entry, `${dir}/${name}`, bytes, path);
      }
    } catch (error) {
      await removeQuietly(scratch);
      if (
        error instanceof SourceError || error instanceof Deno.errors.NotCapable
      ) throw error;
      throw new SourceError(
        path,
        `Cannot restore: cannot extract "${path}" into "${scratch}": ${
          describeFsError(error)
        }`,
        {
          cause: error,
        },
      );
    }
    return {
      dir,
      origin: path,
      kind: "zip",
      cleanup: () => removeQuietly(scratch),
    };
  } finally {
    await reader.close();
  }
}

async function readSmall(entry: FileEntry, path: string): Promise<string> {
  if (entry.uncompressedSize > MAX_SIDE_FILE) {
    throw new SourceError(
      path,
      `Cannot restore: zip entry "${entry.filename}" is too large`,
    );
  }
  const chunks: Uint8Array[] = [];
  await readEntry(entry, path, MAX_SIDE_FILE, (chunk) => {
    chunks.push(chunk);
  });
  return new TextDecoder().decode(joinChunks(chunks));
}

async function readEntry(
  entry: FileEntry,
  path: string,
  limit: number,
  onChunk: (chunk: Uint8Array) => void | Promise<void>,
): Promise<number> {
  let written = 0;
  const sink = new WritableStream<Uint8Array>({
    async write(chunk) {
      written += chunk.length;
      if (written > limit) {
        throw new SourceError(
          path,
          `Cannot restore: zip entry "${entry.filename}" holds more than the ${limit} bytes it declares`,
        );
      }
      await onChunk(chunk);
    },
  });
  try {
    await entry.getData(sink);
  } catch (error) {
    if (error instanceof SourceError) throw error;
    throw new SourceError(
      path,
      `Cannot restore: zip entry "${entry.filename}" is corrupt: ${
        errorText(error)
      }`,
      {
        cause: error,
      },
    );
  }
  return written;
}

async function extract(
  entry: FileEntry,
  target: string,
  bytes: number,
  path: string,
): Promise<void> {
  const out = await Deno.open(target, { write: true, createNew: true });
  try {
    const written = await readEntry(entry, path, bytes, async (chunk) => {
      let offset = 0;
      while (offset < chunk.length) {
        offset += await out.write(chunk.subarray(offset));
      }
    });
    if (written !== bytes) {
      throw new SourceError(
        path,
        `Cannot restore: zip entry "${entry.filename}" holds ${written} bytes, expected ${bytes}`,
      );
    }
  } finally {
    out.close();
  }
}

function errorText(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).replace(
    /\s+/g,
    " ",
  );
}
