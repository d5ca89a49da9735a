import assert from "node:assert/strict";
import { backupName } from "../../lib/format/layout.ts";
import {
  applyRetention,
  DEFAULT_POLICY,
  isoWeek,
  type RetentionDecision,
  type RetentionPolicy,
} from "../../lib/retention/policy.ts";

const HOUR_MS = 60 * 60 * 1000;
const DAY_MS = 24 * HOUR_MS;

/** Backup names at `hours` (UTC) on every day from `first` to `last`. */
function backupsEveryDay(
  first: string,
  last: string,
  hours: readonly number[] = [2],
): string[] {
  const names: string[] = [];
  const end = Date.parse(`${last}T00:00:00Z`);
  for (let day = Date.parse(`${first}T00:00:00Z`); day <= end; day += DAY_MS) {
    for (const hour of hours) {
      names.push(backupName(new Date(day + hour * HOUR_MS)));
    }
  }
  return names;
}

/** `memory_YYYYMMDD_HHMMSS` for a short `YYYYMMDD` (and `HHMMSS`, default 02:00). */
function b(date: string, time = "020000"): string {
  return `memory_${date}_${time}`;
}

/**
 * Applies the policy and checks that every name gets exactly one decision and
 * that a deletion always says why.
 */
function decide(
  now: string,
  names: readonly string[],
  policy: RetentionPolicy,
): RetentionDecision[] {
  const decisions = applyRetention(new Date(now), names, policy);
  assert.deepEqual(
    decisions.map((d) => d.name).toSorted(),
    names.toSorted(),
    "one decision per input name",
  );
  for (const d of decisions) {
    if (!d.keep) assert.deepEqual(d.reasons, ["outside every rule"], d.name);
    else assert.ok(d.reasons.length > 0, d.name);
  }
  return decisions;
}

/** The kept names, in the order returned (newest first). */
function kept(decisions: readonly RetentionDecision[]): string[] {
  return decisions.filter((d) => d.keep).map((d) => d.name);
}

/** The reasons given for `name`. */
function reasonsFor(
  decisions: readonly RetentionDecision[],
  name: string,
): string[] | undefined {
  return decisions.find((d) => d.name === name)?.reasons;
}

/** Every day of 2023-11-01 to 2024-01-26 at 02:00 UTC. */
const NOV_TO_JAN = backupsEveryDay("2023-11-01", "2024-01-26");
/** A Friday, an hour after that day's backup. */
const FRIDAY = "2024-01-26T03:00:00Z";

Deno.test("applyRetention() with 7 daily and 4 weekly keeps the last 7 days and the Sundays of the 4 weeks before", () => {
  assert.equal(NOV_TO_JAN.length, 87);
  const decisions = decide(FRIDAY, NOV_TO_JAN, {
    daily: 7,
    weekly: 4,
    monthly: 0,
  });
  assert.deepEqual(kept(decisions), [
    b("20240126"),
    b("20240125"),
    b("20240124"),
    b("20240123"),
    b("20240122"),
    b("20240121"),
    b("20240120"),
    b("20240114"),
    b("20240107"),
    b("20231231"),
  ]);
  assert.equal(decisions.filter((d) => !d.keep).length, 77);
  assert.deepEqual(
    decisions.map((d) => d.name),
    NOV_TO_JAN.toReversed(),
    "newest first",
  );
  assert.deepEqual(reasonsFor(decisions, b("20240126")), [
    "daily: within the last 7 days",
    "newest backup",
  ]);
  assert.deepEqual(reasonsFor(decisions, b("20240121")), [
    "daily: within the last 7 days",
    "weekly: newest of ISO week 2024-W03",
  ]);
  assert.deepEqual(reasonsFor(decisions, b("20240114")), [
    "weekly: newest of ISO week 2024-W02",
  ]);
  assert.deepEqual(reasonsFor(decisions, b("20231231")), [
    "weekly: newest of ISO week 2023-W52",
  ]);
  assert.deepEqual(reasonsFor(decisions, b("20240119")), [
    "outside every rule",
  ]);
  assert.deepEqual(reasonsFor(decisions, b("20231224")), [
    "outside every rule",
  ]);
});

