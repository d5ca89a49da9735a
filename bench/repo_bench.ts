/**
 * `deno task bench --repo [--server postgres|pglite] [--days 42] [--memories
 * 38664] [--dims 1536] [--relationships 1245] [--json]`
 *
 * Forty-two nights of a repository: a copy of the benchmark store changes
 * each day as an assistant's does (+150 memories, −20, 5 % of the payloads
 * touched, every heat on Sundays, +20 relationships), is backed up into one
 * repository (`backup --repo`, read back), and the repository is pruned with
 * 7 daily + 4 weekly, as of that night. Each day's store digest (ids, vector
 * text and payloads in id order; every relationship-store row) is kept; at
 * the end three retained snapshots are restored with `deno task restore
 * --repo` into empty stores and compared with their day.
 *
 * The nights run in this process with a clock set to the night (a snapshot
 * is named by its moment, and the policy reads the names); the restores run
 * as their own processes under `/usr/bin/time`, as a user runs them.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { backupToRepo } from "../lib/backup/repo_backup.ts";
import { pruneRepo } from "../lib/retention/repo_prune.ts";
import { DEFAULT_POLICY } from "../lib/retention/policy.ts";
import { resolveConfig } from "../lib/store/config.ts";
import * as log from "../lib/cli/log.ts";
import { sqliteDigest } from "../tests/_helpers.ts";
import { memkeep, runSql, size, timed } from "./measure.ts";
import type { BenchServer, Target } from "./stores.ts";

/** The issue's targets. */
const TARGETS = {
  repositoryMb: 320,
  weekdayAddedMb: 8,
  sundayAddedMb: 25,
};

/** The first night: a Monday, at the nightly workflow's 02:17 UTC. */
const FIRST_NIGHT = Date.UTC(2026, 9, 5, 2, 17, 0);

/** One night. */
interface Night {
  day: number;
  snapshot: string;
  weekday: string;
  memories: number;
  relationships: number;
  backup_seconds: number;
  bytes_added: number;
  /** The repository after the night's prune. */
  repository_bytes: number;
  snapshots_kept: number;
}

/** One restore of a retained snapshot. */
interface Restore {
  snapshot: string;
  day: number;
  seconds: number;
  peak_mb: number;
  exact: boolean;
}

/** What the benchmark found. */
export interface RepoBenchResult {
  days: Night[];
  restores: Restore[];
  repository_bytes: number;
  targets: typeof TARGETS;
  met: boolean;
}

/** A store's digest: its table (count, and md5 over every row) and relationship store. */
async function storeDigest(target: Target): Promise<string> {
  const table = target.env.MEMORY_TABLE ?? "memories";
  const rows = await runSql(
    target.env.DATABASE_URL!,
    `select count(*) || ':' || coalesce(md5(string_agg(md5(id::text || '|' || coalesce(vector::text, '-') || '|' || coalesce(payload::text, '-')), '' order by id)), '') from ${table}`,
  );
  return `${rows} ${sqliteDigest(target.env.RELATIONSHIPS_DB!)}`;
}

/**
 * A day's changes, as an assistant makes them: new memories (random
 * float32 vectors, a payload like the others'), deletions, touched payloads
 * (`access_count`, `last_accessed`), every heat on Sundays, and new
 * relationships between existing memories.
 */
