import assert from "node:assert/strict";
import { objectFields, recordFields } from "../../../lib/format/json/scan.ts";
import { VerifyError } from "../../../lib/errors.ts";
import { EXPORT_FILE } from "../../../lib/format/layout.ts";
import {
  type ExportEntry,
  readExport,
} from "../../../lib/format/json/reader.ts";
import { writeExport } from "../../../lib/format/json/writer.ts";
import {
  type ExportHeader,
  payloadFromRecord,
  type RawRecord,
  rawRecordLine,
} from "../../../lib/format/records.ts";
import { withTempDir } from "../../_helpers.ts";

// ---------------------------------------------------------------------------
// Fixtures: records as a backup of a mem0 store would hold them.

const HEADER: ExportHeader = {
  tool: "memkeep",
  tool_version: "0.1.0",
  format: "json",
  format_version: 1,
  backup_name: "memory_20240501_120000",
  created_at: "2024-05-01T12:00:00.000Z",
  user_id: "alice",
  includes_vectors: true,
  memory_count: 5,
  relationship_count: 2,
  memories: {
    schema: "public",
    table: "memories",
    id_type: "uuid",
    vector_type: "vector",
    payload_type: "jsonb",
    dims: 4,
    pgvector_version: "0.8.0",
    indexes: ["memories_pkey", "memories_embedding_idx"],
    source: {
      kind: "pglite",
      path: "./data/pglite",
      server_version: "17.5",
    },
  },
  relationships: {
    source: "./data/relationships.db",
    snapshot: "relationships.db",
    tables: { relationships: 2 },
  },
};

/** A JSON string literal, as `JSON.stringify` writes it. */
function str(value: string): string {
  return JSON.stringify(value);
}

const MEMORIES: RawRecord[] = [
  new Map([
    ["id", str("6f1c2a9e-0d3b-4c55-9a1e-2b7f0e8c1d11")],
    ["content", str("Prefers tea over coffee ☕ — naïve café, 日本語, 😀👩‍👩‍👧")],
    ["embedding", "[0.012,-0.5,1e-08,0.25]"],
    // jsonb prints a space after ':' and ','.
    [
      "metadata",
      '{"big": 12345678901234567890123, "tags": ["tea", "café"], "user_id": "alice"}',
    ],
    ["created_at", str("2024-05-01T12:00:00.000000+00:00")],
    ["heat", "0.75"],
  ]),
  new Map([
    ["id", str("0b9e5c1d-7a22-4f0e-8d61-3c4b5a697801")],
    [
      "content",
      str(
        'line one\nline two\tafter a tab, "quoted", a back\\slash, C:\\dir\\',
      ),
    ],
    ["embedding", "[1,0,0,0]"],
    ["metadata", '{"note": "ends in a backslash \\\\", "user_id": "alice"}'],
    ["created_at", str("2024-05-02T08:30:00+00:00")],
    ["heat", "1e-08"],
  ]),
  new Map([
    ["id", str("a3d4e5f6-0000-4000-8000-000000000003")],
    [
      "content",
      str(
        'not a field: "embedding":[1,2,3]},{"id":"fake"}\n],\n"relationships":[',
      ),
    ],
    ["embedding", "null"],
    ["metadata", "{}"],
    ["created_at", str("2024-05-03T00:00:00Z")],
    ["heat", "12345678901234567890123"],
  ]),
  // A NULL payload: nothing but the id and the vector.
  new Map([
    ["id", str("c0ffee00-0000-4000-8000-000000000004")],
    ["embedding", "[0,0,0,0]"],
  ]),
  // Escapes kept exactly as the source wrote them.
  new Map([
    ["id", str("d00d0000-0000-4000-8000-000000000005")],
    ["content", String.raw`"\u00e9\ud83d\ude00 \"\\\" \/ \b\f\r\n\t \\"`],
    ["embedding", "[-0.125,3.4028235e+38,-1E-7,5]"],
    ["metadata", String.raw`{"k\"ey": {"nested": [{"a": "}"}, "]"]}, "": 0}`],
  ]),
];

const RELATIONSHIPS: RawRecord[] = [
  new Map([
    ["id", "1"],
    ["source_id", str("6f1c2a9e-0d3b-4c55-9a1e-2b7f0e8c1d11")],
    ["target_id", str("0b9e5c1d-7a22-4f0e-8d61-3c4b5a697801")],
    ["rel_type", str("related_to")],
    ["strength", "0.9"],
    ["metadata", '{"since": "2020", "note": "tab\\there \\"q\\""}'],
    ["created_at", str("2024-05-01 12:00:00")],
    ["updated_at", str("2024-05-01 12:00:00")],
  ]),
  new Map([
    ["id", "2"],
    ["source_id", str("a3d4e5f6-0000-4000-8000-000000000003")],
    ["target_id", str("d00d0000-0000-4000-8000-000000000005")],
    ["rel_type", str("mentions ✓")],
    ["strength", "null"],
    ["metadata", "null"],
    ["metadata_text", str("not json {")],
    ["created_at", str("2024-05-02 09:00:00")],
    ["updated_at", str("2024-05-03 10:00:00")],
  ]),
];