Deno.test("applyRetention() keeps exactly the expected backups", async (t) => {
  const cases: {
    name: string;
    now: string;
    names: string[];
    policy: RetentionPolicy;
    expected: string[];
  }[] = [
    {
      name: "the default policy is 7 daily, 4 weekly, no monthly",
      now: FRIDAY,
      names: NOV_TO_JAN,
      policy: DEFAULT_POLICY,
      expected: [
        ...backupsEveryDay("2024-01-20", "2024-01-26").toReversed(),
        b("20240114"),
        b("20240107"),
        b("20231231"),
      ],
    },
    {
      name: "no backups for the last 10 days: no dailies, the newest is kept",
      now: FRIDAY,
      names: backupsEveryDay("2023-12-01", "2024-01-15"),
      policy: { daily: 7, weekly: 4, monthly: 0 },
      expected: [b("20240115"), b("20240114"), b("20240107"), b("20231231")],
    },
    {
      name:
        "a week with no backup keeps nothing and the rule does not reach further back",
      now: FRIDAY,
      names: [
        ...backupsEveryDay("2023-12-18", "2024-01-12"),
        ...backupsEveryDay("2024-01-23", "2024-01-26"),
      ],
      policy: { daily: 7, weekly: 4, monthly: 0 },
      expected: [
        b("20240126"),
        b("20240125"),
        b("20240124"),
        b("20240123"),
        b("20240112"), // Friday: newest of 2024-W02
        b("20240107"),
        b("20231231"),
        // 2023-W51 (ending 2023-12-24) is the fifth week back.
      ],
    },
    {
      name: "a missed Sunday: the week's newest is the Saturday or earlier",
      now: FRIDAY,
      names: NOV_TO_JAN.filter(
        (n) => ![b("20240114"), b("20240107"), b("20240106")].includes(n),
      ),
      policy: { daily: 7, weekly: 4, monthly: 0 },
      expected: [
        ...backupsEveryDay("2024-01-20", "2024-01-26").toReversed(),
        b("20240113"), // Saturday
        b("20240105"), // Friday
        b("20231231"),
      ],
    },
    {
      name: "a week whose only backup is its Monday keeps that Monday",
      now: FRIDAY,
      names: [b("20240101"), b("20231231"), b("20231225")],
      policy: { daily: 0, weekly: 4, monthly: 0 },
      expected: [b("20240101"), b("20231231")],
    },
    {
      name:
        "several backups a day: daily keeps all in the window, weekly only the newest",
      now: "2024-01-26T12:00:00Z",
      names: [
        ...backupsEveryDay("2024-01-01", "2024-01-25", [2, 10, 18]),
        b("20240126", "020000"),
        b("20240126", "100000"),
      ],
      policy: { daily: 7, weekly: 4, monthly: 0 },
      expected: [
        b("20240126", "100000"),
        b("20240126", "020000"),
        ...backupsEveryDay("2024-01-20", "2024-01-25", [2, 10, 18])
          .toReversed(),
        b("20240119", "180000"), // 01-19 10:00 is before now − 7 days
        b("20240114", "180000"),
        b("20240107", "180000"),
      ],
    },
    {
      name: "the daily window excludes exactly 7 × 24 h ago and includes now",
      now: "2024-01-26T02:00:00Z",
      names: [b("20240126"), b("20240119", "020001"), b("20240119")],
      policy: { daily: 7, weekly: 0, monthly: 0 },
      expected: [b("20240126"), b("20240119", "020001")],
    },
    {
      name:
        "on a Monday just after midnight the previous week is the one that just ended",
      now: "2024-01-22T00:30:00Z",
      names: backupsEveryDay("2024-01-01", "2024-01-21"),
      policy: { daily: 0, weekly: 2, monthly: 0 },
      expected: [b("20240121"), b("20240114")],
    },
    {
      name: "the current week is left to the daily rule",
      now: "2024-01-28T23:59:59Z", // Sunday
      names: backupsEveryDay("2024-01-15", "2024-01-28"),
      policy: { daily: 1, weekly: 1, monthly: 0 },
      expected: [b("20240128"), b("20240121")],
    },
    {
      name: "90 days with 3 monthly: the newest of each of the 3 months before",
      now: "2024-03-15T03:00:00Z",
      names: backupsEveryDay("2023-12-17", "2024-03-15"),
      policy: { daily: 7, weekly: 0, monthly: 3 },
      expected: [
        ...backupsEveryDay("2024-03-09", "2024-03-15").toReversed(),
        b("20240229"),
        b("20240131"),
        b("20231231"),
      ],
    },
    {
      name: "90 days with 2 monthly: the third month back is not kept",
      now: "2024-03-15T03:00:00Z",
      names: backupsEveryDay("2023-12-17", "2024-03-15"),
      policy: { daily: 7, weekly: 0, monthly: 2 },
      expected: [
        ...backupsEveryDay("2024-03-09", "2024-03-15").toReversed(),
        b("20240229"),
        b("20240131"),
      ],
    },
    {
      name: "90 days with 7 daily, 4 weekly and 3 monthly",
      now: "2024-03-15T03:00:00Z",
      names: backupsEveryDay("2023-12-17", "2024-03-15"),
      policy: { daily: 7, weekly: 4, monthly: 3 },
      expected: [
        ...backupsEveryDay("2024-03-09", "2024-03-15").toReversed(),
        b("20240303"),
        b("20240229"),
        b("20240225"),
        b("20240218"),
        b("20240131"),
        b("20231231"),
      ],
    },
    {
      name: "monthly keeps the newest of a month with several backups a day",
      now: "2024-02-10T00:00:00Z",
      names: backupsEveryDay("2024-01-30", "2024-01-31", [2, 23]),
      policy: { daily: 0, weekly: 0, monthly: 1 },
      expected: [b("20240131", "230000")],
    },
    {
      name: "an empty list",
      now: FRIDAY,
      names: [],
      policy: { daily: 7, weekly: 4, monthly: 3 },
      expected: [],
    },
    {
      name: "a single backup older than every window is kept as the newest",
      now: FRIDAY,
      names: [b("20200101")],
      policy: { daily: 7, weekly: 4, monthly: 3 },
      expected: [b("20200101")],
    },
    {
      name: "keep counts 0: only the newest is kept",
      now: FRIDAY,
      names: NOV_TO_JAN,
      policy: { daily: 0, weekly: 0, monthly: 0 },
      expected: [b("20240126")],
    },
    {
      name: "future backups are kept and the newest is the newest up to now",
      now: FRIDAY,
      names: [
        b("20240124"),
        b("20250101", "000000"),
        b("20240126", "040000"),
        b("20240101"),
        b("20231201"),
      ],
      policy: { daily: 0, weekly: 0, monthly: 0 },
      expected: [
        b("20250101", "000000"),
        b("20240126", "040000"),
        b("20240124"),
      ],
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      assert.deepEqual(kept(decide(c.now, c.names, c.policy)), c.expected);
    });
  }
});

