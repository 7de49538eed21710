// Successor enrollment across a process crash: the RA's successor worker runs in a child process and reaches the ECA
// (this process) over HTTP; the child is killed with SIGKILL after the ECA has issued and answered, before the job
// completes. A new worker here retries the job once the dead child's lease has run out: the ECA answers the replayed
// request with its stored response (eca.ts, successor replay), so the job completes exactly once with the certificate
// issued the first time, and the EE downloads that certificate. Real servers on 127.0.0.1, SQLite files.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Certificate } from '../../../src/codec/index.js';
import { toHex } from '../../../src/crypto/bytes.js';
import { Eca } from '../../../src/engine/eca/eca.js';
import { EcaStore } from '../../../src/engine/eca/store.js';
import { HttpEcaClient, registerEcaSuccessorRoute } from '../../../src/engine/eca/successor-http.js';
import { buildDownloadRequest, type EnrollmentCredential } from '../../../src/engine/ee/authorization-client.js';
import { buildEnrollmentRequest, processEnrollmentResponse } from '../../../src/engine/ee/enroll.js';
import { generateKeyPair, keyPairSigner } from '../../../src/engine/ee/keys.js';
import { buildSuccessorEnrollmentRequest, processSuccessorAck, processSuccessorResponse, successorDownloadFilename } from '../../../src/engine/ee/successor.js';
import { certificateProfile } from '../../../src/engine/manager/profiles.js';
import { JobQueue } from '../../../src/engine/queue/index.js';
import { registrationEnrollmentLookup } from '../../../src/engine/ra/authorization.js';
import { InProcessDeviceRegistry } from '../../../src/engine/ra/registration-registry.js';
import { RegistrationStore } from '../../../src/engine/ra/registration-store.js';
import { canonicalKeyFromBytes } from '../../../src/engine/ra/registration.js';
import { registerSuccessorEnrollment, SUCCESSOR_ENROLLMENT_PATH, SUCCESSOR_QUEUE, successorWorker, type SuccessorJobResult } from '../../../src/engine/ra/successor.js';
import { buildTbsCertificate, certificateHashedId8, issueExplicitCertificate } from '../../../src/security/certificate.js';
import { ManualClock } from '../../../src/security/time.js';
import { testKey, type TestKey } from '../../security/cert-fixtures.js';
import { hierarchy, START, tempSqlite, type Hierarchy, type TempDb } from '../aca/fixtures.js';
import { startTestServer, type TestServer } from '../http/helpers.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/successor-crash-worker.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const NOW = new Date('2025-03-01T00:00:00Z');
const LEASE = 5000;
const TOKEN = 'successor-crash-test-component-token-01';
const clock = new ManualClock(NOW);

let h: Hierarchy;
let eca: { key: TestKey; cert: Certificate };
let ecaEngine: Eca;
let ecaStore: EcaStore;
let registration: RegistrationStore;
let jobs: JobQueue;
let ra: TempDb;
let raSrv: TestServer;
let ecaSrv: TestServer;
const dbs: TempDb[] = [];

