/**
 * RA authorization (pseudonym) certificate interface (IEEE 1609.2.1 6.3.5.2 / 6.3.5.3, 8.2; REST-INTERFACE.md):
 *
 *   POST /v3/authorization-certificate  body EeRaCertRequestSpdu (EeRa1609Dot2AuthenticatedCertRequestSpdu:
 *        Ieee1609Dot2Data-SignedEncryptedCertRequest, SignerSingleCert = the EE's enrollment certificate, encrypted
 *        to the RA certificate's encryptionKey) -> 200 RaEeCertAckSpdu (Ieee1609Dot2Data-Signed by the RA).
 *        The accepted request becomes ONE durable job (queue AUTHORIZATION_QUEUE, idempotency key = request hash).
 *   GET  /v3/authorization-certificate[?filename=]  header `Ieee-1609.2.1-Authorization: <base64
 *        EeRaDownloadRequestSpdu>` (Ieee1609Dot2Data-SignedEncrypted, signed with the enrollment certificate)
 *        -> 200 zip `<request hash 16 hex>_<i hex>.zip` (8.2; uncompressed), one entry `<i hex>_<j hex>` per
 *        certificate (the ACA's AcaEeCertResponse{Private,Cubk}Spdu, encrypted to the EE) and the `.info` entry
 *        `<i hex>.info` (RaEeCertInfoSpdu, unsecured: no acpcTreeId).
 *
 * Other certificate kinds (identification / RSU application; non-butterfly plain and encrypted) go through the same
 * job and download flow with a KindPlan in the job (kinds.ts: classification, policy, `<hash>.zip` naming).
 *
 * File names, what could be confirmed (the 1609.2.1 text of 8.2 itself is not available here):
 * - Batch zip `<hash>_<i>.zip` with `_`: the CAMP CV-pilot RA documentation ("RA - Download Pseudonym Certificate
 *   Batch", its.dot.gov SCMS CV Pilots Documentation) gives `[0-9A-F]{16}_[0-9A-F]{1,8}.zip`, case-insensitive, and
 *   entries `X_Y` (i, j in hex, no extension). OpenSCMS (github.com/OpenSCMS/OpenSCMS, ra_endpoint/authorization_cert.rs)
 *   parses `_` as well (it writes `-`, the quirk REST-INTERFACE.md warns about).
 * - `.info` entry `<i hex>.info`: as OpenSCMS writes it (its test expects `3.info` beside `3_3`, `3_4`); the ASN.1
 *   (RaEeCertInfoSpdu: "an unsigned .info file to be included in a certificate batch zip file as specified in 8.2")
 *   names no file. It was `<hash>_<i hex>.info` here before; the EE client takes any `*.info` entry.
 *
 * Choices where the fact sheet is silent (documented, not from the standard text):
 * - requestHash = HashedId8 (low 8 octets of SHA-256) of the EeRaCertRequestSpdu octets as received (the CAMP
 *   convention "lower 8 bytes of the SHA-256 hash of the device request").
 * - Replay (a request hash seen before) is REFUSED 400-60, like the ECA's replay refusal; the ack is not re-sent.
 * - Policy-limit codes: RaLimitCode / DownloadLimitCode below (Table 8 numbering as OpenSCMS quotes it).
 *   ra-maxReqs per 7 x 24 h of generation time -> 429-79; ra-minWait -> 429-711 with Retry-After; ra-maxAge -> 400-77.
 * - Not ready yet (the job has not completed): 503 with Retry-After and error code 99. OpenSCMS answers a batch it
 *   has not stored with 404 and no code, the same as an unknown file; 503 + Retry-After (a status the fact sheet lists
 *   as in use) tells the EE when to come back, which a 404 cannot. Retry-After = seconds until nextDlTime, at least
 *   download-minWait (the 503 request itself is counted), at least 1. Unknown file, or a file of another EE: 404-99
 *   (a foreign downloader learns nothing).
 * - Download limits (downloadLimits below): download-maxAge on the EeRaDownloadRequest generationTime -> 400-74;
 *   download-maxReqs (per device and interface, per 7 x 24 h of generationTime) -> 429-75 with Retry-After;
 *   download-minWait (per device and interface, on the RA clock) -> 429-76 with Retry-After.
 * - Device link: the enrollment certificate's HashedId8 as the ECA recorded it in the device registry
 *   (ra_device_certificates, kind enrollment / successor-enrollment); not found -> 400-21, blocked -> 403-20.
 * - i-periods per request: from the i-period of max(now, requested validity start), `iPeriodsPerRequest` periods
 *   (default 1); requested start beyond ra-maxPreloadTime -> 400-33; more than ra-maxGenDelay after the request's
 *   generationTime -> 400-78.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { zipSync } from 'fflate';
import type { Kysely } from 'kysely';
import { Ieee1609Dot2Data as Ieee1609Dot2DataCodec, type Certificate } from '../../codec/index.js';
import { EeRaCertRequest as EeRaCertRequestCodec, type EeRaCertRequest, type RaEeCertAck } from '../../codec/gen/Ieee1609Dot2Dot1EeRaInterface.js';
import { fromHex, toHex } from '../../crypto/bytes.js';
import { sha256 } from '../../crypto/hash.js';
import { scmsPdu, signedSpdu, unsecuredSpdu } from '../../security/scms-pdu.js';
import type { Signer } from '../../security/signer.js';
import { dateToTime32, iPeriodOf, iPeriodStart, nowTime32, type Clock, type Time32 } from '../../security/time.js';
import { Ieee1609Dot2Dot1ErrorCode as Code } from '../http/errors.js';
import { sendFile } from '../http/files.js';
import { audit } from '../http/logger.js';
import { octetStreamBody } from '../http/server.js';
import type { GlobalPolicy } from '../policy/index.js';
import { iPeriodParamsOf, WEEK_SECONDS } from '../policy/index.js';
import { withTransaction } from '../store/transaction.js';
import { Worker, type Job, type JobHandler, type JobQueue, type WorkerOptions } from '../queue/index.js';
import { DownloadStore, type AuthorizationStore, type DownloadEndpoint } from './authorization-store.js';
import { butterflyRequestInfo, checkButterflyPolicy } from './expand.js';
import { checkKindAllowed, checkKindPermissions, classifyRequest, isPseudonymButterfly, nonButterflyFilename, parseNonButterflyFilename, planKindRequest, type KindPlan } from './kinds.js';
import type { PseudonymService, PseudonymStore } from './pseudonym.js';
import type { DeviceRegistry, RegisteredDevice } from './registration.js';
import { toRegisteredDevice } from './registration.js';
import type { RegistrationStore } from './registration-store.js';
import {
  AUTHORIZATION_HEADER,
  authenticateCertRequest,
  authenticateDownload,
  checkGenerationTime,
  checkRequestRate,
  hex8,
  refuse,
  type EnrollmentDeviceLookup,
  type RequestCheckDeps,
} from './request-checks.js';

// Shared request checks (request-checks.ts), exported here as before.
export { AUTHORIZATION_HEADER, checkGenerationTime, type EnrollmentDeviceLookup } from './request-checks.js';

export const AUTHORIZATION_CERTIFICATE_PATH = '/v3/authorization-certificate';
export const AUTHORIZATION_QUEUE = 'ra-authorization';
export const AUTHORIZATION_JOB_KIND = 'butterfly-batch';


/** The lookup over the RA's own registration tables (the ECA records each enrollment there via markEnrolled). */
export function registrationEnrollmentLookup(store: RegistrationStore): EnrollmentDeviceLookup {
  const db = store.db as unknown as Kysely<any>;
  return async (h) => {
    const row = await db
      .selectFrom('ra_device_certificates')
      .select('device_id')
      .where('hashed_id8', '=', h.toLowerCase())
      .where('kind', 'in', ['enrollment', 'successor-enrollment'])
      .executeTakeFirst();
    if (!row) return undefined;
    const d = await store.get(row.device_id as string);
    return d && toRegisteredDevice(d);
  };
}

