// AES-128-CCM as 1609.2 5.3.8 uses it: 16-octet key, 12-octet nonce, 16-octet tag, no associated data.
// Output is ciphertext || tag.
import { createCipheriv, createDecipheriv } from 'node:crypto';

export const AES_CCM_NONCE_LENGTH = 12;
export const AES_CCM_TAG_LENGTH = 16;

/** Thrown when the CCM tag does not verify (wrong key, nonce, or tampered ciphertext). */
export class AesCcmDecryptionError extends Error {
  constructor() {
    super('AES-CCM decryption failed: authentication tag mismatch');
    this.name = 'AesCcmDecryptionError';
  }
}

function check(key: Uint8Array, nonce: Uint8Array): void {
  if (key.length !== 16) throw new RangeError('AES-128-CCM key must be 16 octets');
  if (nonce.length !== AES_CCM_NONCE_LENGTH) throw new RangeError('AES-CCM nonce must be 12 octets');
}

export function aesCcmEncrypt(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array): Uint8Array {
  check(key, nonce);
  const c = createCipheriv('aes-128-ccm', key, nonce, { authTagLength: AES_CCM_TAG_LENGTH });
  const body = c.update(plaintext);
  c.final();
  const out = new Uint8Array(body.length + AES_CCM_TAG_LENGTH);
  out.set(body, 0);
  out.set(c.getAuthTag(), body.length);
  return out;
}

export function aesCcmDecrypt(key: Uint8Array, nonce: Uint8Array, ciphertextAndTag: Uint8Array): Uint8Array {
  check(key, nonce);
  if (ciphertextAndTag.length < AES_CCM_TAG_LENGTH) throw new AesCcmDecryptionError();
  const n = ciphertextAndTag.length - AES_CCM_TAG_LENGTH;
  const d = createDecipheriv('aes-128-ccm', key, nonce, { authTagLength: AES_CCM_TAG_LENGTH });
  d.setAuthTag(ciphertextAndTag.subarray(n));
  let body: Buffer | undefined;
  try {
    body = d.update(ciphertextAndTag.subarray(0, n));
    d.final();
  } catch {
    body?.fill(0);
    throw new AesCcmDecryptionError();
  }
  return new Uint8Array(body);
}

// ---------------------------------------------------------------- many messages under one key
//
// CCM (NIST SP 800-38C; 1609.2 5.3.8 parameters: 12-octet nonce so q = 3, 16-octet tag, no associated data) on
// AES-128-ECB with one OpenSSL cipher for all messages of a key: B0 and the counter blocks of every message in one
// call, then one call per CBC-MAC round. Node's CCM cipher costs a cipher set-up per message; an LA encrypts every
// data key of a PLV batch under the one LA-ACA key, and the ACA unwraps them under it.
//   B0 = flags(0x3A) || N || [len]_3, Y_0 = E(B0), Y_i = E(Y_{i-1} XOR P_i) (P zero-padded), T = Y_last,
//   Ctr_j = 0x02 || N || [j]_3, S_j = E(Ctr_j), C = P XOR (S_1 || S_2 ...), tag = T XOR S_0.

const B0_FLAGS = 0x3a; // Adata 0, (t - 2)/2 = 7, q - 1 = 2
const CTR_FLAGS = 0x02; // q - 1

function ecbCipher(key: Uint8Array) {
  const c = createCipheriv('aes-128-ecb', key, null);
  c.setAutoPadding(false);
  return c;
}

