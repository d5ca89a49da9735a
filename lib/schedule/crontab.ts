/**
 * The user's crontab, read and written with the `crontab` program. The
 * crontab is handled as a binary string (one char per byte), so that a line
 * in any encoding is written back byte for byte; only memkeep's own line is
 * UTF-8 text, converted by {@linkcode binary}.
 *
 * @module
 */

/**
 * The user's crontab, as a binary string; empty when there is none yet.
 *
 * @returns The crontab.
 * @throws {Error} When `crontab -l` fails for another reason.
 */
export async function readCrontab(): Promise<string> {
  const out = await crontab(["-l"]);
  if (out.code === 0) return out.stdout;
  const reason = text(out.stderr).trim();
  // "no crontab for USER", exit 1: there is none yet.
  if (/no crontab for/i.test(reason)) return "";
  throw new Error(
    `Cannot read your crontab: crontab -l failed: ${
      reason || `exit code ${out.code}`
    }`,
  );
}

/**
 * Replaces the user's crontab.
 *
 * @param crontabText The new crontab, as a binary string.
 * @throws {Error} When `crontab -` fails.
 */
export async function writeCrontab(crontabText: string): Promise<void> {
  const out = await crontab(["-"], crontabText);
  if (out.code !== 0) {
    const reason = text(out.stderr).trim();
    throw new Error(
      `Cannot write your crontab: crontab - failed: ${
        reason || `exit code ${out.code}`
      }`,
    );
  }
}

async function crontab(
  args: string[],
  stdin?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  let child;
  try {
    child = new Deno.Command("crontab", {
      args,
      stdin: stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error(
        `Cannot run "crontab": it is not installed or not on PATH; install cron, or schedule the job yourself with --print (crontab line) or --print --systemd (systemd timer)`,
        { cause: error },
      );
    }
    throw error;
  }
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(bytes(stdin));
    await writer.close();
  }
  const out = await child.output();
  return {
    code: out.code,
    stdout: fromBytes(out.stdout),
    stderr: fromBytes(out.stderr),
  };
}

function fromBytes(data: Uint8Array): string {
  let result = "";
  for (let i = 0; i < data.length; i += 0x8000) {
    result += String.fromCharCode(...data.subarray(i, i + 0x8000));
  }
  return result;
}

function bytes(binaryText: string): Uint8Array {
  return Uint8Array.from(binaryText, (c) => c.charCodeAt(0));
}

/** UTF-8 text as a binary string. */
export function binary(utf8Text: string): string {
  return fromBytes(new TextEncoder().encode(utf8Text));
}

/** A binary string as text, for printing. */
export function text(binaryText: string): string {
  return new TextDecoder().decode(bytes(binaryText));
}
