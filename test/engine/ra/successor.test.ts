// RA successor enrollment over HTTP (1609.2.1 6.3.5.4 / 6.3.5.5): a real ScmsServer on 127.0.0.1:0, SQLite, the
// durable queue and its Worker, the in-process ECA behind the EcaClient, an EE enrolled by that ECA.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Kysely } from 'kysely';
import { EeEcaCertRequestSpdu as EeEcaCertRequestSpduCodec, Ieee1609Dot2Data as Ieee1609Dot2DataCodec, type Certificate, type ScopedCertificateRequest } from '../../../src/codec/index.js';
import { fromHex, toHex } from '../../../src/crypto/bytes.js';
import { Eca } from '../../../src/engine/eca/eca.js';
import { EcaStore } from '../../../src/engine/eca/store.js';
import { inProcessEcaClient } from '../../../src/engine/eca/successor.js';
import { buildDownloadRequest, type EnrollmentCredential } from '../../../src/engine/ee/authorization-client.js';
import { buildEnrollmentRequest, processEnrollmentResponse } from '../../../src/engine/ee/enroll.js';
import { generateKeyPair, keyPairSigner } from '../../../src/engine/ee/keys.js';
import {
  buildSuccessorEnrollmentRequest,
  processSuccessorAck,
  processSuccessorResponse,
  runSuccessorExchange,
  successorDownloadFilename,
  type SuccessorExchangeOptions,
} from '../../../src/engine/ee/successor.js';
import { ERROR_HEADER } from '../../../src/engine/http/index.js';
import { certificateProfile, type Role } from '../../../src/engine/manager/profiles.js';
import { JobQueue, Worker } from '../../../src/engine/queue/index.js';
import { registrationEnrollmentLookup } from '../../../src/engine/ra/authorization.js';
import { InProcessDeviceRegistry } from '../../../src/engine/ra/registration-registry.js';
import { RegistrationStore } from '../../../src/engine/ra/registration-store.js';
import { canonicalKeyFromBytes } from '../../../src/engine/ra/registration.js';
import {
  acceptSuccessorRequest,
  registerSuccessorEnrollment,
  SUCCESSOR_ENROLLMENT_PATH,
  SUCCESSOR_QUEUE,
  successorJobHandler,
  successorMaxAttempts,
  successorWorker,
  type SuccessorDeps,
  type SuccessorJobResult,
} from '../../../src/engine/ra/successor.js';
import { SuccessorRequestStore } from '../../../src/engine/ra/successor-store.js';
import { buildTbsCertificate, certificateHashedId8, certificateKeyPairMatches, issueExplicitCertificate } from '../../../src/security/certificate.js';
import { scmsPdu, signedEncryptedCertRequestSpdu } from '../../../src/security/scms-pdu.js';
import { dateToTime32, ManualClock } from '../../../src/security/time.js';
import { testKey, type TestKey } from '../../security/cert-fixtures.js';
import { hierarchy, START, tempSqlite, type Hierarchy, type TempDb } from '../aca/fixtures.js';
import { startTestServer, type TestServer } from '../http/helpers.js';

const NOW = new Date('2025-03-01T00:00:00Z');
const clock = new ManualClock(NOW);

interface Issued {
  key: TestKey;
  cert: Certificate;
}

async function issue(role: Role, h: Hierarchy, name: string): Promise<Issued> {
  const p = certificateProfile(role, { policy: h.policy });
  const key = testKey('nistP256');
  const enc = p.encryptionKey ? testKey('nistP256') : undefined;
  const tbs = buildTbsCertificate({
    id: { name },
    validity: { start: START, durationSeconds: p.validitySeconds },
    appPermissions: p.appPermissions,
    ...(p.certIssuePermissions ? { certIssuePermissions: p.certIssuePermissions } : {}),
    ...(p.certRequestPermissions ? { certRequestPermissions: p.certRequestPermissions } : {}),
    ...(enc ? { encryptionKey: enc.publicKey } : {}),
    verifyKey: key.publicKey,
  });
  return { key, cert: await issueExplicitCertificate({ tbs, issuer: h.ica.cert, signer: h.ica.key.signer }) };
}

let h: Hierarchy;
let eca: Issued;
let otherRa: Issued;
let ecaEngine: Eca;
let ecaStore: EcaStore;
let registration: RegistrationStore;
let jobs: JobQueue;
let worker: Worker;
let raDb: Kysely<any>;
let srv: TestServer;
let deps: SuccessorDeps;
const dbs: TempDb[] = [];

