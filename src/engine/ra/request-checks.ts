/**
 * Request checks the RA's EE-facing interfaces share (IEEE 1609.2.1 6.3.5.2 - 6.3.5.5): authorization
 * (authorization.ts) and successor enrollment (successor.ts), POST and GET alike.
 *
 *   decryptForRa             Ieee1609Dot2Data-Encrypted to the RA certificate's encryptionKey (10 / 81 / 41 / 42)
 *   authenticateCertRequest  POST: decrypt, SignedCertificateRequest with SignerSingleCert (43 / 42), the expected
 *                            ee-ra choice (42), then checkEnrollment
 *   authenticateDownload     GET: the base64 EeRaDownloadRequestSpdu of the `Ieee-1609.2.1-Authorization` header:
 *                            decrypt, signed by SignerSingleCert (43), eeRaDownloadRequest (42), checkEnrollment,
 *                            download-maxAge (400-74), the filename parameter equals the SPDU's (400-60)
 *   checkEnrollment          the signing enrollment certificate: chain to the trust anchors valid now (or within an
 *                            expiry grace), issued by a known ECA (40), registered to a device (400-21), not blocked
 *                            (403-20)
 *   checkGenerationTime      not after now + allowedClockSkew (400-50), at most maxAge old (400-<code>)
 *   checkRequestRate         maxReqs per 7 x 24 h of generationTime and minWait between generation times, on a
 *                            device's request history (429 with the limit's code)
 * All of them throw ScmsHttpError on refusal and change nothing stored.
 */
import { Ieee1609Dot2Data as Ieee1609Dot2DataCodec, type Certificate, type Ieee1609Dot2Data, type ScmsPdu } from '../../codec/index.js';
import type { EeRaDownloadRequest, EeRaInterfacePdu } from '../../codec/gen/Ieee1609Dot2Dot1EeRaInterface.js';
import { toHex } from '../../crypto/bytes.js';
import { certificateHashedId8, certificatePublicKey } from '../../security/certificate.js';
import { chainOf, verifyCertificateChain } from '../../security/chain.js';
import { decryptDataDetailed, DecryptionError, type DecryptionKey, type EciesPrivate } from '../../security/encryption.js';
import { verifySignedSpdu } from '../../security/scms-pdu.js';
import { verifyCertificateRequest, type SignerResolver } from '../../security/spdu.js';
import { nowTime32, time32ToDate, validityPeriodEnd, type Clock, type Time32 } from '../../security/time.js';
import { ScmsHttpError, Ieee1609Dot2Dot1ErrorCode as Code } from '../http/errors.js';
import type { GlobalPolicy } from '../policy/index.js';
import { WEEK_SECONDS } from '../policy/index.js';
import type { RegisteredDevice } from './registration.js';

/** Header carrying the base64 download SPDU (REST-INTERFACE.md, Conventions). */
export const AUTHORIZATION_HEADER = 'ieee-1609.2.1-authorization';

/** Finds the device an enrollment certificate (HashedId8, 16 hex) was issued to. */
export type EnrollmentDeviceLookup = (enrollmentHashedId8: string) => Promise<RegisteredDevice | undefined>;

/** What the shared checks need of an interface's dependencies. */
export interface RequestCheckDeps {
  raCertificate: Certificate;
  /** Private half of the RA certificate's encryptionKey (scalar or ECDH callback). */
  raDecryption: EciesPrivate;
  /** Trusted roots (CTL). */
  trustAnchors: readonly Certificate[];
  /** Intermediate certificates for building the enrollment certificate's chain (ECAs, ICAs). */
  caCertificates: readonly Certificate[];
  /** An enrollment certificate must be issued by one of these (7.7.3.5 enrollment profile: ECA-issued). */
  ecaCertificates: readonly Certificate[];
  devices: EnrollmentDeviceLookup;
  policy: GlobalPolicy;
  clock: Clock;
}