export interface AuthorizationOptions {
  /** i-periods issued per request (default 1). */
  iPeriodsPerRequest?: number;
  /** Expected processing time: nextDlTime = now + this (default 60 s). */
  processingDelaySeconds?: number;
}

/** The shared request-check deps (request-checks.ts: RA certificate and decryption key, trust, ECAs, devices, policy, clock) and: */
export interface AuthorizationDeps extends RequestCheckDeps {
  raSigner: Signer;
  /** The RA's job queue (migrated). */
  jobs: JobQueue;
  /** Accepted requests (migrated; same database as `jobs`). */
  requests: AuthorizationStore;
  /** The RA's pseudonym response store (migrated): the download reads from it. */
  pseudonyms: PseudonymStore;
  /**
   * The ACA certificate the RA's batches go to. Compact unified butterfly requests are refused up front (400-32)
   * when it lacks flags usesCubk (1609.2-2022 6.4.8): the ACA could not answer them.
   */
  acaCertificate?: Certificate;
  /** Counters of download-maxReqs / download-minWait (migrated); default: a DownloadStore on `requests.db`. */
  downloads?: DownloadStore;
  options?: AuthorizationOptions;
}

/** What a job carries (JSON): everything the worker needs, nothing secret. */
export interface AuthorizationJobPayload {
  requestHash: string;
  /** COER of the EeRaCertRequest, hex. */
  request: string;
  /** Device id: the RA-internal key of the EE's linkage chains. */
  chainKey: string;
  /** HashedId8 of the enrollment certificate that signed the request: only it may download. */
  enrollment: string;
  first: number;
  last: number;
  nextDlTime: number;
  /** Identification / application or non-butterfly request (kinds.ts); absent: pseudonym butterfly batch. */
  plan?: KindPlan;
}

