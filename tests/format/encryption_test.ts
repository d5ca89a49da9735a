import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import {
  Encrypter,
  generateX25519Identity,
  identityToRecipient,
} from "age-encryption";
import { backup, type BackupResult } from "../../lib/backup/backup.ts";
import type { Config } from "../../lib/store/config.ts";
import { seedRelationshipStore } from "../../lib/store/demo_data.ts";
import {
  AGE_SUFFIX,
  decryptStream,
  encryptBackup,
  ENCRYPTION_FILE,
  type Keys,
  loadKeys,
  openEncrypted,
  parseRecipients,
} from "../../lib/format/encryption.ts";
import { UsageError } from "../../lib/errors.ts";
import {
  BACKUP_NAME,
  CHECKSUMS_FILE,
  EXPORT_FILE,
  SUMS_FILE,
} from "../../lib/format/layout.ts";
import { restore } from "../../lib/restore/restore.ts";
import { RestoreError } from "../../lib/errors.ts";
import { verifyBackup } from "../../lib/verify/verify.ts";
import { type Checkout, makeCheckout, ownLines } from "../_checkout.ts";
import { openEmbeddedStore, seedMemories, tableDigest } from "../_db.ts";
import {
  assertRejectsWith,
  assertValid,
  configFrom,
  copyDir,
  reseal,
  runCommand,
  withTempDir,
} from "../_helpers.ts";
import { zipBackup } from "../_zip.ts";

const hasAge = (() => {
  try {
    return ["age", "age-keygen"].every((cmd) =>
      new Deno.Command(cmd, { args: ["--version"], stdout: "null" })
        .outputSync().success
    );
  } catch {
    return false;
  }
})();
const NO_AGE = "skipped: age is not installed; apt-get install age";

const MEMORIES = 30;
const DIMS = 8;
const RELATIONSHIPS = 12;
const AGE_HEADER = "age-encryption.org/v1\n";

/** An age key pair and the identity file holding it. */
interface Key {
  /** The identity file, as `age-keygen -o` writes it. */
  readonly file: string;
  /** The public key, `age1…`. */
  readonly recipient: string;
  /** The secret key, `AGE-SECRET-KEY-1…`. */
  readonly secret: string;
}

