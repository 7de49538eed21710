// Symmetric primitives and ECDH against every published vector: IEEE 1609.2a-2017 Annex D (via c2c-common)
// and the CAMP crypto-test-vectors.
import { describe, expect, it } from 'vitest';
import { aesCcmDecrypt, aesCcmEncrypt, AesCcmDecryptionError } from '../../src/crypto/aesccm.js';
import { kdf2Sha256 } from '../../src/crypto/kdf2.js';
import { mac1 } from '../../src/crypto/mac1.js';
import { ecdhSharedSecret, generateKeyPair, publicFromPrivate } from '../../src/crypto/ecdh.js';
import { campVectors, hex, readJson, toHex } from './vectors.js';

const annexD = readJson('ieee1609dot2a-2017-annexD.json');

describe('AES-128-CCM (1609.2 5.3.8)', () => {
  const cases = [
    ...annexD.aes_ccm_128.map((v: any) => ({ id: v.id, key: v.key, nonce: v.nonce, pt: v.plaintext, ct: v.ciphertext_and_tag })),
    ...campVectors('aesccm.txt').map((b) => ({ id: `CAMP ${b.title}`, key: b.get('K').hex, nonce: b.get('N').hex, pt: b.get('P').hex, ct: b.get('C_T').hex })),
  ];
  it('has all vectors (6 Annex D + 6 CAMP)', () => expect(cases.length).toBe(12));
  for (const c of cases) {
    it(`${c.id} encrypts and decrypts`, () => {
      expect(toHex(aesCcmEncrypt(hex(c.key), hex(c.nonce), hex(c.pt)))).toBe(c.ct.toLowerCase());
      expect(toHex(aesCcmDecrypt(hex(c.key), hex(c.nonce), hex(c.ct)))).toBe(c.pt.toLowerCase());
    });
  }
  it('rejects a tampered ciphertext, tag or nonce with AesCcmDecryptionError', () => {
    const c = cases[0]!;
    for (const i of [0, hex(c.ct).length - 1]) {
      const bad = hex(c.ct);
      bad[i]! ^= 1;
      expect(() => aesCcmDecrypt(hex(c.key), hex(c.nonce), bad)).toThrow(AesCcmDecryptionError);
    }
    const n = hex(c.nonce);
    n[0]! ^= 0x80;
    expect(() => aesCcmDecrypt(hex(c.key), n, hex(c.ct))).toThrow(AesCcmDecryptionError);
  });
});

describe('MAC1 = HMAC-SHA-256 truncated to 16 octets (1609.2 5.3.5)', () => {
  const cases = [
    ...annexD.mac1_hmac_sha256_trunc128.map((v: any) => ({ id: v.id, k: v.key, m: v.message, t: v.tag_128bit })),
    ...campVectors('mac1.txt').map((b) => ({ id: `CAMP ${b.title}`, k: b.get('K').hex, m: b.get('M').hex, t: b.get('T').hex })),
  ];
  it('has all vectors (7 + 7)', () => expect(cases.length).toBe(14));
  for (const c of cases) it(c.id, () => expect(toHex(mac1(hex(c.k), hex(c.m)))).toBe(c.t.toLowerCase()));
});

describe('KDF2-SHA-256 (IEEE 1363a / X9.63)', () => {
  it('has all 4 Annex D vectors', () => expect(annexD.kdf2_sha256.length).toBe(4));
  for (const v of annexD.kdf2_sha256) {
    it(v.id, () => expect(toHex(kdf2Sha256(hex(v.shared_secret), hex(v.kdp), v.dl_octets))).toBe(v.derived_key));
  }
  // kdf.txt prints inputs only; its expected outputs are the Annex D ones with the same (ss, kdp, dl).
  const camp = campVectors('kdf.txt');
  it('CAMP kdf.txt lists 4 input sets, each matching an Annex D vector', () => {
    expect(camp.length).toBe(4);
    for (const b of camp) {
      const d = annexD.kdf2_sha256.find((v: any) => v.shared_secret === b.get('ss').hex);
      expect(d, b.title).toBeDefined();
      expect(b.get('kdp').hex).toBe(d.kdp);
      expect(b.get('dl').num).toBe(d.dl_octets);
      expect(toHex(kdf2Sha256(hex(b.get('ss').hex), hex(b.get('kdp').hex), b.get('dl').num!))).toBe(d.derived_key);
    }
  });
});

describe('ECDH P-256 (NIST CAVS, SP 800-56A 5.7.1.2)', () => {
  const cases = [
    ...annexD.ecdh_p256_nist_cavs.map((v: any) => ({ id: `Annex D count ${v.count}`, d: v.private_key, x: v.peer_public_key.x, y: v.peer_public_key.y, z: v.shared_secret_Z })),
    ...campVectors('ecdh.txt').map((b) => ({ id: `CAMP ${b.title}`, d: b.get('a').hex, x: b.get('Bx').hex, y: b.get('By').hex, z: b.get('Z').hex })),
  ];
  it('has all vectors (25 + 25)', () => expect(cases.length).toBe(50));
  for (const c of cases) {
    it(c.id, () => {
      const peer = hex('04' + c.x + c.y);
      expect(toHex(ecdhSharedSecret('nistP256', hex(c.d), peer))).toBe(c.z.toLowerCase());
    });
  }
  it('rejects a peer point that is not on the curve', () => {
    const c = cases[0]!;
    const bad = hex('04' + c.x + c.y);
    bad[64]! ^= 1;
    expect(() => ecdhSharedSecret('nistP256', hex(c.d), bad)).toThrow();
  });
  it('key pairs agree both ways on every curve, public-from-private matches', () => {
    for (const name of ['nistP256', 'nistP384', 'brainpoolP256r1', 'brainpoolP384r1'] as const) {
      const a = generateKeyPair(name);
      const b = generateKeyPair(name, true);
      expect(toHex(publicFromPrivate(name, a.privateKey))).toBe(toHex(a.publicKey));
      expect(toHex(publicFromPrivate(name, b.privateKey, true))).toBe(toHex(b.publicKey));
      expect(toHex(ecdhSharedSecret(name, a.privateKey, b.publicKey))).toBe(toHex(ecdhSharedSecret(name, b.privateKey, a.publicKey)));
    }
  });
});
