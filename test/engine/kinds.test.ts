// Every certificate kind x form through the RA and the ACA over HTTP (1609.2.1 EeRaCertRequest AdditionalParams
// original | unified | compactUnified | encryptionKey | absent; AcaEeCertResponse{Private,Cubk,Plain}Spdu):
// a real ScmsServer on 127.0.0.1:0, SQLite, the durable queue and its Worker, devices enrolled by the ECA, the
// pipeline fixtures' LAs and ACA (set-up as test/engine/ra/authorization.test.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Kysely } from 'kysely';
import type { Certificate } from '../../src/codec/index.js';
import type { ButterflyVariant } from '../../src/crypto/butterfly.js';
import { Eca } from '../../src/engine/eca/eca.js';
import { EcaStore } from '../../src/engine/eca/store.js';
import { buildAuthorizationRequest, buildDownloadRequest, processAuthorizationAck, type EnrollmentCredential } from '../../src/engine/ee/authorization-client.js';
import { buildEnrollmentRequest, processEnrollmentResponse } from '../../src/engine/ee/enroll.js';
import { generateKeyPair, keyPairSigner } from '../../src/engine/ee/keys.js';
import { createKindRequest, kindDownloadFilename, processKindDownload, type EeCertificateKind, type EeRequestForm } from '../../src/engine/ee/kinds.js';
import { ERROR_HEADER } from '../../src/engine/http/index.js';
import { JobQueue, Worker } from '../../src/engine/queue/index.js';
import { AUTHORIZATION_CERTIFICATE_PATH, AUTHORIZATION_QUEUE, authorizationJobHandler, authorizationWorker, registerAuthorization, registrationEnrollmentLookup, type AuthorizationDeps } from '../../src/engine/ra/authorization.js';
import { AuthorizationStore } from '../../src/engine/ra/authorization-store.js';
import { classifyRequest } from '../../src/engine/ra/kinds.js';
import { PseudonymService, PseudonymStore } from '../../src/engine/ra/pseudonym.js';
import { InProcessDeviceRegistry } from '../../src/engine/ra/registration-registry.js';
import { RegistrationStore } from '../../src/engine/ra/registration-store.js';
import { canonicalKeyFromBytes } from '../../src/engine/ra/registration.js';
import { verifyCertificateChain } from '../../src/security/chain.js';
import { buildTbsCertificate, certificateKeyPairMatches, issueExplicitCertificate } from '../../src/security/certificate.js';
import { certificateProfile } from '../../src/engine/manager/profiles.js';
import { testKey } from '../security/cert-fixtures.js';
import { readUnsecuredSpdu } from '../../src/security/scms-pdu.js';
import { dateToTime32, iPeriodOf, jValues, ManualClock } from '../../src/security/time.js';
import { acaService, hierarchy, iPeriodParamsOf, laService, pseudonymService, START, tempSqlite, type Hierarchy, type TempDb } from './aca/fixtures.js';
import { startTestServer, type TestServer } from './http/helpers.js';

const NOW = new Date('2025-03-01T00:00:00Z');
const clock = new ManualClock(NOW);

let h: Hierarchy;
let ecaCert: Certificate;
let ecaEngine: Eca;
let registration: RegistrationStore;
let jobs: JobQueue;
let pseudonyms: PseudonymStore;
let worker: Worker;
let service: PseudonymService;
let raDb: Kysely<any>;
let srv: TestServer;
const dbs: TempDb[] = [];

beforeAll(async () => {
  h = await hierarchy();
  // OBU identification certificates allowed for PSID 32 (the default OBU identification list is empty).
  h.policy.deviceTypes.OBU.identification = [{ psid: 32 }];
  const p = certificateProfile('eca', { policy: h.policy });
  const ecaKey = testKey('nistP256');
  ecaCert = await issueExplicitCertificate({
    tbs: buildTbsCertificate({
      id: { name: 'eca' },
      validity: { start: START, durationSeconds: p.validitySeconds },
      appPermissions: p.appPermissions,
      ...(p.certIssuePermissions ? { certIssuePermissions: p.certIssuePermissions } : {}),
      verifyKey: ecaKey.publicKey,
    }),
    issuer: h.ica.cert,
    signer: h.ica.key.signer,
  });

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
    eca: { certificate: ecaCert, chain: [h.ica.cert, h.root.cert], signer: ecaKey.signer, privateScalar: ecaKey.d },
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
  service = pseudonymService(h, { store: pseudonyms, la1, la2, aca: acaService(h, [la1, la2], clock), clock, seed: 11 });
  worker = authorizationWorker({ jobs, service, registry: new InProcessDeviceRegistry(registration, { actor: 'ra' }), worker: { heartbeatMs: 0 } });
  const deps: AuthorizationDeps = {
    raCertificate: h.ra.cert,
    raSigner: h.ra.key.signer,
    raDecryption: { privateKey: h.ra.enc!.d },
    trustAnchors: [h.root.cert],
    caCertificates: [ecaCert, h.ica.cert],
    ecaCertificates: [ecaCert],
    devices: registrationEnrollmentLookup(registration),
    jobs,
    requests,
    pseudonyms,
    policy: h.policy,
    clock,
  };
  srv = await startTestServer((server) => server.registerComponent({ name: 'ra', register: registerAuthorization, deps }));
}, 120_000);

