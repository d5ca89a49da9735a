/**
 * A backup into a deduplicated repository (`backup --repo`): the same
 * capture as a backup directory, written as a snapshot (only the blobs the
 * repository does not hold yet), then checked by reading back every blob
 * it needs. The repository is locked for the duration: a second backup or
 * a prune waits, then fails naming the holder.
 *
 * ```
 * capture ─▶ writeSnapshot ─▶ packs, index, snapshot ─▶ checkSnapshot
 * ```
 *
 * @module
 */

import type { OnProgress } from "../progress.ts";
import type { Config } from "../store/config.ts";
import { BackupError, RepoError, StoreError } from "../errors.ts";
import { backupName, TEMP_PREFIX } from "../format/layout.ts";
import { openMemoryStore } from "../store/memory/read.ts";
import { relationshipSourceOf, withStoreCapture } from "../store/capture.ts";
import { describeFsError, removeQuietly } from "../util/fs.ts";
import { removeOnInterrupt } from "../util/interrupt.ts";
import { isRemote, openStorage } from "../repo/location.ts";
import { lockRepository } from "../repo/lock.ts";
import { freeMoment } from "./_moment.ts";
import { storedBytes } from "../repo/storage.ts";
import { Repository } from "../repo/repository.ts";
import { listSnapshots } from "../repo/reader.ts";
import { saveSnapshot, writeSnapshot } from "../repo/writer.ts";
import { SNAPSHOTS } from "../repo/layout.ts";
import {
  checkFileNames,
  checkSnapshot,
  type FileCheck,
  type RepoCheck,
} from "../repo/check.ts";
import type { Snapshot } from "../repo/snapshot.ts";
import type { Keys } from "../format/encryption.ts";

/** What to back up and into which repository. */
export interface RepoBackupOptions {
  /** The stores, table and user filter. */
  readonly config: Config;
  /** The repository: a directory or `s3://BUCKET/PREFIX`. */
  readonly repo: string;
  /** Reads the S3 settings, for an `s3://` repository. */
  readonly env?: ((name: string) => string | undefined) | undefined;
  /** Encrypt a new repository to these age public keys. */
  readonly recipients?: readonly string[] | undefined;
  /** Open an encrypted one (its index is read to skip what it holds). */
  readonly keys?: Keys | undefined;
  /** Read back every blob the snapshot needs (default `true`). */
  readonly verify?: boolean;
  /** The clock, for tests. */
  readonly now?: () => Date;
  readonly onProgress?: OnProgress | undefined;
  readonly onWarning?: ((message: string) => void) | undefined;
  /** How long to wait for another backup or prune (default 60 s). */
  readonly lockWaitMs?: number | undefined;
}

/** A snapshot taken. */
export interface RepoBackupResult {
  readonly repo: string;
  readonly id: string;
  readonly snapshot: Snapshot;
  /** The repository's size afterwards. */
  readonly repositoryBytes: number;
  /** The read-back check, unless it was skipped. */
  readonly check: RepoCheck | undefined;
  /**
   * For an encrypted repository backed up without its identity: every file
   * re-read and hashed (opening them needs the identity).
   */
  readonly filesChecked?: FileCheck | undefined;
}

/**
 * Backs up both stores into a repository, creating it when the directory
 * is empty or absent.
 *
 * @param options What and where.
 * @returns The snapshot.
 * @throws {StoreError} When a store cannot be read.
 * @throws {RepoError} When the repository cannot be written or read back.
 */
export async function backupToRepo(
  options: RepoBackupOptions,
): Promise<RepoBackupResult> {
  const { config, repo: dir } = options;
  const now = options.now ?? (() => new Date());
  const startedMs = performance.now();
  const progress = options.onProgress ?? (() => {});
  // The relationship copy is made on this machine: in the repository
  // directory, or for a bucket in the backup directory.
  const scratch = isRemote(dir) ? config.backupDir : dir;
  try {
    await Deno.mkdir(scratch, { recursive: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) throw error;
    throw new RepoError(
      dir,
      `Cannot create ${
        isRemote(dir) ? "backup directory" : "repository"
      } "${scratch}": ${describeFsError(error)}`,
      { cause: error },
    );
  }
  const storage = openStorage(dir, options.env);
  const lock = await lockRepository(storage, "backup", {
    waitMs: options.lockWaitMs,
  });
  try {
    for (const who of lock.stale) {
      options.onWarning?.(
        `took over the lock of "${dir}" left by ${who}, which is no longer running`,
      );
    }
    const repo = await Repository.open(storage, {
      create: true,
      recipients: options.recipients,
      keys: options.keys,
    });
    const taken = new Set(
      (await listSnapshots(repo)).map((s) => s.snapshot.name),
    );
    const relationshipSource = await relationshipSourceOf(
      config,
      options.onWarning,
    );
    progress({ what: "connecting" });
    const store = await openMemoryStore(config.store);
    const started = await freeMoment(
      now,
      (name) => taken.has(name),
      (name) =>
        new BackupError(name, `Cannot back up: snapshot ${name} exists`),
    );
    const name = backupName(started);
    const copy = `${scratch}/${TEMP_PREFIX}${name}-${Deno.pid}.db`;
    using _ = removeOnInterrupt(copy);
    let written;
    try {
      written = await withStoreCapture(
        store,
        relationshipSource,
        {
          config,
          format: "json",
          includeVectors: true,
          name,
          started,
          relationshipsCopy: copy,
          onProgress: progress,
        },
        (capture) => writeSnapshot(repo, capture, startedMs),
      );
    } catch (error) {
      if (
        error instanceof Deno.errors.NotCapable ||
        error instanceof StoreError || error instanceof BackupError ||
        error instanceof RepoError
      ) throw error;
      throw new RepoError(
        dir,
        `Cannot back up into "${dir}": ${describeFsError(error)}`,
        { cause: error },
      );
    } finally {
      await store.close();
      await removeQuietly(copy);
    }
    // Read back before the snapshot file is written: a backup killed or
    // failing in its check leaves no snapshot, as a backup directory is
    // renamed into place only once verified.
    let check: RepoCheck | undefined;
    let filesChecked: FileCheck | undefined;
    if ((options.verify ?? true) && repo.sealer.encrypted && !options.keys) {
      // Encrypted, and only public keys here: every file re-read and
      // hashed against its name; opening them needs the identity.
      progress({ what: "reading the files back" });
      filesChecked = await checkFileNames(storage);
    } else if (options.verify ?? true) {
      progress({ what: "reading the snapshot back" });
      check = await checkSnapshot(
        repo,
        { id: "", snapshot: written.snapshot, bytes: 0 },
        true,
      );
    }
    const id = await saveSnapshot(repo, written.snapshot);
    if (!(await storage.list(SNAPSHOTS)).some((f) => f.path.endsWith(id))) {
      throw new RepoError(dir, `The snapshot ${name} did not reach "${dir}"`);
    }
    const repositoryBytes = await storedBytes(storage);
    return {
      repo: dir,
      id,
      snapshot: written.snapshot,
      repositoryBytes,
      check,
      filesChecked,
    };
  } finally {
    await lock.release();
  }
}
