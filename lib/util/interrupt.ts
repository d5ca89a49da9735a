/**
 * Ctrl-C without leftovers: work in progress registers how to remove what
 * it has made (a temporary directory, a half-written copy); when SIGINT or
 * SIGTERM arrives, those steps run and the process ends (exit code 130 or
 * 143). A step that must not be cut in two (a restore's two commits) runs
 * {@linkcode uninterrupted}: a signal then waits until it is done. A
 * transaction needs no step: the database rolls it back when the
 * connection closes.
 *
 * The command-line layer installs the handler ({@linkcode stopOnInterrupt});
 * library code only registers steps.
 *
 * @module
 */

const steps = new Map<number, () => void>();
let next = 0;
let critical = 0;
let pending: Deno.Signal | undefined;
let stop: ((signal: Deno.Signal, steps: number) => void) | undefined;

/**
 * Registers a clean-up step for an interruption, until the returned handle
 * is disposed (`using`): by then the work has cleaned up after itself.
 *
 * @param step Removes what the work made; synchronous, since the process
 * ends right after it.
 * @returns A handle that unregisters the step.
 */
export function onInterrupt(step: () => void): Disposable {
  const id = next++;
  steps.set(id, step);
  return { [Symbol.dispose]: () => steps.delete(id) };
}

/**
 * Removes a path (file or directory tree) on interruption.
 *
 * @param path What the work is making.
 * @returns A handle that unregisters it.
 */
export function removeOnInterrupt(path: string): Disposable {
  return onInterrupt(() => Deno.removeSync(path, { recursive: true }));
}

/**
 * Runs work that an interruption must not cut in two; a signal that
 * arrives meanwhile takes effect when it is done.
 *
 * @param work The work.
 * @returns What it returns.
 */
export async function uninterrupted<T>(work: () => Promise<T>): Promise<T> {
  critical++;
  try {
    return await work();
  } finally {
    critical--;
    if (critical === 0 && pending !== undefined) halt(pending);
  }
}

/**
 * Installs the handler for SIGINT and SIGTERM (once per process): it runs
 * every registered step, newest first, then calls `onStop`, which ends the
 * process.
 *
 * @param onStop Told the signal and how many steps ran; must not return.
 */
export function stopOnInterrupt(
  onStop: (signal: Deno.Signal, steps: number) => void,
): void {
  if (stop !== undefined) {
    stop = onStop;
    return;
  }
  stop = onStop;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => {
      if (pending !== undefined) return; // already stopping
      pending = signal;
      if (critical === 0) halt(signal);
    });
  }
}

function halt(signal: Deno.Signal): void {
  const pendingSteps = [...steps.values()].reverse();
  steps.clear();
  for (const step of pendingSteps) {
    try {
      step();
    } catch {
      // best effort: what is left is named as temporary
    }
  }
  stop?.(signal, pendingSteps.length);
}
