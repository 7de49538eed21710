// Successor request limits (ra/successor.ts: eca-minWait / eca-maxReqs up front, successor-store.ts history) on
// SQLite and PostgreSQL through a real ScmsServer on 127.0.0.1: the history rules through the store, and two concurrent
// requests of one device within eca-minWait that both passed the up-front check: the writing transaction accepts
// exactly one, the other is refused 429-73, nothing else is stored; an ECA 429 marks the request refused (the job's
// completing transaction) so that a new request is accepted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Kysely } from 'kysely';
import type { Certificate } from '../../../src/codec/index.js';
import { Eca } from '../../../src/engine/eca/eca.js';
import { EcaStore } from '../../../src/engine/eca/store.js';
import { inProcessEcaClient } from '../../../src/engine/eca/successor.js';
import type { EnrollmentCredential } from '../../../src/engine/ee/authorization-client.js';
import { buildEnrollmentRequest, processEnrollmentResponse } from '../../../src/engine/ee/enroll.js';
import { generateKeyPair, keyPairSigner } from '../../../src/engine/ee/keys.js';
import { buildSuccessorEnrollmentRequest } from '../../../src/engine/ee/successor.js';
import { ERROR_HEADER } from '../../../src/engine/http/index.js';
import { certificateProfile } from '../../../src/engine/manager/profiles.js';
import { JobQueue } from '../../../src/engine/queue/index.js';
import { registrationEnrollmentLookup } from '../../../src/engine/ra/authorization.js';
import { InProcessDeviceRegistry } from '../../../src/engine/ra/registration-registry.js';
import { RegistrationStore } from '../../../src/engine/ra/registration-store.js';
import { canonicalKeyFromBytes } from '../../../src/engine/ra/registration.js';
import { SuccessorRequestStore } from '../../../src/engine/ra/successor-store.js';
import { registerSuccessorEnrollment, SUCCESSOR_ENROLLMENT_PATH, SUCCESSOR_QUEUE, successorWorker } from '../../../src/engine/ra/successor.js';
import { openDatabase } from '../../../src/engine/store/index.js';
import { buildTbsCertificate, issueExplicitCertificate } from '../../../src/security/certificate.js';
import { dateToTime32, ManualClock } from '../../../src/security/time.js';
import { testKey } from '../../security/cert-fixtures.js';
import { hierarchy, START, type Hierarchy } from '../aca/fixtures.js';
import { startTestServer, type TestServer } from '../http/helpers.js';
import { testDatabase } from '../store/helpers.js';

const NOW = new Date('2025-03-01T00:00:00Z');
const WEEK = 7 * 86_400;

/**
 * The RA's successor history with a gate: while armed, the first two reads outside a transaction (the up-front
 * checks of two requests) wait for each other, so both requests reach the writing transaction on the same history.
 */
