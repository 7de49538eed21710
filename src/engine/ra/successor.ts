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
 * - Replay (same request hash) -> 400-60.
 * - Rate limits: the inner request is an enrollment certificate request, so the limits the policy sets for those
 *   (clause 4.3 eca-maxReqs, eca-minWait) govern it; the ECA applies them to every enrollment request of the device.
 *   The RA applies the same two up front, so that the EE gets the answer at POST time (not in a stored refusal):
 *   counted per device on the inner generationTime, over the successor requests this RA accepted and the ECA did not
 *   refuse (successor-store.ts): eca-maxReqs per 7 x 24 h -> 429-71 with Retry-After (when the oldest counted request
 *   leaves the window), eca-minWait -> 429-73 with Retry-After (the seconds left). The ECA's codes, as the ECA would
 *   answer; checked again in the transaction that records the request and enqueues its job (a concurrent duplicate
 *   loses there); a refused request stores nothing. The ECA still has the last word: it also counts the device's
 *   initial enrollment, which the RA does not see. (ra-maxReqs / ra-minWait are the authorization requests' limits.)
 * - The current enrollment certificate must be valid now (chain and validity); with `expiryGraceSeconds` an
 *   enrollment certificate that expired at most that long ago is accepted (policy choice; default 0).
 * - An ECA refusal (4xx) completes the job with the refusal (the request no longer counts against the RA's limits);
 *   the download then answers that status and code. A rate refusal (429: eca-maxReqs 71, eca-minWait 73) is not
 *   final: the ECA counts on generation times, so the same request would be refused again, but a NEW request
 *   generated after Retry-After passes; the download answers 429 with that code and Retry-After = seconds until the
 *   inner generationTime + the ECA's Retry-After (eca-minWait when the ECA gave none), at least 1. ECA 5xx /
 *   transport errors are retried by the queue (exponential back-off) for at least eca-maxAge, while the ECA would still
 *   accept the request (successorMaxAttempts); a dead job answers 500-99.
 * - Not ready: 503-99 + Retry-After (seconds until nextDlTime, at least download-minWait, at least 1); unknown or
 *   another EE's file: 404-99 (authorization.ts module comment: what OpenSCMS answers instead).
 * - Download limits as on GET /v3/authorization-certificate (authorization.ts downloadLimits), counted per device on
 *   this interface: download-maxAge -> 400-74, download-maxReqs -> 429-75, download-minWait -> 429-76 (Retry-After).
 * - After a crash between the ECA's issuance and the job's completion, the re-run forwards the same inner request
 *   and link; the ECA answers it with the response it stored (eca/eca.ts, successor replay), so the job completes
 *   once, with the certificate the ECA issued the first time.
 *
 * Decryption, the signer's enrollment certificate (with the expiry grace), generation time and the download SPDU are
 * checked as for authorization requests (request-checks.ts).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import { EeEcaCertRequestSpdu as EeEcaCertRequestSpduCodec, Ieee1609Dot2Data as Ieee1609Dot2DataCodec } from '../../codec/index.js';
import type { RaEeCertInfo } from '../../codec/gen/Ieee1609Dot2Dot1EeRaInterface.js';
import { fromHex, toHex } from '../../crypto/bytes.js';
import { sha256 } from '../../crypto/hash.js';
import { scmsPdu, signedSpdu } from '../../security/scms-pdu.js';
import type { Signer } from '../../security/signer.js';
import { verifyCertificateRequest } from '../../security/spdu.js';
import { nowTime32 } from '../../security/time.js';
import type { EcaClient, SuccessorEnrollmentResult } from '../eca/successor.js';
import { Ieee1609Dot2Dot1ErrorCode as Code } from '../http/errors.js';
import { sendFile } from '../http/files.js';
import { audit } from '../http/logger.js';
import { octetStreamBody } from '../http/server.js';
import { backoffDelayMs, DEFAULT_BACKOFF, Worker, type BackoffOptions, type Job, type JobContext, type JobHandler, type JobQueue, type WorkerOptions } from '../queue/index.js';
import { WEEK_SECONDS } from '../policy/index.js';
import { DownloadLimitCode, downloadLimits, notReadyRetryAfter, RaLimitCode, type DownloadRequestContext } from './authorization.js';
import { DownloadStore } from './authorization-store.js';
import { withTransaction } from '../store/transaction.js';
import { EcaLimitCode } from '../eca/eca.js';
import { AUTHORIZATION_HEADER, authenticateCertRequest, authenticateDownload, checkGenerationTime, checkRequestRate, hex8, refuse, type RequestCheckDeps } from './request-checks.js';
import { SuccessorRequestStore } from './successor-store.js';

export const SUCCESSOR_ENROLLMENT_PATH = '/v3/successor-enrollment-certificate';
export const SUCCESSOR_QUEUE = 'ra-successor-enrollment';
export const SUCCESSOR_JOB_KIND = 'successor-enrollment';

export interface SuccessorOptions {
  /** nextDlTime = now + this (default 60 s). */
  processingDelaySeconds?: number;
  /** Accept a current enrollment certificate expired at most this long ago (default 0: must be valid now). */
  expiryGraceSeconds?: number;
  /** Attempts of a job before it is dead (default successorMaxAttempts(eca-maxAge)). */
  maxAttempts?: number;
}

/** The shared request-check deps (request-checks.ts: RA certificate and decryption key, trust, ECAs, devices, policy, clock) and: */
export interface SuccessorDeps extends RequestCheckDeps {
  raSigner: Signer;
  /** The RA's job queue (migrated). */
  jobs: JobQueue;
  options?: SuccessorOptions;
  /** Counters of download-maxReqs / download-minWait (migrated); default: a DownloadStore on `jobs.db`. */
  downloads?: DownloadStore;
  /** Accepted successor requests, for eca-maxReqs / eca-minWait (migrated; on `jobs.db`); default: a store on `jobs.db`. */
  requests?: SuccessorRequestStore;
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
  /** generationTime of the inner EeEcaCertRequest (absent in jobs of earlier versions: read from `request`). */
  generationTime?: number;
}

/** The ECA's refusal as the job keeps it; retryAfter: the ECA's Retry-After of a 429, when it gave one. */
export interface SuccessorRefusal {
  status: number;
  code: number;
  reason: string;
  retryAfter?: number;
}

/** The job's result: the ECA's answer. */
export type SuccessorJobResult = { response: string; certificate: string } | { refused: SuccessorRefusal };

const grace = (deps: SuccessorDeps) => ({ expiryGraceSeconds: deps.options?.expiryGraceSeconds ?? 0 });

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
  const { request: spdu, enrollment, device } = await authenticateCertRequest(bytes, 'eeRaSuccessorEnrollmentCertRequest', deps, grace(deps));

  // The inner EeEcaCertRequestSpdu: SignerSelf, no canonicalId, signed with the requested (new) key.
  if (!('signedCertificateRequest' in spdu.content)) return refuse(400, Code.parsingFailure, 'the inner request is not a signedCertificateRequest');
  const req = spdu.content.signedCertificateRequest.tbsRequest.content['eca-ee'].eeEcaCertRequest;
  if (req.canonicalId !== undefined) refuse(400, Code.invalidContent, 'a successor request carries no canonicalId (it is signed with the new key)');
  const inner = EeEcaCertRequestSpduCodec.encode(spdu);
  const iv = verifyCertificateRequest(inner);
  if (!iv.ok) return refuse(400, Code.signatureFailure, `inner EeEcaCertRequestSpdu: ${iv.reason}`);
  checkGenerationTime(req.generationTime, policy['ra-maxAge'], RaLimitCode.maxAge, deps, 'ra-maxAge');

  const requestHash = sha256(bytes).slice(-8);
  const key = toHex(requestHash);
  const requests = deps.requests ?? new SuccessorRequestStore(jobs.db);
  // Replay and eca-maxReqs / eca-minWait (module comment); again in the writing transaction.
  await checkHistory(requests, jobs, key, device.deviceId, req.generationTime, policy);

  const now = nowTime32(clock);
  const nextDlTime = now + (deps.options?.processingDelaySeconds ?? 60);
  const info: RaEeCertInfo = { version: 2, generationTime: now, currentI: 0, requestHash, nextDlTime };
  const ack = Ieee1609Dot2DataCodec.encode(await signedSpdu({ pdu: scmsPdu({ 'ee-ra': { raEeCertInfo: info } }), signer: deps.raSigner, certificate: deps.raCertificate }));
  const payload: SuccessorJobPayload = { requestHash: key, request: toHex(inner), deviceId: device.deviceId, enrollment: hex8(enrollment), nextDlTime, generationTime: req.generationTime };
  // The request's record and its job commit together (same database); serializable on PostgreSQL so that two
  // concurrent requests of a device cannot both pass on the same history.
  const jobId = await withTransaction(
    jobs.db,
    async (tx) => {
      await checkHistory(requests, jobs, key, device.deviceId, req.generationTime, policy, tx);
      await requests.record({ requestHash: key, deviceId: device.deviceId, generationTime: req.generationTime, receivedAt: clock.now().getTime() }, tx);
      const maxAttempts = deps.options?.maxAttempts ?? successorMaxAttempts(policy['eca-maxAge']);
      const r = await jobs.enqueue({ queue: SUCCESSOR_QUEUE, kind: SUCCESSOR_JOB_KIND, payload, idempotencyKey: key, maxAttempts }, tx);
      if (!r.created) refuse(400, Code.invalidContent, 'replayed request: this EeRaSuccessorEnrollmentCertRequestSpdu was accepted before');
      return r.id;
    },
    { isolation: 'serializable' },
  );
  return { ack, payload, jobId };
}

/**
 * Attempts of a successor job: enough that the queue's back-off (queue/backoff.ts; DEFAULT_BACKOFF is what the RA's
 * queue uses) keeps retrying a failing ECA (5xx, unreachable) for at least `ecaMaxAge` seconds after the first
 * attempt, as long as the ECA would still accept the request (eca-maxAge 70); at least 5, at most 50.
 */
export function successorMaxAttempts(ecaMaxAge: number, backoff: BackoffOptions = DEFAULT_BACKOFF): number {
  let waited = 0;
  let failures = 0;
  while (waited < ecaMaxAge * 1000 && failures < 49) waited += backoffDelayMs(++failures, backoff);
  return Math.max(5, failures + 1);
}

/** Replay (400-60), then eca-maxReqs (429-71) and eca-minWait (429-73) on the device's counted successor requests. */
async function checkHistory(requests: SuccessorRequestStore, jobs: JobQueue, key: string, deviceId: string, generationTime: number, policy: SuccessorDeps['policy'], tx?: Kysely<any>): Promise<void> {
  if (await jobs.getByKey(SUCCESSOR_QUEUE, key, tx)) refuse(400, Code.invalidContent, 'replayed request: this EeRaSuccessorEnrollmentCertRequestSpdu was accepted before');
  checkRequestRate(await requests.history(deviceId, generationTime - WEEK_SECONDS, tx), generationTime, {
    maxReqsName: 'eca-maxReqs',
    minWaitName: 'eca-minWait',
    maxReqs: policy['eca-maxReqs'],
    minWait: policy['eca-minWait'],
    maxReqsCode: EcaLimitCode.maxReqs,
    minWaitCode: EcaLimitCode.minWait,
    what: 'successor enrollment requests',
  });
}

/** generationTime of the job's inner EeEcaCertRequest. */
function innerGenerationTime(p: SuccessorJobPayload): number {
  if (p.generationTime !== undefined) return p.generationTime;
  const spdu = EeEcaCertRequestSpduCodec.decode(fromHex(p.request));
  if (!('signedCertificateRequest' in spdu.content)) throw new Error('the stored request is not a signedCertificateRequest');
  return spdu.content.signedCertificateRequest.tbsRequest.content['eca-ee'].eeEcaCertRequest.generationTime;
}

/** The download's answer to a job the ECA refused (module comment: a 429 is retryable with a new request). */
function answerRefusal(job: Job<SuccessorJobPayload, SuccessorJobResult>, r: SuccessorRefusal, deps: SuccessorDeps): never {
  if (r.status !== 429) return refuse(r.status, r.code, `refused by the ECA: ${r.reason}`);
  const retryAt = innerGenerationTime(job.payload) + (r.retryAfter ?? deps.policy['eca-minWait']);
  const after = Math.max(1, retryAt - nowTime32(deps.clock));
  return refuse(429, r.code, `refused by the ECA: ${r.reason}; send a new successor enrollment request after Retry-After (${after} s)`, { 'retry-after': String(after) });
}

/** 6.3.5.5: checks the download SPDU (base64 header value) and returns the EcaEeCertResponseSpdu file. */
export async function successorDownload(
  header: string | undefined,
  filenameParam: string | undefined,
  deps: SuccessorDeps,
  ctx: DownloadRequestContext = {},
): Promise<{ filename: string; bytes: Uint8Array }> {
  if (!deps.downloads) throw new Error('successorDownload: deps.downloads is not set (registerSuccessorEnrollment sets it)');
  const { download: dl, signer, device } = await authenticateDownload(header, filenameParam, DownloadLimitCode.maxAge, deps, grace(deps));

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
  if ('refused' in res) return answerRefusal(job, res.refused, deps);
  return { filename: successorFilename(job.payload.requestHash), bytes: fromHex(res.response) };
}

/**
 * Worker handler: forwards the inner request to the ECA with the device link. The ECA's answer (certificate or a
 * 4xx refusal) becomes the job's result; 5xx is thrown (the queue retries). A refusal also marks the request in the
 * RA's successor history (successor-store.ts), in the transaction that completes the job: it no longer counts against
 * eca-maxReqs / eca-minWait, so the EE's new request after a 429 is not held to it. A re-run after a crash between the
 * ECA's issuance and the job's completion sends the same request and link: the ECA returns the response it stored for
 * that request hash (not a replay refusal), so the job completes with the certificate issued the first time.
 */
export function successorJobHandler(eca: EcaClient): JobHandler {
  return async (job: Job<SuccessorJobPayload>, ctx: JobContext): Promise<SuccessorJobResult> => {
    const p = job.payload;
    const r: SuccessorEnrollmentResult = await eca.successorEnrollment(fromHex(p.request), {
      deviceId: p.deviceId,
      currentEnrollment: p.enrollment,
      requestHash: fromHex(p.requestHash),
    });
    if (r.status === 200 && 'body' in r) return { response: toHex(r.body), certificate: r.hashedId8 };
    const f = r as { status: number; code: number; reason: string; retryAfter?: unknown };
    if (f.status >= 500) throw new Error(`ECA ${f.status}-${f.code}: ${f.reason}`);
    // retryAfter: carried when the ECA client passes the ECA's Retry-After on (EnrollmentRefused.retryAfter).
    const retryAfter = f.status === 429 && typeof f.retryAfter === 'number' && f.retryAfter > 0 ? { retryAfter: Math.ceil(f.retryAfter) } : {};
    const result: SuccessorJobResult = { refused: { status: f.status, code: f.code, reason: f.reason, ...retryAfter } };
    return ctx.transaction(async (tx) => {
      await new SuccessorRequestStore(tx).markRefused(p.requestHash, tx);
      return result;
    });
  };
}

/** The queue Worker for SUCCESSOR_QUEUE (start() it; stop() on shutdown). */
export function successorWorker(opts: { jobs: JobQueue; eca: EcaClient; worker?: Omit<WorkerOptions, 'jobs' | 'queue' | 'handler'> }): Worker {
  return new Worker({ ...opts.worker, jobs: opts.jobs, queue: SUCCESSOR_QUEUE, handler: successorJobHandler(opts.eca) });
}

/**
 * Mounts POST / GET /v3/successor-enrollment-certificate (migrates the download counters and the successor request
 * history when `deps.downloads` / `deps.requests` are not given).
 */
export async function registerSuccessorEnrollment(app: FastifyInstance, given: SuccessorDeps): Promise<void> {
  let deps = given;
  if (!deps.downloads) {
    const downloads = new DownloadStore(deps.jobs.db);
    await downloads.migrate();
    deps = { ...deps, downloads };
  }
  if (!deps.requests) {
    const requests = new SuccessorRequestStore(deps.jobs.db);
    await requests.migrate();
    deps = { ...deps, requests };
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
