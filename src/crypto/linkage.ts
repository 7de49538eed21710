// Linkage values (IEEE 1609.2.1 linkage authority, CAMP lv.txt / glv.txt):
//   ls(i+1)   = SHA-256(la_id || ls(i) || 0^112)[0:16]                    (la_id 16 bits, seeds 128 bits)
//   plv(i, j) = [AES_{ls(i)}(la_id || j || 0^80) XOR (la_id || j || 0^80)][0:9]   (j 32 bits)
//   lv(i, j)  = plv_1(i, j) XOR plv_2(i, j)                                (9 octets, LinkageValue)
// Group linkage values use the same construction with group seeds gs(i) (gplv, glv), and the encrypted
// indices are ei(j, k) = AES_ik(k || j || 0^64) XOR (k || j || 0^64) (16 octets; byte order as in glv.txt,
// see README.md).
import { createCipheriv, createHash } from 'node:crypto';
import { concat, uint32 } from './bytes.js';

export const LINKAGE_VALUE_LENGTH = 9;

function checkLaId(laId: Uint8Array): void {
  if (laId.length !== 2) throw new RangeError('la_id must be 2 octets');
}
function checkSeed(seed: Uint8Array): void {
  if (seed.length !== 16) throw new RangeError('linkage seed must be 16 octets');
}

function aesEcb(key: Uint8Array, blocks: Uint8Array): Uint8Array {
  const c = createCipheriv('aes-128-ecb', key, null);
  c.setAutoPadding(false);
  return new Uint8Array(c.update(blocks));
}

/** ls(i+1) from ls(i) (also gs(i+1) from gs(i)). */
export function nextLinkageSeed(laId: Uint8Array, seed: Uint8Array): Uint8Array {
  checkLaId(laId);
  checkSeed(seed);
  const h = createHash('sha256').update(laId).update(seed).update(new Uint8Array(14)).digest();
  return new Uint8Array(h.subarray(0, 16));
}

/** ls(i) from ls(i0) by applying the seed step (i - i0) times. */
export function linkageSeedAt(laId: Uint8Array, seed: Uint8Array, steps: number): Uint8Array {
  if (!Number.isInteger(steps) || steps < 0) throw new RangeError('steps');
  let s = seed;
  for (let n = 0; n < steps; n++) s = nextLinkageSeed(laId, s);
  return s;
}

/** plv(i, j) for many j with one AES call (ls = ls(i)). Also gplv with a group seed. */
export function preLinkageValues(laId: Uint8Array, seed: Uint8Array, js: readonly number[]): Uint8Array[] {
  checkLaId(laId);
  checkSeed(seed);
  const inputs = new Uint8Array(16 * js.length);
  js.forEach((j, n) => inputs.set(concat(laId, uint32(j)), 16 * n)); // rest stays 0^80
  const out = aesEcb(seed, inputs);
  return js.map((_, n) => {
    const v = new Uint8Array(LINKAGE_VALUE_LENGTH);
    for (let b = 0; b < LINKAGE_VALUE_LENGTH; b++) v[b] = out[16 * n + b]! ^ inputs[16 * n + b]!;
    return v;
  });
}

/** plv(i, j) (ls = ls(i)). */
export function preLinkageValue(laId: Uint8Array, seed: Uint8Array, j: number): Uint8Array {
  return preLinkageValues(laId, seed, [j])[0]!;
}

/** lv = XOR of the pre-linkage values from the LAs (two in 1609.2.1). */
export function linkageValue(...plvs: Uint8Array[]): Uint8Array {
  if (plvs.length < 2) throw new RangeError('need at least two pre-linkage values');
  const out = new Uint8Array(LINKAGE_VALUE_LENGTH);
  for (const p of plvs) {
    if (p.length !== LINKAGE_VALUE_LENGTH) throw new RangeError('pre-linkage value must be 9 octets');
    for (let b = 0; b < LINKAGE_VALUE_LENGTH; b++) out[b]! ^= p[b]!;
  }
  return out;
}

/** Group pre-linkage value gplv(i, j) with group seed gs(i): same construction as plv. */
export const groupPreLinkageValue = preLinkageValue;

/** ei(j, k) = AES_ik(k || j || 0^64) XOR (k || j || 0^64); k = group chain identifier, both 32 bits. */
export function encryptedIndex(ik: Uint8Array, j: number, k: number): Uint8Array {
  checkSeed(ik);
  const input = concat(uint32(k), uint32(j), new Uint8Array(8));
  const out = aesEcb(ik, input);
  for (let b = 0; b < 16; b++) out[b]! ^= input[b]!;
  return out;
}
