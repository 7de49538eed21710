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
 *   runSuccessorExchange            the HTTP exchange with the RA: request, ack, wait, download, with bounded retries
 *       on "try again later" answers (429 / 503 + Retry-After; see its comment).
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
import { time32ToDate, type Clock } from '../../security/time.js';
import { AuthorizationClientError, buildDownloadRequest, type EnrollmentCredential } from './authorization-client.js';
import {
  buildEnrollmentRequest,
  processEnrollmentResponse,
  type Enrollment,
  type EnrollmentRequestOptions,
  type EnrollmentResponseOptions,
  type EnrollmentState,
} from './enroll.js';
import { bodyBytes, eeRequest, errorCodeMeaning, ScmsResponseError, type EeHttpOptions } from './http.js';
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

/** The RA's successor enrollment route (ra/successor.ts SUCCESSOR_ENROLLMENT_PATH; the EE does not import the RA). */
export const SUCCESSOR_ENROLLMENT_PATH = '/v3/successor-enrollment-certificate';

/** eca-maxAge (1609.2.1 Table 8 numbering as the ECA uses it, eca/eca.ts EcaLimitCode.maxAge). */
const ECA_MAX_AGE_CODE = 70;

/**
 * Download-limit codes of 1609.2.1 Table 8 (download-maxReqs 75, download-minWait 76; ra/authorization.ts
 * DownloadLimitCode): a 429 with one of them refuses the download request only, so the same file is asked again.
 */
const DOWNLOAD_LIMIT_CODES: readonly number[] = [75, 76];

export interface SuccessorExchangeOptions {
  /** The RA's base URL. */
  raUrl: string;
  current: EnrollmentCredential;
  raCertificate: Certificate;
  /** What each new request asks for (a fresh key and generationTime every time). */
  request: Omit<SuccessorRequestOptions, 'current' | 'raCertificate' | 'clock'>;
  clock: Clock;
  http?: EeHttpOptions;
  /** Waits; default setTimeout. */
  sleep?: (ms: number) => Promise<void>;
  /** Longest total wait (download time, Retry-After answers), seconds. */
  maxWaitSeconds: number;
  /** Requests sent at most (the first and those after rate refusals); default 5. */
  maxRequests?: number;
  onEvent?: (kind: 'sent' | 'received' | 'wait' | 'info', message: string, spdu?: Uint8Array) => void;
}

export type SuccessorExchangeResult =
  | { ok: true; file: Uint8Array; filename: string; state: EnrollmentState; ack: RaEeCertInfo; requests: number }
  | { ok: false; pending: string; requests: number; retryAt?: Date };

const sleepDefault = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** `HTTP 429-73 (a policy limit ...): reason` for an event message. */
function answerText(e: ScmsResponseError): string {
  if (e.status === 0) return `no answer (${e.reason ?? e.message})`;
  const code = e.code === undefined ? '' : `-${e.code} (${errorCodeMeaning(e.code)})`;
  return `HTTP ${e.status}${code}${e.reason ? `: ${e.reason}` : ''}`;
}

/**
 * 6.3.5.4 / 6.3.5.5 over HTTP: sends a successor enrollment request, checks the ack, waits until its nextDlTime and
 * downloads the EcaEeCertResponseSpdu. "Try again later" answers are waited out (Retry-After, else a back-off from
 * 2 s), all waits together bounded by maxWaitSeconds (then the result is pending, with when to come back):
 * - POST 429 (the RA's up-front eca-minWait 73 / eca-maxReqs 71) or 503: a NEW request after Retry-After (the limits
 *   count on generationTime, so the same octets would be refused again);
 * - GET 503 (not ready yet; Retry-After until nextDlTime) and GET 429 download-maxReqs 75 / download-minWait 76: the
 *   same file again after Retry-After (each wait at most 60 s for 503);
 * - GET 429 with another code (the ECA refused this request for a rate limit, eca-minWait 73 / eca-maxReqs 71;
 *   ra/successor.ts): a NEW request after Retry-After;
 * - GET 400-70 (eca-maxAge: the RA forwarded the request after the ECA's age limit, e.g. after an ECA outage): a NEW
 *   request (back-off from 2 s);
 * - no answer at all (connection dropped): the GET is repeated, at most 3 times.
 * Any other refusal is thrown (ScmsResponseError; the ack's checks: AuthorizationClientError).
 */
