/**
 * IEEE 1609.2 certificates: canonical encoding and whole-certificate hash (6.4.3, 5.3.9.2), HashedId3/8/10
 * (6.3.x), explicit issuance and verification (6.4.3, 5.3.1), implicit issuance and key reconstruction (ECQV,
 * 5.3.2), and the 1609.2 "hash the data, hash the signer, sign" step used by every signed structure.
 *
 * Choices (documented here once):
 * - Whole-certificate hash algorithm (CertificateBase, 6.4.3 / 5.3.9.2): fixed by the certificate's OWN key —
 *   SHA-256 for an implicit certificate or a 256-bit verificationKey, SHA-384 for a 384-bit one. It is NOT
 *   the algorithm the issuer field names: that one is the issuer key's hash, used to verify (IssuerIdentifier).
 *   So a P-256 ICA under a P-384 root carries `sha384AndDigest` but its own HashedId8 is SHA-256.
 *   `sm3AndDigest` / SM2 keys are not supported.
 * - Canonicalization (6.1.2, CertificateBase / ToBeSignedCertificate / Signature notes): before a certificate
 *   or its toBeSigned is hashed, curve points in verifyKeyIndicator and encryptionKey are put in compressed
 *   form and rSig in x-only form. Issued certificates are canonical already (keys compressed); a compressed
 *   rSig (`rForm: 'compressed'`) is allowed on the wire and is canonicalized to x-only for hashing.
 * - Implicit certificates take their curve from the issuer's key (Q_U = e*P_U + Q_CA lives on the issuer's
 *   curve); the issuer must use a 256-bit curve (reconstructionValue is an EccP256CurvePoint).
 */
import { ECDH } from 'node:crypto';
import {
  Certificate,
  ToBeSignedCertificate,
  type IssuerIdentifier,
  type VerificationKeyIndicator,
} from '../codec/gen/Ieee1609Dot2.js';
import type {
  EccP256CurvePoint,
  EccP384CurvePoint,
  HashAlgorithm as AsnHashAlgorithm,
  PublicEncryptionKey,
  PublicVerificationKey,
  Signature,
  SymmAlgorithm,
} from '../codec/gen/Ieee1609Dot2BaseTypes.js';
import { bigIntToBytes, bytesToBigInt, concat } from '../crypto/bytes.js';
import { curve, decodeAffine, decodePoint, mulBasePoint, mulPointPublic, type AffinePoint, type CurveName, type Point } from '../crypto/curves.js';
import { ecdsaVerify, signatureInput1609Dot2, verificationKey, type EcdsaSignature, type RForm } from '../crypto/ecdsa.js';
import {
  ecqvCheckKeyPair,
  ecqvHash1609Dot2FromIssuerHash,
  ecqvPrivateKeyContribution,
  ecqvReconstructionValue,
  ecqvReconstructionValues,
  ecqvReconstructPrivateKey,
  ecqvReconstructPublicKey,
} from '../crypto/ecqv.js';
import { hash, type HashAlgorithm } from '../crypto/hash.js';
import type { Signer } from './signer.js';

export { buildTbsCertificate, type TbsCertificateInput } from './cert-build.js';

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/** A certificate (or an argument about one) is malformed or unsupported; not a failed signature check. */
export class CertificateError extends Error {
  override readonly name = 'CertificateError';
}

function fail(msg: string): never {
  throw new CertificateError(msg);
}

// ---------------------------------------------------------------------------------------------
// Curve points, keys and signatures (1609.2 6.3.x EccP256CurvePoint / EccP384CurvePoint)
// ---------------------------------------------------------------------------------------------

export type EccCurvePoint = EccP256CurvePoint | EccP384CurvePoint;

/** PublicVerificationKey / Signature alternatives per curve (6.3.x). */
const VERIFY_KEY_ALT: Record<CurveName, string> = {
  nistP256: 'ecdsaNistP256',
  brainpoolP256r1: 'ecdsaBrainpoolP256r1',
  brainpoolP384r1: 'ecdsaBrainpoolP384r1',
  nistP384: 'ecdsaNistP384',
};
const SIGNATURE_ALT: Record<CurveName, string> = {
  nistP256: 'ecdsaNistP256Signature',
  brainpoolP256r1: 'ecdsaBrainpoolP256r1Signature',
  brainpoolP384r1: 'ecdsaBrainpoolP384r1Signature',
  nistP384: 'ecdsaNistP384Signature',
};
const ENC_KEY_ALT: Partial<Record<CurveName, string>> = {
  nistP256: 'eciesNistP256',
  brainpoolP256r1: 'eciesBrainpoolP256r1',
};

// alternative name -> curve, per table (built once; looked up for every key and signature)
const reverseTables = new Map<Partial<Record<CurveName, string>>, Map<string, CurveName>>();

function curveOfAlt(table: Partial<Record<CurveName, string>>, alt: string): CurveName | undefined {
  let r = reverseTables.get(table);
  if (!r) {
    r = new Map(Object.entries(table).map(([c, a]) => [a as string, c as CurveName]));
    reverseTables.set(table, r);
  }
  return r.get(alt);
}

function only(choice: object, what: string): [string, unknown] {
  const keys = Object.keys(choice ?? {});
  if (keys.length !== 1) fail(`${what}: not a CHOICE value`);
  const k = keys[0]!;
  if (k === '$unknown') fail(`${what}: unknown alternative`);
  return [k, (choice as Record<string, unknown>)[k]];
}

/**
 * An encoded point (04||x||y or 02/03||x) as an EccP256CurvePoint / EccP384CurvePoint. By default the
 * canonical compressed form (the parity of y read from the last octet of y; no curve arithmetic).
 */
export function eccPointFromBytes(bytes: Uint8Array, form: 'compressed' | 'uncompressed' = 'compressed'): EccCurvePoint {
  const size = bytes[0] === 4 ? (bytes.length - 1) / 2 : bytes.length - 1;
  if (size !== 32 && size !== 48) fail(`not an encoded P-256/P-384 point (${bytes.length} octets)`);
  if (bytes[0] === 4) {
    const x = bytes.slice(1, 1 + size);
    const y = bytes.slice(1 + size);
    if (form === 'uncompressed') return size === 32 ? { uncompressedP256: { x, y } } : { uncompressedP384: { x, y } };
    return (y[size - 1]! & 1) === 0 ? { 'compressed-y-0': x } : { 'compressed-y-1': x };
  }
  if (bytes[0] !== 2 && bytes[0] !== 3) fail('not an encoded point (first octet must be 02, 03 or 04)');
  if (form === 'uncompressed') fail('uncompressed form needs the y coordinate: decode the point first');
  return bytes[0] === 2 ? { 'compressed-y-0': bytes.slice(1) } : { 'compressed-y-1': bytes.slice(1) };
}

