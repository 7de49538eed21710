// ECDSA (1609.2 5.3.1): real certificate signatures from scms-verified-vectors.json, and round trips on all four
// curves cross-checked with @noble/curves in both directions.
import { describe, expect, it } from 'vitest';
import { ecdsaSign, ecdsaVerify, signatureInput1609Dot2, signingKey, verificationKey, type EcdsaSignature } from '../../src/crypto/ecdsa.js';
import { curve, CURVE_NAMES, decodePoint, scalarToBytes } from '../../src/crypto/curves.js';
import { generateKeyPair } from '../../src/crypto/ecdh.js';
import { hash, sha256 } from '../../src/crypto/hash.js';
import { bytesToBigInt, concat } from '../../src/crypto/bytes.js';
import { hex, readJson } from './vectors.js';

const verified = readJson('scms-verified-vectors.json');

// Fixed-offset view of an explicit P-256 certificate (COER) for this test only: the last 66 octets are
// Signature ecdsaNistP256Signature { rSig EccP256CurvePoint, sSig }, the 33 octets before them the compressed
// verification key (choice octet 82/83 + x).
function certParts(coer: Uint8Array, tbsOffset: number) {
  const sig = coer.subarray(coer.length - 66);
  const keyAt = coer.length - 66 - 33;
  const rChoice = sig[1]!;
  const rForm = rChoice === 0x80 ? 'x-only' : rChoice === 0x82 ? 'compressed-y-0' : 'compressed-y-1';
  return {
    tbs: coer.subarray(tbsOffset, coer.length - 66),
    publicKey: concat(Uint8Array.of(coer[keyAt]! === 0x82 ? 2 : 3), coer.subarray(keyAt + 1, keyAt + 33)),
    signature: { rForm, r: sig.subarray(2, 34), s: sig.subarray(34, 66) } as EcdsaSignature,
    sigChoice: sig[0]!,
  };
}

describe('ECDSA on published certificates (Penta Security RCA/ICA, sha256)', () => {
  const vs = verified.vectors.hashedid.vectors;
  const rca = hex(vs.find((v: any) => v.name === 'pentasecurity_rca').certificate_coer);
  const ica = hex(vs.find((v: any) => v.name === 'pentasecurity_ica').certificate_coer);
  // RCA: 80 03 00 81 00 <tbs> (issuer self sha256, tbs at 5); ICA: 80 03 00 80 <HashedId8> <tbs> (tbs at 12)
  const r = certParts(rca, 5);
  const i = certParts(ica, 12);
  it('layout assumptions hold (ecdsaNistP256Signature, compressed key choice)', () => {
    expect(r.sigChoice).toBe(0x80);
    expect(i.sigChoice).toBe(0x80);
    expect(rca[3]).toBe(0x81);
    expect(ica[3]).toBe(0x80);
  });
  it('RCA self-signature verifies over H(tbs) || H("")', () => {
    const key = verificationKey('nistP256', r.publicKey);
    expect(ecdsaVerify(key, signatureInput1609Dot2(r.tbs, undefined, 'sha256'), r.signature)).toBe(true);
  });
  it('ICA signature verifies with the RCA key over H(tbs) || H(RCA cert)', () => {
    const key = verificationKey('nistP256', r.publicKey);
    expect(ecdsaVerify(key, signatureInput1609Dot2(i.tbs, rca, 'sha256'), i.signature)).toBe(true);
  });
  it('fails with the wrong signer input, wrong key or a flipped bit', () => {
    const rk = verificationKey('nistP256', r.publicKey);
    const ik = verificationKey('nistP256', i.publicKey);
    expect(ecdsaVerify(rk, signatureInput1609Dot2(i.tbs, undefined, 'sha256'), i.signature)).toBe(false);
    expect(ecdsaVerify(ik, signatureInput1609Dot2(i.tbs, rca, 'sha256'), i.signature)).toBe(false);
    const tbs = i.tbs.slice();
    tbs[10]! ^= 1;
    expect(ecdsaVerify(rk, signatureInput1609Dot2(tbs, rca, 'sha256'), i.signature)).toBe(false);
  });
  it('signatureInput1609Dot2 is H(tbs) || H(signer) (H("") without signer)', () => {
    expect(Buffer.from(signatureInput1609Dot2(i.tbs, rca, 'sha256')).equals(Buffer.concat([sha256(i.tbs), sha256(rca)]))).toBe(true);
    expect(Buffer.from(signatureInput1609Dot2(r.tbs, undefined, 'sha384').subarray(48)).toString('hex')).toBe(
      Buffer.from(hash('sha384', new Uint8Array(0))).toString('hex'),
    );
  });
});

