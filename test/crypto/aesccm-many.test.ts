// AES-128-CCM for many messages under one key (aesccm.ts aesCcmEncryptMany / aesCcmDecryptMany, on AES-ECB) against
// every published vector (IEEE 1609.2a-2017 Annex D, CAMP aesccm.txt) and against node's CCM for random messages.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { aesCcmDecrypt, AesCcmDecryptionError, aesCcmDecryptMany, aesCcmEncrypt, aesCcmEncryptMany } from '../../src/crypto/aesccm.js';
import { campVectors, hex, readJson, toHex } from './vectors.js';

const annexD = readJson('ieee1609dot2a-2017-annexD.json');
const cases = [
  ...annexD.aes_ccm_128.map((v: any) => ({ id: v.id, key: v.key, nonce: v.nonce, pt: v.plaintext, ct: v.ciphertext_and_tag })),
  ...campVectors('aesccm.txt').map((b) => ({ id: `CAMP ${b.title}`, key: b.get('K').hex, nonce: b.get('N').hex, pt: b.get('P').hex, ct: b.get('C_T').hex })),
];
const u8 = (n: number) => new Uint8Array(randomBytes(n));

describe('aesCcmEncryptMany / aesCcmDecryptMany', () => {
  it('every vector, alone and with all vectors of the same key in one call', () => {
    expect(cases.length).toBe(12);
    for (const c of cases) {
      expect(toHex(aesCcmEncryptMany(hex(c.key), [{ nonce: hex(c.nonce), plaintext: hex(c.pt) }])[0]!)).toBe(c.ct.toLowerCase());
      expect(toHex(aesCcmDecryptMany(hex(c.key), [{ nonce: hex(c.nonce), ciphertextAndTag: hex(c.ct) }])[0] as Uint8Array)).toBe(c.pt.toLowerCase());
    }
    const byKey = new Map<string, typeof cases>();
    for (const c of cases) byKey.set(c.key, [...(byKey.get(c.key) ?? []), c]);
    for (const [key, cs] of byKey) {
      const enc = aesCcmEncryptMany(hex(key), cs.map((c) => ({ nonce: hex(c.nonce), plaintext: hex(c.pt) })));
      enc.forEach((e, m) => expect(toHex(e)).toBe(cs[m]!.ct.toLowerCase()));
    }
  });

  it('equals node CCM for random messages of 0..70 octets in one batch, and decrypts back', () => {
    const key = u8(16);
    const items = Array.from({ length: 71 }, (_, len) => ({ nonce: u8(12), plaintext: u8(len) }));
    const many = aesCcmEncryptMany(key, items);
    many.forEach((c, m) => expect(toHex(c)).toBe(toHex(aesCcmEncrypt(key, items[m]!.nonce, items[m]!.plaintext))));
    const back = aesCcmDecryptMany(key, items.map((it, m) => ({ nonce: it.nonce, ciphertextAndTag: many[m]! })));
    back.forEach((p, m) => expect(toHex(p as Uint8Array)).toBe(toHex(items[m]!.plaintext)));
    expect(aesCcmEncryptMany(key, [])).toEqual([]);
  });

  it('a tampered message fails alone (AesCcmDecryptionError), its neighbours decrypt', () => {
    const key = u8(16);
    const items = Array.from({ length: 5 }, () => ({ nonce: u8(12), plaintext: u8(16) }));
    const cts = items.map((it) => aesCcmEncrypt(key, it.nonce, it.plaintext));
    cts[1] = cts[1]!.slice();
    cts[1]![3]! ^= 1; // ciphertext
    cts[3] = cts[3]!.slice();
    cts[3]![cts[3]!.length - 1]! ^= 1; // tag
    const out = aesCcmDecryptMany(key, [...items.map((it, m) => ({ nonce: it.nonce, ciphertextAndTag: cts[m]! })), { nonce: u8(12), ciphertextAndTag: u8(5) }]);
    expect(out.map((o) => o instanceof AesCcmDecryptionError)).toEqual([false, true, false, true, false, true]);
    expect(() => aesCcmDecrypt(key, items[1]!.nonce, cts[1]!)).toThrow(AesCcmDecryptionError); // node agrees
    expect(toHex(out[0] as Uint8Array)).toBe(toHex(items[0]!.plaintext));
  });

  it('checks key and nonce lengths', () => {
    expect(() => aesCcmEncryptMany(u8(15), [{ nonce: u8(12), plaintext: u8(1) }])).toThrow(RangeError);
    expect(() => aesCcmDecryptMany(u8(16), [{ nonce: u8(13), ciphertextAndTag: u8(20) }])).toThrow(RangeError);
  });
});