/** EccP256CurvePoint / EccP384CurvePoint -> 02/03||x or 04||x||y. x-only and fill are not keys: error. */
export function eccPointToBytes(p: EccCurvePoint): Uint8Array {
  const [alt, v] = only(p, 'EccCurvePoint');
  switch (alt) {
    case 'compressed-y-0':
      return concat(Uint8Array.of(2), v as Uint8Array);
    case 'compressed-y-1':
      return concat(Uint8Array.of(3), v as Uint8Array);
    case 'uncompressedP256':
    case 'uncompressedP384': {
      const { x, y } = v as { x: Uint8Array; y: Uint8Array };
      return concat(Uint8Array.of(4), x, y);
    }
    default:
      return fail(`EccCurvePoint ${alt} does not identify a point`);
  }
}

/** Canonical (6.1.2) form of a key point: compressed-y-0/1. */
function canonicalPoint(p: EccCurvePoint): EccCurvePoint {
  const [alt] = only(p, 'EccCurvePoint');
  return alt === 'uncompressedP256' || alt === 'uncompressedP384' ? eccPointFromBytes(eccPointToBytes(p)) : p;
}

/** PublicVerificationKey for a curve and an encoded point (canonical compressed form). */
export function publicVerificationKey(curveName: CurveName, publicKey: Uint8Array): PublicVerificationKey {
  checkPointSize(curveName, publicKey);
  return { [VERIFY_KEY_ALT[curveName]]: eccPointFromBytes(publicKey) } as PublicVerificationKey;
}

/** PublicEncryptionKey (6.3.x) for an ECIES key: 256-bit curves only (BasePublicEncryptionKey). */
export function publicEncryptionKey(
  curveName: CurveName,
  publicKey: Uint8Array,
  symmAlgorithm: SymmAlgorithm = 'aes128Ccm',
): PublicEncryptionKey {
  const alt = ENC_KEY_ALT[curveName] ?? fail(`no BasePublicEncryptionKey alternative for ${curveName}`);
  checkPointSize(curveName, publicKey);
  return { supportedSymmAlg: symmAlgorithm, publicKey: { [alt]: eccPointFromBytes(publicKey) } as PublicEncryptionKey['publicKey'] };
}

function checkPointSize(curveName: CurveName, p: Uint8Array): void {
  const size = curve(curveName).size;
  const ok = p[0] === 4 ? p.length === 1 + 2 * size : (p[0] === 2 || p[0] === 3) && p.length === 1 + size;
  if (!ok) fail(`public key is not an encoded ${curveName} point`);
}

/** The curve and encoded point of a PublicVerificationKey. */
export function fromPublicVerificationKey(k: PublicVerificationKey): { curve: CurveName; publicKey: Uint8Array } {
  const [alt, v] = only(k, 'PublicVerificationKey');
  const c = curveOfAlt(VERIFY_KEY_ALT, alt) ?? fail(`unsupported PublicVerificationKey ${alt}`);
  const publicKey = eccPointToBytes(v as EccCurvePoint);
  checkPointSize(c, publicKey);
  return { curve: c, publicKey };
}

/** 1609.2 Signature CHOICE from an ECDSA signature (rSig x-only or compressed-y-0/1). */
export function signatureFromEcdsa(curveName: CurveName, sig: EcdsaSignature): Signature {
  const rSig =
    sig.rForm === 'x-only'
      ? { 'x-only': sig.r }
      : sig.rForm === 'compressed-y-0'
        ? { 'compressed-y-0': sig.r }
        : { 'compressed-y-1': sig.r };
  return { [SIGNATURE_ALT[curveName]]: { rSig, sSig: sig.s } } as Signature;
}

/** The curve and ECDSA signature of a 1609.2 Signature (uncompressed rSig is taken as its x). */
export function ecdsaFromSignature(s: Signature): { curve: CurveName; signature: EcdsaSignature } {
  const [alt, v] = only(s, 'Signature');
  const c = curveOfAlt(SIGNATURE_ALT, alt) ?? fail(`unsupported Signature ${alt}`);
  const { rSig, sSig } = v as { rSig: EccCurvePoint; sSig: Uint8Array };
  const [ralt, rv] = only(rSig, 'rSig');
  let rForm: RForm;
  let r: Uint8Array;
  if (ralt === 'x-only') [rForm, r] = ['x-only', rv as Uint8Array];
  else if (ralt === 'compressed-y-0' || ralt === 'compressed-y-1') [rForm, r] = [ralt, rv as Uint8Array];
  else if (ralt === 'uncompressedP256' || ralt === 'uncompressedP384') [rForm, r] = ['compressed-y-0', (rv as { x: Uint8Array }).x];
  else fail(`rSig ${ralt} is not a signature value`);
  return { curve: c, signature: { rForm, r, s: sSig } };
}

/** Canonical (6.1.2) Signature: rSig as x-only (the x-coordinate of R). */
function canonicalSignature(s: Signature): Signature {
  const [alt, v] = only(s, 'Signature');
  if (curveOfAlt(SIGNATURE_ALT, alt) === undefined) return s;
  const { rSig, sSig } = v as { rSig: EccCurvePoint; sSig: Uint8Array };
  const [ralt, rv] = only(rSig, 'rSig');
  if (ralt === 'x-only') return s;
  const x = ralt === 'uncompressedP256' || ralt === 'uncompressedP384' ? (rv as { x: Uint8Array }).x : (rv as Uint8Array);
  return { [alt]: { rSig: { 'x-only': x }, sSig } } as Signature;
}

// ---------------------------------------------------------------------------------------------
// Canonical encoding and whole-certificate hash (6.1.2, 6.4.3, 5.3.9.2)
// ---------------------------------------------------------------------------------------------

