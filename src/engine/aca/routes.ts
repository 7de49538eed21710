// ACA HTTP route (internal, COER application/octet-stream):
//   POST /internal/aca/cert-requests  RaAcaCertRequestBatchSpdu -> AcaRaCertResponseBatchSpdu
// (asn1/scms/ScmsInterfaces.asn: a batch of the 1609.2.1 RaAcaCertRequestSpdu / AcaRaCertResponseSpdu, one result
// per request in order). Each request is authenticated by the ACA itself (RA signature, RaSsp); a request the ACA
// refuses is a `failure` entry, a body that is not a batch is 400-42.
import type { FastifyInstance } from 'fastify';
import {
  AcaRaCertResponseBatchSpdu as AcaRaCertResponseBatchSpduCodec,
  AcaRaCertResponseSpdu as AcaRaCertResponseSpduCodec,
  RaAcaCertRequestBatchSpdu as RaAcaCertRequestBatchSpduCodec,
  RaAcaCertRequestSpdu as RaAcaCertRequestSpduCodec,
  type AcaRaCertFailureCode,
  type AcaRaCertResult,
  type RaAcaCertRequestSpdu,
} from '../../codec/index.js';
import { bearerAuth, type TokenSource } from '../http/auth.js';
import { Ieee1609Dot2Dot1ErrorCode as E, ScmsHttpError } from '../http/errors.js';
import { audit } from '../http/logger.js';
import { octetStreamBody } from '../http/server.js';
import { PROTOCOL_VERSION } from '../../security/spdu.js';
import { SCMS_LOCAL_PDU_VERSION } from '../la/http-spdu.js';
import type { AcaClient, AcaErrorCode, AcaIssueResult } from './aca.js';

export const ACA_CERT_REQUESTS_PATH = '/internal/aca/cert-requests';

/** Default upper bound on requests per batch. */
export const DEFAULT_MAX_BATCH = 1024;

export interface AcaHttpDeps {
  /** The ACA (AcaService). */
  readonly aca: AcaClient;
  readonly maxBatch?: number;
  /** Component bearer token; absent: the RA signatures alone authenticate. */
  readonly token?: TokenSource;
}

const TO_ASN1: Record<AcaErrorCode, AcaRaCertFailureCode> = {
  malformed: 'malformed',
  'untrusted-ra': 'untrustedRa',
  'bad-signature': 'badSignature',
  'invalid-request': 'invalidRequest',
  linkage: 'linkage',
  issuance: 'issuance',
};

/** AcaRaCertFailureCode -> AcaErrorCode (unknown extension values: 'issuance'). */
export function acaErrorCodeOf(code: AcaRaCertFailureCode): AcaErrorCode {
  const hit = (Object.keys(TO_ASN1) as AcaErrorCode[]).find((k) => TO_ASN1[k] === code);
  return hit ?? 'issuance';
}

/** RaAcaCertRequestBatchSpdu of COER RaAcaCertRequestSpdus. */
export function encodeCertRequestBatch(requests: readonly Uint8Array[]): Uint8Array {
  const batch = requests.map((r) => RaAcaCertRequestSpduCodec.decode(r));
  return RaAcaCertRequestBatchSpduCodec.encode({
    protocolVersion: PROTOCOL_VERSION,
    content: { unsecuredData: { version: SCMS_LOCAL_PDU_VERSION, content: { 'aca-ra': { raAcaCertRequestBatch: batch } } } },
  });
}

/** The COER RaAcaCertRequestSpdus of a batch (re-encoded canonically: the same octets as sent). */
export function decodeCertRequestBatch(bytes: Uint8Array): Uint8Array[] {
  const d = RaAcaCertRequestBatchSpduCodec.decode(bytes);
  if (!('unsecuredData' in d.content)) throw new Error('not unsecuredData');
  const c = d.content.unsecuredData.content;
  if (!('aca-ra' in c) || !('raAcaCertRequestBatch' in c['aca-ra'])) throw new Error('not a RaAcaCertRequestBatch');
  return c['aca-ra'].raAcaCertRequestBatch.map((r: RaAcaCertRequestSpdu) => RaAcaCertRequestSpduCodec.encode(r));
}

/** AcaRaCertResponseBatchSpdu of issue results. */
export function encodeCertResponseBatch(results: readonly AcaIssueResult[]): Uint8Array {
  const batch: AcaRaCertResult[] = results.map((r) =>
    r.ok ? { response: AcaRaCertResponseSpduCodec.decode(r.response) } : { failure: { code: TO_ASN1[r.code], reason: r.error.slice(0, 1024) } },
  );
  return AcaRaCertResponseBatchSpduCodec.encode({
    protocolVersion: PROTOCOL_VERSION,
    content: { unsecuredData: { version: SCMS_LOCAL_PDU_VERSION, content: { 'aca-ra': { acaRaCertResponseBatch: batch } } } },
  });
}

/** Issue results of a response batch (responses as COER AcaRaCertResponseSpdu). */
export function decodeCertResponseBatch(bytes: Uint8Array): AcaIssueResult[] {
  const d = AcaRaCertResponseBatchSpduCodec.decode(bytes);
  if (!('unsecuredData' in d.content)) throw new Error('not unsecuredData');
  const c = d.content.unsecuredData.content;
  if (!('aca-ra' in c) || !('acaRaCertResponseBatch' in c['aca-ra'])) throw new Error('not an AcaRaCertResponseBatch');
  return c['aca-ra'].acaRaCertResponseBatch.map((r: AcaRaCertResult): AcaIssueResult => {
    if ('response' in r) return { ok: true, response: AcaRaCertResponseSpduCodec.encode(r.response) };
    if ('failure' in r) return { ok: false, code: acaErrorCodeOf(r.failure.code), error: r.failure.reason };
    return { ok: false, code: 'issuance', error: 'unknown AcaRaCertResult alternative' };
  });
}

/** Mounts the ACA's internal route. */
export async function registerAca(app: FastifyInstance, deps: AcaHttpDeps): Promise<void> {
  const maxBatch = deps.maxBatch ?? DEFAULT_MAX_BATCH;
  const config = { errorFormat: 'text', fineErrors: true } as const;
  const opts = deps.token === undefined ? { config } : { config, preHandler: bearerAuth({ realm: 'scms-internal', token: deps.token, actor: 'component' }) };
  app.post(ACA_CERT_REQUESTS_PATH, opts, async (request, reply) => {
    const body = octetStreamBody(request);
    let requests: Uint8Array[];
    try {
      requests = decodeCertRequestBatch(body);
    } catch (e) {
      throw new ScmsHttpError(400, E.parsingFailure, `not a RaAcaCertRequestBatchSpdu: ${(e as Error).message}`);
    }
    if (requests.length > maxBatch) throw new ScmsHttpError(400, E.invalidContent, `more than ${maxBatch} requests in a batch`);
    const results = await deps.aca.issue(requests);
    const answer = encodeCertResponseBatch(results);
    const failed = results.filter((r) => !r.ok).length;
    audit(request.log, 'aca.cert-requests', { actor: 'ra', requestId: request.id, requests: requests.length, issued: requests.length - failed, failed });
    return reply.code(200).type('application/octet-stream').send(Buffer.from(answer.buffer, answer.byteOffset, answer.byteLength));
  });
}
