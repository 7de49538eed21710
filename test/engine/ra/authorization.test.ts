// RA authorization interface over HTTP: a real ScmsServer on 127.0.0.1:0, SQLite, the durable queue and its Worker,
// an EE enrolled by the in-process ECA, the LAs and the ACA of the pipeline fixtures.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Kysely } from 'kysely';
import { unzipSync } from 'fflate';
import { Ieee1609Dot2Data as Ieee1609Dot2DataCodec, type Certificate, type ScopedCertificateRequest } from '../../../src/codec/index.js';
import type { ButterflyVariant } from '../../../src/crypto/butterfly.js';
import { Eca } from '../../../src/engine/eca/eca.js';
import { EcaStore } from '../../../src/engine/eca/store.js';
import {
  batchFilename,
  buildAuthorizationRequest,
  buildDownloadRequest,
  processAuthorizationAck,
  processAuthorizationBatch,
  type EnrollmentCredential,
} from '../../../src/engine/ee/authorization-client.js';
import { createButterflyRequest, type ButterflySecrets } from '../../../src/engine/ee/butterfly.js';
import { buildEnrollmentRequest, processEnrollmentResponse } from '../../../src/engine/ee/enroll.js';
import { generateKeyPair, keyPairSigner } from '../../../src/engine/ee/keys.js';
import { ERROR_HEADER } from '../../../src/engine/http/index.js';
import { certificateProfile, type Role } from '../../../src/engine/manager/profiles.js';
import { JobQueue, Worker } from '../../../src/engine/queue/index.js';
import {
  AUTHORIZATION_CERTIFICATE_PATH,
  AUTHORIZATION_QUEUE,
  authorizationJobHandler,
  authorizationWorker,
  registerAuthorization,
  registrationEnrollmentLookup,
  type AuthorizationDeps,
} from '../../../src/engine/ra/authorization.js';
import { AuthorizationStore } from '../../../src/engine/ra/authorization-store.js';
import { PseudonymService, PseudonymStore } from '../../../src/engine/ra/pseudonym.js';
import { InProcessDeviceRegistry } from '../../../src/engine/ra/registration-registry.js';
import { RegistrationStore } from '../../../src/engine/ra/registration-store.js';
import { canonicalKeyFromBytes } from '../../../src/engine/ra/registration.js';
import { buildTbsCertificate, certificateKeyPairMatches, issueExplicitCertificate } from '../../../src/security/certificate.js';
import { encryptData } from '../../../src/security/encryption.js';
import { scmsPdu } from '../../../src/security/scms-pdu.js';
import { signCertificateRequest } from '../../../src/security/spdu.js';
import { dateToTime32, iPeriodOf, ManualClock, time32ToDate } from '../../../src/security/time.js';
import { testKey, type TestKey } from '../../security/cert-fixtures.js';
import { acaService, hierarchy, iPeriodParamsOf, laService, seededRandom, START, tempSqlite, type Hierarchy, type TempDb } from '../aca/fixtures.js';
import { startTestServer, type TestServer } from '../http/helpers.js';

const NOW = new Date('2025-03-01T00:00:00Z');
const clock = new ManualClock(NOW);

interface Issued {
  key: TestKey;
  enc?: TestKey;
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
  const cert = await issueExplicitCertificate({ tbs, issuer: h.ica.cert, signer: h.ica.key.signer });
  return { key, cert, ...(enc ? { enc } : {}) };
}

let h: Hierarchy;
let eca: Issued;
let otherRa: Issued;
let ecaEngine: Eca;
let registration: RegistrationStore;
let jobs: JobQueue;
let pseudonyms: PseudonymStore;
let worker: Worker;
let service: PseudonymService;
let raDb: Kysely<any>;
let srv: TestServer;
/** The same RA tables behind a second server whose policy has tight download limits. */
let limited: TestServer;
let noCubk: TestServer;
const LIMITS = { 'download-minWait': 5, 'download-maxReqs': 3 } as const;
const dbs: TempDb[] = [];