/** ToBeSignedCertificate with its key points in canonical (compressed) form (6.4.8 canonicalization). */
export function canonicalTbsCertificate(tbs: ToBeSignedCertificate): ToBeSignedCertificate {
  let out = tbs;
  const vki = tbs.verifyKeyIndicator as Record<string, unknown>;
  if ('verificationKey' in vki) {
    const [alt, p] = only(vki.verificationKey as object, 'PublicVerificationKey');
    const cp = curveOfAlt(VERIFY_KEY_ALT, alt) ? canonicalPoint(p as EccCurvePoint) : p;
    if (cp !== p) out = { ...out, verifyKeyIndicator: { verificationKey: { [alt]: cp } as PublicVerificationKey } };
  } else if ('reconstructionValue' in vki) {
    const p = vki.reconstructionValue as EccP256CurvePoint;
    const cp = canonicalPoint(p) as EccP256CurvePoint;
    if (cp !== p) out = { ...out, verifyKeyIndicator: { reconstructionValue: cp } };
  }
  if (tbs.encryptionKey) {
    const [alt, p] = only(tbs.encryptionKey.publicKey, 'BasePublicEncryptionKey');
    if (alt !== '$unknown') {
      const cp = canonicalPoint(p as EccCurvePoint);
      if (cp !== p) {
        out = {
          ...out,
          encryptionKey: { ...tbs.encryptionKey, publicKey: { [alt]: cp } as PublicEncryptionKey['publicKey'] },
        };
      }
    }
  }
  return out;
}

/** Certificate in canonical form (6.1.2): canonical toBeSigned and x-only rSig. */
export function canonicalCertificate(cert: Certificate): Certificate {
  const tbs = canonicalTbsCertificate(cert.toBeSigned);
  const signature = cert.signature ? canonicalSignature(cert.signature) : undefined;
  if (tbs === cert.toBeSigned && signature === cert.signature) return cert;
  return signature ? { ...cert, toBeSigned: tbs, signature } : { ...cert, toBeSigned: tbs };
}

// Certificate values are treated as immutable: the canonical encoding of an object is computed once (CA
// certificates are encoded for every certificate they issue or verify).
const encodings = new WeakMap<Certificate, Uint8Array>();
// Whole-certificate hashes of certificate objects, computed once (CA certificates are hashed for every certificate
// they issue and every SPDU they sign or verify); callers get a copy.
const hashes = new WeakMap<Certificate, Uint8Array>();
// H(signer certificate COER) per certificate object and hash (the same CA / RA certificate signs or is checked for
// every SPDU of a batch; 5.3.1.2.2 signer identifier input).
const signerHashes = { sha256: new WeakMap<Certificate, Uint8Array>(), sha384: new WeakMap<Certificate, Uint8Array>() };

/** Canonical COER encoding of a certificate (the input of every whole-certificate hash). */
export function encodeCertificate(cert: Certificate): Uint8Array {
  return encodings.get(cacheHolder(cert))!;
}

/**
 * The object the caches (encodings, hashes, signerHashes) are kept under for `cert`: itself once encoded, or an
 * equal certificate seen before (knownTwin). Decoded copies never enter the WeakMaps: an entry per short-lived
 * object costs more (in garbage collection) than the encoding it saves.
 */
function cacheHolder(cert: Certificate): Certificate {
  if (encodings.has(cert)) return cert;
  const linked = (cert as { [HOLDER]?: Certificate })[HOLDER];
  if (linked) return linked;
  const twin = knownTwin(cert);
  if (twin) {
    // Remember the twin on the copy itself (non-enumerable symbol: invisible to the codec, spreads, for-in and
    // JSON), so the next lookup of the same copy (resolver, then signature input) skips the comparison.
    if (Object.isExtensible(cert)) Object.defineProperty(cert, HOLDER, { value: twin, enumerable: false });
    return twin;
  }
  encodings.set(cert, Certificate.encode(canonicalCertificate(cert)));
  remember(cert);
  return cert;
}

// Every SPDU a CA or RA signs carries its certificate, so the same certificate arrives decoded again and again as
// a new object. Recently encoded certificates are kept by a fingerprint (the sSig or reconstruction value octets);
// a new object equal in value to one of them has the same COER, so its encoding and hash are reused instead of
// being recomputed (a value comparison costs a fraction of an encoding). Bounded; public data only.
const KNOWN_CERTIFICATES = 256;
const HOLDER = Symbol('scms.certificate.holder');
const known = new Map<string, Certificate>();

function fingerprint(cert: Certificate): string | undefined {
  const sig = cert.signature as Record<string, { sSig?: unknown }> | undefined;
  if (sig) {
    const v = Object.values(sig)[0];
    return v && v.sSig instanceof Uint8Array ? `s:${Buffer.from(v.sSig.buffer, v.sSig.byteOffset, v.sSig.length).toString('hex')}` : undefined;
  }
  const vki = cert.toBeSigned?.verifyKeyIndicator as Record<string, unknown> | undefined;
  const rv = vki && (vki.reconstructionValue as Record<string, unknown> | undefined);
  const x = rv && Object.values(rv)[0];
  return x instanceof Uint8Array ? `r:${Buffer.from(x.buffer, x.byteOffset, x.length).toString('hex')}` : undefined;
}

function remember(cert: Certificate): void {
  const f = fingerprint(cert);
  if (f === undefined) return;
  if (known.size >= KNOWN_CERTIFICATES) known.delete(known.keys().next().value as string);
  known.set(f, cert);
}

function knownTwin(cert: Certificate): Certificate | undefined {
  const f = fingerprint(cert);
  const twin = f === undefined ? undefined : known.get(f);
  if (!twin || !encodings.has(twin) || !sameValue(twin, cert)) return undefined;
  if (known.size > KNOWN_CERTIFICATES / 2) {
    known.delete(f!); // least recently used first out: a hit moves to the end
    known.set(f!, twin);
  }
  return twin;
}

/** Structural equality of codec values (objects, arrays, octet strings, bigints, strings, numbers, null). */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    if (!(a instanceof Uint8Array && b instanceof Uint8Array) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!(Array.isArray(a) && Array.isArray(b)) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameValue(a[i], b[i])) return false;
    return true;
  }
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  let na = 0;
  for (const k in ra) {
    if (ra[k] === undefined) continue;
    na++;
    if (!sameValue(ra[k], rb[k])) return false;
  }
  let nb = 0;
  for (const k in rb) if (rb[k] !== undefined) nb++;
  return na === nb;
}

