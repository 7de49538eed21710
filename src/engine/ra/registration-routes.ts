// RA device registration routes: the operator API (`/v3/devices...`, operator bearer token) and the internal
// API the ECA uses from another process (`/internal/devices/...`, component token). Mounted by the RA plugin.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { bearerAuth, type TokenSource } from '../http/auth.js';
import { Ieee1609Dot2Dot1ErrorCode, ScmsHttpError } from '../http/errors.js';
import { audit } from '../http/logger.js';
import { JSON_API_ROUTE_CONFIG, jsonObjectBody } from '../http/server.js';
import type { RegistrationStore } from './registration-store.js';
import {
  isCanonicalId,
  parseCanonicalPublicKey,
  parseReason,
  parseRegisterDeviceBody,
  RegistrationInputError,
  toRegisteredDevice,
  CANONICAL_KEY_CURVES,
  type CanonicalKeyCurve,
  type CertificateRecordInput,
  type DeviceRecord,
} from './registration.js';

export interface RegistrationRoutesDeps {
  store: RegistrationStore;
  /** Operator API bearer token (unset: operator routes answer 403). */
  operatorToken: TokenSource;
  /** Internal API token shared with the other components (unset: internal routes answer 403). */
  componentToken: TokenSource;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Runs `fn`, turning input errors into 400 with the reason. */
function input<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof RegistrationInputError) throw new ScmsHttpError(400, Ieee1609Dot2Dot1ErrorCode.invalidContent, e.message);
    throw e;
  }
}

function notFound(deviceId: string): ScmsHttpError {
  return new ScmsHttpError(404, Ieee1609Dot2Dot1ErrorCode.undefined, `unknown device ${deviceId}`);
}

function deviceIdParam(request: FastifyRequest): string {
  const id = (request.params as { deviceId?: string }).deviceId ?? '';
  if (!UUID.test(id)) throw notFound(id.slice(0, 64));
  return id;
}

function optionalDate(body: Record<string, unknown>, field: string): Date | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  const d = typeof v === 'string' ? new Date(v) : undefined;
  if (!d || Number.isNaN(d.getTime())) throw new RegistrationInputError(field, 'expected an ISO 8601 date');
  return d;
}

function certificateBody(body: Record<string, unknown>): CertificateRecordInput {
  const allowed = new Set(['kind', 'hashedId8', 'issuer', 'issuedAt', 'validFrom', 'validUntil']);
  for (const k of Object.keys(body)) if (!allowed.has(k)) throw new RegistrationInputError(k, 'unknown field');
  if (typeof body.kind !== 'string') throw new RegistrationInputError('kind', 'required');
  if (typeof body.hashedId8 !== 'string') throw new RegistrationInputError('hashedId8', 'required');
  if (body.issuer !== undefined && typeof body.issuer !== 'string') throw new RegistrationInputError('issuer', 'expected a string');
  return {
    kind: body.kind,
    hashedId8: body.hashedId8,
    issuer: body.issuer as string | undefined,
    issuedAt: optionalDate(body, 'issuedAt'),
    validFrom: optionalDate(body, 'validFrom'),
    validUntil: optionalDate(body, 'validUntil'),
  };
}

