import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { chromium } from "playwright-core";
import { exportMemories } from "../../../lib/backup/export.ts";
import { mermaidBlock } from "../../../lib/format/markdown/check.ts";
import { GRAPH_LIMIT, MEMORIES_MD } from "../../../lib/format/markdown/text.ts";
import { seedRelationshipStore } from "../../../lib/store/demo_data.ts";
import { openEmbeddedStore, seedMemories } from "../../_db.ts";
import { configFrom, ROOT, withTempDir } from "../../_helpers.ts";

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
})();

/** Ids and types that would break a naive Mermaid graph. */
const HOSTILE = [
  ['say "hi"', 'quote"d'],
  ["box[1]", "curly{2}"],
  ["pipe|pipe", "a-->b"],
  ["semi;colon", "#hash #35;"],
  ["<script>alert(1)</script>", "amp & lt"],
  ["Zürich 🙂 日本", "back`tick"],
  ["end\nline", "tab\there"],
];

async function renderGraph(source: string) {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
    ],
  });
  try {
    const page = await browser.newPage();
    await page.setContent(
      "<!doctype html><html><body><div id=out></div></body></html>",
    );
    await page.addScriptTag({
      path: `${ROOT}/node_modules/mermaid/dist/mermaid.min.js`,
    });
    return await page.evaluate(async (src: string) => {
      // deno-lint-ignore no-explicit-any
      const mermaid = (globalThis as any).mermaid;
      mermaid.initialize({ startOnLoad: false, securityLevel: "strict" });
      try {
        await mermaid.parse(src);
        const { svg } = await mermaid.render("graph", src);
        // deno-lint-ignore no-explicit-any
        const out = (globalThis as any).document.getElementById("out");
        out.innerHTML = svg;
        return {
          error: null,
          nodes: out.querySelectorAll("g.node").length,
          edges: out.querySelectorAll("path.flowchart-link").length,
          text: out.textContent ?? "",
          scripts: out.querySelectorAll("script").length,
        };
      } catch (error) {
        return {
          error: String(error),
          nodes: 0,
          edges: 0,
          text: "",
          scripts: 0,
        };
      }
    }, source);
  } finally {
    await browser.close();
  }
}

Deno.test({
  name: hasChromium
    ? "the Markdown export's Mermaid graph renders in Chromium, hostile labels included"
    : `the Markdown export's Mermaid graph renders in Chromium (skipped: ${CHROMIUM} is not installed; apt-get install chromium)`,
  ignore: !hasChromium,
  fn: async () => {
    await withTempDir(async (dir) => {
      const store = await openEmbeddedStore(`${dir}/pglite`);
      await seedMemories(store, "public.memories", { memories: 20, dims: 4 });
      await store.close();
      const rel = `${dir}/relationships.db`;
      const ids = Array.from({ length: 60 }, (_, i) => `memory-${i}`);
      seedRelationshipStore(rel, ids, { relationships: 150 });
      const db = new DatabaseSync(rel);
      const add = db.prepare(
        "insert into relationships (source_id, target_id, rel_type, strength, created_at, updated_at) values (?, ?, ?, 2.0, 't', 't')",
      );
      for (const [source, type] of HOSTILE) {
        add.run(source!, `${source} target`, type!);
      }
      db.close();

      const config = configFrom({ RELATIONSHIPS_DB: rel });
      const result = await exportMemories({
        config: {
          ...config,
          store: { kind: "pglite", dataDir: `${dir}/pglite` },
        },
        format: "markdown",
        output: `${dir}/export`,
        verify: true,
      });
      const markdown = await Deno.readTextFile(`${result.path}/${MEMORIES_MD}`);
      assert.match(
        markdown,
        new RegExp(
          `Showing the top ${GRAPH_LIMIT} of ${
            150 + HOSTILE.length
          } relationships`,
        ),
      );
      const source = mermaidBlock(markdown);
      assert.ok(source, "a mermaid block");
      const edges = source.split("\n").filter((l) => l.includes("-->"));
      assert.equal(edges.length, GRAPH_LIMIT);
      const endpoints = new Set(
        edges.flatMap((l) => [...l.matchAll(/\b(n\d+)\[/g)].map((m) => m[1]!)),
      );

      const rendered = await renderGraph(source);
      assert.equal(
        rendered.error,
        null,
        `Mermaid parses and renders: ${rendered.error}`,
      );
      assert.equal(rendered.edges, GRAPH_LIMIT, "every edge is drawn");
      assert.equal(rendered.nodes, endpoints.size, "every node is drawn once");
      assert.equal(rendered.scripts, 0, "no markup gets through");
      for (const [sourceId, type] of HOSTILE) {
        // Labels are cut at 24 characters; whitespace shows as one space.
        const visible = (text: string) =>
          [...text.replace(/\s+/g, " ")].slice(0, 20).join("");
        assert.ok(
          rendered.text.includes(visible(sourceId!)),
          `label ${JSON.stringify(sourceId)} is shown as written`,
        );
        assert.ok(
          rendered.text.includes(visible(type!)),
          `type ${JSON.stringify(type)} is shown as written`,
        );
      }
    });
  },
});
