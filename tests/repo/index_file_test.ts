import assert from "node:assert/strict";
import { decodeIndex, encodeIndex } from "../../lib/repo/index_file.ts";
import type { BlobEntry, IndexFile } from "../../lib/repo/layout.ts";

const hex = (n: number) => n.toString(16).padStart(2, "0").repeat(32);

const packs: IndexFile["packs"] = [
  {
    id: hex(1),
    size: 16_777_300,
    blobs: [
      { id: hex(2), type: "vector", offset: 0, length: 6144, raw_length: 6144 },
      {
        id: hex(3),
        type: "record",
        offset: 6144,
        length: 900,
        raw_length: 700,
        at: 0,
      },
      {
        id: hex(4),
        type: "record",
        offset: 6144,
        length: 900,
        raw_length: 650,
        at: 700,
      },
    ],
  },
  {
    id: hex(5),
    size: 70_000,
    blobs: [{
      id: hex(6),
      type: "file",
      offset: 4_000_000_000,
      length: 65_000,
      raw_length: 65_536,
    }],
  },
];

function read(bytes: Uint8Array) {
  const got: (BlobEntry & { pack: string })[] = [];
  const ok = decodeIndex(bytes, {
    set: (pack, blob) => got.push({ ...blob, pack }),
  });
  return { ok, got };
}

Deno.test("an index file in binary reads back every blob and place exactly, and the JSON of version 1 still reads", () => {
  const expected = packs.flatMap((p) =>
    p.blobs.map((b) => ({ ...b, pack: p.id }))
  );
  const binary = read(encodeIndex(packs));
  assert.ok(binary.ok);
  assert.deepEqual(binary.got, expected);
  const json = read(new TextEncoder().encode(JSON.stringify({ packs })));
  assert.ok(json.ok);
  assert.deepEqual(json.got, expected);
});

Deno.test("a damaged index file is refused (the repository then does not open): truncated, one byte more, an unknown blob type, a zero length, garbage", () => {
  const bytes = encodeIndex(packs);
  const damaged: [string, Uint8Array][] = [
    ["truncated", bytes.subarray(0, bytes.length - 1)],
    ["one byte more", new Uint8Array([...bytes, 0])],
    ["no packs count", bytes.subarray(0, 7)],
  ];
  const badType = bytes.slice();
  badType[6 + 4 + 40 + 32] = 9; // the first blob's type
  damaged.push(["an unknown type", badType]);
  const zero = bytes.slice();
  zero.fill(0, 6 + 4 + 40 + 37, 6 + 4 + 40 + 41); // its length
  damaged.push(["a zero length", zero]);
  damaged.push(["garbage", new TextEncoder().encode("MKIX2\nnot an index")]);
  damaged.push(["not JSON", new TextEncoder().encode('{"packs": [')]);
  for (const [what, b] of damaged) {
    assert.equal(read(b).ok, false, what);
  }
});