beforeAll(async () => {
  h = await hierarchy();
  eca = await issue('eca', h, 'eca');
  otherRa = await issue('ra', h, 'ra-other');
  const ra = await tempSqlite('ra');
  const ecaDb = await tempSqlite('eca');
  dbs.push(ra, ecaDb);
  raDb = ra.db;
  registration = new RegistrationStore(raDb, { clock });
  await registration.migrate();
  ecaStore = new EcaStore(ecaDb.db);
  await ecaStore.migrate();
  ecaEngine = new Eca({
    eca: { certificate: eca.cert, chain: [h.ica.cert, h.root.cert], signer: eca.key.signer, privateScalar: eca.key.d },
    registry: new InProcessDeviceRegistry(registration, { actor: 'eca' }),
    policy: h.policy,
    clock,
    store: ecaStore,
  });
  jobs = new JobQueue(raDb, { clock });
  await jobs.migrate();
  worker = successorWorker({ jobs, eca: inProcessEcaClient(ecaEngine), worker: { heartbeatMs: 0 } });
  deps = {
    raCertificate: h.ra.cert,
    raSigner: h.ra.key.signer,
    raDecryption: { privateKey: h.ra.enc!.d },
    trustAnchors: [h.root.cert],
    caCertificates: [eca.cert, h.ica.cert],
    ecaCertificates: [eca.cert],
    devices: registrationEnrollmentLookup(registration),
    jobs,
    policy: h.policy,
    clock,
  };
  srv = await startTestServer((server) => server.registerComponent({ name: 'ra', register: registerSuccessorEnrollment, deps }));
}, 120_000);

afterAll(async () => {
  await srv?.close();
  for (const d of dbs) await d.close();
});

/** A registered OBU enrolled (implicit) `agoMs` before NOW (default two minutes: eca-minWait has passed by NOW). */
async function enrolledEe(agoMs = 120_000): Promise<{ deviceId: string; enrollment: EnrollmentCredential }> {
  const canonical = generateKeyPair('nistP256');
  const r = await registration.register({ deviceType: 'obu', key: canonicalKeyFromBytes(canonical.publicKey) }, 'test');
  clock.set(NOW.getTime() - agoMs);
  try {
    const { spdu, state } = await buildEnrollmentRequest({ canonicalKey: keyPairSigner(canonical), type: 'implicit', psids: [32, 38], validity: { durationSeconds: 30 * 86_400 }, clock });
    const res = await ecaEngine.handleEnrollmentRequest(spdu);
    if (res.status !== 200) throw new Error(`enrollment refused: ${res.reason}`);
    const e = processEnrollmentResponse(res.body, state, { trustAnchors: [h.root.cert], clock });
    return { deviceId: r.device.deviceId, enrollment: { certificate: e.certificate, signer: e.signer } };
  } finally {
    clock.set(NOW);
  }
}

const successorRequest = (current: EnrollmentCredential) =>
  buildSuccessorEnrollmentRequest({ current, raCertificate: h.ra.cert, type: 'implicit', psids: [32, 38], validity: { durationSeconds: 60 * 86_400 }, clock });

