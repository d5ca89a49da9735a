/**
 * The one place memkeep writes to the terminal. Results go to stdout,
 * warnings, errors and progress to stderr; everything passes through
 * {@linkcode redact} first.
 *
 * @module
 */

import { type Progress, progressLine } from "../progress.ts";
import { redact } from "../redact.ts";

// The numbers for people, where the scripts print them (log.count, …).
export { bytes, count, duration } from "../units.ts";

const encoder = new TextEncoder();

function write(stream: typeof Deno.stdout, text: string): void {
  const bytes = encoder.encode(redact(text));
  let offset = 0;
  while (offset < bytes.length) {
    offset += stream.writeSync(bytes.subarray(offset));
  }
}

/**
 * Prints one line of results to stdout.
 *
 * @param line The text, without a trailing newline.
 */
export function info(line = ""): void {
  clearProgress();
  write(Deno.stdout, line + "\n");
}

/**
 * Prints a warning to stderr.
 *
 * @param line The warning, without a trailing newline.
 */
export function warn(line: string): void {
  clearProgress();
  write(Deno.stderr, `Warning: ${line}\n`);
}

/**
 * Prints an error to stderr.
 *
 * @param line The error, without a trailing newline.
 */
export function error(line: string): void {
  clearProgress();
  write(Deno.stderr, `Error: ${line}\n`);
}

let progressShown = false;
let lastProgress = 0;
let current: { what: string; since: number } | undefined;

/**
 * Shows a one-line progress indicator on stderr when stderr is a terminal
 * (`memories 13,000 / 38,664 · 34% · 61 MB/s · 8 s left`); does nothing
 * otherwise. Updates are limited to ten a second.
 *
 * @param update Where the work is.
 */
export function progress(update: Progress): void {
  if (!Deno.stderr.isTerminal()) return;
  const now = performance.now();
  // A new kind of work shows at once; updates of the same, ten a second.
  if (current?.what !== update.what) {
    current = { what: update.what, since: now };
  } else if (progressShown && now - lastProgress < 100) return;
  lastProgress = now;
  progressShown = true;
  write(Deno.stderr, `\r\x1b[2K${progressLine(update, now - current.since)}`);
}

/** Removes the progress line, if one is shown. */
export function clearProgress(): void {
  if (!progressShown) return;
  progressShown = false;
  write(Deno.stderr, "\r\x1b[2K");
}