async function churn(target: Target, day: number, at: Date): Promise<void> {
  const url = target.env.DATABASE_URL!;
  const table = target.env.MEMORY_TABLE ?? "memories";
  const when = at.toISOString();
  const sunday = at.getUTCDay() === 0;
  const dims = Number(
    await runSql(
      url,
      `select vector_dims(vector) from ${table} where vector is not null limit 1`,
    ),
  );
  await runSql(
    url,
    `select setseed(${(day % 1000) / 1000});
     insert into ${table} (id, vector, payload)
       select gen_random_uuid(), v.v::vector,
              jsonb_build_object(
                'data', 'Learned on day ${day}: note ' || g || ' ' || md5(random()::text),
                'hash', md5(random()::text),
                'user_id', case when g % 2 = 0 then 'alice' else 'bob' end,
                'created_at', '${when}', 'updated_at', '${when}',
                'heat', round((0.05 + random() * 1.95)::numeric, 3),
                'access_count', 0,
                'client', (array['Acme Corp', 'Globex', 'Initech'])[1 + g % 3],
                'type', 'fact')
         from generate_series(1, 150) g,
              lateral (select array_agg((random() * 2 - 1)::real order by d) v
                         from generate_series(1, ${dims}) d where g > 0) v;
     delete from ${table} where id in
       (select id from ${table} order by md5(id::text || 'gone ${day}') limit 20);
     update ${table}
        set payload = payload || jsonb_build_object(
              'access_count', ${day},
              'last_accessed', '${when}')
      where id in (select id from ${table}
                    order by md5(id::text || 'touched ${day}')
                    limit (select count(*) / 20 from ${table}));
     ${
      sunday
        ? `update ${table} set payload = payload || jsonb_build_object('heat', round((0.05 + random() * 1.95)::numeric, 3));`
        : ""
    }`,
  );
  const ids = (await runSql(
    url,
    `select id from ${table} order by md5(id::text || 'linked ${day}') limit 40`,
  )).split("\n");
  const db = new DatabaseSync(target.env.RELATIONSHIPS_DB!);
  try {
    const insert = db.prepare(
      "insert or ignore into relationships (source_id, target_id, rel_type, strength, metadata, created_at, updated_at) values (?, ?, 'relates_to', ?, ?, ?, ?)",
    );
    for (let i = 0; i + 1 < ids.length; i += 2) {
      insert.run(
        ids[i]!,
        ids[i + 1]!,
        (i + 1) / ids.length,
        JSON.stringify({ via: "bench", day }),
        when,
        when,
      );
    }
  } finally {
    db.close();
  }
}

function count(url: string, table: string): Promise<number> {
  return runSql(url, `select count(*) from ${table}`).then(Number);
}

/**
 * Runs the nights and the restores.
 *
 * @param server The benchmark's server.
 * @param out The run's directory.
 * @param days How many nights.
 * @returns The days, the restores, the verdict.
 */
