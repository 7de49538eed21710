// ECA refusals: each with its status / 1609.2.1 code and no change to the RA's device tables or the ECA tables.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Ieee1609Dot2Data as DataCodec } from '../../../src/codec/index.js';
import { recoverSelfSignerKeys } from '../../../src/engine/eca/canonical-key.js';
import type { EnrollmentResult } from '../../../src/engine/eca/eca.js';
import { buildEnrollmentRequest, type EnrollmentRequestOptions } from '../../../src/engine/ee/enroll.js';
import { generateKeyPair, keyPairSigner, compressedPublicKey, type EeKeyPair } from '../../../src/engine/ee/keys.js';
import { ManualClock } from '../../../src/security/time.js';
import { SignedCertificateRequest, ScopedCertificateRequest } from '../../../src/codec/index.js';
import { signCertificateRequest } from '../../../src/security/spdu.js';
import type { DeviceRegistry } from '../../../src/engine/eca/deps.js';
import { makeEnv, YEAR, type Env } from './helpers.js';

let env: Env;
beforeEach(async () => {
  env = await makeEnv();
});
afterEach(async () => {
  await env.close();
});

type ReqOpts = Partial<Omit<EnrollmentRequestOptions, 'canonicalKey'>>;

async function request(canonical: EeKeyPair, o: ReqOpts = {}) {
  return buildEnrollmentRequest({
    canonicalKey: keyPairSigner(canonical),
    type: 'implicit',
    psids: [32],
    validity: { durationSeconds: YEAR },
    clock: env.clock,
    ...o,
  });
}

/** Sends `bytes`, expects a refusal with status/code, and that no stored row changed. */
async function expectRefused(bytes: Uint8Array, status: number, code: number, reason?: RegExp): Promise<EnrollmentResult> {
  const before = await env.snapshot();
  const res = await env.eca.handleEnrollmentRequest(bytes);
  expect(res.status, 'reason' in res ? res.reason : '').toBe(status);
  if (res.status === 200) throw new Error('issued');
  expect(res.code, res.reason).toBe(code);
  if (reason) expect(res.reason).toMatch(reason);
  expect(await env.snapshot()).toEqual(before);
  return res;
}

