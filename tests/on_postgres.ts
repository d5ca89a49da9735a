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
  "tests/backup/repo_backup_test.ts",
  "tests/bench_test.ts",
  "tests/backup/concurrency_test.ts",
  "tests/cli/permissions_test.ts",
  "tests/cli/repo_commands_test.ts",
  "tests/cli/run_test.ts",
  "tests/cli/scripts_test.ts",
  "tests/faults_test.ts",
  "tests/format/float32_text_test.ts",
  "tests/restore/restore_test.ts",
  "tests/secrets_test.ts",
  "tests/workflow_test.ts",
];

import { startPostgres, startPostgresScript } from "./_postgres.ts";

const ROOT = new URL("..", import.meta.url).pathname;

async function main(files: string[]): Promise<number> {
  let server: Awaited<ReturnType<typeof startPostgres>> | undefined;
  if (!Deno.env.get("TEST_DATABASE_URL")) {
    const script = startPostgresScript();
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
      env: { ...server?.env, MEMKEEP_WIRE_LEG: "1" },
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