// ---------------------------------------------------------------------------
// Helpers.

const encoder = new TextEncoder();

/** How bytes are cut into chunks: chunk n gets `size(n)` bytes. */
interface Chunking {
  name: string;
  size?: (n: number) => number;
}

const VARIED = [3, 1, 7, 2, 5, 1, 4, 6, 2, 1, 3, 7];

const WHOLE: Chunking = { name: "whole" };
const TINY_CHUNKINGS: Chunking[] = [
  ...[1, 2, 3, 4, 5, 6, 7].map((k) => ({
    name: `${k}-byte chunks`,
    size: () => k,
  })),
  {
    name: "chunks of 1 to 7 bytes",
    size: (n: number) => VARIED[n % VARIED.length]!,
  },
];

async function* chunked(
  bytes: Uint8Array,
  chunking: Chunking,
): AsyncGenerator<Uint8Array> {
  if (!chunking.size) {
    yield bytes.slice();
    return;
  }
  for (let at = 0, n = 0; at < bytes.length; n++) {
    const end = Math.min(bytes.length, at + chunking.size(n));
    yield bytes.slice(at, end);
    at = end;
  }
}

/** Offsets at which a new chunk starts. */
function boundaries(bytes: Uint8Array, chunking: Chunking): number[] {
  const out: number[] = [];
  const size = chunking.size ?? (() => bytes.length);
  for (let at = 0, n = 0; at < bytes.length; n++) {
    at += size(n);
    if (at < bytes.length) out.push(at);
  }
  return out;
}

function bytesOf(source: string | Uint8Array): Uint8Array {
  return typeof source === "string" ? encoder.encode(source) : source;
}

async function readAll(
  source: string | Uint8Array,
  chunking: Chunking = WHOLE,
): Promise<ExportEntry[]> {
  const out: ExportEntry[] = [];
  for await (const entry of readExport(chunked(bytesOf(source), chunking))) {
    out.push(entry);
  }
  return out;
}

async function readError(
  source: string | Uint8Array,
  chunking: Chunking = WHOLE,
): Promise<VerifyError> {
  try {
    for await (const _ of readExport(chunked(bytesOf(source), chunking))) {
      // Drain.
    }
  } catch (error) {
    if (error instanceof VerifyError) return error;
    throw error;
  }
  assert.fail("readExport() accepted the document");
}

/** The text memkeep itself writes for these records. */
async function written(
  memories: RawRecord[],
  relationships: RawRecord[],
): Promise<string> {
  return await withTempDir(async (dir) => {
    const path = `${dir}/${EXPORT_FILE}`;
    await writeExport(path, HEADER, memories, relationships);
    return await Deno.readTextFile(path);
  });
}

type Section = ExportEntry["section"];

function inSection(entries: ExportEntry[], section: Section): ExportEntry[] {
  return entries.filter((e) => e.section === section);
}

function parsed(records: RawRecord[]): unknown[] {
  return records.map((r) => JSON.parse(rawRecordLine(r)));
}

/** The parsed document, for layouts built by re-serialising it. */
function documentValue(): {
  metadata: unknown;
  memories: unknown[];
  relationships: unknown[];
} {
  return {
    metadata: JSON.parse(JSON.stringify(HEADER)),
    memories: parsed(MEMORIES),
    relationships: parsed(RELATIONSHIPS),
  };
}

/** Asserts that each section holds the expected values, in order. */
function assertValues(entries: ExportEntry[]): void {
  const doc = documentValue();
  assert.deepEqual(
    inSection(entries, "metadata").map((e) => e.value),
    [doc.metadata],
  );
  assert.deepEqual(
    inSection(entries, "memories").map((e) => e.value),
    doc.memories,
  );
  assert.deepEqual(
    inSection(entries, "relationships").map((e) => e.value),
    doc.relationships,
  );
}

/** Asserts that each section's texts are the records' own texts, in order. */
function assertTexts(entries: ExportEntry[]): void {
  assert.deepEqual(
    inSection(entries, "metadata").map((e) => e.text),
    [JSON.stringify(HEADER)],
  );
  assert.deepEqual(
    inSection(entries, "memories").map((e) => e.text),
    MEMORIES.map(rawRecordLine),
  );
  assert.deepEqual(
    inSection(entries, "relationships").map((e) => e.text),
    RELATIONSHIPS.map(rawRecordLine),
  );
}