/** A key made by the age CLI: `age-keygen -o FILE`. */
async function cliKey(file: string): Promise<Key> {
  const made = await runCommand("age-keygen", ["-o", file]);
  assert.equal(made.code, 0, made.stderr);
  const text = await Deno.readTextFile(file);
  const recipient = text.match(/^# public key: (age1\S+)$/m)?.[1];
  const secret = text.match(/^AGE-SECRET-KEY-1\S+$/m)?.[0];
  assert.ok(recipient && secret, `an identity file: ${file}`);
  assert.match(made.stderr, new RegExp(`Public key: ${recipient}`));
  return { file, recipient, secret };
}

/** A key made by the library, in the identity file format of age-keygen. */
async function libraryKey(file: string): Promise<Key> {
  const secret = await generateX25519Identity();
  const recipient = await identityToRecipient(secret);
  await Deno.writeTextFile(
    file,
    `# created: 2026-01-01T00:00:00Z\n# public key: ${recipient}\n${secret}\n`,
  );
  return { file, recipient, secret };
}

/** The keys a user gives with `AGE_IDENTITY_FILE`. */
async function keysFrom(file: string): Promise<Keys> {
  const keys = await loadKeys((name) =>
    name === "AGE_IDENTITY_FILE" ? file : undefined
  );
  assert.ok(keys, "keys are loaded");
  return keys;
}

/** A real backup of a small embedded store and a relationship store. */
async function sourceBackup(
  dir: string,
): Promise<{ result: BackupResult; digest: string }> {
  const dataDir = `${dir}/source/pglite`;
  const store = await openEmbeddedStore(dataDir);
  let digest: string;
  let ids: string[];
  try {
    await seedMemories(store, "public.memories", {
      memories: MEMORIES,
      dims: DIMS,
      seed: 11,
    });
    digest = await tableDigest(store, "public.memories");
    ids = (await store.query("select id::text from memories")).map((r) =>
      r[0]!
    );
  } finally {
    await store.close();
  }
  const rel = `${dir}/source/relationships.db`;
  seedRelationshipStore(rel, ids, { relationships: RELATIONSHIPS });
  const config = configFrom({
    RELATIONSHIPS_DB: rel,
    BACKUP_DIR: `${dir}/backups`,
  });
  const result = await backup({
    config: { ...config, store: { kind: "pglite", dataDir } },
  });
  assert.equal(result.metadata.memory_count, MEMORIES);
  assert.equal(result.metadata.relationship_count, RELATIONSHIPS);
  return { result, digest };
}

function fileNames(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}

async function readAll(
  stream: ReadableStream<Uint8Array>,
): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function decryptFile(keys: Keys, path: string): Promise<Uint8Array> {
  using file = await Deno.open(path, { read: true });
  return await readAll(await decryptStream(keys, file.readable));
}

/** A file of an encrypted backup, decrypted and decompressed as restore does. */
async function openBackupFile(keys: Keys, path: string): Promise<Uint8Array> {
  using file = await Deno.open(path, { read: true });
  return await readAll(await openEncrypted(keys, file.readable));
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new assert.AssertionError({ message: "expected it to throw" });
}

async function flipByte(path: string, at: (size: number) => number) {
  const bytes = await Deno.readFile(path);
  bytes[at(bytes.length)]! ^= 0x01;
  await Deno.writeFile(path, bytes);
}

Deno.test({
  name: hasAge
    ? "encryptBackup() writes files the age CLI decrypts to the original bytes, for every recipient"
    : `encryptBackup() writes files the age CLI decrypts (${NO_AGE})`,
  ignore: !hasAge,
  fn: async () => {
    await withTempDir(async (dir) => {
      const { result } = await sourceBackup(dir);
      const cli = await cliKey(`${dir}/key.txt`);
      const other = await libraryKey(`${dir}/other.txt`);
      const encrypted = `${dir}/encrypted`;
      const digests = await encryptBackup(result.path, encrypted, [
        cli.recipient,
        other.recipient,
      ]);

      const originals = fileNames(result.path);
      assert.deepEqual(
        fileNames(encrypted),
        [
          ...originals.map((n) => `${n}${AGE_SUFFIX}`),
          CHECKSUMS_FILE,
          ENCRYPTION_FILE,
          SUMS_FILE,
        ].sort(),
        "NAME.zst.age for every file, plus encryption.json and the checksums",
      );
      assert.deepEqual(
        Object.keys(digests).sort(),
        [...originals.map((n) => `${n}${AGE_SUFFIX}`), ENCRYPTION_FILE].sort(),
      );
      const info = JSON.parse(
        await Deno.readTextFile(`${encrypted}/${ENCRYPTION_FILE}`),
      );
      assert.deepEqual(info.files, originals);
      assert.deepEqual(info.recipients, [cli.recipient, other.recipient]);
      assert.ok(
        !JSON.stringify(info).includes("AGE-SECRET-KEY"),
        "no secret in encryption.json",
      );

      for (const name of originals) {
        const original = await Deno.readFile(`${result.path}/${name}`);
        const ciphertext = await Deno.readFile(
          `${encrypted}/${name}${AGE_SUFFIX}`,
        );
        assert.equal(
          new TextDecoder().decode(ciphertext.subarray(0, AGE_HEADER.length)),
          AGE_HEADER,
          `${name}.age is an age file`,
        );
        // Exactly as the README says to do it by hand.
        const out = `${dir}/cli-${name}`;
        const cliRun = await runCommand("bash", [
          "-c",
          `age -d -i "$1" "$2" | zstd -q -d -o "$3"`,
          "bash",
          cli.file,
          `${encrypted}/${name}${AGE_SUFFIX}`,
          out,
        ]);
        assert.equal(
          cliRun.code,
          0,
          `age -d ${name}${AGE_SUFFIX} | zstd -d: ${cliRun.stderr}`,
        );
        assert.deepEqual(
          await Deno.readFile(out),
          original,
          `age -d ${name}${AGE_SUFFIX} | zstd -d gives back ${name} byte for byte`,
        );
        assert.deepEqual(
          await openBackupFile(
            await keysFrom(other.file),
            `${encrypted}/${name}${AGE_SUFFIX}`,
          ),
          original,
          `the second recipient also decrypts ${name}${AGE_SUFFIX}`,
        );
      }
    });
  },
});

Deno.test({
  name: hasAge
    ? "decryptStream() with AGE_IDENTITY_FILE from age-keygen reads files the age CLI encrypted"
    : `decryptStream() reads files the age CLI encrypted (${NO_AGE})`,
  ignore: !hasAge,
  fn: async (t) => {
    await withTempDir(async (dir) => {
      const key = await cliKey(`${dir}/key.txt`);
      const keys = await keysFrom(key.file);
      assert.deepEqual(keys, {
        identities: [key.secret],
        passphrase: undefined,
      });
      // age encrypts in 64 KiB chunks: empty, inside one, exactly one, several.
      const sizes = [0, 11, 64 * 1024, 200_001];
      for (const size of sizes) {
        await t.step(`${size} bytes`, async () => {
          const plain = new Uint8Array(size);
          for (let at = 0; at < size; at += 65536) {
            crypto.getRandomValues(plain.subarray(at, at + 65536));
          }
          await Deno.writeFile(`${dir}/plain-${size}`, plain);
          const enc = await runCommand("age", [
            "-r",
            key.recipient,
            "-o",
            `${dir}/x-${size}.age`,
            `${dir}/plain-${size}`,
          ]);
          assert.equal(enc.code, 0, enc.stderr);
          assert.deepEqual(
            await decryptFile(keys, `${dir}/x-${size}.age`),
            plain,
          );
        });
      }
    });
  },
});

Deno.test("loadKeys() with AGE_PASSPHRASE decrypts a passphrase-encrypted file, and a wrong passphrase or key does not", async () => {
  // The age CLI reads a passphrase from a terminal only, so the file is made
  // with the same library in its passphrase (scrypt) mode.
  const plain = new TextEncoder().encode('{"memory": "says \\"hi\\" 🙂"}\n');
  const encrypter = new Encrypter();
  encrypter.setPassphrase("correct horse battery staple");
  encrypter.setScryptWorkFactor(12);
  const ciphertext = await encrypter.encrypt(plain);
  const stream = () =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(ciphertext);
        controller.close();
      },
    });

  const keys = await loadKeys((name) =>
    name === "AGE_PASSPHRASE" ? "correct horse battery staple" : undefined
  );
  assert.deepEqual(keys, {
    identities: [],
    passphrase: "correct horse battery staple",
  });
  assert.deepEqual(await readAll(await decryptStream(keys!, stream())), plain);

  await assert.rejects(async () =>
    await readAll(
      await decryptStream(
        { identities: [], passphrase: "wrong horse" },
        stream(),
      ),
    )
  );
  await assert.rejects(async () =>
    await readAll(
      await decryptStream(
        { identities: [await generateX25519Identity()], passphrase: undefined },
        stream(),
      ),
    )
  );
  assert.equal(await loadKeys(() => undefined), undefined, "no key set");
  assert.equal(
    await loadKeys((name) => name === "AGE_PASSPHRASE" ? "" : undefined),
    undefined,
    "an empty AGE_PASSPHRASE is no key",
  );
});

