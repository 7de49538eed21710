/**
 * IEEE 1609.2.1-2022 SPDU wrappers (Ieee1609Dot2Dot1Protocol "Parameterized Types"): an ScmsPdu { version 2,
 * content } put in Ieee1609Dot2Data the way each parameterized type says, and the matching unwrap / verify.
 *
 * | builder                          | parameterized type                                   | shape                                    |
 * |----------------------------------|------------------------------------------------------|------------------------------------------|
 * | unsecuredSpdu                    | Ieee1609Dot2Data-Unsecured {Tbu}                      | unsecuredData(COER ScmsPdu)              |
 * | signedSpdu                       | Ieee1609Dot2Data-Signed {Tbs, Psid}                   | signedData: data = unsecured(ScmsPdu), psid only in the header, SignerSingleCert |
 * | signedEncryptedSpdu              | Ieee1609Dot2Data-SignedEncrypted {Tbse, Psid}         | Encrypted(Signed(ScmsPdu))               |
 * | encryptedSignedSpdu              | Ieee1609Dot2Data-EncryptedSigned {Tbes, Psid}         | Signed(Unsecured(Encrypted(ScmsPdu))) (the overhead the note describes) |
 * | signedCertRequestSpdu            | Ieee1609Dot2Data-SignedCertRequest {Tbscr, Signer}    | signedCertificateRequest                 |
 * | signedEncryptedCertRequestSpdu   | Ieee1609Dot2Data-SignedEncryptedCertRequest           | Encrypted(SignedCertRequest)             |
 *
 * Encryption of an ScmsPdu encapsulates it in unsecuredData first (Ieee1609Dot2Data-Encrypted note). The outputs
 * are generic Ieee1609Dot2Data values; their COER decodes with the generated SPDU types (CtlSignatureSpdu, ...).
 */
import {
  Ieee1609Dot2Data as Ieee1609Dot2DataCodec,
  ScmsPdu as ScmsPduCodec,
  type Certificate,
  type HeaderInfo,
  type Ieee1609Dot2Data,
  type ScmsPdu,
  type ScopedCertificateRequest,
  type SignerIdentifier,
} from '../codec/index.js';
import { decryptDataDetailed, encryptData, type DecryptionKey, type EncryptionRecipient } from './encryption.js';
import type { Signer } from './signer.js';
import {
  signCertificateRequest,
  signData,
  unsecuredData,
  verifyCertificateRequest,
  verifySignedData,
  type SignatureRForm,
  type SignerResolver,
  type VerifyCertificateRequestResult,
} from './spdu.js';

/** SecurityMgmtPsid ::= Psid (35), PSID 0x23 (1609.2.1 Ieee1609Dot2Dot1Protocol). */
export const SECURITY_MGMT_PSID = 35n;

/** ScmsPdu.version (Uint8 (2)). */
export const SCMS_PDU_VERSION = 2;

/** ScmsPdu { version 2, content }. */
export function scmsPdu(content: ScmsPdu['content']): ScmsPdu {
  return { version: SCMS_PDU_VERSION, content };
}

// ---------------------------------------------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------------------------------------------

/** Ieee1609Dot2Data-Unsecured {ScmsPdu}. */
export function unsecuredSpdu(pdu: ScmsPdu): Ieee1609Dot2Data {
  return unsecuredData(ScmsPduCodec.encode(pdu));
}

export interface SignedSpduOptions {
  readonly pdu: ScmsPdu;
  readonly signer: Signer;
  /** The signing certificate: signer = certificate with exactly this one (SignerSingleCert). */
  readonly certificate: Certificate;
  /** Default SecurityMgmtPsid (35). */
  readonly psid?: number | bigint;
  readonly rForm?: SignatureRForm;
}

/** Ieee1609Dot2Data-Signed {ScmsPdu, Psid}: headerInfo has psid only (generationTime ... encryptionKey ABSENT). */
export function signedSpdu(opts: SignedSpduOptions): Promise<Ieee1609Dot2Data> {
  return signData({
    payload: ScmsPduCodec.encode(opts.pdu),
    psid: opts.psid ?? SECURITY_MGMT_PSID,
    signer: opts.signer,
    signerId: { certificate: opts.certificate },
    ...(opts.rForm ? { rForm: opts.rForm } : {}),
  });
}

export interface EncryptingOptions {
  readonly recipients: readonly EncryptionRecipient[];
}