/** The signer of a request and its device (request-checks.ts authenticateCertRequest). */
interface Authenticated {
  enrollment: Certificate;
  device: RegisteredDevice;
}

/** Each requested PSID within the enrollment certificate's certRequestPermissions and the device type's pseudonym list. */
function checkPsids(req: EeRaCertRequest, a: Authenticated, policy: GlobalPolicy): void {
  const perms = a.enrollment.toBeSigned.certRequestPermissions ?? [];
  const allowedByCert = (psid: bigint) =>
    perms.some((g) => {
      const sp = g.subjectPermissions as Record<string, unknown>;
      if ('all' in sp) return true;
      return ((sp.explicit as Array<{ psid: bigint }>) ?? []).some((r) => BigInt(r.psid) === psid);
    });
  const dt = a.device.deviceType.toUpperCase() as keyof GlobalPolicy['deviceTypes'];
  const allowed = policy.deviceTypes[dt]?.pseudonym ?? [];
  if (req.tbsCert.appPermissions.length === 0) refuse(400, Code.requestedPermissionsNotAllowed, 'appPermissions is empty');
  for (const p of req.tbsCert.appPermissions) {
    const psid = BigInt(p.psid);
    if (!allowedByCert(psid)) refuse(400, Code.requestedPermissionsNotAllowed, `psid ${psid} is not in the enrollment certificate's certRequestPermissions`);
    if (!allowed.some((e) => BigInt(e.psid) === psid)) refuse(400, Code.requestedPermissionsNotAllowed, `psid ${psid} is not allowed in ${dt} pseudonym certificates`);
  }
}

export interface AcceptedRequest {
  ack: Uint8Array;
  payload: AuthorizationJobPayload;
  jobId: string;
  deviceId: string;
}