/**
 * Asserts that every entry's text occurs in the source, in document order,
 * starting on the line the entry names, and parses to the entry's value.
 */
function assertTextsAtLines(source: string, entries: ExportEntry[]): void {
  let from = 0;
  for (const entry of entries) {
    const at = source.indexOf(entry.text, from);
    assert.ok(at >= 0, `${entry.section} text ${entry.text} is in the source`);
    assert.equal(entry.line, lineAt(source, at), `line of ${entry.text}`);
    assert.deepEqual(entry.value, JSON.parse(entry.text));
    from = at + entry.text.length;
  }
}

/** The text with line `n` (1-based) replaced by the given lines. */
function replaceLine(lines: string[], n: number, ...by: string[]): string {
  return [...lines.slice(0, n - 1), ...by, ...lines.slice(n)].join("\n");
}

/** The 1-based line of an index into a text. */
function lineAt(text: string, index: number): number {
  return text.slice(0, index).split("\n").length;
}

// ---------------------------------------------------------------------------
// Layouts of the same document.

function oneLine(): string {
  return `{"metadata":${JSON.stringify(HEADER)},"memories":[${
    MEMORIES.map(rawRecordLine).join(",")
  }],"relationships":[${RELATIONSHIPS.map(rawRecordLine).join(",")}]}`;
}

function relationshipsFirst(): string {
  return `{"relationships":[\n${
    RELATIONSHIPS.map(rawRecordLine).join(",\n")
  }\n],\n"memories":[\n${
    MEMORIES.map(rawRecordLine).join(",\n")
  }\n],\n"metadata":${JSON.stringify(HEADER)}}\n`;
}

function spacious(): string {
  return `\n \t{\n\t"metadata" :  ${
    JSON.stringify(HEADER)
  } ,\n\n  "memories"\n: [\n    ${
    MEMORIES.map(rawRecordLine).join(" ,\n\n    ")
  }\n  ] ,  "relationships":[ ${
    RELATIONSHIPS.map(rawRecordLine).join("\t,\t")
  } ]\n}\n\n  \n`;
}

// ---------------------------------------------------------------------------

Deno.test("readExport() gives back the header and every record writeExport() wrote, in order, on their lines", async (t) => {
  const cases: {
    name: string;
    memories: RawRecord[];
    relationships: RawRecord[];
  }[] = [
    {
      name: "memories and relationships",
      memories: MEMORIES,
      relationships: RELATIONSHIPS,
    },
    {
      name: "no memories",
      memories: [],
      relationships: RELATIONSHIPS,
    },
    {
      name: "no relationships",
      memories: MEMORIES,
      relationships: [],
    },
    { name: "neither", memories: [], relationships: [] },
  ];
  for (const c of cases) {
    await t.step(c.name, async () => {
      const source = await written(c.memories, c.relationships);
      const entries = await readAll(source);
      const m = c.memories.length;
      assert.deepEqual(
        entries.map(({ section, text, line }) => ({ section, text, line })),
        [
          { section: "metadata", text: JSON.stringify(HEADER), line: 1 },
          ...c.memories.map((r, i) => ({
            section: "memories",
            text: rawRecordLine(r),
            line: 3 + i,
          })),
          ...c.relationships.map((r, i) => ({
            section: "relationships",
            text: rawRecordLine(r),
            line: 5 + m + i,
          })),
        ],
      );
      assert.deepEqual(entries[0]?.value, JSON.parse(JSON.stringify(HEADER)));
      for (const entry of entries.slice(1)) {
        assert.deepEqual(entry.value, JSON.parse(entry.text));
      }
      // Every field comes back with its exact source text: big numbers keep
      // their digits, escapes stay as written.
      assert.deepEqual(
        inSection(entries, "memories").map((e) => recordFields(e.text)),
        c.memories,
      );
      assert.deepEqual(
        inSection(entries, "relationships").map((e) => recordFields(e.text)),
        c.relationships,
      );
    });
  }
});