beforeAll(async () => {
  h = await hierarchy();
  const p = certificateProfile('eca', { policy: h.policy });
  const key = testKey('nistP256');
  const tbs = buildTbsCertificate({
    id: { name: 'eca' },
    validity: { start: START, durationSeconds: p.validitySeconds },
    appPermissions: p.appPermissions,
    ...(p.certIssuePermissions ? { certIssuePermissions: p.certIssuePermissions } : {}),
    ...(p.certRequestPermissions ? { certRequestPermissions: p.certRequestPermissions } : {}),
    verifyKey: key.publicKey,
  });
  eca = { key, cert: await issueExplicitCertificate({ tbs, issuer: h.ica.cert, signer: h.ica.key.signer }) };
  ra = await tempSqlite('ra');
  const ecaDb = await tempSqlite('eca');
  dbs.push(ra, ecaDb);
  registration = new RegistrationStore(ra.db, { clock });
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
  jobs = new JobQueue(ra.db, { clock });
  await jobs.migrate();
  const deps = {
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
  raSrv = await startTestServer((server) => server.registerComponent({ name: 'ra', register: registerSuccessorEnrollment, deps }));
  ecaSrv = await startTestServer((server) => server.app.register(async (child) => registerEcaSuccessorRoute(child, { eca: ecaEngine, token: TOKEN })));
}, 120_000);

afterAll(async () => {
  await raSrv?.close();
  await ecaSrv?.close();
  for (const d of dbs) await d.close();
});

/** A registered OBU enrolled two minutes before NOW (eca-minWait has passed by NOW). */
async function enrolledEe(): Promise<{ deviceId: string; enrollment: EnrollmentCredential }> {
  const canonical = generateKeyPair('nistP256');
  const r = await registration.register({ deviceType: 'obu', key: canonicalKeyFromBytes(canonical.publicKey) }, 'test');
  clock.set(NOW.getTime() - 120_000);
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

/** Runs the child worker until the ECA has answered it, then kills it with SIGKILL. */
async function childAnswersThenDies(): Promise<{ status: number; hashedId8: string; jobId: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, `sqlite:${ra.file}`, ecaSrv.url, TOKEN, String(NOW.getTime()), String(LEASE)], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? code)));
  const answered = await new Promise<{ status: number; hashedId8: string; jobId: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the child got no ECA answer in time; stderr: ${err}`)), 60_000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /^answered (\d+) (\S+) (\S+)$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ status: Number(m[1]), hashedId8: m[2]!, jobId: m[3]! });
      }
    });
    void exited.then((how) => {
      clearTimeout(timer);
      reject(new Error(`the child exited (${String(how)}) before the ECA answered; stderr: ${err}`));
    });
  });
  child.kill('SIGKILL');
  expect(await exited).toBe('SIGKILL');
  return answered;
}

describe('RA successor worker killed after the ECA answered', () => {
  it('the job is retried after the lease, completes once with the same certificate; the EE downloads it', async () => {
    const ee = await enrolledEe();
    const { spdu, state } = await buildSuccessorEnrollmentRequest({ current: ee.enrollment, raCertificate: h.ra.cert, type: 'implicit', psids: [32, 38], validity: { durationSeconds: 60 * 86_400 }, clock });
    const post = await fetch(`${raSrv.url}${SUCCESSOR_ENROLLMENT_PATH}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from(spdu) });
    expect(post.status, await post.clone().text()).toBe(200);
    processSuccessorAck(new Uint8Array(await post.arrayBuffer()), { raCertificate: h.ra.cert, requestHash: state.requestHash });
    const key = toHex(state.requestHash);
    const issuedBefore = (await ecaStore.certificatesOf(ee.deviceId)).length;

    const first = await childAnswersThenDies();
    expect(first.status).toBe(200);
    // The ECA issued and recorded; the job is still leased to the dead child, without a result.
    expect((await ecaStore.certificatesOf(ee.deviceId)).map((c) => c.hashedId8)).toContain(first.hashedId8);
    expect((await ecaStore.certificatesOf(ee.deviceId)).length).toBe(issuedBefore + 1);
    const stuck = await jobs.getByKey(SUCCESSOR_QUEUE, key);
    expect(stuck).toMatchObject({ id: first.jobId, state: 'running', attempts: 1 });
    expect(stuck?.result ?? null).toBeNull();

    // A survivor here, once the lease has run out (and long past eca-maxAge of the request).
    clock.set(NOW.getTime() + Math.max(LEASE, (h.policy['eca-maxAge'] + 60) * 1000));
    const survivor = successorWorker({ jobs, eca: new HttpEcaClient({ baseUrl: ecaSrv.url, token: TOKEN }), worker: { heartbeatMs: 0, workerId: 'survivor' } });
    while ((await survivor.pollOnce()) > 0) await survivor.drain();
    await survivor.drain();
    const job = await jobs.getByKey(SUCCESSOR_QUEUE, key);
    expect(job?.state, job?.lastError ?? '').toBe('done');
    expect(job?.attempts).toBe(2);
    expect((job?.result as SuccessorJobResult & { certificate: string }).certificate).toBe(first.hashedId8);
    expect((await ecaStore.certificatesOf(ee.deviceId)).length).toBe(issuedBefore + 1); // nothing issued twice

    const filename = successorDownloadFilename(state.requestHash);
    const r = await fetch(`${raSrv.url}${SUCCESSOR_ENROLLMENT_PATH}?filename=${filename}`, {
      headers: { 'ieee-1609.2.1-authorization': await buildDownloadRequest({ filename, enrollment: ee.enrollment, raCertificate: h.ra.cert, clock }) },
    });
    expect(r.status, await r.clone().text()).toBe(200);
    const next = processSuccessorResponse(new Uint8Array(await r.arrayBuffer()), state, { trustAnchors: [h.root.cert], clock });
    expect(toHex(certificateHashedId8(next.certificate))).toBe(first.hashedId8);
  }, 120_000);
});
