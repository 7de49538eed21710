// ECQV implicit certificates (SEC 4; IEEE 1609.2 5.3.2 and 6.4.3 for the hash input).
//
// CA:  P_U = R_U + k*G (reconstruction value), then, once the certificate (with P_U) is fixed and e computed,
//      s = e*k + d_CA mod n (private key reconstruction value; SEC 4 calls it r).
// EE:  d_U = e*k_U + s mod n,  Q_U = e*P_U + Q_CA;  d_U*G == Q_U.
//
// e for 1609.2: e = H( H(ToBeSignedCertificate) || H(issuer certificate) ) taken as a FULL-length integer mod n
// (what deployed SCMS data uses; see test/vectors/SOURCES.md). SEC 4's generic rule truncates the hash to the
// leftmost floor(log2 n) bits (for P-256: H >> 1), which CAMP's implicit.txt uses; ecqvHashSec4 implements that.
import { bytesToBigInt, concat } from './bytes.js';
import {
  addAffineMany,
  curve,
  decodeAffine,
  decodePoint,
  encodeAffine,
  mulBase,
  mulBaseAffine,
  mulBasePoint,
  mulPointPublic,
  type AffinePoint,
  type CurveName,
  type Point,
} from './curves.js';
import { hash, type HashAlgorithm } from './hash.js';
import { randomScalar } from './random.js';

function asPoint(name: CurveName, P: Point | Uint8Array): Point {
  return P instanceof Uint8Array ? decodePoint(name, P) : P;
}

/** 1609.2 e from the issuer certificate's hash: int(H(H(tbsCert) || issuerCertHash)) mod n. */
export function ecqvHash1609Dot2FromIssuerHash(
  name: CurveName,
  tbsCertBytes: Uint8Array,
  issuerCertHash: Uint8Array,
  alg: HashAlgorithm = curve(name).hash,
): bigint {
  return curve(name).Fn.create(bytesToBigInt(hash(alg, concat(hash(alg, tbsCertBytes), issuerCertHash))));
}

/** 1609.2 e = int(H(H(tbsCert) || H(issuer certificate))) mod n, full hash length (no truncation). */
export function ecqvHash1609Dot2(
  name: CurveName,
  tbsCertBytes: Uint8Array,
  issuerCertBytes: Uint8Array,
  alg: HashAlgorithm = curve(name).hash,
): bigint {
  return ecqvHash1609Dot2FromIssuerHash(name, tbsCertBytes, hash(alg, issuerCertBytes), alg);
}

/** SEC 4 generic e = leftmost floor(log2 n) bits of H(CertU) (CAMP implicit.txt). */
export function ecqvHashSec4(name: CurveName, certU: Uint8Array, alg: HashAlgorithm = curve(name).hash): bigint {
  const c = curve(name);
  const digest = hash(alg, certU);
  const keep = c.n.toString(2).length - 1; // floor(log2 n)
  const have = digest.length * 8;
  const h = bytesToBigInt(digest);
  return c.Fn.create(have > keep ? h >> BigInt(have - keep) : h);
}

export interface EcqvReconstruction {
  /** CA's ephemeral scalar k (secret; needed again for s). */
  readonly k: bigint;
  /** Reconstruction value P_U = R_U + k*G. */
  readonly reconstructionValue: Point;
}

/** CA side, step 1: P_U = R_U + k*G with a fresh k (or the given k, for tests). kG by OpenSSL. */
export function ecqvReconstructionValue(name: CurveName, requestPublicKey: Point | Uint8Array, k?: bigint): EcqvReconstruction {
  const RU = asPoint(name, requestPublicKey);
  for (;;) {
    const kk = k ?? randomScalar(name);
    const P = RU.add(mulBasePoint(name, kk));
    if (!P.is0()) return { k: kk, reconstructionValue: P };
    if (k !== undefined) throw new Error('R_U + k*G is the identity');
  }
}

/**
 * CA side, step 1 for a batch of requests: fresh k per request, P_U encoded compressed (02/03||x) with one shared
 * field inversion for the whole batch.
 */
export function ecqvReconstructionValues(
  name: CurveName,
  requestPublicKeys: readonly (Point | Uint8Array | AffinePoint)[],
): { k: bigint; reconstructionValue: Uint8Array }[] {
  const RU = requestPublicKeys.map((R) => (R instanceof Uint8Array ? decodeAffine(name, R) : 'toAffine' in R ? R.toAffine() : R));
  const ks = RU.map(() => randomScalar(name));
  // P_U = R_U + k*G in affine coordinates, one shared inversion for the batch (curves.ts addAffineMany).
  const sums = addAffineMany(name, RU, ks.map((k) => mulBaseAffine(name, k)));
  return sums.map((P, n) => {
    if (P !== undefined) return { k: ks[n]!, reconstructionValue: encodeAffine(name, P, true) };
    const r = ecqvReconstructionValue(name, encodeAffine(name, RU[n]!)); // R_U = -k*G (~2^-256): draw again
    return { k: r.k, reconstructionValue: r.reconstructionValue.toBytes(true) };
  });
}

/** CA side, step 2: s = e*k + d_CA mod n. */
export function ecqvPrivateKeyContribution(name: CurveName, e: bigint, k: bigint, dCA: bigint): bigint {
  const Fn = curve(name).Fn;
  return Fn.add(Fn.mul(Fn.create(e), k), dCA);
}

/** EE side: d_U = e*k_U + s mod n. */
export function ecqvReconstructPrivateKey(name: CurveName, e: bigint, kU: bigint, s: bigint): bigint {
  const Fn = curve(name).Fn;
  return Fn.add(Fn.mul(Fn.create(e), kU), Fn.create(s));
}

/** Anyone: Q_U = e*P_U + Q_CA (e is public, so the variable-time multiplication is used). */
export function ecqvReconstructPublicKey(name: CurveName, e: bigint, reconstructionValue: Point | Uint8Array, qCA: Point | Uint8Array): Point {
  return mulPointPublic(name, asPoint(name, reconstructionValue), e).add(asPoint(name, qCA));
}

/** d_U*G == Q_U (d_U*G by OpenSSL). */
export function ecqvCheckKeyPair(name: CurveName, dU: bigint, qU: Point | Uint8Array): boolean {
  const Q = asPoint(name, qU);
  if (dU <= 0n || dU >= curve(name).n || Q.is0()) return false;
  const D = mulBase(name, dU, false);
  const mine = Q.toBytes(false);
  return Buffer.from(D).equals(Buffer.from(mine));
}
