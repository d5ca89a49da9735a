/**
 * pgvector's text for a float32: a repository stores vectors as float32
 * bytes, and every text memkeep makes from one (`export.json`, CSV, a
 * restore's COPY) must equal what the server prints for `vector::text`.
 *
 * pgvector prints each element with PostgreSQL's shortest float4 output
 * (Ryu, `src/common/f2s.c`): the fewest significant digits that read back
 * as the same float32, the closest such to the exact value; fixed notation
 * when the decimal exponent is in [-4, 6), else `d.ddde±XX` with at least
 * two exponent digits; `-0` for negative zero. The tests compare this with
 * the server for random bit patterns and the edge values (subnormals, −0,
 * the largest float32, 1e-45).
 *
 * @module
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** A decimal: significant digits (no trailing zeros) and the first digit's exponent. */
interface Decimal {
  digits: string;
  exponent: number;
}

/**
 * The float32 values next to `value` (positive, finite) and the midpoints
 * between: a decimal reads back as `value` when it lies strictly between
 * them. PostgreSQL's Ryu never accepts a midpoint itself (`acceptBounds` is
 * false there, so that any `strtof` reads the text back the same way).
 */
function bounds(value: number): { low: number; high: number } {
  f32[0] = value;
  const bits = u32[0]!;
  u32[0] = bits - 1;
  const below = bits === 0 ? 0 : f32[0]!;
  u32[0] = bits + 1;
  // Past the largest float32 the next value would be 2^128.
  const above = Number.isFinite(f32[0]!) ? f32[0]! : 2 ** 128;
  return { low: (value + below) / 2, high: (value + above) / 2 };
}

/** `d.ddde±x` (of a positive number) as digits and exponent. */
function splitExponential(text: string): Decimal {
  const e = text.indexOf("e");
  return {
    digits: text.slice(0, e).replace(".", ""),
    exponent: Number(text.slice(e + 1)),
  };
}

function valueOf(decimal: Decimal): number {
  return Number(
    `${decimal.digits}e${decimal.exponent - decimal.digits.length + 1}`,
  );
}

/** `value` equals the decimal exactly (not merely to the nearest double). */
function exactlyEqual(value: number, decimal: Decimal): boolean {
  f32[0] = value;
  const bits = u32[0]!;
  const biased = bits >>> 23;
  const mantissa = BigInt(
    biased === 0 ? bits & 0x7fffff : (bits & 0x7fffff) | 0x800000,
  );
  const power = (biased === 0 ? 1 : biased) - 150;
  // value = mantissa * 2^power, decimal = digits * 10^scale
  const scale = decimal.exponent - decimal.digits.length + 1;
  let left = mantissa;
  let right = BigInt(decimal.digits);
  if (power >= 0) left <<= BigInt(power);
  else right <<= BigInt(-power);
  if (scale >= 0) right *= 10n ** BigInt(scale);
  else left *= 10n ** BigInt(-scale);
  return left === right;
}

/**
 * The `precision`-digit decimal that reads back as `value` and is closest to
 * it (ties to an even last digit, as Ryu rounds), if there is one.
 */
function closest(
  value: number,
  precision: number,
  low: number,
  high: number,
): Decimal | undefined {
  const text = value.toExponential(precision - 1);
  let candidate = splitExponential(text);
  // toExponential rounds a tie up; Ryu to even. A tie is `value` exactly
  // halfway, i.e. equal to the decimal with one more digit, ending in 5.
  const last = candidate.digits.charCodeAt(candidate.digits.length - 1) & 1;
  if (last === 1) {
    const longer = splitExponential(value.toExponential(precision));
    if (
      longer.digits.endsWith("5") && valueOf(longer) === value &&
      exactlyEqual(value, longer)
    ) {
      candidate = step(candidate, -1, precision);
    }
  }
  const number = valueOf(candidate);
  if (number > low && number < high) return candidate;
  // Only at a power of two is the interval lopsided enough for the
  // neighbour above to fit when the closest does not.
  const above = step(candidate, 1, precision);
  const next = valueOf(above);
  return next > low && next < high ? above : undefined;
}

