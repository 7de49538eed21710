// Random scalars from node:crypto (OpenSSL CSPRNG).
import { randomBytes, randomFillSync } from 'node:crypto';
import { bytesToBigInt } from './bytes.js';
import { curve, type CurveName } from './curves.js';

/** Uniform random integer in [1, n-1] by rejection sampling (n = order of the curve's base point). */
export function randomScalar(name: CurveName): bigint {
  const c = curve(name);
  const bits = c.n.toString(2).length;
  const mask = (1n << BigInt(bits)) - 1n;
  for (;;) {
    const k = bytesToBigInt(poolOctets(c.size)) & mask;
    if (k >= 1n && k < c.n) return k;
  }
}

// Scalars are drawn from a small pool filled by the CSPRNG (one OpenSSL call per 64 scalars instead of one each);
// octets are zeroed as soon as they are handed out.
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;

function poolOctets(n: number): Uint8Array {
  if (poolOffset + n > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const out = new Uint8Array(pool.subarray(poolOffset, poolOffset + n));
  pool.fill(0, poolOffset, poolOffset + n);
  poolOffset += n;
  return out;
}

/** Random octets (for AES keys, nonces); short ones come from the pool below. */
export function randomOctets(length: number): Uint8Array {
  return length <= 64 ? poolOctets(length) : new Uint8Array(randomBytes(length));
}