Deno.test("readExport() gives the same entries whether the bytes come whole or in chunks of 1 to 7 bytes", async (t) => {
  const memkeep = await written(MEMORIES, RELATIONSHIPS);
  const layouts: { name: string; source: string }[] = [
    { name: "memkeep's layout", source: memkeep },
    {
      name: "pretty-printed",
      source: JSON.stringify(documentValue(), null, 2),
    },
    { name: "one line", source: oneLine() },
    { name: "CRLF line endings", source: memkeep.replaceAll("\n", "\r\n") },
    { name: "extra whitespace", source: spacious() },
  ];
  for (const layout of layouts) {
    await t.step(layout.name, async (t) => {
      const bytes = encoder.encode(layout.source);
      const whole = await readAll(bytes);
      assertValues(whole);
      for (const chunking of TINY_CHUNKINGS) {
        await t.step(chunking.name, async () => {
          assert.deepEqual(await readAll(bytes, chunking), whole);
        });
      }
    });
  }

  await t.step("the chunks do split characters and escapes", () => {
    const bytes = encoder.encode(memkeep);
    for (const chunking of TINY_CHUNKINGS) {
      const cuts = boundaries(bytes, chunking);
      // A UTF-8 continuation byte (10xxxxxx) starts a chunk.
      assert.ok(
        cuts.some((b) => (bytes[b]! & 0xc0) === 0x80),
        `${chunking.name} split a multi-byte character`,
      );
      // A chunk ends on the backslash of an escape, e.g. between \ and ".
      assert.ok(
        cuts.some((b) => bytes[b - 1] === 0x5c),
        `${chunking.name} split an escape`,
      );
    }
    const varied = TINY_CHUNKINGS.at(-1)!;
    const cuts = boundaries(bytes, varied);
    assert.ok(
      cuts.some((b) => bytes[b - 1] === 0x5c && bytes[b] === 0x22),
      "an escaped quote is split",
    );
    assert.ok(
      cuts.some((b) => bytes[b - 1] === 0x5c && bytes[b] === 0x5c),
      "an escaped backslash is split",
    );
  });
});

Deno.test("readExport() reads other valid layouts of the same document as the same values", async (t) => {
  const memkeep = await written(MEMORIES, RELATIONSHIPS);
  const cases: { name: string; source: string; keepsText: boolean }[] = [
    {
      name: "pretty-printed with 2 spaces",
      source: JSON.stringify(documentValue(), null, 2),
      keepsText: false,
    },
    {
      name: "pretty-printed with tabs",
      source: JSON.stringify(documentValue(), null, "\t") + "\n",
      keepsText: false,
    },
    {
      name: "re-serialised on one line",
      source: JSON.stringify(documentValue()),
      keepsText: false,
    },
    { name: "everything on one line", source: oneLine(), keepsText: true },
    {
      name: "relationships before memories before metadata",
      source: relationshipsFirst(),
      keepsText: true,
    },
    {
      name: "CRLF line endings",
      source: memkeep.replaceAll("\n", "\r\n"),
      keepsText: true,
    },
    { name: "extra whitespace", source: spacious(), keepsText: true },
    {
      name: "memkeep's layout with spaces before the commas",
      source: memkeep.replaceAll("},\n", "}  ,\n"),
      keepsText: true,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, async () => {
      const entries = await readAll(c.source);
      assertValues(entries);
      if (c.keepsText) assertTexts(entries);
      assertTextsAtLines(c.source, entries);
    });
  }

  await t.step("CRLF keeps the line numbers of the LF file", async () => {
    const lf = await readAll(memkeep);
    const crlf = await readAll(memkeep.replaceAll("\n", "\r\n"));
    assert.deepEqual(crlf.map((e) => e.line), lf.map((e) => e.line));
  });
});