/** Ieee1609Dot2Data-SignedEncrypted {ScmsPdu, Psid}: sign (as signedSpdu), then encrypt the signed data. */
export async function signedEncryptedSpdu(opts: SignedSpduOptions & EncryptingOptions): Promise<Ieee1609Dot2Data> {
  const signed = await signedSpdu(opts);
  return encryptData({ plaintext: signed, recipients: opts.recipients });
}

/**
 * Ieee1609Dot2Data-EncryptedSigned {ScmsPdu, Psid}: encrypt the ScmsPdu, then sign; the signed payload is the
 * unsecuredData holding the COER of the encrypted Ieee1609Dot2Data (Tbs of Ieee1609Dot2Data-Signed).
 */
export async function encryptedSignedSpdu(opts: SignedSpduOptions & EncryptingOptions): Promise<Ieee1609Dot2Data> {
  const encrypted = encryptData({ plaintext: ScmsPduCodec.encode(opts.pdu), recipients: opts.recipients });
  return signData({
    payload: Ieee1609Dot2DataCodec.encode(encrypted),
    psid: opts.psid ?? SECURITY_MGMT_PSID,
    signer: opts.signer,
    signerId: { certificate: opts.certificate },
    ...(opts.rForm ? { rForm: opts.rForm } : {}),
  });
}

export interface SignedCertRequestOptions {
  readonly tbsRequest: ScopedCertificateRequest;
  readonly signer: Signer;
  /** 'self' (SignerSelf: EeEcaCertRequestSpdu) or the signing certificate (SignerSingleCert). */
  readonly signerId: 'self' | { certificate: Certificate };
  readonly rForm?: SignatureRForm;
}

/** Ieee1609Dot2Data-SignedCertRequest {Tbscr, Signer}. */
export function signedCertRequestSpdu(opts: SignedCertRequestOptions): Promise<Ieee1609Dot2Data> {
  return signCertificateRequest(opts);
}

/** Ieee1609Dot2Data-SignedEncryptedCertRequest {Tbstecr, Signer}: the signed request, encrypted. */
export async function signedEncryptedCertRequestSpdu(opts: SignedCertRequestOptions & EncryptingOptions): Promise<Ieee1609Dot2Data> {
  const signed = await signCertificateRequest(opts);
  return encryptData({ plaintext: signed, recipients: opts.recipients });
}

// ---------------------------------------------------------------------------------------------------------------
// Unwrap / verify
// ---------------------------------------------------------------------------------------------------------------

/** Thrown when an SPDU is not of the expected shape (wrong content, undecodable ScmsPdu). */
export class SpduError extends Error {
  override readonly name = 'SpduError';
}

function generic(data: Ieee1609Dot2Data | Uint8Array): Ieee1609Dot2Data {
  return data instanceof Uint8Array ? Ieee1609Dot2DataCodec.decode(data) : data;
}

/** The ScmsPdu of an Ieee1609Dot2Data-Unsecured. */
export function readUnsecuredSpdu(data: Ieee1609Dot2Data | Uint8Array): ScmsPdu {
  const d = generic(data);
  if (!('unsecuredData' in d.content)) throw new SpduError(`not unsecured data (content ${Object.keys(d.content)[0]})`);
  return ScmsPduCodec.decode(d.content.unsecuredData);
}

export interface VerifySpduOptions {
  readonly resolveSigner: SignerResolver;
  /** Default SecurityMgmtPsid (35). */
  readonly psid?: number | bigint;
}

export type VerifySpduResult =
  | { ok: true; pdu: ScmsPdu; headerInfo: HeaderInfo; signer: SignerIdentifier; signerCertificate?: Certificate }
  | { ok: false; reason: string };

const ABSENT_IN_SIGNED_SPDU = ['generationTime', 'expiryTime', 'generationLocation', 'p2pcdLearningRequest', 'missingCrlIdentifier', 'encryptionKey'] as const;