beforeAll(async () => {
  h = await hierarchy();
  eca = await issue('eca', h, 'eca');
  otherRa = await issue('ra', h, 'ra-other');
  const ra = await tempSqlite('ra');
  const ecaDb = await tempSqlite('eca');
  const la1Db = await tempSqlite('la1');
  const la2Db = await tempSqlite('la2');
  dbs.push(ra, ecaDb, la1Db, la2Db);
  raDb = ra.db;

  registration = new RegistrationStore(raDb, { clock });
  await registration.migrate();
  const ecaStore = new EcaStore(ecaDb.db);
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
  pseudonyms = new PseudonymStore(raDb);
  await pseudonyms.migrate();
  const requests = new AuthorizationStore(raDb);
  await requests.migrate();
  const la1 = await laService(h, 1, la1Db.db);
  const la2 = await laService(h, 2, la2Db.db);
  service = new PseudonymService({
    store: pseudonyms,
    la1,
    la2,
    aca: acaService(h, [la1, la2], clock),
    acaCertificate: h.aca.cert,
    raCertificate: h.ra.cert,
    raSigner: h.ra.key.signer,
    iPeriod: iPeriodParamsOf(h.policy),
    policy: h.policy,
    clock,
    random: seededRandom(7),
  });
  worker = authorizationWorker({ jobs, service, registry: new InProcessDeviceRegistry(registration, { actor: 'ra' }), worker: { heartbeatMs: 0 } });

  const deps: AuthorizationDeps = {
    raCertificate: h.ra.cert,
    raSigner: h.ra.key.signer,
    raDecryption: { privateKey: h.ra.enc!.d },
    trustAnchors: [h.root.cert],
    caCertificates: [eca.cert, h.ica.cert],
    ecaCertificates: [eca.cert],
    devices: registrationEnrollmentLookup(registration),
    jobs,
    requests,
    pseudonyms,
    acaCertificate: h.aca.cert,
    policy: h.policy,
    clock,
  };
  srv = await startTestServer((server) => server.registerComponent({ name: 'ra', register: registerAuthorization, deps }));
  const tight: AuthorizationDeps = { ...deps, policy: { ...h.policy, ...LIMITS } };
  limited = await startTestServer((server) => server.registerComponent({ name: 'ra', register: registerAuthorization, deps: tight }));
  // The same RA in front of an ACA whose certificate lacks flags usesCubk.
  const { flags: _usesCubk, ...tbsNoFlags } = h.aca.cert.toBeSigned;
  const noCubkDeps: AuthorizationDeps = { ...deps, acaCertificate: { ...h.aca.cert, toBeSigned: tbsNoFlags } };
  noCubk = await startTestServer((server) => server.registerComponent({ name: 'ra', register: registerAuthorization, deps: noCubkDeps }));
}, 120_000);

afterAll(async () => {
  await srv?.close();
  await limited?.close();
  await noCubk?.close();
  for (const d of dbs) await d.close();
});

/** A registered OBU with an enrollment certificate from the ECA (implicit, PSIDs 32 and 38). */
async function enrolledEe(): Promise<{ deviceId: string; enrollment: EnrollmentCredential }> {
  const canonical = generateKeyPair('nistP256');
  const r = await registration.register({ deviceType: 'obu', key: canonicalKeyFromBytes(canonical.publicKey) }, 'test');
  const { spdu, state } = await buildEnrollmentRequest({ canonicalKey: keyPairSigner(canonical), type: 'implicit', psids: [32, 38], validity: { durationSeconds: 30 * 86_400 }, clock });
  const res = await ecaEngine.handleEnrollmentRequest(spdu);
  if (res.status !== 200) throw new Error(`enrollment refused: ${res.reason}`);
  const e = processEnrollmentResponse(res.body, state, { trustAnchors: [h.root.cert], clock });
  return { deviceId: r.device.deviceId, enrollment: { certificate: e.certificate, signer: e.signer } };
}

function butterfly(variant: ButterflyVariant, type: 'explicit' | 'implicit') {
  return createButterflyRequest({
    variant,
    type,
    tbsCert: { validityPeriod: { start: dateToTime32(NOW), duration: { hours: 168 } }, appPermissions: [{ psid: 32n }, { psid: 38n }] },
    clock,
  });
}