Deno.test("readExport() hands over mid-file and still yields every record exactly once", async (t) => {
  const memkeep = await written(MEMORIES, RELATIONSHIPS);
  // 1 header, 2 "memories":[, 3-7 memories, 8 ], 9 "relationships":[,
  // 10-11 relationships, 12 ]}, then the final newline.
  const lines = memkeep.split("\n");
  const at = (n: number): string => lines[n - 1]!;
  assert.equal(at(8), "],");
  assert.equal(at(12), "]}");

  const cases: { name: string; source: string }[] = [
    {
      name: "a memory split over two lines in the middle of memories",
      source: replaceLine(
        lines,
        5,
        ...at(5).replace(',"content":', ',\n"content":').split("\n"),
      ),
    },
    {
      name: "a memory split over three lines, one field per line",
      source: replaceLine(
        lines,
        4,
        at(4)
          .replace(',"content":', ',\n  "content":')
          .replace(',"embedding":', ' ,\r\n\t"embedding" : '),
      ),
    },
    {
      name: "the header split after its key",
      source: replaceLine(lines, 1, at(1).replace(":", ":\n")),
    },
    {
      name: "the header and the first memory on one line",
      source: [`${at(1)}${at(2)}${at(3)}`, ...lines.slice(3)].join("\n"),
    },
    {
      name: "a blank line between two memories",
      source: replaceLine(lines, 4, at(4), ""),
    },
    {
      name: "a comma at the start of the next memory's line",
      source: [
        ...lines.slice(0, 4),
        at(5).slice(0, -1),
        `,${at(6)}`,
        ...lines.slice(6),
      ].join("\n"),
    },
    {
      name: "the closing bracket on the last memory's line",
      source: [...lines.slice(0, 6), `${at(7)}],`, ...lines.slice(8)].join(
        "\n",
      ),
    },
    {
      name: "relationships pretty-printed",
      source: [
        ...lines.slice(0, 8),
        `"relationships": ${JSON.stringify(parsed(RELATIONSHIPS), null, 2)}}`,
        "",
      ].join("\n"),
    },
    {
      name: "the last relationship split over two lines",
      source: replaceLine(
        lines,
        11,
        ...at(11).replace(',"rel_type":', ',\n"rel_type":').split("\n"),
      ),
    },
    {
      name: "whitespace after the end",
      source: memkeep + "  \n\t\n",
    },
  ];
  for (const c of cases) {
    await t.step(c.name, async () => {
      assert.notEqual(c.source, memkeep);
      const whole = await readAll(c.source);
      assertValues(whole);
      assertTextsAtLines(c.source, whole);
      for (const chunking of [TINY_CHUNKINGS[0]!, TINY_CHUNKINGS.at(-1)!]) {
        assert.deepEqual(await readAll(c.source, chunking), whole);
      }
    });
  }
});

Deno.test("readExport() rejects a broken document with a VerifyError naming the line", async (t) => {
  const memkeep = await written(MEMORIES, RELATIONSHIPS);
  const lines = memkeep.split("\n");
  const at = (n: number): string => lines[n - 1]!;
  const first = (n: number): string => lines.slice(0, n).join("\n");
  // Cut inside the content of the second memory, pretty-printed.
  const pretty = JSON.stringify(documentValue(), null, 2);
  const cut = pretty.indexOf("line one");
  const recordLine = lineAt(pretty, pretty.lastIndexOf("    {", cut) + 4);
  const withBadByte = (): Uint8Array => {
    // 0xff never occurs in UTF-8; put it inside a string on line 6.
    const before = encoder.encode(`${first(5)}\n${at(6).slice(0, 30)}`);
    const after = encoder.encode(
      `${at(6).slice(30)}\n${lines.slice(6).join("\n")}`,
    );
    return new Uint8Array([...before, 0xff, ...after]);
  };

  const cases: {
    name: string;
    source: string | Uint8Array;
    line: number;
    reason: RegExp;
  }[] = [
    {
      name: "a file that ends inside a record",
      source: `${first(4)}\n${at(5).slice(0, 40)}`,
      line: 5,
      reason: /^the file ends inside a value begun on line 5$/,
    },
    {
      name: "a file that ends inside a multi-line record",
      source: pretty.slice(0, cut),
      line: recordLine,
      reason: new RegExp(
        `^the file ends inside a value begun on line ${recordLine}$`,
      ),
    },
    {
      name: "a file that ends after a complete record",
      source: `${first(5)}\n`,
      line: 5,
      reason: /^the file ends before the document does/,
    },
    {
      name: "an empty file",
      source: "",
      line: 1,
      reason: /^the file ends before the document does/,
    },
    {
      name: "a trailing comma before ']' in memories",
      source: replaceLine(lines, 7, `${at(7)},`),
      line: 8,
      reason: /comma/,
    },
    {
      name: "a trailing comma before ']' on one line",
      source: oneLine().replace(`],"relationships"`, `,],"relationships"`),
      line: 1,
      reason: /^trailing comma before '\]' in memories$/,
    },
    {
      name: "an unknown top-level key",
      source: replaceLine(lines, 2, '"extra":{},', at(2)),
      line: 2,
      reason:
        /^unexpected key "extra" \(expected metadata, memories, relationships\)$/,
    },
    {
      name: "a duplicate key",
      source: replaceLine(lines, 9, '"memories":['),
      line: 9,
      reason: /^duplicate key "memories"$/,
    },
    {
      name: "a memory that is an array",
      source: replaceLine(lines, 4, '["not","an","object"],'),
      line: 4,
      reason: /^a record in memories is not a JSON object$/,
    },
    {
      name: "a relationship that is null",
      source: replaceLine(lines, 10, "null,"),
      line: 10,
      reason: /^a record in relationships is not a JSON object$/,
    },
    {
      name: "a document that is not an object",
      source: `[${at(1)}]`,
      line: 1,
      reason: /^the document is not a JSON object$/,
    },
    {
      name: "metadata that is not an object",
      source: replaceLine(lines, 1, '{"metadata":["memkeep"],'),
      line: 1,
      reason: /^metadata is not an object$/,
    },
    {
      name: "a second document after the end",
      source: `${memkeep}{"metadata":{}}\n`,
      line: 13,
      reason: /^unexpected text after the end of the document$/,
    },
    {
      name: "text after the end on the last line",
      source: replaceLine(lines, 12, "]} x"),
      line: 12,
      reason: /^unexpected text after the end of the document$/,
    },
    {
      name: "a byte that is not UTF-8",
      source: withBadByte(),
      line: 6,
      reason: /UTF-8/,
    },
    {
      name: "no relationships section",
      source: `${first(8).slice(0, -1)}}\n`,
      line: 8,
      reason: /relationships/,
    },
    {
      name: "no memories section",
      source: `${at(1)}\n${lines.slice(8).join("\n")}`,
      line: 5,
      reason: /memories/,
    },
    {
      name: "no metadata section",
      source: `{${lines.slice(1).join("\n")}`,
      line: 11,
      reason: /metadata/,
    },
    {
      name: "an empty object",
      source: "{}\n",
      line: 1,
      reason: /metadata/,
    },
    {
      name: "invalid JSON inside a memory",
      source: replaceLine(lines, 5, '{"id":"m-bad","content":tru,"heat":0.5},'),
      line: 5,
      reason: /^invalid JSON in a record of memories: /,
    },
    {
      name: "invalid JSON on the second line of a memory",
      source: replaceLine(
        lines,
        5,
        at(5).replace(',"content":', ',\n"content":').replace(
          ',"heat":',
          ',"heat":,',
        ),
      ),
      line: 5,
      reason: /^invalid JSON in a record of memories: /,
    },
    {
      name: "invalid JSON inside a relationship",
      source: replaceLine(lines, 11, at(11).replace('"id":2', '"id":02')),
      line: 11,
      reason: /^invalid JSON in a record of relationships: /,
    },
    {
      name: "invalid JSON inside the metadata",
      source: replaceLine(lines, 1, '{"metadata":{"tool":"memkeep",},'),
      line: 1,
      reason: /^invalid JSON in the metadata: /,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, async () => {
      for (
        const chunking of [WHOLE, TINY_CHUNKINGS[0]!, TINY_CHUNKINGS.at(-1)!]
      ) {
        const error = await readError(c.source, chunking);
        assert.equal(error.file, EXPORT_FILE);
        assert.match(error.reason, c.reason, chunking.name);
        assert.equal(error.line, c.line, `line (${chunking.name})`);
        assert.equal(
          error.message,
          `${EXPORT_FILE}:${c.line}: ${error.reason}`,
        );
      }
    });
  }
});

