// Batch field inversion, batch affine addition and the affine encode/decode helpers (src/crypto/curves.ts), the
// batched ACA-side butterfly / ECQV key work built on them (butterfly.ts acaExplicitKeys, ecqv.ts
// ecqvReconstructionValues), each checked against the straightforward noble computation. The CAMP bfkeyexp.txt
// vector goes through the batched cocoon path in butterfly.test.ts (cocoonPublicKeys).
import { describe, expect, it } from 'vitest';
import { acaExplicitKey, acaExplicitKeys, cocoonPrivateKey, cocoonPublicKeys, eeExplicitPrivateKey } from '../../src/crypto/butterfly.js';
import { bytesToBigInt } from '../../src/crypto/bytes.js';
import {
  addAffineMany,
  batchInvert,
  curve,
  CURVE_NAMES,
  decodeAffine,
  decodePoint,
  encodeAffine,
  mulBase,
  mulBaseAffine,
} from '../../src/crypto/curves.js';
import { generateKeyPair } from '../../src/crypto/ecdh.js';
import { ecqvReconstructionValues } from '../../src/crypto/ecqv.js';
import { randomScalar } from '../../src/crypto/random.js';
import { hex, toHex } from './vectors.js';

describe('batchInvert (Montgomery trick)', () => {
  for (const name of CURVE_NAMES) {
    const Fp = curve(name).Point.Fp;
    it(`${name}: equals one inversion per element, for 1, 2 and 33 elements`, () => {
      for (const n of [1, 2, 33]) {
        const xs = Array.from({ length: n }, (_, i) => (i === 0 ? 1n : i === 1 ? Fp.ORDER - 1n : Fp.create(randomScalar(name) * 7n)));
        const inv = batchInvert(Fp, xs);
        expect(inv.length).toBe(n);
        inv.forEach((v, i) => {
          expect(v).toBe(Fp.inv(xs[i]!));
          expect(Fp.mul(v, xs[i]!)).toBe(1n);
        });
      }
      expect(batchInvert(Fp, [])).toEqual([]);
    });
    it(`${name}: zero has no inverse`, () => {
      expect(() => batchInvert(Fp, [5n, 0n, 7n])).toThrow(RangeError);
      expect(() => batchInvert(Fp, [Fp.ORDER])).toThrow(RangeError);
    });
  }
});

describe('affine points', () => {
  for (const name of CURVE_NAMES) {
    const c = curve(name);
    const rnd = () => c.Point.BASE.multiply(randomScalar(name));
    it(`${name}: addAffineMany equals noble P + Q (addition, doubling, P + (-P))`, () => {
      const ps = Array.from({ length: 12 }, rnd);
      const qs = ps.map((P, i) => (i === 3 ? P : i === 7 ? P.negate() : rnd()));
      const sums = addAffineMany(name, ps.map((P) => P.toAffine()), qs.map((Q) => Q.toAffine()));
      sums.forEach((S, i) => {
        const ref = ps[i]!.add(qs[i]!);
        if (i === 7) expect(S).toBeUndefined();
        else expect(c.Point.fromAffine(S!).equals(ref)).toBe(true);
      });
      expect(() => addAffineMany(name, [ps[0]!.toAffine()], [])).toThrow(RangeError);
    });
    it(`${name}: mulBaseAffine, encodeAffine and decodeAffine agree with noble`, () => {
      for (let n = 0; n < 4; n++) {
        const k = randomScalar(name);
        const ref = c.Point.BASE.multiply(k);
        const A = mulBaseAffine(name, k);
        expect(A).toEqual(ref.toAffine());
        expect(toHex(encodeAffine(name, A))).toBe(toHex(ref.toBytes(false)));
        expect(toHex(encodeAffine(name, A, true))).toBe(toHex(ref.toBytes(true)));
        expect(decodeAffine(name, ref.toBytes(false))).toEqual(A);
        expect(decodeAffine(name, ref.toBytes(true))).toEqual(A);
        expect(decodePoint(name, ref.toBytes(true)).equals(ref)).toBe(true); // OpenSSL decompression path
      }
    });
    it(`${name}: decodeAffine and decodePoint reject points off the curve and coordinates >= p`, () => {
      const good = mulBase(name, 12345n);
      const offY = good.slice();
      offY[offY.length - 1]! ^= 1;
      expect(() => decodeAffine(name, offY)).toThrow();
      const big = new Uint8Array(good.length).fill(0xff);
      big[0] = 4;
      expect(() => decodeAffine(name, big)).toThrow();
      // a compressed x with no point on the curve (x^3 + ax + b a non-residue): try x = 1, 2, ... until one fails
      let rejected = false;
      for (let x = 1; x < 64 && !rejected; x++) {
        const enc = new Uint8Array(1 + c.size);
        enc[0] = 2;
        enc[c.size] = x;
        let noble = true;
        try {
          c.Point.fromBytes(enc).assertValidity();
        } catch {
          noble = false;
        }
        if (!noble) {
          expect(() => decodePoint(name, enc)).toThrow();
          expect(() => decodeAffine(name, enc)).toThrow();
          rejected = true;
        } else expect(decodePoint(name, enc).equals(c.Point.fromBytes(enc))).toBe(true);
      }
      expect(rejected).toBe(true);
    });
  }
});

