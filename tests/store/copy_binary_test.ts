import assert from "node:assert/strict";
import { binaryRows, vectorFloat32 } from "../../lib/store/copy_binary.ts";
import { StoreError } from "../../lib/errors.ts";
import { assertRejectsWith } from "../_helpers.ts";

const encoder = new TextEncoder();

/** A COPY binary stream of rows (fields as bytes or null), as a server sends it. */
function copyBinary(rows: (Uint8Array | null)[][]): Uint8Array {
  const parts: number[] = [
    ...encoder.encode("PGCOPY\n"),
    0xff,
    0x0d,
    0x0a,
    0x00,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
  ];
  const int = (value: number, bytes: 2 | 4) => {
    for (let i = bytes - 1; i >= 0; i--) {
      parts.push((value >>> (8 * i)) & 0xff);
    }
  };
  for (const row of rows) {
    int(row.length, 2);
    for (const field of row) {
      if (field === null) int(0xffffffff, 4);
      else {
        int(field.length, 4);
        parts.push(...field);
      }
    }
  }
  int(0xffff, 2);
  return new Uint8Array(parts);
}

function pgVector(values: number[]): Uint8Array {
  const bytes = new Uint8Array(4 + values.length * 4);
  const view = new DataView(bytes.buffer);
  view.setInt16(0, values.length);
  values.forEach((v, i) => view.setFloat32(4 + i * 4, v));
  return bytes;
}

async function* split(bytes: Uint8Array, sizes: number[]) {
  let at = 0;
  let i = 0;
  while (at < bytes.length) {
    const n = sizes[i++ % sizes.length]!;
    yield bytes.slice(at, at + n);
    at += n;
  }
}

Deno.test("binaryRows parses COPY binary whatever the chunk boundaries, NULLs and empty fields included", async () => {
  const rows = Array.from({ length: 50 }, (_, i) => [
    encoder.encode(`id-${i}`),
    i % 7 === 0 ? null : pgVector([i, -0.5, 1e-45]),
    encoder.encode(i % 5 === 0 ? "" : `{"n": ${i}, "text": "é ✓"}`),
  ]);
  const stream = copyBinary(rows);
  for (const sizes of [[1], [2, 3], [7], [64], [stream.length]]) {
    const got = [];
    for await (const row of binaryRows(split(stream, sizes), 3)) {
      got.push(row.map((f) => f === null ? null : [...f]));
    }
    assert.deepEqual(
      got,
      rows.map((r) => r.map((f) => f === null ? null : [...f])),
      `chunks of ${sizes.join(",")}`,
    );
  }
});

Deno.test("vectorFloat32 turns pgvector's big-endian vector into little-endian float32 bits, exactly", () => {
  const values = [1, -0, 1e-45, 3.4028234663852886e38, 0.1].map(Math.fround);
  const bytes = vectorFloat32(pgVector(values));
  const view = new DataView(bytes.buffer);
  values.forEach((v, i) =>
    assert.ok(Object.is(view.getFloat32(i * 4, true), v), `element ${i}`)
  );
  assert.throws(
    () => vectorFloat32(pgVector([1, 2]).subarray(0, 10)),
    StoreError,
  );
});

Deno.test("binaryRows refuses what is not COPY binary, a row of another width and a stream cut short", async () => {
  const rows = [[encoder.encode("a"), encoder.encode("b")]];
  const stream = copyBinary(rows);
  const consume = async (bytes: Uint8Array, columns: number) => {
    for await (const _ of binaryRows(split(bytes, [5]), columns)) {
      // read them all
    }
  };
  await assertRejectsWith(
    () => consume(encoder.encode("id\tvector\n1\t[1,2]\n".repeat(3)), 2),
    StoreError,
    /^COPY binary: the stream has no PGCOPY signature$/,
  );
  await assertRejectsWith(
    () => consume(stream, 3),
    StoreError,
    /^COPY binary: a row has 2 fields, 3 expected$/,
  );
  await assertRejectsWith(
    () => consume(stream.subarray(0, stream.length - 3), 2),
    StoreError,
    /^COPY binary: the stream ended before its trailer$/,
  );
});
