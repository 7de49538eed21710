// Operator revocation API (outside the standard; same bearer-token style as the registration operator routes):
//   POST /v3/devices/:deviceId/revoke       { reason, certificates?: [hex COER] } -> 200 { deviceId, hashEntries, linkage?, crls }
//   GET  /v3/devices/:deviceId/revocation   -> the stored revocation (seeds left out)
// A revocation puts the device's enrollment (and named) certificates on the hash-based CRL and its pseudonym chains
// on the linkage-based CRL, blocks it at the RA (its authorization requests then get 403-20) and issues new CRLs.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { fromHex } from '../../crypto/bytes.js';
import { bearerAuth, type TokenSource } from '../http/auth.js';
import { Ieee1609Dot2Dot1ErrorCode as Code, ScmsHttpError } from '../http/errors.js';
import { audit } from '../http/logger.js';
import { JSON_API_ROUTE_CONFIG, jsonObjectBody } from '../http/server.js';
import { parseReason, RegistrationInputError } from '../ra/registration.js';
import type { CrlService } from './service.js';
import type { CrlStore } from './store.js';

export interface RevocationRoutesDeps {
  crl: CrlService;
  store: CrlStore;
  operatorToken: TokenSource;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MAX_CERTIFICATES = 64;

const bad = (reason: string) => new ScmsHttpError(400, Code.invalidContent, reason);

function deviceIdParam(request: FastifyRequest): string {
  const id = (request.params as { deviceId?: string }).deviceId ?? '';
  if (!UUID.test(id)) throw new ScmsHttpError(404, Code.undefined, `unknown device ${id.slice(0, 64)}`);
  return id;
}

/** The request body: reason (required) and optional certificates (hex COER), nothing else. */
export function parseRevokeBody(body: Record<string, unknown>): { reason: string; certificates: Uint8Array[] } {
  for (const k of Object.keys(body)) if (k !== 'reason' && k !== 'certificates') throw bad(`${k}: unknown field`);
  let reason: string;
  try {
    reason = parseReason(body.reason);
  } catch (e) {
    if (e instanceof RegistrationInputError) throw bad(e.message);
    throw e;
  }
  const certs = body.certificates ?? [];
  if (!Array.isArray(certs) || certs.length > MAX_CERTIFICATES) throw bad(`certificates: expected an array of at most ${MAX_CERTIFICATES} hex strings`);
  const certificates = certs.map((c, n) => {
    if (typeof c !== 'string' || c.length === 0 || c.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(c)) throw bad(`certificates[${n}]: expected hex (COER Certificate)`);
    return fromHex(c.toLowerCase());
  });
  return { reason, certificates };
}

export async function registerRevocationRoutes(app: FastifyInstance, deps: RevocationRoutesDeps): Promise<void> {
  const operator = bearerAuth({ realm: 'scms-operator', token: deps.operatorToken, actor: 'operator' });
  const op = { config: JSON_API_ROUTE_CONFIG, preHandler: operator };

  app.post('/v3/devices/:deviceId/revoke', op, async (request) => {
    const deviceId = deviceIdParam(request);
    const { reason, certificates } = parseRevokeBody(jsonObjectBody(request));
    const actor = request.scmsActor ?? 'operator';
    const result = await deps.crl.revoke({ deviceId, reason, actor, certificates });
    audit(request.log, 'device.revoked', {
      actor,
      requestId: request.id,
      deviceId,
      reason,
      hashEntries: result.hashEntries.length,
      linkage: result.linkage ? `i=${result.linkage.i}` : 'none',
    });
    return result;
  });

  app.get('/v3/devices/:deviceId/revocation', op, async (request) => {
    const deviceId = deviceIdParam(request);
    const r = await deps.store.revocation(deviceId);
    if (!r) throw new ScmsHttpError(404, Code.undefined, `device ${deviceId} is not revoked`);
    const { linkage, ...rest } = r;
    return { ...rest, ...(linkage ? { linkage: { la1Id: linkage.la1Id, la2Id: linkage.la2Id, i: linkage.i, jmax: linkage.jmax, iMax: linkage.iMax } } : {}) };
  });
}
