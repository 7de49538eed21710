/**
 * Conversions between the 1609.2 key / signature structures (codec values) and the crypto layer's bytes, shared by
 * spdu.ts and encryption.ts. 1609.2-2022 6.3.x (Signature, EccP256CurvePoint, PublicVerificationKey,
 * BasePublicEncryptionKey), 6.4.3 (whole-certificate hash).
 */
import type {
  BasePublicEncryptionKey,
  Certificate,
  EccP256CurvePoint,
  EccP384CurvePoint,
  HashAlgorithm as HashAlgorithmId,
  PublicVerificationKey,
  Signature,
} from '../codec/index.js';
import { Certificate as CertificateCodec } from '../codec/index.js';
import { concat } from '../crypto/bytes.js';
import { curve, decodePoint, type CurveName } from '../crypto/curves.js';
import type { EcdsaSignature, RForm } from '../crypto/ecdsa.js';
import { hash, type HashAlgorithm } from '../crypto/hash.js';

/** A public key with its curve (crypto naming); `publicKey` is 04||x||y or 02/03||x. */
export interface CurvePublicKey {
  readonly curve: CurveName;
  readonly publicKey: Uint8Array;
}

/** Hash algorithm that goes with a signing curve (1609.2 5.3.1: SHA-256 for 256-bit curves, SHA-384 for 384-bit). */
export function hashForCurve(name: CurveName): HashAlgorithm {
  return curve(name).hash;
}

/** HashAlgorithm enumeration value (codec) -> crypto hash name; undefined for algorithms we do not implement. */
export function hashAlgorithmOf(id: HashAlgorithmId): HashAlgorithm | undefined {
  return id === 'sha256' || id === 'sha384' ? id : undefined;
}

const SIGNATURE_ALTERNATIVE: Record<CurveName, string> = {
  nistP256: 'ecdsaNistP256Signature',
  brainpoolP256r1: 'ecdsaBrainpoolP256r1Signature',
  brainpoolP384r1: 'ecdsaBrainpoolP384r1Signature',
  nistP384: 'ecdsaNistP384Signature',
};

const VERIFICATION_KEY_ALTERNATIVE: Record<CurveName, string> = {
  nistP256: 'ecdsaNistP256',
  brainpoolP256r1: 'ecdsaBrainpoolP256r1',
  brainpoolP384r1: 'ecdsaBrainpoolP384r1',
  nistP384: 'ecdsaNistP384',
};

function curveOfAlternative(table: Record<CurveName, string>, alt: string): CurveName | undefined {
  return (Object.keys(table) as CurveName[]).find((c) => table[c] === alt);
}

function onlyKey(choice: object): string {
  const keys = Object.keys(choice);
  if (keys.length !== 1) throw new TypeError('not a CHOICE value');
  return keys[0]!;
}

/** EcdsaSignature (crypto) -> Signature (1609.2 6.3.28-6.3.31). */
export function encodeSignature(name: CurveName, sig: EcdsaSignature): Signature {
  const rSig = { [sig.rForm]: sig.r } as EccP256CurvePoint & EccP384CurvePoint;
  return { [SIGNATURE_ALTERNATIVE[name]]: { rSig, sSig: sig.s } } as Signature;
}

/** Signature -> curve + EcdsaSignature; undefined for an alternative or r form we cannot verify (fill, uncompressed, sm2). */
export function decodeSignature(signature: Signature): { curve: CurveName; signature: EcdsaSignature } | undefined {
  const alt = onlyKey(signature);
  const name = curveOfAlternative(SIGNATURE_ALTERNATIVE, alt);
  if (!name) return undefined;
  const { rSig, sSig } = (signature as Record<string, { rSig: EccP256CurvePoint; sSig: Uint8Array }>)[alt]!;
  const form = onlyKey(rSig);
  if (form !== 'x-only' && form !== 'compressed-y-0' && form !== 'compressed-y-1') return undefined;
  return { curve: name, signature: { rForm: form as RForm, r: (rSig as Record<string, Uint8Array>)[form]!, s: sSig } };
}

