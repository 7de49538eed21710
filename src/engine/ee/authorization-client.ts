/**
 * EE side of the authorization (pseudonym) certificate flow over REST (IEEE 1609.2.1 6.3.5.2 / 6.3.5.3, 8.2):
 *   buildAuthorizationRequest  -> EeRaCertRequestSpdu (EeRa1609Dot2AuthenticatedCertRequestSpdu: the
 *                                 SignedCertificateRequest signed with the enrollment certificate, SignerSingleCert,
 *                                 encrypted to the RA certificate's encryptionKey)
 *   processAuthorizationAck    <- RaEeCertAckSpdu (signed by the RA; requestHash must be ours)
 *   buildDownloadRequest       -> base64 EeRaDownloadRequestSpdu for the `Ieee-1609.2.1-Authorization` header
 *   processAuthorizationBatch  <- the batch zip: each `<i hex>_<j hex>` entry through processAuthorizationResponse,
 *                                 the `.info` entry (RaEeCertInfoSpdu) decoded.
 */
import { unzipSync } from 'fflate';
import { Ieee1609Dot2Data as Ieee1609Dot2DataCodec, type Certificate, type ScopedCertificateRequest } from '../../codec/index.js';
import type { EeRaCertRequest, RaEeCertAck, RaEeCertInfo } from '../../codec/gen/Ieee1609Dot2Dot1EeRaInterface.js';
import { toHex } from '../../crypto/bytes.js';
import { sha256 } from '../../crypto/hash.js';
import { certificateHashedId8 } from '../../security/certificate.js';
import { readUnsecuredSpdu, scmsPdu, signedEncryptedCertRequestSpdu, signedEncryptedSpdu, verifySignedSpdu } from '../../security/scms-pdu.js';
import type { Signer } from '../../security/signer.js';
import { nowTime32, type Clock } from '../../security/time.js';
import { processAuthorizationResponse, type AuthorizationCertificate } from './authorization.js';
import type { ButterflySecrets } from './butterfly.js';

export class AuthorizationClientError extends Error {
  override readonly name = 'AuthorizationClientError';
}

/** The EE's enrollment certificate and its key. */
export interface EnrollmentCredential {
  readonly certificate: Certificate;
  readonly signer: Signer;
}

/** Builds the EeRaCertRequestSpdu; requestHash = HashedId8 (low 8 octets of SHA-256) of its octets. */
export async function buildAuthorizationRequest(opts: {
  request: EeRaCertRequest;
  enrollment: EnrollmentCredential;
  raCertificate: Certificate;
}): Promise<{ spdu: Uint8Array; requestHash: Uint8Array }> {
  const tbsRequest = scmsPdu({ 'ee-ra': { eeRaCertRequest: opts.request } }) as ScopedCertificateRequest;
  const data = await signedEncryptedCertRequestSpdu({
    tbsRequest,
    signer: opts.enrollment.signer,
    signerId: { certificate: opts.enrollment.certificate },
    recipients: [{ kind: 'cert', certificate: opts.raCertificate }],
  });
  const spdu = Ieee1609Dot2DataCodec.encode(data);
  return { spdu, requestHash: sha256(spdu).slice(-8) };
}

/** Verifies the RaEeCertAckSpdu with the RA certificate and that it answers `requestHash`. */
export function processAuthorizationAck(bytes: Uint8Array, opts: { raCertificate: Certificate; requestHash: Uint8Array }): RaEeCertAck {
  const raId = toHex(certificateHashedId8(opts.raCertificate));
  const v = verifySignedSpdu(bytes, {
    resolveSigner: (id) => ('certificate' in id && id.certificate.length === 1 && toHex(certificateHashedId8(id.certificate[0]!)) === raId ? opts.raCertificate : undefined),
  });
  if (!v.ok) throw new AuthorizationClientError(`RaEeCertAckSpdu: ${v.reason}`);
  const c = v.pdu.content;
  if (!('ee-ra' in c) || !('raEeCertAck' in c['ee-ra'])) throw new AuthorizationClientError('not an ee-ra raEeCertAck');
  const ack = c['ee-ra'].raEeCertAck;
  if (toHex(ack.requestHash) !== toHex(opts.requestHash)) throw new AuthorizationClientError('the ack answers another request');
  return ack;
}

/** 8.2 batch file name `<request hash 16 hex>_<i hex>.zip`. */
export function batchFilename(requestHash: Uint8Array, i: number): string {
  return `${toHex(requestHash)}_${i.toString(16)}.zip`;
}

/** The EeRaDownloadRequestSpdu (signed with the enrollment certificate, encrypted to the RA), base64. */
export async function buildDownloadRequest(opts: { filename: string; enrollment: EnrollmentCredential; raCertificate: Certificate; clock: Clock }): Promise<string> {
  const data = await signedEncryptedSpdu({
    pdu: scmsPdu({ 'ee-ra': { eeRaDownloadRequest: { generationTime: nowTime32(opts.clock), filename: opts.filename } } }),
    signer: opts.enrollment.signer,
    certificate: opts.enrollment.certificate,
    recipients: [{ kind: 'cert', certificate: opts.raCertificate }],
  });
  return Buffer.from(Ieee1609Dot2DataCodec.encode(data)).toString('base64');
}

export interface AuthorizationBatch {
  readonly certificates: AuthorizationCertificate[];
  readonly info: RaEeCertInfo;
}

/** Unzips a batch and processes every certificate response (decrypt, reconstruct, chain). */
export async function processAuthorizationBatch(
  zip: Uint8Array,
  opts: { secrets: ButterflySecrets; requestHash: Uint8Array; acaChain: readonly Certificate[]; trustAnchors: readonly Certificate[]; clock: Clock },
): Promise<AuthorizationBatch> {
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(zip);
  } catch (e) {
    throw new AuthorizationClientError(`not a zip file: ${(e as Error).message}`);
  }
  const kind = opts.secrets.params.variant === 'compactUnified' ? 'cubk' : 'private';
  const certificates: AuthorizationCertificate[] = [];
  let info: RaEeCertInfo | undefined;
  for (const [name, bytes] of Object.entries(files)) {
    if (name.endsWith('.info')) {
      const c = readUnsecuredSpdu(bytes).content;
      if (!('ee-ra' in c) || !('raEeCertInfo' in c['ee-ra'])) throw new AuthorizationClientError(`${name} is not an RaEeCertInfoSpdu`);
      info = c['ee-ra'].raEeCertInfo;
      if (toHex(info.requestHash) !== toHex(opts.requestHash)) throw new AuthorizationClientError(`${name} is for another request`);
      continue;
    }
    const m = /^([0-9a-f]{1,4})_([0-9a-f]{1,8})$/i.exec(name);
    if (!m) throw new AuthorizationClientError(`unexpected entry ${name}`);
    const i = parseInt(m[1]!, 16);
    const j = parseInt(m[2]!, 16);
    certificates.push(
      await processAuthorizationResponse({ secrets: opts.secrets, i, j, kind, response: bytes, acaChain: opts.acaChain, trustAnchors: opts.trustAnchors, clock: opts.clock }),
    );
  }
  if (!info) throw new AuthorizationClientError('the batch has no .info file');
  certificates.sort((a, b) => a.i - b.i || a.j - b.j);
  return { certificates, info };
}
