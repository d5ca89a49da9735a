/**
 * Realistic sample data for the demo, the tests and the benchmark: mem0-style
 * memories with the payload keys seen in real stores (and odd ones: unicode,
 * emoji, newlines, tabs, quotes, nulls, unknown keys, a number beyond float64
 * precision, a heat given as a string), two users, and a relationship store
 * with the `insights` and `pattern_cache` tables beside `relationships`.
 * Deterministic for a given seed.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import type { PGlite } from "@electric-sql/pglite";
import { quoteIdent } from "./sql.ts";

/** A generated memory row, as the table stores it. */
export interface DemoMemory {
  /** A UUID. */
  readonly id: string;
  /** pgvector text form, e.g. `[0.1,-0.2]`. */
  readonly vector: string;
  /** The payload as JSON text. */
  readonly payload: string;
}

/** How much to generate. */
export interface DemoSize {
  /** Number of memories. */
  readonly memories: number;
  /** Vector dimension. */
  readonly dims: number;
  /** Seed for the generator (default 42). */
  readonly seed?: number;
}

/** The two users of the demo store. */
export const DEMO_USERS = ["alice", "bob"] as const;

/**
 * A small seeded pseudo-random generator (mulberry32): the same seed gives
 * the same demo data, and the same fuzz case.
 *
 * @param seed Any 32-bit integer.
 * @returns A function returning numbers in [0, 1).
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(rand: () => number, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)]!;
}

function hex(rand: () => number, n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) s += Math.floor(rand() * 16).toString(16);
  return s;
}

function uuid(rand: () => number): string {
  const h = hex(rand, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${
    "89ab"[Math.floor(rand() * 4)]
  }${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

const SUBJECTS = [
  "Prefers morning meetings before 10am",
  "Allergic to peanuts — carries an EpiPen",
  "Working on the Q3 launch plan with Dana",
  "Favourite café: Café Müller in Zürich ☕",
  "日本語のレッスンを毎週火曜日に受けている",
  "Wants weekly summaries sent on Fridays 📅",
  'Said "never schedule calls on Sunday"',
  "Uses the path C:\\Users\\me\\notes for drafts",
  "Budget for the redesign is $12,500 (approved)",
  "Runs 5k every Saturday 🏃‍♀️ with the club",
  "Привет! Speaks Russian with the Moscow team",
  "Renewal date for the domain: 2026-03-01",
];
const CLIENTS = ["Acme Corp", "Globex", "Initech", "Umbrella «Health»"];
const PROJECTS = [
  "Website Redesign",
  "Q3 Launch",
  "Data Migration",
  "Onboarding",
];
const DOMAINS = ["work", "personal", "health", "finance"];
const SOURCES = ["chat", "email", "import", "voice"];
const TYPES = ["fact", "preference", "task", "event"];
const CATEGORIES = ["people", "places", "schedule", "projects", "habits"];
const ENTITIES = [
  "Dana",
  "Zürich",
  "Acme Corp",
  "EpiPen",
  "Friday",
  "Moscow",
  "redesign",
];

function isoDate(rand: () => number, naive: boolean): string {
  const ms = Date.UTC(2024, 0, 1) + Math.floor(rand() * 700 * 86_400_000);
  const iso = new Date(ms).toISOString();
  // Some stores hold naive local times (no zone), with microseconds.
  return naive
    ? `${iso.slice(0, 19)}.${String(Math.floor(rand() * 1e6)).padStart(6, "0")}`
    : iso;
}

/**
 * Generates memories one at a time.
 *
 * @param size How many, what dimension, which seed.
 * @returns The memories.
 */
export function* demoMemories(size: DemoSize): Generator<DemoMemory> {
  const rand = seededRandom(size.seed ?? 42);
  for (let i = 0; i < size.memories; i++) {
    const id = uuid(rand);
    const parts: string[] = new Array(size.dims);
    let norm = 0;
    const raw = new Float64Array(size.dims);
    for (let d = 0; d < size.dims; d++) {
      raw[d] = rand() * 2 - 1;
      norm += raw[d]! * raw[d]!;
    }
    norm = Math.sqrt(norm) || 1;
    for (let d = 0; d < size.dims; d++) {
      // As a real embedding prints: float32, nine significant digits.
      parts[d] = String(Number(Math.fround(raw[d]! / norm).toPrecision(9)));
    }
    const vector = `[${parts.join(",")}]`;

    const naive = rand() < 0.1;
    const payload: Record<string, unknown> = {
      data: i % 50 === 7
        ? `${pick(rand, SUBJECTS)}\nSecond line\twith a tab and a quote: "ok"`
        : `${pick(rand, SUBJECTS)} (#${i})`,
      hash: hex(rand, 32),
      user_id: DEMO_USERS[i % 2],
      created_at: isoDate(rand, naive),
      updated_at: isoDate(rand, naive),
      importance: Math.round(rand() * 100) / 10,
      pinned: rand() < 0.1,
      access_count: Math.floor(rand() * 40),
      last_accessed: rand() < 0.2 ? null : isoDate(rand, false),
      domain: pick(rand, DOMAINS),
      source: pick(rand, SOURCES),
      type: pick(rand, TYPES),
      category: pick(rand, CATEGORIES),
      entities: [pick(rand, ENTITIES), pick(rand, ENTITIES)],
    };
    const heat = Math.round((0.05 + rand() * 1.95) * 1000) / 1000;
    if (i % 37 === 3) payload.heat = String(heat); // odd: a string where a number is usual
    else if (i % 41 !== 5) payload.heat = heat; // and sometimes no heat at all
    if (rand() < 0.7) payload.client = pick(rand, CLIENTS);
    if (rand() < 0.6) {
      payload.project = rand() < 0.1 ? null : pick(rand, PROJECTS);
    }
    if (i % 13 === 0) {
      payload.x_custom = {
        mood: "🙂",
        tags: ["a", "b"],
        nested: { deep: [1, { x: null }] },
      };
    }
    let text = JSON.stringify(payload);
    // A number beyond float64 precision must round-trip digit for digit.
    if (i % 97 === 11) {
      text = text.slice(0, -1) + ',"big_counter":12345678901234567890123}';
    }
    yield { id, vector, payload: text };
  }
}