/** 6.3.5.2: checks an EeRaCertRequestSpdu and enqueues its job; throws ScmsHttpError on refusal (nothing stored). */
export async function acceptAuthorizationRequest(bytes: Uint8Array, deps: AuthorizationDeps): Promise<AcceptedRequest> {
  const { policy, clock, jobs } = deps;
  const { request: req, enrollment, device } = await authenticateCertRequest(bytes, 'eeRaCertRequest', deps);
  const a: Authenticated = { enrollment, device };

  checkGenerationTime(req.generationTime, policy['ra-maxAge'], RaLimitCode.maxAge, deps, 'ra-maxAge');

  // Certificate kind and form (kinds.ts): pseudonym butterfly batches below, the other kinds by their own policy.
  const cls = classifyRequest(req, a.device.deviceType);
  const ap = req.additionalParams as Record<string, unknown> | undefined;
  if (ap && 'compactUnified' in ap && deps.acaCertificate && deps.acaCertificate.toBeSigned.flags?.[0] !== '1') {
    refuse(400, Code.requestedCertificateTypeNotAllowed, 'compact unified butterfly keys: the ACA certificate lacks flags usesCubk, so the ACA cannot answer them');
  }
  const pseudonymBatch = isPseudonymButterfly(cls);
  if (pseudonymBatch) {
    checkKindAllowed(cls, a.device.deviceType, policy);
    checkPsids(req, a, policy);
    // Butterfly request (9.3) and ra-butterflyType for every requested PSID.
    let variant;
    try {
      variant = butterflyRequestInfo(req).variant;
      checkButterflyPolicy(policy, req, variant);
    } catch (e) {
      return refuse(400, Code.requestedCertificateTypeNotAllowed, (e as Error).message);
    }
  } else {
    checkKindPermissions(req, cls, a.enrollment.toBeSigned.certRequestPermissions ?? [], a.device.deviceType, policy);
  }

  // i-periods.
  const now = nowTime32(clock);
  const start = Math.max(now, req.tbsCert.validityPeriod.start);
  if (start - now > policy['ra-maxPreloadTime']) refuse(400, Code.requestedValidityNotAllowed, `requested start is beyond ra-maxPreloadTime (${policy['ra-maxPreloadTime']} s)`);
  // ra-maxGenDelay: the requested certificates may start at most this long after the request's generationTime.
  const genDelay = req.tbsCert.validityPeriod.start - req.generationTime;
  if (genDelay > policy['ra-maxGenDelay']) refuse(400, RaLimitCode.maxGenDelay, `ra-maxGenDelay: the requested start is ${genDelay} s after generationTime (limit ${policy['ra-maxGenDelay']} s)`);
  const ip = iPeriodParamsOf(policy);
  const first = iPeriodOf(ip, start);
  // One certificate for identification / application requests.
  const plan = pseudonymBatch ? undefined : planKindRequest(req, cls, policy, first);
  const last = plan ? first : first + Math.max(1, deps.options?.iPeriodsPerRequest ?? 1) - 1;

  // Replay and rate limits (checked again in the writing transaction: concurrent duplicates lose there).
  const requestHash = sha256(bytes).slice(-8);
  const key = toHex(requestHash);
  const deviceId = a.device.deviceId;
  await checkHistory(deps.requests, key, deviceId, req.generationTime, policy);

  const nextDlTime = now + (deps.options?.processingDelaySeconds ?? 60);
  const ackPdu: RaEeCertAck = { version: 2, generationTime: now, requestHash, firstI: first, nextDlTime };
  const ack = Ieee1609Dot2DataCodec.encode(
    await signedSpdu({ pdu: scmsPdu({ 'ee-ra': { raEeCertAck: ackPdu } }), signer: deps.raSigner, certificate: deps.raCertificate }),
  );
  const payload: AuthorizationJobPayload = {
    requestHash: key,
    request: toHex(EeRaCertRequestCodec.encode(req)),
    chainKey: a.device.deviceId,
    enrollment: hex8(a.enrollment),
    first,
    last,
    nextDlTime,
    ...(plan ? { plan } : {}),
  };
  // The request's record and its job commit together (same database).
  const jobId = await withTransaction(jobs.db, async (tx) => {
    await checkHistory(deps.requests, key, deviceId, req.generationTime, policy, tx);
    await deps.requests.record({ requestHash: key, deviceId, generationTime: req.generationTime, receivedAt: clock.now().getTime() }, tx);
    const r = await jobs.enqueue({ queue: AUTHORIZATION_QUEUE, kind: AUTHORIZATION_JOB_KIND, payload, idempotencyKey: key }, tx);
    if (!r.created) refuse(400, Code.invalidContent, 'replayed request: this EeRaCertRequestSpdu was accepted before');
    return r.id;
  });
  return { ack, payload, jobId, deviceId };
}