export interface EnrollmentCheckOptions {
  /** Accept an enrollment certificate expired at most this long ago (default 0: must be valid now). */
  expiryGraceSeconds?: number;
}

export const refuse = (status: number, code: number, reason: string, headers?: Record<string, string>): never => {
  throw new ScmsHttpError(status, code, reason, headers ? { headers } : {});
};

/** HashedId8 of a certificate, 16 hex. */
export const hex8 = (c: Certificate): string => toHex(certificateHashedId8(c));

/** The certificate's chain up to a trust anchor, from the known CA certificates (security/chain.ts chainOf). */
export function chainOfKnown(leaf: Certificate, deps: Pick<RequestCheckDeps, 'caCertificates' | 'trustAnchors'>): Certificate[] {
  return chainOf(leaf, [...deps.caCertificates, ...deps.trustAnchors]);
}

/**
 * Decrypts with the RA key (10 not encrypted, 81 encrypted to another RA, 41 other decryption failures, 42 not an
 * Ieee1609Dot2Data) and returns the plaintext Ieee1609Dot2Data.
 */
export async function decryptForRa(bytes: Uint8Array, deps: Pick<RequestCheckDeps, 'raCertificate' | 'raDecryption'>): Promise<Ieee1609Dot2Data> {
  let outer;
  try {
    outer = Ieee1609Dot2DataCodec.decode(bytes);
  } catch (e) {
    return refuse(400, Code.parsingFailure, `not an Ieee1609Dot2Data: ${(e as Error).message}`);
  }
  if (!('encryptedData' in outer.content)) return refuse(400, Code.requestNotEncrypted, `content is ${Object.keys(outer.content)[0]}, expected encryptedData`);
  const key: DecryptionKey = { kind: 'cert', certificate: deps.raCertificate, ...deps.raDecryption };
  try {
    return (await decryptDataDetailed(outer, [key])).data;
  } catch (e) {
    if (e instanceof DecryptionError && e.code === 'no-recipient') return refuse(400, Code.wrongRa, 'not encrypted to this RA');
    return refuse(400, Code.decryptionFailure, `decryption: ${(e as Error).message}`);
  }
}

/** Resolver for SignerSingleCert: any certificate, with its (reconstructed) key; trust is checked afterwards. */
export function singleCertResolver(deps: Pick<RequestCheckDeps, 'caCertificates' | 'trustAnchors'>): SignerResolver {
  return (id) => {
    if (!('certificate' in id) || id.certificate.length !== 1) return undefined;
    const cert = id.certificate[0]!;
    if (cert.type === 'explicit') return cert;
    const chain = chainOfKnown(cert, deps);
    if (chain.length < 2) return undefined;
    try {
      return { certificate: cert, publicKey: certificatePublicKey(cert, chain.slice(1)) };
    } catch {
      return undefined;
    }
  };
}

/**
 * Enrollment certificate checks: chain to the anchors valid now (with `expiryGraceSeconds`, an enrollment certificate
 * that expired at most that long ago is judged at its last valid second), ECA-issued (40), device registered (400-21)
 * and not blocked (403-20).
 */
export async function checkEnrollment(enrollment: Certificate, deps: RequestCheckDeps, opts: EnrollmentCheckOptions = {}): Promise<RegisteredDevice> {
  const chain = chainOfKnown(enrollment, deps);
  const now = nowTime32(deps.clock);
  const end = Math.floor(validityPeriodEnd(enrollment.toBeSigned.validityPeriod));
  const grace = opts.expiryGraceSeconds ?? 0;
  const clock: Clock = grace > 0 && now >= end && now - end <= grace ? { now: () => time32ToDate(end - 1) } : deps.clock;
  const v = verifyCertificateChain(chain, { trustAnchors: deps.trustAnchors, clock });
  if (!v.ok) refuse(400, Code.chainFailure, `enrollment certificate chain: ${v.errors.map((e) => `${e.code} at ${e.index}: ${e.reason}`).join('; ')}`);
  const ecas = new Set(deps.ecaCertificates.map(hex8));
  if (!chain[1] || !ecas.has(hex8(chain[1]))) refuse(400, Code.chainFailure, 'the enrollment certificate is not issued by a known ECA');
  const device = await deps.devices(hex8(enrollment));
  if (!device) return refuse(400, Code.enrollmentCertificateUnknown, 'the enrollment certificate is not registered to a device');
  if (device.state === 'blocked') refuse(403, Code.enrollmentCertificateBlocked, 'the device is blocked');
  return device;
}