/** Strict COER decoding of a certificate. */
export function decodeCertificate(bytes: Uint8Array): Certificate {
  return Certificate.decode(bytes);
}

/** Canonical COER encoding of a ToBeSignedCertificate (the signed / ECQV-hashed data). */
export function encodeTbsCertificate(tbs: ToBeSignedCertificate): Uint8Array {
  return ToBeSignedCertificate.encode(canonicalTbsCertificate(tbs));
}

function asnHash(alg: AsnHashAlgorithm, what: string): HashAlgorithm {
  if (alg === 'sha256' || alg === 'sha384') return alg;
  return fail(`${what}: unsupported hash algorithm ${String(alg)}`);
}

/**
 * The whole-certificate hash algorithm of `cert` (the hash behind its own HashedId3/8/10 and HashedId32/48).
 * 1609.2 CertificateBase "Whole-certificate hash" (6.4.3; 1609.2-2022 moves the rule to 5.3.9.2):
 *   "The whole-certificate hash is SHA-256 if the certificate is an implicit certificate. [...] SHA-256 if the
 *   certificate is an explicit certificate and toBeSigned.verifyKeyIndicator.verificationKey is an
 *   EccP256CurvePoint. [...] SHA-384 if [...] verificationKey is an EccP384CurvePoint."
 * It depends on the certificate's own key only, never on its issuer field (IssuerIdentifier: the alternative
 * names the hash used to VERIFY the certificate, i.e. the issuer key's; see issuerFieldHashAlgorithm).
 */
export function certificateHashAlgorithm(cert: Certificate): HashAlgorithm {
  const vki = cert.toBeSigned.verifyKeyIndicator as Record<string, unknown>;
  if ('reconstructionValue' in vki) return 'sha256';
  if ('verificationKey' in vki) return curve(fromPublicVerificationKey(vki.verificationKey as PublicVerificationKey).curve).hash;
  return fail(`verifyKeyIndicator ${Object.keys(vki)[0] ?? '(empty)'} is not supported`);
}

/**
 * The hash the issuer field names (IssuerIdentifier, 6.4.3): "the hash algorithm to be used to generate the hash
 * of the certificate for verification" — self: its value; sha256AndDigest: SHA-256; sha384AndDigest: SHA-384.
 */
export function issuerFieldHashAlgorithm(cert: Certificate): HashAlgorithm {
  const [alt, v] = only(cert.issuer, 'IssuerIdentifier');
  if (alt === 'self') return asnHash(v as AsnHashAlgorithm, 'issuer self');
  if (alt === 'sha256AndDigest') return 'sha256';
  if (alt === 'sha384AndDigest') return 'sha384';
  return fail(`issuer ${alt} is not supported`);
}

function certAndBytes(cert: Certificate | Uint8Array): { cert: Certificate; bytes: Uint8Array } {
  if (cert instanceof Uint8Array) {
    const c = Certificate.decode(cert);
    const canon = canonicalCertificate(c);
    return { cert: c, bytes: canon === c ? cert : Certificate.encode(canon) };
  }
  return { cert, bytes: encodeCertificate(cert) };
}


/** Whole-certificate hash (SHA-256 or SHA-384, see certificateHashAlgorithm) of the canonical COER encoding. */
export function certificateHash(cert: Certificate | Uint8Array): Uint8Array {
  if (!(cert instanceof Uint8Array)) {
    const holder = cacheHolder(cert);
    let h = hashes.get(holder);
    if (!h) {
      h = hash(certificateHashAlgorithm(holder), encodings.get(holder)!);
      hashes.set(holder, h);
    }
    return h.slice();
  }
  const { cert: c, bytes } = certAndBytes(cert);
  return hash(certificateHashAlgorithm(c), bytes);
}

/** HashedId8 of a certificate (6.3.x): the last 8 octets of the whole-certificate hash. */
export function certificateHashedId8(cert: Certificate | Uint8Array): Uint8Array {
  return certificateHash(cert).slice(-8);
}

/** HashedId10: the last 10 octets of the whole-certificate hash. */
export function certificateHashedId10(cert: Certificate | Uint8Array): Uint8Array {
  return certificateHash(cert).slice(-10);
}

/** HashedId3: the last 3 octets of the whole-certificate hash. */
export function certificateHashedId3(cert: Certificate | Uint8Array): Uint8Array {
  return certificateHash(cert).slice(-3);
}

/**
 * The IssuerIdentifier a certificate issued by `issuer` carries (6.4.3): the alternative names the hash of the
 * issuer key's curve (the hash used to verify), the digest is HashedId8(issuer) computed with the issuer's own
 * whole-certificate hash. An implicit issuer is on a 256-bit curve (sha256AndDigest).
 */
export function issuerIdentifierFor(issuer: Certificate): IssuerIdentifier {
  const id = certificateHashedId8(issuer);
  const vki = issuer.toBeSigned.verifyKeyIndicator as Record<string, unknown>;
  const alg = 'verificationKey' in vki ? curve(fromPublicVerificationKey(vki.verificationKey as PublicVerificationKey).curve).hash : 'sha256';
  return alg === 'sha256' ? { sha256AndDigest: id } : { sha384AndDigest: id };
}

/** Whether `cert`'s issuer field names `issuer` (sha256AndDigest / sha384AndDigest with its HashedId8). */
export function isIssuedBy(cert: Certificate, issuer: Certificate): boolean {
  const [alt, v] = only(cert.issuer, 'IssuerIdentifier');
  if (alt !== 'sha256AndDigest' && alt !== 'sha384AndDigest') return false;
  return Buffer.from(v as Uint8Array).equals(Buffer.from(certificateHashedId8(issuer)));
}

export function isSelfSigned(cert: Certificate): boolean {
  return 'self' in (cert.issuer as object);
}

// ---------------------------------------------------------------------------------------------
// Generic 1609.2 signing (5.3.1): ECDSA over H(data) || H(signer)
// ---------------------------------------------------------------------------------------------