describe('batched butterfly and ECQV key work', () => {
  for (const name of ['nistP256', 'brainpoolP256r1'] as const) {
    const c = curve(name);
    it(`${name}: batched cocoons equal A + f*G computed with noble, and b*G`, () => {
      const cat = generateKeyPair(name);
      const k = hex('000102030405060708090a0b0c0d0e0f');
      const ijs = Array.from({ length: 20 }, (_, j) => ({ i: 7, j }));
      const out = cocoonPublicKeys(name, cat.publicKey, k, 'signing', ijs);
      ijs.forEach(({ i, j }, n) => {
        const b = cocoonPrivateKey(name, cat.privateKey, k, 'signing', i, j);
        expect(toHex(out[n]!)).toBe(toHex(c.Point.BASE.multiply(b).toBytes(false)));
      });
    });
    it(`${name}: acaExplicitKeys gives B + c*G (compressed) and the EE key b + c`, () => {
      const bs = Array.from({ length: 9 }, () => randomScalar(name));
      const Bs = bs.map((b) => c.Point.BASE.multiply(b));
      const keys = acaExplicitKeys(name, Bs.map((B) => B.toAffine()));
      keys.forEach((key, n) => {
        expect(toHex(key.verificationKey)).toBe(toHex(Bs[n]!.add(c.Point.BASE.multiply(key.c)).toBytes(true)));
        expect(toHex(mulBase(name, eeExplicitPrivateKey(name, bs[n]!, key.c), true))).toBe(toHex(key.verificationKey));
        // the one-at-a-time form with the same c agrees
        expect(toHex(acaExplicitKey(name, Bs[n]!.toBytes(false), key.c).verificationKey.toBytes(true))).toBe(toHex(key.verificationKey));
      });
      expect(new Set(keys.map((k) => k.c)).size).toBe(keys.length);
    });
    it(`${name}: ecqvReconstructionValues gives R_U + k*G for bytes, points and affine inputs`, () => {
      const Rs = Array.from({ length: 6 }, () => c.Point.BASE.multiply(randomScalar(name)));
      const inputs = Rs.map((R, n) => (n % 3 === 0 ? R.toBytes(false) : n % 3 === 1 ? R : R.toAffine()));
      const out = ecqvReconstructionValues(name, inputs);
      out.forEach((o, n) => expect(toHex(o.reconstructionValue)).toBe(toHex(Rs[n]!.add(c.Point.BASE.multiply(o.k)).toBytes(true))));
    });
  }
});