/**
 * Creates a mem0 table in an embedded store and loads memories into it with
 * `COPY … FROM '/dev/blob'` in batches.
 *
 * @param db The PGlite instance.
 * @param table The table name.
 * @param size How many memories, of which dimension.
 * @param onProgress Called after each batch with the rows loaded so far.
 * @returns The number of memories loaded.
 */
export async function seedMemoryTable(
  db: PGlite,
  table: string,
  size: DemoSize,
  onProgress?: (loaded: number) => void,
): Promise<number> {
  const t = quoteIdent(table);
  await db.exec(`
    create extension if not exists vector;
    create table ${t} (id uuid primary key, vector vector(${size.dims}), payload jsonb);
    create index ${
    quoteIdent(`${table}_user_id_idx`)
  } on ${t} ((payload->>'user_id'));
  `);
  const escape = (s: string) =>
    s.replace(/\\/g, "\\\\").replace(/\t/g, "\\t").replace(/\n/g, "\\n")
      .replace(/\r/g, "\\r");
  let batch: string[] = [];
  let loaded = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    await db.query(`copy ${t} (id, vector, payload) from '/dev/blob'`, [], {
      blob: new Blob([batch.join("")]),
    });
    loaded += batch.length;
    batch = [];
    onProgress?.(loaded);
  };
  for (const m of demoMemories(size)) {
    batch.push(`${m.id}\t${m.vector}\t${escape(m.payload)}\n`);
    if (batch.length === 2000) await flush();
  }
  await flush();
  return loaded;
}

/** How many relationship-store rows to generate. */
export interface DemoRelationshipSize {
  /** Rows in `relationships`. */
  readonly relationships: number;
  /** Seed (default 7). */
  readonly seed?: number;
}

const REL_TYPES = [
  "relates_to",
  "supports",
  "contradicts",
  "follows_from",
  "part_of",
  "mentions",
];

/**
 * Creates a relationship store like a live assistant's (WAL mode, the
 * `relationships` table with its indexes, plus `insights` and
 * `pattern_cache`) linking the given memory ids.
 *
 * @param path The new SQLite file.
 * @param ids Memory ids to link (at least 2).
 * @param size How many relationships.
 * @returns Row counts per table.
 */
export function seedRelationshipStore(
  path: string,
  ids: readonly string[],
  size: DemoRelationshipSize,
): Record<string, number> {
  const rand = seededRandom(size.seed ?? 7);
  const db = new DatabaseSync(path);
  try {
    db.exec(`
      pragma journal_mode = wal;
      create table relationships (
        id integer primary key autoincrement,
        source_id text not null,
        target_id text not null,
        rel_type text not null,
        strength real default 1.0,
        metadata text,
        created_at text not null,
        updated_at text not null,
        unique(source_id, target_id, rel_type)
      );
      create index idx_rel_source on relationships(source_id);
      create index idx_rel_target on relationships(target_id);
      create index idx_rel_type on relationships(rel_type);
      create index idx_rel_strength on relationships(strength);
      create table insights (id integer primary key autoincrement, memory_id text, insight text, created_at text);
      create table pattern_cache (key text primary key, value text, updated_at text);
    `);
    const insert = db.prepare(
      "insert or ignore into relationships (source_id, target_id, rel_type, strength, metadata, created_at, updated_at) values (?, ?, ?, ?, ?, ?, ?)",
    );
    db.exec("begin");
    let n = 0;
    let attempts = 0;
    while (
      n < size.relationships && ids.length > 1 &&
      attempts < size.relationships * 20
    ) {
      attempts++;
      const source = pick(rand, ids);
      const target = pick(rand, ids);
      if (source === target) continue;
      const kind = rand();
      const metadata = kind < 0.2
        ? null
        : kind < 0.5
        ? `{"reason": "co-mentioned", "confidence": ${
          Math.round(rand() * 100) / 100
        }}` // Python-style spacing
        : kind < 0.9
        ? JSON.stringify({ via: pick(rand, ENTITIES), note: 'says "hi"\n— 🙂' })
        : "manual link (not JSON)";
      const created = isoDate(rand, false);
      const result = insert.run(
        source,
        target,
        pick(rand, REL_TYPES),
        Math.round(rand() * 1000) / 1000,
        metadata,
        created,
        created,
      );
      if (Number(result.changes) === 1) n++;
    }
    const insight = db.prepare(
      "insert into insights (memory_id, insight, created_at) values (?, ?, ?)",
    );
    for (let i = 0; i < Math.min(20, ids.length); i++) {
      insight.run(
        ids[i]!,
        `Pattern ${i}: tends to plan on Mondays`,
        isoDate(rand, false),
      );
    }
    const cache = db.prepare(
      "insert into pattern_cache (key, value, updated_at) values (?, ?, ?)",
    );
    for (let i = 0; i < 5; i++) {
      cache.run(
        `pattern:${i}`,
        JSON.stringify({ score: i / 5 }),
        isoDate(rand, false),
      );
    }
    db.exec("commit");
    const counts: Record<string, number> = {};
    for (const table of ["insights", "pattern_cache", "relationships"]) {
      counts[table] = Number(
        (db.prepare(`select count(*) as n from ${table}`).get() as {
          n: number;
        }).n,
      );
    }
    return counts;
  } finally {
    db.close();
  }
}