/**
 * Policy-limit codes (1609.2.1 "Table 8 - Error codes", 70–79 and 710–712). The standard's table is not available
 * here; the numbering is the one OpenSCMS (LG Electronics, Apache-2.0; github.com/OpenSCMS/OpenSCMS,
 * scmscommon errors, which cites "the standard's Table 8 - Error codes") gives member by member:
 *   70 eca-maxAge, 71 eca-maxReqs, 72 eca-maxWait, 73 eca-minWait, 74 download-maxAge, 75 download-maxReqs,
 *   76 download-minWait, 77 ra-maxAge, 78 ra-maxGenDelay, 79 ra-maxReqs, 710 ra-maxOverlap, 711 ra-minWait,
 *   712 outside the enrollment certificate's validityPeriod.
 * The ECA's are EcaLimitCode (eca/eca.ts). Status: OpenSCMS answers all of them 400; here the rate rules (maxReqs,
 * minWait) answer 429 with Retry-After (RFC 6585; 429 is among the statuses REST-INTERFACE.md lists as in use), the
 * age / delay rules 400.
 */
export const RaLimitCode = Object.freeze({ maxAge: 77, maxGenDelay: 78, maxReqs: 79, maxOverlap: 710, minWait: 711 });
/** Download policy-limit codes (see RaLimitCode). */
export const DownloadLimitCode = Object.freeze({ maxAge: 74, maxReqs: 75, minWait: 76 });

async function checkHistory(store: AuthorizationStore, key: string, deviceId: string, generationTime: number, policy: GlobalPolicy, tx?: Kysely<any>): Promise<void> {
  if (await store.seen(key, tx)) refuse(400, Code.invalidContent, 'replayed request: this EeRaCertRequestSpdu was accepted before');
  // ra-maxReqs per 7 x 24 h (as the ECA counts eca-maxReqs) and ra-minWait between generation times.
  checkRequestRate(await store.history(deviceId, generationTime - WEEK_SECONDS, tx), generationTime, {
    maxReqsName: 'ra-maxReqs',
    minWaitName: 'ra-minWait',
    maxReqs: policy['ra-maxReqs'],
    minWait: policy['ra-minWait'],
    maxReqsCode: RaLimitCode.maxReqs,
    minWaitCode: RaLimitCode.minWait,
    what: 'authorization requests',
  });
}

/** The batch file name of 8.2: `<request hash 16 hex>_<i hex>.zip`. */
export function authorizationBatchFilename(requestHash: Uint8Array | string, i: number): string {
  return `${typeof requestHash === 'string' ? requestHash.toLowerCase() : toHex(requestHash)}_${i.toString(16)}.zip`;
}

export function parseAuthorizationBatchFilename(name: string): { requestHash: string; i: number } | undefined {
  const m = /^([0-9a-fA-F]{16})_([0-9a-fA-F]{1,4})\.zip$/.exec(name);
  return m ? { requestHash: m[1]!.toLowerCase(), i: parseInt(m[2]!, 16) } : undefined;
}

export interface DownloadFile {
  filename: string;
  bytes: Uint8Array;
}

/** What the route passes besides the header and the filename parameter. */
export interface DownloadRequestContext {
  /** The request's Range header (a continuation is not held to download-minWait). */
  range?: string | undefined;
}