/** 5.3.1.2.2 data input H(tbs) || H(signer certificate COER or ""), with H(signer) cached per certificate object. */
function signatureInput(tbsBytes: Uint8Array, signerCertificate: Certificate | undefined, alg: HashAlgorithm): Uint8Array {
  if (!signerCertificate) return signatureInput1609Dot2(tbsBytes, undefined, alg);
  const cache = signerHashes[alg];
  const holder = cacheHolder(signerCertificate);
  let h = cache.get(holder);
  if (!h) {
    h = hash(alg, encodings.get(holder)!);
    cache.set(holder, h);
  }
  return concat(hash(alg, tbsBytes), h);
}

/**
 * Signs `tbsBytes` as 1609.2 5.3.1 specifies: the ECDSA input is H(tbs) || H(signer certificate COER), or
 * H(tbs) || H("") when `signerCertificate` is undefined (self-signed, or signer identified by digest of a key).
 * H is the hash paired with the signer's curve. Returns the Signature CHOICE for that curve.
 * `rForm: 'compressed'` recovers R from (r, s) so that rSig carries compressed-y-0/1.
 */
export async function sign1609Dot2(opts: {
  tbsBytes: Uint8Array;
  signerCertificate?: Certificate | undefined;
  signer: Signer;
  rForm?: 'x-only' | 'compressed';
}): Promise<Signature> {
  const { signer } = opts;
  const c = curve(signer.curve);
  const message = signatureInput(opts.tbsBytes, opts.signerCertificate, c.hash);
  const rs = await signer.sign(message);
  if (rs.length !== 2 * c.size) fail(`signer returned ${rs.length} octets, expected r||s of ${2 * c.size}`);
  const r = rs.slice(0, c.size);
  const s = rs.slice(c.size);
  if ((opts.rForm ?? 'x-only') === 'x-only') return signatureFromEcdsa(signer.curve, { rForm: 'x-only', r, s });
  // R = (e/s)G + (r/s)Q (1609.2 5.3.1 allows R compressed); x(R) mod n must equal r.
  const Fn = c.Fn;
  const e = Fn.create(bytesToBigInt(hash(c.hash, message)));
  const sInv = Fn.inv(bytesToBigInt(s));
  const rBig = bytesToBigInt(r);
  const Q = decodePoint(signer.curve, signer.publicKey);
  const R = mulBasePoint(signer.curve, Fn.mul(e, sInv)).add(mulPointPublic(signer.curve, Q, Fn.mul(rBig, sInv)));
  const { x, y } = R.toAffine();
  if (Fn.create(x) !== rBig) fail('signature does not verify with the signer public key');
  return signatureFromEcdsa(signer.curve, {
    rForm: (y & 1n) === 0n ? 'compressed-y-0' : 'compressed-y-1',
    r: bigIntToBytes(x, c.size),
    s,
  });
}

/**
 * Verifies a 1609.2 signature over `tbsBytes` (5.3.1) with `publicKey` on `curveName`; `signerCertificate`
 * as for sign1609Dot2. False when the signature is wrong or of another curve than the key.
 */
export function verify1609Dot2Signature(opts: {
  tbsBytes: Uint8Array;
  signerCertificate?: Certificate | undefined;
  signature: Signature;
  curve: CurveName;
  publicKey: Uint8Array;
}): boolean {
  const { curve: sigCurve, signature } = ecdsaFromSignature(opts.signature);
  if (sigCurve !== opts.curve) return false;
  const message = signatureInput(opts.tbsBytes, opts.signerCertificate, curve(opts.curve).hash);
  let key;
  try {
    key = verificationKey(opts.curve, opts.publicKey);
  } catch {
    fail(`public key is not a valid ${opts.curve} point`);
  }
  return ecdsaVerify(key, message, signature);
}

// ---------------------------------------------------------------------------------------------
// Explicit certificates (6.4.3, 5.3.1)
// ---------------------------------------------------------------------------------------------

/** Issuer certificate -> the signer public key (object) already checked against its verification key. */
const checkedIssuerSigners = new WeakMap<Certificate, Uint8Array>();

function sameKey(curveName: CurveName, a: Uint8Array, b: Uint8Array): boolean {
  const pa = decodePoint(curveName, a);
  const pb = decodePoint(curveName, b);
  return pa.equals(pb);
}

/**
 * Issues an explicit certificate (6.4.3): version 3, type explicit, issuer `self: sha256|sha384` (the hash of
 * the signer's curve) or `sha256AndDigest|sha384AndDigest: HashedId8(issuer)`, signature over
 * H(H(tbs COER) || H(issuer COER or "")) (5.3.1). The tbs must carry `verifyKeyIndicator.verificationKey`;
 * its points are canonicalized (compressed). For `issuer: 'self'` the signer's key must be the tbs key; for an
 * explicit issuer certificate, the issuer's verification key.
 */
export async function issueExplicitCertificate(opts: {
  tbs: ToBeSignedCertificate;
  issuer: Certificate | 'self';
  signer: Signer;
  rForm?: 'x-only' | 'compressed';
}): Promise<Certificate> {
  const { issuer, signer } = opts;
  const vki = opts.tbs.verifyKeyIndicator as Record<string, unknown>;
  if (!('verificationKey' in vki)) fail('an explicit certificate needs tbs.verifyKeyIndicator.verificationKey');
  const tbs = canonicalTbsCertificate(opts.tbs);
  const alg = curve(signer.curve).hash;
  let issuerId: IssuerIdentifier;
  if (issuer === 'self') {
    const own = fromPublicVerificationKey(vki.verificationKey as PublicVerificationKey);
    if (own.curve !== signer.curve || !sameKey(own.curve, own.publicKey, signer.publicKey)) {
      fail('self-signed certificate: the signer key is not the certificate verification key');
    }
    issuerId = { self: alg };
  } else {
    if (issuer.type === 'explicit' && checkedIssuerSigners.get(issuer) !== signer.publicKey) {
      const ik = fromPublicVerificationKey((issuer.toBeSigned.verifyKeyIndicator as { verificationKey: PublicVerificationKey }).verificationKey);
      if (ik.curve !== signer.curve || !sameKey(ik.curve, ik.publicKey, signer.publicKey)) {
        fail('the signer key is not the issuer certificate verification key');
      }
      checkedIssuerSigners.set(issuer, signer.publicKey); // checked once per (issuer, signer key) object pair
    }
    const id = certificateHashedId8(issuer);
    issuerId = alg === 'sha256' ? { sha256AndDigest: id } : { sha384AndDigest: id };
  }
  const signature = await sign1609Dot2({
    tbsBytes: ToBeSignedCertificate.encode(tbs),
    signerCertificate: issuer === 'self' ? undefined : issuer,
    signer,
    rForm: opts.rForm ?? 'x-only',
  });
  // The tbs was type-checked by its encoding above; version, type, issuer and signature are built here to the
  // ExplicitCertificate constraints (verificationKey checked at the top), so no second encoding is needed.
  return { version: 3, type: 'explicit', issuer: issuerId, toBeSigned: tbs, signature };
}

