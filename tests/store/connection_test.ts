import assert from "node:assert/strict";
import {
  type ConnectionSettings,
  isLoopback,
  netGrant,
  parseDatabaseUrl,
} from "../../lib/store/connection.ts";
import { UsageError } from "../../lib/errors.ts";
import { redact, registerSecret } from "../../lib/redact.ts";
import { withTempDir } from "../_helpers.ts";

const NEON_HOST = "ep-cool-darkness-123456.us-east-2.aws.neon.tech";
const NEON_URL =
  `postgresql://alex:AbC123dEf@${NEON_HOST}/dbname?sslmode=require&channel_binding=require`;

/** Asserts that parsing fails with a UsageError naming DATABASE_URL. */
function assertRejected(url: string, pattern: RegExp): UsageError {
  try {
    parseDatabaseUrl(url);
  } catch (error) {
    assert.ok(
      error instanceof UsageError,
      `expected a UsageError, got ${
        error instanceof Error ? `${error.name}: ${error.message}` : error
      }`,
    );
    assert.equal(error.setting, "DATABASE_URL");
    assert.match(error.message, /^Invalid DATABASE_URL\b/);
    assert.match(error.message, pattern);
    return error;
  }
  assert.fail("expected a UsageError, but the URL was accepted");
}

Deno.test("parseDatabaseUrl() reads a Neon URL with certificate verification and without libpq-only parameters", () => {
  const c = parseDatabaseUrl(NEON_URL);
  assert.equal(c.host, NEON_HOST);
  assert.equal(c.port, 5432);
  assert.equal(c.database, "dbname");
  assert.equal(c.user, "alex");
  assert.equal(c.password, "AbC123dEf");
  assert.deepEqual(c.tls, { rejectUnauthorized: true, servername: NEON_HOST });
  assert.deepEqual(c.params, {});
  assert.equal(c.prepare, true);
  assert.equal(c.connectTimeout, 10);
  assert.equal(c.loopback, false);
  assert.equal(c.display, `postgresql://alex@${NEON_HOST}:5432/dbname`);
  assert.ok(!c.display.includes("AbC123dEf"));
});

Deno.test("parseDatabaseUrl() turns prepared statements off behind a transaction pooler", async (t) => {
  const cases: [string, string, boolean][] = [
    [
      "Neon -pooler host",
      `postgresql://alex:AbC123dEf@ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech/dbname?sslmode=require&channel_binding=require`,
      false,
    ],
    [
      "Supabase transaction pooler on port 6543",
      "postgresql://postgres.abcdefghijklmnop:Sb-pw-9876@aws-0-us-east-1.pooler.supabase.com:6543/postgres",
      false,
    ],
    [
      "Supabase session pooler on port 5432",
      "postgresql://postgres.abcdefghijklmnop:Sb-pw-9876@aws-0-us-east-1.pooler.supabase.com:5432/postgres",
      true,
    ],
    [
      "pgbouncer=true",
      "postgresql://app:Pgb-pw-1234@bouncer.internal:6432/app?pgbouncer=true",
      false,
    ],
    ["direct Neon host", NEON_URL, true],
  ];
  for (const [name, url, prepare] of cases) {
    await t.step(name, () => {
      const c = parseDatabaseUrl(url);
      assert.equal(c.prepare, prepare);
      assert.ok(!("pgbouncer" in c.params), "pgbouncer is not sent");
    });
  }
});

Deno.test("parseDatabaseUrl() keeps server settings and strips libpq-only parameters", async (t) => {
  const cases: [string, string, Record<string, string>][] = [
    [
      "Neon endpoint options",
      `postgresql://alex:AbC123dEf@${NEON_HOST}/dbname?options=endpoint%3Dep-x&sslmode=require`,
      { options: "endpoint=ep-x" },
    ],
    [
      "application_name",
      `postgresql://alex:AbC123dEf@${NEON_HOST}/dbname?application_name=memkeep&channel_binding=require`,
      { application_name: "memkeep" },
    ],
    [
      "every libpq-only parameter",
      `postgresql://alex:AbC123dEf@${NEON_HOST}/dbname?sslmode=verify-full&sslrootcert=system&connect_timeout=5&channel_binding=require&target_session_attrs=read-write&keepalives=1&gssencmode=disable&statement_cache_size=0&search_path=mem`,
      { search_path: "mem" },
    ],
  ];
  for (const [name, url, params] of cases) {
    await t.step(name, () => {
      assert.deepEqual(parseDatabaseUrl(url).params, params);
    });
  }
});