/**
 * True for a Range request that continues a transfer: first-byte-pos above 0, or a suffix range (RFC 9110 14.1.2).
 * `bytes=0-...` starts the file over and is an ordinary download.
 */
export function isRangeContinuation(range: string | undefined): boolean {
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)/i.exec(range ?? '');
  if (!m) return false;
  return m[1] === '' ? m[2] !== '' : Number(m[1]) > 0;
}

/**
 * download-maxReqs and download-minWait (1609.2.1 clause 4.3 download parameters) for one authenticated download
 * request of a device's own file; the admitted request is counted, a refused one changes nothing.
 *
 * Choices (documented; the parameter texts are "maximum number of requests in a 7 x 24-hour period ... determined
 * based on the generationTime field in the request, not on the reception time at the RA" and "minimum time that an EE
 * shall wait before retrying the request"):
 * - counted per device (the enrollment certificate's device) and per interface (authorization / successor download):
 *   a pseudonym batch download does not make the device wait for its successor enrollment certificate (OpenSCMS,
 *   ra_endpoint/common/request_checker.rs, also keeps the authorization and successor downloads apart, and answers
 *   its download-maxReqs refusal with code 75);
 * - counted: every request that passed authentication, download-maxAge and the filename check and names a file of
 *   this device (200, 503 not ready, 500 dead job); requests for unknown or foreign files (404) are not counted: they
 *   are answered before the counters are read, so they are not downloads of anything;
 * - download-maxReqs on generationTime (the text says so), 429-75, Retry-After = when the oldest counted request
 *   leaves the 7 x 24 h window;
 * - download-minWait on the RA clock between counted requests (an EE cannot backdate generationTime past it, and an
 *   EE that re-sends the same download SPDU after Retry-After passes), 429-76 with Retry-After;
 * - resume: a Range continuation (isRangeContinuation) of the file of the device's previous counted download is not
 *   held to download-minWait (an interrupted transfer resumes at once), but it is counted for download-maxReqs.
 */
export async function downloadLimits(
  store: DownloadStore,
  r: { deviceId: string; endpoint: DownloadEndpoint; filename: string; generationTime: Time32; range?: string | undefined },
  deps: { policy: GlobalPolicy; clock: Clock },
): Promise<void> {
  const { policy, clock } = deps;
  const a = await store.admit(
    { deviceId: r.deviceId, endpoint: r.endpoint, filename: r.filename, generationTime: r.generationTime, receivedAtMs: clock.now().getTime(), now: nowTime32(clock), continuation: isRangeContinuation(r.range) },
    { maxReqs: policy['download-maxReqs'], minWait: policy['download-minWait'], maxAge: policy['download-maxAge'] },
  );
  if (a.ok) return;
  if (a.rule === 'maxReqs') {
    refuse(429, DownloadLimitCode.maxReqs, `download-maxReqs: ${a.count} download requests in the last 7 x 24 h (limit ${policy['download-maxReqs']})`, { 'retry-after': String(a.retryAfter) });
  }
  const w = a as { elapsedSeconds: number; retryAfter: number };
  refuse(429, DownloadLimitCode.minWait, `download-minWait: ${w.elapsedSeconds} s since the previous download request (minimum ${policy['download-minWait']} s)`, {
    'retry-after': String(w.retryAfter),
  });
}

/** Retry-After of a not-ready answer: until nextDlTime, and not before download-minWait has passed (at least 1 s). */
export function notReadyRetryAfter(nextDlTime: Time32, deps: { policy: GlobalPolicy; clock: Clock }): number {
  return Math.max(1, nextDlTime - nowTime32(deps.clock), Math.ceil(deps.policy['download-minWait']));
}

