/**
 * Faster certificate checks for the EE simulator, same results as security/chain.ts and security/certificate.ts:
 *
 * - Implicit public keys (1609.2 5.3.2, ECQV): Q_U = e*P_U + Q_CA. The library computes e*P_U with noble's
 *   bigint arithmetic (~3-4 ms on this machine); here OpenSSL does it (node:crypto ECDH gives x(k*P)):
 *   x1 = x(e*P_U), x2 = x((e+1)*P_U); A = (x1, y) with y from OpenSSL's decompression; e*P_U is A when
 *   x(A + P_U) = x2, else -A (A + P_U and -A + P_U never share x on a prime-order curve). Two affine additions
 *   with one shared field inversion finish it. Any case outside this path (e + 1 = n, a point OpenSSL refuses,
 *   a curve it lacks) falls back to the library.
 * - Chains: an EE checks hundreds of certificates issued by the same ACA -> ICA -> root chain. The issuing chain's
 *   signatures and consistency (everything verifyCertificateChain checks except "valid now", which depends on the
 *   clock) are verified once per distinct chain and trust-anchor set (exact octets) and kept in a small bounded
 *   cache; per leaf only the leaf's own checks run (structure, issuer linkage, signature or key reconstruction,
 *   validity now and within the issuer, region, issue permissions, required PSID) and "valid now" of every
 *   certificate. When the fast path finds any problem it returns what verifyCertificateChain itself says, so
 *   failures read exactly as before (and a fast-path mistake could only cost time, not accept a bad chain that
 *   the reference would accept: test/engine/ee/fast-verify.test.ts compares both on good and tampered chains).
 */
import { createECDH, ECDH, type ECDH as EcdhObject } from 'node:crypto';
import type { Certificate } from '../../codec/index.js';
import { bigIntToBytes, concat, toHex } from '../../crypto/bytes.js';
import { curve, mulBase, type CurveName } from '../../crypto/curves.js';
import { ecqvHash1609Dot2FromIssuerHash } from '../../crypto/ecqv.js';
import {
  certificateHash,
  certificatePublicKey,
  eccPointToBytes,
  encodeCertificate,
  encodeTbsCertificate,
  isIssuedBy,
  isSelfSigned,
  issuerFieldHashAlgorithm,
  reconstructImplicitPrivateKey,
  verify1609Dot2Signature,
  type EccCurvePoint,
} from '../../security/certificate.js';
import { regionWithin, verifyCertificateChain, type ChainOptions, type ChainResult } from '../../security/chain.js';
import { certificateAllowsPsid, certificateLabel, checkIssuePermissions } from '../../security/permissions.js';
import { validityPeriodContains, validityPeriodContainsPeriod, type ValidityPeriod } from '../../security/time.js';

export interface PublicKey {
  curve: CurveName;
  /** Uncompressed 04||x||y. */
  publicKey: Uint8Array;
}

interface Affine {
  x: bigint;
  y: bigint;
}

// ---------------------------------------------------------------------------------------------- point arithmetic

// One ECDH object per curve; each use sets its key and reads the result in the same synchronous call.
const ecdhObjects = new Map<CurveName, EcdhObject>();
function ecdh(name: CurveName): EcdhObject {
  let e = ecdhObjects.get(name);
  if (!e) {
    e = createECDH(curve(name).nodeName);
    ecdhObjects.set(name, e);
  }
  return e;
}

const hexOf = (b: Uint8Array, from: number, to: number) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex', from, to);

/** x(k*P) by OpenSSL (k in [1, n-1]; P encoded, validated by OpenSSL). */
function ecdhX(name: CurveName, k: bigint, P: Uint8Array): bigint {
  const e = ecdh(name);
  e.setPrivateKey(bigIntToBytes(k, curve(name).size));
  return BigInt('0x' + e.computeSecret(P).toString('hex'));
}

