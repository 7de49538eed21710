// ECA HTTP routes (1609.2.1 6.3.4.2): POST /v3/enrollment-certificate, body EeEcaCertRequestSpdu (COER,
// application/octet-stream), answer 200 with the EcaEeCertResponseSpdu; refusals as ScmsHttpError, which the shared
// server turns into <status> + `Ieee-1609.2.1-Error: <status>-<code>` (fine) or the status alone (coarse).
import type { FastifyInstance } from 'fastify';
import { ScmsHttpError } from '../http/errors.js';
import { audit } from '../http/logger.js';
import { octetStreamBody } from '../http/server.js';
import type { EcaDeps } from './deps.js';
import { Eca } from './eca.js';

export const ENROLLMENT_CERTIFICATE_PATH = '/v3/enrollment-certificate';

/** Mounts the ECA's EE-facing routes; pass an Eca or its deps. */
export async function registerEca(app: FastifyInstance, deps: EcaDeps | { eca: Eca }): Promise<void> {
  const eca = deps.eca instanceof Eca ? deps.eca : new Eca(deps as EcaDeps);
  app.post(ENROLLMENT_CERTIFICATE_PATH, { config: { errorFormat: 'text' } }, async (request, reply) => {
    const body = octetStreamBody(request);
    const res = await eca.handleEnrollmentRequest(body);
    if (res.status !== 200) {
      // Retry-After on the rate refusals (eca-minWait: the seconds left; eca-maxReqs: eca-minWait).
      const headers: Record<string, string> = res.status === 429 && res.retryAfter !== undefined ? { 'retry-after': String(res.retryAfter) } : {};
      throw new ScmsHttpError(res.status, res.code, res.reason, { headers });
    }
    audit(request.log, 'eca.enrollment', { actor: `device:${res.deviceId}`, requestId: request.id, deviceId: res.deviceId, hashedId8: res.hashedId8, type: String(res.certificate.type) });
    return reply.code(200).type('application/octet-stream').send(Buffer.from(res.body.buffer, res.body.byteOffset, res.body.byteLength));
  });
}
