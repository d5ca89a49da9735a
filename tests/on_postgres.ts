/**
 * `deno task test:postgres [FILES…]`: the wire tests against a real
 * PostgreSQL instead of the PGlite socket server.
 *
 * With `TEST_DATABASE_URL` set, they run against that server (each test
 * makes its own schema and drops it). Without it, PostgreSQL 15 + pgvector
 * is started with `../shared/postgres/start-postgres.sh` (or the script in
 * `START_POSTGRES`) in a temporary directory and stopped afterwards.
 *
 * The heavy cases stay on one server: the 1,000-case fuzz
 * (`verify/hostile_test.ts`) and the kill points (`crash_test.ts`) run only
 * in `deno task test`.
 *
 * @module
 */

/** Every test file that talks to a server on the wire, but the heavy two. */
export const WIRE_TEST_FILES = [
  "tests/backup/backup_test.ts",
  "tests/backup/concurrency_test.ts",
  "tests/cli/permissions_test.ts",
  "tests/cli/run_test.ts",
  "tests/cli/scripts_test.ts",
  "tests/faults_test.ts",
  "tests/restore/restore_test.ts",
  "tests/secrets_test.ts",
  "tests/workflow_test.ts",
];

const ROOT = new URL("..", import.meta.url).pathname;

/** Starts a server with the script; returns its variables and a stop. */
async function startPostgres(
  script: string,
): Promise<{ env: Record<string, string>; stop: () => Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "memkeep-postgres-" });
  const out = await new Deno.Command("bash", {
    args: [script, dir],
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
    throw new Error(`test:postgres: could not start PostgreSQL with ${script}`);
  }
  const env: Record<string, string> = {};
  for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
    const m = /^export (\w+)='(.*)'$/.exec(line);
    if (m) env[m[1]!] = m[2]!;
  }
  if (!env.TEST_DATABASE_URL) {
    await stop();
    throw new Error(`test:postgres: ${script} printed no TEST_DATABASE_URL`);
  }
  return { env, stop };
}

async function main(files: string[]): Promise<number> {
  let server: Awaited<ReturnType<typeof startPostgres>> | undefined;
  if (!Deno.env.get("TEST_DATABASE_URL")) {
    const script = Deno.env.get("START_POSTGRES") ??
      `${ROOT}../shared/postgres/start-postgres.sh`;
    try {
      await Deno.stat(script);
    } catch {
      // deno-lint-ignore no-console
      console.error(
        `test:postgres: ${script} not found; set TEST_DATABASE_URL to your server, or START_POSTGRES to the script`,
      );
      return 1;
    }
    server = await startPostgres(script);
  }
  try {
    const run = new Deno.Command(Deno.execPath(), {
      args: ["test", "-q", "-P=test", "--parallel", ...files],
      cwd: ROOT,
      env: server?.env ?? {},
      stdin: "null",
    }).spawn();
    return (await run.status).code;
  } finally {
    await server?.stop();
  }
}

if (import.meta.main) {
  Deno.exitCode = await main(
    Deno.args.length > 0 ? Deno.args : WIRE_TEST_FILES,
  );
}
