/**
 * Reads snapshots back: the list, one by name (or `latest`), its memories
 * as raw records field for field as the backup read them, and its
 * relationship copy as a file. Every blob is checked against its SHA-256
 * as it is read, and every snapshot file against its name.
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { RawRecord } from "../format/records.ts";
import { firstIssue } from "../format/records.ts";
import { RepoError } from "../errors.ts";
import { SHA256_HEX, snapshotPath, SNAPSHOTS } from "./layout.ts";
import type { Repository } from "./repository.ts";
import { writeAll } from "../util/fs.ts";
import {
  decodeTree,
  joinRecord,
  type Snapshot,
  SnapshotSchema,
  type TreeEntry,
} from "./snapshot.ts";

/** A snapshot and the file it is in. */
export interface SnapshotFile {
  readonly id: string;
  readonly snapshot: Snapshot;
  /** The snapshot file's size. */
  readonly bytes: number;
}

/**
 * Every snapshot in the repository, oldest first.
 *
 * @param repo The repository.
 * @returns The snapshots.
 * @throws {RepoError} When a snapshot file is damaged.
 */
export async function listSnapshots(repo: Repository): Promise<SnapshotFile[]> {
  const found: SnapshotFile[] = [];
  for (const file of await repo.storage.list(SNAPSHOTS)) {
    const id = file.path.slice(file.path.lastIndexOf("/") + 1);
    if (!SHA256_HEX.test(id)) continue;
    found.push(await readSnapshot(repo, id));
  }
  return found.sort((a, b) =>
    a.snapshot.name < b.snapshot.name
      ? -1
      : a.snapshot.name > b.snapshot.name
      ? 1
      : 0
  );
}

async function readSnapshot(
  repo: Repository,
  id: string,
): Promise<SnapshotFile> {
  const where = `${repo.storage.location}/${snapshotPath(id)}`;
  const bytes = await repo.readFile(snapshotPath(id), "snapshot file");
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    parsed = undefined;
  }
  const result = SnapshotSchema.safeParse(parsed);
  if (!result.success) {
    throw new RepoError(
      repo.storage.location,
      `Damaged repository: snapshot file "${where}": ${
        firstIssue(result.error)
      }`,
    );
  }
  return { id, snapshot: result.data, bytes: bytes.length };
}

/**
 * The snapshot of that name, or the newest for `latest`.
 *
 * @param repo The repository.
 * @param name `memory_YYYYMMDD_HHMMSS` or `latest`.
 * @returns The snapshot.
 * @throws {RepoError} When there is none of that name.
 */
export async function findSnapshot(
  repo: Repository,
  name: string,
): Promise<SnapshotFile> {
  const all = await listSnapshots(repo);
  const found = name === "latest"
    ? all.at(-1)
    : all.findLast((s) => s.snapshot.name === name);
  if (!found) {
    const names = all.map((s) => s.snapshot.name);
    throw new RepoError(
      repo.storage.location,
      names.length === 0
        ? `Repository "${repo.storage.location}" holds no snapshot yet`
        : `No snapshot "${name}" in "${repo.storage.location}" (it holds ${names.length}: ${
          names.slice(-3).join(", ")
        }${names.length > 3 ? ", …" : ""}; or use latest)`,
    );
  }
  return found;
}

/**
 * The memories a tree blob of a snapshot lists.
 *
 * @param repo The repository.
 * @param treeId The tree.
 * @param snapshot The snapshot it belongs to, for messages.
 * @returns Its entries.
 * @throws {RepoError} When it is missing, damaged or not a tree.
 */
export async function readTree(
  repo: Repository,
  treeId: string,
  snapshot: Snapshot,
): Promise<TreeEntry[]> {
  const entries = decodeTree(await repo.read(treeId));
  if (!entries) {
    throw new RepoError(
      repo.storage.location,
      `Damaged repository: tree ${
        treeId.slice(0, 12)
      } of snapshot ${snapshot.name} cannot be read`,
    );
  }
  return entries;
}

/**
 * A snapshot's memories, in the order the backup read them.
 *
 * @param repo The repository.
 * @param snapshot The snapshot.
 * @param includeVectors Give each memory its vector (default `true`).
 * @returns Raw memory records.
 */
export async function* snapshotMemories(
  repo: Repository,
  snapshot: Snapshot,
  includeVectors = true,
): AsyncGenerator<RawRecord> {
  try {
    yield* memoriesOf(repo, snapshot, includeVectors);
  } finally {
    await repo.reading(() => Promise.resolve());
  }
}

async function* memoriesOf(
  repo: Repository,
  snapshot: Snapshot,
  includeVectors: boolean,
): AsyncGenerator<RawRecord> {
  for (const treeId of snapshot.trees) {
    for (const entry of await readTree(repo, treeId, snapshot)) {
      const record = await repo.read(entry.record);
      const vector = entry.vector !== undefined && includeVectors
        ? await repo.read(entry.vector)
        : undefined;
      const joined = joinRecord(record, vector, entry.position);
      yield joined;
    }
  }
}

/**
 * Writes a snapshot's relationship copy to a new file.
 *
 * @param repo The repository.
 * @param snapshot The snapshot (with a relationship copy).
 * @param path The new file.
 * @throws {RepoError} When the file's SHA-256 differs from the snapshot's.
 */
export function writeRelationshipsFile(
  repo: Repository,
  snapshot: Snapshot,
  path: string,
): Promise<void> {
  return repo.reading(() => writeCopy(repo, snapshot, path));
}

async function writeCopy(
  repo: Repository,
  snapshot: Snapshot,
  path: string,
): Promise<void> {
  const file = snapshot.relationships_file;
  if (!file) return;
  const whole = createHash("sha256");
  {
    using out = await Deno.open(path, { write: true, createNew: true });
    for (const chunk of file.chunks) {
      const bytes = await repo.read(chunk);
      whole.update(bytes);
      await writeAll(out, bytes);
    }
    await out.sync();
  }
  if (whole.digest("hex") !== file.sha256) {
    throw new RepoError(
      repo.storage.location,
      `Damaged repository: the relationship copy of snapshot ${snapshot.name} does not match its SHA-256`,
    );
  }
}