Deno.test("readExport() yields the records before the first error", async () => {
  const memkeep = await written(MEMORIES, RELATIONSHIPS);
  const lines = memkeep.split("\n");
  const source = replaceLine(lines, 6, "[],");
  const seen: ExportEntry[] = [];
  const error = await (async (): Promise<unknown> => {
    try {
      for await (
        const entry of readExport(chunked(encoder.encode(source), WHOLE))
      ) {
        seen.push(entry);
      }
    } catch (error) {
      return error;
    }
    return undefined;
  })();
  assert.ok(error instanceof VerifyError, "rejected with a VerifyError");
  assert.equal(error.line, 6);
  assert.deepEqual(seen.map((e) => e.text), [
    JSON.stringify(HEADER),
    ...MEMORIES.slice(0, 3).map(rawRecordLine),
  ]);
});

Deno.test("recordFields() returns the exact source text of each top-level field", async (t) => {
  const cases: { name: string; text: string; fields: [string, string][] }[] = [
    {
      name: "nested objects and arrays",
      text: '{"a":{"b":{"c":[1,{"d":"}"}]}},"e":[[],[{}],"]"],"f":{}}',
      fields: [
        ["a", '{"b":{"c":[1,{"d":"}"}]}}'],
        ["e", '[[],[{}],"]"]'],
        ["f", "{}"],
      ],
    },
    {
      name: "strings ending in escaped backslashes and quotes",
      text: String
        .raw`{"s":"a\\\\","t":"\\","u":"x\"y\\\"z","v":"\"","w":"\\\""}`,
      fields: [
        ["s", String.raw`"a\\\\"`],
        ["t", String.raw`"\\"`],
        ["u", String.raw`"x\"y\\\"z"`],
        ["v", String.raw`"\""`],
        ["w", String.raw`"\\\""`],
      ],
    },
    {
      name: "keys with escapes",
      text: String
        .raw`{"k\"ey":1,"\u0041":2,"back\\":3,"":4,"\\\"":5,"a\nb":6}`,
      fields: [
        ['k"ey', "1"],
        ["A", "2"],
        ["back\\", "3"],
        ["", "4"],
        ['\\"', "5"],
        ["a\nb", "6"],
      ],
    },
    {
      name: "whitespace around colons and commas",
      text:
        '{ "a" : 1 , "b"\t:\n"x" ,\r\n "c" :[ 1 , 2 ] ,"d":\t{ "e" : null }\n}',
      fields: [
        ["a", "1"],
        ["b", '"x"'],
        ["c", "[ 1 , 2 ]"],
        ["d", '{ "e" : null }'],
      ],
    },
    {
      name: "numbers keep their digits",
      text:
        '{"big":12345678901234567890123,"tiny":1e-08,"neg":-0.0,"exp":1E+300,"last":-12}',
      fields: [
        ["big", "12345678901234567890123"],
        ["tiny", "1e-08"],
        ["neg", "-0.0"],
        ["exp", "1E+300"],
        ["last", "-12"],
      ],
    },
    {
      name: "literals",
      text: '{"t":true,"f":false,"n":null}',
      fields: [["t", "true"], ["f", "false"], ["n", "null"]],
    },
    {
      name: "strings that look like structure",
      text: String
        .raw`{"x":"},{\"embedding\":[","y":"a:b,c","z":"{\"id\":1}"}`,
      fields: [
        ["x", String.raw`"},{\"embedding\":["`],
        ["y", '"a:b,c"'],
        ["z", String.raw`"{\"id\":1}"`],
      ],
    },
    {
      name: "unicode, emoji and \\u escapes",
      text: String.raw`{"emoji":"😀👩‍👩‍👧","esc":"\ud83d\ude00","日本":"語"}`,
      fields: [
        ["emoji", '"😀👩‍👩‍👧"'],
        ["esc", String.raw`"\ud83d\ude00"`],
        ["日本", '"語"'],
      ],
    },
    {
      name: "an empty object",
      text: "{ }",
      fields: [],
    },
    {
      name: "a pretty-printed record",
      text: JSON.stringify({ id: "x", m: { a: [1, "]"] }, n: 2 }, null, 2),
      fields: [
        ["id", '"x"'],
        ["m", '{\n    "a": [\n      1,\n      "]"\n    ]\n  }'],
        ["n", "2"],
      ],
    },
    {
      name: "a duplicate key keeps the last value, as JSON.parse does",
      text: '{"a":1,"b":2,"a":[3]}',
      fields: [["a", "[3]"], ["b", "2"]],
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const fields = recordFields(c.text);
      assert.deepEqual([...fields], c.fields);
      const value = JSON.parse(c.text) as Record<string, unknown>;
      assert.deepEqual(
        new Set(fields.keys()),
        new Set(Object.keys(value)),
      );
      for (const [key, text] of fields) {
        assert.deepEqual(JSON.parse(text), value[key], key);
      }
    });
  }

  await t.step("every field of the fixtures", () => {
    for (const record of [...MEMORIES, ...RELATIONSHIPS]) {
      assert.deepEqual(recordFields(rawRecordLine(record)), record);
    }
  });
});

