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
   */
  constructor(file: string, reason: string, line?: number) {
    super(`${file}${line === undefined ? "" : `:${line}`}: ${reason}`);
    this.name = "VerifyError";
    this.file = file;
    this.line = line;
    this.reason = reason;
  }
}

/**
 * The message of any thrown value, on one line.
 *
 * @param error Anything thrown.
 * @returns The message with line breaks folded into spaces.
 */
export function errorMessage(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.replace(/\s*[\r\n]+\s*/g, " ").trim();
}