/** Registers the operator and internal registration routes on `app`. */
export async function registerRegistrationRoutes(app: FastifyInstance, deps: RegistrationRoutesDeps): Promise<void> {
  const { store } = deps;
  const operator = bearerAuth({ realm: 'scms-operator', token: deps.operatorToken, actor: 'operator' });
  const component = bearerAuth({ realm: 'scms-internal', token: deps.componentToken, actor: 'component' });
  const op = { config: JSON_API_ROUTE_CONFIG, preHandler: operator };
  const internal = { config: JSON_API_ROUTE_CONFIG, preHandler: component };

  // ------------------------------------------------------------------ operator API

  app.post('/v3/devices', op, async (request, reply) => {
    const body = jsonObjectBody(request);
    const parsed = input(() => parseRegisterDeviceBody(body));
    const { created, device } = await store.register(parsed, request.scmsActor ?? 'operator');
    if (!created) {
      throw new ScmsHttpError(409, Ieee1609Dot2Dot1ErrorCode.undefined, `canonical key already registered as device ${device.deviceId}`, {
        details: { deviceId: device.deviceId, canonicalId: device.canonicalId, state: device.state },
      });
    }
    audit(request.log, 'device.registered', {
      actor: request.scmsActor ?? 'operator',
      requestId: request.id,
      deviceId: device.deviceId,
      canonicalId: device.canonicalId,
      deviceType: device.deviceType,
    });
    return reply
      .code(201)
      .header('location', `/v3/devices/${device.deviceId}`)
      .send({ deviceId: device.deviceId, canonicalId: device.canonicalId, state: device.state });
  });

  app.get('/v3/devices', op, async (request) => {
    const q = request.query as Record<string, unknown>;
    const one = (d: DeviceRecord | undefined) => ({ devices: d ? [d] : [] });
    if (q.canonicalId !== undefined) {
      if (!isCanonicalId(q.canonicalId)) throw new ScmsHttpError(400, Ieee1609Dot2Dot1ErrorCode.invalidContent, 'canonicalId: expected 16 lower-case hex digits');
      return one(await store.findByCanonicalId(q.canonicalId));
    }
    if (q.canonicalPublicKey !== undefined) {
      const key = input(() => parseCanonicalPublicKey(q.canonicalPublicKey, curveParam(q.curve)));
      const d = await store.findByCanonicalKey(key.compressed);
      return one(d && d.curve === key.curve ? d : undefined);
    }
    const limit = q.limit === undefined ? 100 : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new ScmsHttpError(400, Ieee1609Dot2Dot1ErrorCode.invalidContent, 'limit: expected 1..1000');
    if (q.after !== undefined && (typeof q.after !== 'string' || !UUID.test(q.after))) {
      throw new ScmsHttpError(400, Ieee1609Dot2Dot1ErrorCode.invalidContent, 'after: expected a device id');
    }
    const devices = await store.list({ limit, after: q.after as string | undefined });
    return { devices, next: devices.length === limit ? devices[devices.length - 1]!.deviceId : null };
  });

  app.get('/v3/devices/:deviceId', op, async (request) => {
    const deviceId = deviceIdParam(request);
    const device = await store.get(deviceId);
    if (!device) throw notFound(deviceId);
    return { ...device, certificates: await store.certificates(deviceId) };
  });

  app.get('/v3/devices/:deviceId/events', op, async (request) => {
    const deviceId = deviceIdParam(request);
    if (!(await store.get(deviceId))) throw notFound(deviceId);
    return { deviceId, events: await store.events(deviceId) };
  });

  for (const action of ['block', 'unblock'] as const) {
    app.post(`/v3/devices/:deviceId/${action}`, op, async (request) => {
      const deviceId = deviceIdParam(request);
      const body = jsonObjectBody(request);
      const reason = input(() => {
        for (const k of Object.keys(body)) if (k !== 'reason') throw new RegistrationInputError(k, 'unknown field');
        return parseReason(body.reason);
      });
      const actor = request.scmsActor ?? 'operator';
      const result = action === 'block' ? await store.block(deviceId, reason, actor) : await store.unblock(deviceId, reason, actor);
      if (!result) throw notFound(deviceId);
      if (result.changed) {
        audit(request.log, action === 'block' ? 'device.blocked' : 'device.unblocked', {
          actor,
          requestId: request.id,
          deviceId,
          canonicalId: result.device.canonicalId,
          reason,
        });
      }
      return { deviceId, state: result.device.state, changed: result.changed, blockedAt: result.device.blockedAt, blockReason: result.device.blockReason };
    });
  }

  // ------------------------------------------------------------------ internal API (other components)

  app.get('/internal/devices/by-key/:hex', internal, async (request) => {
    const { hex } = request.params as { hex: string };
    const curve = curveParam((request.query as Record<string, unknown>).curve);
    const key = input(() => parseCanonicalPublicKey(hex, curve));
    const d = await store.findByCanonicalKey(key.compressed);
    if (!d || d.curve !== key.curve) throw new ScmsHttpError(404, Ieee1609Dot2Dot1ErrorCode.enrollmentCertificateUnknown, 'canonical key not registered');
    return toRegisteredDevice(d);
  });

  app.get('/internal/devices/by-canonical-id/:canonicalId', internal, async (request) => {
    const { canonicalId } = request.params as { canonicalId: string };
    if (!isCanonicalId(canonicalId)) throw new ScmsHttpError(400, Ieee1609Dot2Dot1ErrorCode.invalidContent, 'canonicalId: expected 16 lower-case hex digits');
    const d = await store.findByCanonicalId(canonicalId);
    if (!d) throw new ScmsHttpError(404, Ieee1609Dot2Dot1ErrorCode.enrollmentCertificateUnknown, 'canonical id not registered');
    return toRegisteredDevice(d);
  });

  for (const what of ['enrolled', 'certificates'] as const) {
    app.post(`/internal/devices/:deviceId/${what}`, internal, async (request, reply) => {
      const deviceId = deviceIdParam(request);
      const body = jsonObjectBody(request);
      const cert = input(() => certificateBody(body));
      const actor = cert.issuer ?? request.scmsActor ?? 'component';
      const known = await (what === 'enrolled' ? store.markEnrolled(deviceId, cert, actor) : store.recordCertificate(deviceId, cert, actor)).catch((e: unknown) => {
        if (e instanceof RegistrationInputError) throw new ScmsHttpError(400, Ieee1609Dot2Dot1ErrorCode.invalidContent, e.message);
        throw e;
      });
      if (!known) throw notFound(deviceId);
      if (what === 'enrolled') audit(request.log, 'device.enrolled', { actor, requestId: request.id, deviceId, hashedId8: cert.hashedId8 });
      return reply.code(204).send();
    });
  }
}

function curveParam(v: unknown): CanonicalKeyCurve {
  if (v === undefined) return 'nistP256';
  if (typeof v === 'string' && (CANONICAL_KEY_CURVES as readonly string[]).includes(v)) return v as CanonicalKeyCurve;
  throw new ScmsHttpError(400, Ieee1609Dot2Dot1ErrorCode.invalidContent, `curve: expected ${CANONICAL_KEY_CURVES.join(' or ')}`);
}