const post = (body: Uint8Array) =>
  fetch(`${srv.url}${SUCCESSOR_ENROLLMENT_PATH}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from(body) });
const download = (header: string, filename?: string, extra: Record<string, string> = {}) =>
  fetch(`${srv.url}${SUCCESSOR_ENROLLMENT_PATH}${filename === undefined ? '' : `?filename=${encodeURIComponent(filename)}`}`, {
    headers: { 'ieee-1609.2.1-authorization': header, ...extra },
  });
const bytes = async (r: Response) => new Uint8Array(await r.arrayBuffer());

async function snapshot() {
  const out: Record<string, unknown> = {};
  for (const t of ['scms_jobs', 'ra_devices', 'ra_device_events', 'ra_device_certificates', 'ra_download_requests', 'ra_successor_requests']) out[t] = await raDb.selectFrom(t).selectAll().execute();
  out.eca = await ecaStore.counts();
  return out;
}

async function expectRefused(body: Uint8Array, status: number, code: number) {
  const before = await snapshot();
  const r = await post(body);
  const text = await r.text();
  expect(r.status, text).toBe(status);
  expect(r.headers.get(ERROR_HEADER), text).toBe(`${status}-${code}`);
  expect(await snapshot()).toEqual(before);
}

const successorRequestsOf = (deviceId: string) => new SuccessorRequestStore(raDb).requestsOf(deviceId);

async function runWorker() {
  while ((await worker.pollOnce()) > 0) await worker.drain();
  await worker.drain();
}

describe('successor enrollment over HTTP', () => {
  afterEach(() => clock.set(NOW));

  it('POST -> ack; download before ready -> 503 Retry-After; worker -> ECA; download -> new implicit enrollment certificate', async () => {
    const ee = await enrolledEe();
    const oldId = toHex(certificateHashedId8(ee.enrollment.certificate));
    const { spdu, state } = await successorRequest(ee.enrollment);

    const r = await post(spdu);
    expect(r.status, await r.clone().text()).toBe(200);
    const ack = processSuccessorAck(await bytes(r), { raCertificate: h.ra.cert, requestHash: state.requestHash });
    expect(ack.nextDlTime).toBeGreaterThan(dateToTime32(NOW));
    const key = toHex(state.requestHash);
    expect((await jobs.getByKey(SUCCESSOR_QUEUE, key))?.state).toBe('queued');

    const filename = successorDownloadFilename(state.requestHash);
    const header = () => buildDownloadRequest({ filename, enrollment: ee.enrollment, raCertificate: h.ra.cert, clock });
    const early = await download(await header(), filename);
    expect(early.status).toBe(503);
    expect(early.headers.get(ERROR_HEADER)).toBe('503-99');
    expect(Number(early.headers.get('retry-after'))).toBe(ack.nextDlTime - dateToTime32(NOW));

    await runWorker();
    const job = await jobs.getByKey(SUCCESSOR_QUEUE, key);
    expect(job?.state, job?.lastError ?? '').toBe('done');

    // The 503 request was counted: download-minWait before the next one.
    const tooSoon = await download(await header(), filename);
    expect(tooSoon.status).toBe(429);
    expect(tooSoon.headers.get(ERROR_HEADER)).toBe('429-76');
    clock.set(NOW.getTime() + h.policy['download-minWait'] * 1000);
    const ok = await download(await header(), filename);
    expect(ok.status, await ok.clone().text()).toBe(200);
    expect(ok.headers.get('content-disposition')).toBe(`attachment; filename=${filename}`);
    // requestHash = HashedId8 of the outer SPDU, chain, implicit reconstruction: processEnrollmentResponse checks all.
    const next = processSuccessorResponse(await bytes(ok), state, { trustAnchors: [h.root.cert], clock });
    expect(next.certificate.type).toBe('implicit');
    expect(certificateKeyPairMatches(next.certificate, next.privateKey, next.chain)).toBe(true);
    const newId = toHex(certificateHashedId8(next.certificate));
    expect(newId).not.toBe(oldId);

    // Recorded by the ECA for the same device, and by the registry as a successor enrollment.
    expect((await ecaStore.certificate(newId))?.deviceId).toBe(ee.deviceId);
    const recorded = await registration.certificates(ee.deviceId);
    expect(recorded.map((c) => `${c.kind}:${c.hashedId8}`)).toEqual(expect.arrayContaining([`enrollment:${oldId}`, `successor-enrollment:${newId}`]));
    expect((await registrationEnrollmentLookup(registration)(newId))?.deviceId).toBe(ee.deviceId);

    // The new certificate can in turn request its successor (accepted by the RA) once eca-minWait has passed since
    // the previous successor request (the RA holds successor requests to eca-minWait up front).
    clock.set(NOW.getTime() + h.policy['eca-minWait'] * 1000);
    const again = await successorRequest({ certificate: next.certificate, signer: next.signer });
    expect((await post(again.spdu)).status).toBe(200);
  }, 120_000);

  it('downloads: unknown file -> 404, another EE -> 404, no header -> 400', async () => {
    const a = await enrolledEe();
    const b = await enrolledEe();
    const { spdu, state } = await successorRequest(a.enrollment);
    expect((await post(spdu)).status).toBe(200);
    const filename = successorDownloadFilename(state.requestHash);
    const unknown = await download(await buildDownloadRequest({ filename: '0123456789abcdef.oer', enrollment: a.enrollment, raCertificate: h.ra.cert, clock }));
    expect(unknown.status).toBe(404);
    const foreign = await download(await buildDownloadRequest({ filename, enrollment: b.enrollment, raCertificate: h.ra.cert, clock }), filename);
    expect(foreign.status).toBe(404);
    expect((await fetch(`${srv.url}${SUCCESSOR_ENROLLMENT_PATH}`)).status).toBe(400);
  });
});

describe('successor refusals (status and code; RA and ECA state unchanged)', () => {
  it('blocked device -> 403-20', async () => {
    const ee = await enrolledEe();
    await registration.block(ee.deviceId, 'stolen', 'operator');
    const { spdu } = await successorRequest(ee.enrollment);
    await expectRefused(spdu, 403, 20);
  });

  it('signed by a certificate that is not an enrollment certificate (an RA certificate) -> 400-40', async () => {
    const { spdu } = await successorRequest({ certificate: otherRa.cert, signer: otherRa.key.signer });
    await expectRefused(spdu, 400, 40);
  });

  it('expired current enrollment certificate -> 400-40; accepted within expiryGraceSeconds', async () => {
    const ee = await enrolledEe(); // valid 30 days from NOW - 120 s
    try {
      clock.set(NOW.getTime() + 30 * 86_400_000 + 3600_000); // expired about an hour ago
      const { spdu } = await successorRequest(ee.enrollment);
      await expectRefused(spdu, 400, 40);
      const r = await acceptSuccessorRequest(spdu, { ...deps, options: { expiryGraceSeconds: 2 * 3600 } });
      expect(r.payload.deviceId).toBe(ee.deviceId);
      await expect(acceptSuccessorRequest((await successorRequest(ee.enrollment)).spdu, { ...deps, options: { expiryGraceSeconds: 1800 } })).rejects.toMatchObject({ status: 400, code: 40 });
    } finally {
      clock.set(NOW);
    }
  });

  it('replayed request -> 400-60, no second job', async () => {
    const ee = await enrolledEe();
    const { spdu } = await successorRequest(ee.enrollment);
    expect((await post(spdu)).status).toBe(200);
    await expectRefused(spdu, 400, 60);
  });

  it('inner request with a canonicalId -> 400-60', async () => {
    const ee = await enrolledEe();
    const canonical = generateKeyPair('nistP256');
    const inner = await buildEnrollmentRequest({ canonicalKey: keyPairSigner(canonical), type: 'implicit', psids: [32], validity: { durationSeconds: 86_400 }, clock });
    const tbsRequest = scmsPdu({ 'ee-ra': { eeRaSuccessorEnrollmentCertRequest: EeEcaCertRequestSpduCodec.decode(inner.spdu) } }) as ScopedCertificateRequest;
    const data = await signedEncryptedCertRequestSpdu({
      tbsRequest,
      signer: ee.enrollment.signer,
      signerId: { certificate: ee.enrollment.certificate },
      recipients: [{ kind: 'cert', certificate: h.ra.cert }],
    });
    await expectRefused(Ieee1609Dot2DataCodec.encode(data), 400, 60);
  });

  it('ECA: a link to a device the current enrollment certificate was not issued to -> 400-21, nothing issued', async () => {
    const a = await enrolledEe();
    const b = await enrolledEe();
    // An inner request as the RA forwards it (self-signed with a new key, no canonicalId).
    const k = generateKeyPair('nistP256');
    const inner = await buildEnrollmentRequest({ canonicalKey: keyPairSigner(k), enrollmentKeyPair: k, includeCanonicalId: false, type: 'implicit', psids: [32], validity: { durationSeconds: 86_400 }, clock });
    const link = { currentEnrollment: toHex(certificateHashedId8(a.enrollment.certificate)), requestHash: new Uint8Array(8) };
    const before = await ecaStore.counts();
    const client = inProcessEcaClient(ecaEngine);
    expect(await client.successorEnrollment(inner.spdu, { ...link, deviceId: b.deviceId })).toMatchObject({ status: 400, code: 21 });
    expect(await client.successorEnrollment(inner.spdu, { ...link, currentEnrollment: '0123456789abcdef', deviceId: a.deviceId })).toMatchObject({ status: 400, code: 21 });
    expect(await ecaStore.counts()).toEqual(before);
    // The right link is accepted; requestHash is the one the RA passed.
    const ok = await client.successorEnrollment(inner.spdu, { ...link, deviceId: a.deviceId });
    expect(ok.status).toBe(200);
  });

  it('ECA refusal after the ack (device blocked before the job runs) -> the job keeps the refusal, nothing issued', async () => {
    const ee = await enrolledEe();
    const { spdu, state } = await successorRequest(ee.enrollment);
    expect((await post(spdu)).status).toBe(200);
    const before = await ecaStore.certificatesOf(ee.deviceId);
    await registration.block(ee.deviceId, 'stolen', 'operator');
    await runWorker();
    const job = await jobs.getByKey(SUCCESSOR_QUEUE, toHex(state.requestHash));
    expect(job?.state).toBe('done');
    expect(job?.result).toMatchObject({ refused: { status: 403, code: 20 } });
    expect(await ecaStore.certificatesOf(ee.deviceId)).toEqual(before);
  });
});

describe('successor request limits: eca-minWait / eca-maxReqs up front, ECA rate refusals retryable', () => {
  afterEach(() => clock.set(NOW));
  const at = (s: number) => clock.set(NOW.getTime() + s * 1000);
  const minWait = () => h.policy['eca-minWait'];
  const downloadOf = async (ee: { enrollment: EnrollmentCredential }, requestHash: Uint8Array) => {
    const filename = successorDownloadFilename(requestHash);
    return download(await buildDownloadRequest({ filename, enrollment: ee.enrollment, raCertificate: h.ra.cert, clock }), filename);
  };

  it('eca-minWait: a second request within eca-minWait -> 429-73 with Retry-After, nothing stored; a new request after it -> 200', async () => {
    const ee = await enrolledEe();
    expect((await post((await successorRequest(ee.enrollment)).spdu)).status).toBe(200);
    at(minWait() - 3);
    const before = await snapshot();
    const r = await post((await successorRequest(ee.enrollment)).spdu);
    expect(r.status, await r.clone().text()).toBe(429);
    expect(r.headers.get(ERROR_HEADER)).toBe('429-73');
    expect(Number(r.headers.get('retry-after'))).toBe(3);
    expect(await r.text()).toContain('eca-minWait');
    expect(await snapshot()).toEqual(before);
    at(minWait() - 3 + Number(r.headers.get('retry-after')));
    expect((await post((await successorRequest(ee.enrollment)).spdu)).status).toBe(200);
  });

  it('eca-maxReqs per 7 x 24 h -> 429-71 with Retry-After (until the oldest request leaves the window); nothing stored', async () => {
    const tight = await startTestServer((server) =>
      server.registerComponent({ name: 'ra', register: registerSuccessorEnrollment, deps: { ...deps, policy: { ...h.policy, 'eca-maxReqs': 2 } } }),
    );
    try {
      const ee = await enrolledEe();
      const postTight = (body: Uint8Array) =>
        fetch(`${tight.url}${SUCCESSOR_ENROLLMENT_PATH}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from(body) });
      for (const s of [0, minWait()]) {
        at(s);
        expect((await postTight((await successorRequest(ee.enrollment)).spdu)).status).toBe(200);
      }
      at(3 * minWait());
      const before = await snapshot();
      const r = await postTight((await successorRequest(ee.enrollment)).spdu);
      expect(r.status, await r.clone().text()).toBe(429);
      expect(r.headers.get(ERROR_HEADER)).toBe('429-71');
      expect(Number(r.headers.get('retry-after'))).toBe(7 * 86_400 - 3 * minWait() + 1);
      expect(await snapshot()).toEqual(before);
    } finally {
      await tight.close();
    }
  });

  it('ECA 429 after the ack (eca-minWait since the initial enrollment): the download answers 429-73 + Retry-After, the refused request no longer counts, a new request is issued once', async () => {
    // Enrolled 2 s before NOW: the RA accepts the successor request (it does not see the initial enrollment), the
    // ECA refuses it with eca-minWait.
    const ee = await enrolledEe(2000);
    const first = await successorRequest(ee.enrollment);
    expect((await post(first.spdu)).status).toBe(200);
    const issuedBefore = (await ecaStore.certificatesOf(ee.deviceId)).length;
    await runWorker();
    const job = await jobs.getByKey(SUCCESSOR_QUEUE, toHex(first.state.requestHash));
    expect(job?.state).toBe('done');
    expect(job?.result).toMatchObject({ refused: { status: 429, code: 73 } });
    expect(await successorRequestsOf(ee.deviceId)).toEqual([{ requestHash: toHex(first.state.requestHash), generationTime: dateToTime32(NOW), refused: true }]);

    at(1);
    const dl = await downloadOf(ee, first.state.requestHash);
    expect(dl.status, await dl.clone().text()).toBe(429);
    expect(dl.headers.get(ERROR_HEADER)).toBe('429-73');
    expect(await dl.text()).toContain('send a new successor enrollment request');
    const after = Number(dl.headers.get('retry-after'));
    expect(after).toBeGreaterThanOrEqual(1);
    expect(after).toBeLessThanOrEqual(minWait());

    // The new request, generated after Retry-After: accepted by the RA (the refused one does not count) and issued.
    at(1 + after);
    const second = await successorRequest(ee.enrollment);
    expect((await post(second.spdu)).status).toBe(200);
    await runWorker();
    expect((await jobs.getByKey(SUCCESSOR_QUEUE, toHex(second.state.requestHash)))?.result).toMatchObject({ response: expect.any(String) });
    at(2 + after + h.policy['download-minWait']);
    const ok = await downloadOf(ee, second.state.requestHash);
    expect(ok.status, await ok.clone().text()).toBe(200);
    processSuccessorResponse(await bytes(ok), second.state, { trustAnchors: [h.root.cert], clock });
    expect((await ecaStore.certificatesOf(ee.deviceId)).length).toBe(issuedBefore + 1);
    // The first file still answers the retryable refusal (nothing was issued for it).
    at(3 + after + 2 * h.policy['download-minWait']);
    expect((await downloadOf(ee, first.state.requestHash)).status).toBe(429);
  });

  it("the ECA's Retry-After, when its client passes it on, sets the download's Retry-After (inner generationTime + it)", async () => {
    const ee = await enrolledEe();
    const r = await successorRequest(ee.enrollment);
    expect((await post(r.spdu)).status).toBe(200);
    const refusing = successorJobHandler({ successorEnrollment: async () => ({ status: 429, code: 73, reason: 'eca-minWait: 6 s since the previous request (minimum 10 s)', retryAfter: 4 }) as never });
    const w = new Worker({ jobs, queue: SUCCESSOR_QUEUE, heartbeatMs: 0, handler: refusing });
    while ((await w.pollOnce()) > 0) await w.drain();
    expect((await jobs.getByKey(SUCCESSOR_QUEUE, toHex(r.state.requestHash)))?.result).toEqual({ refused: { status: 429, code: 73, reason: expect.any(String), retryAfter: 4 } });
    at(1);
    const dl = await downloadOf(ee, r.state.requestHash);
    expect(dl.status).toBe(429);
    expect(Number(dl.headers.get('retry-after'))).toBe(3);
  });
});