Deno.test("loadKeys() refuses an identity file it cannot read or that holds no key, naming AGE_IDENTITY_FILE", async () => {
  await withTempDir(async (dir) => {
    const missing = await assertRejectsWith(
      () => keysFrom(`${dir}/nope.txt`),
      UsageError,
      /^Cannot read AGE_IDENTITY_FILE ".*nope\.txt"/,
    );
    assert.equal(missing.setting, "AGE_IDENTITY_FILE");
    const key = await libraryKey(`${dir}/key.txt`);
    await Deno.writeTextFile(`${dir}/public.txt`, `${key.recipient}\n`);
    await assertRejectsWith(
      () => keysFrom(`${dir}/public.txt`),
      UsageError,
      /^Invalid AGE_IDENTITY_FILE ".*public\.txt": it holds no AGE-SECRET-KEY- line/,
    );
  });
});

Deno.test("verifyBackup() checks an encrypted backup's ciphertext without a key, and everything with one", async (t) => {
  await withTempDir(async (dir) => {
    const { result } = await sourceBackup(dir);
    const key = await libraryKey(`${dir}/key.txt`);
    const encrypted = `${dir}/encrypted`;
    await encryptBackup(result.path, encrypted, [key.recipient]);
    const keys = await keysFrom(key.file);
    const plainReport = await verifyBackup(result.path);
    assertValid(plainReport);

    await t.step(
      "without a key: intact ciphertext, contents not checked",
      async () => {
        const report = await verifyBackup(encrypted);
        assert.equal(report.ok, true, JSON.stringify(report.problem));
        assert.equal(report.encrypted, true);
        assert.equal(report.contentsVerified, false);
        assert.deepEqual(report.checks.map((c) => c.name), [
          "encryption",
          "ciphertext",
          "contents",
        ]);
        assertValid(report);
        assert.match(
          report.checks[0]!.detail,
          /age-encrypted to 1 recipient\(s\): 5 files/,
        );
        assert.match(
          report.checks[2]!.detail,
          /^not checked: .*AGE_IDENTITY_FILE/,
        );
        assert.equal(report.metadata, undefined);
      },
    );

    await t.step(
      "with the key: every check of a plain backup runs, with the right counts",
      async () => {
        const report = await verifyBackup(encrypted, { keys });
        assert.equal(report.ok, true, JSON.stringify(report.problem));
        assert.equal(report.encrypted, true);
        assert.equal(report.contentsVerified, true);
        assert.deepEqual(report.checks.map((c) => c.name), [
          "encryption",
          "ciphertext",
          ...plainReport.checks.map((c) => c.name),
        ]);
        for (
          const name of [
            "files",
            "checksums",
            "metadata",
            "header",
            "memories",
            "relationships",
            "snapshot",
          ]
        ) {
          const check = report.checks.find((c) => c.name === name);
          assert.ok(check?.ok, `${name} passes: ${check?.detail}`);
          assert.equal(
            check.detail,
            plainReport.checks.find((c) => c.name === name)!.detail,
            `${name} says what it says for the plain backup`,
          );
        }
        assert.equal(report.memories, MEMORIES);
        assert.equal(report.relationships, RELATIONSHIPS);
        assert.match(
          report.checks.find((c) => c.name === "memories")!.detail,
          new RegExp(`^${MEMORIES} memories valid \\(${DIMS} dims`),
        );
        assert.deepEqual(report.metadata, result.metadata);
      },
    );

    await t.step("a wrong key fails with one clear reason", async () => {
      const wrong = await libraryKey(`${dir}/wrong.txt`);
      const report = await verifyBackup(encrypted, {
        keys: await keysFrom(wrong.file),
      });
      assert.equal(report.ok, false);
      assert.equal(report.contentsVerified, false);
      const failed = report.checks.filter((c) => !c.ok);
      assert.equal(failed.length, 1, JSON.stringify(failed));
      assert.equal(failed[0]!.name, "contents");
      assert.match(report.problem!.file, /\.age$/);
      assert.match(
        report.problem!.reason,
        /^cannot be decrypted with the key given: /,
      );
      assert.ok(!JSON.stringify(report).includes(wrong.secret));
    });

    await t.step(
      "a flipped byte in export.json.zst.age fails the ciphertext check, naming the file",
      async () => {
        const copy = `${dir}/flipped`;
        await copyDir(encrypted, copy);
        await flipByte(`${copy}/${EXPORT_FILE}${AGE_SUFFIX}`, (n) => n >> 1);
        for (const k of [undefined, keys]) {
          const report = await verifyBackup(copy, { keys: k });
          assert.equal(report.ok, false);
          const ciphertext = report.checks.find((c) => c.name === "ciphertext");
          assert.equal(ciphertext?.ok, false);
          assert.equal(ciphertext.problem?.file, "export.json.zst.age");
          assert.match(ciphertext.problem.reason, /^checksum mismatch/);
          assert.deepEqual(report.problem, ciphertext.problem);
          assert.equal(report.contentsVerified, false);
        }
      },
    );

    await t.step(
      "a missing .zst.age file fails, naming it",
      async () => {
        const copy = `${dir}/missing`;
        await copyDir(encrypted, copy);
        await Deno.remove(`${copy}/relationships.db.zst.age`);
        const report = await verifyBackup(copy, { keys });
        assert.equal(report.ok, false);
        assert.deepEqual(report.problem, {
          file: "relationships.db.zst.age",
          reason: "the file is missing",
        });
        assert.equal(report.checks[0]!.name, "encryption");
        assert.equal(report.checks[0]!.ok, false);
      },
    );

    await t.step(
      "sha256sum -c SHA256SUMS passes on the encrypted backup",
      async () => {
        const run = await runCommand("sha256sum", ["-c", SUMS_FILE], {
          cwd: encrypted,
        });
        assert.equal(run.code, 0, run.stdout + run.stderr);
        const checked = run.stdout.trim().split("\n").sort();
        assert.deepEqual(
          checked,
          fileNames(encrypted).filter((n) =>
            n !== CHECKSUMS_FILE && n !== SUMS_FILE
          ).map((n) => `${n}: OK`),
        );
      },
    );

    // Anyone who can alter the ciphertext can recompute the checksums beside
    // it: with a key, age's authentication is what catches that.
    for (const name of [EXPORT_FILE, "metadata.json", "relationships.db"]) {
      await t.step(
        `with the key, ${name}.age altered and re-checksummed is reported, not thrown`,
        async () => {
          const copy = `${dir}/altered-${name}`;
          await copyDir(encrypted, copy);
          await flipByte(`${copy}/${name}${AGE_SUFFIX}`, (n) => n - 20);
          await reseal(copy);
          assert.ok((await verifyBackup(copy)).ok, "the ciphertext is intact");
          const report = await verifyBackup(copy, { keys });
          assert.equal(report.ok, false);
          assert.ok(
            report.problem!.file.startsWith(name),
            `names ${name}: ${JSON.stringify(report.problem)}`,
          );
        },
      );
    }
  });
});

