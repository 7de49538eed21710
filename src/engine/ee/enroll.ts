/**
 * EE side of enrollment (IEEE 1609.2.1-2022 6.3.4.2, EcaEe interface).
 *
 * buildEnrollmentRequest: an EeEcaCertRequestSpdu (Ieee1609Dot2Data-SignedCertRequest, SignerSelf) carrying an
 * EeEcaCertRequest { version 2, generationTime, type, tbsCert, canonicalId }. tbsCert.verifyKeyIndicator is the
 * verificationKey choice even for implicit requests (EeEcaCertRequest.tbsCert comment): the enrollment public key
 * (explicit) or the ECQV request value R_U (implicit). With canonicalId the SPDU is signed with the canonical
 * private key; without, with the enrollment private key (EeEcaCertRequestSpdu comment).
 *
 * processEnrollmentResponse: checks the EcaEeCertResponseSpdu (Ieee1609Dot2Data-Signed, SecurityMgmtPsid) the
 * way the EE must trust it: the signature with the ECA certificate, that certificate = ecaCertChain[0] with an
 * EcaSsp, the chain to a trusted root at the current time, requestHash = HashedId8 of the request SPDU octets
 * sent, the enrollment certificate issued by the ECA and of the requested type, and finally the private key:
 * implicit d_U = e*k_U + s (1609.2 5.3.2, privateKeyInfo = s), explicit the request key itself; d_U*G must be
 * the certificate's (reconstructed) public key.
 */
import {
  EcaEeCertResponseSpdu as EcaEeCertResponseSpduCodec,
  Ieee1609Dot2Data as Ieee1609Dot2DataCodec,
  SecurityMgmtSsp as SecurityMgmtSspCodec,
  type Certificate,
  type EcaEeCertResponse,
  type EeEcaCertRequest,
  type GeographicRegion,
  type ScopedCertificateRequest,
  type SignerIdentifier,
} from '../../codec/index.js';
import { bytesToBigInt, constantTimeEqual } from '../../crypto/bytes.js';
import { curve, type CurveName } from '../../crypto/curves.js';
import { hashedId8 } from '../../crypto/hash.js';
import {
  buildTbsCertificate,
  certificateKeyPairMatches,
  encodeCertificate,
  isIssuedBy,
} from '../../security/certificate.js';
import type { PsidRangeInput } from '../../security/cert-build.js';
import { SECURITY_MGMT_PSID, scmsPdu, signedCertRequestSpdu, verifySignedSpdu } from '../../security/scms-pdu.js';
import type { Signer } from '../../security/signer.js';
import { nowTime32, time32ToDate, type Clock } from '../../security/time.js';
import { publicKeyOf, reconstructImplicitKeyPair, verifyChainFast, type PublicKey } from './fast-verify.js';
import { canonicalIdOf, compressedPublicKey, generateKeyPair, keyPairSigner, type EeKeyPair } from './keys.js';

export type EnrollmentCertificateType = 'explicit' | 'implicit';

export interface EnrollmentRequestOptions {
  /** The device's canonical key (registered with the RA). */
  canonicalKey: Signer;
  /** The enrollment key pair (explicit: the certificate key; implicit: k_U, R_U). Default: generated here. */
  enrollmentKeyPair?: EeKeyPair;
  type: EnrollmentCertificateType;
  /** PSIDs (with optional SSP ranges) the enrollment certificate should allow requesting (certRequestPermissions). */
  psids: PsidRangeInput[];
  /** EndEntityType of the requested permissions (1609.2 6.4.31). Default app and enrol. */
  eeType?: { app?: boolean; enrol?: boolean };
  /** Countries (CountryOnly) or any GeographicRegion; absent: the issuer's region. */
  region?: number[] | GeographicRegion;
  /** Requested validity; start defaults to now. */
  validity: { start?: Date; durationSeconds: number };
  clock: Clock;
  /**
   * Default true: canonicalId = HashedId8 of the canonical key and the canonical key signs. False: no canonicalId,
   * the enrollment key signs (then it must be the registered canonical key; enrollmentKeyPair is required).
   */
  includeCanonicalId?: boolean;
  /** Ask for canRequestRollover (successor enrollment, 1609.2 6.4.8). */
  canRequestRollover?: boolean;
}

