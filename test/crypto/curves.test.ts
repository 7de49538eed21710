// Curve helpers and random scalars, checked against @noble/curves as the independent reference.
import { describe, expect, it } from 'vitest';
import {
  curve,
  CURVE_NAMES,
  decodePoint,
  decompress,
  encodeCompressed,
  encodeMany,
  mulBase,
  mulBasePoint,
  mulPoint,
  mulPointPublic,
  pointAdd,
  scalarFromBytes,
  scalarToBytes,
  toUncompressed,
  xOnly,
  yParity,
} from '../../src/crypto/curves.js';
import { randomScalar } from '../../src/crypto/random.js';
import { toHex } from './vectors.js';

describe('curves', () => {
  for (const name of CURVE_NAMES) {
    const c = curve(name);
    it(`${name}: node fixed-base kG equals noble k*G; encodings round trip`, () => {
      for (let n = 0; n < 4; n++) {
        const k = randomScalar(name);
        const ref = c.Point.BASE.multiply(k);
        expect(toHex(mulBase(name, k))).toBe(toHex(ref.toBytes(false)));
        expect(toHex(mulBase(name, k, true))).toBe(toHex(ref.toBytes(true)));
        expect(mulBasePoint(name, scalarToBytes(name, k)).equals(ref)).toBe(true);
        const comp = encodeCompressed(ref);
        const dec = decompress(name, comp.subarray(1), yParity(ref));
        expect(dec.equals(ref)).toBe(true);
        expect(toHex(xOnly(name, ref))).toBe(toHex(comp.subarray(1)));
        expect(toHex(toUncompressed(name, comp))).toBe(toHex(ref.toBytes(false)));
        const Q = c.Point.BASE.multiply(randomScalar(name));
        expect(pointAdd(ref, Q).equals(c.Point.BASE.multiply(k).add(Q))).toBe(true);
        const m = randomScalar(name);
        expect(mulPoint(name, Q, m).equals(mulPointPublic(name, Q, m))).toBe(true);
        expect(mulPoint(name, c.Point.BASE, m).equals(c.Point.BASE.multiply(m))).toBe(true);
      }
    });
    it(`${name}: encodeMany equals individual encodings`, () => {
      const pts = Array.from({ length: 5 }, () => c.Point.BASE.multiply(randomScalar(name)).double());
      const many = encodeMany(name, pts, true);
      pts.forEach((P, n) => expect(toHex(many[n]!)).toBe(toHex(P.toBytes(true))));
    });
    it(`${name}: invalid points and scalars are rejected`, () => {
      const good = mulBase(name, 5n);
      const bad = good.slice();
      bad[bad.length - 1]! ^= 1;
      expect(() => decodePoint(name, bad)).toThrow();
      expect(() => scalarFromBytes(name, scalarToBytes(name, 0n))).toThrow();
      expect(() => mulBase(name, c.n)).toThrow();
    });
  }
  it('randomScalar stays in [1, n-1] and varies', () => {
    const seen = new Set<bigint>();
    for (let n = 0; n < 200; n++) {
      const k = randomScalar('nistP384');
      expect(k >= 1n && k < curve('nistP384').n).toBe(true);
      seen.add(k);
    }
    expect(seen.size).toBe(200);
  });
});
