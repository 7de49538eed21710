import { CoerError } from './codec.js';

/** Input cursor for the COER decoder. `end` is the limit of the current (possibly nested open-type) region. */
export class Reader {
  p: number;
  end: number;

  constructor(
    readonly b: Uint8Array,
    offset = 0,
  ) {
    this.p = offset;
    this.end = b.length;
  }

  /** Throws unless `n` octets remain before `end`; returns the current offset. */
  need(n: number): number {
    const p = this.p;
    if (n > this.end - p) {
      throw new CoerError(
        `needs ${n} octet${n === 1 ? '' : 's'} but only ${this.end - p} remain${this.end < this.b.length ? ' in the enclosing length' : ''}`,
        '',
        p,
      );
    }
    return p;
  }

  u8(): number {
    if (this.p >= this.end) this.need(1);
    return this.b[this.p++]!;
  }

  /** A view (not a copy) of the next `n` octets. */
  view(n: number): Uint8Array {
    const p = this.need(n);
    this.p = p + n;
    return this.b.subarray(p, p + n);
  }

  /** A copy of the next `n` octets. */
  copy(n: number): Uint8Array {
    const p = this.need(n);
    this.p = p + n;
    return this.b.slice(p, p + n);
  }
}
