/**
 * Preloaded into a script (`deno run --preload`) to map what its
 * permissions refuse: it tries one access of every kind outside any
 * script's grant and reports, on stderr as `PROBE {...}`, the error's name
 * and the first line of its message (or `allowed`, with what it got for
 * the whole environment), then lets the script run.
 *
 * @module
 */

const attempts: Record<string, () => Promise<unknown>> = {
  "read a system file": () => Deno.readTextFile("/etc/hostname"),
  "read the checkout's deno.json": () => Deno.readTextFile("./deno.json"),
  "write outside the checkout": () =>
    Deno.writeTextFile("/tmp/memkeep-probe-outside.txt", "x"),
  "write into the checkout root": () =>
    Deno.writeTextFile("./probe-scope.txt", "x"),
  "connect to a host not granted": async () =>
    (await Deno.connect({ hostname: "127.0.0.1", port: 9 })).close(),
  "fetch from a host not granted": async () =>
    await (await fetch("http://memkeep-probe.invalid:8080/")).body?.cancel(),
  "read an environment variable": () => Promise.resolve(Deno.env.get("HOME")),
  // With a list of variables, Deno gives only those: report which it gave.
  "read the whole environment": () =>
    Promise.resolve(Object.keys(Deno.env.toObject()).sort().join(",")),
  "run a program": () => new Deno.Command("true").output(),
  "read system information": () => Promise.resolve(Deno.hostname()),
};
const outcome: Record<string, { name: string; message: string }> = {};
for (const [what, attempt] of Object.entries(attempts)) {
  try {
    const result = await attempt();
    outcome[what] = {
      name: "allowed",
      message: what === "read the whole environment" ? String(result) : "",
    };
  } catch (error) {
    outcome[what] = error instanceof Error
      ? { name: error.name, message: error.message.split("\n")[0]! }
      : { name: String(error), message: "" };
  }
}
// deno-lint-ignore no-console
console.error(`PROBE ${JSON.stringify(outcome)}`);
