// KDF2 with SHA-256 (IEEE 1363a / ANSI X9.63), as 1609.2 5.3.5 uses it in ECIES:
// K = Hash(Z || Counter(1)) || Hash(Z || Counter(2)) || ... truncated to the length, Counter a 32-bit big-endian
// integer starting at 1, each block hashing Z || Counter || P.
import { sha256 } from './hash.js';

export function kdf2Sha256(sharedSecret: Uint8Array, kdp: Uint8Array, length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 0) throw new RangeError('length');
  const out = new Uint8Array(length);
  // One buffer Z || Counter || P, the counter rewritten in place for each block (one-shot hashes).
  const input = new Uint8Array(sharedSecret.length + 4 + kdp.length);
  input.set(sharedSecret, 0);
  input.set(kdp, sharedSecret.length + 4);
  const view = new DataView(input.buffer);
  try {
    for (let counter = 1, off = 0; off < length; counter++, off += 32) {
      view.setUint32(sharedSecret.length, counter);
      const block = sha256(input);
      out.set(block.subarray(0, Math.min(32, length - off)), off);
      block.fill(0);
    }
  } finally {
    input.fill(0);
  }
  return out;
}
