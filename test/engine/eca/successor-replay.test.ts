// ECA successor replay over the ECA's internal HTTP route (POST /internal/eca/successor-enrollment on a real server,
// 127.0.0.1, port 0; the RA's HttpEcaClient): the same forwarded successor request answered twice gets the same
// EcaEeCertResponseSpdu octets and the ECA issues and stores nothing the second time (eca.ts module comment).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toHex } from '../../../src/crypto/bytes.js';
import { HttpEcaClient, registerEcaSuccessorRoute } from '../../../src/engine/eca/successor-http.js';
import type { SuccessorLink } from '../../../src/engine/eca/successor.js';
import { buildEnrollmentRequest, processEnrollmentResponse } from '../../../src/engine/ee/enroll.js';
import { generateKeyPair, keyPairSigner } from '../../../src/engine/ee/keys.js';
import { certificateHashedId8 } from '../../../src/security/certificate.js';
import { startTestServer, type TestServer } from '../http/helpers.js';
import { makeEnv, YEAR, type Env } from './helpers.js';

const TOKEN = 'eca-successor-replay-test-token-0001';

let env: Env;
let srv: TestServer;
let client: HttpEcaClient;
beforeEach(async () => {
  env = await makeEnv();
  srv = await startTestServer((s) => s.app.register(async (child) => registerEcaSuccessorRoute(child, { eca: env.eca, token: TOKEN })));
  client = new HttpEcaClient({ baseUrl: srv.url, token: TOKEN });
});
afterEach(async () => {
  await srv.close();
  await env.close();
});

/** An enrolled OBU, the inner successor request (signed with a new key, no canonicalId) and its link. */
async function successorCase() {
  const { deviceId, canonical } = await env.register('obu');
  const first = await buildEnrollmentRequest({ canonicalKey: keyPairSigner(canonical), type: 'implicit', psids: [32], validity: { durationSeconds: YEAR }, clock: env.clock });
  const res = await env.eca.handleEnrollmentRequest(first.spdu);
  if (res.status !== 200) throw new Error(`enrollment refused: ${res.reason}`);
  const current = processEnrollmentResponse(res.body, first.state, { trustAnchors: [env.h.root], clock: env.clock });
  env.clock.advance((env.policy['eca-minWait'] + 1) * 1000);
  const k = generateKeyPair('nistP256');
  const inner = await buildEnrollmentRequest({ canonicalKey: keyPairSigner(k), enrollmentKeyPair: k, includeCanonicalId: false, type: 'implicit', psids: [32], validity: { durationSeconds: YEAR }, clock: env.clock });
  const link: SuccessorLink = { deviceId, currentEnrollment: toHex(certificateHashedId8(current.certificate)), requestHash: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]) };
  return { deviceId, first, inner, link };
}

