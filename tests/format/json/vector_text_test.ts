import assert from "node:assert/strict";
import { plainVectorLength } from "../../../lib/format/json/vector_text.ts";
import { vectorProblem } from "../../../lib/format/records.ts";

/**
 * What the slow path says of a text: the length when `JSON.parse` gives an
 * array of finite float32 numbers, else `undefined`.
 */
function parsedLength(text: string): number | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!Array.isArray(value)) return undefined;
  return vectorProblem(value, null) === undefined ? value.length : undefined;
}

/** Agrees with the slow path wherever it decides. */
function assertSound(text: string): number | undefined {
  const fast = plainVectorLength(text, null);
  if (fast !== undefined) {
    assert.equal(fast, parsedLength(text), `for ${JSON.stringify(text)}`);
    assert.equal(plainVectorLength(text, fast), fast);
    assert.equal(plainVectorLength(text, fast + 1), undefined);
  }
  return fast;
}

Deno.test("plainVectorLength: vectors as pgvector prints them are decided by the scan", () => {
  const samples = [
    "[0]",
    "[-0]",
    "[1e-45,-1e-45]",
    "[0.123456789,-0.98765432,1.5e-7,3.4028234e+37,123456789e29]",
    "[1,2,3]",
    "[1E+5,1e-5,1.0e0,-0.0]",
  ];
  for (const text of samples) {
    assert.notEqual(assertSound(text), undefined, text);
  }
  assert.equal(plainVectorLength("[1,2,3]", null), 3);
  assert.equal(plainVectorLength("[1,2,3]", 3), 3);
  assert.equal(plainVectorLength("[1,2,3]", 2), undefined);
  // Random unit vectors as float32, as the demo and real stores hold them.
  const values = Array.from({ length: 1536 }, () => {
    const x = Math.fround(Math.random() * 2 - 1);
    return Math.random() < 0.01 ? x * 1e-40 : x;
  });
  assert.equal(assertSound(JSON.stringify(values)), 1536);
});

Deno.test("plainVectorLength: anything JSON.parse would not read as finite float32 numbers, and anything near the limit, goes to the slow path", () => {
  const refused = [
    "",
    "null",
    "[",
    "]",
    "[,]",
    "[1,]",
    "[,1]",
    "[1 2]",
    "[01]",
    "[-]",
    "[+1]",
    "[.5]",
    "[1.]",
    "[1e]",
    "[1e+]",
    "[0x10]",
    "[NaN]",
    "[Infinity]",
    "[-Infinity]",
    "[1e39]",
    "[3.5e38]",
    "[3.5e+38]",
    "[00]",
    "[-01.5]",
    "[-3.5e38]",
    "[1e400]",
    "[1e0000039]",
    '["1"]',
    "[[1]]",
    "[true]",
    "[null]",
    "[1]x",
    "[1][2]",
    "[1\u00a0]",
    "[1,\u20282]",
    "{}",
  ];
  for (const text of refused) {
    assert.equal(parsedLength(text), undefined, JSON.stringify(text));
    assert.equal(plainVectorLength(text, null), undefined, text);
    assert.equal(plainVectorLength(text, 1), undefined, text);
  }
  // Valid vectors the check leaves to JSON.parse: near the float32 limit,
  // with whitespace, empty.
  for (
    const text of [
      "[3.4028234e38]",
      "[12e37]",
      "[1234567890]",
      "[1e+0000001]",
      " [1, 2]",
      "[]",
    ]
  ) {
    assert.notEqual(parsedLength(text), undefined, text);
    assert.equal(plainVectorLength(text, null), undefined, text);
  }
});

Deno.test("plainVectorLength: random texts built from vector characters never disagree with JSON.parse", () => {
  const alphabet = "0123456789-+.eE,[] \n";
  let decided = 0;
  for (let n = 0; n < 20000; n++) {
    const length = 1 + Math.floor(Math.random() * 12);
    let text = "[";
    for (let i = 0; i < length; i++) {
      text += alphabet[Math.floor(Math.random() * alphabet.length)];
    }
    if (Math.random() < 0.7) text += "]";
    if (assertSound(text) !== undefined) decided++;
  }
  // The generator makes valid vectors often enough for this to mean something.
  assert.ok(decided > 100, `only ${decided} texts decided`);
});