/** generationTime not after now + allowedClockSkew (400-50) and at most `maxAge` old (400-`maxAgeCode`). */
export function checkGenerationTime(generationTime: Time32, maxAge: number, maxAgeCode: number, deps: { policy: GlobalPolicy; clock: Clock }, name = 'maxAge'): void {
  const now = nowTime32(deps.clock);
  if (generationTime > now + deps.policy.allowedClockSkew) refuse(400, Code.generationTimeInFuture, `generationTime ${time32ToDate(generationTime).toISOString()} is in the future`);
  if (now - generationTime > maxAge) refuse(400, maxAgeCode, `${name}: generationTime is ${now - generationTime} s old (limit ${maxAge} s)`);
}

/** The ee-ra choices an RA POST interface accepts. */
type EeRaRequestChoice = 'eeRaCertRequest' | 'eeRaSuccessorEnrollmentCertRequest';

export interface AuthenticatedCertRequest<K extends EeRaRequestChoice> {
  /** The ee-ra request of the expected choice. */
  request: Extract<EeRaInterfacePdu, Record<K, unknown>>[K];
  /** The enrollment certificate that signed it (SignerSingleCert). */
  enrollment: Certificate;
  device: RegisteredDevice;
}

/**
 * POST (6.3.5.2 / 6.3.5.4): decrypts, verifies the SignedCertificateRequest signed with SignerSingleCert (43), checks
 * that the ScopedCertificateRequest (version 2) carries the ee-ra choice `choice` (42), then the signer (checkEnrollment).
 */
export async function authenticateCertRequest<K extends EeRaRequestChoice>(
  bytes: Uint8Array,
  choice: K,
  deps: RequestCheckDeps,
  opts: EnrollmentCheckOptions = {},
): Promise<AuthenticatedCertRequest<K>> {
  const inner = await decryptForRa(bytes, deps);
  if (!('signedCertificateRequest' in inner.content)) refuse(400, Code.parsingFailure, 'the decrypted data is not a signedCertificateRequest');
  const v = verifyCertificateRequest(inner, { resolveSigner: singleCertResolver(deps) });
  if (!v.ok) return refuse(400, Code.signatureFailure, `signature: ${v.reason}`);
  if (!('certificate' in v.signer) || v.signer.certificate.length !== 1) return refuse(400, Code.parsingFailure, 'signer is not SignerSingleCert');
  const c = v.tbsRequest.content as ScmsPdu['content'];
  if (v.tbsRequest.version !== 2 || !('ee-ra' in c) || !(choice in c['ee-ra'])) return refuse(400, Code.parsingFailure, `not an ee-ra ${choice}`);
  const enrollment = v.signer.certificate[0]!;
  const device = await checkEnrollment(enrollment, deps, opts);
  return { request: (c['ee-ra'] as unknown as Record<K, AuthenticatedCertRequest<K>['request']>)[choice], enrollment, device };
}

export interface AuthenticatedDownload {
  download: EeRaDownloadRequest;
  /** The enrollment certificate that signed the download request. */
  signer: Certificate;
  device: RegisteredDevice;
}