export async function runSuccessorExchange(o: SuccessorExchangeOptions): Promise<SuccessorExchangeResult> {
  const { clock } = o;
  const sleep = o.sleep ?? o.http?.sleep ?? sleepDefault;
  const emit = o.onEvent ?? (() => undefined);
  const http: EeHttpOptions = { ...o.http, maxRetries: 0 };
  const budgetMs = o.maxWaitSeconds * 1000;
  const started = clock.now().getTime();
  const waited = () => clock.now().getTime() - started;
  const maxRequests = Math.max(1, o.maxRequests ?? 5);
  const url = `${o.raUrl.replace(/\/+$/, '')}${SUCCESSOR_ENROLLMENT_PATH}`;
  /** Waits ms unless that would go beyond the budget (then false); `what` says why and what follows. */
  const wait = async (ms: number, what: string): Promise<boolean> => {
    if (waited() + ms > budgetMs) return false;
    emit('wait', what);
    await sleep(ms);
    return true;
  };
  const inS = (ms: number, e?: ScmsResponseError) => `in ${Math.ceil(ms / 1000)} s${e ? ` (Retry-After ${e.retryAfter ?? '-'})` : ''}`;
  const pending = (why: string, requests: number, afterMs: number): SuccessorExchangeResult => {
    const retryAt = new Date(clock.now().getTime() + afterMs);
    return { ok: false, pending: `${why}; run again from ${retryAt.toISOString()} (a new request)`, requests, retryAt };
  };

  for (let n = 1; n <= maxRequests; n++) {
    const { spdu, state } = await buildSuccessorEnrollmentRequest({ ...o.request, current: o.current, raCertificate: o.raCertificate, clock });
    const rh = toHex(state.requestHash);
    emit(
      'sent',
      `POST ${url} EeRaSuccessorEnrollmentCertRequestSpdu (${spdu.length} octets, new ${o.request.type} key; signed with enrollment certificate ${toHex(certificateHashedId8(o.current.certificate))}, encrypted to the RA; request hash ${rh})`,
      spdu,
    );
    let body: Uint8Array;
    try {
      body = await bodyBytes(await eeRequest({ method: 'POST', url, body: spdu, headers: { 'content-type': 'application/octet-stream' } }, http));
    } catch (e) {
      if (!(e instanceof ScmsResponseError && (e.status === 429 || e.status === 503)) || n === maxRequests) throw e;
      const ms = (e.retryAfter ?? 2 ** n) * 1000;
      const why = `successor request ${e.status === 429 ? 'refused' : 'not taken now'} (${answerText(e)})`;
      if (!(await wait(ms, `${why}; a new request ${inS(ms, e)}`))) return pending(`${why}; Retry-After ${e.retryAfter ?? '-'} s is beyond the wait limit`, n, ms);
      continue;
    }
    const ack = processSuccessorAck(body, { raCertificate: o.raCertificate, requestHash: state.requestHash });
    emit('received', `RaEeEnrollmentCertAckSpdu (${body.length} octets): download at ${time32ToDate(ack.nextDlTime).toISOString()}`, body);

    const filename = successorDownloadFilename(state.requestHash);
    const untilDl = time32ToDate(ack.nextDlTime).getTime() - clock.now().getTime();
    if (untilDl > 0 && !(await wait(untilDl, `waiting ${Math.ceil(untilDl / 1000)} s until the download time ${time32ToDate(ack.nextDlTime).toISOString()}`))) {
      return pending(`successor ${filename} is available from ${time32ToDate(ack.nextDlTime).toISOString()}, beyond the wait limit`, n, untilDl);
    }
    const dl = `${url}?filename=${encodeURIComponent(filename)}`;
    let networkRetries = 0;
    let again = false;
    for (let attempt = 1; !again; attempt++) {
      const header = await buildDownloadRequest({ filename, enrollment: o.current, raCertificate: o.raCertificate, clock });
      emit('sent', `GET ${dl} with Ieee-1609.2.1-Authorization (EeRaDownloadRequestSpdu)`, Buffer.from(header, 'base64'));
      try {
        const file = await bodyBytes(await eeRequest({ method: 'GET', url: dl, headers: { 'ieee-1609.2.1-authorization': header } }, http));
        emit('received', `EcaEeCertResponseSpdu ${filename} (${file.length} octets)`, file);
        return { ok: true, file, filename, state, ack, requests: n };
      } catch (e) {
        if (!(e instanceof ScmsResponseError)) throw e;
        const lost = e.status === 0 && (networkRetries += 1) <= 3;
        const sameFile = lost || e.status === 503 || (e.status === 429 && e.code !== undefined && DOWNLOAD_LIMIT_CODES.includes(e.code));
        // 400-70 (eca-maxAge): the ECA got the forwarded request too late (e.g. after an outage); a new one is fresh.
        const tooOld = e.status === 400 && e.code === ECA_MAX_AGE_CODE;
        const newRequest = (e.status === 429 && !sameFile) || tooOld;
        if (!sameFile && !newRequest) throw e;
        if (newRequest && n === maxRequests) throw e;
        const ms = (newRequest ? (e.retryAfter ?? 2 ** n) : Math.min(60, e.retryAfter ?? 2 ** Math.min(attempt, 5))) * 1000;
        const why = newRequest
          ? `the ECA refused request ${rh} (${answerText(e)})`
          : e.status === 503
            ? `not ready (${answerText(e)})`
            : e.status === 0
              ? answerText(e)
              : `download refused for now (${answerText(e)})`;
        const next = newRequest ? `a new request ${inS(ms, e)}` : `GET again ${inS(ms, e.status === 0 ? undefined : e)}`;
        if (attempt >= 50 || !(await wait(ms, `${why}; ${next}`))) return pending(`successor ${filename}: ${why}; ${next} is beyond the wait limit (attempt ${attempt})`, n, ms);
        again = newRequest;
      }
    }
  }
  return { ok: false, pending: `no successor enrollment certificate after ${maxRequests} requests`, requests: maxRequests };
}