describe('ECA successor replay (idempotent per request hash)', () => {
  it('the same forwarded request twice -> the same response octets; nothing issued or stored the second time', async () => {
    const { deviceId, inner, link } = await successorCase();
    const r1 = await client.successorEnrollment(inner.spdu, link);
    if (r1.status !== 200 || !('body' in r1)) throw new Error(`refused: ${JSON.stringify(r1)}`);
    expect(await env.ecaStore.certificatesOf(deviceId)).toHaveLength(2);

    const before = await env.snapshot();
    const r2 = await client.successorEnrollment(inner.spdu, link);
    if (r2.status !== 200 || !('body' in r2)) throw new Error(`refused: ${JSON.stringify(r2)}`);
    expect(Buffer.from(r2.body).equals(Buffer.from(r1.body))).toBe(true);
    expect(r2.hashedId8).toBe(r1.hashedId8);
    expect(await env.snapshot()).toEqual(before);

    // Long after (past eca-maxAge and eca-minWait, a queue back-off after an outage): still the stored answer.
    env.clock.advance((env.policy['eca-maxAge'] + 3600) * 1000);
    const r3 = await client.successorEnrollment(inner.spdu, link);
    expect(r3).toMatchObject({ status: 200, hashedId8: r1.hashedId8 });
    expect(Buffer.from((r3 as { body: Uint8Array }).body).equals(Buffer.from(r1.body))).toBe(true);
    expect(await env.snapshot()).toEqual(before);
  });

  it('a crash between the ECA commit and the registry call: the replay records the certificate in the registry', async () => {
    const { deviceId, inner, link } = await successorCase();
    const r1 = await client.successorEnrollment(inner.spdu, link);
    expect(r1.status).toBe(200);
    const id = (r1 as { hashedId8: string }).hashedId8;
    // What the registry would lack had the ECA died right after its own commit.
    await env.ra.db.deleteFrom('ra_device_certificates').where('hashed_id8', '=', id).execute();
    expect((await env.ra.certificates(deviceId)).map((c) => c.hashedId8)).not.toContain(id);
    const r2 = await client.successorEnrollment(inner.spdu, link);
    expect(r2).toMatchObject({ status: 200, hashedId8: id });
    expect((await env.ra.certificates(deviceId)).filter((c) => c.hashedId8 === id).map((c) => c.kind)).toEqual(['successor-enrollment']);
    expect(await env.ecaStore.certificatesOf(deviceId)).toHaveLength(2);
  });

  it('the same inner request under another request hash or device -> 400-60, nothing stored', async () => {
    const { inner, link } = await successorCase();
    expect((await client.successorEnrollment(inner.spdu, link)).status).toBe(200);
    const other = await env.register('obu');
    const before = await env.snapshot();
    expect(await client.successorEnrollment(inner.spdu, { ...link, requestHash: Uint8Array.from([8, 7, 6, 5, 4, 3, 2, 1]) })).toMatchObject({ status: 400, code: 60 });
    // Another device: the current enrollment certificate was not issued to it (checked first) -> 400-21.
    expect(await client.successorEnrollment(inner.spdu, { ...link, deviceId: other.deviceId })).toMatchObject({ status: 400, code: 21 });
    expect(await env.snapshot()).toEqual(before);
  });

  it('a successor request within eca-minWait: 429-73, and the Retry-After of the ECA reaches the RA over HTTP', async () => {
    const { deviceId, canonical } = await env.register('obu');
    const first = await buildEnrollmentRequest({ canonicalKey: keyPairSigner(canonical), type: 'implicit', psids: [32], validity: { durationSeconds: YEAR }, clock: env.clock });
    const res = await env.eca.handleEnrollmentRequest(first.spdu);
    if (res.status !== 200) throw new Error(`enrollment refused: ${res.reason}`);
    const current = processEnrollmentResponse(res.body, first.state, { trustAnchors: [env.h.root], clock: env.clock });
    env.clock.advance(2_000);
    const k = generateKeyPair('nistP256');
    const inner = await buildEnrollmentRequest({ canonicalKey: keyPairSigner(k), enrollmentKeyPair: k, includeCanonicalId: false, type: 'implicit', psids: [32], validity: { durationSeconds: YEAR }, clock: env.clock });
    const link: SuccessorLink = { deviceId, currentEnrollment: toHex(certificateHashedId8(current.certificate)), requestHash: Uint8Array.from([9, 9, 9, 9, 9, 9, 9, 9]) };
    const before = await env.snapshot();
    const r = await client.successorEnrollment(inner.spdu, link);
    expect(r).toMatchObject({ status: 429, code: 73, retryAfter: env.policy['eca-minWait'] - 2 });
    expect(await env.snapshot()).toEqual(before);
  });

  it('the EE-facing enrollment request is not replayed: 400-60', async () => {
    const { first } = await successorCase();
    const before = await env.snapshot();
    expect(await env.eca.handleEnrollmentRequest(first.spdu)).toMatchObject({ status: 400, code: 60 });
    expect(await env.snapshot()).toEqual(before);
  });

  it('a blocked device gets no stored answer: 403-20', async () => {
    const { deviceId, inner, link } = await successorCase();
    expect((await client.successorEnrollment(inner.spdu, link)).status).toBe(200);
    await env.ra.block(deviceId, 'stolen', 'operator');
    const before = await env.snapshot();
    expect(await client.successorEnrollment(inner.spdu, link)).toMatchObject({ status: 403, code: 20 });
    expect(await env.snapshot()).toEqual(before);
  });
});