describe('ECA refusals (status, code, nothing stored)', () => {
  it('unregistered canonical key -> 400-21', async () => {
    const stranger = generateKeyPair();
    await env.register('obu'); // someone else is registered
    await expectRefused((await request(stranger)).spdu, 400, 21, /not registered/);
    // the same without canonicalId (the requested key is taken as the canonical key)
    await expectRefused((await request(stranger, { enrollmentKeyPair: stranger, includeCanonicalId: false })).spdu, 400, 21);
  });

  it('blocked device -> 403-20', async () => {
    const { deviceId, canonical } = await env.register('obu');
    await env.ra.block(deviceId, 'stolen', 'operator');
    await expectRefused((await request(canonical)).spdu, 403, 20, /blocked/);
  });

  it('bad signature -> 400-43 (flipped s, and signed by another key under a registered canonicalId)', async () => {
    const { canonical } = await env.register('obu');
    const { spdu } = await request(canonical);
    const flipped = Uint8Array.from(spdu);
    flipped[flipped.length - 1]! ^= 0x01; // last octet of sSig
    await expectRefused(flipped, 400, 43);

    // a request that names the registered canonicalId but is signed by another key
    const impostor = generateKeyPair();
    const real = await request(canonical);
    const scr = SignedCertificateRequest.decode((DataCodec.decode(real.spdu).content as { signedCertificateRequest: Uint8Array }).signedCertificateRequest);
    const forged = await signCertificateRequest({ tbsRequest: scr.tbsRequest, signer: keyPairSigner(impostor), signerId: 'self' });
    await expectRefused(DataCodec.encode(forged), 400, 43, /canonical key/);
  });

  it('trailing octet, truncation and garbage -> 400-42', async () => {
    const { canonical } = await env.register('obu');
    const { spdu } = await request(canonical);
    await expectRefused(Uint8Array.from([...spdu, 0]), 400, 42);
    await expectRefused(spdu.subarray(0, spdu.length - 1), 400, 42);
    await expectRefused(new Uint8Array([0x03, 0x80, 0x05, 1, 2, 3, 4, 5]), 400, 42);
    await expectRefused(new Uint8Array(0), 400, 42);
  });

  it('generation time in the future -> 400-50; older than eca-maxAge -> 400-70', async () => {
    const { canonical } = await env.register('obu');
    const skew = env.policy.allowedClockSkew;
    const ahead = new ManualClock(env.clock.now().getTime() + (skew + 2) * 1000);
    await expectRefused((await request(canonical, { clock: ahead })).spdu, 400, 50, /future/);
    // within the skew is fine
    const slightly = new ManualClock(env.clock.now().getTime() + (skew - 1) * 1000);
    const ok = await env.eca.handleEnrollmentRequest((await request(canonical, { clock: slightly })).spdu);
    expect(ok.status).toBe(200);

    const { canonical: c2 } = await env.register('obu');
    const old = await request(c2);
    env.clock.advance((env.policy['eca-maxAge'] + 1) * 1000);
    await expectRefused(old.spdu, 400, 70, /eca-maxAge/);
  });

  it('replayed request -> 400-60, the first one issued once', async () => {
    const { deviceId, canonical } = await env.register('obu');
    const { spdu } = await request(canonical);
    const first = await env.eca.handleEnrollmentRequest(spdu);
    expect(first.status).toBe(200);
    env.clock.advance(60_000);
    await expectRefused(spdu, 400, 60, /replayed/);
    expect(await env.ecaStore.certificatesOf(deviceId)).toHaveLength(1);
  });

  it('PSID not allowed for the device type -> 400-30', async () => {
    const { canonical } = await env.register('obu');
    await expectRefused((await request(canonical, { psids: [130] })).spdu, 400, 30, /psid 130 .*OBU/);
    const { canonical: rsu } = await env.register('rsu');
    await expectRefused((await request(rsu, { psids: [32] })).spdu, 400, 30);
    // eeType outside app / enrol
    await expectRefused((await request(canonical, { eeType: {} })).spdu, 400, 30, /eeType/);
  });

  it('region outside the ECA (but inside the policy) -> 400-31; outside the registered region -> 400-31', async () => {
    const { canonical } = await env.register('obu');
    await expectRefused((await request(canonical, { region: [124] })).spdu, 400, 31, /ECA's region/);
    await expectRefused((await request(canonical, { region: [276] })).spdu, 400, 31, /policy regions/);
    const { canonical: ca } = await env.register('obu', [124]);
    await expectRefused((await request(ca, { region: [840] })).spdu, 400, 31, /registered region/);
  });

  it('validity too long, past the ECA certificate, or starting too late -> 400-33 / 400-72', async () => {
    const { canonical } = await env.register('obu');
    await expectRefused((await request(canonical, { validity: { durationSeconds: env.policy.enrollmentValidity + 1 } })).spdu, 400, 33, /enrollmentValidity/);
    // the ECA certificate lasts 5 years from yesterday
    await expectRefused((await request(canonical, { validity: { durationSeconds: 5 * YEAR } })).spdu, 400, 33, /ECA certificate/);
    const late = new Date(env.clock.now().getTime() + (env.policy['eca-maxWait'] + 10) * 1000);
    await expectRefused((await request(canonical, { validity: { start: late, durationSeconds: YEAR } })).spdu, 400, 72, /eca-maxWait/);
  });

  it('implicit requested from an ECA without its scalar, or a type the options exclude -> 400-32', async () => {
    const { canonical } = await env.register('obu');
    const explicitOnly = env.withOptions({}, null);
    const before = await env.snapshot();
    const r1 = await explicitOnly.handleEnrollmentRequest((await request(canonical)).spdu);
    expect(r1).toMatchObject({ status: 400, code: 32 });
    const r2 = await env.withOptions({ allowedTypes: ['implicit'] }).handleEnrollmentRequest((await request(canonical, { type: 'explicit' })).spdu);
    expect(r2).toMatchObject({ status: 400, code: 32 });
    expect(await env.snapshot()).toEqual(before);
    // and explicit works without the scalar
    expect((await explicitOnly.handleEnrollmentRequest((await request(canonical, { type: 'explicit' })).spdu)).status).toBe(200);
  });

  it('eca-minWait -> 429-73 and eca-maxReqs -> 429-71 (Table 8 numbering, EcaLimitCode)', async () => {
    const { canonical } = await env.register('obu');
    expect((await env.eca.handleEnrollmentRequest((await request(canonical)).spdu)).status).toBe(200);
    env.clock.advance((env.policy['eca-minWait'] - 2) * 1000);
    await expectRefused((await request(canonical)).spdu, 429, 73, /eca-minWait/);
    for (let i = 1; i < env.policy['eca-maxReqs']; i++) {
      env.clock.advance(env.policy['eca-minWait'] * 1000);
      const r = await env.eca.handleEnrollmentRequest((await request(canonical)).spdu);
      expect(r.status, 'reason' in r ? r.reason : '').toBe(200);
    }
    env.clock.advance(env.policy['eca-minWait'] * 1000);
    await expectRefused((await request(canonical)).spdu, 429, 71, /eca-maxReqs/);
    // a week later the window has moved on
    env.clock.advance(7 * 24 * 3600 * 1000);
    expect((await env.eca.handleEnrollmentRequest((await request(canonical)).spdu)).status).toBe(200);
  });

  it('a failing registry rolls the ECA tables back -> 503', async () => {
    const { canonical } = await env.register('obu');
    const before = await env.snapshot();
    // the real registry for look-ups, an unreachable RA for the write
    const inner = env.registry;
    const failing: DeviceRegistry = {
      lookupByCanonicalKey: (k, c) => inner.lookupByCanonicalKey(k, c),
      lookupByCanonicalId: (id) => inner.lookupByCanonicalId(id),
      markEnrolled: async () => {
        throw new Error('RA unreachable');
      },
      recordCertificate: (d, c) => inner.recordCertificate(d, c),
    };
    const { Eca } = await import('../../../src/engine/eca/eca.js');
    const eca = new Eca({
      eca: { certificate: env.h.eca, chain: [env.h.ica, env.h.root], signer: keyPairSigner(env.h.ecaKey), privateScalar: env.h.ecaKey.privateKey },
      registry: failing,
      policy: env.policy,
      clock: env.clock,
      store: env.ecaStore,
    });
    const r = await eca.handleEnrollmentRequest((await request(canonical)).spdu);
    expect(r).toMatchObject({ status: 503 });
    expect(await env.snapshot()).toEqual(before);
  });
});

describe('canonical key recovery', () => {
  it('finds the signing key among the candidates, for x-only and compressed R', async () => {
    const key = generateKeyPair();
    const other = generateKeyPair();
    const { spdu } = await buildEnrollmentRequest({ canonicalKey: keyPairSigner(key), type: 'explicit', psids: [32], validity: { durationSeconds: YEAR }, clock: env.clock });
    const scr = SignedCertificateRequest.decode((DataCodec.decode(spdu).content as { signedCertificateRequest: Uint8Array }).signedCertificateRequest);
    const tbs = ScopedCertificateRequest.encode(scr.tbsRequest);
    const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
    const x = recoverSelfSignerKeys(tbs, scr.signature)!;
    expect(x.curve).toBe('nistP256');
    expect(x.publicKeys.length).toBeGreaterThanOrEqual(2);
    expect(x.publicKeys.map(hex)).toContain(hex(compressedPublicKey('nistP256', key.publicKey)));
    expect(x.publicKeys.map(hex)).not.toContain(hex(compressedPublicKey('nistP256', other.publicKey)));

    const compressed = await signCertificateRequest({ tbsRequest: scr.tbsRequest, signer: keyPairSigner(key), signerId: 'self', rForm: 'compressed' });
    const scr2 = SignedCertificateRequest.decode((compressed.content as { signedCertificateRequest: Uint8Array }).signedCertificateRequest);
    const y = recoverSelfSignerKeys(tbs, scr2.signature)!;
    expect(y.publicKeys.map(hex)).toEqual([hex(compressedPublicKey('nistP256', key.publicKey))]);
  });
});