/** The point (x, y) with y of the given parity, decompressed by OpenSSL (throws when x is not on the curve). */
function liftX(name: CurveName, x: bigint, odd: boolean): Affine {
  const size = curve(name).size;
  const u = ECDH.convertKey(concat(Uint8Array.of(odd ? 3 : 2), bigIntToBytes(x, size)), curve(name).nodeName, undefined, undefined, 'uncompressed') as Buffer;
  return { x, y: BigInt('0x' + u.toString('hex', 1 + size)) };
}

function decodeUncompressed(name: CurveName, u: Uint8Array): Affine {
  const size = curve(name).size;
  return { x: BigInt('0x' + hexOf(u, 1, 1 + size)), y: BigInt('0x' + hexOf(u, 1 + size, 1 + 2 * size)) };
}

function encodeUncompressedAffine(name: CurveName, P: Affine): Uint8Array {
  const size = curve(name).size;
  return new Uint8Array(Buffer.from('04' + P.x.toString(16).padStart(2 * size, '0') + P.y.toString(16).padStart(2 * size, '0'), 'hex'));
}

/**
 * e*P + Q (P given encoded, Q uncompressed) through OpenSSL, or undefined when this path does not apply (the caller
 * then uses the library). Throws nothing: OpenSSL refusing P means the library decides (and reports) it.
 */
