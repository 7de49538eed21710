// POST /v3/enrollment-certificate on a real server (127.0.0.1, port 0): issuance, 1609.2.1 error header, 415.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { registerEca, ENROLLMENT_CERTIFICATE_PATH } from '../../../src/engine/eca/routes.js';
import { buildEnrollmentRequest, processEnrollmentResponse } from '../../../src/engine/ee/enroll.js';
import { keyPairSigner } from '../../../src/engine/ee/keys.js';
import { startTestServer, type TestServer } from '../http/helpers.js';
import { makeEnv, YEAR, type Env } from './helpers.js';

let env: Env;
let srv: TestServer;
beforeEach(async () => {
  env = await makeEnv();
  srv = await startTestServer((s) => s.registerComponent({ name: 'eca', register: registerEca, deps: { eca: env.eca } }));
});
afterEach(async () => {
  await srv.close();
  await env.close();
});

const post = (url: string, body: Uint8Array, type = 'application/octet-stream') =>
  fetch(url + ENROLLMENT_CERTIFICATE_PATH, { method: 'POST', headers: { 'content-type': type }, body });

describe('POST /v3/enrollment-certificate', () => {
  it('answers 200 with an EcaEeCertResponseSpdu the EE accepts', async () => {
    const { canonical } = await env.register('obu');
    const { spdu, state } = await buildEnrollmentRequest({ canonicalKey: keyPairSigner(canonical), type: 'implicit', psids: [32], validity: { durationSeconds: YEAR }, clock: env.clock });
    const res = await post(srv.url, spdu);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    const body = new Uint8Array(await res.arrayBuffer());
    const e = processEnrollmentResponse(body, state, { trustAnchors: [env.h.root], clock: env.clock });
    expect(e.certificate.type).toBe('implicit');
    expect(srv.logs.lines.some((l) => l.audit && l.event === 'eca.enrollment')).toBe(true);
  });

  it('refusals carry Ieee-1609.2.1-Error (400-21, 400-42) and store nothing', async () => {
    const before = await env.snapshot();
    const stranger = await buildEnrollmentRequest({
      canonicalKey: keyPairSigner((await import('../../../src/engine/ee/keys.js')).generateKeyPair()),
      type: 'explicit',
      psids: [32],
      validity: { durationSeconds: YEAR },
      clock: env.clock,
    });
    const r1 = await post(srv.url, stranger.spdu);
    expect(r1.status).toBe(400);
    expect(r1.headers.get('ieee-1609.2.1-error')).toBe('400-21');
    const r2 = await post(srv.url, Uint8Array.from([...stranger.spdu, 0]));
    expect(r2.headers.get('ieee-1609.2.1-error')).toBe('400-42');
    expect(await env.snapshot()).toEqual(before);
  });

  it('eca-minWait -> 429-73 with Retry-After = the seconds left; nothing stored', async () => {
    const { canonical } = await env.register('obu');
    const req = () => buildEnrollmentRequest({ canonicalKey: keyPairSigner(canonical), type: 'implicit', psids: [32], validity: { durationSeconds: YEAR }, clock: env.clock });
    expect((await post(srv.url, (await req()).spdu)).status).toBe(200);
    env.clock.advance((env.policy['eca-minWait'] - 3) * 1000);
    const before = await env.snapshot();
    const res = await post(srv.url, (await req()).spdu);
    expect(res.status).toBe(429);
    expect(res.headers.get('ieee-1609.2.1-error')).toBe('429-73');
    expect(res.headers.get('retry-after')).toBe('3');
    expect(await env.snapshot()).toEqual(before);
  });

  it('a body that is not application/octet-stream -> 415', async () => {
    const res = await post(srv.url, new TextEncoder().encode('{}'), 'application/json');
    expect(res.status).toBe(415);
  });
});