/** EccP256CurvePoint / EccP384CurvePoint -> 02/03||x or 04||x||y; undefined for x-only and fill (not a public key). */
export function pointBytes(p: EccP256CurvePoint | EccP384CurvePoint): Uint8Array | undefined {
  if ('compressed-y-0' in p) return concat(Uint8Array.of(2), p['compressed-y-0']);
  if ('compressed-y-1' in p) return concat(Uint8Array.of(3), p['compressed-y-1']);
  const u = 'uncompressedP256' in p ? p.uncompressedP256 : 'uncompressedP384' in p ? p.uncompressedP384 : undefined;
  return u ? concat(Uint8Array.of(4), u.x, u.y) : undefined;
}

/** A public key (any encoding) -> EccP256CurvePoint / EccP384CurvePoint in compressed form (validated on the curve). */
export function compressedPoint(name: CurveName, publicKey: Uint8Array): EccP256CurvePoint & EccP384CurvePoint {
  const P = decodePoint(name, publicKey).toBytes(true);
  return { [P[0] === 2 ? 'compressed-y-0' : 'compressed-y-1']: P.slice(1) } as EccP256CurvePoint & EccP384CurvePoint;
}

/** PublicVerificationKey -> curve + key bytes (undefined for sm2 or unknown alternatives). */
export function verificationKeyOf(key: PublicVerificationKey): CurvePublicKey | undefined {
  const alt = onlyKey(key);
  const name = curveOfAlternative(VERIFICATION_KEY_ALTERNATIVE, alt);
  if (!name) return undefined;
  const pub = pointBytes((key as Record<string, EccP256CurvePoint>)[alt]!);
  return pub ? { curve: name, publicKey: pub } : undefined;
}

/** curve + key -> PublicVerificationKey (compressed point). */
export function publicVerificationKey(name: CurveName, publicKey: Uint8Array): PublicVerificationKey {
  return { [VERIFICATION_KEY_ALTERNATIVE[name]]: compressedPoint(name, publicKey) } as PublicVerificationKey;
}

/** BasePublicEncryptionKey -> curve + key bytes (ECIES curves only: eciesNistP256, eciesBrainpoolP256r1). */
export function encryptionKeyOf(key: BasePublicEncryptionKey): CurvePublicKey | undefined {
  if ('eciesNistP256' in key) {
    const pub = pointBytes(key.eciesNistP256);
    return pub ? { curve: 'nistP256', publicKey: pub } : undefined;
  }
  if ('eciesBrainpoolP256r1' in key) {
    const pub = pointBytes(key.eciesBrainpoolP256r1);
    return pub ? { curve: 'brainpoolP256r1', publicKey: pub } : undefined;
  }
  return undefined;
}

/** The public key of an explicit certificate (verifyKeyIndicator.verificationKey); undefined for implicit ones. */
export function explicitCertificateKey(cert: Certificate): CurvePublicKey | undefined {
  const vki = cert.toBeSigned.verifyKeyIndicator;
  return 'verificationKey' in vki ? verificationKeyOf(vki.verificationKey) : undefined;
}

/**
 * Whole-certificate hash algorithm (1609.2 6.4.3): from the issuer field — sha256AndDigest -> SHA-256,
 * sha384AndDigest -> SHA-384, self -> the algorithm it names.
 */
export function certificateHashAlgorithm(cert: Certificate): HashAlgorithm {
  const issuer = cert.issuer;
  if ('sha256AndDigest' in issuer) return 'sha256';
  if ('sha384AndDigest' in issuer) return 'sha384';
  if ('self' in issuer) {
    const alg = hashAlgorithmOf(issuer.self);
    if (alg) return alg;
  }
  throw new Error(`unsupported certificate hash algorithm (issuer ${Object.keys(issuer)[0]})`);
}

/** COER encoding of a certificate (canonical: the codec only produces canonical OER). */
export function certificateBytes(cert: Certificate): Uint8Array {
  return CertificateCodec.encode(cert);
}

/** HashedId8 of a certificate: the last 8 octets of its whole-certificate hash over the COER encoding (6.4.3). */
export function certHashedId8(cert: Certificate): Uint8Array {
  return hash(certificateHashAlgorithm(cert), certificateBytes(cert)).slice(-8);
}
