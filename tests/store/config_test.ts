import assert from "node:assert/strict";
import {
  type Config,
  type ConfigFlags,
  DEFAULT_BACKUP_DIR,
  DEFAULT_PGLITE_DIR,
  DEFAULT_RELATIONSHIPS_DB,
  DEFAULT_TABLE,
  resolveConfig,
} from "../../lib/store/config.ts";
import { UsageError } from "../../lib/errors.ts";
import { backupName, parseBackupName } from "../../lib/format/layout.ts";

/** Settings from a fixed environment, never the real one. */
function resolve(
  env: Record<string, string> = {},
  flags: ConfigFlags = {},
): Config {
  return resolveConfig(flags, (name) => env[name]);
}

/** Asserts that resolving fails with a UsageError naming `setting`. */
function assertUsageError(
  env: Record<string, string>,
  flags: ConfigFlags,
  setting: string,
): UsageError {
  try {
    resolve(env, flags);
  } catch (error) {
    assert.ok(
      error instanceof UsageError,
      `expected a UsageError, got ${String(error)}`,
    );
    assert.equal(error.setting, setting);
    assert.match(error.message, new RegExp(`^Invalid ${setting}\\b`));
    return error;
  }
  assert.fail(`expected a UsageError naming ${setting}, but it resolved`);
}

Deno.test("resolveConfig() uses the embedded store and the defaults when nothing is set", () => {
  const config = resolve();
  assert.deepEqual(config.store, { kind: "pglite", dataDir: "./data/pglite" });
  assert.equal(DEFAULT_PGLITE_DIR, "./data/pglite");
  assert.deepEqual(config.table, { schema: undefined, name: "memories" });
  assert.equal(DEFAULT_TABLE, "memories");
  assert.deepEqual(config.relationships, {
    path: "./data/relationships.db",
    explicit: false,
  });
  assert.equal(DEFAULT_RELATIONSHIPS_DB, "./data/relationships.db");
  assert.equal(config.userId, undefined);
  assert.equal(config.backupDir, "./backups");
  assert.equal(DEFAULT_BACKUP_DIR, "./backups");
});

Deno.test("resolveConfig() treats blank environment variables as unset", () => {
  const config = resolve({
    DATABASE_URL: "  ",
    MEMORY_TABLE: "",
    RELATIONSHIPS_DB: " ",
    MEMORY_USER_ID: "",
    BACKUP_DIR: "\t",
  });
  assert.deepEqual(config.store, { kind: "pglite", dataDir: "./data/pglite" });
  assert.deepEqual(config.table, { schema: undefined, name: "memories" });
  assert.deepEqual(config.relationships, {
    path: "./data/relationships.db",
    explicit: false,
  });
  assert.equal(config.userId, undefined);
  assert.equal(config.backupDir, "./backups");
});

Deno.test("resolveConfig() uses Postgres when DATABASE_URL is set", () => {
  const config = resolve({
    DATABASE_URL: "postgresql://alex:Zq8wPx41@db.example.com:5433/mem",
  });
  assert.equal(config.store.kind, "postgres");
  assert.ok(config.store.kind === "postgres");
  assert.equal(config.store.connection.host, "db.example.com");
  assert.equal(config.store.connection.port, 5433);
  assert.equal(config.store.connection.database, "mem");
  assert.equal(config.store.connection.user, "alex");
});

