import assert from "node:assert/strict";
import denoJson from "../deno.json" with { type: "json" };
import { ROOT } from "./_helpers.ts";

Deno.test("the README's two quick-start commands pin the Deno version in .dvmrc", async () => {
  const version = (await Deno.readTextFile(`${ROOT}/.dvmrc`)).trim();
  assert.match(version, /^2\.\d+\.\d+$/);
  const readme = await Deno.readTextFile(`${ROOT}/README.md`);
  assert.ok(readme.includes(`npx -y deno@${version} task demo`));
  assert.ok(readme.includes(`npx -y deno@${version} task test`));
  const ci = await Deno.readTextFile(`${ROOT}/.ci/run`);
  assert.ok(ci.includes("cat .dvmrc"), ".ci/run reads the pinned version");
  assert.ok(ci.includes("task test"), ".ci/run runs the README's test command");
});

Deno.test("every deno task the README names exists", async () => {
  const readme = await Deno.readTextFile(`${ROOT}/README.md`);
  const named = new Set(
    [...readme.matchAll(/deno(?:@[\d.]+)? task ([a-z-]+)/g)].map((m) => m[1]!),
  );
  assert.ok(named.size >= 4);
  for (const task of named) {
    assert.ok(task in denoJson.tasks, `task "${task}" is in deno.json`);
  }
});