/** Where the issuer of an implicit certificate and its own issuers come from. */
export type IssuerSource =
  | Certificate
  /** The issuer first, then its issuer, ... (as far as needed: up to the first explicit certificate). */
  | readonly Certificate[]
  /** Looks a certificate up by the issuer field of its subject (HashedId8 and hash algorithm). */
  | ((issuerId: IssuerIdentifier) => Certificate | undefined);

function firstIssuer(src: IssuerSource | undefined, subject: Certificate): { issuer: Certificate; rest: IssuerSource | undefined } {
  if (src === undefined) fail('an implicit certificate needs its issuer to reconstruct the public key');
  if (typeof src === 'function') {
    const issuer = src(subject.issuer) ?? fail('issuer certificate not found');
    return { issuer, rest: src };
  }
  if (Array.isArray(src)) {
    const list = src as readonly Certificate[];
    if (list.length === 0) fail('an implicit certificate needs its issuer to reconstruct the public key');
    return { issuer: list[0]!, rest: list.length > 1 ? list.slice(1) : undefined };
  }
  return { issuer: src as Certificate, rest: undefined };
}

/**
 * Verifies the signature of an explicit certificate (5.3.1, 6.4.3): with its own key when `issuer` is 'self',
 * otherwise with the issuer's key (an implicit issuer's key is reconstructed; pass `issuerChain` — the
 * issuer's own issuers — for that). False for a wrong signature; CertificateError for malformed input
 * (implicit certificate, missing signature, self/issuer mismatch, unsupported algorithms).
 */
export function verifyCertificateSignature(
  cert: Certificate,
  issuer: Certificate | 'self',
  opts: { issuerChain?: IssuerSource } = {},
): boolean {
  if (cert.type !== 'explicit') fail('only explicit certificates carry a signature');
  if (!cert.signature) fail('explicit certificate without a signature');
  const [alt, v] = only(cert.issuer, 'IssuerIdentifier');
  let key: { curve: CurveName; publicKey: Uint8Array };
  if (issuer === 'self') {
    if (alt !== 'self') fail('certificate is not self-signed (issuer is not self)');
    const vki = cert.toBeSigned.verifyKeyIndicator as Record<string, unknown>;
    if (!('verificationKey' in vki)) fail('explicit certificate without verificationKey');
    key = fromPublicVerificationKey(vki.verificationKey as PublicVerificationKey);
    if (asnHash(v as AsnHashAlgorithm, 'issuer self') !== curve(key.curve).hash) {
      fail(`issuer self names ${String(v)} but the key is on ${key.curve}`);
    }
  } else {
    if (alt === 'self') fail('certificate is self-signed but an issuer certificate was given');
    key = signerKeyOf(issuer, opts.issuerChain);
    const named = alt === 'sha256AndDigest' ? 'sha256' : alt === 'sha384AndDigest' ? 'sha384' : fail(`issuer ${alt} is not supported`);
    if (named !== curve(key.curve).hash) fail(`issuer field ${alt} does not match the issuer key curve ${key.curve}`);
  }
  return verify1609Dot2Signature({
    tbsBytes: encodeTbsCertificate(cert.toBeSigned),
    signerCertificate: issuer === 'self' ? undefined : issuer,
    signature: cert.signature,
    curve: key.curve,
    publicKey: key.publicKey,
  });
}

// ---------------------------------------------------------------------------------------------
// Public keys (explicit: verificationKey; implicit: ECQV reconstruction, 5.3.2)
// ---------------------------------------------------------------------------------------------

/**
 * The verification public key of a certificate, uncompressed (04||x||y). Explicit: the verificationKey.
 * Implicit: Q_U = e*P_U + Q_CA with e = H(H(tbs) || H(issuer)) (5.3.2); `issuer` gives the issuer (and, when
 * the issuer is itself implicit, the issuers above it).
 */
export function certificatePublicKey(cert: Certificate, issuer?: IssuerSource): { curve: CurveName; publicKey: Uint8Array } {
  const vki = cert.toBeSigned.verifyKeyIndicator as Record<string, unknown>;
  if (cert.type === 'explicit') {
    if (!('verificationKey' in vki)) fail('explicit certificate without verificationKey');
    const k = fromPublicVerificationKey(vki.verificationKey as PublicVerificationKey);
    return { curve: k.curve, publicKey: toUncompressedKey(k.curve, k.publicKey) };
  }
  if (cert.type !== 'implicit') fail(`unsupported certificate type ${String(cert.type)}`);
  const Q = implicitPublicPoint(cert, issuer);
  return { curve: Q.curve, publicKey: Q.point.toBytes(false) };
}

/** The verification key as carried (explicit: no decompression; OpenSSL takes compressed points). */
function signerKeyOf(cert: Certificate, issuer?: IssuerSource): { curve: CurveName; publicKey: Uint8Array } {
  if (cert.type === 'explicit') {
    const vki = cert.toBeSigned.verifyKeyIndicator as Record<string, unknown>;
    if (!('verificationKey' in vki)) fail('explicit certificate without verificationKey');
    return fromPublicVerificationKey(vki.verificationKey as PublicVerificationKey);
  }
  return certificatePublicKey(cert, issuer);
}

function toUncompressedKey(curveName: CurveName, p: Uint8Array): Uint8Array {
  if (p[0] === 4) return p;
  try {
    // OpenSSL decompression (validates the point), much faster than noble's square root
    return new Uint8Array(ECDH.convertKey(p, curve(curveName).nodeName, undefined, undefined, 'uncompressed') as Buffer);
  } catch {
    return fail(`public key is not a valid ${curveName} point`);
  }
}

