/**
 * EE side of successor enrollment (IEEE 1609.2.1 6.3.5.4 / 6.3.5.5):
 *   buildSuccessorEnrollmentRequest -> EeRaSuccessorEnrollmentCertRequestSpdu: an EeEcaCertRequestSpdu
 *       self-signed with a NEW enrollment key (no canonicalId; EeRaInterfacePdu comment: "identical in format to
 *       the one submitted for an initial enrollment certificate"), put in ScmsPdu ee-ra
 *       eeRaSuccessorEnrollmentCertRequest, signed with the CURRENT enrollment certificate (SignerSingleCert) and
 *       encrypted to the RA certificate (Ieee1609Dot2Data-SignedEncryptedCertRequest).
 *   processSuccessorAck             <- RaEeEnrollmentCertAckSpdu (signed RaEeCertInfo; requestHash must be ours)
 *   successorDownloadFilename / buildDownloadRequest (authorization-client.ts: EeRaDownloadRequestSpdu, base64)
 *   processSuccessorResponse        <- EcaEeCertResponseSpdu: processEnrollmentResponse with requestHash = the
 *       HashedId8 of the outer SPDU (EcaEeCertResponse.requestHash comment), the implicit key reconstructed.
 */
import {
  EeEcaCertRequestSpdu as EeEcaCertRequestSpduCodec,
  Ieee1609Dot2Data as Ieee1609Dot2DataCodec,
  type Certificate,
  type ScopedCertificateRequest,
} from '../../codec/index.js';
import type { RaEeCertInfo } from '../../codec/gen/Ieee1609Dot2Dot1EeRaInterface.js';
import { toHex } from '../../crypto/bytes.js';
import { sha256 } from '../../crypto/hash.js';
import { certificateHashedId8 } from '../../security/certificate.js';
import { scmsPdu, signedEncryptedCertRequestSpdu, verifySignedSpdu } from '../../security/scms-pdu.js';
import { AuthorizationClientError, type EnrollmentCredential } from './authorization-client.js';
import {
  buildEnrollmentRequest,
  processEnrollmentResponse,
  type Enrollment,
  type EnrollmentRequestOptions,
  type EnrollmentResponseOptions,
  type EnrollmentState,
} from './enroll.js';
import { generateKeyPair, keyPairSigner, type EeKeyPair } from './keys.js';

export interface SuccessorRequestOptions extends Omit<EnrollmentRequestOptions, 'canonicalKey' | 'enrollmentKeyPair' | 'includeCanonicalId'> {
  /** The current enrollment certificate and its key (signs the outer request). */
  current: EnrollmentCredential;
  raCertificate: Certificate;
  /** The new enrollment key pair (explicit: the certificate key; implicit: k_U, R_U). Default: generated. */
  newKeyPair?: EeKeyPair;
}

/** Builds the EeRaSuccessorEnrollmentCertRequestSpdu; state.requestHash = HashedId8 (SHA-256) of its octets. */
export async function buildSuccessorEnrollmentRequest(opts: SuccessorRequestOptions): Promise<{ spdu: Uint8Array; state: EnrollmentState }> {
  const { current, raCertificate, newKeyPair, ...rest } = opts;
  const keyPair = newKeyPair ?? generateKeyPair(current.signer.curve);
  // Inner: self-signed with the new key, no canonicalId.
  const inner = await buildEnrollmentRequest({ ...rest, canonicalKey: keyPairSigner(keyPair), enrollmentKeyPair: keyPair, includeCanonicalId: false });
  const tbsRequest = scmsPdu({ 'ee-ra': { eeRaSuccessorEnrollmentCertRequest: EeEcaCertRequestSpduCodec.decode(inner.spdu) } }) as ScopedCertificateRequest;
  const data = await signedEncryptedCertRequestSpdu({
    tbsRequest,
    signer: current.signer,
    signerId: { certificate: current.certificate },
    recipients: [{ kind: 'cert', certificate: raCertificate }],
  });
  const spdu = Ieee1609Dot2DataCodec.encode(data);
  return { spdu, state: { ...inner.state, requestHash: sha256(spdu).slice(-8) } };
}

/** Verifies the RaEeEnrollmentCertAckSpdu with the RA certificate and that it answers `requestHash`. */
export function processSuccessorAck(bytes: Uint8Array, opts: { raCertificate: Certificate; requestHash: Uint8Array }): RaEeCertInfo {
  const raId = toHex(certificateHashedId8(opts.raCertificate));
  const v = verifySignedSpdu(bytes, {
    resolveSigner: (id) => ('certificate' in id && id.certificate.length === 1 && toHex(certificateHashedId8(id.certificate[0]!)) === raId ? opts.raCertificate : undefined),
  });
  if (!v.ok) throw new AuthorizationClientError(`RaEeEnrollmentCertAckSpdu: ${v.reason}`);
  const c = v.pdu.content;
  if (!('ee-ra' in c) || !('raEeCertInfo' in c['ee-ra'])) throw new AuthorizationClientError('not an ee-ra raEeCertInfo');
  const info = c['ee-ra'].raEeCertInfo;
  if (info.acpcTreeId !== undefined) throw new AuthorizationClientError('RaEeEnrollmentCertAckSpdu with an acpcTreeId');
  if (toHex(info.requestHash) !== toHex(opts.requestHash)) throw new AuthorizationClientError('the ack answers another request');
  return info;
}

/** The RA's download file name for a successor response: `<request hash 16 hex>.oer` (ra/successor.ts). */
export function successorDownloadFilename(requestHash: Uint8Array): string {
  return `${toHex(requestHash)}.oer`;
}

/** Verifies the downloaded EcaEeCertResponseSpdu and reconstructs the new enrollment key (enroll.ts). */
export function processSuccessorResponse(bytes: Uint8Array, state: EnrollmentState, opts: EnrollmentResponseOptions): Enrollment {
  return processEnrollmentResponse(bytes, state, opts);
}
