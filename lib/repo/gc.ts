/**
 * Frees what no kept snapshot needs: after `prune --repo` has removed the
 * snapshots the policy does not keep, every blob the others need is marked,
 * and each pack is kept, deleted (nothing in it is needed), or repacked
 * (less than {@linkcode REPACK_BELOW} of its bytes are needed: those blobs
 * are written into new packs). A pack no index names and a half-written
 * `.tmp-` file (both left by a killed backup) are deleted too: the
 * repository is locked, so no backup is writing one.
 *
 * Order, so that a crash at any point loses nothing a kept snapshot needs:
 * new packs, then one index file naming every pack that stays, then the old
 * index files are removed, then the packs that go.
 *
 * @module
 */

import { packPath, PACKS } from "./layout.ts";
import type { IndexFile } from "./layout.ts";
import type { BlobPlace, Repository } from "./repository.ts";
import type { Snapshot } from "./snapshot.ts";
import { readTree } from "./reader.ts";

/** A pack is repacked when less than this share of its bytes is needed. */
export const REPACK_BELOW = 0.5;

/** What a collection frees (or would). */
export interface Collection {
  /** Packs deleted whole. */
  readonly deletedPacks: number;
  /** Packs whose needed blobs were written again. */
  readonly repackedPacks: number;
  /** Bytes of packs removed. */
  readonly bytesRemoved: number;
  /** Bytes of new packs written by the repack. */
  readonly bytesWritten: number;
}

/**
 * Every blob a set of snapshots needs: their trees, the records and vectors
 * the trees list, the chunks of their relationship copies.
 *
 * @param repo The repository.
 * @param snapshots The snapshots kept.
 * @returns The blob ids.
 */
export function neededBlobs(
  repo: Repository,
  snapshots: readonly Snapshot[],
): Promise<Set<string>> {
  return repo.reading(() => mark(repo, snapshots));
}

async function mark(
  repo: Repository,
  snapshots: readonly Snapshot[],
): Promise<Set<string>> {
  const needed = new Set<string>();
  for (const snapshot of snapshots) {
    for (const treeId of snapshot.trees) {
      if (needed.has(treeId)) continue; // an unchanged tree: its memories too
      needed.add(treeId);
      for (const entry of await readTree(repo, treeId, snapshot)) {
        needed.add(entry.record);
        if (entry.vector !== undefined) needed.add(entry.vector);
      }
    }
    for (const chunk of snapshot.relationships_file?.chunks ?? []) {
      needed.add(chunk);
    }
  }
  return needed;
}

/**
 * Deletes and repacks what is not needed.
 *
 * @param repo The repository (locked).
 * @param needed What {@linkcode neededBlobs} returned for the snapshots kept.
 * @param dryRun Count, change nothing.
 * @returns What it freed.
 */
export function collectGarbage(
  repo: Repository,
  needed: Set<string>,
  dryRun: boolean,
): Promise<Collection> {
  return repo.reading(() => sweep(repo, needed, dryRun));
}

async function sweep(
  repo: Repository,
  needed: Set<string>,
  dryRun: boolean,
): Promise<Collection> {
  const stored = new Map(
    (await repo.storage.list(PACKS)).map((f) => [f.path, f.size]),
  );
  const byPack = new Map<string, BlobPlace[]>();
  for (const blob of repo.blobs()) {
    const list = byPack.get(blob.pack) ?? [];
    list.push(blob);
    byPack.set(blob.pack, list);
  }
  const keep: IndexFile["packs"] = [];
  const remove: string[] = [];
  const repack: BlobPlace[] = [];
  let repackedPacks = 0;
  for (const [pack, blobs] of byPack) {
    const size = stored.get(packPath(pack));
    if (size === undefined) continue; // already gone; the check reports it
    const total = blobs.reduce((n, b) => n + b.length, 0);
    const used = blobs.filter((b) => needed.has(b.id));
    const usedBytes = used.reduce((n, b) => n + b.length, 0);
    if (used.length === 0) {
      remove.push(pack);
    } else if (usedBytes < REPACK_BELOW * total) {
      remove.push(pack);
      repack.push(...used);
      repackedPacks++;
    } else {
      keep.push({ id: pack, size, blobs: blobs.map(withoutPack) });
    }
  }
  const indexed = new Set(byPack.keys());
  const orphans = [...stored.keys()].filter((path) =>
    !indexed.has(path.slice(path.lastIndexOf("/") + 1))
  );
  const bytesRemoved = remove.reduce(
    (n, p) => n + (stored.get(packPath(p)) ?? 0),
    0,
  ) + orphans.reduce((n, p) => n + stored.get(p)!, 0);
  let bytesWritten = 0;
  if (dryRun) {
    bytesWritten = repack.reduce((n, b) => n + b.length, 0);
  } else {
    for (const blob of repack) {
      await repo.add(blob.type, await repo.read(blob.id), true);
    }
    const written = await repo.commit();
    bytesWritten = written.bytes;
    if (remove.length > 0 || orphans.length > 0 || repack.length > 0) {
      await repo.rewriteIndex([...keep, ...written.packs]);
    }
    // A repack can write a pack that is already there by name: the same
    // blobs repacked by a prune killed before it removed the old pack
    // (its pack then counted as an orphan here). What was just written
    // stays.
    const wrote = new Set(written.packs.map((p) => packPath(p.id)));
    for (const pack of remove) {
      if (!wrote.has(packPath(pack))) await repo.storage.remove(packPath(pack));
    }
    for (const path of orphans) {
      if (!wrote.has(path)) await repo.storage.remove(path);
    }
    await repo.storage.removeTemporary?.();
  }
  return {
    deletedPacks: remove.length - repackedPacks + orphans.length,
    repackedPacks,
    bytesRemoved,
    bytesWritten,
  };
}

function withoutPack(
  blob: BlobPlace,
): IndexFile["packs"][number]["blobs"][number] {
  const { pack: _pack, ...entry } = blob;
  return entry;
}
