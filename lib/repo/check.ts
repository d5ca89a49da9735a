/**
 * Checks a repository as `restic check` does: the structure always (every
 * index and snapshot file matches its name, every blob a snapshot needs is
 * in the index, every pack the index names is there with its size), and
 * with `readData` the data too (every blob the snapshot needs read,
 * decompressed and hashed, the trees decoded, the memory count and the
 * vectors' length against the metadata, the relationship copy's SHA-256).
 *
 * @module
 */

import { RepoError } from "../errors.ts";
import { INDEX, packPath, PACKS, SNAPSHOTS } from "./layout.ts";
import { sha256Hex } from "./pack.ts";
import type { RepoStorage } from "./storage.ts";
import type { BlobPlace, Repository } from "./repository.ts";
import { readTree, type SnapshotFile } from "./reader.ts";
import { createHash } from "node:crypto";

/** What a check found. */
export interface RepoCheck {
  /** The snapshot checked. */
  readonly name: string;
  /** Memories it lists. */
  readonly memories: number;
  /** Blobs it needs. */
  readonly blobs: number;
  /** Bytes read (compressed) when the data was read, else 0. */
  readonly bytesRead: number;
}

/**
 * Checks one snapshot.
 *
 * @param repo The repository.
 * @param file The snapshot.
 * @param readData Read and hash every blob it needs (`true`), or those in
 * some packs only (`--read-data-subset`).
 * @returns What was checked.
 * @throws {RepoError} At the first problem, naming it.
 */
export function checkSnapshot(
  repo: Repository,
  file: SnapshotFile,
  readData: boolean | ReadonlySet<string>,
): Promise<RepoCheck> {
  return repo.reading(() => check(repo, file, readData));
}

async function check(
  repo: Repository,
  file: SnapshotFile,
  readData: boolean | ReadonlySet<string>,
): Promise<RepoCheck> {
  const { snapshot } = file;
  const where = repo.storage.location;
  const packs = new Map(
    (await repo.storage.list(PACKS)).map((f) => [f.path, f.size]),
  );
  const fail = (why: string): never => {
    throw new RepoError(
      where,
      `Damaged repository: snapshot ${snapshot.name} ${why}`,
    );
  };
  const need = (id: string, what: string) => {
    const place = repo.place(id);
    if (!place) fail(`needs ${what} ${id.slice(0, 12)}, which no index lists`);
    const size = packs.get(packPath(place!.pack));
    if (size === undefined) {
      fail(`needs pack ${place!.pack.slice(0, 12)}, which is missing`);
    }
    if (place!.offset + place!.length > size!) {
      fail(`needs pack ${place!.pack.slice(0, 12)}, which is truncated`);
    }
    return place!;
  };
  const reads = (pack: string) =>
    readData === true || (readData !== false && readData.has(pack));
  let blobs = 0;
  let bytesRead = 0;
  let memories = 0;
  // The records and vectors to read, read pack by pack afterwards: one
  // read of each pack instead of one per blob.
  const toRead = new Set<BlobPlace>();
  const dims = snapshot.metadata.memories.dims;
  for (const treeId of snapshot.trees) {
    bytesRead += need(treeId, "tree").length;
    blobs++;
    for (const entry of await readTree(repo, treeId, snapshot)) {
      memories++;
      const record = need(entry.record, "record");
      blobs++;
      if (reads(record.pack)) toRead.add(record);
      if (entry.vector !== undefined) {
        const vector = need(entry.vector, "vector");
        blobs++;
        if (dims !== null && vector.raw_length !== dims * 4) {
          fail(
            `has a vector of ${
              vector.raw_length / 4
            } dimensions; its table has ${dims}`,
          );
        }
        if (reads(vector.pack)) toRead.add(vector);
      }
    }
  }
  const byPack = new Map<string, BlobPlace[]>();
  for (const place of toRead) {
    const list = byPack.get(place.pack) ?? [];
    list.push(place);
    byPack.set(place.pack, list);
  }
  for (const [pack, places] of byPack) {
    await repo.eachBlob(pack, places, (place) => {
      bytesRead += place.length;
    });
  }
  if (memories !== snapshot.metadata.memory_count) {
    fail(
      `lists ${memories} memories; its metadata says ${snapshot.metadata.memory_count}`,
    );
  }
  const copy = snapshot.relationships_file;
  if (copy) {
    const whole = createHash("sha256");
    for (const chunk of copy.chunks) {
      const place = need(chunk, "a relationship chunk");
      blobs++;
      if (reads(place.pack)) {
        whole.update(await repo.read(chunk));
        bytesRead += place.length;
      }
    }
    if (readData === true && whole.digest("hex") !== copy.sha256) {
      fail("has a relationship copy that does not match its SHA-256");
    }
  }
  return { name: snapshot.name, memories, blobs, bytesRead };
}

/** What a check of an encrypted repository without its key found. */
export interface FileCheck {
  /** Files read and found to match their names. */
  readonly files: number;
  readonly bytes: number;
}

/**
 * Checks every pack, index and snapshot file against its name (the SHA-256
 * of its stored bytes): all a check can do without the key of an encrypted
 * repository, and enough to find a damaged or truncated copy.
 *
 * @param storage The repository's files.
 * @returns How many were checked.
 * @throws {RepoError} At the first file that does not match.
 */
export async function checkFileNames(storage: RepoStorage): Promise<FileCheck> {
  let files = 0;
  let bytes = 0;
  for (const folder of [PACKS, INDEX, SNAPSHOTS]) {
    for (const file of await storage.list(folder)) {
      const name = file.path.slice(file.path.lastIndexOf("/") + 1);
      const content = await storage.read(file.path);
      if (!content || sha256Hex(content) !== name) {
        throw new RepoError(
          storage.location,
          `Damaged repository: "${storage.location}/${file.path}" does not match its name (SHA-256)`,
        );
      }
      files++;
      bytes += content.length;
    }
  }
  return { files, bytes };
}

/**
 * A random share of the packs, for `--read-data-subset P%` (at least one
 * when there are any): repeated checks read every pack in time.
 *
 * @param repo The repository.
 * @param percent The share, 0 < percent ≤ 100.
 * @returns The pack ids.
 */
export function samplePacks(
  repo: Repository,
  percent: number,
): Set<string> {
  const packs = [...new Set([...repo.blobs()].map((b) => b.pack))];
  const want = Math.max(1, Math.ceil(packs.length * percent / 100));
  for (let i = packs.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [packs[i], packs[j]] = [packs[j]!, packs[i]!];
  }
  return new Set(packs.slice(0, want));
}