/** Verifies the Ieee1609Dot2Data-Signed layer and returns its payload octets (not decoded). */
function verifySignedLayer(
  data: Ieee1609Dot2Data | Uint8Array,
  opts: VerifySpduOptions,
): { ok: true; payload: Uint8Array; headerInfo: HeaderInfo; signer: SignerIdentifier; signerCertificate?: Certificate } | { ok: false; reason: string } {
  const res = verifySignedData(data, { resolveSigner: opts.resolveSigner, expectedPsid: opts.psid ?? SECURITY_MGMT_PSID });
  if (!res.ok) return res;
  if (!('certificate' in res.signer) || res.signer.certificate.length !== 1) {
    return { ok: false, reason: 'signer is not a single certificate (SignerSingleCert)' };
  }
  const present = ABSENT_IN_SIGNED_SPDU.filter((f) => res.headerInfo[f] !== undefined);
  if (present.length > 0) return { ok: false, reason: `headerInfo has ${present.join(', ')} (ABSENT in Ieee1609Dot2Data-Signed)` };
  if (!('unsecuredData' in res.data.content)) return { ok: false, reason: 'signed payload is not unsecuredData' };
  return {
    ok: true,
    payload: res.payload,
    headerInfo: res.headerInfo,
    signer: res.signer,
    ...(res.signerCertificate ? { signerCertificate: res.signerCertificate } : {}),
  };
}

function decodePdu(bytes: Uint8Array): { ok: true; pdu: ScmsPdu } | { ok: false; reason: string } {
  try {
    return { ok: true, pdu: ScmsPduCodec.decode(bytes) };
  } catch (e) {
    return { ok: false, reason: `payload is not an ScmsPdu: ${(e as Error).message}` };
  }
}

/** Verifies an Ieee1609Dot2Data-Signed {ScmsPdu, Psid} and decodes its ScmsPdu. */
export function verifySignedSpdu(data: Ieee1609Dot2Data | Uint8Array, opts: VerifySpduOptions): VerifySpduResult {
  const layer = verifySignedLayer(data, opts);
  if (!layer.ok) return layer;
  const pdu = decodePdu(layer.payload);
  if (!pdu.ok) return pdu;
  const { payload: _payload, ...rest } = layer;
  return { ...rest, pdu: pdu.pdu };
}

/** Decrypts an Ieee1609Dot2Data-SignedEncrypted {ScmsPdu, Psid} and verifies the signed data inside. */
export async function decryptSignedEncryptedSpdu(
  data: Ieee1609Dot2Data | Uint8Array,
  keys: readonly DecryptionKey[],
  opts: VerifySpduOptions,
): Promise<VerifySpduResult> {
  const inner = await decryptDataDetailed(data, keys);
  return verifySignedSpdu(inner.data, opts);
}

/** Verifies an Ieee1609Dot2Data-EncryptedSigned {ScmsPdu, Psid}, then decrypts the encrypted data it carries. */
export async function verifyEncryptedSignedSpdu(
  data: Ieee1609Dot2Data | Uint8Array,
  keys: readonly DecryptionKey[],
  opts: VerifySpduOptions,
): Promise<VerifySpduResult> {
  const layer = verifySignedLayer(data, opts);
  if (!layer.ok) return layer;
  let encrypted: Ieee1609Dot2Data;
  try {
    encrypted = Ieee1609Dot2DataCodec.decode(layer.payload);
  } catch (e) {
    return { ok: false, reason: `signed payload is not an Ieee1609Dot2Data: ${(e as Error).message}` };
  }
  if (!('encryptedData' in encrypted.content)) return { ok: false, reason: 'signed payload is not encrypted data' };
  const inner = await decryptDataDetailed(encrypted, keys);
  if (!('unsecuredData' in inner.data.content)) return { ok: false, reason: 'decrypted data is not unsecuredData' };
  const pdu = decodePdu(inner.payload);
  if (!pdu.ok) return pdu;
  const { payload: _payload, ...rest } = layer;
  return { ...rest, pdu: pdu.pdu };
}

/** Verifies an Ieee1609Dot2Data-SignedCertRequest (see verifyCertificateRequest). */
export function verifySignedCertRequestSpdu(
  data: Ieee1609Dot2Data | Uint8Array,
  opts: { resolveSigner?: SignerResolver } = {},
): VerifyCertificateRequestResult {
  return verifyCertificateRequest(data, opts);
}

/** Decrypts an Ieee1609Dot2Data-SignedEncryptedCertRequest and verifies the signed request inside. */
export async function decryptSignedEncryptedCertRequestSpdu(
  data: Ieee1609Dot2Data | Uint8Array,
  keys: readonly DecryptionKey[],
  opts: { resolveSigner?: SignerResolver } = {},
): Promise<VerifyCertificateRequestResult> {
  const inner = await decryptDataDetailed(data, keys);
  return verifyCertificateRequest(inner.data, opts);
}