/** 6.3.5.3: checks the download SPDU (base64 header value) and returns the batch zip; ScmsHttpError otherwise. */
export async function authorizationDownload(header: string | undefined, filenameParam: string | undefined, deps: AuthorizationDeps, ctx: DownloadRequestContext = {}): Promise<DownloadFile> {
  if (!deps.downloads) throw new Error('authorizationDownload: deps.downloads is not set (registerAuthorization sets it)');
  const { download: dl, signer, device } = await authenticateDownload(header, filenameParam, DownloadLimitCode.maxAge, deps);

  // `<hash>_<i>.zip` (butterfly) or `<hash>.zip` (non-butterfly, kinds.ts).
  const whole = parseNonButterflyFilename(dl.filename);
  const parsed = parseAuthorizationBatchFilename(dl.filename);
  const hashKey = parsed?.requestHash ?? whole?.requestHash;
  if (!hashKey) return refuse(404, Code.undefined, `no file ${JSON.stringify(dl.filename)}`);
  const job = (await deps.jobs.getByKey(AUTHORIZATION_QUEUE, hashKey)) as Job<AuthorizationJobPayload> | undefined;
  const nonButterfly = job?.payload.plan !== undefined && job.payload.plan.form !== 'butterfly';
  // Unknown, someone else's, the other naming, or an i outside the batch: the same 404.
  if (
    !job ||
    job.payload.enrollment !== hex8(signer) ||
    (whole ? !nonButterfly : nonButterfly || parsed!.i < job.payload.first || parsed!.i > job.payload.last)
  ) {
    return refuse(404, Code.undefined, `no file ${dl.filename}`);
  }
  await downloadLimits(deps.downloads, { deviceId: device.deviceId, endpoint: 'authorization', filename: dl.filename, generationTime: dl.generationTime, range: ctx.range }, deps);
  if (job.state === 'dead') return refuse(500, Code.undefined, 'the certificates could not be issued');
  if (job.state !== 'done') {
    return refuse(503, Code.undefined, 'the certificates are not available yet', { 'retry-after': String(notReadyRetryAfter(job.payload.nextDlTime, deps)) });
  }
  const currentI = parsed?.i ?? job.payload.first;
  const rows = (await deps.pseudonyms.responses(fromHex(hashKey))).filter((r) => r.i === currentI);
  if (rows.length === 0) return refuse(404, Code.undefined, `no file ${dl.filename}`);
  // Fixed content for a fixed batch (Range resumes need identical octets): times from the job's completion.
  const completed = job.completedAt ?? job.updatedAt;
  if (whole) return { filename: nonButterflyFilename(hashKey), bytes: nonButterflyZip(hashKey, rows[0]!.response, currentI, dateToTime32(completed), completed) };
  const ip = iPeriodParamsOf(deps.policy);
  const info = {
    version: 2,
    generationTime: dateToTime32(completed),
    currentI,
    requestHash: fromHex(hashKey),
    // When to come back: the next batch of this request at once, else when the last issued i-period starts.
    nextDlTime: currentI < job.payload.last ? job.payload.nextDlTime : iPeriodStart(ip, job.payload.last),
  };
  const infoSpdu = Ieee1609Dot2DataCodec.encode(unsecuredSpdu(scmsPdu({ 'ee-ra': { raEeCertInfo: info } })));
  const entries: Record<string, Uint8Array> = {};
  for (const r of rows) entries[`${r.i.toString(16)}_${r.j.toString(16)}`] = r.response;
  entries[`${currentI.toString(16)}.info`] = infoSpdu; // `<i hex>.info` (module comment: as OpenSCMS names it)
  const zip = zipSync(entries, { level: 0, mtime: completed });
  return { filename: authorizationBatchFilename(hashKey, currentI), bytes: zip };
}

/** Non-butterfly zip (kinds.ts): `<hash>` = the AcaEeCertResponse{Plain,Private}Spdu, `<hash>.info` = RaEeCertInfoSpdu. */
function nonButterflyZip(hashKey: string, response: Uint8Array, currentI: number, generationTime: Time32, completed: Date): Uint8Array {
  // Nothing more to fetch for this request: nextDlTime = generationTime.
  const info = { version: 2, generationTime, currentI, requestHash: fromHex(hashKey), nextDlTime: generationTime };
  const infoSpdu = Ieee1609Dot2DataCodec.encode(unsecuredSpdu(scmsPdu({ 'ee-ra': { raEeCertInfo: info } })));
  return zipSync({ [hashKey]: response, [`${hashKey}.info`]: infoSpdu }, { level: 0, mtime: completed });
}

