// The four curves of IEEE 1609.2 (5.3.1, 6.3.x EccP256CurvePoint / EccP384CurvePoint): NIST P-256, NIST P-384,
// brainpoolP256r1, brainpoolP384r1. Node (OpenSSL) does fixed-base multiplication; @noble/curves does point
// addition, decompression and variable-base multiplication.
import { createECDH, ECDH } from 'node:crypto';
import { p256, p384 } from '@noble/curves/nist.js';
import { brainpoolP256r1, brainpoolP384r1 } from '@noble/curves/misc.js';
import { normalizeZ } from '@noble/curves/abstract/curve.js';
import type { ECDSA, WeierstrassPoint, WeierstrassPointCons } from '@noble/curves/abstract/weierstrass.js';
import type { IField } from '@noble/curves/abstract/modular.js';
import { bigIntToBytes, bytesToBigInt, concat } from './bytes.js';
import type { HashAlgorithm } from './hash.js';

/** Curve names as 1609.2 spells them in PublicVerificationKey / EcdsaP256Signature choices. */
export type CurveName = 'nistP256' | 'nistP384' | 'brainpoolP256r1' | 'brainpoolP384r1';

export const CURVE_NAMES: readonly CurveName[] = ['nistP256', 'nistP384', 'brainpoolP256r1', 'brainpoolP384r1'];

/** A point on one of the curves (noble projective point). */
export type Point = WeierstrassPoint<bigint>;

export interface Curve {
  readonly name: CurveName;
  /** OpenSSL curve name for node:crypto. */
  readonly nodeName: string;
  /** @noble/curves instance (reference implementation, point arithmetic). */
  readonly noble: ECDSA;
  readonly Point: WeierstrassPointCons<bigint>;
  /** Scalar field mod n. */
  readonly Fn: IField<bigint>;
  /** Order n of the base point. */
  readonly n: bigint;
  /** Field element / scalar size in octets (32 or 48). */
  readonly size: 32 | 48;
  /** Hash that 1609.2 pairs with this curve (5.3.1: SHA-256 for 256-bit curves, SHA-384 for 384-bit). */
  readonly hash: HashAlgorithm;
  /** DER encoding of the curve OID (used only to build key templates for node:crypto). */
  readonly oidDer: Uint8Array;
}

function make(name: CurveName, nodeName: string, noble: ECDSA, hash: HashAlgorithm, oidHex: string): Curve {
  const Point = noble.Point;
  return Object.freeze({
    name,
    nodeName,
    noble,
    Point,
    Fn: Point.Fn,
    n: Point.Fn.ORDER,
    size: Point.Fp.BYTES as 32 | 48,
    hash,
    oidDer: new Uint8Array(Buffer.from(oidHex, 'hex')),
  });
}

const CURVES: Record<CurveName, Curve> = {
  nistP256: make('nistP256', 'prime256v1', p256, 'sha256', '06082a8648ce3d030107'),
  nistP384: make('nistP384', 'secp384r1', p384, 'sha384', '06052b81040022'),
  brainpoolP256r1: make('brainpoolP256r1', 'brainpoolP256r1', brainpoolP256r1, 'sha256', '06092b2403030208010107'),
  brainpoolP384r1: make('brainpoolP384r1', 'brainpoolP384r1', brainpoolP384r1, 'sha384', '06092b240303020801010b'),
};

export function curve(name: CurveName): Curve {
  const c = CURVES[name];
  if (!c) throw new Error(`unsupported curve: ${String(name)}`);
  return c;
}

// ---------------------------------------------------------------- scalars mod n

/** x mod n, in [0, n-1]. */
export function modN(name: CurveName, x: bigint): bigint {
  return curve(name).Fn.create(x);
}

/** Scalar as fixed-length big-endian octets (32 or 48). */
export function scalarToBytes(name: CurveName, k: bigint): Uint8Array {
  return bigIntToBytes(k, curve(name).size);
}

/** Scalar from big-endian octets; must be in [1, n-1]. */
export function scalarFromBytes(name: CurveName, b: Uint8Array): bigint {
  const k = bytesToBigInt(b);
  if (k < 1n || k >= curve(name).n) throw new RangeError('scalar out of range [1, n-1]');
  return k;
}

function scalarArg(name: CurveName, k: bigint | Uint8Array): Uint8Array {
  const c = curve(name);
  const v = typeof k === 'bigint' ? k : bytesToBigInt(k);
  if (v < 1n || v >= c.n) throw new RangeError('scalar out of range [1, n-1]');
  return typeof k !== 'bigint' && k.length === c.size ? k : bigIntToBytes(v, c.size);
}

// ---------------------------------------------------------------- point encodings

/**
 * Decode a point from 04||x||y (uncompressed) or 02/03||x (compressed); validates that it is on the curve
 * and not the identity.
 */
