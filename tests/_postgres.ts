/**
 * A real PostgreSQL 15 + pgvector for the wire tests and the benchmark,
 * started with `../shared/postgres/start-postgres.sh` (or the script in
 * `START_POSTGRES`) in a temporary directory.
 *
 * @module
 */

const ROOT = new URL("..", import.meta.url).pathname;

/** The script that starts a server: `START_POSTGRES`, else the shared one. */
export function startPostgresScript(): string {
  return Deno.env.get("START_POSTGRES") ??
    `${ROOT}../shared/postgres/start-postgres.sh`;
}

/**
 * Starts a server with the script.
 *
 * @param script The script (see {@linkcode startPostgresScript}).
 * @param pgbouncer Also start PgBouncer in transaction mode in front.
 * @param dir Where the server lives (default: a new temporary directory);
 * removed by the stop.
 * @returns Its exported variables (`TEST_DATABASE_URL`…) and a stop.
 */
export async function startPostgres(
  script: string,
  pgbouncer = false,
  dir?: string,
): Promise<{ env: Record<string, string>; stop: () => Promise<void> }> {
  dir ??= await Deno.makeTempDir({ prefix: "memkeep-postgres-" });
  const out = await new Deno.Command("bash", {
    args: [script, ...(pgbouncer ? ["--pgbouncer"] : []), dir],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const stop = async () => {
    await new Deno.Command("bash", {
      args: [script, "stop", dir],
      stdout: "null",
      stderr: "null",
    }).output();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  if (!out.success) {
    await stop();
    throw new Error(`could not start PostgreSQL with ${script}`);
  }
  const env: Record<string, string> = {};
  for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
    const m = /^export (\w+)='(.*)'$/.exec(line);
    if (m) env[m[1]!] = m[2]!;
  }
  if (!env.TEST_DATABASE_URL) {
    await stop();
    throw new Error(`${script} printed no TEST_DATABASE_URL`);
  }
  return { env, stop };
}
