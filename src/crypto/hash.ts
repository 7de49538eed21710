// Hash functions and HashedId values (IEEE 1609.2 5.3.3, 6.3.x HashedId8/HashedId10/HashedId3).
import * as nodeCrypto from 'node:crypto';
import { createHash } from 'node:crypto';

// One-shot crypto.hash (Node >= 20.12) costs about half of createHash().update().digest() for short inputs.
const oneShot = (nodeCrypto as { hash?: (alg: string, data: Uint8Array, enc: 'buffer') => Buffer }).hash;

/** Hash algorithms of 1609.2 HashAlgorithm used with the supported curves. */
export type HashAlgorithm = 'sha256' | 'sha384';

export function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(oneShot ? oneShot('sha256', data, 'buffer') : createHash('sha256').update(data).digest());
}

export function sha384(data: Uint8Array): Uint8Array {
  return new Uint8Array(oneShot ? oneShot('sha384', data, 'buffer') : createHash('sha384').update(data).digest());
}

export function hash(alg: HashAlgorithm, data: Uint8Array): Uint8Array {
  return alg === 'sha256' ? sha256(data) : sha384(data);
}

/** Output length in octets. */
export function hashLength(alg: HashAlgorithm): number {
  return alg === 'sha256' ? 32 : 48;
}

/** HashedId8: the low-order (last) 8 octets of the hash of the input (1609.2 6.3.x). */
export function hashedId8(data: Uint8Array, alg: HashAlgorithm = 'sha256'): Uint8Array {
  return hash(alg, data).slice(-8);
}

/** HashedId10: the last 10 octets of the hash of the input. */
export function hashedId10(data: Uint8Array, alg: HashAlgorithm = 'sha256'): Uint8Array {
  return hash(alg, data).slice(-10);
}

/** HashedId3: the last 3 octets of the hash of the input. */
export function hashedId3(data: Uint8Array, alg: HashAlgorithm = 'sha256'): Uint8Array {
  return hash(alg, data).slice(-3);
}
