/**
 * Reads the stream postgres.js gives for `COPY … TO STDOUT`, with bounded
 * buffering.
 *
 * Iterating that stream directly stalls under Deno once the data outruns the
 * reader: postgres.js pauses the socket when the stream's buffer is full and
 * resumes it only from the stream's `read()`, which Deno's stream may have
 * called already, so the socket stays paused and the COPY never ends (seen
 * at 1,000 rows of 384 dims). Here the stream flows into a queue; past
 * {@linkcode HIGH} bytes the stream is paused, and once the reader has taken
 * the queue below {@linkcode LOW} it is resumed and the socket woken.
 *
 * @module
 */

import type { Readable } from "node:stream";

/** Queued bytes past which the stream is paused. */
const HIGH = 4 << 20;
/** Queued bytes below which it is resumed. */
const LOW = 1 << 20;

/**
 * The stream's chunks, as the reader takes them.
 *
 * @param stream The COPY stream.
 * @param finished Settles when the server has ended the COPY (rejects with
 * its reason: a timeout, a lost connection).
 * @returns The chunks; throws what the stream or the server reports.
 */
export async function* copyChunks(
  stream: Readable,
  finished: Promise<void>,
): AsyncGenerator<Uint8Array> {
  const queue: Uint8Array[] = [];
  let queued = 0;
  let ended = false;
  let failure: { error: unknown } | undefined;
  let discard = false;
  let wake: (() => void) | undefined;
  const notify = () => {
    wake?.();
    wake = undefined;
  };
  stream.on("data", (chunk: Uint8Array) => {
    if (discard) return;
    queue.push(chunk);
    queued += chunk.length;
    if (queued > HIGH) stream.pause();
    notify();
  });
  stream.on("end", () => {
    ended = true;
    notify();
  });
  const failed = (error: unknown) => {
    failure ??= { error };
    notify();
  };
  stream.on("error", failed);
  finished.catch(failed);
  const wakeSocket = () => {
    stream.resume();
    // postgres.js's read() resumes its socket, which is null once the
    // connection has dropped: the COPY's own promise then rejects with the
    // server's or the network's reason, which is the one to report.
    try {
      (stream as unknown as { _read(size: number): void })._read(0);
    } catch {
      // the connection is gone; `finished` says why
    }
  };
  wakeSocket();
  try {
    while (true) {
      const chunk = queue.shift();
      if (chunk) {
        queued -= chunk.length;
        if (stream.isPaused() && queued < LOW) wakeSocket();
        yield chunk;
        continue;
      }
      if (failure) throw failure.error;
      if (ended) {
        await finished; // the server's verdict on the whole COPY
        return;
      }
      await new Promise<void>((resolve) => wake = resolve);
    }
  } finally {
    if (!ended && !failure) {
      // Stopped early: drop what still comes.
      discard = true;
      queue.length = 0;
      wakeSocket();
      // The session takes no other query until the COPY has ended (a
      // cancelled COPY leaves postgres.js refusing every later query).
      await finished.catch(() => {});
    }
  }
}
