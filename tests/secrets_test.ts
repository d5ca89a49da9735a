/**
 * No secret ever reaches output: a sentinel database password, GitHub token
 * and age secret key are given to every command a user runs, as the user
 * runs it (`deno task …` in a checkout, production permissions), in success
 * and in failure, and every byte the commands print or write is searched for
 * them. Failures are one `Error:` line.
 *
 * @module
 */

import assert from "node:assert/strict";
import { generateIdentity, identityToRecipient } from "age-encryption";
import { Uint8ArrayReader, Uint8ArrayWriter, ZipReader } from "@zip.js/zip.js";
import { seedRelationshipStore } from "../lib/store/demo_data.ts";
import { LOG_FILE } from "../lib/format/layout.ts";
import { makeCheckout, ownLines } from "./_checkout.ts";
import {
  embeddedStep,
  seedMemories,
  startWireDatabase,
  type WireDatabase,
} from "./_db.ts";
import { backupsIn } from "./_helpers.ts";
import { startFakeAuthServer } from "./_fake_pg.ts";
import { startFakeGitHub } from "./_fake_github.ts";
import { zipBackup } from "./_zip.ts";
import {
  type FaultMode,
  type FaultServer,
  startFaultServer,
} from "./_fault_server.ts";

const PASSWORD = "S3ntinel-Pw-5f9c2";
/** A token GitHub (the fake) refuses. */
const WRONG_TOKEN = "ghp_S3ntinelTok3n0000wrong5f9c2aaaaaaaaaa";

type Run = { code: number; stdout: string; stderr: string };

/** Every secret, in each spelling that could end up in a file or message. */
function spellings(secrets: string[]): string[] {
  return [
    ...new Set(
      secrets.flatMap((s) => [s, encodeURIComponent(s), s.toLowerCase()]),
    ),
  ];
}

function assertNoSecret(what: string, text: string, secrets: string[]): void {
  for (const secret of spellings(secrets)) {
    assert.ok(
      !text.includes(secret),
      `${what} holds a secret (${secret.slice(0, 8)}…): ${text.slice(0, 400)}`,
    );
  }
}

/** Every file below `dir`, searched byte for byte. */
async function assertNoSecretInFiles(
  dir: string,
  secrets: string[],
): Promise<number> {
  let files = 0;
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return 0;
    throw error;
  }
  for (const entry of entries) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) {
      files += await assertNoSecretInFiles(path, secrets);
    } else if (entry.isFile) {
      // latin1 maps each byte to one char: a byte-for-byte search.
      const text = new TextDecoder("latin1").decode(await Deno.readFile(path));
      assertNoSecret(path, text, secrets);
      files++;
    }
  }
  return files;
}

/** Stderr holds warnings and nothing else. */
function assertSucceeded(what: string, run: Run): void {
  assert.equal(run.code, 0, `${what}: ${run.stderr}`);
  for (const line of ownLines(run.stderr)) {
    assert.match(line, /^Warning: /, `${what}: ${run.stderr}`);
  }
}

/** Exactly one `Error:` line (warnings aside), nothing like a stack trace. */
function assertOneLineError(what: string, run: Run, code = 1): string {
  const lines = ownLines(run.stderr).filter((l) => !l.startsWith("Warning: "));
  assert.equal(lines.length, 1, `${what}: one error line:\n${run.stderr}`);
  assert.match(lines[0]!, /^Error: \S/, `${what}:\n${run.stderr}`);
  assert.equal(run.code, code, `${what}: exit code; ${run.stderr}`);
  return lines[0]!;
}