Deno.test("applyRetention() keeps backups dated after now, never counting them as the newest", async (t) => {
  await t.step("alongside recent backups", () => {
    const names = [
      ...backupsEveryDay("2024-01-20", "2024-01-26"),
      b("20240126", "040000"),
      b("20250101", "000000"),
    ];
    const decisions = decide(FRIDAY, names, DEFAULT_POLICY);
    assert.deepEqual(decisions.slice(0, 3), [
      { name: b("20250101", "000000"), keep: true, reasons: ["in the future"] },
      { name: b("20240126", "040000"), keep: true, reasons: ["in the future"] },
      {
        name: b("20240126"),
        keep: true,
        reasons: ["daily: within the last 7 days", "newest backup"],
      },
    ]);
  });
  await t.step("with only an old backup besides", () => {
    const decisions = decide(
      FRIDAY,
      [b("20300101"), b("20230101")],
      { daily: 7, weekly: 4, monthly: 3 },
    );
    assert.deepEqual(decisions, [
      { name: b("20300101"), keep: true, reasons: ["in the future"] },
      { name: b("20230101"), keep: true, reasons: ["newest backup"] },
    ]);
  });
  await t.step("with only future backups, nothing is the newest", () => {
    const decisions = decide(
      FRIDAY,
      [b("20240127"), b("20240126", "030001")],
      { daily: 0, weekly: 0, monthly: 0 },
    );
    assert.deepEqual(decisions, [
      { name: b("20240127"), keep: true, reasons: ["in the future"] },
      { name: b("20240126", "030001"), keep: true, reasons: ["in the future"] },
    ]);
  });
});

Deno.test("applyRetention() keeps every name that is not exactly a backup name, last and in input order", () => {
  const odd = [
    "memory_20240132_020000",
    "memory_2024012_020000",
    "notes.txt",
    "memory_20240120_020000.tmp",
    ".tmp-memory_20240120_020000-123",
  ];
  const names = [
    odd[0]!,
    b("20231001"),
    ...odd.slice(1, 3),
    b("20240120"),
    ...odd.slice(3),
  ];
  const decisions = decide(FRIDAY, names, { daily: 7, weekly: 4, monthly: 0 });
  assert.deepEqual(decisions, [
    {
      name: b("20240120"),
      keep: true,
      reasons: [
        "daily: within the last 7 days",
        "weekly: newest of ISO week 2024-W03",
        "newest backup",
      ],
    },
    { name: b("20231001"), keep: false, reasons: ["outside every rule"] },
    ...odd.map((name) => ({
      name,
      keep: true,
      reasons: ["not a backup name"],
    })),
  ]);
});

