/**
 * Signed SPDUs of IEEE 1609.2-2022: SignedData generation and verification (5.2, 5.3.1, 6.3.4-6.3.9), and the
 * SignedCertificateRequest of IEEE 1609.2.1-2022 (Ieee1609Dot2Dot1Protocol, used for EeEcaCertRequestSpdu,
 * RaAcaCertRequestSpdu and the signed part of EeRaCertRequestSpdu).
 *
 * Signature input (1609.2 5.3.1.2.2, 6.3.4 SignedData.signature): ECDSA over H(Data input) || H(Signer identifier
 * input), with Data input = COER(ToBeSignedData) and Signer identifier input = COER(signer certificate), or the
 * empty string when the signer is `self`. H is the hash of hashId (SHA-256 with 256-bit curves, SHA-384 with P-384).
 *
 * Values handed to verification must be the generic types (`Ieee1609Dot2Data`), or bytes: a value decoded with a
 * parameterized SPDU codec (e.g. CtlSignatureSpdu) has its nested octet strings decoded and does not re-encode as
 * the generic ToBeSignedData.
 */
import {
  Ieee1609Dot2Data as Ieee1609Dot2DataCodec,
  ScopedCertificateRequest as ScopedCertificateRequestCodec,
  SignedCertificateRequest as SignedCertificateRequestCodec,
  ToBeSignedData as ToBeSignedDataCodec,
  type Certificate,
  type HeaderInfo,
  type Ieee1609Dot2Data,
  type ScopedCertificateRequest,
  type SignedCertificateRequest,
  type SignedData,
  type SignerIdentifier,
  type ToBeSignedData,
  type BasePublicEncryptionKey,
  type EccP256CurvePoint,
  type Signature,
} from '../codec/index.js';
import { curve, type CurveName } from '../crypto/curves.js';
import {
  canonicalCertificate,
  certificateHashedId8,
  eccPointFromBytes,
  eccPointToBytes,
  certificatePublicKey,
  ecdsaFromSignature,
  fromPublicVerificationKey,
  sign1609Dot2,
  verify1609Dot2Signature,
} from './certificate.js';
import type { Signer } from './signer.js';
import { nowTime64, type Clock } from './time.js';

/** Ieee1609Dot2Data.protocolVersion (1609.2 6.3.2). */
export const PROTOCOL_VERSION = 3;

/** How the signer is identified in SignedData.signer (1609.2 6.3.24 SignerIdentifier). */
export type SignerIdInput = { certificate: Certificate } | { digest: Certificate } | 'self';

/** R in the signature: x-only (default; what every Signer returns) or compressed (recovered from r, s and the key). */
export type SignatureRForm = 'x-only' | 'compressed';

export interface SignDataOptions {
  /** Octets (wrapped in an unsecuredData Ieee1609Dot2Data) or an Ieee1609Dot2Data put in payload.data as is. */
  readonly payload: Uint8Array | Ieee1609Dot2Data;
  readonly psid: number | bigint;
  readonly signer: Signer;
  readonly signerId: SignerIdInput;
  /** Further HeaderInfo fields (expiryTime, generationLocation, encryptionKey, ...); psid comes from `psid`. */
  readonly headerInfo?: Partial<Omit<HeaderInfo, 'psid'>>;
  /**
   * When given (and headerInfo.generationTime is not), headerInfo.generationTime = the clock's Time64.
   * Leave it out for the 1609.2.1 SPDUs: Ieee1609Dot2Data-Signed makes generationTime ABSENT.
   */
  readonly clock?: Clock;
  readonly rForm?: SignatureRForm;
}

/** The unsecured Ieee1609Dot2Data carrying `bytes` (1609.2 6.3.3 unsecuredData). */
export function unsecuredData(bytes: Uint8Array): Ieee1609Dot2Data {
  return { protocolVersion: PROTOCOL_VERSION, content: { unsecuredData: bytes } };
}

function signerCertificateOf(id: SignerIdInput): Certificate | undefined {
  if (id === 'self') return undefined;
  return 'certificate' in id ? id.certificate : id.digest;
}

function signerIdentifier(id: SignerIdInput): SignerIdentifier {
  if (id === 'self') return { self: null };
  if ('certificate' in id) return { certificate: [id.certificate] };
  return { digest: certificateHashedId8(id.digest) };
}