Deno.test("restore() of an encrypted backup, directory or zip, needs the key and restores every record", async (t) => {
  await withTempDir(async (dir) => {
    const { result, digest } = await sourceBackup(dir);
    const key = await libraryKey(`${dir}/key.txt`);
    const encrypted = `${dir}/${result.name}`;
    await encryptBackup(result.path, encrypted, [key.recipient]);
    const zip = `${dir}/${result.name}.zip`;
    await zipBackup(encrypted, zip);
    const keys = await keysFrom(key.file);

    let n = 0;
    const target = async (): Promise<{ root: string; config: Config }> => {
      const root = `${dir}/target-${++n}`;
      await Deno.mkdir(root);
      const config = configFrom({
        RELATIONSHIPS_DB: `${root}/relationships.db`,
        BACKUP_DIR: `${root}/backups`,
      });
      return {
        root,
        config: {
          ...config,
          store: { kind: "pglite", dataDir: `${root}/pglite` },
        },
      };
    };
    const scratchOf = (root: string) => `${root}-scratch`;

    for (const [kind, source] of [["directory", encrypted], ["zip", zip]]) {
      await t.step(
        `from the ${kind} without a key: RestoreError naming AGE_IDENTITY_FILE, nothing written`,
        async () => {
          const { root, config } = await target();
          await assertRejectsWith(
            () =>
              restore({ source: source!, config, scratchDir: scratchOf(root) }),
            RestoreError,
            /^Cannot restore: the backup is encrypted; set AGE_IDENTITY_FILE/,
          );
          assert.deepEqual(fileNames(root), [], "nothing in the target");
          assert.deepEqual(
            fileNames(dir).filter((f) => f.startsWith(`target-${n}-`)),
            [],
            "nothing extracted or decrypted is left",
          );
        },
      );

      await t.step(
        `from the ${kind} with a wrong key: RestoreError, nothing written`,
        async () => {
          const { root, config } = await target();
          const wrong = await libraryKey(`${dir}/wrong-${n}.txt`);
          await assertRejectsWith(
            () =>
              restore({
                source: source!,
                config,
                scratchDir: scratchOf(root),
                keys: { identities: [wrong.secret], passphrase: undefined },
              }),
            RestoreError,
            /^Cannot restore: cannot decrypt the backup with the key given/,
          );
          assert.deepEqual(fileNames(root), [], "nothing in the target");
          assert.deepEqual(
            fileNames(dir).filter((f) => f.startsWith(`target-${n}-`)),
            [],
            "nothing extracted or decrypted is left",
          );
        },
      );

      await t.step(
        `from the ${kind} with the key: the same records as the plain backup`,
        async () => {
          const { root, config } = await target();
          const restored = await restore({
            source: source!,
            config,
            scratchDir: scratchOf(root),
            keys,
          });
          assert.equal(restored.committed, true);
          assert.deepEqual(restored.backup, result.metadata);
          assert.deepEqual(restored.memories, {
            restored: MEMORIES,
            skipped: 0,
            updated: 0,
          });
          assert.deepEqual(restored.relationshipCounts, {
            restored: RELATIONSHIPS,
            skipped: 0,
            updated: 0,
          });
          const store = await openEmbeddedStore(`${root}/pglite`);
          try {
            assert.equal(
              await tableDigest(store, "public.memories"),
              digest,
              "every memory as it was in the source store",
            );
          } finally {
            await store.close();
          }
          const db = new DatabaseSync(`${root}/relationships.db`, {
            readOnly: true,
          });
          try {
            assert.deepEqual(
              {
                ...db.prepare("select count(*) as n from relationships").get(),
              },
              { n: RELATIONSHIPS },
            );
          } finally {
            db.close();
          }
          assert.deepEqual(
            fileNames(dir).filter((f) => f.startsWith(`target-${n}-`)),
            [],
            "the decrypted copy is removed",
          );
        },
      );
    }
  });
});

