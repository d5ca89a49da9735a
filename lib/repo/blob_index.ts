/**
 * The index in memory: where each blob is, for every blob the index files
 * list, in flat typed arrays rather than one object per blob. A blob costs
 * about 85 bytes (its SHA-256 as 32 bytes, its place as 25, a map entry
 * keyed by 30 bits of the hash, chained on a clash) where an object and its
 * hex id cost about 250: 300,000 blobs (42 nights of a 38,664-memory store)
 * take 26 MB, and ten times the store about 255 MB.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { BlobEntry, BlobType } from "./layout.ts";
import { BLOB_TYPES } from "./layout.ts";

/** Where a blob is. */
export interface BlobPlace extends BlobEntry {
  readonly pack: string;
}

const NONE = -1;
const SHA256 = /^[0-9a-f]{64}$/;

/** Hex digit → value, by character code. */
const HEX = new Uint8Array(128);
for (let i = 0; i < 16; i++) HEX["0123456789abcdef".charCodeAt(i)] = i;

/** The map key of a hash: its first 30 bits (a small integer in V8). */
function keyOf(hash: Uint8Array): number {
  return (hash[0]! << 22 | hash[1]! << 14 | hash[2]! << 6 | hash[3]! >> 2) >>>
    0;
}

/** Blob id → place. */
export class BlobIndex {
  #packs: string[] = [];
  #packSlots = new Map<string, number>();
  #count = 0;
  #capacity = 0;
  #hashes = new Uint8Array(0);
  #pack = new Uint32Array(0);
  #type = new Uint8Array(0);
  #offset = new Uint32Array(0);
  #length = new Uint32Array(0);
  #raw = new Uint32Array(0);
  #at = new Int32Array(0);
  /** The next slot whose hash starts with the same 30 bits. */
  #next = new Int32Array(0);
  #first = new Map<number, number>();
  #scratch = new Uint8Array(32);

  /** How many blobs it lists. */
  get size(): number {
    return this.#count;
  }

  /** Forgets every blob. */
  clear(): void {
    this.#packs = [];
    this.#packSlots.clear();
    this.#first.clear();
    this.#count = 0;
  }

  /**
   * Lists a blob (a later place of the same blob replaces the earlier).
   *
   * @param pack The pack holding it.
   * @param blob Where in the pack.
   */
  set(pack: string, blob: BlobEntry): void {
    this.setRaw(
      pack,
      this.#parse(blob.id),
      blob.type,
      blob.offset,
      blob.length,
      blob.raw_length,
      blob.at ?? NONE,
    );
  }

  /**
   * {@linkcode BlobIndex.set} from the binary index: the hash as bytes.
   *
   * @param pack The pack holding it.
   * @param hash Its SHA-256 (32 bytes, copied).
   * @param type What it holds.
   * @param offset Where in the pack.
   * @param length Its stored length.
   * @param raw Its length decompressed.
   * @param at Its place in its frame, or −1.
   */
  setRaw(
    pack: string,
    hash: Uint8Array,
    type: BlobType,
    offset: number,
    length: number,
    raw: number,
    at: number,
  ): void {
    let slot = this.#find(hash);
    if (slot === NONE) {
      if (this.#count === this.#capacity) this.#grow();
      slot = this.#count++;
      this.#hashes.set(hash, slot * 32);
      const key = keyOf(hash);
      this.#next[slot] = this.#first.get(key) ?? NONE;
      this.#first.set(key, slot);
    }
    let packSlot = this.#packSlots.get(pack);
    if (packSlot === undefined) {
      packSlot = this.#packs.push(pack) - 1;
      this.#packSlots.set(pack, packSlot);
    }
    this.#pack[slot] = packSlot;
    this.#type[slot] = BLOB_TYPES.indexOf(type);
    this.#offset[slot] = offset;
    this.#length[slot] = length;
    this.#raw[slot] = raw;
    this.#at[slot] = at;
  }

  /** Whether it lists a blob. */
  has(id: string): boolean {
    return SHA256.test(id) && this.#find(this.#parse(id)) !== NONE;
  }

  /** Where a blob is, if it is listed. */
  get(id: string): BlobPlace | undefined {
    if (!SHA256.test(id)) return undefined;
    const slot = this.#find(this.#parse(id));
    return slot === NONE ? undefined : this.#place(slot, id);
  }

  /** A hex id as bytes, in a scratch buffer (no allocation a blob). */
  #parse(id: string): Uint8Array {
    const out = this.#scratch;
    for (let i = 0; i < 32; i++) {
      out[i] = HEX[id.charCodeAt(2 * i)]! << 4 | HEX[id.charCodeAt(2 * i + 1)]!;
    }
    return out;
  }

  /** Every blob listed. */
  *values(): Generator<BlobPlace> {
    for (let slot = 0; slot < this.#count; slot++) yield this.#place(slot);
  }

  #place(slot: number, id?: string): BlobPlace {
    const at = this.#at[slot]!;
    return {
      id: id ??
        Buffer.from(this.#hashes.buffer, slot * 32, 32).toString("hex"),
      type: BLOB_TYPES[this.#type[slot]!] as BlobType,
      offset: this.#offset[slot]!,
      length: this.#length[slot]!,
      raw_length: this.#raw[slot]!,
      ...(at === NONE ? {} : { at }),
      pack: this.#packs[this.#pack[slot]!]!,
    };
  }

  #find(hash: Uint8Array): number {
    let slot = this.#first.get(keyOf(hash)) ?? NONE;
    while (slot !== NONE) {
      if (this.#equal(slot, hash)) return slot;
      slot = this.#next[slot]!;
    }
    return NONE;
  }

  #equal(slot: number, hash: Uint8Array): boolean {
    const base = slot * 32;
    for (let i = 0; i < 32; i++) {
      if (this.#hashes[base + i] !== hash[i]) return false;
    }
    return true;
  }

  #grow(): void {
    // By a quarter: at its peak the index holds 2.25 times its blobs'
    // worth of arrays (old and new), not 3 times as doubling would.
    const capacity = Math.max(1024, Math.ceil(this.#capacity * 1.25));
    const grown = <T extends Uint8Array | Uint32Array | Int32Array>(
      old: T,
      make: (n: number) => T,
      per = 1,
    ): T => {
      const next = make(capacity * per);
      next.set(old.subarray(0, this.#count * per) as never);
      return next;
    };
    this.#hashes = grown(this.#hashes, (n) => new Uint8Array(n), 32);
    this.#pack = grown(this.#pack, (n) => new Uint32Array(n));
    this.#type = grown(this.#type, (n) => new Uint8Array(n));
    this.#offset = grown(this.#offset, (n) => new Uint32Array(n));
    this.#length = grown(this.#length, (n) => new Uint32Array(n));
    this.#raw = grown(this.#raw, (n) => new Uint32Array(n));
    this.#at = grown(this.#at, (n) => new Int32Array(n));
    this.#next = grown(this.#next, (n) => new Int32Array(n));
    this.#capacity = capacity;
  }
}