export async function repoBench(
  server: BenchServer,
  out: string,
  days: number,
): Promise<RepoBenchResult> {
  const repo = `${out}/repo`;
  const store = await server.copy("churned");
  const nights: Night[] = [];
  const digests = new Map<string, { day: number; digest: string }>();
  try {
    const config = resolveConfig({}, (name) => store.env[name]);
    const table = store.env.MEMORY_TABLE ?? "memories";
    for (let day = 1; day <= days; day++) {
      const at = new Date(FIRST_NIGHT + (day - 1) * 86_400_000);
      if (day > 1) await churn(store, day, at);
      const digest = await storeDigest(store);
      log.progress({ what: `night ${day} of ${days}: backup` });
      const started = performance.now();
      const backup = await backupToRepo({ config, repo, now: () => at });
      const seconds = (performance.now() - started) / 1000;
      digests.set(backup.snapshot.name, { day, digest });
      const pruned = await pruneRepo(repo, {
        policy: DEFAULT_POLICY,
        now: at,
        dryRun: false,
        force: false,
      });
      if (pruned.refused !== undefined) {
        throw new Error(`night ${day}: prune refused: ${pruned.refused}`);
      }
      nights.push({
        day,
        snapshot: backup.snapshot.name,
        weekday: at.toLocaleDateString("en-US", {
          weekday: "short",
          timeZone: "UTC",
        }),
        memories: await count(store.env.DATABASE_URL!, table),
        relationships: backup.snapshot.metadata.relationship_count,
        backup_seconds: seconds,
        bytes_added: backup.snapshot.bytes_added,
        repository_bytes: size(repo),
        snapshots_kept: pruned.decisions.filter((d) => d.keep).length,
      });
      log.progress({
        what: `night ${day} of ${days}: added ${
          log.bytes(backup.snapshot.bytes_added)
        }, repository ${log.bytes(size(repo))}`,
      });
    }
  } finally {
    await store.stop();
  }

  // Three of the retained snapshots, oldest, middle and newest, restored
  // by the command a user runs into empty stores.
  const listed = await timed(
    memkeep("snapshots", ["--repo", repo, "--json"], {}),
  );
  const kept = (JSON.parse(listed.stdout).snapshots as { name: string }[])
    .map((s) => s.name);
  const chosen = [
    ...new Set([kept[0]!, kept[Math.floor(kept.length / 2)]!, kept.at(-1)!]),
  ];
  const restores: Restore[] = [];
  for (const name of chosen) {
    log.progress({ what: `restoring ${name}` });
    const target = await server.emptyTarget(`repo-${restores.length}`);
    try {
      const m = await timed(
        memkeep(
          "restore",
          ["--repo", repo, "--snapshot", name, "--force", "--json"],
          target.env,
        ),
        target.env,
      );
      const day = digests.get(name)!;
      restores.push({
        snapshot: name,
        day: day.day,
        seconds: m.seconds,
        peak_mb: m.peakMb,
        exact: (await storeDigest(target)) === day.digest,
      });
    } finally {
      await target.stop();
    }
  }
  log.clearProgress();
  const repositoryBytes = size(repo);
  const mb = (n: number) => n / 1e6;
  const later = nights.slice(1);
  const met = mb(repositoryBytes) <= TARGETS.repositoryMb &&
    later.every((n) =>
      mb(n.bytes_added) <=
        (n.weekday === "Sun" ? TARGETS.sundayAddedMb : TARGETS.weekdayAddedMb)
    ) &&
    restores.every((r) => r.exact);
  return {
    days: nights,
    restores,
    repository_bytes: repositoryBytes,
    targets: TARGETS,
    met,
  };
}

/**
 * The result as the README's tables.
 *
 * @param result What {@linkcode repoBench} found.
 * @returns Markdown lines.
 */
export function repoBenchReport(result: RepoBenchResult): string[] {
  const mb = (n: number) => `${(n / 1e6).toFixed(2)} MB`;
  const lines = [
    "| day | snapshot | memories | backup | added | repository after prune | kept |",
    "| ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ...result.days.map((n) =>
      `| ${n.day} ${n.weekday} | ${n.snapshot} | ${
        n.memories.toLocaleString("en-US")
      } | ${n.backup_seconds.toFixed(1)} s | ${mb(n.bytes_added)} | ${
        mb(n.repository_bytes)
      } | ${n.snapshots_kept} |`
    ),
    "",
  ];
  const later = result.days.slice(1);
  const max = (days: Night[]) =>
    days.reduce((m, n) => Math.max(m, n.bytes_added), 0);
  const weekdays = later.filter((n) => n.weekday !== "Sun");
  const sundays = later.filter((n) => n.weekday === "Sun");
  const t = result.targets;
  lines.push(
    "| figure | measured | target |",
    "| --- | ---: | ---: |",
    `| repository with its retained snapshots | ${
      mb(result.repository_bytes)
    } | ≤ ${t.repositoryMb} MB |`,
    `| most a weekday backup added | ${
      mb(max(weekdays))
    } | ≤ ${t.weekdayAddedMb} MB |`,
    `| most a Sunday backup added | ${
      mb(max(sundays))
    } | ≤ ${t.sundayAddedMb} MB |`,
    `| first backup | ${mb(result.days[0]?.bytes_added ?? 0)} | |`,
    "",
    "| restored snapshot | day | wall | peak RSS | identical to its day |",
    "| --- | ---: | ---: | ---: | --- |",
    ...result.restores.map((r) =>
      `| ${r.snapshot} | ${r.day} | ${r.seconds.toFixed(1)} s | ${
        r.peak_mb.toFixed(0)
      } MB | ${r.exact ? "yes" : "**no**"} |`
    ),
  );
  return lines;
}