class GatedStore extends SuccessorRequestStore {
  armed = false;
  #waiting: Array<() => void> = [];
  override async history(deviceId: string, since: number, tx?: Kysely<any>) {
    const r = await super.history(deviceId, since, tx);
    if (this.armed && tx === undefined) {
      await new Promise<void>((release) => {
        this.#waiting.push(release);
        if (this.#waiting.length === 2) {
          this.armed = false;
          for (const w of this.#waiting.splice(0)) w();
        }
      });
    }
    return r;
  }
}

let h: Hierarchy;
let ecaCert: Certificate;
let ecaKey: ReturnType<typeof testKey>;

beforeAll(async () => {
  h = await hierarchy();
  const p = certificateProfile('eca', { policy: h.policy });
  ecaKey = testKey('nistP256');
  const tbs = buildTbsCertificate({
    id: { name: 'eca' },
    validity: { start: START, durationSeconds: p.validitySeconds },
    appPermissions: p.appPermissions,
    ...(p.certIssuePermissions ? { certIssuePermissions: p.certIssuePermissions } : {}),
    verifyKey: ecaKey.publicKey,
  });
  ecaCert = await issueExplicitCertificate({ tbs, issuer: h.ica.cert, signer: h.ica.key.signer });
}, 120_000);

describe.each(['sqlite', 'postgres'] as const)('successor request limits on %s', (dialect) => {
  const clock = new ManualClock(NOW);
  let db: Kysely<any>;
  let cleanup: () => Promise<void>;
  let registration: RegistrationStore;
  let eca: Eca;
  let jobs: JobQueue;
  let srv: TestServer;
  let store: GatedStore;

  beforeAll(async () => {
    const t = await testDatabase(dialect, 'successor_limits');
    cleanup = t.cleanup;
    db = await openDatabase<any>(t.url);
    registration = new RegistrationStore(db, { clock });
    await registration.migrate();
    const ecaStore = new EcaStore(db);
    await ecaStore.migrate();
    eca = new Eca({
      eca: { certificate: ecaCert, chain: [h.ica.cert, h.root.cert], signer: ecaKey.signer, privateScalar: ecaKey.d },
      registry: new InProcessDeviceRegistry(registration, { actor: 'eca' }),
      policy: h.policy,
      clock,
      store: ecaStore,
    });
    jobs = new JobQueue(db, { clock });
    await jobs.migrate();
    store = new GatedStore(db);
    await store.migrate();
    srv = await startTestServer((server) =>
      server.registerComponent({
        name: 'ra',
        register: registerSuccessorEnrollment,
        deps: {
          raCertificate: h.ra.cert,
          raSigner: h.ra.key.signer,
          raDecryption: { privateKey: h.ra.enc!.d },
          trustAnchors: [h.root.cert],
          caCertificates: [ecaCert, h.ica.cert],
          ecaCertificates: [ecaCert],
          devices: registrationEnrollmentLookup(registration),
          jobs,
          requests: store,
          policy: h.policy,
          clock,
        },
      }),
    );
  }, 120_000);

  afterAll(async () => {
    await srv?.close();
    await db?.destroy();
    await cleanup?.();
  });

  /** A registered OBU enrolled `agoMs` before NOW (default two minutes). */
  async function enrolledEe(agoMs = 120_000): Promise<{ deviceId: string; enrollment: EnrollmentCredential }> {
    const canonical = generateKeyPair('nistP256');
    const r = await registration.register({ deviceType: 'obu', key: canonicalKeyFromBytes(canonical.publicKey) }, 'test');
    clock.set(NOW.getTime() - agoMs);
    try {
      const { spdu, state } = await buildEnrollmentRequest({ canonicalKey: keyPairSigner(canonical), type: 'implicit', psids: [32], validity: { durationSeconds: 30 * 86_400 }, clock });
      const res = await eca.handleEnrollmentRequest(spdu);
      if (res.status !== 200) throw new Error(`enrollment refused: ${res.reason}`);
      const e = processEnrollmentResponse(res.body, state, { trustAnchors: [h.root.cert], clock });
      return { deviceId: r.device.deviceId, enrollment: { certificate: e.certificate, signer: e.signer } };
    } finally {
      clock.set(NOW);
    }
  }
  const request = (current: EnrollmentCredential) =>
    buildSuccessorEnrollmentRequest({ current, raCertificate: h.ra.cert, type: 'implicit', psids: [32], validity: { durationSeconds: 60 * 86_400 }, clock });
  const post = (body: Uint8Array) =>
    fetch(`${srv.url}${SUCCESSOR_ENROLLMENT_PATH}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from(body) });

  it('the history counts accepted requests in the 7 x 24 h window, the latest of all, and not the ones the ECA refused', async () => {
    const d = `device-history-${dialect}`;
    const T = 700_000_000;
    await store.record({ requestHash: 'aa00000000000001', deviceId: d, generationTime: T - WEEK - 5, receivedAt: 1 });
    await store.record({ requestHash: 'aa00000000000002', deviceId: d, generationTime: T - 100, receivedAt: 2 });
    await store.record({ requestHash: 'aa00000000000003', deviceId: d, generationTime: T - 50, receivedAt: 3 });
    expect(await store.history(d, T - WEEK)).toEqual({ countSince: 2, oldestSince: T - 100, latestGenerationTime: T - 50 });
    await store.markRefused('aa00000000000003');
    expect(await store.history(d, T - WEEK)).toEqual({ countSince: 1, oldestSince: T - 100, latestGenerationTime: T - 100 });
    expect(await store.history('nobody', T - WEEK)).toEqual({ countSince: 0, oldestSince: undefined, latestGenerationTime: undefined });
  });

  it('an ECA 429 after the ack: the job keeps it and marks the request refused in the same transaction; a new request is accepted and issued', async () => {
    const ee = await enrolledEe(2000); // the ECA's eca-minWait since the initial enrollment has not passed
    const first = await request(ee.enrollment);
    expect((await post(first.spdu)).status).toBe(200);
    const worker = successorWorker({ jobs, eca: inProcessEcaClient(eca), worker: { heartbeatMs: 0 } });
    const run = async () => {
      while ((await worker.pollOnce()) > 0) await worker.drain();
    };
    await run();
    const key = Buffer.from(first.state.requestHash).toString('hex');
    expect((await jobs.getByKey(SUCCESSOR_QUEUE, key))?.result).toMatchObject({ refused: { status: 429, code: 73 } });
    expect(await store.requestsOf(ee.deviceId)).toEqual([{ requestHash: key, generationTime: dateToTime32(NOW), refused: true }]);
    clock.set(NOW.getTime() + h.policy['eca-minWait'] * 1000);
    try {
      const second = await request(ee.enrollment);
      expect((await post(second.spdu)).status).toBe(200);
      await run();
      expect((await jobs.getByKey(SUCCESSOR_QUEUE, Buffer.from(second.state.requestHash).toString('hex')))?.result).toMatchObject({ response: expect.any(String) });
    } finally {
      clock.set(NOW);
    }
  });

  it('two requests of one device at once, within eca-minWait: one accepted, the other 429-73 with Retry-After; one job, one history row', async () => {
    const ee = await enrolledEe();
    const [a, b] = await Promise.all([request(ee.enrollment), request(ee.enrollment)]);
    store.armed = true; // both pass the up-front check; the writing transaction decides
    const rs = await Promise.all([post(a.spdu), post(b.spdu)]);
    const statuses = rs.map((r) => r.status).sort();
    expect(statuses, await Promise.all(rs.map((r) => r.clone().text())).then((t) => t.join(' | '))).toEqual([200, 429]);
    const refused = rs.find((r) => r.status === 429)!;
    expect(refused.headers.get(ERROR_HEADER)).toBe('429-73');
    expect(Number(refused.headers.get('retry-after'))).toBe(h.policy['eca-minWait']);
    const rows = await store.requestsOf(ee.deviceId);
    expect(rows).toEqual([{ requestHash: expect.stringMatching(/^[0-9a-f]{16}$/), generationTime: dateToTime32(NOW), refused: false }]);
    expect(await jobs.getByKey(SUCCESSOR_QUEUE, rows[0]!.requestHash)).toBeDefined();
    const accepted = rs[0]!.status === 200 ? a : b;
    const other = accepted === a ? b : a;
    expect(rows[0]!.requestHash).toBe(Buffer.from(accepted.state.requestHash).toString('hex'));
    expect(await jobs.getByKey(SUCCESSOR_QUEUE, Buffer.from(other.state.requestHash).toString('hex'))).toBeUndefined();
  });
});