Deno.test("payloadFromRecord() rebuilds the payload a backup lifted apart", async (t) => {
  const cases: {
    name: string;
    record: RawRecord;
    payload: [string, string][] | null;
  }[] = [
    {
      name: "content, created_at, heat and metadata",
      record: new Map([
        ["id", '"m1"'],
        ["content", str('tea "☕" \\ and\ncoffee')],
        ["embedding", "[1,2]"],
        [
          "metadata",
          '{"big": 12345678901234567890123, "tiny": 1e-08, "nested": {"a": [1, "}"]}}',
        ],
        ["created_at", '"2024-05-01T12:00:00+00:00"'],
        ["heat", "0.500"],
      ]),
      payload: [
        ["data", str('tea "☕" \\ and\ncoffee')],
        ["created_at", '"2024-05-01T12:00:00+00:00"'],
        ["heat", "0.500"],
        ["big", "12345678901234567890123"],
        ["tiny", "1e-08"],
        ["nested", '{"a": [1, "}"]}'],
      ],
    },
    {
      name: "metadata {}",
      record: new Map([
        ["id", '"m2"'],
        ["content", '"x"'],
        ["metadata", "{}"],
        ["heat", "12345678901234567890123"],
      ]),
      payload: [["data", '"x"'], ["heat", "12345678901234567890123"]],
    },
    {
      name: "metadata { } with whitespace and nothing lifted",
      record: new Map([["id", '"m3"'], ["metadata", "{ }"]]),
      payload: [],
    },
    {
      name: "only metadata",
      record: new Map([["id", '"m4"'], ["metadata", '{ "user_id" : "bob" }']]),
      payload: [["user_id", '"bob"']],
    },
    {
      name: "content that is not a string",
      record: new Map([
        ["id", '"m5"'],
        ["content", '{"parts": ["a", "b"]}'],
        ["metadata", '{"k": null}'],
      ]),
      payload: [["data", '{"parts": ["a", "b"]}'], ["k", "null"]],
    },
    {
      name: "no metadata (a NULL payload)",
      record: new Map([
        ["id", '"m6"'],
        ["content", '"ignored"'],
        ["embedding", "[1,2]"],
      ]),
      payload: null,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const payload = payloadFromRecord(c.record);
      if (c.payload === null) {
        assert.equal(payload, null);
        return;
      }
      assert.ok(payload !== null);
      // Exact texts: big numbers keep every digit.
      assert.deepEqual([...recordFields(payload)], c.payload);
      assert.deepEqual(
        JSON.parse(payload),
        Object.fromEntries(c.payload.map(([k, v]) => [k, JSON.parse(v)])),
      );
    });
  }

  await t.step(
    "the payload of every fixture parses to the original payload",
    () => {
      for (const record of MEMORIES) {
        const payload = payloadFromRecord(record);
        const value = JSON.parse(rawRecordLine(record)) as Record<
          string,
          unknown
        >;
        if (value.metadata === undefined) {
          assert.equal(payload, null);
          continue;
        }
        const expected: Record<string, unknown> = {};
        if ("content" in value) expected.data = value.content;
        if ("created_at" in value) expected.created_at = value.created_at;
        if ("heat" in value) expected.heat = value.heat;
        Object.assign(expected, value.metadata);
        assert.deepEqual(JSON.parse(payload!), expected);
      }
    },
  );
});

