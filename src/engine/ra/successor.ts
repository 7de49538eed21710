/**
 * RA successor enrollment interface (IEEE 1609.2.1 6.3.5.4 / 6.3.5.5; REST-INTERFACE.md):
 *
 *   POST /v3/successor-enrollment-certificate  body EeRaSuccessorEnrollmentCertRequestSpdu
 *        (Ieee1609Dot2Data-SignedEncryptedCertRequest, SignerSingleCert = the EE's CURRENT enrollment certificate,
 *        encrypted to the RA certificate's encryptionKey; tbsRequest ee-ra eeRaSuccessorEnrollmentCertRequest =
 *        an EeEcaCertRequestSpdu self-signed with the NEW key) -> 200 RaEeEnrollmentCertAckSpdu
 *        (Ieee1609Dot2Data-Signed RaEeCertInfo, acpcTreeId ABSENT). The accepted request becomes ONE durable job
 *        (queue SUCCESSOR_QUEUE, idempotency key = request hash) that forwards the inner EeEcaCertRequestSpdu to the
 *        ECA (EcaClient, eca/successor.ts) and keeps the EcaEeCertResponseSpdu octets as the job's result.
 *   GET  /v3/successor-enrollment-certificate[?filename=]  header `Ieee-1609.2.1-Authorization: <base64
 *        EeRaDownloadRequestSpdu>` signed with the current enrollment certificate -> 200 the EcaEeCertResponseSpdu.
 *
 * Choices where the fact sheet is silent (documented, not from the standard text):
 * - requestHash = HashedId8 (low 8 octets of SHA-256) of the EeRaSuccessorEnrollmentCertRequestSpdu octets as
 *   received (as for authorization requests); the ECA puts the same value in EcaEeCertResponse.requestHash (its
 *   ASN.1 comment: the hash of the EeRaSuccessorEnrollmentCertRequestSpdu).
 * - Download file name `<request hash 16 hex>.oer` (the single COER EcaEeCertResponseSpdu, not zipped).
 * - The ack's RaEeCertInfo.currentI is 0 (enrollment certificates have no i-period); nextDlTime = now +
 *   processingDelaySeconds (default 60).
 * - The inner request's generationTime is held to allowedClockSkew (50) and ra-maxAge (77) here, its signature
 *   (proof of possession of the new key) is checked here as well as at the ECA; a canonicalId is refused 400-60.
 * - Replay (same request hash) -> 400-60. Rate limits are the ECA's (eca-maxReqs / eca-minWait, counted per device).
 * - The current enrollment certificate must be valid now (chain and validity); with `expiryGraceSeconds` an
 *   enrollment certificate that expired at most that long ago is accepted (policy choice; default 0).
 * - An ECA refusal (4xx) completes the job with the refusal; the download then answers that status and code.
 *   ECA 5xx / transport errors are retried by the queue; a dead job answers 500-99.
 * - Not ready: 503-99 + Retry-After (seconds until nextDlTime, at least download-minWait, at least 1); unknown or
 *   another EE's file: 404-99 (authorization.ts module comment: what OpenSCMS answers instead).
 * - Download limits as on GET /v3/authorization-certificate (authorization.ts downloadLimits), counted per device on
 *   this interface: download-maxAge -> 400-74, download-maxReqs -> 429-75, download-minWait -> 429-76 (Retry-After).
 * - After a crash between the ECA's issuance and the job's completion, the re-run forwards the same inner request
 *   and link; the ECA answers it with the response it stored (eca/eca.ts, successor replay), so the job completes
 *   once, with the certificate the ECA issued the first time.
 *
 * Helpers copied from authorization.ts (not exported there): decryption with the RA key, the enrollment chain
 * builder / checks and the SignerSingleCert resolver (kept short; the grace option is the only difference).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  EeEcaCertRequestSpdu as EeEcaCertRequestSpduCodec,
  Ieee1609Dot2Data as Ieee1609Dot2DataCodec,
  type Certificate,
  type ScmsPdu,
} from '../../codec/index.js';
import type { RaEeCertInfo } from '../../codec/gen/Ieee1609Dot2Dot1EeRaInterface.js';
import { fromHex, toHex } from '../../crypto/bytes.js';
import { sha256 } from '../../crypto/hash.js';
import { certificateHashedId8, certificatePublicKey, isIssuedBy, isSelfSigned } from '../../security/certificate.js';
import { verifyCertificateChain } from '../../security/chain.js';
import { decryptDataDetailed, DecryptionError, type DecryptionKey, type EciesPrivate } from '../../security/encryption.js';
import { scmsPdu, signedSpdu, verifySignedSpdu } from '../../security/scms-pdu.js';
import type { Signer } from '../../security/signer.js';
import { verifyCertificateRequest, type SignerResolver } from '../../security/spdu.js';
import { nowTime32, time32ToDate, validityPeriodEnd, type Clock } from '../../security/time.js';
import type { EcaClient, SuccessorEnrollmentResult } from '../eca/successor.js';
import { ScmsHttpError, Ieee1609Dot2Dot1ErrorCode as Code } from '../http/errors.js';
import { sendFile } from '../http/files.js';
import { audit } from '../http/logger.js';
import { octetStreamBody } from '../http/server.js';
import type { GlobalPolicy } from '../policy/index.js';
import { Worker, type Job, type JobHandler, type JobQueue, type WorkerOptions } from '../queue/index.js';
import { AUTHORIZATION_HEADER, checkGenerationTime, DownloadLimitCode, downloadLimits, notReadyRetryAfter, RaLimitCode, type DownloadRequestContext, type EnrollmentDeviceLookup } from './authorization.js';
import { DownloadStore } from './authorization-store.js';
import type { RegisteredDevice } from './registration.js';

export const SUCCESSOR_ENROLLMENT_PATH = '/v3/successor-enrollment-certificate';
export const SUCCESSOR_QUEUE = 'ra-successor-enrollment';
export const SUCCESSOR_JOB_KIND = 'successor-enrollment';

export interface SuccessorOptions {
  /** nextDlTime = now + this (default 60 s). */
  processingDelaySeconds?: number;
  /** Accept a current enrollment certificate expired at most this long ago (default 0: must be valid now). */
  expiryGraceSeconds?: number;
}

