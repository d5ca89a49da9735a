/**
 * The backup's recorded index definitions, rewritten for the restore's
 * target table; anything that is not a plain index definition is skipped
 * (and reported with its SQL) rather than run.
 *
 * @module
 */

import type { BackupMetadata } from "../../format/records.ts";
import { quoteIdent } from "../sql.ts";
import { type MemoryTargetPlan, qualified } from "./load.ts";

const SAFE_FUNCTIONS = new Set(["lower", "upper", "coalesce"]);
/** Words a definition may put before a parenthesis: options, a predicate. */
const KEYWORDS = new Set(["with", "where", "and", "or", "not", "in"]);

/**
 * The backup's index definitions rewritten for the target table, and those
 * memkeep will not run because they are not plain index definitions.
 *
 * @param indexes `CREATE INDEX` statements from the backup's metadata.
 * @param metadata The backup's metadata (the original table name).
 * @param plan The target.
 * @returns Statements to run and statements skipped.
 */
export function indexStatements(
  indexes: readonly string[],
  metadata: BackupMetadata,
  plan: MemoryTargetPlan,
): { run: string[]; skipped: string[] } {
  const run: string[] = [];
  const skipped: string[] = [];
  const shape =
    /^CREATE (UNIQUE )?INDEX (\S+) ON (ONLY )?(\S+) USING (\w+) \((.+)\)$/;
  const source = `${metadata.memories.schema}.${metadata.memories.table}`;
  for (const ddl of indexes) {
    const m = shape.exec(ddl);
    if (!m || ddl.includes(";") || ddl.includes("--") || ddl.includes("/*")) {
      skipped.push(ddl);
      continue;
    }
    const [, unique, name, , on, method, rest] = m as unknown as string[];
    const calls = [...rest!.matchAll(/([A-Za-z_][A-Za-z0-9_]*)\s*\(/g)].map((
      c,
    ) => c[1]!.toLowerCase());
    const plain =
      ["btree", "hash", "gin", "gist", "brin", "hnsw", "ivfflat"].includes(
        method!,
      ) &&
      calls.every((c) => SAFE_FUNCTIONS.has(c) || KEYWORDS.has(c)) &&
      /^[\w\s"'.,:()>=\-<+*?@&|!~%/^#]+$/.test(rest!);
    if (!plain || unquote(on!) !== source) {
      skipped.push(ddl);
      continue;
    }
    if (unique && /^\(?id\)?$/.test(rest!.replace(/\).*$/, "").trim())) {
      continue; // the primary key
    }
    const oldName = unquote(name!);
    const newName = metadata.memories.table === plan.table
      ? oldName
      : (oldName.startsWith(metadata.memories.table)
        ? plan.table + oldName.slice(metadata.memories.table.length)
        : `${plan.table}_${oldName}`).slice(0, 63);
    run.push(
      `CREATE ${unique ?? ""}INDEX IF NOT EXISTS ${quoteIdent(newName)} ON ${
        qualified(plan)
      } USING ${method} (${rest})`,
    );
  }
  return { run, skipped };
}

function unquote(name: string): string {
  return name.split(".").map((p) =>
    p.replace(/^"|"$/g, "").replaceAll('""', '"')
  ).join(".");
}