Deno.test("resolveConfig() lets flags override the environment, and the environment override defaults", async (t) => {
  const cases: {
    name: string;
    env: Record<string, string>;
    flags: ConfigFlags;
    pick: (c: Config) => unknown;
    expected: unknown;
  }[] = [
    {
      name: "--table overrides MEMORY_TABLE",
      env: { MEMORY_TABLE: "env_memories" },
      flags: { table: "flag_memories" },
      pick: (c) => c.table,
      expected: { schema: undefined, name: "flag_memories" },
    },
    {
      name: "MEMORY_TABLE overrides the default table",
      env: { MEMORY_TABLE: "env_memories" },
      flags: {},
      pick: (c) => c.table,
      expected: { schema: undefined, name: "env_memories" },
    },
    {
      name: "--user overrides MEMORY_USER_ID",
      env: { MEMORY_USER_ID: "env-user" },
      flags: { user: "flag-user" },
      pick: (c) => c.userId,
      expected: "flag-user",
    },
    {
      name: "MEMORY_USER_ID sets the user filter",
      env: { MEMORY_USER_ID: "env-user" },
      flags: {},
      pick: (c) => c.userId,
      expected: "env-user",
    },
    {
      name: "--output overrides BACKUP_DIR",
      env: { BACKUP_DIR: "/srv/env-backups" },
      flags: { backupDir: "/srv/flag-backups", backupDirFlag: "--output" },
      pick: (c) => c.backupDir,
      expected: "/srv/flag-backups",
    },
    {
      name: "BACKUP_DIR overrides the default backup directory",
      env: { BACKUP_DIR: "/srv/env-backups" },
      flags: {},
      pick: (c) => c.backupDir,
      expected: "/srv/env-backups",
    },
    {
      name:
        "RELATIONSHIPS_DB sets the relationship store and makes it explicit",
      env: { RELATIONSHIPS_DB: "State/relationships.db" },
      flags: {},
      pick: (c) => c.relationships,
      expected: { path: "State/relationships.db", explicit: true },
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      assert.deepEqual(c.pick(resolve(c.env, c.flags)), c.expected);
    });
  }
});

Deno.test("resolveConfig() splits schema-qualified table names", async (t) => {
  const cases = [
    { value: "memories", expected: { schema: undefined, name: "memories" } },
    {
      value: "public.memories",
      expected: { schema: "public", name: "memories" },
    },
    {
      value: "agent_1.mem$0",
      expected: { schema: "agent_1", name: "mem$0" },
    },
    {
      value: "  tenant.memories  ",
      expected: { schema: "tenant", name: "memories" },
    },
    {
      value: "a".repeat(63),
      expected: { schema: undefined, name: "a".repeat(63) },
    },
  ];
  for (const c of cases) {
    await t.step(JSON.stringify(c.value), () => {
      assert.deepEqual(resolve({}, { table: c.value }).table, c.expected);
      assert.deepEqual(resolve({ MEMORY_TABLE: c.value }).table, c.expected);
    });
  }
});

Deno.test("resolveConfig() rejects a bad table name, naming --table or MEMORY_TABLE and quoting it", async (t) => {
  const bad = [
    "x; drop table y",
    "a.b.c",
    "a".repeat(64),
    "public.",
    ".memories",
    "1memories",
    'memories"',
    "mémoires",
  ];
  for (const value of bad) {
    await t.step(`--table ${JSON.stringify(value)}`, () => {
      const error = assertUsageError(
        { MEMORY_TABLE: "memories" },
        { table: value },
        "--table",
      );
      assert.ok(error.message.includes(`"${value}"`), error.message);
      assert.ok(!error.message.includes("MEMORY_TABLE"), error.message);
    });
    await t.step(`MEMORY_TABLE ${JSON.stringify(value)}`, () => {
      const error = assertUsageError(
        { MEMORY_TABLE: value },
        {},
        "MEMORY_TABLE",
      );
      assert.ok(error.message.includes(`"${value}"`), error.message);
    });
  }
  await t.step('--table ""', () => {
    const error = assertUsageError({}, { table: "" }, "--table");
    assert.ok(error.message.includes('""'), error.message);
  });
});

Deno.test("resolveConfig() rejects a bad user id, naming --user or MEMORY_USER_ID and quoting it", async (t) => {
  const bad = [
    "alice\nbob",
    "alice\u0000",
    "\u001b[31mred",
    "alice\u007f",
    "alice\u009b31m",
    "u".repeat(513),
  ];
  for (const value of bad) {
    await t.step(`--user ${JSON.stringify(value.slice(0, 20))}`, () => {
      const error = assertUsageError(
        { MEMORY_USER_ID: "ok" },
        { user: value },
        "--user",
      );
      assert.ok(error.message.includes(`"${value}"`), error.message);
    });
    await t.step(`MEMORY_USER_ID ${JSON.stringify(value.slice(0, 20))}`, () => {
      const error = assertUsageError(
        { MEMORY_USER_ID: value },
        {},
        "MEMORY_USER_ID",
      );
      assert.ok(error.message.includes(`"${value}"`), error.message);
    });
  }
  await t.step('--user ""', () => {
    const error = assertUsageError({}, { user: "" }, "--user");
    assert.ok(error.message.includes('""'), error.message);
  });
});