const post = (body: Uint8Array, base = srv.url) =>
  fetch(`${base}${AUTHORIZATION_CERTIFICATE_PATH}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from(body) });
const download = (header: string, filename?: string, extra: Record<string, string> = {}, base = srv.url) =>
  fetch(`${base}${AUTHORIZATION_CERTIFICATE_PATH}${filename === undefined ? '' : `?filename=${encodeURIComponent(filename)}`}`, {
    headers: { 'ieee-1609.2.1-authorization': header, ...extra },
  });
const bytes = async (r: Response) => new Uint8Array(await r.arrayBuffer());

async function snapshot() {
  const out: Record<string, unknown[]> = {};
  for (const t of ['scms_jobs', 'ra_authorization_requests', 'ra_pseudonym_responses', 'ra_linkage_chains', 'ra_devices', 'ra_device_events', 'ra_device_certificates', 'ra_download_requests']) {
    const rows = await raDb.selectFrom(t).selectAll().execute();
    out[t] = rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v])));
  }
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

async function runWorker() {
  while ((await worker.pollOnce()) > 0) await worker.drain();
  await worker.drain();
}

interface Case {
  variant: ButterflyVariant;
  type: 'explicit' | 'implicit';
}

describe.each<Case>([
  { variant: 'original', type: 'explicit' },
  { variant: 'compactUnified', type: 'implicit' },
])('authorization over HTTP: $variant butterfly, $type certificates', ({ variant, type }) => {
  it('POST -> ack; download not ready (503 Retry-After); worker; download zip -> every certificate decrypts and chains', async () => {
    try {
      await fullFlow();
    } finally {
      clock.set(NOW);
    }
  }, 120_000);

  async function fullFlow() {
    const ee = await enrolledEe();
    const { request, secrets } = butterfly(variant, type);
    const { spdu, requestHash } = await buildAuthorizationRequest({ request, enrollment: ee.enrollment, raCertificate: h.ra.cert });

    const before = await jobs.counts(AUTHORIZATION_QUEUE);
    const r = await post(spdu);
    expect(r.status, await r.clone().text()).toBe(200);
    const ack = processAuthorizationAck(await bytes(r), { raCertificate: h.ra.cert, requestHash });
    const i0 = iPeriodOf(iPeriodParamsOf(h.policy), dateToTime32(NOW));
    expect(ack.firstI).toBe(i0);
    expect(ack.nextDlTime).toBeGreaterThan(dateToTime32(NOW));
    expect((await jobs.counts(AUTHORIZATION_QUEUE)).queued).toBe(before.queued + 1);

    const filename = batchFilename(requestHash, ack.firstI!);
    expect(filename).toMatch(/^[0-9a-f]{16}_[0-9a-f]+\.zip$/);
    const header = () => buildDownloadRequest({ filename, enrollment: ee.enrollment, raCertificate: h.ra.cert, clock });

    // Not ready yet.
    const early = await download(await header(), filename);
    expect(early.status).toBe(503);
    expect(Number(early.headers.get('retry-after'))).toBe(ack.nextDlTime - dateToTime32(NOW));
    expect(early.headers.get(ERROR_HEADER)).toBe('503-99');

    await runWorker();
    const job = await jobs.getByKey(AUTHORIZATION_QUEUE, Buffer.from(requestHash).toString('hex'));
    expect(job?.state, job?.lastError ?? '').toBe('done');

    clock.set(NOW.getTime() + h.policy['download-minWait'] * 1000); // the 503 request was counted: download-minWait
    const ok = await download(await header(), filename);
    expect(ok.status, await ok.clone().text()).toBe(200);
    expect(ok.headers.get('content-disposition')).toBe(`attachment; filename=${filename}`);
    const zip = await bytes(ok);
    // Entries (8.2; authorization.ts module comment): `<i hex>_<j hex>` per certificate and `<i hex>.info`.
    const names = Object.keys(unzipSync(zip)).sort();
    expect(names).toContain(`${i0.toString(16)}.info`);
    expect(names.filter((n) => !n.endsWith('.info')).every((n) => new RegExp(`^${i0.toString(16)}_[0-9a-f]+$`).test(n))).toBe(true);
    const batch = await processAuthorizationBatch(zip, { secrets: secrets as ButterflySecrets, requestHash, acaChain: h.acaChain, trustAnchors: [h.root.cert], clock });
    const stored = await pseudonyms.responses(requestHash);
    expect(stored.length).toBeGreaterThan(0);
    expect(batch.certificates.map((c) => `${c.i}/${c.j}`)).toEqual(stored.map((s) => `${s.i}/${s.j}`));
    for (const c of batch.certificates) {
      expect(c.i).toBe(i0);
      expect(c.certificate.type).toBe(type);
      expect(certificateKeyPairMatches(c.certificate, c.privateKey, h.acaChain)).toBe(true);
    }
    expect(batch.info.currentI).toBe(i0);
    const recorded = await registration.certificates(ee.deviceId);
    expect(recorded.filter((c) => c.kind === 'authorization-batch').map((c) => c.hashedId8)).toEqual([Buffer.from(requestHash).toString('hex')]);

    // Resume with Range: the same octets. bytes=0-99 starts the file again (held to download-minWait); bytes=100-
    // continues it at once (a continuation is not held to download-minWait).
    clock.set(NOW.getTime() + 2 * h.policy['download-minWait'] * 1000);
    const part1 = await download(await header(), filename, { range: 'bytes=0-99' });
    expect(part1.status).toBe(206);
    const part2 = await download(await header(), filename, { range: 'bytes=100-' });
    expect(part2.status).toBe(206);
    expect(Buffer.concat([await bytes(part1), await bytes(part2)]).equals(Buffer.from(zip))).toBe(true);

    // Worker handler re-run (a crash after storing): nothing stored twice.
    const rows = (await pseudonyms.allResponses()).length;
    await authorizationJobHandler(service)(job!, {} as never);
    expect((await pseudonyms.allResponses()).length).toBe(rows);
  }
});

describe('worker crash after storing', () => {
  it('the job is retried by the queue; the retry stores nothing twice and the batch downloads', async () => {
    const ee = await enrolledEe();
    const { request, secrets } = butterfly('unified', 'explicit');
    const { spdu, requestHash } = await buildAuthorizationRequest({ request, enrollment: ee.enrollment, raCertificate: h.ra.cert });
    const ack = processAuthorizationAck(await bytes(await post(spdu)), { raCertificate: h.ra.cert, requestHash });
    const key = Buffer.from(requestHash).toString('hex');
    const real = authorizationJobHandler(service);
    const crashing = new Worker({
      jobs,
      queue: AUTHORIZATION_QUEUE,
      heartbeatMs: 0,
      handler: async (job, ctx) => {
        await real(job, ctx);
        throw new Error('crash after storing');
      },
    });
    try {
      while ((await crashing.pollOnce()) > 0) await crashing.drain();
      const failed = await jobs.getByKey(AUTHORIZATION_QUEUE, key);
      expect(failed?.state).toBe('queued');
      expect(failed?.attempts).toBe(1);
      const first = (await pseudonyms.responses(requestHash)).map((r) => `${r.i}/${r.j}/${Buffer.from(r.response).toString('hex')}`);
      expect(first.length).toBeGreaterThan(0);

      clock.set(NOW.getTime() + 2_000); // past the 1 s back-off
      await runWorker();
      expect((await jobs.getByKey(AUTHORIZATION_QUEUE, key))?.state).toBe('done');
      const after = (await pseudonyms.responses(requestHash)).map((r) => `${r.i}/${r.j}/${Buffer.from(r.response).toString('hex')}`);
      expect(after).toEqual(first); // the first run's rows, once each

      const filename = batchFilename(requestHash, ack.firstI!);
      const r = await download(await buildDownloadRequest({ filename, enrollment: ee.enrollment, raCertificate: h.ra.cert, clock }), filename);
      expect(r.status).toBe(200);
      const batch = await processAuthorizationBatch(await bytes(r), { secrets, requestHash, acaChain: h.acaChain, trustAnchors: [h.root.cert], clock });
      expect(batch.certificates).toHaveLength(first.length);
    } finally {
      clock.set(NOW);
    }
  }, 120_000);
});

describe('authorization refusals (standard status and code, queue and tables unchanged)', () => {
  it('replayed request -> 400-60, no second job', async () => {
    const ee = await enrolledEe();
    const { spdu } = await buildAuthorizationRequest({ request: butterfly('unified', 'implicit').request, enrollment: ee.enrollment, raCertificate: h.ra.cert });
    expect((await post(spdu)).status).toBe(200);
    await expectRefused(spdu, 400, 60);
  });

  it('a second request within ra-minWait -> 429-711 with Retry-After; after it -> accepted', async () => {
    const ee = await enrolledEe();
    const first = await buildAuthorizationRequest({ request: butterfly('unified', 'implicit').request, enrollment: ee.enrollment, raCertificate: h.ra.cert });
    expect((await post(first.spdu)).status).toBe(200);
    try {
      clock.set(NOW.getTime() + 10_000);
      const soon = await buildAuthorizationRequest({ request: butterfly('unified', 'implicit').request, enrollment: ee.enrollment, raCertificate: h.ra.cert });
      const before = await snapshot();
      const r = await post(soon.spdu);
      expect(r.status, await r.clone().text()).toBe(429);
      expect(r.headers.get(ERROR_HEADER)).toBe('429-711');
      expect(Number(r.headers.get('retry-after'))).toBe(h.policy['ra-minWait'] - 10);
      expect(await snapshot()).toEqual(before);
      clock.set(NOW.getTime() + (h.policy['ra-minWait'] + 1) * 1000);
      const later = await buildAuthorizationRequest({ request: butterfly('unified', 'implicit').request, enrollment: ee.enrollment, raCertificate: h.ra.cert });
      expect((await post(later.spdu)).status).toBe(200);
    } finally {
      clock.set(NOW);
    }
  });

  it('compact unified butterfly while the ACA certificate lacks flags usesCubk -> 400-32 up front; unified is accepted', async () => {
    const ee = await enrolledEe();
    const { spdu } = await buildAuthorizationRequest({ request: butterfly('compactUnified', 'implicit').request, enrollment: ee.enrollment, raCertificate: h.ra.cert });
    const before = await snapshot();
    const r = await post(spdu, noCubk.url);
    const text = await r.text();
    expect(r.status, text).toBe(400);
    expect(r.headers.get(ERROR_HEADER)).toBe('400-32');
    expect(text).toMatch(/usesCubk/);
    expect(await snapshot()).toEqual(before);
    const unified = await buildAuthorizationRequest({ request: butterfly('unified', 'implicit').request, enrollment: ee.enrollment, raCertificate: h.ra.cert });
    expect((await post(unified.spdu, noCubk.url)).status).toBe(200);
  });

  it('encrypted to another RA -> 400-81', async () => {
    const ee = await enrolledEe();
    const { spdu } = await buildAuthorizationRequest({ request: butterfly('unified', 'implicit').request, enrollment: ee.enrollment, raCertificate: otherRa.cert });
    await expectRefused(spdu, 400, 81);
  });

  it('not encrypted -> 400-10', async () => {
    const ee = await enrolledEe();
    const tbsRequest = scmsPdu({ 'ee-ra': { eeRaCertRequest: butterfly('unified', 'implicit').request } }) as ScopedCertificateRequest;
    const signed = await signCertificateRequest({ tbsRequest, signer: ee.enrollment.signer, signerId: { certificate: ee.enrollment.certificate } });
    await expectRefused(Ieee1609Dot2DataCodec.encode(signed), 400, 10);
  });

  it('tampered signature -> 400-43', async () => {
    const ee = await enrolledEe();
    const tbsRequest = scmsPdu({ 'ee-ra': { eeRaCertRequest: butterfly('unified', 'implicit').request } }) as ScopedCertificateRequest;
    const signed = await signCertificateRequest({ tbsRequest, signer: ee.enrollment.signer, signerId: { certificate: ee.enrollment.certificate } });
    const scr = (signed.content as { signedCertificateRequest: Uint8Array }).signedCertificateRequest.slice();
    scr[scr.length - 1] ^= 0x01; // last octet of the signature's s
    const tampered = encryptData({ plaintext: { ...signed, content: { signedCertificateRequest: scr } }, recipients: [{ kind: 'cert', certificate: h.ra.cert }] });
    await expectRefused(Ieee1609Dot2DataCodec.encode(tampered), 400, 43);
  });

  it('blocked device -> 403-20', async () => {
    const ee = await enrolledEe();
    await registration.block(ee.deviceId, 'stolen', 'operator');
    const { spdu } = await buildAuthorizationRequest({ request: butterfly('unified', 'implicit').request, enrollment: ee.enrollment, raCertificate: h.ra.cert });
    await expectRefused(spdu, 403, 20);
  });

  it('enrollment certificate not issued by a known ECA -> 400-40', async () => {
    // An RA certificate (issued by the ICA, not an ECA) used as if it were an enrollment certificate.
    const { spdu } = await buildAuthorizationRequest({
      request: butterfly('unified', 'implicit').request,
      enrollment: { certificate: otherRa.cert, signer: otherRa.key.signer },
      raCertificate: h.ra.cert,
    });
    await expectRefused(spdu, 400, 40);
  });

  it('PSID outside the enrollment certificate and the OBU pseudonym list -> 400-30', async () => {
    const ee = await enrolledEe();
    const { request } = createButterflyRequest({
      variant: 'unified',
      type: 'implicit',
      tbsCert: { validityPeriod: { start: dateToTime32(NOW), duration: { hours: 168 } }, appPermissions: [{ psid: 32n }, { psid: 39n }] },
      clock,
    });
    const { spdu } = await buildAuthorizationRequest({ request, enrollment: ee.enrollment, raCertificate: h.ra.cert });
    await expectRefused(spdu, 400, 30);
  });

  it('requested start beyond ra-maxPreloadTime -> 400-33; more than ra-maxGenDelay after generationTime -> 400-78; at the limit -> accepted', async () => {
    const ee = await enrolledEe();
    const startingIn = (seconds: number) =>
      createButterflyRequest({
        variant: 'unified',
        type: 'implicit',
        tbsCert: { validityPeriod: { start: dateToTime32(NOW) + seconds, duration: { hours: 168 } }, appPermissions: [{ psid: 32n }, { psid: 38n }] },
        clock,
      }).request;
    const send = async (seconds: number) => (await buildAuthorizationRequest({ request: startingIn(seconds), enrollment: ee.enrollment, raCertificate: h.ra.cert })).spdu;
    await expectRefused(await send(h.policy['ra-maxPreloadTime'] + 3600), 400, 33);
    await expectRefused(await send(h.policy['ra-maxGenDelay'] + 1), 400, 78);
    const r = await post(await send(h.policy['ra-maxGenDelay']));
    expect(r.status, await r.text()).toBe(200);
  });

  it('ra-maxReqs accepted requests of one device in 7 x 24 h, then 429-79 with Retry-After; a week later -> accepted', async () => {
    const ee = await enrolledEe();
    const step = (h.policy['ra-minWait'] + 1) * 1000;
    try {
      for (let k = 0; k < h.policy['ra-maxReqs']; k++) {
        clock.set(NOW.getTime() + k * step);
        const { spdu } = await buildAuthorizationRequest({ request: butterfly('unified', 'implicit').request, enrollment: ee.enrollment, raCertificate: h.ra.cert });
        const r = await post(spdu);
        expect(r.status, `request ${k + 1}: ${await r.text()}`).toBe(200);
      }
      clock.set(NOW.getTime() + h.policy['ra-maxReqs'] * step);
      const over = await buildAuthorizationRequest({ request: butterfly('unified', 'implicit').request, enrollment: ee.enrollment, raCertificate: h.ra.cert });
      const before = await snapshot();
      const r = await post(over.spdu);
      expect(r.status, await r.clone().text()).toBe(429);
      expect(r.headers.get(ERROR_HEADER)).toBe('429-79');
      // Retry-After: until the first of the counted requests (at NOW) leaves the 7 x 24 h window.
      expect(Number(r.headers.get('retry-after'))).toBe(7 * 86_400 - h.policy['ra-maxReqs'] * (step / 1000) + 1);
      expect(await snapshot()).toEqual(before);
      clock.set(NOW.getTime() + 7 * 86_400_000 + 60_000);
      const later = await buildAuthorizationRequest({ request: butterfly('unified', 'implicit').request, enrollment: ee.enrollment, raCertificate: h.ra.cert });
      const ok = await post(later.spdu);
      expect(ok.status, await ok.text()).toBe(200);
    } finally {
      clock.set(NOW);
    }
  });

  it('generationTime in the future -> 400-50; older than ra-maxAge -> 400-77', async () => {
    const ee = await enrolledEe();
    try {
      clock.set(NOW.getTime() + 3600_000);
      const future = await buildAuthorizationRequest({ request: butterfly('unified', 'implicit').request, enrollment: ee.enrollment, raCertificate: h.ra.cert });
      clock.set(NOW.getTime() - 3600_000);
      const old = await buildAuthorizationRequest({ request: butterfly('unified', 'implicit').request, enrollment: ee.enrollment, raCertificate: h.ra.cert });
      clock.set(NOW);
      await expectRefused(future.spdu, 400, 50);
      await expectRefused(old.spdu, 400, 77);
    } finally {
      clock.set(NOW);
    }
  });

  it('expired enrollment certificate -> 400-40', async () => {
    const ee = await enrolledEe(); // valid 30 days
    try {
      clock.set(NOW.getTime() + 31 * 86_400_000);
      const { spdu } = await buildAuthorizationRequest({ request: butterfly('unified', 'implicit').request, enrollment: ee.enrollment, raCertificate: h.ra.cert });
      await expectRefused(spdu, 400, 40);
    } finally {
      clock.set(NOW);
    }
  });

  it('downloads: unknown file -> 404, filename parameter mismatch -> 400, another EE\'s file -> 404', async () => {
    const a = await enrolledEe();
    const b = await enrolledEe();
    const { spdu, requestHash } = await buildAuthorizationRequest({ request: butterfly('unified', 'implicit').request, enrollment: a.enrollment, raCertificate: h.ra.cert });
    const ack = processAuthorizationAck(await bytes(await post(spdu)), { raCertificate: h.ra.cert, requestHash });
    const filename = batchFilename(requestHash, ack.firstI!);

    const before = await snapshot();
    const unknown = await download(await buildDownloadRequest({ filename: '0123456789abcdef_1.zip', enrollment: a.enrollment, raCertificate: h.ra.cert, clock }));
    expect(unknown.status).toBe(404);
    const mismatch = await download(await buildDownloadRequest({ filename, enrollment: a.enrollment, raCertificate: h.ra.cert, clock }), '0123456789abcdef_1.zip');
    expect(mismatch.status).toBe(400);
    expect(mismatch.headers.get(ERROR_HEADER)).toBe('400-60');
    const foreign = await download(await buildDownloadRequest({ filename, enrollment: b.enrollment, raCertificate: h.ra.cert, clock }), filename);
    expect(foreign.status).toBe(404);
    const missing = await fetch(`${srv.url}${AUTHORIZATION_CERTIFICATE_PATH}`);
    expect(missing.status).toBe(400);
    // None of these is a download of the EE's own file: not counted (ra_download_requests unchanged).
    expect(await snapshot()).toEqual(before);
  });
});

describe('download limits (download-maxAge 400-74, download-maxReqs 429-75, download-minWait 429-76; refusals store nothing)', () => {
  /** An EE with a completed batch: its file name and a download-header builder (at the clock's current time). */
  async function readyBatch() {
    const ee = await enrolledEe();
    const { spdu, requestHash } = await buildAuthorizationRequest({ request: butterfly('unified', 'implicit').request, enrollment: ee.enrollment, raCertificate: h.ra.cert });
    const ack = processAuthorizationAck(await bytes(await post(spdu)), { raCertificate: h.ra.cert, requestHash });
    await runWorker();
    const filename = batchFilename(requestHash, ack.firstI!);
    const header = () => buildDownloadRequest({ filename, enrollment: ee.enrollment, raCertificate: h.ra.cert, clock });
    return { ee, ack, filename, header, requestHash };
  }
  const at = (seconds: number) => clock.set(NOW.getTime() + seconds * 1000);
  const counted = async (deviceId: string) => (await raDb.selectFrom('ra_download_requests').selectAll().where('device_id', '=', deviceId).execute()).length;

  async function expectLimited(r: Response, status: number, code: number, retryAfter?: number) {
    const text = await r.text();
    expect(r.status, text).toBe(status);
    expect(r.headers.get(ERROR_HEADER), text).toBe(`${status}-${code}`);
    if (retryAfter !== undefined) expect(Number(r.headers.get('retry-after'))).toBe(retryAfter);
  }

  it('download-maxAge: a download request older than download-maxAge -> 400-74', async () => {
    try {
      const b = await readyBatch();
      at(-(h.policy['download-maxAge'] + 10));
      const old = await b.header();
      at(0);
      const before = await snapshot();
      await expectLimited(await download(old, b.filename, {}, limited.url), 400, 74);
      expect(await snapshot()).toEqual(before);
    } finally {
      at(0);
    }
  });

  it('download-minWait: 429-76 with Retry-After; a Range continuation of the same file is served at once; after the wait -> 200', async () => {
    try {
      const b = await readyBatch();
      at(100);
      const ok = await download(await b.header(), b.filename, {}, limited.url);
      expect(ok.status, await ok.clone().text()).toBe(200);
      const zip = Buffer.from(await bytes(ok));
      expect(await counted(b.ee.deviceId)).toBe(1);

      at(102);
      let before = await snapshot();
      await expectLimited(await download(await b.header(), b.filename, {}, limited.url), 429, 76, LIMITS['download-minWait'] - 2);
      // bytes=0-99 starts the file again: an ordinary download, held to download-minWait.
      await expectLimited(await download(await b.header(), b.filename, { range: 'bytes=0-99' }, limited.url), 429, 76, LIMITS['download-minWait'] - 2);
      expect(await snapshot()).toEqual(before);

      // A continuation (first byte > 0) of the file last downloaded: served, and counted.
      const rest = await download(await b.header(), b.filename, { range: 'bytes=100-' }, limited.url);
      expect(rest.status).toBe(206);
      expect(Buffer.from(await bytes(rest)).equals(zip.subarray(100))).toBe(true);
      expect(await counted(b.ee.deviceId)).toBe(2);
      // ... but not a continuation of another file name.
      const other = `${Buffer.from(b.requestHash).toString('hex')}_${(b.ack.firstI! + 1).toString(16)}.zip`;
      before = await snapshot();
      const foreignRange = await download(
        await buildDownloadRequest({ filename: other, enrollment: b.ee.enrollment, raCertificate: h.ra.cert, clock }),
        other,
        { range: 'bytes=100-' },
        limited.url,
      );
      expect(foreignRange.status).toBe(404); // i outside the batch: not a file, not counted
      expect(await snapshot()).toEqual(before);

      at(102 + LIMITS['download-minWait']);
      expect((await download(await b.header(), b.filename, {}, limited.url)).status).toBe(200);
      expect(await counted(b.ee.deviceId)).toBe(3);
    } finally {
      at(0);
    }
  });

  it('download-maxReqs: the 4th download in 7 x 24 h -> 429-75 with Retry-After; a week later -> 200', async () => {
    try {
      const b = await readyBatch();
      const step = LIMITS['download-minWait'];
      for (let k = 0; k < LIMITS['download-maxReqs']; k++) {
        at(200 + k * step);
        const r = await download(await b.header(), b.filename, {}, limited.url);
        expect(r.status, await r.text()).toBe(200);
      }
      at(200 + LIMITS['download-maxReqs'] * step);
      const before = await snapshot();
      // The oldest counted request (generationTime NOW + 200) leaves the window 7 x 24 h later.
      await expectLimited(await download(await b.header(), b.filename, {}, limited.url), 429, 75, 7 * 86_400 - LIMITS['download-maxReqs'] * step + 1);
      expect(await snapshot()).toEqual(before);
      // The default policy (download-maxReqs 1000) on the other server counts the same rows and serves it.
      expect((await download(await b.header(), b.filename)).status).toBe(200);

      // Counted now: generationTimes NOW + 200, 205, 210, 215. The window slides on generationTime: just after the
      // first leaves it three are still in it; once the second has left too, the download is served.
      at(200 + 7 * 86_400 + 1);
      await expectLimited(await download(await b.header(), b.filename, {}, limited.url), 429, 75, 205 - 201 + 1);
      at(205 + 7 * 86_400 + 1);
      expect((await download(await b.header(), b.filename, {}, limited.url)).status).toBe(200);
    } finally {
      at(0);
    }
  });

  it('not ready past nextDlTime: 503 with Retry-After of at least download-minWait (the 503 request is counted)', async () => {
    try {
      const ee = await enrolledEe();
      const { spdu, requestHash } = await buildAuthorizationRequest({ request: butterfly('unified', 'implicit').request, enrollment: ee.enrollment, raCertificate: h.ra.cert });
      const ack = processAuthorizationAck(await bytes(await post(spdu)), { raCertificate: h.ra.cert, requestHash });
      const filename = batchFilename(requestHash, ack.firstI!);
      clock.set(time32ToDate(ack.nextDlTime + 30)); // the job is late
      const r = await download(await buildDownloadRequest({ filename, enrollment: ee.enrollment, raCertificate: h.ra.cert, clock }), filename, {}, limited.url);
      await expectLimited(r, 503, 99, LIMITS['download-minWait']);
      expect(await counted(ee.deviceId)).toBe(1);
      await runWorker(); // leave no queued job behind for the other tests
    } finally {
      at(0);
    }
  });
});
