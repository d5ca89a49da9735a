/**
 * Preloaded into a script (`deno run --preload`) to prove what its
 * permissions allow: it tries each kind of access and reports the outcome on
 * stderr as `PROBE {...}`, then lets the script run.
 *
 * @module
 */

import { reportProbe } from "./_probe_report.ts";

const target = Deno.args.find((a) => !a.startsWith("-")) ?? ".";
const attempts: Record<string, () => Promise<unknown>> = {
  "write inside the granted directory": () =>
    Deno.writeTextFile(`${target}/probe.txt`, "x"),
  "read outside the grant": () => Deno.readTextFile("/etc/hostname"),
  "open a socket": () => Deno.connect({ hostname: "127.0.0.1", port: 9 }),
  "read an environment variable": () => Promise.resolve(Deno.env.get("HOME")),
  "run a program": () => new Deno.Command("true").output(),
};
await reportProbe(attempts);
