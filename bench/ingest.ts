/**
 * The store's own ingest limit, for the benchmark: a fresh PGlite loads the
 * rows of a `COPY … TO` file in-process with `COPY … FROM '/dev/blob'` (in
 * blocks of rows, so the blob stays a few MB). `deno run … ingest.ts
 * DATA_DIR COPY_FILE DIMS`.
 *
 * @module
 */

import { PGlite } from "@electric-sql/pglite";
import { vector } from "@electric-sql/pglite-pgvector";

const [dataDir, file, dims] = Deno.args;
await Deno.mkdir(dataDir!, { recursive: true });
const db = await PGlite.create({ dataDir: dataDir!, extensions: { vector } });
await db.exec(`create extension if not exists vector;
  create table memories (id uuid primary key, vector vector(${
  Number(dims)
}), payload jsonb)`);
const decoder = new TextDecoder();
let carry = "";
let rows: string[] = [];
const flush = async () => {
  if (rows.length === 0) return;
  await db.query("copy memories (id, vector, payload) from '/dev/blob'", [], {
    blob: new Blob([rows.join("")]),
  });
  rows = [];
};
using input = await Deno.open(file!, { read: true });
for await (const chunk of input.readable) {
  const text = carry + decoder.decode(chunk, { stream: true });
  const lines = text.split("\n");
  carry = lines.pop()!;
  for (const line of lines) {
    rows.push(line + "\n");
    if (rows.length === 500) await flush();
  }
}
if (carry !== "") rows.push(carry + "\n");
await flush();
await db.close();
