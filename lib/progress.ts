/**
 * Progress of long work, as the library reports it and the terminal shows
 * it: `memories 13,000 / 38,664 · 34% · 61 MB/s · 8 s left`.
 *
 * @module
 */

import { count } from "./units.ts";

/** How far some work has got. */
export interface Progress {
  /** What is being done: `memories`, `records`, `verifying`, … */
  readonly what: string;
  /** Items done so far. */
  readonly done?: number;
  /** Items in all, when known. */
  readonly total?: number | undefined;
  /** Bytes handled so far, for the rate. */
  readonly bytes?: number | undefined;
}

/** Receives progress. */
export type OnProgress = (progress: Progress) => void;

/**
 * The line for a progress report.
 *
 * @param progress Where the work is.
 * @param elapsedMs How long this work (this `what`) has run.
 * @returns One line: what, done / total, percent, rate, time left; each
 * part only when it can be known.
 */
export function progressLine(progress: Progress, elapsedMs: number): string {
  const { what, done, total, bytes } = progress;
  if (done === undefined) return what;
  const parts = [
    total === undefined
      ? `${what} ${count(done)}`
      : `${what} ${count(done)} / ${count(total)}`,
  ];
  if (total !== undefined && total > 0) {
    parts.push(`${Math.floor((Math.min(done, total) / total) * 100)}%`);
  }
  const seconds = elapsedMs / 1000;
  // A rate over less than half a second says little.
  if (seconds >= 0.5 && done > 0) {
    if (bytes !== undefined) {
      parts.push(`${(bytes / 1e6 / seconds).toFixed(0)} MB/s`);
    } else parts.push(`${count(Math.round(done / seconds))}/s`);
    if (total !== undefined && total > done) {
      parts.push(`${left(((total - done) * seconds) / done)} left`);
    }
  }
  return parts.join(" · ");
}

function left(seconds: number): string {
  if (seconds < 60) return `${Math.ceil(seconds)} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${Math.round(seconds - minutes * 60)} s`;
}