export function mulAddViaOpenSsl(name: CurveName, e: bigint, Penc: Uint8Array, Qenc: Uint8Array): Uint8Array | undefined {
  try {
    const c = curve(name);
    const n = c.n;
    const Fp = c.Point.Fp;
    const k = c.Fn.create(e);
    if (k === 0n || k + 1n >= n) return undefined;
    const P = decodeUncompressed(name, Penc[0] === 4 ? Penc : (ECDH.convertKey(Penc, c.nodeName, undefined, undefined, 'uncompressed') as Buffer));
    const Q = decodeUncompressed(name, Qenc);
    const x1 = ecdhX(name, k, Penc);
    const x2 = ecdhX(name, k + 1n, Penc);
    const A = liftX(name, x1, false);
    // Denominators of A + P and (+-A) + Q, inverted together (Montgomery's trick).
    const d1 = Fp.sub(P.x, A.x);
    const d2 = Fp.sub(Q.x, A.x);
    if (d1 === 0n || d2 === 0n) return undefined; // k*P = +-P or +-Q: rare, the library handles doubling / identity
    const inv = Fp.inv(Fp.mul(d1, d2));
    const i1 = Fp.mul(inv, d2);
    const i2 = Fp.mul(inv, d1);
    // x(A + P) decides the sign of y(k*P).
    const l1 = Fp.mul(Fp.sub(P.y, A.y), i1);
    const xAP = Fp.sub(Fp.sub(Fp.sqr(l1), A.x), P.x);
    const kP: Affine = xAP === x2 ? A : { x: A.x, y: Fp.neg(A.y) };
    // k*P + Q.
    const l2 = Fp.mul(Fp.sub(Q.y, kP.y), i2);
    const x = Fp.sub(Fp.sub(Fp.sqr(l2), kP.x), Q.x);
    const y = Fp.sub(Fp.mul(l2, Fp.sub(kP.x, x)), kP.y);
    return encodeUncompressedAffine(name, { x, y });
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------- public keys

/**
 * The verification key of an implicit certificate issued by the holder of `qca` (Q_U = e*P_U + Q_CA, 5.3.2), as
 * certificate.ts certificatePublicKey computes it; the library computes it whenever the fast path does not apply.
 * `issuers`: the issuer first, then its issuers (for the library).
 */
function implicitKey(cert: Certificate, issuers: readonly Certificate[], qca: PublicKey): PublicKey {
  const issuer = issuers[0]!;
  const hit = leafKeys.get(cert);
  if (hit && hit.issuer === issuer && hit.qca.curve === qca.curve && Buffer.from(hit.qca.publicKey).equals(Buffer.from(qca.publicKey))) return hit.key;
  const key = computeImplicitKey(cert, issuers, qca);
  leafKeys.set(cert, { issuer, qca, key });
  return key;
}

// The last key reconstructed for a certificate object (the key-pair check and the chain check of one download
// ask for the same one); dropped with the object.
const leafKeys = new WeakMap<Certificate, { issuer: Certificate; qca: PublicKey; key: PublicKey }>();

function computeImplicitKey(cert: Certificate, issuers: readonly Certificate[], qca: PublicKey): PublicKey {
  const issuer = issuers[0]!;
  const vki = cert.toBeSigned.verifyKeyIndicator as Record<string, unknown>;
  const c = curve(qca.curve);
  const alg = issuerFieldHashAlgorithm(cert);
  const library = () => certificatePublicKey(cert, issuers);
  if (cert.type !== 'implicit' || cert.signature || isSelfSigned(cert) || !('reconstructionValue' in vki)) return library();
  if (c.size !== 32 || alg !== c.hash || !isIssuedBy(cert, issuer)) return library();
  let Penc: Uint8Array;
  try {
    Penc = eccPointToBytes(vki.reconstructionValue as EccCurvePoint);
  } catch {
    return library();
  }
  const e = ecqvHash1609Dot2FromIssuerHash(qca.curve, encodeTbsCertificate(cert.toBeSigned), certificateHash(issuer), alg);
  const Q = mulAddViaOpenSsl(qca.curve, e, Penc, qca.publicKey);
  return Q ? { curve: qca.curve, publicKey: Q } : library();
}

// Keys of issuing certificates (public material; kept as long as the certificate object lives).
const issuerKeys = new WeakMap<Certificate, PublicKey>();

/** The verification key of a certificate that issues others (`issuers`: its own issuers), once per object. */
function issuerKeyOf(cert: Certificate, issuers: readonly Certificate[]): PublicKey {
  let k = issuerKeys.get(cert);
  if (!k) {
    k = cert.type === 'implicit' && issuers.length ? implicitKey(cert, issuers, issuerKeyOf(issuers[0]!, issuers.slice(1))) : certificatePublicKey(cert, issuers.length ? issuers : undefined);
    issuerKeys.set(cert, k);
  }
  return k;
}

/** certificatePublicKey(cert, issuers) with implicit keys reconstructed through OpenSSL. */
export function publicKeyOf(cert: Certificate, issuers: readonly Certificate[] = []): PublicKey {
  if (cert.type !== 'implicit' || issuers.length === 0) return certificatePublicKey(cert, issuers.length ? issuers : undefined);
  return implicitKey(cert, issuers, issuerKeyOf(issuers[0]!, issuers.slice(1)));
}

/**
 * The holder's private key of an implicit certificate, d_U = e*k_U + s (5.3.2), checked against the reconstructed
 * public key: d_U*G (OpenSSL) must equal e*P_U + Q_CA. Same contract as certificate.ts
 * reconstructImplicitPrivateKey with an issuer chain (throws on mismatch).
 */
export function reconstructImplicitKeyPair(cert: Certificate, issuers: readonly Certificate[], kU: bigint, s: bigint): { privateKey: bigint; publicKey: PublicKey } {
  if (issuers.length === 0) throw new Error('an implicit certificate needs its issuer to reconstruct the key');
  const issuer = issuers[0]!;
  const qca = issuerKeyOf(issuer, issuers.slice(1));
  const d = reconstructImplicitPrivateKey(cert, { hash: certificateHash(issuer), curve: qca.curve }, kU, s);
  const pk = implicitKey(cert, issuers, qca);
  if (d === 0n || !Buffer.from(mulBase(pk.curve, d)).equals(Buffer.from(pk.publicKey))) {
    throw new Error('reconstructed private key does not match the reconstructed public key (wrong k_U, s or issuer)');
  }
  return { privateKey: d, publicKey: pk };
}

// ---------------------------------------------------------------------------------------------- chains

interface IssuerChainEntry {
  result: ChainResult;
}
const CHAIN_CACHE_SIZE = 64;
const chainCache = new Map<string, IssuerChainEntry>();
const bytesId = new WeakMap<Certificate, string>();

function idOf(c: Certificate): string {
  let id = bytesId.get(c);
  if (!id) {
    id = toHex(encodeCertificate(c));
    bytesId.set(c, id);
  }
  return id;
}

/** verifyCertificateChain of an issuing chain without "valid now", once per distinct chain + anchors (octets). */
function verifiedIssuers(issuers: readonly Certificate[], opts: ChainOptions): ChainResult {
  const key = `${issuers.map(idOf).join('.')}|${opts.trustAnchors.map(idOf).join('.')}`;
  const hit = chainCache.get(key);
  if (hit) return hit.result;
  const result = verifyCertificateChain(issuers, { trustAnchors: opts.trustAnchors, clock: opts.clock, skipCurrentValidity: true });
  if (chainCache.size >= CHAIN_CACHE_SIZE) chainCache.delete(chainCache.keys().next().value!);
  chainCache.set(key, { result });
  return result;
}

function validAt(vp: ValidityPeriod, now: Date): boolean {
  try {
    return validityPeriodContains(vp, now);
  } catch {
    return false;
  }
}

/**
 * verifyCertificateChain([leaf, ...issuers]) with the issuing chain's verification cached (see the module
 * comment). The result is verifyCertificateChain's own whenever anything does not check.
 */
export function verifyChainFast(chain: readonly Certificate[], opts: ChainOptions): ChainResult & { leafKey?: PublicKey } {
  const reference = () => verifyCertificateChain(chain, opts);
  if (chain.length < 2) return reference();
  const leaf = chain[0]!;
  const issuers = chain.slice(1);
  const up = verifiedIssuers(issuers, opts);
  if (!up.ok) return reference();
  const issuer = issuers[0]!;
  try {
    // Structure (chain.ts structureError for a non-root certificate) and linkage.
    if (leaf.version !== 3 || isSelfSigned(leaf) || !isIssuedBy(leaf, issuer)) return reference();
    const vki = leaf.toBeSigned.verifyKeyIndicator as Record<string, unknown>;
    let key: PublicKey;
    if (leaf.type === 'explicit') {
      if (!leaf.signature || !('verificationKey' in vki)) return reference();
      const signer = up.publicKeys[0]!;
      const ok = verify1609Dot2Signature({ tbsBytes: encodeTbsCertificate(leaf.toBeSigned), signerCertificate: issuer, signature: leaf.signature, curve: signer.curve, publicKey: signer.publicKey });
      if (!ok) return reference();
      key = certificatePublicKey(leaf);
    } else if (leaf.type === 'implicit') {
      if (leaf.signature || !('reconstructionValue' in vki)) return reference();
      key = implicitKey(leaf, issuers, up.publicKeys[0]!);
    } else return reference();
    // Validity now (every certificate), within the issuer; region; permissions; required PSID.
    const now = opts.clock.now();
    if (!opts.skipCurrentValidity && ![leaf, ...up.chain].every((c) => validAt(c.toBeSigned.validityPeriod, now))) return reference();
    if (!validityPeriodContainsPeriod(issuer.toBeSigned.validityPeriod, leaf.toBeSigned.validityPeriod)) return reference();
    const region = leaf.toBeSigned.region;
    if (region) {
      const outer = up.chain.find((c) => c.toBeSigned.region)?.toBeSigned.region;
      if (outer && regionWithin(region, outer)) return reference();
    }
    if (checkIssuePermissions(issuer, leaf, { issuer: certificateLabel(issuer, 'CA'), subject: certificateLabel(leaf, 'leaf') }).length) return reference();
    if (opts.requiredPsid !== undefined && !certificateAllowsPsid(leaf, opts.requiredPsid)) return reference();
    return { ok: true, root: up.root, chain: [leaf, ...up.chain], publicKeys: [key, ...up.publicKeys], leafKey: key };
  } catch {
    return reference();
  }
}