Deno.test("parseDatabaseUrl() verifies the certificate of every remote host and connects plainly only to loopback or with sslmode=disable", async (t) => {
  const verify = (host: string): ConnectionSettings["tls"] => ({
    rejectUnauthorized: true,
    servername: host,
  });
  const cases: [string, ConnectionSettings["tls"], boolean][] = [
    [
      "postgresql://u:pw-remote@db.example.com/d",
      verify("db.example.com"),
      false,
    ],
    [
      "postgresql://u:pw-remote@db.example.com/d?sslmode=require",
      verify("db.example.com"),
      false,
    ],
    [
      "postgresql://u:pw-remote@db.example.com/d?sslmode=prefer",
      verify("db.example.com"),
      false,
    ],
    [
      "postgresql://u:pw-remote@db.example.com/d?sslmode=allow",
      verify("db.example.com"),
      false,
    ],
    [
      "postgresql://u:pw-remote@10.0.0.7/d?sslmode=verify-ca",
      verify("10.0.0.7"),
      false,
    ],
    ["postgresql://u:pw-remote@db.example.com/d?sslmode=disable", false, false],
    ["postgresql://u:pw-local@localhost/d", false, true],
    ["postgresql://u:pw-local@LOCALHOST:5433/d", false, true],
    ["postgresql://u:pw-local@127.0.0.5/d", false, true],
    ["postgresql://u:pw-local@[::1]:5432/d", false, true],
    ["postgresql://u:pw-local@localhost/d?sslmode=prefer", false, true],
    [
      "postgresql://u:pw-local@localhost/d?sslmode=require",
      verify("localhost"),
      true,
    ],
    [
      "postgresql://u:pw-remote@127.0.0.1.example.com/d",
      verify("127.0.0.1.example.com"),
      false,
    ],
    [
      "postgresql://u:pw-remote@localhost.example.com/d",
      verify("localhost.example.com"),
      false,
    ],
  ];
  for (const [url, tls, loopback] of cases) {
    await t.step(url, () => {
      const c = parseDatabaseUrl(url);
      assert.deepEqual(c.tls, tls);
      assert.equal(c.loopback, loopback);
    });
  }
});

Deno.test("parseDatabaseUrl() reads an IPv6 loopback host without brackets and shows it with them", () => {
  const c = parseDatabaseUrl("postgresql://u:pw-v6-local@[::1]:5433/d");
  assert.equal(c.host, "::1");
  assert.equal(c.port, 5433);
  assert.equal(c.display, "postgresql://u@[::1]:5433/d");
  assert.equal(isLoopback("[::1]"), true);
  assert.equal(isLoopback("::2"), false);
});

Deno.test("parseDatabaseUrl() uses the CA in sslrootcert and names an unreadable one", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/root.crt`;
    const pem =
      "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    await Deno.writeTextFile(path, pem);
    const c = parseDatabaseUrl(
      `postgresql://u:Ca-pw-5555@db.example.com/d?sslmode=verify-full&sslrootcert=${path}`,
    );
    assert.deepEqual(c.tls, {
      rejectUnauthorized: true,
      servername: "db.example.com",
      ca: pem,
    });
    assert.ok(!("sslrootcert" in c.params));
    const error = assertRejected(
      `postgresql://u:Ca-pw-5555@db.example.com/d?sslrootcert=${dir}/missing.crt`,
      /cannot read sslrootcert/,
    );
    assert.ok(error.message.includes(`${dir}/missing.crt`));
    assert.ok(!error.message.includes("Ca-pw-5555"));
  });
});

Deno.test("parseDatabaseUrl() waits 10 s to connect unless connect_timeout says otherwise", () => {
  assert.equal(parseDatabaseUrl(NEON_URL).connectTimeout, 10);
  assert.equal(
    parseDatabaseUrl(`${NEON_URL}&connect_timeout=3`).connectTimeout,
    3,
  );
});

Deno.test("parseDatabaseUrl() decodes URL-encoded user, password and database", () => {
  const c = parseDatabaseUrl(
    "postgresql://al%40ex:p%40ss%3Aword@db.example.com/my%20db",
  );
  assert.equal(c.user, "al@ex");
  assert.equal(c.password, "p@ss:word");
  assert.equal(c.database, "my db");
  assert.equal(c.display, "postgresql://al%40ex@db.example.com:5432/my%20db");
  assert.ok(!c.display.includes("p%40ss"));
});

Deno.test("parseDatabaseUrl() uses the user name as database when the URL names none", () => {
  assert.equal(
    parseDatabaseUrl("postgresql://alex:Nodb-pw-42@db.example.com").database,
    "alex",
  );
});