describe('ECA unavailable (5xx / unreachable): the queue keeps retrying for eca-maxAge', () => {
  afterEach(() => clock.set(NOW));

  it('successorMaxAttempts covers eca-maxAge with the default back-off (1 s doubling, at most 300 s)', () => {
    expect(successorMaxAttempts(300)).toBe(10); // 1+2+...+256 = 511 s >= 300 s after 9 failures
    expect(successorMaxAttempts(0)).toBe(5);
    expect(successorMaxAttempts(3600)).toBe(21); // 511 + 10 x 300 = 3511 < 3600 <= 511 + 11 x 300, after 20 failures
  });

  it('an ECA failing 7 times (more than the queue default of 5 attempts), then answering: the job completes', async () => {
    const ee = await enrolledEe();
    const r = await successorRequest(ee.enrollment);
    expect((await post(r.spdu)).status).toBe(200);
    const key = toHex(r.state.requestHash);
    expect((await jobs.getByKey(SUCCESSOR_QUEUE, key))?.maxAttempts).toBe(successorMaxAttempts(h.policy['eca-maxAge']));
    let calls = 0;
    const flaky = successorJobHandler({
      // Counts only this job's calls: jobs other tests left in the queue are refused, not counted.
      successorEnrollment: async (_request, link) => {
        if (toHex(link.requestHash) !== key) return { status: 400, code: 99, reason: 'not this test' };
        if (++calls <= 7) throw new Error('ECA unreachable');
        return { status: 200, body: new Uint8Array([1, 2, 3]), hashedId8: '0123456789abcdef', deviceId: ee.deviceId };
      },
    });
    const w = new Worker({ jobs, queue: SUCCESSOR_QUEUE, heartbeatMs: 0, handler: flaky });
    for (let i = 0; i < 12 && (await jobs.getByKey(SUCCESSOR_QUEUE, key))?.state !== 'done'; i++) {
      while ((await w.pollOnce()) > 0) await w.drain();
      clock.set(clock.now().getTime() + 300_000);
    }
    const job = await jobs.getByKey(SUCCESSOR_QUEUE, key);
    expect(job?.state, job?.lastError ?? '').toBe('done');
    expect(job?.attempts).toBe(8);
    expect(job?.result).toEqual({ response: '010203', certificate: '0123456789abcdef' });
  });
});

