/**
 * Parsing of `--now` and durations such as `26h` for the commands that take
 * them.
 *
 * @module
 */

import { UsageError } from "../errors.ts";

const ISO =
  /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?$/;

/**
 * Parses an ISO 8601 moment (a date, or a date and time with a zone).
 *
 * @param value The text, or `undefined` for the current time.
 * @param flag The flag, named in errors.
 * @returns The moment.
 * @throws {UsageError} When it is not such a moment.
 */
export function parseMoment(value: string | undefined, flag = "--now"): Date {
  if (value === undefined) return new Date();
  const text = value.trim();
  const date = new Date(/T/.test(text) ? text : `${text}T00:00:00Z`);
  if (!ISO.test(text) || Number.isNaN(date.getTime())) {
    throw new UsageError(
      flag,
      `Invalid ${flag} "${value}": expected ISO 8601 such as 2024-01-26T03:00:00Z`,
    );
  }
  return date;
}

/**
 * Parses a duration: a number with `m`, `h` or `d`.
 *
 * @param value The text, e.g. `26h`.
 * @param flag The flag, named in errors.
 * @returns Milliseconds.
 * @throws {UsageError} When it is not such a duration.
 */
export function parseDuration(value: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(m|h|d)$/.exec(value.trim());
  if (!m || Number(m[1]) <= 0) {
    throw new UsageError(
      flag,
      `Invalid ${flag} "${value}": expected a duration such as 90m, 26h or 2d`,
    );
  }
  return Number(m[1]) *
    { m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as "m" | "h" | "d"];
}
