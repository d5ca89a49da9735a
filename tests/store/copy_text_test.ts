import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { copyField, copyRows } from "../../lib/store/copy_text.ts";
import { StoreError } from "../../lib/errors.ts";

async function rows(
  chunks: Uint8Array[],
  columns: number,
  checkUtf8 = true,
): Promise<(string | null)[][]> {
  const out: (string | null)[][] = [];
  for await (const row of copyRows(toAsync(chunks), columns, checkUtf8)) {
    out.push([...row]);
  }
  return out;
}

async function* toAsync(chunks: Uint8Array[]) {
  for (const c of chunks) yield c;
}

const FIELDS = [
  "plain",
  "tab\there",
  "new\nline",
  "back\\slash",
  "cr\rlf",
  "ünïcødé — 🙂",
  "",
  null,
];

Deno.test("COPY text: what copyField writes, copyRows reads back, in chunks split anywhere (mid-field, mid-character, several rows per chunk)", async () => {
  const line = (fields: (string | null)[]) =>
    fields.map(copyField).join("\t") + "\n";
  const expected = [FIELDS, [...FIELDS].reverse(), FIELDS.map(() => "x")];
  const bytes = new TextEncoder().encode(expected.map(line).join(""));
  for (const size of [1, 2, 3, 7, 64, bytes.length]) {
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < bytes.length; i += size) {
      // As postgres.js hands them on: Node Buffers over a larger buffer.
      chunks.push(Buffer.from(bytes).subarray(i, i + size));
    }
    assert.deepEqual(await rows(chunks, FIELDS.length), expected, `${size}`);
    assert.deepEqual(
      await rows(chunks, FIELDS.length, false),
      expected,
      `${size}, unchecked`,
    );
  }
});

Deno.test("COPY text: a row with another number of fields, or bytes that are not UTF-8 when checked, is an error", async () => {
  const encoder = new TextEncoder();
  await assert.rejects(
    () => rows([encoder.encode("a\tb\n")], 3),
    (e) => e instanceof StoreError && /2 fields, not 3/.test(e.message),
  );
  const invalid = new Uint8Array([0x61, 0xff, 0x62, 0x0a]);
  await assert.rejects(() => rows([invalid], 1), TypeError);
  // Unchecked (a server that checked its text), it decodes with U+FFFD.
  assert.deepEqual(await rows([invalid], 1, false), [["a\uFFFDb"]]);
});
