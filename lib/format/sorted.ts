/**
 * `MemoryOrder.groupBy` (`source.ts`) for a source no database sorts (a
 * repository snapshot): an external merge sort. Records are gathered into
 * runs of at most `runBytes` of text, each run sorted and written to a file
 * of JSON lines in a scratch directory, and the runs merged as they are
 * read back; memory holds one run, whatever the store's size. A source
 * smaller than one run is sorted in memory and never written.
 *
 * The order is the database's (`lib/store/memory/rows.ts`): memories with
 * none of the keys last, then each key trimmed of ASCII whitespace (named
 * before missing), then `created_at` and id; text compared by UTF-16 code
 * unit, as the `C` collation compares nearly always.
 *
 * @module
 */

import type { RawRecord } from "./records.ts";
import { asciiTrim, stringOf } from "./markdown/text.ts";
import { writeAll } from "../util/fs.ts";

/** Text gathered into one run before it is sorted and spilled. */
const RUN_BYTES = 32 * 1024 * 1024;

type Key = string[];

/**
 * The sort key of `MemoryOrder.groupBy` (`source.ts`) for a record.
 *
 * @param keys The payload keys, e.g. `["client", "project"]`.
 * @returns The key of a record: flags and values, compared in order.
 */
export function groupKey(keys: readonly string[]): (record: RawRecord) => Key {
  return (record) => {
    const metadata = parse(record.get("metadata"));
    const values = keys.map((k) =>
      asciiTrim(
        stringOf(
          metadata !== null && typeof metadata === "object"
            ? (metadata as Record<string, unknown>)[k]
            : undefined,
        ),
      )
    );
    const key: Key = [values.every((v) => v === "") ? "1" : "0"];
    for (const v of values) key.push(v === "" ? "1" : "0", v);
    const created = parse(record.get("created_at"));
    key.push(
      created === undefined || created === null ? "\uffff" : stringOf(created),
      String(parse(record.get("id"))),
    );
    return key;
  };
}

function parse(text: string | undefined): unknown {
  return text === undefined ? undefined : JSON.parse(text);
}

function compare(a: Key, b: Key): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

type Entry = { key: Key; record: RawRecord };

/**
 * The records in the order of their keys.
 *
 * @param records The records, in any order.
 * @param keyOf A record's key (see {@linkcode groupKey}).
 * @param scratch A directory for the runs (created; removed when done).
 * @param runBytes Text per run (default 32 MiB).
 * @returns The records, sorted.
 */
export async function* sortRecords(
  records: AsyncIterable<RawRecord>,
  keyOf: (record: RawRecord) => Key,
  scratch: string,
  runBytes = RUN_BYTES,
): AsyncGenerator<RawRecord> {
  const runs: string[] = [];
  let run: Entry[] = [];
  let bytes = 0;
  const byKey = (a: Entry, b: Entry) => compare(a.key, b.key);
  try {
    for await (const record of records) {
      run.push({ key: keyOf(record), record });
      for (const value of record.values()) bytes += value.length;
      if (bytes >= runBytes) {
        run.sort(byKey);
        runs.push(await spill(run, scratch, runs.length));
        run = [];
        bytes = 0;
      }
    }
    run.sort(byKey);
    if (runs.length === 0) {
      for (const entry of run) yield entry.record;
      return;
    }
    if (run.length > 0) runs.push(await spill(run, scratch, runs.length));
    run = [];
    yield* merge(runs.map(readRun), byKey);
  } finally {
    if (runs.length > 0) {
      await Deno.remove(scratch, { recursive: true }).catch(() => {});
    }
  }
}

async function spill(
  run: Entry[],
  scratch: string,
  n: number,
): Promise<string> {
  await Deno.mkdir(scratch, { recursive: true });
  const path = `${scratch}/run-${n}.jsonl`;
  using file = await Deno.open(path, { write: true, createNew: true });
  const encoder = new TextEncoder();
  let lines: string[] = [];
  let size = 0;
  const flush = async () => {
    await writeAll(file, encoder.encode(lines.join("")));
    lines = [];
    size = 0;
  };
  for (const { key, record } of run) {
    const line = JSON.stringify([key, [...record]]) + "\n";
    lines.push(line);
    size += line.length;
    if (size >= 1 << 20) await flush();
  }
  await flush();
  return path;
}

async function* readRun(path: string): AsyncGenerator<Entry> {
  using file = await Deno.open(path, { read: true });
  let carry = "";
  for await (
    const text of file.readable.pipeThrough(new TextDecoderStream())
  ) {
    const lines = (carry + text).split("\n");
    carry = lines.pop()!;
    for (const line of lines) {
      const [key, entries] = JSON.parse(line) as [Key, [string, string][]];
      yield { key, record: new Map(entries) };
    }
  }
}

async function* merge(
  runs: AsyncGenerator<Entry>[],
  byKey: (a: Entry, b: Entry) => number,
): AsyncGenerator<RawRecord> {
  const heads: (Entry | undefined)[] = [];
  try {
    for (const run of runs) heads.push((await run.next()).value || undefined);
    for (;;) {
      let best = -1;
      for (let i = 0; i < heads.length; i++) {
        const head = heads[i];
        if (head && (best < 0 || byKey(head, heads[best]!) < 0)) best = i;
      }
      if (best < 0) return;
      yield heads[best]!.record;
      heads[best] = (await runs[best]!.next()).value || undefined;
    }
  } finally {
    for (const run of runs) await run.return(undefined);
  }
}