function implicitParts(cert: Certificate): { PU: EccP256CurvePoint } {
  if (cert.type !== 'implicit') fail('not an implicit certificate');
  if (cert.signature) fail('an implicit certificate carries no signature');
  if ('self' in (cert.issuer as object)) fail('an implicit certificate cannot be self-signed');
  const vki = cert.toBeSigned.verifyKeyIndicator as Record<string, unknown>;
  if (!('reconstructionValue' in vki)) fail('implicit certificate without reconstructionValue');
  return { PU: vki.reconstructionValue as EccP256CurvePoint };
}

function implicitPublicPoint(cert: Certificate, src: IssuerSource | undefined): { curve: CurveName; point: Point } {
  const { PU } = implicitParts(cert);
  const { issuer, rest } = firstIssuer(src, cert);
  const qca = certificatePublicKey(issuer, rest);
  if (curve(qca.curve).size !== 32) fail(`implicit certificate issuer key on ${qca.curve}: a 256-bit curve is needed`);
  const e = implicitHash(qca.curve, cert, certificateHash(issuer), issuer);
  let P: Point;
  try {
    P = decodePoint(qca.curve, eccPointToBytes(PU));
  } catch (err) {
    if (err instanceof CertificateError) throw err;
    return fail(`reconstructionValue is not a valid ${qca.curve} point`);
  }
  const Q = ecqvReconstructPublicKey(qca.curve, e, P, qca.publicKey);
  if (Q.is0()) fail('reconstructed public key is the identity');
  return { curve: qca.curve, point: Q };
}

/** e = H(H(tbs) || H(issuer)) as a full-length integer mod n (5.3.2; see src/crypto/ecqv.ts). */
function implicitHash(curveName: CurveName, cert: Certificate, issuerHash: Uint8Array, issuer?: Certificate): bigint {
  const alg = issuerFieldHashAlgorithm(cert);
  if (alg !== curve(curveName).hash) fail(`issuer field names ${alg} but the curve is ${curveName}`);
  if (issuer && !isIssuedBy(cert, issuer)) fail('the issuer field does not name the given issuer certificate');
  return ecqvHash1609Dot2FromIssuerHash(curveName, encodeTbsCertificate(cert.toBeSigned), issuerHash, alg);
}

/** The curve an implicit certificate issued by `issuer` lives on (the issuer key's curve). */
function issuerCurve(issuer: Certificate, fallback: CurveName | undefined): CurveName {
  if (issuer.type === 'explicit') {
    const vki = issuer.toBeSigned.verifyKeyIndicator as Record<string, unknown>;
    if ('verificationKey' in vki) return fromPublicVerificationKey(vki.verificationKey as PublicVerificationKey).curve;
  }
  return fallback ?? 'nistP256';
}

// ---------------------------------------------------------------------------------------------
// Implicit certificates (ECQV, 5.3.2, 6.4.3)
// ---------------------------------------------------------------------------------------------

const checkedIssuerScalars = new WeakMap<Certificate, bigint>();

/** The curve of an implicit issuer and the checks of its scalar (once per issuer certificate object and scalar). */
function implicitIssuer(issuer: Certificate, d: bigint, fallback: CurveName | undefined): CurveName {
  const c = issuerCurve(issuer, fallback);
  if (curve(c).size !== 32) fail(`implicit certificates need a 256-bit issuer curve, not ${c}`);
  if (d <= 0n || d >= curve(c).n) fail('issuer private scalar out of range');
  if (issuer.type === 'explicit' && checkedIssuerScalars.get(issuer) !== d) {
    const ik = certificatePublicKey(issuer);
    if (!mulBasePoint(c, d).equals(decodePoint(c, ik.publicKey))) fail('issuerPrivateScalar is not the issuer certificate key');
    checkedIssuerScalars.set(issuer, d);
  }
  return c;
}

/** The implicit certificate for a computed reconstruction value P_U (compressed) and its ECQV k: e, then s. */
function finishImplicit(
  c: CurveName,
  issuer: Certificate,
  d: bigint,
  tbs: ToBeSignedCertificate,
  k: bigint,
  reconstructionValue: Uint8Array,
): { certificate: Certificate; privateKeyContribution: bigint } {
  const toBeSigned = canonicalTbsCertificate({
    ...tbs,
    verifyKeyIndicator: { reconstructionValue: eccPointFromBytes(reconstructionValue) as EccP256CurvePoint },
  });
  const alg = curve(c).hash;
  const issuerHash = certificateHash(issuer);
  const id = issuerHash.slice(-8);
  const certificate: Certificate = {
    version: 3,
    type: 'implicit',
    issuer: alg === 'sha256' ? { sha256AndDigest: id } : { sha384AndDigest: id },
    toBeSigned,
  };
  const bytes = Certificate.encode(certificate); // type check; canonical by construction
  // COER of CertificateBase without signature: preamble, version, type, issuer (sha256AndDigest: tag + 8 octets) =
  // 12 octets, then the toBeSigned: its COER is the rest (no second encoding for e, 1609.2 5.3.2).
  const tbsBytes = 'sha256AndDigest' in certificate.issuer ? bytes.subarray(12) : ToBeSignedCertificate.encode(toBeSigned);
  const e = ecqvHash1609Dot2FromIssuerHash(c, tbsBytes, issuerHash, alg);
  const privateKeyContribution = ecqvPrivateKeyContribution(c, e, k, d);
  return { certificate, privateKeyContribution };
}

/**
 * Issues an implicit certificate (5.3.2, 6.4.3): P_U = R_U + k*G goes in verifyKeyIndicator.reconstructionValue
 * (compressed), the issuer field is sha256AndDigest: HashedId8(issuer), e = H(H(tbs COER) || H(issuer COER))
 * full-length mod n, s = e*k + d_CA mod n. The curve is the issuer key's (an implicit issuer: `curve`, default
 * nistP256). For an explicit issuer, d_CA is checked against its verification key.
 */
