// Butterfly key expansion (IEEE 1609.2.1 9.3; CAMP SCMS "Modifications to Crypto Primitives", bfkeyexp).
//
// Expansion function (1609.2.1 9.3.5, AES-128 variant): for a 128-bit input x and key k,
//   f_k^int(x) = [AES_k(x+1) XOR (x+1)] || [AES_k(x+2) XOR (x+2)] || [AES_k(x+3) XOR (x+3)]   (384 bits)
//   f_k(x)     = f_k^int(x) mod n
// with x = 0^32 || i || j || 0^32 for signing keys and x = 1^32 || i || j || 0^32 for encryption keys.
//
// Variants (see src/crypto/README.md for the interpretation of the unified variants):
//   original       signing caterpillar (a, A) with key ck, encryption caterpillar (h, H) with key ek:
//                  signing cocoon B = A + f_ck(x_sign)*G, encryption cocoon J = H + f_ek(x_enc)*G.
//   unified        one caterpillar (a, A) and one key k: cocoon B = A + f_k(x_sign)*G, which is both the
//                  certificate request key and the response encryption key.
//   compactUnified as unified, implicit certificates only: the ACA adds no c (the ECQV k plays that role).
// ACA (explicit certificates, original/unified): random c, certificate key B + c*G; EE key b + c.
// ACA (implicit certificates): ECQV with R_U = B; EE key e*b + s (see ecqv.ts).
import { createCipheriv } from 'node:crypto';
import { bigIntToBytes, bytesToBigInt, concat, uint32 } from './bytes.js';
import {
  addAffineMany,
  curve,
  decodeAffine,
  decodePoint,
  encodeAffine,
  mulBaseAffine,
  mulBasePoint,
  type AffinePoint,
  type CurveName,
  type Point,
} from './curves.js';
import { randomScalar } from './random.js';

export type ButterflyVariant = 'original' | 'unified' | 'compactUnified';
export type ExpansionKind = 'signing' | 'encryption';

/** Curves with a 256-bit order (f_k's 384 bits are reduced mod n). */
export type ButterflyCurve = Extract<CurveName, 'nistP256' | 'brainpoolP256r1'>;

function checkCurve(name: CurveName): void {
  if (name !== 'nistP256' && name !== 'brainpoolP256r1') throw new Error(`butterfly expansion is not defined for ${name}`);
}

/** x = 0^32||i||j||0^32 (signing) or 1^32||i||j||0^32 (encryption); i and j are 32-bit. */
export function expansionInput(kind: ExpansionKind, i: number, j: number): Uint8Array {
  const prefix = kind === 'signing' ? uint32(0) : uint32(0xffffffff);
  return concat(prefix, uint32(i), uint32(j), uint32(0));
}

/** x + d as a 128-bit big-endian integer (mod 2^128). */
function add128(x: Uint8Array, d: number): Uint8Array {
  const out = x.slice();
  let carry = d;
  for (let b = 15; b >= 0 && carry > 0; b--) {
    const v = out[b]! + carry;
    out[b] = v & 0xff;
    carry = v >> 8;
  }
  return out;
}

function aesEcb(key: Uint8Array, blocks: Uint8Array): Uint8Array {
  if (key.length !== 16) throw new RangeError('expansion key must be 16 octets (AES-128)');
  const c = createCipheriv('aes-128-ecb', key, null);
  c.setAutoPadding(false);
  return new Uint8Array(c.update(blocks));
}

/** f_k^int(x) for many x with one AES call: 48 octets each. */
export function expansionFunctionIntMany(key: Uint8Array, xs: readonly Uint8Array[]): Uint8Array[] {
  const inputs = new Uint8Array(xs.length * 48);
  xs.forEach((x, n) => {
    if (x.length !== 16) throw new RangeError('x must be 16 octets');
    for (let d = 1; d <= 3; d++) inputs.set(add128(x, d), n * 48 + (d - 1) * 16);
  });
  const out = aesEcb(key, inputs);
  for (let b = 0; b < out.length; b++) out[b]! ^= inputs[b]!;
  return xs.map((_, n) => out.subarray(n * 48, n * 48 + 48));
}

/** f_k^int(x): the 384-bit concatenation before reduction. */
export function expansionFunctionInt(key: Uint8Array, x: Uint8Array): Uint8Array {
  return expansionFunctionIntMany(key, [x])[0]!;
}