export interface SuccessorDeps {
  raCertificate: Certificate;
  raSigner: Signer;
  /** Private half of the RA certificate's encryptionKey. */
  raDecryption: EciesPrivate;
  trustAnchors: readonly Certificate[];
  /** Intermediate certificates for the enrollment certificate's chain (ECAs, ICAs). */
  caCertificates: readonly Certificate[];
  /** The current enrollment certificate must be issued by one of these (7.7.3.5). */
  ecaCertificates: readonly Certificate[];
  devices: EnrollmentDeviceLookup;
  /** The RA's job queue (migrated). */
  jobs: JobQueue;
  policy: GlobalPolicy;
  clock: Clock;
  options?: SuccessorOptions;
  /** Counters of download-maxReqs / download-minWait (migrated); default: a DownloadStore on `jobs.db`. */
  downloads?: DownloadStore;
}

/** What a job carries (JSON). */
export interface SuccessorJobPayload {
  requestHash: string;
  /** COER of the inner EeEcaCertRequestSpdu, hex. */
  request: string;
  deviceId: string;
  /** HashedId8 of the current enrollment certificate: only it may download. */
  enrollment: string;
  nextDlTime: number;
}

/** The job's result: the ECA's answer. */
export type SuccessorJobResult = { response: string; certificate: string } | { refused: { status: number; code: number; reason: string } };

const refuse = (status: number, code: number, reason: string, headers?: Record<string, string>): never => {
  throw new ScmsHttpError(status, code, reason, headers ? { headers } : {});
};

const hex8 = (c: Certificate) => toHex(certificateHashedId8(c));

function chainOf(leaf: Certificate, deps: SuccessorDeps): Certificate[] {
  const pool = [...deps.caCertificates, ...deps.trustAnchors];
  const chain = [leaf];
  let cur = leaf;
  for (let n = 0; n < 8 && !isSelfSigned(cur); n++) {
    const issuer = pool.find((c) => isIssuedBy(cur, c));
    if (!issuer) break;
    chain.push(issuer);
    cur = issuer;
  }
  return chain;
}