describe('EE runSuccessorExchange against the RA over HTTP (ManualClock; the worker runs while the EE waits)', () => {
  afterEach(() => clock.set(NOW));

  /** Options for the exchange; every wait advances the clock and lets the worker run, then `afterWait` runs. */
  function exchange(ee: { enrollment: EnrollmentCredential }, events: string[], extra: Partial<SuccessorExchangeOptions> & { afterWait?: () => Promise<void> } = {}) {
    const { afterWait, ...rest } = extra;
    return runSuccessorExchange({
      raUrl: srv.url,
      current: ee.enrollment,
      raCertificate: h.ra.cert,
      request: { type: 'implicit', psids: [32, 38], validity: { durationSeconds: 60 * 86_400 } },
      clock,
      maxWaitSeconds: 600,
      sleep: async (ms) => {
        clock.set(clock.now().getTime() + ms);
        await runWorker();
        await afterWait?.();
      },
      onEvent: (kind, message) => events.push(`${kind}: ${message}`),
      ...rest,
    });
  }

  it('ECA 429 (eca-minWait since the initial enrollment) -> the EE sends a new request after Retry-After and gets the certificate', async () => {
    const ee = await enrolledEe(2000);
    const issuedBefore = (await ecaStore.certificatesOf(ee.deviceId)).length;
    const events: string[] = [];
    const r = await exchange(ee, events);
    expect(r.ok, r.ok ? "" : r.pending).toBe(true);
    if (!r.ok) return;
    expect(r.requests).toBe(2);
    expect(events.some((e) => /^wait: the ECA refused request [0-9a-f]{16} \(HTTP 429-73 .*eca-minWait.*\); a new request in \d+ s \(Retry-After \d+\)$/.test(e)), events.join('\n')).toBe(true);
    const next = processSuccessorResponse(r.file, r.state, { trustAnchors: [h.root.cert], clock });
    expect(certificateKeyPairMatches(next.certificate, next.privateKey, next.chain)).toBe(true);
    expect((await ecaStore.certificatesOf(ee.deviceId)).length).toBe(issuedBefore + 1);
  });

  it('GET 400-70 (the RA forwarded the request after eca-maxAge, e.g. an ECA outage) -> a new request, which is issued', async () => {
    const ee = await enrolledEe();
    const issuedBefore = (await ecaStore.certificatesOf(ee.deviceId)).length;
    const events: string[] = [];
    let late = true;
    const r = await exchange(ee, events, {
      // The first wait (until the download time) lasts beyond eca-maxAge before the worker forwards the request.
      sleep: async (ms) => {
        clock.set(clock.now().getTime() + ms + (late ? (h.policy['eca-maxAge'] + 10) * 1000 : 0));
        late = false;
        await runWorker();
      },
    });
    expect(r.ok, r.ok ? '' : r.pending).toBe(true);
    expect(r.requests).toBe(2);
    expect(events.some((e) => /^wait: the ECA refused request [0-9a-f]{16} \(HTTP 400-70 .*\); a new request in \d+ s/.test(e)), events.join('\n')).toBe(true);
    expect((await ecaStore.certificatesOf(ee.deviceId)).length).toBe(issuedBefore + 1);
  });

  it('POST 429-73 from the RA (eca-minWait since the previous successor request) -> a new request after Retry-After', async () => {
    const ee = await enrolledEe();
    expect((await post((await successorRequest(ee.enrollment)).spdu)).status).toBe(200);
    await runWorker();
    clock.set(NOW.getTime() + 3000);
    const events: string[] = [];
    const r = await exchange(ee, events);
    expect(r.ok, r.ok ? "" : r.pending).toBe(true);
    expect(r.requests).toBe(2);
    expect(events.some((e) => /^wait: successor request refused \(HTTP 429-73 .*\); a new request in \d+ s \(Retry-After \d+\)$/.test(e)), events.join('\n')).toBe(true);
  });

  it('GET 429-76 (download-minWait: another download of the device just before) -> the same file again after Retry-After', async () => {
    const ee = await enrolledEe();
    const events: string[] = [];
    let interfering = true;
    const r = await exchange(ee, events, {
      // Just before the EE's first download, another download of the same file by the device (counted, served).
      afterWait: async () => {
        if (!interfering) return;
        interfering = false;
        const [mine] = await successorRequestsOf(ee.deviceId);
        const filename = successorDownloadFilename(fromHex(mine!.requestHash));
        const other = await download(await buildDownloadRequest({ filename, enrollment: ee.enrollment, raCertificate: h.ra.cert, clock }), filename);
        expect(other.status).toBe(200);
      },
    });
    expect(r.ok, r.ok ? "" : r.pending).toBe(true);
    expect(r.requests).toBe(1);
    expect(events.some((e) => /^wait: download refused for now \(HTTP 429-76 .*\); GET again in \d+ s \(Retry-After \d+\)$/.test(e)), events.join('\n')).toBe(true);
  });

  it('beyond maxWaitSeconds -> pending with the time to come back, nothing thrown', async () => {
    const ee = await enrolledEe();
    const events: string[] = [];
    const r = await exchange(ee, events, { maxWaitSeconds: 5 });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.pending).toMatch(/beyond the wait limit; run again from \d{4}-/);
    expect(r.retryAt!.getTime()).toBeGreaterThan(NOW.getTime());
  });
});