Deno.test("parseRecipients() reads public keys separated by lines, commas and spaces, with # comments", async (t) => {
  const [a, b, c] = await Promise.all(
    [1, 2, 3].map(async () =>
      await identityToRecipient(await generateX25519Identity())
    ),
  );
  const cases: [string, string, string[]][] = [
    ["one key", `${a}`, [a!]],
    ["one key and a newline", `${a}\n`, [a!]],
    [
      "lines, commas, spaces and comments",
      `# the team\n${a}, ${b}  # laptop\n\n   ${c}   # backup key, ${a}\n`,
      [a!, b!, c!],
    ],
    ["commas without spaces", `${a},${b},${c}`, [a!, b!, c!]],
    ["Windows line ends", `${a}\r\n${b}\r\n`, [a!, b!]],
  ];
  for (const [name, text, expected] of cases) {
    await t.step(name, () => {
      assert.deepEqual(parseRecipients(text), expected);
    });
  }
});

Deno.test("parseRecipients() refuses a secret key without repeating it, and names AGE_RECIPIENTS for anything else", async (t) => {
  await withTempDir(async (dir) => {
    const key = await libraryKey(`${dir}/key.txt`);
    const secretCases: [string, string][] = [
      ["the secret key alone", key.secret],
      ["after a public key", `${key.recipient}\n${key.secret}`],
      ["the whole identity file", await Deno.readTextFile(key.file)],
    ];
    for (const [name, text] of secretCases) {
      await t.step(`a secret key: ${name}`, () => {
        const error = thrown(() => parseRecipients(text));
        assert.ok(error instanceof UsageError, String(error));
        assert.equal(error.setting, "AGE_RECIPIENTS");
        assert.match(
          error.message,
          /^Invalid AGE_RECIPIENTS: recipient \d is a secret key; give the public key/,
        );
        const shown = `${error.message}\n${error.stack}\n${String(error)}`;
        assert.ok(!shown.includes(key.secret), "the secret is not shown");
        assert.ok(
          !shown.includes(key.secret.slice("AGE-SECRET-KEY-1".length, -4)),
          "no part of the secret is shown",
        );
      });
    }
    const badCases: [string, string, RegExp][] = [
      [
        "garbage",
        "not-a-key",
        /^Invalid AGE_RECIPIENTS: recipient 1 "not-a-key" is not an age public key/,
      ],
      [
        "a mangled key after a good one",
        `${key.recipient}, ${key.recipient.slice(0, -1)}${
          key.recipient.endsWith("x") ? "y" : "x"
        }`,
        /^Invalid AGE_RECIPIENTS: recipient 2 "age1\S+" is not an age public key/,
      ],
      [
        "an SSH key",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
        /^Invalid AGE_RECIPIENTS: recipient 1 "ssh-ed25519"/,
      ],
      [
        "comments only",
        "# no key yet\n\n",
        /^Invalid AGE_RECIPIENTS: it holds no recipient/,
      ],
      ["empty", "", /^Invalid AGE_RECIPIENTS: it holds no recipient/],
    ];
    for (const [name, text, pattern] of badCases) {
      await t.step(`not a recipient: ${name}`, () => {
        const error = thrown(() => parseRecipients(text));
        assert.ok(error instanceof UsageError, String(error));
        assert.equal(error.setting, "AGE_RECIPIENTS");
        assert.match(error.message, pattern);
      });
    }
    await t.step("the setting named is the one given", () => {
      assert.throws(
        () => parseRecipients("nope", "RECIPIENTS_FILE"),
        (e: unknown) =>
          e instanceof UsageError && e.setting === "RECIPIENTS_FILE" &&
          /^Invalid RECIPIENTS_FILE: /.test(e.message),
      );
    });
  });
});