Deno.test("applyRetention() lists every rule that keeps a backup", () => {
  const decisions = decide(
    "2024-03-15T03:00:00Z",
    backupsEveryDay("2023-12-17", "2024-03-15"),
    { daily: 7, weekly: 4, monthly: 3 },
  );
  const cases: [string, string[]][] = [
    [b("20240315"), ["daily: within the last 7 days", "newest backup"]],
    [b("20240310"), [
      "daily: within the last 7 days",
      "weekly: newest of ISO week 2024-W10",
    ]],
    [b("20240303"), ["weekly: newest of ISO week 2024-W09"]],
    [b("20240229"), ["monthly: newest of 2024-02"]],
    [b("20240131"), ["monthly: newest of 2024-01"]],
    [b("20231231"), ["monthly: newest of 2023-12"]],
  ];
  for (const [name, reasons] of cases) {
    assert.deepEqual(reasonsFor(decisions, name), reasons, name);
  }
  assert.deepEqual(
    reasonsFor(
      decide(FRIDAY, [b("20240126")], { daily: 1, weekly: 0, monthly: 0 }),
      b("20240126"),
    ),
    ["daily: within the last 1 day", "newest backup"],
  );
});

Deno.test("applyRetention() rejects a bad keep count, naming the field", async (t) => {
  const cases: [string, RetentionPolicy][] = [
    ["keep-daily", { daily: -1, weekly: 4, monthly: 0 }],
    ["keep-daily", { daily: Number.NaN, weekly: 4, monthly: 0 }],
    ["keep-weekly", { daily: 7, weekly: -1, monthly: 0 }],
    ["keep-weekly", { daily: 7, weekly: Infinity, monthly: 0 }],
    ["keep-monthly", { daily: 7, weekly: 4, monthly: 1.5 }],
    ["keep-monthly", { daily: 7, weekly: 4, monthly: -Infinity }],
  ];
  for (const [field, policy] of cases) {
    await t.step(`${field} ${JSON.stringify(policy)}`, () => {
      assert.throws(
        () => applyRetention(new Date(FRIDAY), [], policy),
        (error: unknown) =>
          error instanceof RangeError &&
          new RegExp(`^Invalid ${field}: .* \\(must be a whole number ≥ 0\\)$`)
            .test(error.message),
      );
    });
  }
  await t.step("the message shows the value", () => {
    assert.throws(
      () =>
        applyRetention(new Date(FRIDAY), NOV_TO_JAN, {
          daily: 7,
          weekly: -1,
          monthly: 0,
        }),
      {
        name: "RangeError",
        message: "Invalid keep-weekly: -1 (must be a whole number ≥ 0)",
      },
    );
  });
});

Deno.test("applyRetention() rejects an invalid now", () => {
  assert.throws(
    () => applyRetention(new Date("not a date"), NOV_TO_JAN, DEFAULT_POLICY),
    (error: unknown) =>
      error instanceof RangeError && /^Invalid now\b/.test(error.message),
  );
});

Deno.test("isoWeek() uses the ISO week-numbering year", async (t) => {
  const cases = [
    ["2021-01-03T12:00:00Z", "2020-W53"],
    ["2024-12-30T00:00:00Z", "2025-W01"],
    ["2024-01-01T00:00:00Z", "2024-W01"],
    ["2023-01-01T23:59:59Z", "2022-W52"],
    ["2020-12-31T00:00:00Z", "2020-W53"],
    ["2026-12-31T23:59:59Z", "2026-W53"],
    ["2024-01-14T23:59:59Z", "2024-W02"],
    ["2024-01-15T00:00:00Z", "2024-W03"],
    ["2024-01-14T23:30:00-01:00", "2024-W03"], // Monday 00:30 UTC
  ] as const;
  for (const [iso, week] of cases) {
    await t.step(iso, () => {
      assert.equal(isoWeek(new Date(iso)), week);
    });
  }
  await t.step("Invalid Date", () => {
    assert.throws(() => isoWeek(new Date(Number.NaN)), RangeError);
  });
});