// ---------------------------------------------------------------------------------------------------------------
// Canonicalization (1609.2 6.1.2 and the Canonicalization notes of Ieee1609Dot2Data, SignedData, ToBeSignedData,
// HeaderInfo, SignerIdentifier): before hashing, HeaderInfo.encryptionKey points are compressed, rSig is x-only,
// certificates in the signer are canonical, and nested signed data likewise.
// ---------------------------------------------------------------------------------------------------------------

function canonicalSignatureValue(s: Signature): Signature {
  const [alt] = Object.keys(s);
  if (!alt || !alt.startsWith('ecdsa')) return s;
  const { rSig, sSig } = (s as Record<string, { rSig: Record<string, unknown>; sSig: Uint8Array }>)[alt]!;
  const [form] = Object.keys(rSig);
  if (form === 'x-only') return s;
  const v = rSig[form!];
  const x = v instanceof Uint8Array ? v : (v as { x: Uint8Array }).x;
  return { [alt]: { rSig: { 'x-only': x }, sSig } } as Signature;
}

function canonicalHeaderInfo(h: HeaderInfo): HeaderInfo {
  const ek = h.encryptionKey;
  if (!ek || !('public' in ek)) return h;
  const [alt] = Object.keys(ek.public.publicKey);
  if (alt !== 'eciesNistP256' && alt !== 'eciesBrainpoolP256r1') return h;
  const p = (ek.public.publicKey as Record<string, EccP256CurvePoint>)[alt]!;
  if (!('uncompressedP256' in p)) return h;
  const cp = eccPointFromBytes(eccPointToBytes(p)) as EccP256CurvePoint;
  return { ...h, encryptionKey: { public: { ...ek.public, publicKey: { [alt]: cp } as BasePublicEncryptionKey } } };
}

/** ToBeSignedData in canonical form (the hashed form). */
export function canonicalToBeSignedData(tbs: ToBeSignedData): ToBeSignedData {
  const data = tbs.payload.data && canonicalIeee1609Dot2Data(tbs.payload.data);
  const headerInfo = canonicalHeaderInfo(tbs.headerInfo);
  if (data === tbs.payload.data && headerInfo === tbs.headerInfo) return tbs;
  return { payload: { ...tbs.payload, ...(data ? { data } : {}) }, headerInfo };
}

/** Ieee1609Dot2Data in canonical form (signedData canonicalized; other contents as they are). */
export function canonicalIeee1609Dot2Data(d: Ieee1609Dot2Data): Ieee1609Dot2Data {
  if (!('signedData' in d.content)) return d;
  const sd = d.content.signedData;
  const signer = 'certificate' in sd.signer ? { certificate: sd.signer.certificate.map(canonicalCertificate) } : sd.signer;
  const signedData: SignedData = {
    hashId: sd.hashId,
    tbsData: canonicalToBeSignedData(sd.tbsData),
    signer,
    signature: canonicalSignatureValue(sd.signature),
  };
  return { protocolVersion: d.protocolVersion, content: { signedData } };
}

/** COER of the canonical ToBeSignedData: the Data Input of 5.3.1.2.2. */
export function toBeSignedDataBytes(tbs: ToBeSignedData): Uint8Array {
  return ToBeSignedDataCodec.encode(canonicalToBeSignedData(tbs));
}

/** A public key with its curve (crypto naming); `publicKey` is 04||x||y or 02/03||x. */
export interface CurvePublicKey {
  readonly curve: CurveName;
  readonly publicKey: Uint8Array;
}

/** Hash algorithm paired with the signer's curve (1609.2 5.3.1): the SignedData hashId. */
function hashIdFor(name: CurveName): 'sha256' | 'sha384' {
  return curve(name).hash;
}

/**
 * SignedData generation (1609.2 5.2.3.3 / 6.3.4): tbsData = { payload { data }, headerInfo }, hashId from the signer's
 * curve, signature over H(COER(tbsData)) || H(COER(signer certificate) or "").
 */
