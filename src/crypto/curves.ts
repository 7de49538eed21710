// The four curves of IEEE 1609.2 (5.3.1, 6.3.x EccP256CurvePoint / EccP384CurvePoint): NIST P-256, NIST P-384,
// brainpoolP256r1, brainpoolP384r1. Node (OpenSSL) does fixed-base multiplication; @noble/curves does point
// addition, decompression and variable-base multiplication.
import { createECDH } from 'node:crypto';
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
  const P = curve(name).Point.fromBytes(bytes);
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

// ---------------------------------------------------------------- arithmetic

/** P + Q (noble). */
export function pointAdd(P: Point, Q: Point): Point {
  return P.add(Q);
}

/** k*G through OpenSSL's fixed-base multiplication; returns the encoded point. */
export function mulBase(name: CurveName, k: bigint | Uint8Array, compressed = false): Uint8Array {
  const e = createECDH(curve(name).nodeName);
  e.setPrivateKey(scalarArg(name, k));
  return new Uint8Array(e.getPublicKey(null, compressed ? 'compressed' : 'uncompressed'));
}

/** k*G as a noble point (OpenSSL does the multiplication; its output is trusted, so no re-validation). */
export function mulBasePoint(name: CurveName, k: bigint | Uint8Array): Point {
  const c = curve(name);
  const u = mulBase(name, k);
  return c.Point.fromAffine({ x: bytesToBigInt(u.subarray(1, 1 + c.size)), y: bytesToBigInt(u.subarray(1 + c.size)) });
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