Deno.test("readExport() with verified: true splits records into the same fields without parsing them, in every layout", async (t) => {
  const memkeep = await written(MEMORIES, RELATIONSHIPS);
  const lines = memkeep.split("\n");
  const read = async (source: string, verified: boolean) => {
    const out: ExportEntry[] = [];
    for await (
      const entry of readExport(
        chunked(bytesOf(source), WHOLE),
        EXPORT_FILE,
        { verified },
      )
    ) out.push(entry);
    return out;
  };
  const cases: { name: string; source: string }[] = [
    { name: "memkeep's own lines", source: memkeep },
    {
      name: "two memories on one line (handed to the scanner)",
      source: [...lines.slice(0, 3), lines[3]! + lines[4]!, ...lines.slice(5)]
        .join("\n"),
    },
    {
      name: "the whole document on one line",
      source: memkeep.replaceAll("\n", ""),
    },
  ];
  for (const c of cases) {
    await t.step(c.name, async () => {
      const plain = await read(c.source, false);
      const verified = await read(c.source, true);
      assert.equal(verified.length, 1 + MEMORIES.length + RELATIONSHIPS.length);
      assert.deepEqual(
        verified.map((e) => [e.section, e.text, e.line, [...e.fields]]),
        plain.map((e) => [e.section, e.text, e.line, [...e.fields]]),
      );
      assert.deepEqual(
        inSection(verified, "memories").map((e) => e.fields),
        MEMORIES,
      );
      // The value is still there when asked for.
      assert.deepEqual(verified[1]!.value, JSON.parse(verified[1]!.text));
    });
  }
});

Deno.test("objectFields() takes exactly one object and nothing else", async (t) => {
  const cases: [string, string, [string, string][] | undefined][] = [
    ["one object", '{"a":1,"b":[1,2],"c":{"d":"}"}}', [["a", "1"], [
      "b",
      "[1,2]",
    ], ["c", '{"d":"}"}']]],
    ["spaces around keys and values", '{ "a" : 1 , "b" : "x" }', [["a", "1"], [
      "b",
      '"x"',
    ]]],
    ["an empty object", "{}", []],
    ["an array of strings", '{"a":["]",1]}', [["a", '["]",1]']]],
    ["two objects on one line", '{"a":1},{"b":2}', undefined],
    ["two objects without a comma", '{"a":1}{"b":2}', undefined],
    ["a cut object", '{"a":1,"b":', undefined],
    ["a cut string", '{"a":"x', undefined],
    ["a missing value", '{"a":}', undefined],
    ["not an object", "[1,2]", undefined],
  ];
  for (const [name, text, fields] of cases) {
    await t.step(name, () => {
      const got = objectFields(text);
      assert.deepEqual(got && [...got], fields);
    });
  }
});