export async function signData(opts: SignDataOptions): Promise<Ieee1609Dot2Data> {
  const data = opts.payload instanceof Uint8Array ? unsecuredData(opts.payload) : opts.payload;
  const headerInfo: HeaderInfo = { psid: BigInt(opts.psid), ...opts.headerInfo };
  if (opts.clock && headerInfo.generationTime === undefined) headerInfo.generationTime = nowTime64(opts.clock);
  const tbsData: ToBeSignedData = { payload: { data }, headerInfo };
  const cert = signerCertificateOf(opts.signerId);
  const signature = await sign1609Dot2({
    tbsBytes: toBeSignedDataBytes(tbsData),
    signerCertificate: cert,
    signer: opts.signer,
    rForm: opts.rForm ?? 'x-only',
  });
  const signedData: SignedData = {
    hashId: hashIdFor(opts.signer.curve),
    tbsData,
    signer: signerIdentifier(opts.signerId),
    signature,
  };
  return { protocolVersion: PROTOCOL_VERSION, content: { signedData } };
}

// ---------------------------------------------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------------------------------------------

/**
 * What a resolver returns for a SignerIdentifier: a certificate (explicit: its verification key is used), a bare key
 * (enough for `self`; also for `certificate`, whose bytes are in the SignerIdentifier), or both (implicit
 * certificates: the key reconstructed by the caller). For `digest` the certificate is needed (its hash is signed).
 */
export type ResolvedSigner = Certificate | CurvePublicKey | { certificate: Certificate; publicKey: CurvePublicKey };

export type SignerResolver = (signerId: SignerIdentifier) => ResolvedSigner | undefined;

export interface VerifySignedDataOptions {
  /** Decides trust: returns the signer's key / certificate, or undefined when the signer is unknown or untrusted. */
  readonly resolveSigner: SignerResolver;
  readonly expectedPsid?: number | bigint;
  /** Needed for the time checks (expiryTime, maxAgeSeconds). */
  readonly clock?: Clock;
  /** Refuse data whose generationTime is further than this from the clock's time (either direction). */
  readonly maxAgeSeconds?: number;
}

export type VerifySignedDataResult =
  | {
      ok: true;
      /** unsecuredData octets of payload.data; for a nested signed/encrypted payload, its COER encoding. */
      payload: Uint8Array;
      /** payload.data as carried. */
      data: Ieee1609Dot2Data;
      headerInfo: HeaderInfo;
      signer: SignerIdentifier;
      signerCertificate?: Certificate;
    }
  | { ok: false; reason: string };

function fail(reason: string): { ok: false; reason: string } {
  return { ok: false, reason };
}

function isCertificate(x: ResolvedSigner): x is Certificate {
  return 'toBeSigned' in x;
}

/** Splits a resolver answer into key + certificate (a bare implicit certificate has no key without its issuer). */
function resolvedKey(r: ResolvedSigner): { key?: CurvePublicKey; certificate?: Certificate } {
  if (isCertificate(r)) {
    try {
      return { key: certificatePublicKey(r), certificate: r };
    } catch {
      return { certificate: r };
    }
  }
  if ('certificate' in r) return { key: r.publicKey, certificate: r.certificate };
  return { key: r };
}

/**
 * Checks a signature over tbsBytes for the given SignerIdentifier (shared by SignedData and SignedCertificateRequest):
 * 1609.2 5.3.1 through certificate.ts (the signer certificate enters the input in canonical COER form).
 * Returns the signer certificate used in the signer input, or a failure reason.
 */
function checkSignature(
  tbsBytes: Uint8Array,
  hashId: SignedData['hashId'],
  signer: SignerIdentifier,
  signatureValue: SignedData['signature'],
  resolveSigner: SignerResolver | undefined,
  defaultKey?: CurvePublicKey,
): { ok: true; certificate?: Certificate } | { ok: false; reason: string } {
  let sigCurve: CurveName;
  try {
    sigCurve = ecdsaFromSignature(signatureValue).curve;
  } catch (e) {
    return fail(`unsupported signature: ${(e as Error).message}`);
  }
  if (hashId !== hashIdFor(sigCurve)) return fail(`hashId ${String(hashId)} does not go with a ${sigCurve} signature`);

  let resolved: ResolvedSigner | undefined;
  try {
    resolved = resolveSigner ? resolveSigner(signer) : undefined;
  } catch (e) {
    return fail(`signer resolution failed: ${(e as Error).message}`);
  }
  resolved ??= 'self' in signer ? defaultKey : undefined;
  if (!resolved) return fail(`unknown or untrusted signer (${Object.keys(signer)[0]})`);
  const { key, certificate: resolvedCert } = resolvedKey(resolved);

  let signerCert: Certificate | undefined;
  if ('self' in signer) {
    signerCert = undefined;
  } else if ('certificate' in signer) {
    if (signer.certificate.length === 0) return fail('empty signer certificate chain');
    signerCert = signer.certificate[0];
  } else if ('digest' in signer) {
    if (!resolvedCert) return fail('digest signer: the resolver must return the certificate');
    signerCert = resolvedCert;
    let id: Uint8Array;
    try {
      id = certificateHashedId8(resolvedCert);
    } catch (e) {
      return fail((e as Error).message);
    }
    if (Buffer.compare(id, signer.digest) !== 0) return fail('digest signer: resolved certificate has a different HashedId8');
  } else {
    return fail('unsupported signer identifier');
  }
  if (!key) return fail('no verification key for the signer (implicit certificate: resolve its reconstructed key)');
  if (key.curve !== sigCurve) return fail(`signature curve ${sigCurve} does not match the signer key (${key.curve})`);

  let ok: boolean;
  try {
    ok = verify1609Dot2Signature({ tbsBytes, signerCertificate: signerCert, signature: signatureValue, curve: key.curve, publicKey: key.publicKey });
  } catch (e) {
    return fail(`signature check failed: ${(e as Error).message}`);
  }
  if (!ok) return fail('signature does not verify');
  return signerCert ? { ok: true, certificate: signerCert } : { ok: true };
}

