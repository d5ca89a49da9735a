/**
 * The moment that names a backup or a snapshot: now, or the next second
 * when a backup already has this second's name (names have one-second
 * resolution).
 *
 * @module
 */

import { backupName } from "../format/layout.ts";

/**
 * Now, or the next second while the name is taken (three tries).
 *
 * @param now The clock.
 * @param taken Whether a name is in use.
 * @param fail The error when it still is after three tries.
 * @returns The moment.
 */
export async function freeMoment(
  now: () => Date,
  taken: (name: string) => boolean | Promise<boolean>,
  fail: (name: string) => Error,
): Promise<Date> {
  for (let attempt = 0;; attempt++) {
    const moment = now();
    const name = backupName(moment);
    if (!(await taken(name))) return moment;
    if (attempt === 2) throw fail(name);
    await new Promise((r) => setTimeout(r, 1001 - (moment.getTime() % 1000)));
  }
}
