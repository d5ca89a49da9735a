/**
 * Preloaded into a script (`deno run --preload`) to prove what its
 * production permissions refuse: it tries each kind of access outside any
 * script's grant and reports the outcome on stderr as `PROBE {...}` (the
 * error's name, or `allowed`), then lets the script run.
 *
 * @module
 */

import { reportProbe } from "./_probe_report.ts";

const attempts: Record<string, () => Promise<unknown>> = {
  "write a file in the checkout root": () =>
    Deno.writeTextFile("./probe-root.txt", "x"),
  "read /etc/hostname": () => Deno.readTextFile("/etc/hostname"),
  "open a socket to 127.0.0.1:9": async () =>
    (await Deno.connect({ hostname: "127.0.0.1", port: 9 })).close(),
  "read HOME": () => Promise.resolve(Deno.env.get("HOME")),
  "run a program": () => new Deno.Command("true").output(),
};
await reportProbe(attempts);