describe('successor downloads: limits (refusals store nothing)', () => {
  afterEach(() => clock.set(NOW));

  /** An EE whose successor request the worker has completed. */
  async function completed() {
    const ee = await enrolledEe();
    const { spdu, state } = await successorRequest(ee.enrollment);
    expect((await post(spdu)).status).toBe(200);
    await runWorker();
    const filename = successorDownloadFilename(state.requestHash);
    return { ee, state, filename, header: () => buildDownloadRequest({ filename, enrollment: ee.enrollment, raCertificate: h.ra.cert, clock }) };
  }

  it('download-minWait -> 429-76 with Retry-After (a Range continuation is served); download-maxAge -> 400-74', async () => {
    const c = await completed();
    clock.set(NOW.getTime() + 10_000);
    const ok = await download(await c.header(), c.filename);
    expect(ok.status, await ok.clone().text()).toBe(200);
    const file = Buffer.from(await bytes(ok));
    const before = await snapshot();
    const soon = await download(await c.header(), c.filename);
    expect(soon.status).toBe(429);
    expect(soon.headers.get(ERROR_HEADER)).toBe('429-76');
    expect(Number(soon.headers.get('retry-after'))).toBe(h.policy['download-minWait']);
    expect(await snapshot()).toEqual(before);
    const rest = await download(await c.header(), c.filename, { range: 'bytes=10-' });
    expect(rest.status).toBe(206);
    expect(Buffer.from(await bytes(rest)).equals(file.subarray(10))).toBe(true);

    clock.set(NOW.getTime() + 10_000 - (h.policy['download-maxAge'] + 5) * 1000);
    const stale = await c.header();
    clock.set(NOW.getTime() + 20_000);
    const before2 = await snapshot();
    const old = await download(stale, c.filename);
    expect(old.status).toBe(400);
    expect(old.headers.get(ERROR_HEADER)).toBe('400-74');
    expect(await snapshot()).toEqual(before2);
  });

  it('download-maxReqs -> 429-75 (policy with download-maxReqs 2, the same tables)', async () => {
    const tight = await startTestServer((server) =>
      server.registerComponent({ name: 'ra', register: registerSuccessorEnrollment, deps: { ...deps, policy: { ...h.policy, 'download-maxReqs': 2 } } }),
    );
    try {
      const c = await completed();
      const get = async () => fetch(`${tight.url}${SUCCESSOR_ENROLLMENT_PATH}`, { headers: { 'ieee-1609.2.1-authorization': await c.header() } });
      for (const s of [10, 20]) {
        clock.set(NOW.getTime() + s * 1000);
        expect((await get()).status).toBe(200);
      }
      clock.set(NOW.getTime() + 30_000);
      const before = await snapshot();
      const r = await get();
      expect(r.status).toBe(429);
      expect(r.headers.get(ERROR_HEADER)).toBe('429-75');
      expect(Number(r.headers.get('retry-after'))).toBe(7 * 86_400 - 20 + 1);
      expect(await snapshot()).toEqual(before);
    } finally {
      await tight.close();
    }
  });
});

