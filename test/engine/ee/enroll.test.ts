// End-to-end enrollment: EE request -> ECA -> EE response processing, with a real hierarchy, the RA's registry and
// the ECA tables in SQLite; the enrollment key checked with node:crypto.
import { createHash, createPublicKey, verify as nodeVerify, randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Certificate as CertificateCodec, EcaEeCertResponseSpdu } from '../../../src/codec/index.js';
import { buildEnrollmentRequest, EnrollmentResponseError, processEnrollmentResponse } from '../../../src/engine/ee/enroll.js';
import { canonicalIdOf, generateKeyPair, keyPairSigner } from '../../../src/engine/ee/keys.js';
import { canonicalIdOf as registryCanonicalIdOf } from '../../../src/engine/ra/registration.js';
import { certificatePublicKey, fromPublicVerificationKey, verifyCertificateSignature } from '../../../src/security/certificate.js';
import { ManualClock, nowTime32 } from '../../../src/security/time.js';
import { buildHierarchy, makeEnv, YEAR, type Env } from '../eca/helpers.js';

let env: Env;
beforeEach(async () => {
  env = await makeEnv();
});
afterEach(async () => {
  await env.close();
});

/** node:crypto check that `signer` made a P-256 ECDSA signature (over SHA-256 of msg) for the given public key. */
async function signsFor(signer: { sign(m: Uint8Array): Promise<Uint8Array> }, publicKey: Uint8Array): Promise<boolean> {
  const msg = randomBytes(64);
  const sig = await signer.sign(msg);
  const x = Buffer.from(publicKey.subarray(1, 33)).toString('base64url');
  const y = Buffer.from(publicKey.subarray(33, 65)).toString('base64url');
  const key = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x, y }, format: 'jwk' });
  return nodeVerify('sha256', msg, { key, dsaEncoding: 'ieee-p1363' }, sig);
}

const sha256Low8 = (b: Uint8Array) => createHash('sha256').update(b).digest().subarray(24);

describe('enrollment end to end', () => {
  for (const type of ['implicit', 'explicit'] as const) {
    it(`${type}: the EE gets a certificate whose key it holds, the RA records it, the ECA stores it`, async () => {
      const { deviceId, canonical } = await env.register('obu');
      const { spdu, state } = await buildEnrollmentRequest({
        canonicalKey: keyPairSigner(canonical),
        type,
        psids: [32, 38],
        validity: { durationSeconds: 3 * YEAR },
        clock: env.clock,
      });
      expect(state.canonicalId).toBe(registryCanonicalIdOf(Buffer.from(createPublicKeyCompressed(canonical.publicKey))));
      expect(Buffer.from(state.requestHash).equals(sha256Low8(spdu))).toBe(true);

      const res = await env.eca.handleEnrollmentRequest(spdu);
      if (res.status !== 200) throw new Error(`refused: ${JSON.stringify(res)}`);

      const enrollment = processEnrollmentResponse(res.body, state, { trustAnchors: [env.h.root], clock: env.clock });
      expect(enrollment.certificate.type).toBe(type);
      expect(enrollment.chain.map((c) => Buffer.from(CertificateCodec.encode(c)).toString('hex'))).toEqual(
        [env.h.eca, env.h.ica, env.h.root].map((c) => Buffer.from(CertificateCodec.encode(c)).toString('hex')),
      );
      // the public key, reconstructed from the certificate alone (implicit) or read from it (explicit)
      const pub = certificatePublicKey(enrollment.certificate, [env.h.eca, env.h.ica, env.h.root]);
      expect(Buffer.from(pub.publicKey).equals(Buffer.from(enrollment.publicKey))).toBe(true);
      expect(await signsFor(enrollment.signer, pub.publicKey)).toBe(true);
      if (type === 'explicit') {
        expect(enrollment.privateKey).toBe(state.keyPair.privateKey);
        expect(verifyCertificateSignature(enrollment.certificate, env.h.eca)).toBe(true);
        const vk = fromPublicVerificationKey((enrollment.certificate.toBeSigned.verifyKeyIndicator as { verificationKey: never }).verificationKey);
        expect(Buffer.from(createPublicKeyCompressed(state.keyPair.publicKey)).equals(Buffer.from(vk.publicKey))).toBe(true);
      } else {
        expect(enrollment.privateKey).not.toBe(state.keyPair.privateKey);
      }
      // certificate content the ECA decided
      const tbs = enrollment.certificate.toBeSigned;
      expect(tbs.id).toEqual({ none: null });
      expect(tbs.certRequestPermissions?.[0]?.subjectPermissions).toEqual({ explicit: [{ psid: 32n }, { psid: 38n }] });
      expect(tbs.certRequestPermissions?.[0]?.eeType).toBe('11000000');
      expect(tbs.appPermissions).toBeUndefined();

      // response fields
      const signed = EcaEeCertResponseSpdu.decode(res.body).content as { signedData: any };
      const response = signed.signedData.tbsData.payload.data.content.unsecuredData.content['eca-ee'].ecaEeCertResponse;
      expect(response.version).toBe(2);
      expect(response.generationTime).toBe(nowTime32(env.clock));
      expect(Buffer.from(response.requestHash).equals(sha256Low8(spdu))).toBe(true);
      expect(response.privateKeyInfo === undefined).toBe(type === 'explicit');
      expect(signed.signedData.tbsData.headerInfo.psid).toBe(35n);
      const hashed = Buffer.from(createHash('sha256').update(CertificateCodec.encode(enrollment.certificate)).digest().subarray(24)).toString('hex');
      expect(res.hashedId8).toBe(hashed);
      const device = await env.ra.get(deviceId);
      expect(device?.state).toBe('enrolled');
      expect((await env.ra.certificates(deviceId)).map((c) => [c.kind, c.hashedId8, c.issuer])).toEqual([['enrollment', hashed, 'eca']]);
      const stored = await env.ecaStore.certificatesOf(deviceId);
      expect(stored.map((s) => [s.hashedId8, s.type, s.requestHash])).toEqual([[hashed, type, sha256Low8(spdu).toString('hex')]]);
      expect(Buffer.from(stored[0]!.certificate).equals(Buffer.from(CertificateCodec.encode(enrollment.certificate)))).toBe(true);
    });
  }

  it('without canonicalId the enrollment key signs and is looked up as the canonical key', async () => {
    const { deviceId, canonical } = await env.register('rsu');
    const { spdu, state } = await buildEnrollmentRequest({
      canonicalKey: keyPairSigner(canonical),
      enrollmentKeyPair: canonical,
      includeCanonicalId: false,
      type: 'implicit',
      psids: [130],
      validity: { durationSeconds: YEAR },
      clock: env.clock,
    });
    expect(state.canonicalId).toBeUndefined();
    const res = await env.eca.handleEnrollmentRequest(spdu);
    expect(res.status).toBe(200);
    if (res.status !== 200) return;
    expect(res.deviceId).toBe(deviceId);
    const e = processEnrollmentResponse(res.body, state, { trustAnchors: [env.h.root], clock: env.clock });
    expect(await signsFor(e.signer, e.publicKey)).toBe(true);
  });

  it('canonicalIdOf (EE) agrees with the registry definition', () => {
    const k = generateKeyPair();
    expect(canonicalIdOf('nistP256', k.publicKey)).toBe(registryCanonicalIdOf(createPublicKeyCompressed(k.publicKey)));
  });
});

