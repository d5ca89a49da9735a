/**
 * `deno run -q bench/long_records.ts [--sizes 4,8,16,32] [--json]`
 *
 * How reading `export.json` scales with the length of one record: a record
 * whose content is N MiB, in memkeep's own layout (one record per line) and
 * with the whole document on one line (the layout-free scanner), read in
 * the 64 KiB pieces `verify` and `restore` read. Reading must grow linearly:
 * twice the record, about twice the time. Needs no permissions.
 *
 * A benchmark, never a test: the suite only runs it at a tiny size.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { READ_CHUNK, readExport } from "../lib/format/json/reader.ts";
import * as log from "../lib/cli/log.ts";

interface Row {
  mib: number;
  layout: "one record per line" | "one line";
  ms: number;
  /** Milliseconds per MiB. */
  ms_per_mib: number;
}

function documentOf(mib: number, layout: Row["layout"]): Uint8Array {
  const record = `{"id":"a","content":"${
    "x".repeat(mib * 1024 * 1024)
  }","metadata":{},"created_at":null}`;
  const text = layout === "one line"
    ? `{"metadata":{},"memories":[${record}],"relationships":[]}`
    : `{"metadata":{},\n"memories":[\n${record}\n],\n"relationships":[\n]}\n`;
  return new TextEncoder().encode(text);
}

async function* pieces(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += READ_CHUNK) {
    yield bytes.subarray(i, i + READ_CHUNK);
  }
}

async function measure(mib: number, layout: Row["layout"]): Promise<Row> {
  const bytes = documentOf(mib, layout);
  const start = performance.now();
  let chars = 0;
  for await (const entry of readExport(pieces(bytes))) {
    chars += entry.text.length;
  }
  const ms = performance.now() - start;
  if (chars < mib * 1024 * 1024) throw new Error("the record was not read");
  return { mib, layout, ms: Math.round(ms), ms_per_mib: ms / mib };
}

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      sizes: { type: "string", default: "4,8,16,32" },
      json: { type: "boolean", default: false },
    },
  });
  const sizes = values.sizes.split(",").map(Number);
  if (sizes.some((n) => !Number.isInteger(n) || n < 1)) {
    log.error(`--sizes: "${values.sizes}" is not a list of whole MiB`);
    return 2;
  }
  const rows: Row[] = [];
  for (const layout of ["one record per line", "one line"] as const) {
    for (const mib of sizes) rows.push(await measure(mib, layout));
  }
  if (values.json) {
    // deno-lint-ignore no-console
    console.log(JSON.stringify({ rows }));
    return 0;
  }
  for (const r of rows) {
    // deno-lint-ignore no-console
    console.log(
      `${String(r.mib).padStart(4)} MiB  ${r.layout.padEnd(20)} ${
        String(r.ms).padStart(6)
      } ms  (${r.ms_per_mib.toFixed(1)} ms/MiB)`,
    );
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
