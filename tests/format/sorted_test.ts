import assert from "node:assert/strict";
import { WIRE_LEG } from "../_db.ts";
import { openEmbeddedStore, seedMemories } from "../_db.ts";
import { withTempDir } from "../_helpers.ts";
import { groupKey, sortRecords } from "../../lib/format/sorted.ts";
import { inspectTable, openMemoryStore } from "../../lib/store/memory/read.ts";
import { inRepeatableRead, readMemories } from "../../lib/store/memory/rows.ts";
import type { SqlSession } from "../../lib/store/sql.ts";
import { parseTableName } from "../../lib/store/config.ts";
import type { RawRecord } from "../../lib/format/records.ts";

async function ids(records: AsyncIterable<RawRecord>): Promise<string[]> {
  const out: string[] = [];
  for await (const r of records) out.push(JSON.parse(r.get("id")!));
  return out;
}

Deno.test(
  "sortRecords() groups a snapshot's memories in exactly the order the database's ORDER BY gives, through runs spilled to disk, and removes them",
  { ignore: WIRE_LEG },
  async () => {
    await withTempDir(async (dir) => {
      const db = await openEmbeddedStore(`${dir}/pglite`);
      await seedMemories(db, "public.memories", { memories: 400, dims: 4 });
      // Keys a person would not expect: padded, numbers, objects, empty,
      // null, missing created_at, and a client with no project.
      await db.query(`insert into memories (id, vector, payload) values
        (gen_random_uuid(), '[1,2,3,4]', '{"data": "a", "client": "  Acme Corp\\t", "created_at": "2024-01-01"}'),
        (gen_random_uuid(), '[1,2,3,4]', '{"data": "b", "client": 42, "project": {"x": 1}}'),
        (gen_random_uuid(), '[1,2,3,4]', '{"data": "c", "client": "", "project": " "}'),
        (gen_random_uuid(), '[1,2,3,4]', '{"data": "d", "client": null, "project": "Solo"}'),
        (gen_random_uuid(), '[1,2,3,4]', '{"data": "e", "created_at": 7}'),
        (gen_random_uuid(), null, '{"data": "f", "client": "Zed"}')`);
      await db.close();
      const store = await openMemoryStore({
        kind: "pglite",
        dataDir: `${dir}/pglite`,
      });
      try {
        await inRepeatableRead(store.session, () => check(store.session, dir));
      } finally {
        await store.close();
      }
    });
  },
);

async function check(session: SqlSession, dir: string): Promise<void> {
  const table = await inspectTable(
    session,
    parseTableName("memories"),
  );
  const keys = ["client", "project"];
  const expected = await ids(
    readMemories(session, table, {
      groupBy: keys,
      includeVectors: false,
    }),
  );
  assert.equal(expected.length, 406);
  for (const runBytes of [1_000_000_000, 4096, 1]) {
    const scratch = `${dir}/sort-${runBytes}`;
    const sorted = sortRecords(
      readMemories(session, table, { includeVectors: true }),
      groupKey(keys),
      scratch,
      runBytes,
    );
    assert.deepEqual(await ids(sorted), expected, `runs of ${runBytes}`);
    await assert.rejects(Deno.stat(scratch), Deno.errors.NotFound);
  }
  // Stopped early (a writer failed): the runs are removed too.
  const scratch = `${dir}/sort-stopped`;
  for await (
    const _ of sortRecords(
      readMemories(session, table),
      groupKey(keys),
      scratch,
      4096,
    )
  ) break;
  await assert.rejects(Deno.stat(scratch), Deno.errors.NotFound);
}