describe('ECDSA round trips, all curves, both R forms, cross-checked with noble', () => {
  for (const name of CURVE_NAMES) {
    const c = curve(name);
    const kp = generateKeyPair(name);
    const sk = signingKey(name, kp.privateKey);
    const vk = verificationKey(name, kp.publicKey);
    const vkCompressed = verificationKey(name, decodePoint(name, kp.publicKey).toBytes(true));
    const msg = signatureInput1609Dot2(new TextEncoder().encode(`tbs for ${name}`), undefined, c.hash);
    const digest = hash(c.hash, msg);
    const nobleVerify = (sig: EcdsaSignature) => {
      const r = c.Fn.create(bytesToBigInt(sig.r));
      return c.noble.verify(concat(scalarToBytes(name, r), sig.s), digest, kp.publicKey, { prehash: false, lowS: false });
    };

    it(`${name}: x-only signature verifies (ours, compressed key, noble); tampering fails`, () => {
      for (let n = 0; n < 8; n++) {
        const sig = ecdsaSign(sk, msg);
        expect(sig.rForm).toBe('x-only');
        expect(sig.r.length).toBe(c.size);
        expect(ecdsaVerify(vk, msg, sig)).toBe(true);
        expect(ecdsaVerify(vkCompressed, msg, sig)).toBe(true);
        expect(nobleVerify(sig)).toBe(true);
        const badS = sig.s.slice();
        badS[c.size - 1]! ^= 1;
        expect(ecdsaVerify(vk, msg, { ...sig, s: badS })).toBe(false);
        const badM = msg.slice();
        badM[0]! ^= 1;
        expect(ecdsaVerify(vk, badM, sig)).toBe(false);
      }
    });

    it(`${name}: compressed-R signature carries the true R (checked with noble) and verifies`, () => {
      const seen = new Set<string>();
      for (let n = 0; n < 12; n++) {
        const sig = ecdsaSign(sk, msg, 'compressed');
        seen.add(sig.rForm);
        expect(sig.rForm).not.toBe('x-only');
        expect(ecdsaVerify(vk, msg, sig)).toBe(true);
        expect(nobleVerify(sig)).toBe(true);
        // R = u1*G + u2*Q must be the point whose x and y parity the signature states.
        const e = c.Fn.create(bytesToBigInt(digest));
        const r = c.Fn.create(bytesToBigInt(sig.r));
        const w = c.Fn.inv(bytesToBigInt(sig.s));
        const R = c.Point.BASE.multiply(c.Fn.mul(e, w)).add(decodePoint(name, kp.publicKey).multiply(c.Fn.mul(r, w))).toAffine();
        expect(R.x).toBe(bytesToBigInt(sig.r));
        expect(Number(R.y & 1n)).toBe(sig.rForm === 'compressed-y-1' ? 1 : 0);
        const badR = sig.r.slice();
        badR[5]! ^= 1;
        expect(ecdsaVerify(vk, msg, { ...sig, r: badR })).toBe(false);
      }
      expect(seen.size).toBe(2); // both parities occur (probability of failure 2^-11)
    });

    it(`${name}: noble's signatures (high and low s) verify with ours`, () => {
      for (let n = 0; n < 8; n++) {
        const sig = c.noble.sign(digest, kp.privateKey, { prehash: false, lowS: false });
        const parsed: EcdsaSignature = { rForm: 'x-only', r: sig.subarray(0, c.size), s: sig.subarray(c.size) };
        expect(ecdsaVerify(vk, msg, parsed)).toBe(true);
        // the negated s is equally valid in ECDSA (1609.2 does not require low s)
        const sNeg = scalarToBytes(name, c.n - bytesToBigInt(parsed.s));
        expect(ecdsaVerify(vk, msg, { ...parsed, s: sNeg })).toBe(true);
      }
    });

    it(`${name}: out-of-range r/s and wrong lengths are rejected without throwing`, () => {
      const sig = ecdsaSign(sk, msg);
      expect(ecdsaVerify(vk, msg, { ...sig, s: scalarToBytes(name, 0n) })).toBe(false);
      expect(ecdsaVerify(vk, msg, { ...sig, r: new Uint8Array(c.size).fill(0xff) })).toBe(false);
      expect(ecdsaVerify(vk, msg, { ...sig, r: sig.r.subarray(1) })).toBe(false);
    });
  }
  it('signingKey rejects out-of-range scalars', () => {
    expect(() => signingKey('nistP256', new Uint8Array(32))).toThrow();
    expect(() => signingKey('nistP256', scalarToBytes('nistP256', curve('nistP256').n - 1n))).not.toThrow();
  });
});