/** S_0, S_1 .. S_nb and Y_0 for each message (one ECB call), and the keystream-applied text. */
function ccmCore(
  key: Uint8Array,
  nonces: readonly Uint8Array[],
  texts: readonly Uint8Array[],
  decrypting: boolean,
): { out: Uint8Array[]; tags: Uint8Array[] } {
  const n = texts.length;
  const blocks = texts.map((t) => Math.ceil(t.length / 16));
  let total = 0;
  for (let m = 0; m < n; m++) total += 2 + blocks[m]!; // B0, Ctr_0 .. Ctr_nb
  const input = new Uint8Array(total * 16);
  const at = new Array<number>(n);
  for (let m = 0, off = 0; m < n; m++) {
    const nonce = nonces[m]!;
    const len = texts[m]!.length;
    if (len >= 1 << 24) throw new RangeError('AES-CCM message too long for a 3-octet length');
    at[m] = off;
    input[off] = B0_FLAGS;
    input.set(nonce, off + 1);
    input[off + 13] = len >>> 16;
    input[off + 14] = (len >>> 8) & 0xff;
    input[off + 15] = len & 0xff;
    for (let j = 0; j <= blocks[m]!; j++) {
      const b = off + 16 * (1 + j);
      input[b] = CTR_FLAGS;
      input.set(nonce, b + 1);
      input[b + 13] = j >>> 16;
      input[b + 14] = (j >>> 8) & 0xff;
      input[b + 15] = j & 0xff;
    }
    off += 16 * (2 + blocks[m]!);
  }
  const c = ecbCipher(key);
  const enc = new Uint8Array(c.update(input));
  // keystream: C = P XOR S_1.., or P = C XOR S_1..
  const out = texts.map((t, m) => {
    const o = new Uint8Array(t.length);
    const s = at[m]! + 32; // S_1
    for (let i = 0; i < t.length; i++) o[i] = t[i]! ^ enc[s + i]!;
    return o;
  });
  const plains = decrypting ? out : texts;
  // CBC-MAC rounds over the plaintext blocks
  const y = texts.map((_, m) => enc.slice(at[m]!, at[m]! + 16)); // Y_0
  const maxBlocks = Math.max(0, ...blocks);
  for (let r = 0; r < maxBlocks; r++) {
    const active: number[] = [];
    for (let m = 0; m < n; m++) if (blocks[m]! > r) active.push(m);
    const x = new Uint8Array(active.length * 16);
    active.forEach((m, a) => {
      const p = plains[m]!;
      const ym = y[m]!;
      for (let i = 0; i < 16; i++) {
        const k = 16 * r + i;
        x[16 * a + i] = ym[i]! ^ (k < p.length ? p[k]! : 0);
      }
    });
    const yr = c.update(x);
    active.forEach((m, a) => y[m]!.set(yr.subarray(16 * a, 16 * a + 16)));
  }
  const tags = y.map((t, m) => {
    const s0 = at[m]! + 16;
    for (let i = 0; i < 16; i++) t[i]! ^= enc[s0 + i]!;
    return t;
  });
  enc.fill(0);
  return { out, tags };
}

/** aesCcmEncrypt of many (nonce, plaintext) pairs under one key; ciphertext || tag each, in order. */
export function aesCcmEncryptMany(key: Uint8Array, items: ReadonlyArray<{ nonce: Uint8Array; plaintext: Uint8Array }>): Uint8Array[] {
  for (const it of items) check(key, it.nonce);
  if (items.length === 0) return [];
  const { out, tags } = ccmCore(key, items.map((i) => i.nonce), items.map((i) => i.plaintext), false);
  return out.map((c, m) => {
    const r = new Uint8Array(c.length + AES_CCM_TAG_LENGTH);
    r.set(c, 0);
    r.set(tags[m]!, c.length);
    return r;
  });
}

/**
 * aesCcmDecrypt of many (nonce, ciphertext || tag) pairs under one key: the plaintext, or an AesCcmDecryptionError
 * for a message whose tag does not verify (the others are unaffected), in order.
 */
export function aesCcmDecryptMany(
  key: Uint8Array,
  items: ReadonlyArray<{ nonce: Uint8Array; ciphertextAndTag: Uint8Array }>,
): Array<Uint8Array | AesCcmDecryptionError> {
  for (const it of items) check(key, it.nonce);
  const ok = items.map((i) => i.ciphertextAndTag.length >= AES_CCM_TAG_LENGTH);
  const idx = items.map((_, m) => m).filter((m) => ok[m]);
  const { out, tags } = ccmCore(
    key,
    idx.map((m) => items[m]!.nonce),
    idx.map((m) => items[m]!.ciphertextAndTag.subarray(0, items[m]!.ciphertextAndTag.length - AES_CCM_TAG_LENGTH)),
    true,
  );
  const res = new Array<Uint8Array | AesCcmDecryptionError>(items.length);
  for (let m = 0; m < items.length; m++) if (!ok[m]) res[m] = new AesCcmDecryptionError(); // too short for a tag
  idx.forEach((m, a) => {
    const ct = items[m]!.ciphertextAndTag;
    const tag = ct.subarray(ct.length - AES_CCM_TAG_LENGTH);
    let d = 0;
    for (let i = 0; i < AES_CCM_TAG_LENGTH; i++) d |= tag[i]! ^ tags[a]![i]!;
    if (d === 0) res[m] = out[a]!;
    else {
      out[a]!.fill(0);
      res[m] = new AesCcmDecryptionError();
    }
  });
  return res;
}