/** The decimal one unit in the last place away, with as many digits. */
function step(decimal: Decimal, by: number, precision: number): Decimal {
  const moved = String(Number(decimal.digits) + by);
  if (moved.length > precision) {
    return {
      digits: moved.slice(0, precision),
      exponent: decimal.exponent + 1,
    };
  }
  if (moved.length < precision) {
    return {
      digits: moved.padEnd(precision, "9"),
      exponent: decimal.exponent - 1,
    };
  }
  return { digits: moved, exponent: decimal.exponent };
}

/**
 * The shortest decimal that reads back as `value` (positive, finite), the
 * closest such: nine digits always do, so it tries eight, then fewer while
 * they still do.
 */
function shortest(value: number): Decimal {
  const { low, high } = bounds(value);
  let best = closest(value, 8, low, high);
  if (best === undefined) {
    return trimmed(splitExponential(value.toExponential(8)));
  }
  for (let precision = 7; precision >= 1; precision--) {
    const shorter = closest(value, precision, low, high);
    if (shorter === undefined) break;
    best = shorter;
  }
  return trimmed(best);
}

/** Digits without trailing zeros (the exponent is the first digit's). */
function trimmed(decimal: Decimal): Decimal {
  const digits = decimal.digits.replace(/0+$/, "");
  return { digits: digits === "" ? "0" : digits, exponent: decimal.exponent };
}

/**
 * One float32 as pgvector prints it.
 *
 * Most values (an embedding's) take the fast path: the shortest of
 * `toPrecision(8)`, `(7)`, … that still reads back (a double comparison
 * with the midpoints, exact for up to eight digits), else `toPrecision(9)`,
 * which always does. Two kinds go the exact way instead: a power of two,
 * whose interval is lopsided (a neighbour of the closest decimal may fit
 * where the closest does not), and a value with at most 14 binary digits
 * after the point, the only ones that can lie exactly halfway between two
 * decimals of nine digits or fewer (`toPrecision` rounds such a tie up,
 * Ryu to even).
 *
 * @param value A finite float32 value (as a JS number).
 * @returns The text `vector::text` shows for it.
 */
export function float32Text(value: number): string {
  if (value === 0) return Object.is(value, -0) ? "-0" : "0";
  const sign = value < 0 ? "-" : "";
  const abs = Math.abs(value);
  f32[0] = abs;
  const bits = u32[0]!;
  if ((bits & 0x7fffff) === 0 || Number.isInteger(abs * 16384)) {
    return sign + formatDecimal(shortest(abs));
  }
  u32[0] = bits - 1;
  const low = (abs + f32[0]!) / 2;
  u32[0] = bits + 1;
  const high = (abs + f32[0]!) / 2;
  let text = abs.toPrecision(8);
  let number = Number(text);
  if (number <= low || number >= high) {
    text = abs.toPrecision(9);
  } else {
    for (let precision = 7; precision >= 1; precision--) {
      const shorter = abs.toPrecision(precision);
      number = Number(shorter);
      if (number <= low || number >= high) break;
      text = shorter;
    }
  }
  return sign + postgresNotation(text);
}

/**
 * `toPrecision`'s text (positive, no trailing zeros in its digits) in
 * PostgreSQL's notation: kept as it is when fixed and the exponent is in
 * [-4, 6), else rewritten.
 */
function postgresNotation(text: string): string {
  if (text.indexOf("e") === -1) {
    let exponent: number;
    if (text.startsWith("0.")) {
      let i = 2;
      while (text.charCodeAt(i) === 48) i++;
      exponent = 1 - i;
    } else {
      const dot = text.indexOf(".");
      exponent = (dot === -1 ? text.length : dot) - 1;
    }
    if (exponent >= -4 && exponent < 6) return text;
  }
  return formatDecimal(trimmed(splitExponential(Number(text).toExponential())));
}

