// Random scalars from node:crypto (OpenSSL CSPRNG).
import { randomBytes } from 'node:crypto';
import { bytesToBigInt } from './bytes.js';
import { curve, type CurveName } from './curves.js';

/** Uniform random integer in [1, n-1] by rejection sampling (n = order of the curve's base point). */
export function randomScalar(name: CurveName): bigint {
  const c = curve(name);
  const bits = c.n.toString(2).length;
  const mask = (1n << BigInt(bits)) - 1n;
  for (;;) {
    const k = bytesToBigInt(randomBytes(c.size)) & mask;
    if (k >= 1n && k < c.n) return k;
  }
}

/** Random octets (for AES keys, nonces). */
export function randomOctets(length: number): Uint8Array {
  return new Uint8Array(randomBytes(length));
}
