/**
 * Preloaded into a script (`deno run --preload`) to prove what its
 * permissions allow: it tries each kind of access and reports the outcome on
 * stderr as `PROBE {...}`, then lets the script run.
 *
 * @module
 */

const target = Deno.args.find((a) => !a.startsWith("-")) ?? ".";
const attempts: Record<string, () => Promise<unknown>> = {
  "write inside the granted directory": () =>
    Deno.writeTextFile(`${target}/probe.txt`, "x"),
  "read outside the grant": () => Deno.readTextFile("/etc/hostname"),
  "open a socket": () => Deno.connect({ hostname: "127.0.0.1", port: 9 }),
  "read an environment variable": () => Promise.resolve(Deno.env.get("HOME")),
  "run a program": () => new Deno.Command("true").output(),
};
const outcome: Record<string, string> = {};
for (const [name, attempt] of Object.entries(attempts)) {
  try {
    await attempt();
    outcome[name] = "allowed";
  } catch (error) {
    outcome[name] = error instanceof Error ? error.name : String(error);
  }
}
// deno-lint-ignore no-console
console.error(`PROBE ${JSON.stringify(outcome)}`);
