/**
 * File-system helpers shared by the commands.
 *
 * @module
 */

/**
 * Whether a path exists (without following a final symlink).
 *
 * @param path The path.
 * @returns `true` when something is there.
 */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/**
 * Removes a file or directory tree, ignoring failures.
 *
 * @param path The path.
 */
export async function removeQuietly(path: string): Promise<void> {
  try {
    await Deno.remove(path, { recursive: true });
  } catch {
    // best effort: what is left is named as temporary
  }
}

/**
 * The directory a path is in: `.` for a bare name, `/` at the root.
 *
 * @param path A file or directory path.
 * @returns Its parent directory.
 */
export function parentDir(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash > 0 ? path.slice(0, slash) : slash === 0 ? "/" : ".";
}

/**
 * `mkdir -p`, returning the directories it made, deepest first, so that a
 * command that fails can leave the file system as it found it. A parent the
 * process may not look at (outside its grant) is taken to exist: creating
 * the directory then says whether it does.
 *
 * @param dir The directory.
 * @returns The directories made (none when `dir` exists).
 */
export async function makeDirs(dir: string): Promise<string[]> {
  const missing: string[] = [];
  for (
    let d = dir;
    d !== "/" && d !== "." && !(await existsOrHidden(d));
    d = parentDir(d)
  ) missing.push(d);
  if (missing.length > 0) await Deno.mkdir(dir, { recursive: true });
  return missing;
}

async function existsOrHidden(path: string): Promise<boolean> {
  try {
    return await exists(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) return true;
    throw error;
  }
}

/**
 * Removes directories {@linkcode makeDirs} made, deepest first, where they
 * are still empty.
 *
 * @param made What `makeDirs` returned.
 */
export async function removeMadeDirs(made: string[]): Promise<void> {
  for (const d of made) {
    try {
      await Deno.remove(d);
    } catch {
      break; // not empty (something else is there now): keep it, and above
    }
  }
}

/**
 * Flushes a directory's entries to disk, so a rename survives a power cut.
 *
 * @param path The directory.
 */
export async function syncDir(path: string): Promise<void> {
  try {
    using dir = await Deno.open(path, { read: true });
    await dir.sync();
  } catch {
    // Not every platform can sync a directory; the data files are synced.
  }
}

/**
 * A file-system error in a few words: `permission denied`, `no space left on
 * device`, …
 *
 * @param error What was thrown.
 * @returns The reason.
 */
export function describeFsError(error: unknown): string {
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Deno.errors.NotFound) return "no such file or directory";
  if (error instanceof Deno.errors.AlreadyExists) return "already exists";
  if (error instanceof Deno.errors.IsADirectory) return "is a directory";
  if (error instanceof Deno.errors.NotADirectory) {
    return "a parent is not a directory";
  }
  const message = error instanceof Error ? error.message : String(error);
  if (/no space left/i.test(message)) return "no space left on device";
  if (/file too large/i.test(message)) {
    return "file too large (size limit reached)";
  }
  if (/read-only file system/i.test(message)) return "read-only file system";
  return message.replace(/\s+/g, " ");
}

/**
 * The pieces of a file read in chunks, as one array.
 *
 * @param parts The chunks, in order.
 * @returns Their bytes, joined.
 */
export function joinChunks(parts: Uint8Array[]): Uint8Array {
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.length;
  }
  return bytes;
}

/**
 * Writes all of `bytes` to a file (a write may take fewer bytes than it is
 * given).
 *
 * @param file The open file.
 * @param bytes What to write.
 */
export async function writeAll(
  file: Deno.FsFile,
  bytes: Uint8Array,
): Promise<void> {
  let at = 0;
  while (at < bytes.length) at += await file.write(bytes.subarray(at));
}