Deno.test("parseDatabaseUrl() rejects an unusable URL with a UsageError that never shows the password", async (t) => {
  const password = "Err0r-Pw-Zx9";
  const cases: [string, string, RegExp][] = [
    [
      "not a URL",
      `alex ${password} db.example.com`,
      /not a URL/,
    ],
    [
      "mysql:// scheme",
      `mysql://alex:${password}@db.example.com/d`,
      /scheme "mysql"/,
    ],
    ["no host", `postgresql:///d?password=${password}`, /no host/],
    ["no user", `postgresql://:${password}@db.example.com/d`, /no user/],
    [
      "several hosts",
      `postgresql://alex:${password}@h1.example.com,h2.example.com/d`,
      /several hosts/,
    ],
    [
      "bad sslmode",
      `postgresql://alex:${password}@db.example.com/d?sslmode=verify`,
      /sslmode "verify"/,
    ],
    [
      "connect_timeout not a number",
      `postgresql://alex:${password}@db.example.com/d?connect_timeout=ten`,
      /connect_timeout "ten"/,
    ],
    [
      "connect_timeout zero",
      `postgresql://alex:${password}@db.example.com/d?connect_timeout=0`,
      /connect_timeout "0"/,
    ],
    [
      "connect_timeout negative",
      `postgresql://alex:${password}@db.example.com/d?connect_timeout=-3`,
      /connect_timeout "-3"/,
    ],
    [
      "port out of range",
      `postgresql://alex:${password}@db.example.com:99999/d`,
      /not a URL/,
    ],
    [
      "a stray % in the password",
      `postgresql://alex:${password}%@db.example.com/d`,
      /DATABASE_URL/,
    ],
  ];
  for (const [name, url, pattern] of cases) {
    await t.step(name, () => {
      const error = assertRejected(url, pattern);
      assert.ok(!error.message.includes(password), error.message);
    });
  }
});

Deno.test("netGrant() is host:port of the URL, with the default port 5432", () => {
  assert.equal(netGrant(NEON_URL), `${NEON_HOST}:5432`);
  assert.equal(
    netGrant("postgresql://u:p@aws-0-us-east-1.pooler.supabase.com:6543/x"),
    "aws-0-us-east-1.pooler.supabase.com:6543",
  );
  assert.equal(netGrant("postgresql://u:p@[::1]/x"), "[::1]:5432");
  assert.equal(netGrant("not a url"), undefined);
  assert.equal(netGrant("postgresql:///x"), undefined);
});

Deno.test("redact() removes the DATABASE_URL password in every form once the URL is parsed", async (t) => {
  parseDatabaseUrl(
    "postgresql://alex:Wq9%40Lm%3Ar7%2Fzz@db.example.com/mem",
  );
  const secret = "Wq9@Lm:r7/zz";
  const forms = [secret, "Wq9%40Lm%3Ar7%2Fzz"];
  const messages = [
    (p: string) => `password authentication failed: ${p}`,
    (p: string) => `"${p}"`,
    (p: string) => `password=${p}; retrying`,
    (p: string) => `${p}`,
  ];
  for (const form of forms) {
    for (const message of messages) {
      const text = message(form);
      await t.step(text, () => {
        const out = redact(text);
        assert.ok(!out.includes(form), out);
        assert.ok(!out.includes(secret), out);
        assert.ok(out.includes("***"), out);
      });
    }
  }
});

Deno.test("redact() removes the password as spelled in DATABASE_URL, even with lowercase percent-escapes", () => {
  parseDatabaseUrl("postgresql://alex:Hv4%40Tn%3ab8@db.example.com/mem");
  const out = redact("server said: bad password Hv4%40Tn%3ab8");
  assert.ok(!out.includes("Hv4%40Tn%3ab8"), out);
  assert.ok(!out.includes("Hv4@Tn:b8"), out);
});

Deno.test("redact() removes the password of any URL with credentials, registered or not", async (t) => {
  const cases = [
    "postgresql://bob:Unregistered-77@db.example.com:5432/x",
    "postgres://bob:Unregistered-77@db.example.com/x?sslmode=require",
    "error at postgresql://bob:Unregistered-77@[::1]:5432/x: refused",
    "two: postgresql://a:Unregistered-77@h1/x and postgres://b:Unregistered-77@h2/y",
    "encoded postgresql://bob:Unre%40gistered-77@db/x",
  ];
  for (const text of cases) {
    await t.step(text, () => {
      const out = redact(text);
      assert.ok(!out.includes("Unregistered-77"), out);
      assert.ok(!out.includes("Unre%40gistered-77"), out);
      assert.ok(out.includes(":***@"), out);
    });
  }
  await t.step("a URL without a password is left alone", () => {
    const text = "postgresql://bob@db.example.com:5432/x";
    assert.equal(redact(text), text);
  });
});

Deno.test("redact() ignores secrets shorter than 4 characters", () => {
  registerSecret("abc");
  registerSecret("");
  registerSecret(undefined);
  parseDatabaseUrl("postgresql://u:xyz@db.example.com/d");
  assert.equal(redact("abc xyz abcd"), "abc xyz abcd");
});

Deno.test('redact() with the password "postgres" does not garble postgresql:// or postgres_user', async (t) => {
  parseDatabaseUrl("postgresql://postgres:postgres@db.example.com/mem");
  const kept = [
    "postgresql://db.example.com:5432/mem",
    "connect to postgresql://host as role postgres_user",
    "postgres_user",
    "schema postgres_fdw",
    "postgresql",
  ];
  for (const text of kept) {
    await t.step(text, () => {
      assert.equal(redact(text), text);
    });
  }
  await t.step("the password itself is still removed", () => {
    assert.equal(
      redact("password postgres rejected"),
      "password *** rejected",
    );
  });
});
