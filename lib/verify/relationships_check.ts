/**
 * The check of the relationship store's copy in a backup
 * (`relationships.db`): SQLite's integrity check, and every table's row
 * count against the metadata.
 *
 * @module
 */

import { canonical } from "../format/json/check.ts";
import { DatabaseSync } from "node:sqlite";
import { errorMessage } from "../errors.ts";
import { RELATIONSHIPS_COPY_FILE } from "../format/layout.ts";
import { type BackupMetadata } from "../format/records.ts";
import { countTables } from "../store/relationships/read.ts";
import { RELATIONSHIPS_TABLE } from "../format/sqlite_values.ts";
import { type BackupView } from "../format/view.ts";
import type { VerifyCheck } from "../format/check.ts";

export async function checkSnapshot(
  view: BackupView,
  metadata: BackupMetadata,
): Promise<VerifyCheck | undefined> {
  const entries = view.entries;
  const name = "snapshot";
  const file = metadata.relationships.snapshot;
  if (file === null) {
    return entries.has(RELATIONSHIPS_COPY_FILE)
      ? {
        name,
        ok: false,
        detail: "unexpected snapshot",
        problem: {
          file: RELATIONSHIPS_COPY_FILE,
          reason:
            "present, but metadata.json says there is no relationship store",
        },
      }
      : undefined;
  }
  if (entries.get(file) !== "file") return undefined; // reported by "files"
  let db: DatabaseSync;
  try {
    db = await view.openSqlite(file);
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) throw error;
    return {
      name,
      ok: false,
      detail: "snapshot cannot be opened",
      problem: { file, reason: errorMessage(error) },
    };
  }
  try {
    const check = db.prepare("pragma quick_check").get() as
      | Record<string, unknown>
      | undefined;
    const verdict = check ? String(Object.values(check)[0]) : "no answer";
    if (verdict !== "ok") {
      return {
        name,
        ok: false,
        detail: "snapshot is damaged",
        problem: { file, reason: `SQLite quick_check: ${verdict}` },
      };
    }
    const { tables, count } = countTables(db);
    if (canonical(tables) !== canonical(metadata.relationships.tables)) {
      return {
        name,
        ok: false,
        detail: "snapshot tables differ from metadata",
        problem: {
          file,
          reason: `tables ${canonical(tables)}, metadata.json says ${
            canonical(metadata.relationships.tables)
          }`,
        },
      };
    }
    if (count !== metadata.relationship_count) {
      return {
        name,
        ok: false,
        detail: "snapshot count differs",
        problem: {
          file,
          reason:
            `${RELATIONSHIPS_TABLE} holds ${count} rows, metadata.json says ${metadata.relationship_count}`,
        },
      };
    }
    const tableList = Object.entries(tables).map(([t, n]) =>
      `${t} ${n.toLocaleString("en-US")}`
    ).join(", ");
    return {
      name,
      ok: true,
      detail: `relationship snapshot intact (${tableList || "no tables"})`,
    };
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) throw error;
    return {
      name,
      ok: false,
      detail: "snapshot cannot be read",
      problem: { file, reason: errorMessage(error) },
    };
  } finally {
    db.close();
  }
}