afterAll(async () => {
  await srv?.close();
  for (const d of dbs) await d.close();
});

type Device = 'obu' | 'rsu';
const PSIDS: Record<Device, number[]> = { obu: [32, 38], rsu: [130, 131] };

/** A registered device with an enrollment certificate from the ECA (implicit, its device type's PSIDs). */
async function enrolled(device: Device): Promise<EnrollmentCredential & { deviceId: string }> {
  const canonical = generateKeyPair('nistP256');
  const reg = await registration.register({ deviceType: device, key: canonicalKeyFromBytes(canonical.publicKey) }, 'test');
  const { spdu, state } = await buildEnrollmentRequest({ canonicalKey: keyPairSigner(canonical), type: 'implicit', psids: PSIDS[device], validity: { durationSeconds: 30 * 86_400 }, clock });
  const res = await ecaEngine.handleEnrollmentRequest(spdu);
  if (res.status !== 200) throw new Error(`enrollment refused: ${res.reason}`);
  const e = processEnrollmentResponse(res.body, state, { trustAnchors: [h.root.cert], clock });
  return { certificate: e.certificate, signer: e.signer, deviceId: reg.device.deviceId };
}

const post = (body: Uint8Array) =>
  fetch(`${srv.url}${AUTHORIZATION_CERTIFICATE_PATH}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from(body) });
const download = async (enrollment: EnrollmentCredential, filename: string) =>
  fetch(`${srv.url}${AUTHORIZATION_CERTIFICATE_PATH}`, {
    headers: { 'ieee-1609.2.1-authorization': await buildDownloadRequest({ filename, enrollment, raCertificate: h.ra.cert, clock }) },
  });
const bytes = async (r: Response) => new Uint8Array(await r.arrayBuffer());

async function snapshot() {
  const out: Record<string, unknown[]> = {};
  for (const t of ['scms_jobs', 'ra_authorization_requests', 'ra_pseudonym_responses', 'ra_linkage_chains', 'ra_device_certificates']) {
    const rows = await raDb.selectFrom(t).selectAll().execute();
    out[t] = rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v])));
  }
  return out;
}

async function runWorker() {
  while ((await worker.pollOnce()) > 0) await worker.drain();
  await worker.drain();
}

const IDENT_VALIDITY = { start: dateToTime32(NOW), duration: { hours: 24 * 90 } };

interface Case {
  device: Device;
  kind: EeCertificateKind;
  form: EeRequestForm;
  variant?: ButterflyVariant;
  type: 'explicit' | 'implicit';
  psids: number[];
  id?: { name: string };
}

const CASES: Case[] = [
  // OBU pseudonym: the three butterfly types, explicit and implicit (compact unified: implicit only).
  ...(['original', 'unified'] as const).flatMap((variant) =>
    (['explicit', 'implicit'] as const).map((type): Case => ({ device: 'obu', kind: 'pseudonym', form: 'butterfly', variant, type, psids: [32, 38] })),
  ),
  { device: 'obu', kind: 'pseudonym', form: 'butterfly', variant: 'compactUnified', type: 'implicit', psids: [32, 38] },
  // OBU identification: butterfly (original explicit, unified implicit), non-butterfly encrypted implicit, plain explicit.
  { device: 'obu', kind: 'identification', form: 'butterfly', variant: 'original', type: 'explicit', psids: [32], id: { name: 'obu-1.example' } },
  { device: 'obu', kind: 'identification', form: 'butterfly', variant: 'unified', type: 'implicit', psids: [32], id: { name: 'obu-2.example' } },
  { device: 'obu', kind: 'identification', form: 'encrypted', type: 'implicit', psids: [32] },
  { device: 'obu', kind: 'identification', form: 'plain', type: 'explicit', psids: [32] },
  // RSU application / identification (RSU PSIDs 130, 131): non-butterfly plain and encrypted, explicit and implicit.
  ...(['plain', 'encrypted'] as const).flatMap((form) =>
    (['explicit', 'implicit'] as const).map((type): Case => ({ device: 'rsu', kind: 'identification', form, type, psids: [130, 131], id: { name: 'rsu-7.example' } })),
  ),
];

describe.each(CASES)('$device $kind, $form $variant $type', (c) => {
  it('POST -> ack -> worker -> download -> certificates whose key pair matches and whose chain verifies', async () => {
    const enrollment = await enrolled(c.device);
    const { request, secrets } = createKindRequest({
      kind: c.kind,
      form: c.form,
      type: c.type,
      ...(c.variant ? { variant: c.variant } : {}),
      ...(c.id ? { id: c.id } : {}),
      tbsCert: {
        validityPeriod: c.kind === 'pseudonym' ? { start: dateToTime32(NOW), duration: { hours: 168 } } : IDENT_VALIDITY,
        appPermissions: c.psids.map((psid) => ({ psid: BigInt(psid) })),
      },
      clock,
    });
    expect(classifyRequest(request, c.device)).toEqual({ kind: c.kind, form: c.form });
    const { spdu, requestHash } = await buildAuthorizationRequest({ request, enrollment, raCertificate: h.ra.cert });
    const r = await post(spdu);
    expect(r.status, await r.clone().text()).toBe(200);
    const ack = processAuthorizationAck(await bytes(r), { raCertificate: h.ra.cert, requestHash });
    const i0 = iPeriodOf(iPeriodParamsOf(h.policy), dateToTime32(NOW));
    expect(ack.firstI).toBe(i0);

    await runWorker();
    const job = await jobs.getByKey(AUTHORIZATION_QUEUE, Buffer.from(requestHash).toString('hex'));
    expect(job?.state, job?.lastError ?? '').toBe('done');

    const filename = kindDownloadFilename(requestHash, c.form, ack.firstI!);
    expect(filename).toMatch(c.form === 'butterfly' ? /^[0-9a-f]{16}_[0-9a-f]+\.zip$/ : /^[0-9a-f]{16}\.zip$/);
    const ok = await download(enrollment, filename);
    expect(ok.status, await ok.clone().text()).toBe(200);
    const got = await processKindDownload(await bytes(ok), { secrets, requestHash, acaChain: h.acaChain, trustAnchors: [h.root.cert], clock });

    const expected = c.kind === 'pseudonym' ? jValues(iPeriodParamsOf(h.policy)).length : 1;
    expect(got.certificates).toHaveLength(expected);
    expect(got.info.currentI).toBe(i0);
    for (const cert of got.certificates) {
      const tbs = cert.certificate.toBeSigned;
      expect(cert.certificate.type).toBe(c.type);
      expect(certificateKeyPairMatches(cert.certificate, cert.privateKey, h.acaChain)).toBe(true);
      const chain = verifyCertificateChain([cert.certificate, ...h.acaChain], { trustAnchors: [h.root.cert], clock });
      expect(chain.ok, JSON.stringify(chain.ok ? [] : chain.errors)).toBe(true);
      expect(tbs.appPermissions?.map((p) => Number(p.psid))).toEqual(c.psids);
      if (c.kind === 'pseudonym') {
        expect((tbs.id as { linkageData: { iCert: number } }).linkageData.iCert).toBe(i0);
      } else {
        expect(tbs.id).toEqual(c.id ?? { none: null });
        expect(tbs.validityPeriod).toEqual(IDENT_VALIDITY);
      }
    }
    // What the RA holds: plain responses carry the certificate in the clear, the others are encrypted to the EE.
    const stored = await pseudonyms.responses(requestHash);
    expect(stored.map((s) => s.kind)).toEqual(Array(expected).fill(c.form === 'plain' ? 'plain' : c.variant === 'compactUnified' ? 'cubk' : 'private'));
    if (c.form === 'plain') {
      const pdu = readUnsecuredSpdu(stored[0]!.response).content as { 'aca-ee': { acaEeCertResponse: { certificate: Certificate } } };
      expect(pdu['aca-ee'].acaEeCertResponse.certificate).toEqual(got.certificates[0]!.certificate);
    } else {
      expect(() => readUnsecuredSpdu(stored[0]!.response)).toThrow();
    }
    // Identification requests ask the LAs for nothing (no linkage chains for the device); pseudonyms do.
    const chains = await raDb.selectFrom('ra_linkage_chains').selectAll().where('chain_key', '=', enrollment.deviceId).execute();
    expect(chains).toHaveLength(c.kind === 'pseudonym' ? 2 : 0);

    // Worker handler re-run (a crash after storing): nothing stored twice, the same responses.
    await authorizationJobHandler(service)(job!, {} as never);
    expect((await pseudonyms.responses(requestHash)).map((s) => Buffer.from(s.response).toString('hex'))).toEqual(stored.map((s) => Buffer.from(s.response).toString('hex')));

    // The other naming for the same request is not a file.
    const other = c.form === 'butterfly' ? `${Buffer.from(requestHash).toString('hex')}.zip` : `${Buffer.from(requestHash).toString('hex')}_${ack.firstI!.toString(16)}.zip`;
    expect((await download(enrollment, other)).status).toBe(404);
  }, 120_000);
});

describe('kind refusals (standard status and code; queue and tables unchanged)', () => {
  async function expectRefused(device: Device, request: Parameters<typeof buildAuthorizationRequest>[0]['request'], status: number, code: number) {
    const enrollment = await enrolled(device);
    const { spdu } = await buildAuthorizationRequest({ request, enrollment, raCertificate: h.ra.cert });
    const before = await snapshot();
    const r = await post(spdu);
    const text = await r.text();
    expect(r.status, text).toBe(status);
    expect(r.headers.get(ERROR_HEADER), text).toBe(`${status}-${code}`);
    expect(await snapshot()).toEqual(before);
  }
  const perms = (psids: number[]) => psids.map((psid) => ({ psid: BigInt(psid) }));
  const week = { start: dateToTime32(NOW), duration: { hours: 168 } };

  it('RSU asking for a pseudonym kind -> 400-32', async () => {
    const { request } = createKindRequest({ kind: 'pseudonym', form: 'butterfly', variant: 'unified', type: 'implicit', tbsCert: { validityPeriod: week, appPermissions: perms([130]) }, clock });
    await expectRefused('rsu', request, 400, 32);
  });

  it('RSU asking for a PSID not allowed for its device type -> 400-30', async () => {
    const { request } = createKindRequest({ kind: 'identification', form: 'plain', type: 'explicit', tbsCert: { validityPeriod: IDENT_VALIDITY, appPermissions: perms([130, 32]) }, clock });
    await expectRefused('rsu', request, 400, 30);
  });

  it('RSU butterfly identification for PSIDs outside ra-butterflyType -> 400-32', async () => {
    const { request } = createKindRequest({
      kind: 'identification',
      form: 'butterfly',
      variant: 'original',
      type: 'explicit',
      id: { name: 'rsu' },
      tbsCert: { validityPeriod: IDENT_VALIDITY, appPermissions: perms([130]) },
      clock,
    });
    await expectRefused('rsu', request, 400, 32);
  });

  it('OBU identification PSID outside the OBU identification list (38) -> 400-30', async () => {
    const { request } = createKindRequest({ kind: 'identification', form: 'encrypted', type: 'implicit', tbsCert: { validityPeriod: IDENT_VALIDITY, appPermissions: perms([38]) }, clock });
    await expectRefused('obu', request, 400, 30);
  });

  it('identification validity beyond identificationValidity -> 400-33', async () => {
    const { request } = createKindRequest({
      kind: 'identification',
      form: 'plain',
      type: 'implicit',
      tbsCert: { validityPeriod: { start: dateToTime32(NOW), duration: { years: 2 } }, appPermissions: perms([130]) },
      clock,
    });
    await expectRefused('rsu', request, 400, 33);
  });

  it('a non-butterfly pseudonym request (LinkageData id, no AdditionalParams) -> 400-32', async () => {
    const { request } = createKindRequest({ kind: 'identification', form: 'plain', type: 'explicit', tbsCert: { validityPeriod: week, appPermissions: perms([32]) }, clock });
    request.tbsCert.id = { linkageData: { iCert: 0, 'linkage-value': new Uint8Array(9) } };
    await expectRefused('obu', request, 400, 32);
  });
});