/** f_k(x) = f_k^int(x) mod n, for many x at once. */
export function expansionFunctionMany(name: ButterflyCurve, key: Uint8Array, xs: readonly Uint8Array[]): bigint[] {
  checkCurve(name);
  const Fn = curve(name).Fn;
  return expansionFunctionIntMany(key, xs).map((v) => Fn.create(bytesToBigInt(v)));
}

/** f_k(x) = f_k^int(x) mod n. */
export function expansionFunction(name: ButterflyCurve, key: Uint8Array, x: Uint8Array): bigint {
  return expansionFunctionMany(name, key, [x])[0]!;
}

export interface IJ {
  readonly i: number;
  readonly j: number;
}

function asPoint(name: CurveName, P: Point | Uint8Array): Point {
  return P instanceof Uint8Array ? decodePoint(name, P) : P;
}

function toScalar(name: CurveName, d: bigint | Uint8Array): bigint {
  return typeof d === 'bigint' ? d : curve(name).Fn.create(bytesToBigInt(d));
}

// ---------------------------------------------------------------- RA side (public expansion)

function asAffine(name: CurveName, P: Point | Uint8Array): AffinePoint {
  return P instanceof Uint8Array ? decodeAffine(name, P) : P.toAffine();
}

/**
 * Cocoon public keys X + f_k(x(kind, i, j))*G for many (i, j): one AES call, fixed-base f*G by OpenSSL, the sums
 * in affine coordinates with one shared inversion (curves.ts addAffineMany). Returns uncompressed 04||x||y points
 * in the order of `ijs`.
 */
export function cocoonPublicKeys(
  name: ButterflyCurve,
  caterpillar: Point | Uint8Array,
  expansionKey: Uint8Array,
  kind: ExpansionKind,
  ijs: readonly IJ[],
): Uint8Array[] {
  const X = asAffine(name, caterpillar);
  const fs = expansionFunctionMany(name, expansionKey, ijs.map(({ i, j }) => expansionInput(kind, i, j)));
  // f = 0 (probability ~2^-256) has no OpenSSL multiple: X + 0*G = X.
  const fG = fs.map((f) => (f === 0n ? undefined : mulBaseAffine(name, f)));
  const sums = addAffineMany(name, fG.map(() => X), fG.map((P) => P ?? X));
  return sums.map((S, n) => {
    if (fG[n] === undefined) return encodeAffine(name, X);
    if (S === undefined) throw new Error('cocoon key is the identity');
    return encodeAffine(name, S);
  });
}

/** What the EE sent the RA (1609.2.1 AdditionalParams + tbsCert.verifyKeyIndicator), public parts only. */
export type ButterflyPublicParams =
  | {
      readonly variant: 'original';
      readonly signingCaterpillar: Point | Uint8Array;
      readonly signingExpansionKey: Uint8Array;
      readonly encryptionCaterpillar: Point | Uint8Array;
      readonly encryptionExpansionKey: Uint8Array;
    }
  | {
      readonly variant: 'unified' | 'compactUnified';
      readonly caterpillar: Point | Uint8Array;
      readonly expansionKey: Uint8Array;
    };

export interface CocoonPair extends IJ {
  /** Cocoon public key for signing B (goes to the ACA as the request key). */
  readonly signingCocoon: Uint8Array;
  /** Key the ACA encrypts the response to: J (original) or B itself (unified, compactUnified). */
  readonly encryptionKey: Uint8Array;
}

/** RA: expand the caterpillar(s) for many (i, j). */
export function raExpand(name: ButterflyCurve, params: ButterflyPublicParams, ijs: readonly IJ[]): CocoonPair[] {
  if (params.variant === 'original') {
    const B = cocoonPublicKeys(name, params.signingCaterpillar, params.signingExpansionKey, 'signing', ijs);
    const J = cocoonPublicKeys(name, params.encryptionCaterpillar, params.encryptionExpansionKey, 'encryption', ijs);
    return ijs.map(({ i, j }, n) => ({ i, j, signingCocoon: B[n]!, encryptionKey: J[n]! }));
  }
  const B = cocoonPublicKeys(name, params.caterpillar, params.expansionKey, 'signing', ijs);
  return ijs.map(({ i, j }, n) => ({ i, j, signingCocoon: B[n]!, encryptionKey: B[n]! }));
}