describe('worker crash after the ECA answered (ECA successor replay)', () => {
  afterEach(() => clock.set(NOW));

  it('the retried job gets the stored answer: done once, the certificate issued the first time, nothing issued twice', async () => {
    const ee = await enrolledEe();
    const { spdu, state } = await successorRequest(ee.enrollment);
    expect((await post(spdu)).status).toBe(200);
    const key = toHex(state.requestHash);
    const issuedBefore = (await ecaStore.certificatesOf(ee.deviceId)).length;
    let firstAnswer: SuccessorJobResult | undefined;
    const real = successorJobHandler(inProcessEcaClient(ecaEngine));
    const crashing = new Worker({
      jobs,
      queue: SUCCESSOR_QUEUE,
      heartbeatMs: 0,
      handler: async (job, ctx) => {
        firstAnswer = (await real(job, ctx)) as SuccessorJobResult;
        throw new Error('crash after the ECA answered');
      },
    });
    while ((await crashing.pollOnce()) > 0) await crashing.drain();
    expect((await jobs.getByKey(SUCCESSOR_QUEUE, key))?.state).toBe('queued');
    expect(firstAnswer && 'response' in firstAnswer).toBe(true);
    expect((await ecaStore.certificatesOf(ee.deviceId)).length).toBe(issuedBefore + 1);

    // The retry, well after eca-minWait and eca-maxAge would have refused a new request.
    clock.set(NOW.getTime() + (h.policy['eca-maxAge'] + 60) * 1000);
    await runWorker();
    const job = await jobs.getByKey(SUCCESSOR_QUEUE, key);
    expect(job?.state, job?.lastError ?? '').toBe('done');
    expect(job?.result).toEqual(firstAnswer);
    expect((await ecaStore.certificatesOf(ee.deviceId)).length).toBe(issuedBefore + 1);

    const filename = successorDownloadFilename(state.requestHash);
    const ok = await download(await buildDownloadRequest({ filename, enrollment: ee.enrollment, raCertificate: h.ra.cert, clock }), filename);
    expect(ok.status, await ok.clone().text()).toBe(200);
    const next = processSuccessorResponse(await bytes(ok), state, { trustAnchors: [h.root.cert], clock });
    expect(toHex(certificateHashedId8(next.certificate))).toBe((firstAnswer as { certificate: string }).certificate);
  });
});
