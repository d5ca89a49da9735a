/**
 * Which backups to keep: a pure decision over backup names, with no I/O, so
 * the caller can show it (dry run) before deleting anything.
 *
 * Rules, all in UTC:
 *
 * - daily: every backup taken in the last `daily` × 24 hours;
 * - weekly: the newest backup of each of the `weekly` ISO weeks (Monday to
 *   Sunday) before the week containing `now`;
 * - monthly: the newest backup of each of the `monthly` calendar months before
 *   the month containing `now`;
 * - the newest backup not in the future is always kept;
 * - a backup dated after `now` is kept, and a name that is not a backup name
 *   is never touched.
 *
 * @module
 */

import { parseBackupName } from "../format/layout.ts";

/** How many backups to keep under each rule. */
export interface RetentionPolicy {
  /** Keep every backup of the last this many days (× 24 hours). */
  readonly daily: number;
  /** Keep the newest backup of each of this many ISO weeks before this one. */
  readonly weekly: number;
  /** Keep the newest backup of each of this many months before this one. */
  readonly monthly: number;
}

/** A week of dailies and a month of weeklies. */
export const DEFAULT_POLICY: RetentionPolicy = {
  daily: 7,
  weekly: 4,
  monthly: 0,
};

/** What to do with one name, and why. */
export interface RetentionDecision {
  /** The name as given. */
  readonly name: string;
  /** Whether to keep it. */
  readonly keep: boolean;
  /**
   * Why: every rule that keeps it, e.g. `daily: within the last 7 days`,
   * `weekly: newest of ISO week 2024-W02`, `monthly: newest of 2023-12`,
   * `newest backup`, `in the future`, `not a backup name`; or
   * `outside every rule` when it is to be deleted.
   */
  readonly reasons: string[];
}

const DAY_MS = 24 * 60 * 60 * 1000;
const WEEK_MS = 7 * DAY_MS;

/**
 * The ISO 8601 week of a moment, in UTC.
 *
 * @param date The moment.
 * @returns The week as `YYYY-Www`, with the ISO week-numbering year, which
 * differs from the calendar year around New Year (2021-01-03 is `2020-W53`).
 * @throws {RangeError} When `date` is an Invalid Date.
 */
export function isoWeek(date: Date): string {
  const time = date.getTime();
  if (Number.isNaN(time)) {
    throw new RangeError("Invalid date: Invalid Date (must be a valid date)");
  }
  // The week belongs to the year its Thursday falls in.
  const thursday = weekStart(time) + 3 * DAY_MS;
  const year = new Date(thursday).getUTCFullYear();
  // 4 January is always in week 1. setUTCFullYear, unlike Date.UTC, takes
  // years 0 to 99 literally.
  const january4 = new Date(0);
  january4.setUTCFullYear(year, 0, 4);
  const firstThursday = weekStart(january4.getTime()) + 3 * DAY_MS;
  const week = 1 + Math.round((thursday - firstThursday) / WEEK_MS);
  return `${String(year).padStart(4, "0")}-W${String(week).padStart(2, "0")}`;
}

/**
 * Decides which backups to keep.
 *
 * @param now The moment the decision is made for.
 * @param names Directory names, backups or not.
 * @param policy How many to keep under each rule.
 * @returns One decision per name: backups newest first, then every other name
 * in input order.
 * @throws {RangeError} When a count is negative, fractional or not finite,
 * or `now` is an Invalid Date.
 */
export function applyRetention(
  now: Date,
  names: readonly string[],
  policy: RetentionPolicy,
): RetentionDecision[] {
  const daily = checkCount("keep-daily", policy.daily);
  const weekly = checkCount("keep-weekly", policy.weekly);
  const monthly = checkCount("keep-monthly", policy.monthly);
  const nowMs = now.getTime();
  if (Number.isNaN(nowMs)) {
    throw new RangeError("Invalid now: Invalid Date (must be a valid date)");
  }

  const backups: { name: string; time: number }[] = [];
  const others: string[] = [];
  for (const name of names) {
    const date = parseBackupName(name);
    if (date === undefined) others.push(name);
    else backups.push({ name, time: date.getTime() });
  }
  // Array.prototype.sort is stable, so equal times keep their input order.
  backups.sort((a, b) => b.time - a.time);

  const past = backups.filter((b) => b.time <= nowMs);
  const newest = past[0]?.time;
  const thisWeek = weekStart(nowMs);
  const thisMonth = monthIndex(nowMs);
  // Sorted newest first, so the first backup seen in a period is its newest.
  const newestOfWeek = new Map<number, number>();
  const newestOfMonth = new Map<number, number>();
  for (const { time } of past) {
    const week = weekStart(time);
    if (!newestOfWeek.has(week)) newestOfWeek.set(week, time);
    const month = monthIndex(time);
    if (!newestOfMonth.has(month)) newestOfMonth.set(month, time);
  }

  const decisions: RetentionDecision[] = backups.map(({ name, time }) => {
    if (time > nowMs) return { name, keep: true, reasons: ["in the future"] };
    const reasons: string[] = [];
    if (time > nowMs - daily * DAY_MS) {
      reasons.push(`daily: within the last ${daily} day${plural(daily)}`);
    }
    const week = weekStart(time);
    const weeksAgo = Math.round((thisWeek - week) / WEEK_MS);
    if (
      weeksAgo >= 1 && weeksAgo <= weekly && newestOfWeek.get(week) === time
    ) {
      reasons.push(`weekly: newest of ISO week ${isoWeek(new Date(time))}`);
    }
    const month = monthIndex(time);
    const monthsAgo = thisMonth - month;
    if (
      monthsAgo >= 1 && monthsAgo <= monthly &&
      newestOfMonth.get(month) === time
    ) {
      reasons.push(
        `monthly: newest of ${new Date(time).toISOString().slice(0, 7)}`,
      );
    }
    if (time === newest) reasons.push("newest backup");
    return reasons.length > 0
      ? { name, keep: true, reasons }
      : { name, keep: false, reasons: ["outside every rule"] };
  });
  for (const name of others) {
    decisions.push({ name, keep: true, reasons: ["not a backup name"] });
  }
  return decisions;
}

/** Returns `value` when it is a whole number ≥ 0, or throws naming `field`. */
function checkCount(field: string, value: number): number {
  if (!Number.isInteger(value) || value < 0) {
    throw new RangeError(
      `Invalid ${field}: ${String(value)} (must be a whole number ≥ 0)`,
    );
  }
  return value;
}

/** The start (Monday 00:00 UTC) of the ISO week containing `time`. */
function weekStart(time: number): number {
  // UTC has no leap seconds or DST in Date arithmetic: every day is DAY_MS.
  const dayStart = Math.floor(time / DAY_MS) * DAY_MS;
  // getUTCDay() is 0 for Sunday; ISO weeks start on Monday.
  return dayStart - ((new Date(time).getUTCDay() + 6) % 7) * DAY_MS;
}

/** Months since year 0, so consecutive months differ by one. */
function monthIndex(time: number): number {
  const date = new Date(time);
  return date.getUTCFullYear() * 12 + date.getUTCMonth();
}

/** "s" unless `count` is 1. */
function plural(count: number): string {
  return count === 1 ? "" : "s";
}