// ---------------------------------------------------------------- ACA side

/** ACA, explicit certificate: random c (or the given one) and the certificate verification key B + c*G. */
export function acaExplicitKey(name: ButterflyCurve, signingCocoon: Point | Uint8Array, c?: bigint): { c: bigint; verificationKey: Point } {
  const B = asPoint(name, signingCocoon);
  for (;;) {
    const cc = c ?? randomScalar(name);
    const P = B.add(mulBasePoint(name, cc));
    if (!P.is0()) return { c: cc, verificationKey: P };
    if (c !== undefined) throw new Error('B + c*G is the identity');
  }
}

/**
 * acaExplicitKey for many signing cocoons B (valid points, e.g. from decodeAffine) with fresh random c each:
 * c*G by OpenSSL, B + c*G in affine coordinates with one shared inversion. Returns c and the key compressed
 * (02/03||x, what the certificate carries), in the order given. Batch API for ACA-side issuance.
 */
export function acaExplicitKeys(name: ButterflyCurve, signingCocoons: readonly AffinePoint[]): { c: bigint; verificationKey: Uint8Array }[] {
  const cs = signingCocoons.map(() => randomScalar(name));
  const sums = addAffineMany(name, signingCocoons, cs.map((c) => mulBaseAffine(name, c)));
  return sums.map((S, n) => {
    if (S !== undefined) return { c: cs[n]!, verificationKey: encodeAffine(name, S, true) };
    // B = -c*G (probability ~2^-256): draw again for this one.
    const { c, verificationKey } = acaExplicitKey(name, decodePoint(name, encodeAffine(name, signingCocoons[n]!)));
    return { c, verificationKey: verificationKey.toBytes(true) };
  });
}

// ---------------------------------------------------------------- EE side

/** Cocoon private key x + f_k(x(kind, i, j)) mod n. */
export function cocoonPrivateKey(
  name: ButterflyCurve,
  caterpillarPrivate: bigint | Uint8Array,
  expansionKey: Uint8Array,
  kind: ExpansionKind,
  i: number,
  j: number,
): bigint {
  const Fn = curve(name).Fn;
  return Fn.add(toScalar(name, caterpillarPrivate), expansionFunction(name, expansionKey, expansionInput(kind, i, j)));
}

/** The EE's secrets matching ButterflyPublicParams. */
export type ButterflyPrivateParams =
  | {
      readonly variant: 'original';
      readonly signingCaterpillarPrivate: bigint | Uint8Array;
      readonly signingExpansionKey: Uint8Array;
      readonly encryptionCaterpillarPrivate: bigint | Uint8Array;
      readonly encryptionExpansionKey: Uint8Array;
    }
  | {
      readonly variant: 'unified' | 'compactUnified';
      readonly caterpillarPrivate: bigint | Uint8Array;
      readonly expansionKey: Uint8Array;
    };

/** EE: cocoon private keys for (i, j): b (signing cocoon) and the response decryption key. */
export function eeCocoonKeys(
  name: ButterflyCurve,
  params: ButterflyPrivateParams,
  i: number,
  j: number,
): { signingCocoonPrivate: bigint; decryptionPrivate: bigint } {
  if (params.variant === 'original') {
    return {
      signingCocoonPrivate: cocoonPrivateKey(name, params.signingCaterpillarPrivate, params.signingExpansionKey, 'signing', i, j),
      decryptionPrivate: cocoonPrivateKey(name, params.encryptionCaterpillarPrivate, params.encryptionExpansionKey, 'encryption', i, j),
    };
  }
  const b = cocoonPrivateKey(name, params.caterpillarPrivate, params.expansionKey, 'signing', i, j);
  return { signingCocoonPrivate: b, decryptionPrivate: b };
}

/** EE, explicit butterfly certificate (original/unified): signing key b + c mod n. */
export function eeExplicitPrivateKey(name: ButterflyCurve, signingCocoonPrivate: bigint, c: bigint): bigint {
  const Fn = curve(name).Fn;
  return Fn.add(signingCocoonPrivate, Fn.create(c));
}

/** Scalar as fixed-length octets (convenience for passing keys to ECDSA/ECIES). */
export function butterflyScalarBytes(name: ButterflyCurve, k: bigint): Uint8Array {
  return bigIntToBytes(k, curve(name).size);
}
