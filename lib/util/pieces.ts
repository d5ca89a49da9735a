/**
 * Text queued in pieces and encoded as UTF-8 piece by piece into one reused
 * buffer.
 *
 * Why pieces: V8 keeps a string of Latin-1 characters one byte per
 * character, and encodes it about 60 times faster than a two-byte string.
 * Joined first, one piece outside Latin-1 (a memory's emoji) would put every
 * other piece (its vector, 1536 numbers) on the slow path. Why one buffer:
 * `encode()` allocates each time; the garbage was most of a backup's GC.
 *
 * @module
 */

const encoder = new TextEncoder();

/** Queued text, encoded on {@linkcode PieceEncoder.take}. */
export class PieceEncoder {
  #pieces: string[] = [];
  #chars = 0;
  #buffer = new Uint8Array(0);

  /** UTF-16 units queued. */
  get chars(): number {
    return this.#chars;
  }

  /**
   * Queues a piece.
   *
   * @param piece The text.
   */
  add(piece: string): void {
    this.#pieces.push(piece);
    this.#chars += piece.length;
  }

  /**
   * The queued text as UTF-8, and the queue emptied.
   *
   * @returns The bytes: a view of the reused buffer, valid until the next
   * call (write it out before taking again).
   */
  take(): Uint8Array {
    // UTF-8 takes at most three bytes per UTF-16 unit.
    if (this.#chars * 3 > this.#buffer.length) {
      this.#buffer = new Uint8Array(this.#chars * 3);
    }
    let written = 0;
    for (const piece of this.#pieces) {
      written += encoder.encodeInto(piece, this.#buffer.subarray(written))
        .written;
    }
    this.#pieces = [];
    this.#chars = 0;
    return this.#buffer.subarray(0, written);
  }
}