async function decryptForRa(bytes: Uint8Array, deps: SuccessorDeps) {
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

function singleCertResolver(deps: SuccessorDeps): SignerResolver {
  return (id) => {
    if (!('certificate' in id) || id.certificate.length !== 1) return undefined;
    const cert = id.certificate[0]!;
    if (cert.type === 'explicit') return cert;
    const chain = chainOf(cert, deps);
    if (chain.length < 2) return undefined;
    try {
      return { certificate: cert, publicKey: certificatePublicKey(cert, chain.slice(1)) };
    } catch {
      return undefined;
    }
  };
}

/** The current enrollment certificate: chains (valid now, or within the grace), ECA-issued, device known, not blocked. */
async function checkEnrollment(enrollment: Certificate, deps: SuccessorDeps): Promise<RegisteredDevice> {
  const chain = chainOf(enrollment, deps);
  const now = nowTime32(deps.clock);
  const end = Math.floor(validityPeriodEnd(enrollment.toBeSigned.validityPeriod));
  const grace = deps.options?.expiryGraceSeconds ?? 0;
  // Within the grace, the chain is judged at the certificate's last valid second.
  const clock: Clock = now >= end && now - end <= grace ? { now: () => time32ToDate(end - 1) } : deps.clock;
  const v = verifyCertificateChain(chain, { trustAnchors: deps.trustAnchors, clock });
  if (!v.ok) refuse(400, Code.chainFailure, `enrollment certificate chain: ${v.errors.map((e) => `${e.code} at ${e.index}: ${e.reason}`).join('; ')}`);
  const ecas = new Set(deps.ecaCertificates.map(hex8));
  if (!chain[1] || !ecas.has(hex8(chain[1]))) refuse(400, Code.chainFailure, 'the signing certificate is not an enrollment certificate of a known ECA');
  const device = await deps.devices(hex8(enrollment));
  if (!device) return refuse(400, Code.enrollmentCertificateUnknown, 'the enrollment certificate is not registered to a device');
  if (device.state === 'blocked') refuse(403, Code.enrollmentCertificateBlocked, 'the device is blocked');
  return device;
}

/** `<request hash 16 hex>.oer`. */
export function successorFilename(requestHash: Uint8Array | string): string {
  return `${typeof requestHash === 'string' ? requestHash.toLowerCase() : toHex(requestHash)}.oer`;
}

export interface AcceptedSuccessorRequest {
  ack: Uint8Array;
  payload: SuccessorJobPayload;
  jobId: string;
}

/** 6.3.5.4: checks an EeRaSuccessorEnrollmentCertRequestSpdu and enqueues its job; ScmsHttpError on refusal. */
export async function acceptSuccessorRequest(bytes: Uint8Array, deps: SuccessorDeps): Promise<AcceptedSuccessorRequest> {
  const { clock, jobs, policy } = deps;
  const plain = await decryptForRa(bytes, deps);
  if (!('signedCertificateRequest' in plain.content)) refuse(400, Code.parsingFailure, 'the decrypted data is not a signedCertificateRequest');
  const v = verifyCertificateRequest(plain, { resolveSigner: singleCertResolver(deps) });
  if (!v.ok) return refuse(400, Code.signatureFailure, `signature: ${v.reason}`);
  if (!('certificate' in v.signer) || v.signer.certificate.length !== 1) return refuse(400, Code.parsingFailure, 'signer is not SignerSingleCert');
  const c = v.tbsRequest.content as ScmsPdu['content'];
  if (v.tbsRequest.version !== 2 || !('ee-ra' in c) || !('eeRaSuccessorEnrollmentCertRequest' in c['ee-ra'])) {
    return refuse(400, Code.parsingFailure, 'not an ee-ra eeRaSuccessorEnrollmentCertRequest');
  }
  const enrollment = v.signer.certificate[0]!;
  const device = await checkEnrollment(enrollment, deps);

  // The inner EeEcaCertRequestSpdu: SignerSelf, no canonicalId, signed with the requested (new) key.
  const spdu = c['ee-ra'].eeRaSuccessorEnrollmentCertRequest;
  if (!('signedCertificateRequest' in spdu.content)) return refuse(400, Code.parsingFailure, 'the inner request is not a signedCertificateRequest');
  const req = spdu.content.signedCertificateRequest.tbsRequest.content['eca-ee'].eeEcaCertRequest;
  if (req.canonicalId !== undefined) refuse(400, Code.invalidContent, 'a successor request carries no canonicalId (it is signed with the new key)');
  const inner = EeEcaCertRequestSpduCodec.encode(spdu);
  const iv = verifyCertificateRequest(inner);
  if (!iv.ok) return refuse(400, Code.signatureFailure, `inner EeEcaCertRequestSpdu: ${iv.reason}`);
  checkGenerationTime(req.generationTime, policy['ra-maxAge'], RaLimitCode.maxAge, deps, 'ra-maxAge');

  const requestHash = sha256(bytes).slice(-8);
  const key = toHex(requestHash);
  if (await jobs.getByKey(SUCCESSOR_QUEUE, key)) refuse(400, Code.invalidContent, 'replayed request: this EeRaSuccessorEnrollmentCertRequestSpdu was accepted before');

  const now = nowTime32(clock);
  const nextDlTime = now + (deps.options?.processingDelaySeconds ?? 60);
  const info: RaEeCertInfo = { version: 2, generationTime: now, currentI: 0, requestHash, nextDlTime };
  const ack = Ieee1609Dot2DataCodec.encode(await signedSpdu({ pdu: scmsPdu({ 'ee-ra': { raEeCertInfo: info } }), signer: deps.raSigner, certificate: deps.raCertificate }));
  const payload: SuccessorJobPayload = { requestHash: key, request: toHex(inner), deviceId: device.deviceId, enrollment: hex8(enrollment), nextDlTime };
  const r = await jobs.enqueue({ queue: SUCCESSOR_QUEUE, kind: SUCCESSOR_JOB_KIND, payload, idempotencyKey: key });
  if (!r.created) refuse(400, Code.invalidContent, 'replayed request: this EeRaSuccessorEnrollmentCertRequestSpdu was accepted before');
  return { ack, payload, jobId: r.id };
}

/** 6.3.5.5: checks the download SPDU (base64 header value) and returns the EcaEeCertResponseSpdu file. */
export async function successorDownload(
  header: string | undefined,
  filenameParam: string | undefined,
  deps: SuccessorDeps,
  ctx: DownloadRequestContext = {},
): Promise<{ filename: string; bytes: Uint8Array }> {
  if (!header) return refuse(400, Code.requestNotEncrypted, `the ${AUTHORIZATION_HEADER} header is missing`);
  if (!deps.downloads) throw new Error('successorDownload: deps.downloads is not set (registerSuccessorEnrollment sets it)');
  const bytes = new Uint8Array(Buffer.from(header.trim(), 'base64'));
  const plain = await decryptForRa(bytes, deps);
  const v = verifySignedSpdu(plain, { resolveSigner: singleCertResolver(deps) });
  if (!v.ok) return refuse(400, Code.signatureFailure, `signature: ${v.reason}`);
  const c = v.pdu.content;
  if (!('ee-ra' in c) || !('eeRaDownloadRequest' in c['ee-ra'])) return refuse(400, Code.parsingFailure, 'not an ee-ra eeRaDownloadRequest');
  const dl = c['ee-ra'].eeRaDownloadRequest;
  const signer = (v.signer as { certificate: Certificate[] }).certificate[0]!;
  const device = await checkEnrollment(signer, deps);
  checkGenerationTime(dl.generationTime, deps.policy['download-maxAge'], DownloadLimitCode.maxAge, deps, 'download-maxAge');
  if (filenameParam !== undefined && filenameParam !== dl.filename) refuse(400, Code.invalidContent, 'the filename parameter differs from the filename in the download request');

  const m = /^([0-9a-f]{16})\.oer$/i.exec(dl.filename);
  const job = m ? ((await deps.jobs.getByKey(SUCCESSOR_QUEUE, m[1]!.toLowerCase())) as Job<SuccessorJobPayload, SuccessorJobResult> | undefined) : undefined;
  if (!job || job.payload.enrollment !== hex8(signer)) return refuse(404, Code.undefined, `no file ${JSON.stringify(dl.filename)}`);
  await downloadLimits(deps.downloads, { deviceId: device.deviceId, endpoint: 'successor', filename: dl.filename, generationTime: dl.generationTime, range: ctx.range }, deps);
  if (job.state === 'dead') return refuse(500, Code.undefined, 'the successor enrollment certificate could not be issued');
  if (job.state !== 'done') {
    return refuse(503, Code.undefined, 'the successor enrollment certificate is not available yet', { 'retry-after': String(notReadyRetryAfter(job.payload.nextDlTime, deps)) });
  }
  const res = job.result;
  if (!res) return refuse(500, Code.undefined, 'no stored response');
  if ('refused' in res) return refuse(res.refused.status, res.refused.code, `refused by the ECA: ${res.refused.reason}`);
  return { filename: successorFilename(job.payload.requestHash), bytes: fromHex(res.response) };
}

/**
 * Worker handler: forwards the inner request to the ECA with the device link. The ECA's answer (certificate or a
 * 4xx refusal) becomes the job's result; 5xx is thrown (the queue retries). A re-run after a crash between the ECA's
 * issuance and the job's completion sends the same request and link: the ECA returns the response it stored for that
 * request hash (not a replay refusal), so the job completes with the certificate issued the first time.
 */
export function successorJobHandler(eca: EcaClient): JobHandler {
  return async (job: Job<SuccessorJobPayload>): Promise<SuccessorJobResult> => {
    const p = job.payload;
    const r: SuccessorEnrollmentResult = await eca.successorEnrollment(fromHex(p.request), {
      deviceId: p.deviceId,
      currentEnrollment: p.enrollment,
      requestHash: fromHex(p.requestHash),
    });
    if (r.status === 200 && 'body' in r) return { response: toHex(r.body), certificate: r.hashedId8 };
    const f = r as { status: number; code: number; reason: string };
    if (f.status >= 500) throw new Error(`ECA ${f.status}-${f.code}: ${f.reason}`);
    return { refused: { status: f.status, code: f.code, reason: f.reason } };
  };
}

/** The queue Worker for SUCCESSOR_QUEUE (start() it; stop() on shutdown). */
export function successorWorker(opts: { jobs: JobQueue; eca: EcaClient; worker?: Omit<WorkerOptions, 'jobs' | 'queue' | 'handler'> }): Worker {
  return new Worker({ ...opts.worker, jobs: opts.jobs, queue: SUCCESSOR_QUEUE, handler: successorJobHandler(opts.eca) });
}

/** Mounts POST / GET /v3/successor-enrollment-certificate (migrates the download counters when `deps.downloads` is not given). */
export async function registerSuccessorEnrollment(app: FastifyInstance, given: SuccessorDeps): Promise<void> {
  let deps = given;
  if (!deps.downloads) {
    const downloads = new DownloadStore(deps.jobs.db);
    await downloads.migrate();
    deps = { ...deps, downloads };
  }
  app.post(SUCCESSOR_ENROLLMENT_PATH, { config: { errorFormat: 'text' } }, async (request: FastifyRequest, reply: FastifyReply) => {
    const r = await acceptSuccessorRequest(octetStreamBody(request), deps);
    audit(request.log, 'ra.successor.accepted', { actor: `device:${r.payload.deviceId}`, requestId: request.id, deviceId: r.payload.deviceId, requestHash: r.payload.requestHash, jobId: r.jobId });
    return reply.code(200).type('application/octet-stream').send(Buffer.from(r.ack.buffer, r.ack.byteOffset, r.ack.byteLength));
  });
  app.get(SUCCESSOR_ENROLLMENT_PATH, { config: { errorFormat: 'text' } }, async (request: FastifyRequest, reply: FastifyReply) => {
    const h = request.headers[AUTHORIZATION_HEADER];
    const q = (request.query ?? {}) as Record<string, unknown>;
    const range = request.headers.range;
    const file = await successorDownload(typeof h === 'string' ? h : undefined, typeof q.filename === 'string' ? q.filename : undefined, deps, {
      range: typeof range === 'string' ? range : undefined,
    });
    return sendFile(request, reply, { bytes: file.bytes, filename: file.filename, contentType: 'application/octet-stream', ranges: true });
  });
}
