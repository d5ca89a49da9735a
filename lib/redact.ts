/**
 * Keeps credentials out of every message, log line and file memkeep writes.
 * Secrets are registered once (the password of `DATABASE_URL`, tokens) and
 * every string bound for output passes through {@linkcode redact}.
 *
 * @module
 */

const secrets = new Map<string, RegExp>();

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)([^/\s:@]*)(:[^@\s]*)?@/gi;

/**
 * Remembers a secret so that {@linkcode redact} removes it from any text.
 * Strings shorter than 4 characters are ignored: they would blank out
 * ordinary words.
 *
 * @param secret The secret value, e.g. a password or token.
 */
export function registerSecret(secret: string | undefined): void {
  if (secret === undefined || secret.length < 4) return;
  for (const form of new Set([secret, encodeURIComponent(secret)])) {
    // Not inside a longer word: a password "postgres" must not turn
    // "postgresql://" into "***ql://".
    secrets.set(
      form,
      new RegExp(`(?<![\\w])${escapeRegExp(form)}(?![\\w])`, "g"),
    );
  }
}

/**
 * Removes credentials from text: the password part of any URL, and every
 * registered secret.
 *
 * @param text Text bound for output.
 * @returns The text with `***` in place of each secret.
 */
export function redact(text: string): string {
  let out = text.replace(
    URL_CREDENTIALS,
    (_m, scheme: string, user: string, pass: string | undefined) =>
      `${scheme}${user}${pass === undefined ? "" : ":***"}@`,
  );
  for (const [secret, pattern] of secrets) {
    if (out.includes(secret)) out = out.replace(pattern, "***");
  }
  return out;
}