Deno.test("deno task publish encrypts the newest backup for upload, and deno task verify checks it with and without the key", async (t) => {
  const checkout: Checkout = await makeCheckout();
  const keyDir = await Deno.makeTempDir({ prefix: "memkeep-key-" });
  const outputs: string[] = [];
  const task = async (args: string[], env: Record<string, string> = {}) => {
    const run = await checkout.deno(["task", ...args], env);
    outputs.push(run.stdout, run.stderr);
    return run;
  };
  try {
    const key = await libraryKey(`${keyDir}/key.txt`);
    const second = await identityToRecipient(await generateX25519Identity());
    const runner = `${checkout.dir}/runner`;
    await Deno.mkdir(runner);
    const github = async (name: string) => {
      const files = {
        GITHUB_OUTPUT: `${runner}/${name}-output`,
        GITHUB_STEP_SUMMARY: `${runner}/${name}-summary.md`,
      };
      // The runner creates both files before the step.
      for (const file of Object.values(files)) {
        await Deno.writeTextFile(file, "");
      }
      return files;
    };
    const outputOf = async (file: string) =>
      Object.fromEntries(
        (await Deno.readTextFile(file)).trim().split("\n").map((line) =>
          line.split("=", 2) as [string, string]
        ),
      );

    const demo = await task([
      "demo",
      "--memories",
      "20",
      "--dims",
      "8",
      "--relationships",
      "5",
    ]);
    assert.equal(demo.code, 0, demo.stderr);
    const names = fileNames(`${checkout.dir}/backups`).filter((n) =>
      BACKUP_NAME.test(n)
    );
    assert.equal(names.length, 1);
    const name = names[0]!;
    const plain = `${checkout.dir}/backups/${name}`;

    await t.step(
      "with AGE_RECIPIENTS: only ciphertext, encryption.json and checksums go up",
      async () => {
        const files = await github("encrypted");
        const run = await task(["publish"], {
          ...files,
          AGE_RECIPIENTS: `# owner\n${key.recipient},\n${second} # spare\n`,
        });
        assert.equal(run.code, 0, run.stderr);
        assert.deepEqual(ownLines(run.stderr), []);
        assert.deepEqual(await outputOf(files.GITHUB_OUTPUT), {
          name,
          path: `./artifacts/${name}`,
          encrypted: "true",
        });
        const artifact = `${checkout.dir}/artifacts/${name}`;
        assert.deepEqual(fileNames(`${checkout.dir}/artifacts`), [name]);
        assert.deepEqual(
          fileNames(artifact),
          [
            ...fileNames(plain).map((n) => `${n}${AGE_SUFFIX}`),
            ENCRYPTION_FILE,
            CHECKSUMS_FILE,
            SUMS_FILE,
          ].sort(),
        );
        const info = JSON.parse(
          await Deno.readTextFile(`${artifact}/${ENCRYPTION_FILE}`),
        );
        assert.deepEqual(info.recipients, [key.recipient, second]);
        // Not one memory id or text is readable in what is uploaded.
        const ids = [
          ...(await Deno.readTextFile(`${plain}/${EXPORT_FILE}`)).matchAll(
            /"id": ?"([^"]+)"/g,
          ),
        ].map((m) => m[1]!);
        assert.ok(ids.length >= 20);
        for (const file of fileNames(artifact)) {
          const text = new TextDecoder().decode(
            await Deno.readFile(`${artifact}/${file}`),
          );
          for (const id of ids) {
            assert.ok(!text.includes(id), `${file} does not show ${id}`);
          }
        }
        const summary = await Deno.readTextFile(files.GITHUB_STEP_SUMMARY);
        assert.match(summary, new RegExp(`^## Memory backup ${name}$`, "m"));
        assert.match(summary, /^\| Memories \| 20 \|$/m);
        assert.match(summary, /^\| Relationships \| 5 \|$/m);
        assert.match(summary, /, 8 dims/);
        assert.match(summary, new RegExp(`\`${name}\`, .*encrypted with age`));
        assert.doesNotMatch(summary, /unencrypted|not encrypted/i);
        assert.ok(run.stdout.includes(summary.trim()), "the summary on stdout");
      },
    );

    await t.step(
      "without AGE_RECIPIENTS: the plain backup, and a warning in the summary",
      async () => {
        const files = await github("plain");
        const run = await task(["publish"], files);
        assert.equal(run.code, 0, run.stderr);
        assert.match(
          ownLines(run.stderr).join("\n"),
          /AGE_RECIPIENTS is not set: the artifact is uploaded unencrypted/,
        );
        assert.deepEqual(await outputOf(files.GITHUB_OUTPUT), {
          name,
          path: `./backups/${name}`,
          encrypted: "false",
        });
        const summary = await Deno.readTextFile(files.GITHUB_STEP_SUMMARY);
        assert.match(summary, /\*\*not encrypted\*\*/);
        assert.match(
          summary,
          /> \[!WARNING\]\n> This backup was uploaded \*\*unencrypted\*\*/,
        );
        assert.match(summary, /Set the `AGE_RECIPIENTS` secret/);
      },
    );

    await t.step(
      "a secret key in AGE_RECIPIENTS is refused with exit code 2, without showing it",
      async () => {
        const files = await github("secret");
        const run = await task(["publish"], {
          ...files,
          AGE_RECIPIENTS: await Deno.readTextFile(key.file),
        });
        assert.equal(run.code, 2, run.stderr);
        assert.match(
          run.stderr,
          /Invalid AGE_RECIPIENTS: recipient 1 is a secret key/,
        );
        assert.equal(await Deno.readTextFile(files.GITHUB_OUTPUT), "");
      },
    );

    // The verify task reads ./backups and ./exports only: check the artifact
    // where a user would put it.
    const copy = `backups/encrypted/${name}`;
    await Deno.mkdir(`${checkout.dir}/backups/encrypted`);
    await copyDir(
      `${checkout.dir}/artifacts/${name}`,
      `${checkout.dir}/${copy}`,
    );

    await t.step(
      "deno task verify without a key: the encrypted backup is intact",
      async () => {
        const run = await task(["verify", copy]);
        assert.equal(run.code, 0, run.stdout + run.stderr);
        assert.match(run.stdout, /✓ encryption: age-encrypted to 2 recipient/);
        assert.match(run.stdout, /✓ ciphertext: ciphertext checksums match/);
        assert.match(
          run.stdout,
          /Encrypted backup is intact \(ciphertext verified; set AGE_IDENTITY_FILE to check its contents\)\./,
        );
      },
    );

    await t.step(
      "deno task verify with AGE_IDENTITY_FILE outside the checkout checks everything",
      async () => {
        const run = await task(["verify", copy, "--json"], {
          AGE_IDENTITY_FILE: key.file,
        });
        assert.equal(run.code, 0, run.stdout + run.stderr);
        const report = JSON.parse(run.stdout);
        assert.equal(report.ok, true);
        assert.equal(report.memories, 20);
        assert.equal(report.relationships, 5);
        assert.deepEqual(
          report.checks.map((c: { name: string; ok: boolean }) =>
            `${c.name} ${c.ok}`
          ),
          [
            "encryption",
            "ciphertext",
            "files",
            "checksums",
            "metadata",
            "header",
            "memories",
            "relationships",
            "snapshot",
          ].map((c) => `${c} true`),
        );
        const text = await task(["verify", copy], {
          AGE_IDENTITY_FILE: key.file,
        });
        assert.equal(text.code, 0, text.stdout + text.stderr);
        assert.match(
          text.stdout,
          /Backup is valid: 20 memories, 5 relationships\./,
        );
      },
    );

    await t.step(
      "deno task verify with someone else's key fails with exit code 1",
      async () => {
        const wrong = await libraryKey(`${keyDir}/wrong.txt`);
        const run = await task(["verify", copy], {
          AGE_IDENTITY_FILE: wrong.file,
        });
        assert.equal(run.code, 1, run.stdout + run.stderr);
        assert.match(
          run.stdout,
          /Backup is NOT valid: \S+\.age: cannot be decrypted with the key given/,
        );
        assert.ok(!outputs.join("\n").includes(wrong.secret));
      },
    );

    assert.ok(
      !outputs.join("\n").includes(key.secret),
      "the secret key is never printed",
    );
  } finally {
    await checkout.remove();
    await Deno.remove(keyDir, { recursive: true });
  }
});
