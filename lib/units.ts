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
  while (value >= 1000 && unit < units.length - 1) {
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
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} min ${Math.round((ms - minutes * 60_000) / 1000)} s`;
}
