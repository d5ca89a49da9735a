/**
 * Error classes for memkeep. Bad input uses the built-in classes
 * (`TypeError`, `RangeError`, `SyntaxError`); the domain errors below extend
 * the closest built-in, set `name` and carry the fields a caller needs to
 * explain the failure.
 *
 * @module
 */

/** A flag, setting or argument that cannot be used as given: exit code 2. */
export class UsageError extends TypeError {
  /** The flag or setting at fault, e.g. `--output` or `MEMORY_TABLE`. */
  readonly setting: string;

  /**
   * @param setting The flag or environment variable at fault.
   * @param message A one-line message naming the setting.
   * @param options Standard error options (`cause`).
   */
  constructor(setting: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "UsageError";
    this.setting = setting;
  }
}

/** The memory store or relationship store cannot be used as asked. */
export class StoreError extends Error {
  /**
   * @param message A one-line message naming the store and the cause.
   * @param options Standard error options (`cause`).
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StoreError";
  }
}

/** A backup could not be written, or was written and failed its checks. */
export class BackupError extends Error {
  /** The backup directory or output directory concerned. */
  readonly path: string;

  /**
   * @param path The directory concerned.
   * @param message A one-line message.
   * @param options Standard error options (`cause`).
   */
  constructor(path: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "BackupError";
    this.path = path;
  }
}

/** A backup file is not what its metadata and checksums say it is. */
export class VerifyError extends Error {
  /** The file inside the backup, e.g. `export.json`. */
  readonly file: string;
  /** The 1-based line of the first problem, when it has one. */
  readonly line: number | undefined;
  /** The reason, without the file and line. */
  readonly reason: string;

  /**
   * @param file The file inside the backup.
   * @param reason What is wrong.
   * @param line The 1-based line, when known.
   * @param options Standard error options (the `cause`).
   */
  constructor(
    file: string,
    reason: string,
    line?: number,
    options?: ErrorOptions,
  ) {
    super(`${file}${line === undefined ? "" : `:${line}`}: ${reason}`, options);
    this.name = "VerifyError";
    this.file = file;
    this.line = line;
    this.reason = reason;
  }
}

/** Prune refused or failed; nothing, or only what is listed, was deleted. */
export class PruneError extends Error {
  /**
   * @param message One line.
   * @param options Standard error options.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PruneError";
  }
}

/** A backup that cannot be restored, or a target that cannot take it. */
export class RestoreError extends Error {
  /**
   * @param message One line.
   * @param options Standard error options.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RestoreError";
  }
}

/** A restore source that cannot be used. */
export class SourceError extends Error {
  /** The source path. */
  readonly path: string;

  /**
   * @param path The source.
   * @param message One line.
   * @param options Standard error options.
   */
  constructor(path: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "SourceError";
    this.path = path;
  }
}

/** A repository that cannot be read or written, or is damaged. */
export class RepoError extends Error {
  /** Where the repository is (no credentials). */
  readonly location: string;

  /**
   * @param location The repository.
   * @param message One line.
   * @param options Standard error options.
   */
  constructor(location: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RepoError";
    this.location = location;
  }
}

/** A call to GitHub that failed. */
export class GitHubError extends Error {
  /** The HTTP status, when there was an answer. */
  readonly status: number | undefined;

  /**
   * @param message One line.
   * @param status The HTTP status.
   * @param options Standard error options.
   */
  constructor(message: string, status?: number, options?: ErrorOptions) {
    super(message, options);
    this.name = "GitHubError";
    this.status = status;
  }
}

/**
 * The message of any thrown value, on one line.
 *
 * @param error Anything thrown.
 * @returns The message with line breaks folded into spaces and other
 * control characters escaped (`\u001b`), as {@linkcode oneLine} does.
 */
export function errorMessage(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  // Any other control character (an escape sequence from a file name or a
  // server's message, say) is shown escaped, never sent to the terminal.
  return oneLine(text.replace(/\s*[\r\n]+\s*/g, " ").trim(), Infinity);
}

/**
 * A value read from a backup, quoted for a one-line message: JSON quoting
 * (so a line break shows as `\n`), cut after `max` characters.
 *
 * @param value The value, e.g. an id.
 * @param max How many characters to show.
 * @returns The quoted value.
 */
export function quote(value: string, max = 80): string {
  const shown = value.length > max ? `${value.slice(0, max)}…` : value;
  return oneLine(JSON.stringify(shown), Infinity);
}

/**
 * Text that may hold values from a backup, made one line: line breaks and
 * other control characters (C0, DEL, C1, the Unicode line and paragraph
 * separators) escaped as in JSON, cut after `max` characters.
 *
 * @param text The text.
 * @param max How many characters to keep.
 * @returns The text on one line.
 */
export function oneLine(text: string, max = 300): string {
  const shown = text.length > max ? `${text.slice(0, max)}…` : text;
  return shown.replace(
    // deno-lint-ignore no-control-regex
    /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g,
    (c) => ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

const ESCAPES: Record<string, string> = {
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
};