/** What the EE keeps between request and response. Holds the private key: keep it in memory only. */
export interface EnrollmentState {
  readonly type: EnrollmentCertificateType;
  readonly keyPair: EeKeyPair;
  /** HashedId8 of the request SPDU (EcaEeCertResponse.requestHash). */
  readonly requestHash: Uint8Array;
  readonly generationTime: number;
  readonly canonicalId?: string;
}

/** Builds and signs an EeEcaCertRequestSpdu. */
export async function buildEnrollmentRequest(opts: EnrollmentRequestOptions): Promise<{ spdu: Uint8Array; state: EnrollmentState }> {
  const withId = opts.includeCanonicalId ?? true;
  if (!withId && !opts.enrollmentKeyPair) throw new Error('without canonicalId the enrollment key signs: pass enrollmentKeyPair');
  const keyPair = opts.enrollmentKeyPair ?? generateKeyPair(opts.canonicalKey.curve);
  const generationTime = nowTime32(opts.clock);
  const ee = opts.eeType ?? { app: true, enrol: true };
  const tbs = buildTbsCertificate({
    id: 'none',
    validity: { start: opts.validity.start ?? time32ToDate(generationTime), durationSeconds: opts.validity.durationSeconds },
    ...(opts.region === undefined ? {} : { region: Array.isArray(opts.region) ? { countries: opts.region } : opts.region }),
    certRequestPermissions: [{ psids: opts.psids, eeType: { app: ee.app ?? false, enrol: ee.enrol ?? false } }],
    canRequestRollover: opts.canRequestRollover ?? false,
    verifyKey: { curve: keyPair.curve, publicKey: compressedPublicKey(keyPair.curve, keyPair.publicKey) },
  });
  const canonicalId = withId ? canonicalIdOf(opts.canonicalKey.curve, opts.canonicalKey.publicKey) : undefined;
  const request: EeEcaCertRequest = {
    version: 2,
    generationTime,
    type: opts.type,
    tbsCert: tbs as EeEcaCertRequest['tbsCert'],
    ...(canonicalId === undefined ? {} : { canonicalId }),
  };
  const tbsRequest = scmsPdu({ 'eca-ee': { eeEcaCertRequest: request } }) as ScopedCertificateRequest;
  const signer = withId ? opts.canonicalKey : keyPairSigner(keyPair);
  const data = await signedCertRequestSpdu({ tbsRequest, signer, signerId: 'self' });
  const spdu = Ieee1609Dot2DataCodec.encode(data);
  const state: EnrollmentState = {
    type: opts.type,
    keyPair,
    requestHash: hashedId8(spdu, curve(signer.curve).hash),
    generationTime,
    ...(canonicalId === undefined ? {} : { canonicalId }),
  };
  return { spdu, state };
}

/** The response cannot be trusted or does not answer the request. */
export class EnrollmentResponseError extends Error {
  override readonly name = 'EnrollmentResponseError';
}

export interface EnrollmentResponseOptions {
  /** Trusted root certificates (from the CTL / trust directory). */
  trustAnchors: readonly Certificate[];
  clock: Clock;
}

export interface Enrollment {
  certificate: Certificate;
  /** The enrollment private key d_U (memory only). */
  privateKey: bigint;
  /** The certificate's verification key (uncompressed; reconstructed for implicit certificates). */
  publicKey: Uint8Array;
  curve: CurveName;
  /** ecaCertChain as verified: ECA certificate first, root last. */
  chain: Certificate[];
  /** Signs with the enrollment key. */
  signer: Signer;
}

const fail = (msg: string): never => {
  throw new EnrollmentResponseError(msg);
};