export function issueImplicitCertificate(opts: {
  tbs: ToBeSignedCertificate;
  issuer: Certificate;
  issuerPrivateScalar: bigint;
  requestPublicKey: Uint8Array;
  k?: bigint;
  curve?: CurveName;
}): { certificate: Certificate; privateKeyContribution: bigint } {
  if (opts.k === undefined) {
    const [r] = issueImplicitCertificates({ issuer: opts.issuer, issuerPrivateScalar: opts.issuerPrivateScalar, ...(opts.curve ? { curve: opts.curve } : {}), requests: [opts] });
    if (r instanceof Error) throw r;
    return r!;
  }
  const { issuer } = opts;
  const d = opts.issuerPrivateScalar;
  const c = implicitIssuer(issuer, d, opts.curve);
  let RU: Point;
  try {
    RU = decodePoint(c, opts.requestPublicKey);
  } catch {
    return fail(`requestPublicKey is not a valid ${c} point`);
  }
  const { k, reconstructionValue } = ecqvReconstructionValue(c, RU, opts.k);
  return finishImplicit(c, issuer, d, opts.tbs, k, reconstructionValue.toBytes(true));
}

/**
 * Batch form of issueImplicitCertificate for many requests to one issuer (what an ACA does per batch): fresh k per
 * request, all P_U = R_U + k*G with one shared field inversion (crypto/ecqv ecqvReconstructionValues). One result
 * per request, in order: the certificate and s, or the CertificateError of that request (bad request key). Issuer
 * problems (wrong scalar, curve) throw.
 */
export function issueImplicitCertificates(opts: {
  issuer: Certificate;
  issuerPrivateScalar: bigint;
  curve?: CurveName;
  requests: readonly { tbs: ToBeSignedCertificate; requestPublicKey: Uint8Array }[];
}): Array<{ certificate: Certificate; privateKeyContribution: bigint } | CertificateError> {
  const { issuer } = opts;
  const d = opts.issuerPrivateScalar;
  const c = implicitIssuer(issuer, d, opts.curve);
  const out = new Array<{ certificate: Certificate; privateKeyContribution: bigint } | CertificateError>(opts.requests.length);
  const valid: { n: number; RU: AffinePoint }[] = [];
  opts.requests.forEach((r, n) => {
    try {
      valid.push({ n, RU: decodeAffine(c, r.requestPublicKey) });
    } catch {
      out[n] = new CertificateError(`requestPublicKey is not a valid ${c} point`);
    }
  });
  const pu = ecqvReconstructionValues(c, valid.map((v) => v.RU));
  valid.forEach((v, m) => {
    try {
      out[v.n] = finishImplicit(c, issuer, d, opts.requests[v.n]!.tbs, pu[m]!.k, pu[m]!.reconstructionValue);
    } catch (e) {
      out[v.n] = e instanceof CertificateError ? e : new CertificateError((e as Error).message);
    }
  });
  return out;
}

/**
 * The holder's private key of an implicit certificate (5.3.2): d_U = e*k_U + s mod n. `issuer` is the issuer
 * certificate (or its chain), or, when only its hash is known, `{ hash, curve? }` (whole-certificate hash;
 * curve default nistP256). When the issuer's public key is available, d_U*G is checked against the
 * reconstructed Q_U and a CertificateError is thrown on mismatch.
 */
export function reconstructImplicitPrivateKey(
  cert: Certificate,
  issuer: IssuerSource | { hash: Uint8Array; curve?: CurveName },
  requestPrivateKey: bigint,
  privateKeyContribution: bigint,
): bigint {
  implicitParts(cert);
  if (typeof issuer === 'object' && !Array.isArray(issuer) && 'hash' in issuer && issuer.hash instanceof Uint8Array) {
    const c = issuer.curve ?? 'nistP256';
    const e = implicitHash(c, cert, issuer.hash);
    return ecqvReconstructPrivateKey(c, e, requestPrivateKey, privateKeyContribution);
  }
  const src = issuer as IssuerSource;
  const { issuer: first } = firstIssuer(src, cert);
  const Q = implicitPublicPoint(cert, src);
  const e = implicitHash(Q.curve, cert, certificateHash(first));
  const dU = ecqvReconstructPrivateKey(Q.curve, e, requestPrivateKey, privateKeyContribution);
  if (!ecqvCheckKeyPair(Q.curve, dU, Q.point)) {
    fail('reconstructed private key does not match the reconstructed public key (wrong k_U, s or issuer)');
  }
  return dU;
}

/** Whether private scalar `d` belongs to `cert`'s verification key (reconstructed for implicit certificates). */
export function certificateKeyPairMatches(cert: Certificate, d: bigint, issuer?: IssuerSource): boolean {
  const k = certificatePublicKey(cert, issuer);
  return ecqvCheckKeyPair(k.curve, d, k.publicKey);
}

/** The curve of a certificate's verification key (implicit: the issuer's; needs `issuer` then). */
export function certificateCurve(cert: Certificate, issuer?: IssuerSource): CurveName {
  if (cert.type === 'explicit') return fromPublicVerificationKey(
    (cert.toBeSigned.verifyKeyIndicator as { verificationKey: PublicVerificationKey }).verificationKey,
  ).curve;
  const { issuer: first, rest } = firstIssuer(issuer, cert);
  return certificateCurve(first, rest);
}

// ---------------------------------------------------------------------------------------------
// Encryption key (6.4.8 encryptionKey)
// ---------------------------------------------------------------------------------------------

/** The tbs encryptionKey: curve, encoded point (as carried: 02/03||x normally) and symmetric algorithm. */
export function certificateEncryptionKey(
  cert: Certificate,
): { curve: CurveName; publicKey: Uint8Array; symmAlgorithm: SymmAlgorithm } | undefined {
  const ek = cert.toBeSigned.encryptionKey;
  if (!ek) return undefined;
  const [alt, p] = only(ek.publicKey, 'BasePublicEncryptionKey');
  const c = curveOfAlt(ENC_KEY_ALT, alt) ?? fail(`unsupported encryption key ${alt}`);
  const publicKey = eccPointToBytes(p as EccCurvePoint);
  checkPointSize(c, publicKey);
  return { curve: c, publicKey, symmAlgorithm: ek.supportedSymmAlg };
}

/** The verifyKeyIndicator of an explicit tbs for a curve and key. */
export function verificationKeyIndicator(curveName: CurveName, publicKey: Uint8Array): VerificationKeyIndicator {
  return { verificationKey: publicVerificationKey(curveName, publicKey) };
}
