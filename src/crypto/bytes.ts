// Byte and integer helpers shared by the crypto modules (big-endian, as in 1609.2 6.1).

/** Concatenate byte strings. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = new Uint8Array(len);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Big-endian unsigned integer from bytes. */
export function bytesToBigInt(b: Uint8Array): bigint {
  if (b.length === 0) return 0n;
  return BigInt('0x' + Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex'));
}

/** Big-endian fixed-length encoding of a non-negative integer; throws if it does not fit. */
export function bigIntToBytes(x: bigint, length: number): Uint8Array {
  if (x < 0n) throw new RangeError('negative integer');
  const hex = x.toString(16).padStart(length * 2, '0');
  if (hex.length > length * 2) throw new RangeError(`integer does not fit in ${length} octets`);
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** Unsigned 32-bit big-endian encoding. */
export function uint32(x: number): Uint8Array {
  if (!Number.isInteger(x) || x < 0 || x > 0xffffffff) throw new RangeError(`not a uint32: ${x}`);
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, x);
  return out;
}

/** XOR of two equal-length byte strings. */
export function xor(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length !== b.length) throw new RangeError('xor: length mismatch');
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

/** Constant-time equality of two byte strings (length is not secret). */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

/** Overwrite a secret buffer with zeros. */
export function wipe(b: Uint8Array): void {
  b.fill(0);
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');
}

export function fromHex(h: string): Uint8Array {
  const s = h.startsWith('0x') || h.startsWith('0X') ? h.slice(2) : h;
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) throw new RangeError('invalid hex');
  return new Uint8Array(Buffer.from(s, 'hex'));
}
