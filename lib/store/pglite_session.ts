/**
 * A {@linkcode SqlSession} on the embedded store: PGlite with pgvector,
 * in-process, on a data directory.
 *
 * @module
 */

import { PGlite } from "@electric-sql/pglite";
import { vector } from "@electric-sql/pglite-pgvector";
import { oneLine, StoreError } from "../errors.ts";
import { describeFsError, exists } from "../util/fs.ts";
import type { SqlSession, TextRow } from "./sql.ts";

/**
 * Opens the embedded store.
 *
 * @param dataDir The PGlite data directory.
 * @param options `create: true` makes a new store when there is none;
 * otherwise a missing store is an error.
 * @returns The session and the PGlite instance.
 * @throws {StoreError} When there is no store at `dataDir` and `create` is not set.
 */
export async function openPgliteSession(
  dataDir: string,
  options: { create?: boolean } = {},
): Promise<SqlSession & { db: PGlite }> {
  if (!options.create && !(await exists(`${dataDir}/PG_VERSION`))) {
    throw new StoreError(
      `No embedded store at "${dataDir}": run "deno task demo" to create one, or set DATABASE_URL`,
    );
  }
  let db: PGlite;
  try {
    if (options.create) await Deno.mkdir(dataDir, { recursive: true });
    db = await PGlite.create({ dataDir, extensions: { vector } });
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) throw error;
    throw new StoreError(
      `Cannot open the embedded store "${dataDir}": ${describeFsError(error)}`,
      { cause: error },
    );
  }
  let closed = false;
  return {
    db,
    async query(
      text: string,
      params: (string | null)[] = [],
    ): Promise<TextRow[]> {
      try {
        const result = await db.query<TextRow>(text, params, {
          rowMode: "array",
        });
        return result.rows;
      } catch (error) {
        // The server may quote a whole value from the backup: keep it short.
        throw new StoreError(
          oneLine(
            (error instanceof Error ? error.message : String(error)).replace(
              /\s+/g,
              " ",
            ),
          ),
          { cause: error },
        );
      }
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await db.close();
    },
  };
}