/** A decimal in PostgreSQL's float4 notation (positive). */
function formatDecimal({ digits, exponent }: Decimal): string {
  if (exponent >= -4 && exponent < 6) {
    if (exponent < 0) return `0.${"0".repeat(-exponent - 1)}${digits}`;
    if (digits.length <= exponent + 1) {
      return `${digits}${"0".repeat(exponent + 1 - digits.length)}`;
    }
    return `${digits.slice(0, exponent + 1)}.${digits.slice(exponent + 1)}`;
  }
  const fraction = digits.length > 1 ? `.${digits.slice(1)}` : "";
  const magnitude = String(Math.abs(exponent)).padStart(2, "0");
  return `${digits[0]}${fraction}e${exponent < 0 ? "-" : "+"}${magnitude}`;
}

/**
 * A vector of float32 values as pgvector prints it: `[1,0.5,-3e-05]`.
 *
 * @param values The elements.
 * @returns The vector's text.
 */
export function vectorText(values: Float32Array): string {
  const parts = new Array<string>(values.length);
  for (let i = 0; i < values.length; i++) parts[i] = float32Text(values[i]!);
  return `[${parts.join(",")}]`;
}

/**
 * The float32 a decimal text denotes, rounded as pgvector's `strtof` rounds
 * it: to the nearest float32, ties to even. Going through a double rounds
 * twice, which differs only when the double lands exactly on the midpoint
 * between two float32 values; that case is settled exactly.
 *
 * @param text One element's text (a finite decimal).
 * @returns The float32 value.
 */
export function float32Of(text: string): number {
  const double = Number(text);
  const single = Math.fround(double);
  if (double === single || !Number.isFinite(single)) return single;
  f32[0] = single;
  const bits = u32[0]!;
  // The float32 on the other side of `double` (same sign: away from zero
  // when |double| > |single|).
  u32[0] = Math.abs(double) > Math.abs(single) ? bits + 1 : bits - 1;
  const other = f32[0]!;
  if (double - single !== other - double) return single;
  // `double` is the midpoint: the decimal itself is above, below or on it.
  const side = compareDecimal(text, double);
  if (side === 0) return single; // a true tie: fround already chose the even one
  const towardOther = (side > 0) === (other > single);
  return towardOther ? other : single;
}

/** The sign of `text - value`, exactly (`value` a finite double). */
function compareDecimal(text: string, value: number): number {
  const match = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(
    text.trim(),
  );
  if (!match) return 0;
  const negative = match[1] === "-";
  const digits = `${match[2] ?? ""}${match[3] ?? ""}`;
  const scale = Number(match[4] ?? 0) - (match[3] ?? "").length;
  let left = BigInt(digits === "" ? "0" : digits) * (negative ? -1n : 1n);
  // value = mantissa * 2^power exactly
  const { mantissa, power } = doubleParts(value);
  let right = mantissa;
  if (power >= 0) right <<= BigInt(power);
  else left <<= BigInt(-power);
  if (scale >= 0) left *= 10n ** BigInt(scale);
  else right *= 10n ** BigInt(-scale);
  return left > right ? 1 : left < right ? -1 : 0;
}

/** A finite double as an integer times a power of two. */
function doubleParts(value: number): { mantissa: bigint; power: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, value);
  const high = view.getUint32(0);
  const low = view.getUint32(4);
  const biased = (high >>> 20) & 0x7ff;
  let mantissa = (BigInt(high & 0xfffff) << 32n) | BigInt(low);
  if (biased !== 0) mantissa |= 1n << 52n;
  const power = (biased === 0 ? 1 : biased) - 1075;
  return { mantissa: value < 0 ? -mantissa : mantissa, power };
}
