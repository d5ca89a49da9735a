/**
 * Shared by the permission probes: tries each access and reports on stderr
 * `PROBE {...}`, each attempt's outcome as the error's name or `allowed`.
 *
 * @module
 */

/**
 * Runs the attempts and prints the outcomes.
 *
 * @param attempts What to try, by name.
 */
export async function reportProbe(
  attempts: Record<string, () => Promise<unknown>>,
): Promise<void> {
  const outcome: Record<string, string> = {};
  for (const [name, attempt] of Object.entries(attempts)) {
    try {
      await attempt();
      outcome[name] = "allowed";
    } catch (error) {
      outcome[name] = error instanceof Error ? error.name : String(error);
    }
  }
  // deno-lint-ignore no-console
  console.error(`PROBE ${JSON.stringify(outcome)}`);
}
