// ECDSA for IEEE 1609.2 (5.3.1): signing and verification on the four curves, SHA-256 with the 256-bit curves
// and SHA-384 with the 384-bit curves. OpenSSL (node:crypto) does the work; the compressed-R form is signed here
// with an explicit k (kG by OpenSSL's fixed-base multiplication) so that the parity of R is known.
import { createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { bigIntToBytes, bytesToBigInt, concat } from './bytes.js';
import { curve, mulBase, scalarFromBytes, type CurveName } from './curves.js';
import { hash, type HashAlgorithm } from './hash.js';
import { randomScalar } from './random.js';

/**
 * 1609.2 5.3.1.2.2 data input for a signature: H(tbs) || H(signer), where H(signer) is the hash of the signer's
 * certificate (COER) or H("") when there is no signer certificate (self-signed, or signer = digest of a key).
 * ECDSA then hashes this once more.
 */
export function signatureInput1609Dot2(
  tbsBytes: Uint8Array,
  signerCertBytes: Uint8Array | undefined,
  alg: HashAlgorithm,
): Uint8Array {
  return concat(hash(alg, tbsBytes), hash(alg, signerCertBytes ?? new Uint8Array(0)));
}

/** How r is carried (1609.2 EcdsaP256Signature.rSig / EcdsaP384Signature.rSig choices). */
export type RForm = 'x-only' | 'compressed-y-0' | 'compressed-y-1';

export interface EcdsaSignature {
  readonly rForm: RForm;
  /** x-only: r = x(R) mod n; compressed-y-*: x(R) (the curve point's x-coordinate). Fixed length (32/48). */
  readonly r: Uint8Array;
  /** s, fixed length (32/48). */
  readonly s: Uint8Array;
}

export interface SigningKey {
  readonly curve: CurveName;
  /** Private scalar, fixed-length big-endian. Kept in memory only. */
  readonly d: Uint8Array;
  readonly keyObject: KeyObject;
}

export interface VerificationKey {
  readonly curve: CurveName;
  /** Public key as given (04||x||y or 02/03||x). */
  readonly publicKey: Uint8Array;
  readonly keyObject: KeyObject;
}

// DER framing for node:crypto key import (fixed templates: all lengths here are < 128). This is key plumbing for
// OpenSSL, not 1609.2 encoding.
function der(tag: number, ...content: Uint8Array[]): Uint8Array {
  const body = concat(...content);
  if (body.length > 127) throw new Error('template length');
  return concat(Uint8Array.of(tag, body.length), body);
}
const EC_PUBLIC_KEY_OID = new Uint8Array(Buffer.from('06072a8648ce3d0201', 'hex'));

/** Wrap a private scalar for signing (the KeyObject is built once and reused). */
export function signingKey(name: CurveName, d: Uint8Array | bigint): SigningKey {
  const c = curve(name);
  const dBytes = typeof d === 'bigint' ? bigIntToBytes(d, c.size) : d;
  if (dBytes.length !== c.size) throw new RangeError(`private key must be ${c.size} octets`);
  scalarFromBytes(name, dBytes); // range check
  // SEC 1 ECPrivateKey { version 1, privateKey, [0] parameters }
  const sec1 = der(0x30, Uint8Array.of(2, 1, 1), der(0x04, dBytes), der(0xa0, c.oidDer));
  const keyObject = createPrivateKey({ key: Buffer.from(sec1), format: 'der', type: 'sec1' });
  return Object.freeze({ curve: name, d: new Uint8Array(dBytes), keyObject });
}

// Importing a public key into OpenSSL costs more than the verification itself, and an SCMS verifies against the
// same few CA/RA keys again and again: keep the most recent ones (bounded, public material only).
const VERIFICATION_KEY_CACHE_SIZE = 256;
const verificationKeyCache = new Map<string, VerificationKey>();

/** Wrap a public key (uncompressed or compressed encoding) for verification. */
export function verificationKey(name: CurveName, publicKey: Uint8Array): VerificationKey {
  const id = `${name}:${Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.byteLength).toString('hex')}`;
  const cached = verificationKeyCache.get(id);
  if (cached !== undefined) return cached;
  const c = curve(name);
  const spki = der(0x30, der(0x30, EC_PUBLIC_KEY_OID, c.oidDer), der(0x03, Uint8Array.of(0), publicKey));
  const keyObject = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  const key: VerificationKey = Object.freeze({ curve: name, publicKey: new Uint8Array(publicKey), keyObject });
  if (verificationKeyCache.size >= VERIFICATION_KEY_CACHE_SIZE) {
    verificationKeyCache.delete(verificationKeyCache.keys().next().value as string);
  }
  verificationKeyCache.set(id, key);
  return key;
}

/**
 * Sign `message` (ECDSA hashes it with the curve's hash). `form: 'x-only'` (default) uses OpenSSL directly;
 * `form: 'compressed'` returns R as compressed-y-0/1.
 */
export function ecdsaSign(key: SigningKey, message: Uint8Array, form: 'x-only' | 'compressed' = 'x-only'): EcdsaSignature {
  const c = curve(key.curve);
  if (form === 'x-only') {
    const sig = nodeSign(c.hash, message, { key: key.keyObject, dsaEncoding: 'ieee-p1363' });
    return { rForm: 'x-only', r: new Uint8Array(sig.subarray(0, c.size)), s: new Uint8Array(sig.subarray(c.size)) };
  }
  const Fn = c.Fn;
  const e = Fn.create(bytesToBigInt(hash(c.hash, message))); // digest length = bit length of n for all four curves
  const d = bytesToBigInt(key.d);
  for (;;) {
    const k = randomScalar(key.curve);
    const R = mulBase(key.curve, k, true); // 02/03 || x
    const x = R.subarray(1);
    const r = Fn.create(bytesToBigInt(x));
    if (r === 0n) continue;
    const s = Fn.mul(Fn.inv(k), Fn.add(e, Fn.mul(r, d)));
    if (s === 0n) continue;
    return {
      rForm: R[0] === 2 ? 'compressed-y-0' : 'compressed-y-1',
      r: new Uint8Array(x),
      s: bigIntToBytes(s, c.size),
    };
  }
}

/**
 * Verify a signature over `message`. x-only and compressed R are accepted; for compressed R, r = x(R) mod n
 * (1609.2 5.3.1: the verifier uses the x-coordinate). Returns false on any malformed input.
 */
export function ecdsaVerify(key: VerificationKey, message: Uint8Array, sig: EcdsaSignature): boolean {
  const c = curve(key.curve);
  if (sig.r.length !== c.size || sig.s.length !== c.size) return false;
  let r = bytesToBigInt(sig.r);
  if (sig.rForm !== 'x-only') r = c.Fn.create(r);
  const s = bytesToBigInt(sig.s);
  if (r === 0n || r >= c.n || s === 0n || s >= c.n) return false;
  try {
    return nodeVerify(c.hash, message, { key: key.keyObject, dsaEncoding: 'ieee-p1363' }, concat(bigIntToBytes(r, c.size), sig.s));
  } catch {
    return false;
  }
}
