// KDF2 with SHA-256 (IEEE 1363a / ANSI X9.63), as 1609.2 5.3.5 uses it in ECIES:
// K = Hash(Z || Counter(1)) || Hash(Z || Counter(2)) || ... truncated to the length, Counter a 32-bit big-endian
// integer starting at 1, each block hashing Z || Counter || P.
import { createHash } from 'node:crypto';
import { uint32 } from './bytes.js';

export function kdf2Sha256(sharedSecret: Uint8Array, kdp: Uint8Array, length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 0) throw new RangeError('length');
  const out = new Uint8Array(length);
  for (let counter = 1, off = 0; off < length; counter++, off += 32) {
    const block = createHash('sha256').update(sharedSecret).update(uint32(counter)).update(kdp).digest();
    out.set(block.subarray(0, Math.min(32, length - off)), off);
  }
  return out;
}
