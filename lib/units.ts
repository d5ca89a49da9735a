/**
 * Numbers for people: counts, byte sizes and durations, as every message,
 * progress line and job summary prints them.
 *
 * @module
 */

/**
 * Formats a count with thousands separators: `38,664`.
 *
 * @param n The number.
 * @returns The formatted number.
 */
export function count(n: number): string {
  return n.toLocaleString("en-US");
}

/**
 * Formats a byte size for people: `812.4 MB`.
 *
 * @param bytes The size in bytes.
 * @returns The size with a unit.
 */
export function bytes(bytes: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  // 999,999 B is 1.0 MB, not 1000.0 KB: step up when the rounded value would.
  while (value >= 999.95 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/**
 * Formats a duration for people: `1.2 s`, `3 min 4 s`.
 *
 * @param ms The duration in milliseconds.
 * @returns The formatted duration.
 */
export function duration(ms: number): string {
  // Rounded first, so that 59,960 ms is 1 min 0 s, not 60.0 s, and 119,600
  // ms is 2 min 0 s, not 1 min 60 s.
  if (Math.round(ms) < 1000) return `${Math.round(ms)} ms`;
  if (Math.round(ms / 100) < 600) return `${(ms / 1000).toFixed(1)} s`;
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
}
