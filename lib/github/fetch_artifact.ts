/**
 * Downloads a backup artifact from GitHub Actions so that `restore --source`
 * can take it: the newest `memory_*` artifact or one by name, checked
 * against the digest GitHub recorded at upload and against the backup's own
 * checksums, and moved into place as `NAME.zip` only when both agree.
 *
 * @module
 */

import { BACKUP_NAME, parseBackupName } from "../format/layout.ts";
import {
  type Artifact,
  downloadArtifact,
  type GitHubSettings,
  listArtifacts,
} from "./client.ts";
import { GitHubError } from "../errors.ts";
import { openBackupSource } from "../restore/source.ts";
import { verifyBackup } from "../verify/verify.ts";
import { removeQuietly } from "../util/fs.ts";
import { removeOnInterrupt } from "../util/interrupt.ts";

/** A downloaded artifact. */
export interface FetchedArtifact {
  /** The artifact. */
  readonly artifact: Artifact;
  /** The zip written. */
  readonly path: string;
  /** Its SHA-256. */
  readonly sha256: string;
  /** Its size. */
  readonly bytes: number;
  /** Whether GitHub recorded a digest to compare with. */
  readonly digestChecked: boolean;
  /** Whether the backup inside is encrypted (its ciphertext was checked). */
  readonly encrypted: boolean;
}

/**
 * Picks and downloads an artifact.
 *
 * @param gh The GitHub settings.
 * @param which `latest` or an artifact name.
 * @param out The directory to write `NAME.zip` into (created).
 * @returns The artifact and the zip.
 * @throws {GitHubError} When there is no such artifact, it expired, the
 * download fails, or the digest or checksums disagree.
 */
export async function fetchArtifact(
  gh: GitHubSettings,
  which: string,
  out: string,
): Promise<FetchedArtifact> {
  const artifacts = (await listArtifacts(gh)).filter((a) =>
    BACKUP_NAME.test(a.name)
  );
  let artifact: Artifact | undefined;
  if (which === "latest") {
    artifact = artifacts.filter((a) =>
      !a.expired
    ).sort((a, b) =>
      (parseBackupName(b.name)?.getTime() ?? 0) -
        (parseBackupName(a.name)?.getTime() ?? 0) ||
      b.created_at.localeCompare(a.created_at)
    )[0];
    if (!artifact) {
      throw new GitHubError(
        `No backup artifact to fetch in ${gh.repository} (none named memory_*, or all expired)`,
      );
    }
  } else {
    const named = artifacts.filter((a) => a.name === which);
    artifact = named.find((a) => !a.expired);
    if (!artifact) {
      throw new GitHubError(
        named.length > 0
          ? `Artifact ${which} has expired; GitHub no longer keeps it`
          : `No artifact named ${which} in ${gh.repository}`,
      );
    }
  }
  await Deno.mkdir(out, { recursive: true });
  const partial = `${out}/${artifact.name}.zip.partial-${Deno.pid}`;
  const scratch = `${out}/.check-${artifact.name}-${Deno.pid}`;
  using _partial = removeOnInterrupt(partial);
  using _scratch = removeOnInterrupt(scratch);
  try {
    const { sha256, bytes } = await downloadArtifact(gh, artifact, partial);
    const expected = artifact.digest?.replace(/^sha256:/, "");
    if (expected && expected !== sha256) {
      throw new GitHubError(
        `Artifact ${artifact.name} does not match its digest: got sha256:${sha256}, GitHub recorded ${artifact.digest}`,
      );
    }
    const source = await openBackupSource(partial, scratch);
    try {
      const report = await verifyBackup(source.dir);
      if (!report.ok) {
        const p = report.problem;
        throw new GitHubError(
          `Artifact ${artifact.name} holds a backup that fails verification: ${
            p ? `${p.file}: ${p.reason}` : ""
          }`,
        );
      }
      const path = `${out}/${artifact.name}.zip`;
      await Deno.rename(partial, path);
      return {
        artifact,
        path,
        sha256,
        bytes,
        digestChecked: expected !== undefined,
        encrypted: report.encrypted,
      };
    } finally {
      await source.cleanup();
    }
  } finally {
    await removeQuietly(partial);
    await removeQuietly(scratch);
  }
}