export function decodePoint(name: CurveName, bytes: Uint8Array): Point {
  const c = curve(name);
  if (bytes.length === 1 + c.size && (bytes[0] === 2 || bytes[0] === 3)) {
    // Decompression by OpenSSL (a square root in bigints costs ~150 us); it rejects x without a point.
    let u: Buffer | undefined;
    try {
      u = ECDH.convertKey(bytes, c.nodeName, undefined, undefined, 'uncompressed') as Buffer;
    } catch {
      u = undefined; // noble below throws its own error for the invalid encoding
    }
    if (u) {
      const P = c.Point.fromAffine({ x: BigInt('0x' + u.toString('hex', 1, 1 + c.size)), y: BigInt('0x' + u.toString('hex', 1 + c.size)) });
      P.assertValidity();
      return P;
    }
  }
  const P = c.Point.fromBytes(bytes);
  P.assertValidity();
  return P;
}

/** Decompression of x with the given y parity (1609.2 compressed-y-0 / compressed-y-1). */
export function decompress(name: CurveName, x: Uint8Array, yParity: 0 | 1): Point {
  const c = curve(name);
  if (x.length !== c.size) throw new RangeError(`x must be ${c.size} octets`);
  return decodePoint(name, concat(Uint8Array.of(2 + yParity), x));
}

/** Uncompressed 04||x||y encoding. */
export function encodeUncompressed(P: Point): Uint8Array {
  return P.toBytes(false);
}

/** Compressed 02/03||x encoding (02 for even y = compressed-y-0). */
export function encodeCompressed(P: Point): Uint8Array {
  return P.toBytes(true);
}

/** x-coordinate only, fixed length. */
export function xOnly(name: CurveName, P: Point): Uint8Array {
  return bigIntToBytes(P.toAffine().x, curve(name).size);
}

/** Parity of y (0 = even = compressed-y-0, 1 = odd = compressed-y-1). */
export function yParity(P: Point): 0 | 1 {
  return (P.toAffine().y & 1n) === 1n ? 1 : 0;
}

/** Any accepted encoding (uncompressed or compressed) to uncompressed 04||x||y. */
export function toUncompressed(name: CurveName, bytes: Uint8Array): Uint8Array {
  if (bytes[0] === 4 && bytes.length === 1 + 2 * curve(name).size) {
    decodePoint(name, bytes); // validate
    return bytes;
  }
  return decodePoint(name, bytes).toBytes(false);
}

/** Encode many points with a single shared field inversion (batch-friendly). */
export function encodeMany(name: CurveName, points: Point[], compressed = false): Uint8Array[] {
  if (points.length === 0) return [];
  return normalizeZ(curve(name).Point, points).map((P) => P.toBytes(compressed));
}

// ---------------------------------------------------------------- affine points and batch arithmetic
//
// A field inversion costs about 80 field multiplications with bigints (~40 us for P-256), so many points are put in
// affine form with one shared inversion (Montgomery's trick) and sums of affine points use the affine addition
// law directly: lambda = (y2 - y1) / (x2 - x1), x3 = lambda^2 - x1 - x2, y3 = lambda (x1 - x3) - y1 (SEC 1 2.2.1).

/** An affine point (x, y) with coordinates in [0, p-1]. */
export interface AffinePoint {
  readonly x: bigint;
  readonly y: bigint;
}

/**
 * Inverses of many field elements with one inversion and 3(n-1) multiplications (Montgomery's trick). Every
 * element must be nonzero mod the field order (RangeError otherwise).
 */
export function batchInvert(F: IField<bigint>, xs: readonly bigint[]): bigint[] {
  const n = xs.length;
  if (n === 0) return [];
  const prefix = new Array<bigint>(n);
  let acc = F.ONE;
  for (let i = 0; i < n; i++) {
    const x = F.create(xs[i]!);
    if (x === 0n) throw new RangeError('batchInvert: zero has no inverse');
    prefix[i] = acc;
    acc = F.mul(acc, x);
  }
  let inv = F.inv(acc);
  const out = new Array<bigint>(n);
  for (let i = n - 1; i >= 0; i--) {
    out[i] = F.mul(inv, prefix[i]!);
    inv = F.mul(inv, F.create(xs[i]!));
  }
  return out;
}

/**
 * P_i + Q_i for many pairs of affine points on `name` with one shared inversion. Both inputs must be valid curve
 * points (not the identity); the sum is undefined where it is the identity (Q_i = -P_i). P_i = Q_i is doubled.
 */
export function addAffineMany(name: CurveName, ps: readonly AffinePoint[], qs: readonly AffinePoint[]): (AffinePoint | undefined)[] {
  if (ps.length !== qs.length) throw new RangeError('addAffineMany: as many P as Q');
  const c = curve(name);
  const Fp = c.Point.Fp;
  const a = c.Point.CURVE().a;
  const n = ps.length;
  // Denominator per pair: x2 - x1, or 2*y1 for a doubling, or 1 (placeholder) for P + (-P).
  const kind = new Uint8Array(n); // 0 add, 1 double, 2 identity
  const den = new Array<bigint>(n);
  for (let i = 0; i < n; i++) {
    const P = ps[i]!;
    const Q = qs[i]!;
    if (P.x !== Q.x) den[i] = Fp.sub(Q.x, P.x);
    else if (P.y === Q.y && P.y !== 0n) {
      kind[i] = 1;
      den[i] = Fp.add(P.y, P.y);
    } else {
      kind[i] = 2;
      den[i] = Fp.ONE;
    }
  }
  const inv = batchInvert(Fp, den);
  const out = new Array<AffinePoint | undefined>(n);
  for (let i = 0; i < n; i++) {
    if (kind[i] === 2) {
      out[i] = undefined;
      continue;
    }
    const P = ps[i]!;
    const Q = qs[i]!;
    const num = kind[i] === 0 ? Fp.sub(Q.y, P.y) : Fp.add(Fp.mul(Fp.sqr(P.x), 3n), a);
    const l = Fp.mul(num, inv[i]!);
    const x = Fp.sub(Fp.sub(Fp.sqr(l), P.x), Q.x);
    const y = Fp.sub(Fp.mul(l, Fp.sub(P.x, x)), P.y);
    out[i] = { x, y };
  }
  return out;
}