/** Verifies an EcaEeCertResponseSpdu against the request state and trust anchors; returns the enrollment. */
export function processEnrollmentResponse(bytes: Uint8Array, state: EnrollmentState, opts: EnrollmentResponseOptions): Enrollment {
  // Strict decode as the parameterized type: psid, SignerSingleCert, eca-ee ecaEeCertResponse, version 2, ...
  let typed;
  try {
    typed = EcaEeCertResponseSpduCodec.decode(bytes);
  } catch (e) {
    return fail(`not an EcaEeCertResponseSpdu: ${(e as Error).message}`);
  }
  if (!('signedData' in typed.content)) return fail('EcaEeCertResponseSpdu is not signed data');
  const inner = typed.content.signedData.tbsData.payload.data;
  if (!inner || !('unsecuredData' in inner.content)) return fail('EcaEeCertResponseSpdu carries no ScmsPdu');
  const response: EcaEeCertResponse = inner.content.unsecuredData.content['eca-ee'].ecaEeCertResponse;
  const chain = response.ecaCertChain;
  if (chain.length === 0) return fail('ecaCertChain is empty');
  const ecaCert = chain[0]!;

  // The signature: with the ECA certificate, which must be ecaCertChain[0].
  const resolveSigner = (sid: SignerIdentifier) => {
    if (!('certificate' in sid) || sid.certificate.length !== 1) return undefined;
    const c = sid.certificate[0]!;
    if (!constantTimeEqual(encodeCertificate(c), encodeCertificate(ecaCert))) return undefined;
    return c.type === 'explicit' ? c : { certificate: c, publicKey: publicKeyOf(c, chain.slice(1)) };
  };
  const v = verifySignedSpdu(bytes, { resolveSigner, psid: SECURITY_MGMT_PSID });
  if (!v.ok) return fail(`response signature: ${v.reason}`);
  if (!ecaHasEcaSsp(ecaCert)) return fail('the signing certificate has no SecurityMgmtPsid permission with an EcaSsp');

  // verifyChainFast: the issuers above the ECA are verified once per chain (fast-verify.ts), the rest every time.
  const ecaChain = verifyChainFast(chain, { trustAnchors: opts.trustAnchors, clock: opts.clock });
  if (!ecaChain.ok) return fail(`ecaCertChain: ${ecaChain.errors.map((e) => `[${e.index}] ${e.code}: ${e.reason}`).join('; ')}`);

  if (!constantTimeEqual(response.requestHash, state.requestHash)) return fail('requestHash does not match the request sent');

  const cert = response.certificate;
  if (cert.type !== state.type) return fail(`certificate type ${String(cert.type)}, requested ${state.type}`);
  if (!isIssuedBy(cert, ecaCert)) return fail('the enrollment certificate is not issued by the responding ECA');
  // Consistency with the ECA (signature / reconstruction, validity, region, permissions); the enrollment
  // certificate may start later than now (eca-maxWait), so current validity is not required of it.
  const full = verifyChainFast([cert, ...chain], { trustAnchors: opts.trustAnchors, clock: opts.clock, skipCurrentValidity: true });
  if (!full.ok) return fail(`enrollment certificate: ${full.errors.map((e) => `[${e.index}] ${e.code}: ${e.reason}`).join('; ')}`);

  let d: bigint;
  if (cert.type === 'implicit') {
    const s = response.privateKeyInfo ?? fail('implicit certificate without privateKeyInfo');
    try {
      d = reconstructImplicitKeyPair(cert, chain, state.keyPair.privateKey, bytesToBigInt(s)).privateKey;
    } catch (e) {
      return fail(`private key reconstruction: ${(e as Error).message}`);
    }
  } else {
    if (response.privateKeyInfo !== undefined) return fail('privateKeyInfo present for an explicit certificate');
    d = state.keyPair.privateKey;
    if (!certificateKeyPairMatches(cert, d)) return fail("the private key does not match the certificate's public key");
  }
  // The key the chain check found (implicit: reconstructed, and d*G checked against it above).
  const pk = (full as { publicKeys: PublicKey[] }).publicKeys[0]!;
  return {
    certificate: cert,
    privateKey: d,
    publicKey: pk.publicKey,
    curve: pk.curve,
    chain: full.chain.slice(1),
    signer: keyPairSigner({ curve: pk.curve, privateKey: d, publicKey: pk.publicKey }),
  };
}

/** appPermissions has SecurityMgmtPsid with an SSP that is the COER of SecurityMgmtSsp { eca } (EcaEeCertResponseSpdu). */
function ecaHasEcaSsp(cert: Certificate): boolean {
  return (cert.toBeSigned.appPermissions ?? []).some((p) => {
    if (p.psid !== SECURITY_MGMT_PSID || !p.ssp || !('opaque' in p.ssp)) return false;
    try {
      return 'eca' in SecurityMgmtSspCodec.decode(p.ssp.opaque as Uint8Array);
    } catch {
      return false;
    }
  });
}