/**
 * GET (6.3.5.3 / 6.3.5.5): the `Ieee-1609.2.1-Authorization` header value (base64 EeRaDownloadRequestSpdu):
 * decrypted, signed with SignerSingleCert (43), an ee-ra eeRaDownloadRequest (42), the signer checked
 * (checkEnrollment), download-maxAge on its generationTime (400-74), and the `filename` query parameter, when
 * given, equal to the SPDU's filename (400-60).
 */
export async function authenticateDownload(
  header: string | undefined,
  filenameParam: string | undefined,
  maxAgeCode: number,
  deps: RequestCheckDeps,
  opts: EnrollmentCheckOptions = {},
): Promise<AuthenticatedDownload> {
  if (!header) return refuse(400, Code.requestNotEncrypted, `the ${AUTHORIZATION_HEADER} header is missing`);
  const bytes = new Uint8Array(Buffer.from(header.trim(), 'base64'));
  const inner = await decryptForRa(bytes, deps);
  const v = verifySignedSpdu(inner, { resolveSigner: singleCertResolver(deps) });
  if (!v.ok) return refuse(400, Code.signatureFailure, `signature: ${v.reason}`);
  const c = v.pdu.content;
  if (!('ee-ra' in c) || !('eeRaDownloadRequest' in c['ee-ra'])) return refuse(400, Code.parsingFailure, 'not an ee-ra eeRaDownloadRequest');
  const download = c['ee-ra'].eeRaDownloadRequest;
  const signer = (v.signer as { certificate: Certificate[] }).certificate[0]!;
  const device = await checkEnrollment(signer, deps, opts);
  checkGenerationTime(download.generationTime, deps.policy['download-maxAge'], maxAgeCode, deps, 'download-maxAge');
  if (filenameParam !== undefined && filenameParam !== download.filename) refuse(400, Code.invalidContent, 'the filename parameter differs from the filename in the download request');
  return { download, signer, device };
}

/** A device's accepted requests as a rate rule sees them. */
export interface RequestHistory {
  /** Requests with generationTime >= the window start (generationTime - 7 x 24 h). */
  countSince: number;
  /** The oldest generationTime in that window; when given, a maxReqs refusal carries Retry-After. */
  oldestSince?: number | undefined;
  latestGenerationTime: number | undefined;
}

/** One rate rule pair (1609.2.1 clause 4.3 `*-maxReqs` / `*-minWait`) and the codes its refusals carry. */
export interface RateRule {
  /** Policy key names, for the reason text (`ra-maxReqs`, `eca-minWait`, ...). */
  maxReqsName: string;
  minWaitName: string;
  maxReqs: number;
  minWait: number;
  maxReqsCode: number;
  minWaitCode: number;
  /** What is counted, for the reason text ("authorization requests"). */
  what: string;
}

/**
 * maxReqs per 7 x 24 h and minWait between generation times, for a request with `generationTime` against the device's
 * history: 429-<maxReqsCode> (Retry-After when the oldest request of the window is known: when it leaves the window)
 * or 429-<minWaitCode> with Retry-After (the seconds of minWait left).
 */
export function checkRequestRate(h: RequestHistory, generationTime: number, rule: RateRule): void {
  if (h.countSince >= rule.maxReqs) {
    const headers = h.oldestSince === undefined ? undefined : { 'retry-after': String(Math.max(1, h.oldestSince + WEEK_SECONDS - generationTime + 1)) };
    refuse(429, rule.maxReqsCode, `${rule.maxReqsName}: ${h.countSince} ${rule.what} in the last 7 x 24 h (limit ${rule.maxReqs})`, headers);
  }
  if (h.latestGenerationTime !== undefined && generationTime - h.latestGenerationTime < rule.minWait) {
    refuse(429, rule.minWaitCode, `${rule.minWaitName}: ${generationTime - h.latestGenerationTime} s since the previous request (minimum ${rule.minWait} s)`, {
      'retry-after': String(Math.max(1, rule.minWait - (generationTime - h.latestGenerationTime))),
    });
  }
}