/** The affine coordinates of an encoded point (04||x||y or 02/03||x), validated as decodePoint does. */
export function decodeAffine(name: CurveName, bytes: Uint8Array): AffinePoint {
  const c = curve(name);
  const Fp = c.Point.Fp;
  if (bytes.length === 1 + 2 * c.size && bytes[0] === 4) {
    const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    const x = BigInt('0x' + b.toString('hex', 1, 1 + c.size));
    const y = BigInt('0x' + b.toString('hex', 1 + c.size));
    const { a, b: cb } = c.Point.CURVE();
    // x, y in [0, p-1] and y^2 = x^3 + ax + b (SEC 1 3.2.2.1); the curves have cofactor 1, so that is all.
    if (x >= Fp.ORDER || y >= Fp.ORDER || Fp.sqr(y) !== Fp.add(Fp.add(Fp.mul(Fp.sqr(x), x), Fp.mul(a, x)), cb)) {
      throw new Error('bad point: is not on curve');
    }
    return { x, y };
  }
  return decodePoint(name, bytes).toAffine();
}

/** 04||x||y (uncompressed) or 02/03||x (compressed; 02 for even y) of an affine point. */
export function encodeAffine(name: CurveName, P: AffinePoint, compressed = false): Uint8Array {
  const size = curve(name).size;
  const hx = P.x.toString(16).padStart(2 * size, '0');
  if (compressed) return new Uint8Array(Buffer.from(((P.y & 1n) === 0n ? '02' : '03') + hx, 'hex'));
  return new Uint8Array(Buffer.from('04' + hx + P.y.toString(16).padStart(2 * size, '0'), 'hex'));
}

// ---------------------------------------------------------------- arithmetic

/** P + Q (noble). */
export function pointAdd(P: Point, Q: Point): Point {
  return P.add(Q);
}

// One OpenSSL ECDH object per curve, reused by every synchronous fixed-base multiplication and ECDH of this thread
// (creating one costs about as much as the multiplication itself). Callers never yield between setPrivateKey and
// the calls that use it, so the object is never shared across operations.
const ecdhObjects = new Map<CurveName, ECDH>();

/** The reusable OpenSSL ECDH object of a curve (set its private key right before use, in the same tick). */
export function nodeEcdh(name: CurveName): ECDH {
  let e = ecdhObjects.get(name);
  if (!e) {
    e = createECDH(curve(name).nodeName);
    ecdhObjects.set(name, e);
  }
  return e;
}

/** k*G through OpenSSL's fixed-base multiplication; returns the encoded point. */
export function mulBase(name: CurveName, k: bigint | Uint8Array, compressed = false): Uint8Array {
  const e = nodeEcdh(name);
  e.setPrivateKey(scalarArg(name, k));
  return new Uint8Array(e.getPublicKey(null, compressed ? 'compressed' : 'uncompressed'));
}

/** k*G as affine coordinates (OpenSSL; its output is trusted, so no re-validation). */
export function mulBaseAffine(name: CurveName, k: bigint | Uint8Array): AffinePoint {
  const c = curve(name);
  const e = nodeEcdh(name);
  e.setPrivateKey(scalarArg(name, k));
  const u = e.getPublicKey();
  return { x: BigInt('0x' + u.toString('hex', 1, 1 + c.size)), y: BigInt('0x' + u.toString('hex', 1 + c.size)) };
}

/** k*G as a noble point (OpenSSL does the multiplication; its output is trusted, so no re-validation). */
export function mulBasePoint(name: CurveName, k: bigint | Uint8Array): Point {
  return curve(name).Point.fromAffine(mulBaseAffine(name, k));
}

/** k*P for an arbitrary point P (noble, constant-time ladder). */
export function mulPoint(name: CurveName, P: Point, k: bigint): Point {
  const c = curve(name);
  const s = c.Fn.create(k);
  if (s === 0n) throw new RangeError('scalar is 0 mod n');
  return P.multiply(s);
}

/** k*P when k is public (e.g. the ECQV hash e): faster variable-time multiplication. */
export function mulPointPublic(name: CurveName, P: Point, k: bigint): Point {
  const c = curve(name);
  return P.multiplyUnsafe(c.Fn.create(k));
}
