import assert from "node:assert/strict";
import { float32Of, float32Text } from "../../lib/format/float32_text.ts";
import { startWireDatabase, WIRE_LEG } from "../_db.ts";

/** Random float32 values from random bit patterns (every exponent), finite only. */
function randomFloats(n: number, seed: number): number[] {
  let state = seed >>> 0;
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  const values: number[] = [];
  while (values.length < n) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    u32[0] = state ^ (state >>> 13) ^ Math.imul(state, 0x9e3779b1);
    if (Number.isFinite(f32[0]!)) values.push(f32[0]!);
  }
  return values;
}

/** Values as an embedding holds them: unit vectors' elements, near ±0.03. */
function embeddingValues(n: number, seed: number): number[] {
  let state = seed >>> 0;
  const values: number[] = [];
  for (let i = 0; i < n; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    values.push(Math.fround(((state / 2 ** 32) * 2 - 1) / 39.2));
  }
  return values;
}

const EDGES = [
  1e-45, // the smallest subnormal
  -1e-45,
  1.1754942e-38, // the largest subnormal
  1.17549435e-38, // the smallest normal
  3.4028235e38, // the largest float32
  -3.4028235e38,
  -0,
  0,
  1e-5,
  0.0001,
  999999.94,
  1e6,
  16777216,
  16777218,
  0.1,
  1 / 3,
  2 ** -126,
  2 ** 100,
  1.5,
  2450745.25, // a tie between 2.4507452e+06 and 2.4507453e+06: even wins
  52492448, // 5.249245e+07 is the midpoint: never accepted
].map(Math.fround);

Deno.test("float32Text prints every float32 as the server's vector::text does (random bit patterns, embedding values, values with few binary digits, the edges)", async () => {
  const db = await startWireDatabase();
  try {
    const values = [
      ...EDGES,
      ...randomFloats(40_000, 20261204),
      ...embeddingValues(40_000, 5),
      // Few binary digits: the values that can be ties.
      ...randomFloats(4_000, 3).map((v) =>
        Math.fround(Math.round(v * 1e-30 * 2 ** 20) / 64)
      ),
    ];
    const mismatches: string[] = [];
    for (let i = 0; i < values.length; i += 8000) {
      const chunk = values.slice(i, i + 8000);
      // Nine significant digits name each float32 exactly.
      const input = chunk.map((v) =>
        Object.is(v, -0) ? "-0" : v.toPrecision(9)
      );
      const [row] = await db.query(
        "select ($1::text)::vector::text",
        [`[${input.join(",")}]`],
      );
      const server = row![0]!.slice(1, -1).split(",");
      chunk.forEach((v, k) => {
        const mine = float32Text(v);
        if (mine !== server[k]) {
          mismatches.push(`${v}: server ${server[k]}, memkeep ${mine}`);
        }
        assert.equal(
          Object.is(float32Of(mine), v),
          true,
          `${mine} reads back as ${v}`,
        );
      });
    }
    assert.deepEqual(
      mismatches.slice(0, 10),
      [],
      `${mismatches.length} differ`,
    );
  } finally {
    await db.close();
  }
});

/** The float32 after `v` (away from zero). */
function nextFloat(v: number): number {
  const f32 = new Float32Array([v]);
  const u32 = new Uint32Array(f32.buffer);
  u32[0] = u32[0]! + 1;
  return f32[0]!;
}

Deno.test(
  "float32Of rounds a decimal next to a float32 midpoint as strtof does, where a double would round it twice",
  {
    ignore: WIRE_LEG,
  },
  () => {
    let differsFromNaive = 0;
    for (
      const v of randomFloats(40_000, 7).map(Math.abs).filter((v) =>
        v > 1e-3 && v < 1e3
      )
    ) {
      const w = nextFloat(v);
      const mid = (v + w) / 2; // exact in a double
      const [mantissa, exponent] = mid.toExponential(60).split("e");
      const digits = mantissa!.replace(".", "").replace(/0+$/, "");
      const text = (d: string) => `0.${d}e${Number(exponent) + 1}`;
      const lastDown = `${digits.slice(0, -1)}${Number(digits.at(-1)) - 1}`;
      const above = text(`${digits}0000001`);
      const below = text(`${lastDown}9999999`);
      assert.equal(
        float32Of(above),
        w,
        `${above} is past the midpoint of ${v} and ${w}`,
      );
      assert.equal(float32Of(below), v, `${below} is short of the midpoint`);
      // A true tie goes to the even one, as fround does.
      assert.equal(float32Of(text(digits)), Math.fround(mid));
      if (Math.fround(Number(above)) !== w) differsFromNaive++;
    }
    assert.ok(
      differsFromNaive > 100,
      `going through a double rounds ${differsFromNaive} of them wrong`,
    );
  },
);