/**
 * Worker handler: runs the pseudonym pipeline for one accepted request. Idempotent: responses are keyed
 * (request hash, i, j) and saveResponses ignores existing keys, so a re-run after a crash stores nothing twice
 * (it does ask the LAs / ACA again). With `registry`, the batch is recorded on the device (kind
 * authorization-batch, hashedId8 = request hash; idempotent per device and hash).
 */
export function authorizationJobHandler(service: PseudonymService, registry?: Pick<DeviceRegistry, 'recordCertificate'>): JobHandler {
  return async (job: Job<AuthorizationJobPayload>) => {
    const p = job.payload;
    const request = EeRaCertRequestCodec.decode(fromHex(p.request));
    const report = p.plan
      ? await service.processKinds([{ requestHash: fromHex(p.requestHash), request, plan: p.plan }])
      : await service.processBatch([{ requestHash: fromHex(p.requestHash), request, chainKey: p.chainKey, iRange: { first: p.first, last: p.last } }]);
    // A partial batch is retried (stored rows are kept).
    if (report.failed.length > 0) throw new Error(`${report.failed.length} certificates failed: ${report.failed[0]!.error}`);
    await registry?.recordCertificate(p.chainKey, { kind: 'authorization-batch', hashedId8: p.requestHash, issuer: 'ra' });
    return { issued: report.issued };
  };
}

/** The queue Worker for AUTHORIZATION_QUEUE (start() it; stop() on shutdown). */
export function authorizationWorker(opts: {
  jobs: JobQueue;
  service: PseudonymService;
  registry?: Pick<DeviceRegistry, 'recordCertificate'>;
  worker?: Omit<WorkerOptions, 'jobs' | 'queue' | 'handler'>;
}): Worker {
  return new Worker({ ...opts.worker, jobs: opts.jobs, queue: AUTHORIZATION_QUEUE, handler: authorizationJobHandler(opts.service, opts.registry) });
}

/** Mounts POST / GET /v3/authorization-certificate (migrates the download counters when `deps.downloads` is not given). */
export async function registerAuthorization(app: FastifyInstance, given: AuthorizationDeps): Promise<void> {
  let deps = given;
  if (!deps.downloads) {
    const downloads = new DownloadStore(deps.requests.db);
    await downloads.migrate();
    deps = { ...deps, downloads };
  }
  app.post(AUTHORIZATION_CERTIFICATE_PATH, { config: { errorFormat: 'text' } }, async (request: FastifyRequest, reply: FastifyReply) => {
    const body = octetStreamBody(request);
    const r = await acceptAuthorizationRequest(body, deps);
    audit(request.log, 'ra.authorization.accepted', { actor: `device:${r.deviceId}`, requestId: request.id, deviceId: r.deviceId, requestHash: r.payload.requestHash, jobId: r.jobId });
    return reply.code(200).type('application/octet-stream').send(Buffer.from(r.ack.buffer, r.ack.byteOffset, r.ack.byteLength));
  });
  app.get(AUTHORIZATION_CERTIFICATE_PATH, { config: { errorFormat: 'text' } }, async (request: FastifyRequest, reply: FastifyReply) => {
    const h = request.headers[AUTHORIZATION_HEADER];
    const q = (request.query ?? {}) as Record<string, unknown>;
    const filename = typeof q.filename === 'string' ? q.filename : undefined;
    const range = request.headers.range;
    const file = await authorizationDownload(typeof h === 'string' ? h : undefined, filename, deps, { range: typeof range === 'string' ? range : undefined });
    return sendFile(request, reply, { bytes: file.bytes, filename: file.filename, contentType: 'application/zip', ranges: true });
  });
}
