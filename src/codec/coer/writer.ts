/** A growable output buffer for the COER encoder; one instance is reused across encode calls. */
export class Writer {
  buf: Uint8Array;
  pos = 0;

  constructor(size = 1024) {
    this.buf = new Uint8Array(size);
  }

  /** Makes room for `n` more octets. */
  ensure(n: number): void {
    const need = this.pos + n;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  u8(b: number): void {
    if (this.pos >= this.buf.length) this.ensure(1);
    this.buf[this.pos++] = b;
  }

  bytes(src: Uint8Array): void {
    this.ensure(src.length);
    this.buf.set(src, this.pos);
    this.pos += src.length;
  }

  /** Writes `n` zero octets and returns the offset of the first one. */
  zeros(n: number): number {
    this.ensure(n);
    const at = this.pos;
    this.buf.fill(0, at, at + n);
    this.pos += n;
    return at;
  }

  /** A copy of the bytes written so far. */
  result(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}