/** The FAILED lines of a checkout's backup log. */
function failedLines(checkout: string): string[] {
  let log = "";
  try {
    log = Deno.readTextFileSync(`${checkout}/backups/${LOG_FILE}`);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return log.split("\n").filter((l) => / FAILED /.test(l));
}

/** A socket that accepts connections and never says a word. */
function startSilentServer(): { port: number; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  (async () => {
    try {
      for await (const conn of listener) held.push(conn);
    } catch {
      // closed
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    close() {
      listener.close();
      for (const conn of held) {
        try {
          conn.close();
        } catch {
          // closed by the client
        }
      }
    },
  };
}

/** On a real server, the login whose password is the sentinel. */
let sentinelUser: string | undefined;

/** The wire database's URL with the sentinel password and other parameters. */
function withPassword(db: WireDatabase, params: Record<string, string> = {}) {
  const url = new URL(db.url);
  url.password = PASSWORD;
  if (sentinelUser) url.username = sentinelUser;
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url.toString();
}

Deno.test("no command prints or writes the database password, the GitHub token or the age secret key, in success or failure", async (t) => {
  const checkout = await makeCheckout();
  // Several commands connect at once, as to a real server.
  const db = await startWireDatabase({ maxConnections: 16 });
  const fake = startFakeGitHub({ pageSize: 2 });
  const fakePg = startFakeAuthServer();
  const silent = startSilentServer();
  const outside = await Deno.makeTempDir({ prefix: "memkeep-secrets-" });
  try {
    const identity = await generateIdentity();
    const recipient = await identityToRecipient(identity);
    const otherIdentity = await generateIdentity();
    // One character changed: its checksum fails, and a checksum error
    // quotes the string it could not decode.
    const last = identity.at(-1) === "Q" ? "P" : "Q";
    const damaged = identity.slice(0, -1) + last;
    const keyFile = `${outside}/identity.txt`;
    const otherKeyFile = `${outside}/other.txt`;
    const damagedKeyFile = `${outside}/damaged.txt`;
    await Deno.writeTextFile(keyFile, `# created: now\n${identity}\n`);
    await Deno.writeTextFile(otherKeyFile, `${otherIdentity}\n`);
    await Deno.writeTextFile(damagedKeyFile, `${damaged}\n`);
    const secrets = [
      PASSWORD,
      fake.token,
      WRONG_TOKEN,
      identity,
      otherIdentity,
      damaged,
      // The key's body, without the prefix that every key shares.
      identity.slice("AGE-SECRET-KEY-1".length),
    ];

    const table = `${db.schema}.memories`;
    await seedMemories(db, table, { memories: 30, dims: 8 });
    if (db.kind === "external") {
      // A real server checks the password: a login whose password is the
      // sentinel.
      sentinelUser = `memkeep_sentinel_${db.schema.slice(-12)}`;
      await db.query(
        `create role ${sentinelUser} superuser login password '${PASSWORD}'`,
      );
    }
    const ids = (await db.query(`select id::text from ${table}`)).map((r) =>
      r[0]!
    );
    await Deno.mkdir(`${checkout.dir}/data`, { recursive: true });
    seedRelationshipStore(`${checkout.dir}/data/relationships.db`, ids, {
      relationships: 12,
    });

    const summaryFile = `${outside}/step_summary.md`;
    const outputFile = `${outside}/github_output`;
    const base: Record<string, string> = {
      DATABASE_URL: withPassword(db),
      MEMORY_TABLE: table,
      GITHUB_TOKEN: fake.token,
      GITHUB_REPOSITORY: fake.repository,
      GITHUB_API_URL: fake.url,
      GITHUB_SERVER_URL: "https://github.example",
      GITHUB_RUN_ID: "4242",
      GITHUB_STEP_SUMMARY: summaryFile,
      GITHUB_OUTPUT: outputFile,
      AGE_IDENTITY_FILE: keyFile,
    };
    const task = async (
      args: string[],
      env: Record<string, string> = {},
    ): Promise<Run> => {
      const run = await checkout.deno(["task", ...args], { ...base, ...env });
      assertNoSecret(`stdout of ${args.join(" ")}`, run.stdout, secrets);
      assertNoSecret(`stderr of ${args.join(" ")}`, run.stderr, secrets);
      return run;
    };

    let name = "";
    await t.step(
      "backup (text and --json), export in every format, verify and restore --dry-run succeed",
      async () => {
        const text = await task(["backup"]);
        assertSucceeded("backup", text);
        const json = await task(["backup", "--json"]);
        assertSucceeded("backup --json", json);
        const result = JSON.parse(json.stdout);
        assert.equal(result.memory_count, 30);
        assert.equal(result.relationship_count, 12);
        name = result.name;
        for (const format of ["csv", "markdown", "json"]) {
          assertSucceeded(
            `export ${format}`,
            await task([
              "export",
              "--format",
              format,
              "--verify",
              "--output",
              `exports/${format}`,
            ]),
          );
        }
        assertSucceeded("verify", await task(["verify", `backups/${name}`]));
        assertSucceeded(
          "verify --json",
          await task(["verify", `backups/${name}`, "--json"]),
        );
        assertSucceeded(
          "restore --dry-run",
          await task(["restore", "--source", `backups/${name}`, "--dry-run"]),
        );
        const restore = await task([
          "restore",
          "--source",
          `backups/${name}`,
          "--dry-run",
          "--json",
        ]);
        assertSucceeded("restore --dry-run --json", restore);
        assert.equal(JSON.parse(restore.stdout).memories.skipped, 30);
      },
    );

    await t.step(
      "publish encrypts, and the encrypted backup verifies and restores with the identity file",
      async () => {
        const run = await task(["publish"], { AGE_RECIPIENTS: recipient });
        assertSucceeded("publish", run);
        const outputs = await Deno.readTextFile(outputFile);
        assert.match(outputs, new RegExp(`^name=${name}$`, "m"));
        assert.match(outputs, /^encrypted=true$/m);
        assert.match(await Deno.readTextFile(summaryFile), /\S/);
        // verify reads ./backups and ./exports: a copy of the artifact there.
        await Deno.mkdir(`${checkout.dir}/exports/encrypted`, {
          recursive: true,
        });
        await zipBackup(
          `${checkout.dir}/artifacts/${name}`,
          `${checkout.dir}/exports/encrypted/${name}.zip`,
        );
        const copy = await new Deno.Command("cp", {
          args: [
            "-r",
            `${checkout.dir}/artifacts/${name}`,
            `${checkout.dir}/exports/encrypted/${name}`,
          ],
        }).output();
        assert.equal(copy.code, 0);
        const verify = await task([
          "verify",
          `exports/encrypted/${name}`,
          "--json",
        ]);
        assertSucceeded("verify encrypted", verify);
        const report = JSON.parse(verify.stdout);
        assert.equal(report.ok, true);
        assert.equal(report.memories, 30, "the contents were checked");
        const restore = await task([
          "restore",
          "--source",
          `exports/encrypted/${name}.zip`,
          "--dry-run",
          "--json",
        ]);
        assertSucceeded("restore encrypted zip", restore);
        assert.equal(JSON.parse(restore.stdout).memories.skipped, 30);
      },
    );

    await t.step(
      "fetch-artifact, prune --artifacts, status --artifacts and alert succeed against GitHub",
      async () => {
        fake.add(
          name,
          await Deno.readFile(`${checkout.dir}/exports/encrypted/${name}.zip`),
        );
        fake.add(
          "memory_20200101_020000",
          await Deno.readFile(`${checkout.dir}/exports/encrypted/${name}.zip`),
          { createdAt: "2020-01-01T02:00:00Z" },
        );
        const fetched = await task(["fetch-artifact", "--json"]);
        assertSucceeded("fetch-artifact", fetched);
        assert.equal(JSON.parse(fetched.stdout).encrypted, true);
        const restore = await task([
          "restore",
          "--source",
          `downloads/${name}.zip`,
          "--dry-run",
        ]);
        assertSucceeded("restore downloaded zip", restore);
        const prune = await task(["prune", "--artifacts", "--json"]);
        assertSucceeded("prune --artifacts", prune);
        assert.deepEqual(
          JSON.parse(prune.stdout).deleted.map((a: { name: string }) => a.name),
          ["memory_20200101_020000"],
        );
        assertSucceeded("prune", await task(["prune", "--dry-run"]));
        assertSucceeded(
          "status --artifacts",
          await task(["status", "--artifacts"]),
        );
        assertSucceeded("status", await task(["status", "--json"]));
        assertSucceeded("alert", await task(["alert"]));
        assertSucceeded("alert again", await task(["alert", "--json"]));
        assert.equal(fake.issues.length, 1);
        assert.equal(fake.issues[0]!.comments.length, 1);
      },
    );

    await t.step(
      "GitHub refusing the token fails in one line without the token",
      async () => {
        const wrong = { GITHUB_TOKEN: WRONG_TOKEN };
        for (
          const args of [
            ["fetch-artifact"],
            ["prune", "--artifacts"],
            ["status", "--artifacts", "--json"],
            ["alert"],
          ]
        ) {
          const run = await task(args, wrong);
          const line = assertOneLineError(args.join(" "), run);
          assert.match(line, /GitHub refused the token \(HTTP 401\)/);
        }
        assert.ok(
          fake.seen.some((s) => s.auth === `Bearer ${WRONG_TOKEN}`),
          "the token reached GitHub",
        );
      },
    );

    await embeddedStep(
      t,
      "a wrong, damaged or misplaced age key fails in one line without the key",
      async () => {
        for (
          const [what, keyFile] of [["another key", otherKeyFile], [
            "a damaged key",
            damagedKeyFile,
          ]]
        ) {
          const env = { AGE_IDENTITY_FILE: keyFile! };
          const verify = await task(
            ["verify", `exports/encrypted/${name}`],
            env,
          );
          assert.equal(verify.code, 1, `verify with ${what}`);
          assert.deepEqual(
            ownLines(verify.stderr).filter((l) => !l.startsWith("Warning: ")),
            [],
          );
          assert.match(
            verify.stdout,
            /^Backup is NOT valid: SHA256SUMS\.zst\.age: cannot be decrypted with the key given: .+\n$/m,
          );
          const json = await task(
            ["verify", `exports/encrypted/${name}`, "--json"],
            env,
          );
          assert.equal(json.code, 1);
          assert.equal(JSON.parse(json.stdout).ok, false);
          for (const args of [["--dry-run"], ["--dry-run", "--json"]]) {
            const restore = await task([
              "restore",
              "--source",
              `exports/encrypted/${name}.zip`,
              ...args,
            ], env);
            assert.match(
              assertOneLineError(
                `restore ${args.join(" ")} with ${what}`,
                restore,
              ),
              /^Error: Cannot restore: cannot decrypt the backup with the key given: /,
            );
          }
        }
        const publish = await task(["publish"], { AGE_RECIPIENTS: identity });
        assert.equal(
          assertOneLineError(
            "publish with a secret key as recipient",
            publish,
            2,
          ),
          "Error: Invalid AGE_RECIPIENTS: recipient 1 is a secret key; give the public key (age1…)",
        );
      },
    );

    await t.step(
      "every way of failing to connect fails in one line, logged, without the password",
      async (t) => {
        const cases: [string, string, Record<string, string>, RegExp][] = [
          [
            "connection refused",
            `postgres://me:${PASSWORD}@127.0.0.1:1/db?sslmode=disable`,
            {},
            /connection refused/,
          ],
          [
            "unknown host",
            `postgres://me:${PASSWORD}@no-such-host.invalid:5432/db`,
            {},
            /host "no-such-host\.invalid" not found/,
          ],
          [
            "no answer (connect_timeout=1)",
            `postgres://me:${PASSWORD}@127.0.0.1:${silent.port}/db?sslmode=disable&connect_timeout=1`,
            {},
            /within 1 s/,
          ],
          [
            "no answer to TLS (connect_timeout=1)",
            `postgres://me:${PASSWORD}@localhost:${silent.port}/db?sslmode=require&connect_timeout=1`,
            {},
            /: no answer within 1 s/,
          ],
          [
            "wrong password",
            `postgres://me:${PASSWORD}@127.0.0.1:${fakePg.port}/db?sslmode=disable`,
            {},
            /password authentication failed for user "me"/,
          ],
          [
            "wrong password from PGPASSWORD",
            `postgres://me@127.0.0.1:${fakePg.port}/db?sslmode=disable`,
            { PGPASSWORD: PASSWORD },
            /password authentication failed for user "me"/,
          ],
          [
            "wrong password as ?password=",
            `postgres://me@127.0.0.1:${fakePg.port}/db?sslmode=disable&password=${PASSWORD}`,
            {},
            /password authentication failed for user "me"/,
          ],
          // Only a server without TLS (pglite-socket) can refuse it; the
          // real server's TLS is tested in tests/store/postgres_test.ts.
          // Four commands ask at once: each gets a few seconds.
          ...(db.kind === "socket"
            ? [
              [
                "TLS required by a server without TLS (127.0.0.1)",
                withPassword(db, { sslmode: "require", connect_timeout: "5" }),
                {},
                /^Error: Cannot connect to postgresql:\/\/postgres@127\.0\.0\.1:\d+\/postgres: the server does not support SSL, but sslmode asks for it/,
              ],
              [
                "TLS required by a server without TLS (localhost)",
                withPassword(db, { sslmode: "require", connect_timeout: "5" })
                  .replace("127.0.0.1", "localhost"),
                {},
                /^Error: Cannot connect to postgresql:\/\/postgres@localhost:\d+\/postgres: the server does not support SSL, but sslmode asks for it/,
              ],
            ] as [string, string, Record<string, string>, RegExp][]
            : []),
        ];
        const commands: [string, string[]][] = [
          ["backup", ["backup"]],
          ["backup --json", ["backup", "--json"]],
          ["export", [
            "export",
            "--format",
            "csv",
            "--output",
            "exports/failed",
          ]],
          ["restore --dry-run --json", [
            "restore",
            "--source",
            `backups/${name}`,
            "--dry-run",
            "--json",
          ]],
        ];
        for (const [what, url, env, expected] of cases) {
          await t.step(what, async () => {
            const before = failedLines(checkout.dir);
            // The commands run side by side: the timeouts overlap.
            const runs = await Promise.all(
              commands.map(([, args]) =>
                task(args, { ...env, DATABASE_URL: url })
              ),
            );
            commands.forEach(([command, args], i) => {
              const run = runs[i]!;
              const line = assertOneLineError(`${command} (${what})`, run);
              assert.match(line, expected, `${command} (${what})`);
              if (args.includes("--json")) {
                const lines = run.stdout.trim().split("\n");
                assert.equal(lines.length, 1, `${command}: ${run.stdout}`);
                assert.equal(JSON.parse(lines[0]!).ok, false);
              } else {
                assert.equal(run.stdout, "", `${command}: ${run.stdout}`);
              }
            });
            const failed = failedLines(checkout.dir).slice(before.length);
            assert.equal(failed.length, 2, "both backups log their failure");
            for (const line of failed) {
              assert.match(line, / FAILED - error="Cannot connect to /);
            }
          });
        }
        await t.step("a missing sslrootcert", async () => {
          const url = withPassword(db, {
            sslmode: "verify-full",
            sslrootcert: "./data/no-such-ca.pem",
          });
          for (const [command, args] of commands) {
            const run = await task(args, { DATABASE_URL: url });
            const line = assertOneLineError(command, run, 2);
            assert.match(
              line,
              /^Error: Invalid DATABASE_URL: cannot read sslrootcert "\.\/data\/no-such-ca\.pem"/,
            );
          }
        });
        assert.equal(backupsIn(`${checkout.dir}/backups`).length, 2);
      },
    );

    await t.step("no file the commands wrote holds a secret", async () => {
      let files = 0;
      for (const dir of ["backups", "exports", "artifacts", "downloads"]) {
        files += await assertNoSecretInFiles(`${checkout.dir}/${dir}`, secrets);
      }
      assert.ok(files > 20, `${files} files searched`);
      for (const file of [summaryFile, outputFile]) {
        assertNoSecret(file, await Deno.readTextFile(file), secrets);
      }
      const issueTexts = fake.issues.flatMap((i) => [
        i.title,
        i.body,
        ...i.comments,
      ]);
      assert.ok(issueTexts.length >= 3);
      for (const text of issueTexts) assertNoSecret("an issue", text, secrets);
    });
  } finally {
    silent.close();
    await fakePg.close();
    await fake.close();
    if (sentinelUser) {
      await db.query(`drop role ${sentinelUser}`).catch(() => {});
      sentinelUser = undefined;
    }
    await db.close();
    await checkout.remove();
    await Deno.remove(outside, { recursive: true });
  }
});

/** Every way a secret could be spelled in output. */
function spelledOut(secret: string): string[] {
  return [
    secret,
    encodeURIComponent(secret),
    btoa(secret),
    `me:${secret}`,
    `me:${encodeURIComponent(secret)}`,
    btoa(`me:${secret}`),
    `Bearer ${secret}`,
  ];
}

/** The files of a zip, decompressed. */
async function zipContents(bytes: Uint8Array): Promise<Uint8Array[]> {
  const reader = new ZipReader(new Uint8ArrayReader(bytes));
  const out: Uint8Array[] = [];
  for (const entry of await reader.getEntries()) {
    if (!entry.directory) out.push(await entry.getData(new Uint8ArrayWriter()));
  }
  await reader.close();
  return out;
}

Deno.test("no secret in any spelling (raw, %-encoded, base64, user:password) when connecting fails in any way, the URL is malformed, or GitHub refuses", async (t) => {
  // "/", "#", "@" and "+" must be %-encoded in a URL.
  const password = "S3ntinel-Pw-q7/Zx+k=9@!#";
  const token = "ghp_S3ntinelTok3nXYZ0123456789abcdefABCDEF";
  const passphrase = "S3ntinel-Passphrase-correct-horse";
  const checkout = await makeCheckout();
  const outside = await Deno.makeTempDir({ prefix: "memkeep-secrets-" });
  const servers = new Map<FaultMode, FaultServer>();
  for (
    const mode of [
      "close",
      "garbage",
      "unknown-message",
      "tls-only",
      "no-tls",
    ] as const
  ) servers.set(mode, startFaultServer(mode));
  const auth = startFakeAuthServer();
  const fake = startFakeGitHub();
  // A misbehaving proxy that echoes the Authorization header in its error.
  const echo = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) =>
      Response.json({
        message: `Bad credentials: ${request.headers.get("authorization")}`,
      }, { status: 403 }),
  );
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closedPort = (closed.addr as Deno.NetAddr).port;
  closed.close();
  try {
    const identity = await generateIdentity();
    const keyFile = `${outside}/key.txt`;
    await Deno.writeTextFile(keyFile, `${identity}\n`);
    const secrets = [password, token, passphrase, identity].flatMap(spelledOut);
    const summary = `${outside}/summary.md`;
    const output = `${outside}/output`;
    const base = {
      GITHUB_TOKEN: token,
      GITHUB_REPOSITORY: fake.repository,
      GITHUB_API_URL: fake.url,
      GITHUB_STEP_SUMMARY: summary,
      GITHUB_OUTPUT: output,
      AGE_IDENTITY_FILE: keyFile,
      AGE_PASSPHRASE: passphrase,
      PGPASSWORD: password,
    };
    const clean = (what: string, text: string) => {
      for (const secret of secrets) {
        assert.ok(
          !text.includes(secret),
          `${what} holds a secret (${secret.slice(0, 12)}…): ${
            text.slice(0, 300)
          }`,
        );
      }
    };
    const task = async (args: string[], env: Record<string, string> = {}) => {
      const run = await checkout.deno(["task", ...args], { ...base, ...env });
      clean(`stdout of ${args.join(" ")}`, run.stdout);
      clean(`stderr of ${args.join(" ")}`, run.stderr);
      return run;
    };
    const oneLine = (what: string, run: Run, code = 1): string => {
      const lines = ownLines(run.stderr).filter((l) =>
        !l.startsWith("Warning: ")
      );
      assert.equal(run.code, code, `${what}: exit code\n${run.stderr}`);
      assert.equal(lines.length, 1, `${what}: one line\n${run.stderr}`);
      assert.match(lines[0]!, /^Error: \S/, what);
      return lines[0]!;
    };

    let name = "";
    await t.step(
      "demo, schedule --print, grants and publish succeed with every secret set",
      async () => {
        const demo = await task([
          "demo",
          "--memories",
          "8",
          "--dims",
          "4",
          "--relationships",
          "5",
        ]);
        assert.equal(demo.code, 0, demo.stderr);
        name = backupsIn(`${checkout.dir}/backups`)[0]!;
        const print = await task(["schedule", "--print"]);
        assert.equal(print.code, 0, print.stderr);
        const grants = await checkout.deno(
          ["task", "grants", "backup"],
          {
            ...base,
            DATABASE_URL: `postgres://me:${
              encodeURIComponent(password)
            }@db.example.com:6543/app`,
          },
        );
        assert.equal(grants.code, 0, grants.stderr);
        assert.match(grants.stdout, / --allow-net=db\.example\.com:6543 /);
        clean("grants", grants.stdout + grants.stderr);
        const publish = await task(["publish"], {
          AGE_RECIPIENTS: await identityToRecipient(identity),
        });
        assert.equal(publish.code, 0, publish.stderr);
        const zip = `${outside}/${name}.zip`;
        await zipBackup(`${checkout.dir}/artifacts/${name}`, zip);
        fake.add(name, await Deno.readFile(zip));
        const fetched = await task(["fetch-artifact"], {
          GITHUB_TOKEN: fake.token,
        });
        assert.equal(fetched.code, 0, fetched.stderr);
        const restore = await task([
          "restore",
          "--source",
          `downloads/${name}.zip`,
          "--dry-run",
        ]);
        assert.equal(restore.code, 0, restore.stderr);
      },
    );

    const url = (port: number, params = "sslmode=disable") =>
      `postgres://me:${
        encodeURIComponent(password)
      }@127.0.0.1:${port}/db?connect_timeout=1&${params}`;
    const display = (host: string, port: number) =>
      `postgresql://me@${host}:${port}/db`;
    const commands = [
      ["backup"],
      ["export", "--output", "exports/failed"],
      ["restore", "--source", `backups/${name}`, "--dry-run"],
    ];

    await t.step(
      "every way connecting fails is one line naming the server, without a secret",
      async (t) => {
        const cases: [string, string, string, RegExp][] = [
          [
            "wrong password (%-encoded in the URL)",
            url(auth.port),
            display("127.0.0.1", auth.port),
            /password authentication failed for user "me"$/,
          ],
          [
            "unreachable host (TEST-NET, TLS verified)",
            url(5432, "sslmode=verify-full").replace("127.0.0.1", "192.0.2.1"),
            display("192.0.2.1", 5432),
            /: \S/,
          ],
          ...(["close", "garbage", "unknown-message"] as const).map((
            mode,
          ): [string, string, string, RegExp] => [
            `a server that is ${mode}`,
            url(servers.get(mode)!.port),
            display("127.0.0.1", servers.get(mode)!.port),
            /no Postgres handshake within 1 s \(the server at 127\.0\.0\.1:\d+ closed the connection or answered something else\)$/,
          ]),
          [
            "a server that demands TLS",
            url(servers.get("tls-only")!.port),
            display("127.0.0.1", servers.get("tls-only")!.port),
            /no pg_hba\.conf entry for host "127\.0\.0\.1", user "me", database "db", no encryption$/,
          ],
          [
            "sslmode=require and a server without TLS",
            url(servers.get("no-tls")!.port, "sslmode=require"),
            display("127.0.0.1", servers.get("no-tls")!.port),
            /: \S/,
          ],
        ];
        for (const [what, databaseUrl, shown, reason] of cases) {
          await t.step(what, async () => {
            // Side by side: the timeouts overlap.
            const runs = await Promise.all(
              commands.map((args) => task(args, { DATABASE_URL: databaseUrl })),
            );
            runs.forEach((run, i) => {
              const line = oneLine(`${commands[i]![0]} (${what})`, run);
              assert.ok(
                line.startsWith(`Error: Cannot connect to ${shown}: `),
                `${commands[i]![0]} (${what}): ${line}`,
              );
              assert.match(line, reason, `${commands[i]![0]} (${what})`);
            });
          });
        }
        assert.ok(auth.passwords.includes(password), "the password was sent");
      },
    );

    await embeddedStep(
      t,
      "a malformed DATABASE_URL holding the password is refused in one line (exit 2)",
      async () => {
        const tail = password.slice(5); // after "S3nti"
        const cases: [string, RegExp][] = [
          // Unescaped: "/" ends the host part inside the password.
          [`postgres://me:${password}@127.0.0.1:5432/db`, /not a URL/],
          // Digits then "/": the rest would become the database name.
          [
            `postgres://me:2024/${tail}@db.example.com/app`,
            /an "@" after the host; percent-encode/,
          ],
          [
            `postgres://me:2024?${tail}@db.example.com/app`,
            /an "@" after the host; percent-encode/,
          ],
          [
            `postgres://me:${encodeURIComponent(password)}@127.0.0.1:99999/db`,
            /not a URL/,
          ],
          [
            `postgres://me:${password.slice(0, 12)}%zz@h/db`,
            /malformed %-escape/,
          ],
          [
            `mysql://me:${encodeURIComponent(password)}@h/db`,
            /scheme "mysql"/,
          ],
          [
            `postgres://me:${encodeURIComponent(password)}@h/db?sslmode=on`,
            /sslmode "on" is not one of/,
          ],
        ];
        for (const [databaseUrl, reason] of cases) {
          const runs = await Promise.all(
            commands.map((args) => task(args, { DATABASE_URL: databaseUrl })),
          );
          runs.forEach((run, i) => {
            const line = oneLine(`${commands[i]![0]} ${databaseUrl}`, run, 2);
            assert.match(line, /^Error: Invalid DATABASE_URL: /);
            assert.match(line, reason, databaseUrl);
          });
        }
      },
    );

    await embeddedStep(
      t,
      "GitHub answering 401, 403 or 500, an echo of the token, or no answer: one line, no token",
      async () => {
        const github = [
          ["fetch-artifact"],
          ["prune", "--artifacts"],
          ["status", "--artifacts"],
          ["alert"],
        ];
        const cases: [string, Record<string, string>, () => void, RegExp][] = [
          ["401", {}, () => {}, /GitHub refused the token \(HTTP 401\)/],
          [
            "403",
            {},
            () => fake.fail(/./, Array(4).fill(403)),
            /GitHub refused to list (artifacts|issues) \(HTTP 403\): injected 403; the token needs the "(actions|issues): /,
          ],
          [
            "500, after retrying",
            {},
            () => fake.fail(/./, Array(20).fill(500), { "retry-after": "0" }),
            /GitHub could not list (artifacts|issues) \(HTTP 500\): injected 500$/,
          ],
          [
            "an error that echoes the token",
            { GITHUB_API_URL: `http://127.0.0.1:${echo.addr.port}` },
            () => {},
            /HTTP 403\): Bad credentials: Bearer \*\*\*/,
          ],
          [
            "no answer",
            { GITHUB_API_URL: `http://127.0.0.1:${closedPort}` },
            () => {},
            new RegExp(
              `Cannot reach GitHub at 127\\.0\\.0\\.1:${closedPort} to list`,
            ),
          ],
        ];
        for (const [what, env, setUp, expected] of cases) {
          setUp();
          const runs = await Promise.all(github.map((args) => task(args, env)));
          runs.forEach((run, i) => {
            const line = oneLine(`${github[i]!.join(" ")} (${what})`, run);
            assert.match(line, expected, `${github[i]!.join(" ")} (${what})`);
          });
        }
        assert.ok(fake.seen.some((s) => s.auth === `Bearer ${token}`));
        assert.equal(fake.issues.length, 0, "no issue was opened");
      },
    );

    await t.step("no file written holds a secret in any spelling", async () => {
      let files = 0;
      const search = async (dir: string): Promise<void> => {
        let entries: Deno.DirEntry[];
        try {
          entries = [...Deno.readDirSync(dir)];
        } catch {
          return;
        }
        for (const entry of entries) {
          const path = `${dir}/${entry.name}`;
          if (entry.isDirectory) {
            await search(path);
            continue;
          }
          const bytes = await Deno.readFile(path);
          const contents = path.endsWith(".zip")
            ? [bytes, ...await zipContents(bytes)]
            : [bytes];
          for (const content of contents) {
            clean(path, new TextDecoder("latin1").decode(content));
          }
          files++;
        }
      };
      for (const dir of ["backups", "exports", "artifacts", "downloads"]) {
        await search(`${checkout.dir}/${dir}`);
      }
      assert.ok(files >= 15, `${files} files searched`);
      const log = await Deno.readTextFile(
        `${checkout.dir}/backups/${LOG_FILE}`,
      );
      assert.ok(
        log.split("\n").filter((l) => / FAILED /.test(l)).length >= 7,
        "every failed backup is logged",
      );
      for (const file of [summary, output]) {
        clean(file, await Deno.readTextFile(file));
      }
    });
  } finally {
    for (const server of servers.values()) await server.close();
    await auth.close();
    await fake.close();
    await echo.shutdown();
    await checkout.remove();
    await Deno.remove(outside, { recursive: true });
  }
});
