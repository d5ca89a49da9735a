/**
 * One value read from `export.json`, as `readExport` yields it: its
 * exact text, and its parsed value and top-level fields, each computed once
 * and only when asked for.
 *
 * @module
 */

import type { ExportSection } from "./scan.ts";
import { recordFields } from "./scan.ts";
import type { RawRecord } from "../records.ts";

/** One value read from `export.json`. */
export interface ExportEntry {
  /** `metadata` (the header), or a record of `memories` or `relationships`. */
  readonly section: ExportSection;
  /** The value's exact source text. */
  readonly text: string;
  /** The value, parsed (when first asked for, with `verified`). */
  readonly value: unknown;
  /** A record's top-level fields as exact source text (when first asked for). */
  readonly fields: RawRecord;
  /** The 1-based line it starts on. */
  readonly line: number;
}

/** An entry whose parsed value and fields are computed once, when asked for. */
export class Entry implements ExportEntry {
  #value: unknown;
  #parsed: boolean;
  #fields: RawRecord | undefined;

  constructor(
    readonly section: ExportSection,
    readonly text: string,
    readonly line: number,
    parsed: { value: unknown } | { fields: RawRecord },
  ) {
    this.#parsed = "value" in parsed;
    if ("value" in parsed) this.#value = parsed.value;
    else this.#fields = parsed.fields;
  }

  get value(): unknown {
    if (!this.#parsed) {
      this.#value = JSON.parse(this.text);
      this.#parsed = true;
    }
    return this.#value;
  }

  get fields(): RawRecord {
    return this.#fields ??= recordFields(this.text);
  }
}
