/**
 * The one interface memkeep needs from a Postgres connection, whether it is
 * postgres.js over the wire or PGlite in-process, and SQL text helpers.
 *
 * @module
 */

/** A row as an array of column values in text form (`null` for NULL). */
export type TextRow = (string | null)[];

/** One Postgres session: queries run in order on the same connection. */
export interface SqlSession {
  /**
   * Runs one statement.
   *
   * @param text The SQL text; every selected column should be cast to text.
   * @param params Positional parameters `$1`, `$2`, … as text.
   * @returns The rows, each an array of text values.
   */
  query(text: string, params?: (string | null)[]): Promise<TextRow[]>;
  /**
   * Runs `COPY … TO STDOUT` and streams what the server sends (text format:
   * one line per row). Absent where the server does not serve it (the
   * in-process PGlite and pglite-socket, where it never ends).
   *
   * @param text The COPY statement.
   * @returns The bytes, as they arrive.
   */
  copyOut?(text: string): AsyncIterable<Uint8Array>;
  /**
   * Starts `COPY … FROM STDIN`. Absent where the server does not take it
   * (the in-process PGlite and pglite-socket, which hangs on it).
   *
   * @param text The COPY statement.
   * @returns A writer; its `end` resolves when the server has taken every
   * row, or rejects with the server's reason.
   */
  copyIn?(text: string): Promise<CopyWriter>;
  /** Closes the session; safe to call twice. */
  close(): Promise<void>;
}

/** The client side of `COPY … FROM STDIN`. */
export interface CopyWriter {
  /** Sends rows in COPY text format; resolves when they are on the wire. */
  write(chunk: Uint8Array): Promise<void>;
  /** Ends the COPY; resolves once the server has stored every row. */
  end(): Promise<void>;
}

/**
 * Quotes an identifier for SQL: `"my ""table"""`.
 *
 * @param name The identifier.
 * @returns The quoted identifier.
 */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * Quotes a string as a SQL literal (`standard_conforming_strings` on, as on
 * every supported server).
 *
 * @param text The string.
 * @returns `'text'`, with quotes doubled.
 */
export function quoteLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}