Deno.test("resolveConfig() accepts user ids with spaces, punctuation and non-ASCII letters", () => {
  for (
    const value of ["alice@example.com", "user 42", "Zoë-李", "u".repeat(512)]
  ) {
    assert.equal(resolve({}, { user: value }).userId, value);
  }
});

Deno.test("resolveConfig() rejects a bad backup directory, naming the flag that carried it", async (t) => {
  await t.step("--dir", () => {
    const error = assertUsageError({}, {
      backupDir: "",
      backupDirFlag: "--dir",
    }, "--dir");
    assert.ok(error.message.includes('""'), error.message);
  });
  await t.step("--output when no flag name is given", () => {
    assertUsageError({}, { backupDir: "a\0b" }, "--output");
  });
  await t.step("BACKUP_DIR", () => {
    assertUsageError({ BACKUP_DIR: "a\0b" }, {}, "BACKUP_DIR");
  });
  await t.step("RELATIONSHIPS_DB", () => {
    assertUsageError({ RELATIONSHIPS_DB: "a\0b" }, {}, "RELATIONSHIPS_DB");
  });
});

Deno.test("resolveConfig() rejects a bad DATABASE_URL naming DATABASE_URL and never showing the password", async (t) => {
  const password = "Kx7-resolve-Pw";
  const cases = [
    `mysql://alex:${password}@db.example.com/mem`,
    `postgresql://alex:${password}@db.example.com/mem?sslmode=maybe`,
    `postgresql://alex:${password}@db.example.com/mem?connect_timeout=soon`,
    `postgresql://:${password}@db.example.com/mem`,
    `alex:${password} at db.example.com`,
  ];
  for (const url of cases) {
    await t.step(url.replace(password, "***"), () => {
      const error = assertUsageError({ DATABASE_URL: url }, {}, "DATABASE_URL");
      assert.ok(!error.message.includes(password), error.message);
    });
  }
});

Deno.test("backupName() is memory_YYYYMMDD_HHMMSS in UTC", () => {
  assert.equal(
    backupName(new Date("2026-11-23T02:00:00Z")),
    "memory_20261123_020000",
  );
  assert.equal(
    backupName(new Date("2026-01-05T23:59:58.999+01:00")),
    "memory_20260105_225958",
  );
});

Deno.test("parseBackupName() accepts real backup names and returns their UTC time", async (t) => {
  const cases = [
    ["memory_20261123_020000", "2026-11-23T02:00:00.000Z"],
    ["memory_20280229_235959", "2028-02-29T23:59:59.000Z"],
    ["memory_20260101_000000", "2026-01-01T00:00:00.000Z"],
  ] as const;
  for (const [name, iso] of cases) {
    await t.step(name, () => {
      assert.equal(parseBackupName(name)?.toISOString(), iso);
      assert.equal(backupName(parseBackupName(name)!), name);
    });
  }
});

Deno.test("parseBackupName() rejects names that are not exactly a real moment", async (t) => {
  const bad = [
    "memory_20261332_020000", // month 13, day 32
    "memory_20261131_020000", // 31 November
    "memory_20270229_020000", // not a leap year
    "memory_20261123_250000", // hour 25
    "memory_20261123_026000", // minute 60
    "memory_20261123_020060", // second 60
    "memory_2026112_020000", // short date
    "memory_20261123_02000", // short time
    "memory_20261123_020000.tmp",
    "memory_20261123_020000x",
    "memory_20261123_020000/",
    ".tmp-memory_20261123_020000",
    "backup_20261123_020000",
    "memory-20261123-020000",
    "",
  ];
  for (const name of bad) {
    await t.step(JSON.stringify(name), () => {
      assert.equal(parseBackupName(name), undefined);
    });
  }
});
