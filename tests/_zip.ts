/**
 * Zips for tests: a backup zipped as GitHub Actions serves a downloaded
 * artifact (deflate entries with data descriptors), optionally with the
 * backup one folder down or with hostile extra entries.
 *
 * @module
 */

import {
  configure,
  TextReader,
  Uint8ArrayReader,
  ZipWriter,
} from "@zip.js/zip.js";

configure({ useWebWorkers: false });

/** An extra entry to put in the zip. */
export interface ExtraEntry {
  /** The entry name, taken as is (may be hostile). */
  readonly name: string;
  /** Its content. */
  readonly text: string;
  /** Unix mode with file type, e.g. `0o120777` for a link. */
  readonly unixMode?: number;
}

/**
 * Zips a backup directory.
 *
 * @param dir The backup directory.
 * @param zipPath The zip to write.
 * @param options `folder` puts the files one folder down; `extra` adds
 * entries; `skip` leaves files out.
 */
export async function zipBackup(
  dir: string,
  zipPath: string,
  options: { folder?: string; extra?: ExtraEntry[]; skip?: string[] } = {},
): Promise<void> {
  const out = await Deno.open(zipPath, { write: true, createNew: true });
  const writer = new ZipWriter(out.writable, {
    dataDescriptor: true,
    level: 6,
  });
  const prefix = options.folder ? `${options.folder}/` : "";
  const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  for (const name of names) {
    if (options.skip?.includes(name)) continue;
    await writer.add(
      prefix + name,
      new Uint8ArrayReader(await Deno.readFile(`${dir}/${name}`)),
    );
  }
  for (const extra of options.extra ?? []) {
    await writer.add(extra.name, new TextReader(extra.text), {
      ...(extra.unixMode === undefined
        ? {}
        : { unixMode: extra.unixMode, msDosCompatible: false }),
    });
  }
  await writer.close();
}
