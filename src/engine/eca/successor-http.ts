/**
 * Successor enrollment between separate RA and ECA processes (`serve ra --peer eca=URL`, `serve eca`): the RA's
 * EcaClient over HTTP and the ECA's internal route (not part of 1609.2.1; SCMS-internal, JSON):
 *
 *   POST /internal/eca/successor-enrollment   Authorization: Bearer <component token>
 *        body {"request": hex EeEcaCertRequestSpdu, "deviceId", "currentEnrollment": 16 hex, "requestHash": 16 hex}
 *        -> 200 {"status": 200, "body": hex EcaEeCertResponseSpdu, "hashedId8", "deviceId"}
 *           or 200 {"status": 4xx/5xx, "code", "reason"} (the ECA's refusal, as from the in-process client).
 *
 * The route needs the component token (no token configured: 403). Any other HTTP answer or a transport error is
 * thrown by the client, so the RA's queue retries the job.
 */
import type { FastifyInstance } from 'fastify';
import { fromHex, toHex } from '../../crypto/bytes.js';
import { bearerAuth, type TokenSource } from '../http/auth.js';
import { Ieee1609Dot2Dot1ErrorCode as Code, ScmsHttpError } from '../http/errors.js';
import { audit } from '../http/logger.js';
import type { Eca } from './eca.js';
import { inProcessEcaClient, type EcaClient, type SuccessorEnrollmentResult, type SuccessorLink } from './successor.js';

export const ECA_SUCCESSOR_PATH = '/internal/eca/successor-enrollment';

interface WireRequest {
  request: string;
  deviceId: string;
  currentEnrollment: string;
  requestHash: string;
}

type WireResult = { status: 200; body: string; hashedId8: string; deviceId: string } | { status: number; code: number; reason: string; retryAfter?: number };

const HEX = /^(?:[0-9a-f]{2})+$/i;

/** Mounts POST /internal/eca/successor-enrollment (component token). */
export async function registerEcaSuccessorRoute(app: FastifyInstance, deps: { eca: Eca; token: TokenSource }): Promise<void> {
  const client = inProcessEcaClient(deps.eca);
  app.post(ECA_SUCCESSOR_PATH, { preHandler: bearerAuth({ realm: 'scms-internal', token: deps.token, actor: 'component' }) }, async (request, reply) => {
    const b = (request.body ?? {}) as Partial<WireRequest>;
    const ok =
      typeof b.request === 'string' && HEX.test(b.request) &&
      typeof b.deviceId === 'string' && b.deviceId.length > 0 &&
      typeof b.currentEnrollment === 'string' && /^[0-9a-f]{16}$/i.test(b.currentEnrollment) &&
      typeof b.requestHash === 'string' && /^[0-9a-f]{16}$/i.test(b.requestHash);
    if (!ok) throw new ScmsHttpError(400, Code.parsingFailure, 'expected {request, deviceId, currentEnrollment, requestHash} (hex)');
    const link: SuccessorLink = { deviceId: b.deviceId!, currentEnrollment: b.currentEnrollment!.toLowerCase(), requestHash: fromHex(b.requestHash!) };
    const r = await client.successorEnrollment(fromHex(b.request!), link);
    if (r.status === 200 && 'body' in r) {
      audit(request.log, 'eca.successor-enrollment', { actor: `device:${r.deviceId}`, requestId: request.id, deviceId: r.deviceId, hashedId8: r.hashedId8 });
      return reply.code(200).send({ status: 200, body: toHex(r.body), hashedId8: r.hashedId8, deviceId: r.deviceId } satisfies WireResult);
    }
    const f = r as { status: number; code: number; reason: string; retryAfter?: number };
    return reply.code(200).send({ status: f.status, code: f.code, reason: f.reason, ...(f.retryAfter !== undefined ? { retryAfter: f.retryAfter } : {}) } satisfies WireResult);
  });
}

/** The RA's EcaClient for an ECA in another process. */
export class HttpEcaClient implements EcaClient {
  readonly #url: string;
  constructor(readonly options: { baseUrl: string; token: string; timeoutMs?: number; fetch?: typeof fetch }) {
    this.#url = options.baseUrl.replace(/\/+$/, '') + ECA_SUCCESSOR_PATH;
  }

  async successorEnrollment(request: Uint8Array, link: SuccessorLink): Promise<SuccessorEnrollmentResult> {
    const body: WireRequest = { request: toHex(request), deviceId: link.deviceId, currentEnrollment: link.currentEnrollment, requestHash: toHex(link.requestHash) };
    const res = await (this.options.fetch ?? fetch)(this.#url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${this.options.token}` },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(this.options.timeoutMs ?? 60_000),
    });
    if (res.status !== 200) throw new Error(`ECA ${this.#url}: HTTP ${res.status} ${res.headers.get('ieee-1609.2.1-error') ?? ''} ${(await res.text()).slice(0, 200)}`);
    const w = (await res.json()) as WireResult;
    if (w.status === 200 && 'body' in w) return { status: 200, body: fromHex(w.body), hashedId8: w.hashedId8, deviceId: w.deviceId };
    const f = w as { status: number; code: number; reason: string; retryAfter?: unknown };
    if (typeof f.status !== 'number' || typeof f.code !== 'number') throw new Error(`ECA ${this.#url}: not a successor enrollment result`);
    const retryAfter = typeof f.retryAfter === 'number' && Number.isFinite(f.retryAfter) && f.retryAfter > 0 ? { retryAfter: f.retryAfter } : {};
    return { status: f.status, code: f.code, reason: String(f.reason), ...retryAfter };
  }
}