function decodeGeneric(data: Ieee1609Dot2Data | Uint8Array): Ieee1609Dot2Data {
  return data instanceof Uint8Array ? Ieee1609Dot2DataCodec.decode(data) : data;
}

/**
 * SignedData verification (1609.2 5.2.4): signature with the resolved signer key, psid, and, with a clock,
 * expiryTime and generation-time freshness.
 */
export function verifySignedData(data: Ieee1609Dot2Data | Uint8Array, opts: VerifySignedDataOptions): VerifySignedDataResult {
  let value: Ieee1609Dot2Data;
  try {
    value = decodeGeneric(data);
  } catch (e) {
    return fail(`malformed Ieee1609Dot2Data: ${(e as Error).message}`);
  }
  if (!('signedData' in value.content)) return fail(`not signed data (content ${Object.keys(value.content)[0]})`);
  const sd = value.content.signedData;
  const { headerInfo, payload } = sd.tbsData;
  if (!payload.data) return fail('payload without data (external data hash) is not supported');

  let tbsBytes: Uint8Array;
  try {
    tbsBytes = toBeSignedDataBytes(sd.tbsData);
  } catch (e) {
    return fail(`tbsData does not encode as ToBeSignedData: ${(e as Error).message}`);
  }
  const check = checkSignature(tbsBytes, sd.hashId, sd.signer, sd.signature, opts.resolveSigner);
  if (!check.ok) return check;

  if (opts.expectedPsid !== undefined && headerInfo.psid !== BigInt(opts.expectedPsid)) {
    return fail(`psid ${headerInfo.psid} is not the expected ${BigInt(opts.expectedPsid)}`);
  }
  if (opts.maxAgeSeconds !== undefined && !opts.clock) return fail('maxAgeSeconds needs a clock');
  if (opts.clock) {
    const now = nowTime64(opts.clock);
    if (headerInfo.expiryTime !== undefined && now > headerInfo.expiryTime) return fail('expired (headerInfo.expiryTime)');
    if (opts.maxAgeSeconds !== undefined) {
      if (headerInfo.generationTime === undefined) return fail('no generationTime to check freshness');
      const skew = now - headerInfo.generationTime;
      const limit = BigInt(Math.round(opts.maxAgeSeconds * 1e6));
      if (skew > limit) return fail(`stale: generated ${skew / 1_000_000n} s ago (max ${opts.maxAgeSeconds} s)`);
      if (-skew > limit) return fail(`generationTime is ${-skew / 1_000_000n} s in the future (max ${opts.maxAgeSeconds} s)`);
    }
  }
  const inner = payload.data;
  const bytes = 'unsecuredData' in inner.content ? inner.content.unsecuredData : Ieee1609Dot2DataCodec.encode(inner);
  return {
    ok: true,
    payload: bytes,
    data: inner,
    headerInfo,
    signer: sd.signer,
    ...(check.certificate ? { signerCertificate: check.certificate } : {}),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// SignedCertificateRequest (1609.2.1, Ieee1609Dot2Dot1Protocol)
// ---------------------------------------------------------------------------------------------------------------

export interface SignCertificateRequestOptions {
  /** The ScopedCertificateRequest (an ScmsPdu with eca-ee eeEcaCertRequest, ee-ra eeRaCertRequest, ...). */
  readonly tbsRequest: ScopedCertificateRequest;
  readonly signer: Signer;
  /** 'self' (EeEcaCertRequestSpdu: SignerSelf) or the enrollment / RA certificate (SignerSingleCert). */
  readonly signerId: 'self' | { certificate: Certificate };
  readonly rForm?: SignatureRForm;
}

/**
 * Ieee1609Dot2Data { signedCertificateRequest: COER(SignedCertificateRequest) }. Per the SignedCertificateRequest
 * definition (1609.2.1 Ieee1609Dot2Dot1Protocol): the signature follows 1609.2a-2017 5.3.1 with Data Input =
 * COER(tbsRequest) and Signer Identifier Input = the empty string when self-signed, the signer's (enrollment)
 * certificate otherwise; hashAlgorithmId is the hash used on tbsRequest.
 */
export async function signCertificateRequest(opts: SignCertificateRequestOptions): Promise<Ieee1609Dot2Data> {
  const cert = opts.signerId === 'self' ? undefined : opts.signerId.certificate;
  const tbsBytes = ScopedCertificateRequestCodec.encode(opts.tbsRequest);
  const signature = await sign1609Dot2({ tbsBytes, signerCertificate: cert, signer: opts.signer, rForm: opts.rForm ?? 'x-only' });
  const scr: SignedCertificateRequest = {
    hashAlgorithmId: hashIdFor(opts.signer.curve),
    tbsRequest: opts.tbsRequest,
    signer: cert ? { certificate: [cert] } : { self: null },
    signature,
  };
  return {
    protocolVersion: PROTOCOL_VERSION,
    content: { signedCertificateRequest: SignedCertificateRequestCodec.encode(scr) },
  };
}

export interface VerifyCertificateRequestOptions {
  /**
   * Key / certificate of the signer. When absent or returning undefined for a `self` signer, the key is the
   * verifyKeyIndicator.verificationKey of an eca-ee eeEcaCertRequest's tbsCert (a request without canonicalId is
   * signed with that key; with canonicalId it is signed with the canonical key, 1609.2.1 EeEcaCertRequestSpdu, which
   * the ECA must resolve from its registration).
   */
  readonly resolveSigner?: SignerResolver;
}

export type VerifyCertificateRequestResult =
  | {
      ok: true;
      tbsRequest: ScopedCertificateRequest;
      signer: SignerIdentifier;
      signerCertificate?: Certificate;
      /** The decoded SignedCertificateRequest. */
      request: SignedCertificateRequest;
    }
  | { ok: false; reason: string };

function requestKeyOf(tbs: ScopedCertificateRequest): CurvePublicKey | undefined {
  const c = tbs.content;
  if (!('eca-ee' in c) || !('eeEcaCertRequest' in c['eca-ee'])) return undefined;
  const req = c['eca-ee'].eeEcaCertRequest;
  if (req.canonicalId !== undefined) return undefined;
  try {
    return fromPublicVerificationKey(req.tbsCert.verifyKeyIndicator.verificationKey);
  } catch {
    return undefined;
  }
}

/** Verifies Ieee1609Dot2Data { signedCertificateRequest } (generic value or bytes). */
export function verifyCertificateRequest(
  data: Ieee1609Dot2Data | Uint8Array,
  opts: VerifyCertificateRequestOptions = {},
): VerifyCertificateRequestResult {
  let scr: SignedCertificateRequest;
  try {
    const value = decodeGeneric(data);
    if (!('signedCertificateRequest' in value.content)) {
      return fail(`not a signed certificate request (content ${Object.keys(value.content)[0]})`);
    }
    scr = SignedCertificateRequestCodec.decode(value.content.signedCertificateRequest);
  } catch (e) {
    return fail(`malformed signed certificate request: ${(e as Error).message}`);
  }
  const tbsBytes = ScopedCertificateRequestCodec.encode(scr.tbsRequest);
  const check = checkSignature(tbsBytes, scr.hashAlgorithmId, scr.signer, scr.signature, opts.resolveSigner, requestKeyOf(scr.tbsRequest));
  if (!check.ok) return check;
  return {
    ok: true,
    tbsRequest: scr.tbsRequest,
    signer: scr.signer,
    request: scr,
    ...(check.certificate ? { signerCertificate: check.certificate } : {}),
  };
}