describe('processEnrollmentResponse refuses', () => {
  async function enrolled(type: 'implicit' | 'explicit' = 'implicit') {
    const { canonical } = await env.register('obu');
    const req = await buildEnrollmentRequest({ canonicalKey: keyPairSigner(canonical), type, psids: [32], validity: { durationSeconds: YEAR }, clock: env.clock });
    const res = await env.eca.handleEnrollmentRequest(req.spdu);
    if (res.status !== 200) throw new Error(res.reason);
    return { req, body: res.body, canonical };
  }

  it('a response to another request (requestHash)', async () => {
    const a = await enrolled();
    const other = await buildEnrollmentRequest({ canonicalKey: keyPairSigner(a.canonical), type: 'implicit', psids: [32], validity: { durationSeconds: YEAR }, clock: env.clock });
    expect(() => processEnrollmentResponse(a.body, { ...other.state, keyPair: a.req.state.keyPair }, { trustAnchors: [env.h.root], clock: env.clock })).toThrow(/requestHash/);
  });

  it('an untrusted root', async () => {
    const a = await enrolled();
    const stranger = await buildHierarchy(env.policy, env.clock.now(), [840]);
    expect(() => processEnrollmentResponse(a.body, a.req.state, { trustAnchors: [stranger.root], clock: env.clock })).toThrow(/untrusted-root/);
  });

  it('a wrong request key (private key reconstruction fails)', async () => {
    const a = await enrolled('implicit');
    const wrong = { ...a.req.state, keyPair: generateKeyPair() };
    expect(() => processEnrollmentResponse(a.body, wrong, { trustAnchors: [env.h.root], clock: env.clock })).toThrow(/private key/);
    const b = await (async () => {
      env.clock.advance(60_000);
      return enrolled('explicit');
    })();
    expect(() => processEnrollmentResponse(b.body, { ...b.req.state, keyPair: generateKeyPair() }, { trustAnchors: [env.h.root], clock: env.clock })).toThrow(/private key/);
  });

  it('a tampered response (signature) and trailing octets (parse)', async () => {
    const a = await enrolled();
    const flipped = Uint8Array.from(a.body);
    flipped[flipped.length - 1]! ^= 1;
    expect(() => processEnrollmentResponse(flipped, a.req.state, { trustAnchors: [env.h.root], clock: env.clock })).toThrow(/signature/);
    const longer = Uint8Array.from([...a.body, 0]);
    expect(() => processEnrollmentResponse(longer, a.req.state, { trustAnchors: [env.h.root], clock: env.clock })).toThrow(EnrollmentResponseError);
  });

  it('a response when the ECA certificate has expired by the EE clock', async () => {
    const a = await enrolled();
    const later = new ManualClock(env.clock.now().getTime() + 6 * YEAR * 1000);
    expect(() => processEnrollmentResponse(a.body, a.req.state, { trustAnchors: [env.h.root], clock: later })).toThrow(/expired/);
  });
});

function createPublicKeyCompressed(uncompressed: Uint8Array): Uint8Array {
  const y = uncompressed[64]!;
  return Uint8Array.from([2 + (y & 1), ...uncompressed.subarray(1, 33)]);
}
