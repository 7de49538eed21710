// The ECA's factory path (eca/factory.ts) and the RA's many-device records (ra/registration-batch.ts), on SQLite
// files: issued certificates, records equal in shape to an online enrollment's, replay, refusals that record nothing.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EeEcaCertRequest as EeEcaCertRequestCodec } from '../../../src/codec/gen/Ieee1609Dot2Dot1EcaEeInterface.js';
import type { EeEcaCertRequest } from '../../../src/codec/index.js';
import { toHex } from '../../../src/crypto/bytes.js';
import { sha256 } from '../../../src/crypto/hash.js';
import { Eca, EcaLimitCode } from '../../../src/engine/eca/eca.js';
import { EcaFactory } from '../../../src/engine/eca/factory.js';
import { EcaStore } from '../../../src/engine/eca/store.js';
import { buildEnrollmentRequest } from '../../../src/engine/ee/enroll.js';
import { canonicalIdOf, compressedPublicKey, generateKeyPair, keyPairSigner, type EeKeyPair } from '../../../src/engine/ee/keys.js';
import { Ieee1609Dot2Dot1ErrorCode as Code } from '../../../src/engine/http/errors.js';
import { defaultGlobalPolicy, type GlobalPolicy } from '../../../src/engine/policy/index.js';
import { openRawSqlite } from '../../../src/engine/provision/state.js';
import { RegistrationBatch } from '../../../src/engine/ra/registration-batch.js';
import { InProcessDeviceRegistry } from '../../../src/engine/ra/registration-registry.js';
import { RegistrationStore } from '../../../src/engine/ra/registration-store.js';
import { canonicalKeyFromBytes, type RegisteredDevice } from '../../../src/engine/ra/registration.js';
import { openDatabase } from '../../../src/engine/store/index.js';
import { buildTbsCertificate, certificateKeyPairMatches, encodeCertificate } from '../../../src/security/certificate.js';
import { verifyCertificateChain } from '../../../src/security/chain.js';
import { dateToTime32, ManualClock } from '../../../src/security/time.js';
import { buildHierarchy, START, type Hierarchy } from './helpers.js';

let dir: string;
let clock: ManualClock;
let policy: GlobalPolicy;
let h: Hierarchy;
let raDb: Kysely<any>;
let ecaDb: Kysely<any>;
let raws: BetterSqlite3.Database[];
let ra: RegistrationStore;
let ecaStore: EcaStore;
let eca: Eca;
let batch: RegistrationBatch;
let factory: EcaFactory;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'scms-eca-factory-'));
  clock = new ManualClock(START);
  policy = defaultGlobalPolicy({ policyId: 'test', issueTime: '2026-01-01T00:00:00Z', regions: [840, 124], iPeriodEpoch: '2026-01-05T00:00:00Z' });
  h = await buildHierarchy(policy, clock.now(), [840]);
  raDb = await openDatabase<any>(join(dir, 'ra.db'));
  ecaDb = await openDatabase<any>(join(dir, 'eca.db'));
  ra = new RegistrationStore(raDb, { clock });
  await ra.migrate();
  ecaStore = new EcaStore(ecaDb);
  await ecaStore.migrate();
  const identity = { certificate: h.eca, chain: [h.ica, h.root], signer: keyPairSigner(h.ecaKey), privateScalar: h.ecaKey.privateKey };
  eca = new Eca({ eca: identity, registry: new InProcessDeviceRegistry(ra, { actor: 'eca' }), policy, clock, store: ecaStore });
  raws = [openRawSqlite(join(dir, 'ra.db')), openRawSqlite(join(dir, 'eca.db'))];
  batch = new RegistrationBatch(raws[0]!, clock);
  factory = new EcaFactory({ eca, identity, db: raws[1]!, registry: { markEnrolledMany: (items) => batch.markEnrolledMany(items, 'eca') }, policy, clock });
}, 60_000);

afterAll(async () => {
  for (const r of raws ?? []) r.close();
  await raDb?.destroy();
  await ecaDb?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

/** The factory request: COER EeEcaCertRequest (explicit, canonicalId). */
function request(o: { canonical: EeKeyPair; enrollment: EeKeyPair; psids?: number[]; region?: number[]; canonicalId?: string }): Uint8Array {
  const tbs = buildTbsCertificate({
    id: 'none',
    validity: { start: clock.now(), durationSeconds: 3600 * 24 * 365 },
    region: { countries: o.region ?? [840] },
    certRequestPermissions: [{ psids: (o.psids ?? [32, 38]).map((p) => BigInt(p)), eeType: { app: true, enrol: true } }],
    verifyKey: { curve: 'nistP256', publicKey: compressedPublicKey('nistP256', o.enrollment.publicKey) },
  });
  const req: EeEcaCertRequest = {
    version: 2,
    generationTime: dateToTime32(clock.now()),
    type: 'explicit',
    tbsCert: tbs as EeEcaCertRequest['tbsCert'],
    canonicalId: o.canonicalId ?? canonicalIdOf('nistP256', o.canonical.publicKey),
  };
  return EeEcaCertRequestCodec.encode(req);
}

function registerMany(n: number, region?: number[]): Array<{ device: RegisteredDevice; canonical: EeKeyPair; enrollment: EeKeyPair }> {
  const keys = Array.from({ length: n }, () => ({ canonical: generateKeyPair('nistP256'), enrollment: generateKeyPair('nistP256') }));
  const r = batch.registerMany(
    keys.map((k) => ({ deviceType: 'obu', key: canonicalKeyFromBytes(k.canonical.publicKey), ...(region ? { region } : {}) })),
    'provision',
  );
  expect(r.every((x) => x.created)).toBe(true);
  return keys.map((k, i) => ({ ...k, device: r[i]!.device }));
}

const rowCounts = async () => ({ ...(await ecaStore.counts()), raCertificates: raws[0]!.prepare('select count(*) as n from ra_device_certificates').get() as { n: number } });

describe('RegistrationBatch', () => {
  it('registers as RegistrationStore.register does (same rows), idempotently; records certificates once', async () => {
    const [a] = registerMany(1);
    const one = generateKeyPair('nistP256');
    const viaStore = await ra.register({ deviceType: 'obu', key: canonicalKeyFromBytes(one.publicKey) }, 'provision');
    const shape = async (id: string) => {
      const d = (await ra.get(id))!;
      return { state: d.state, deviceType: d.deviceType, region: d.region, events: (await ra.events(id)).map((e) => [e.seq, e.kind, e.actor, Object.keys(e.details).sort()]) };
    };
    expect(await shape(a!.device.deviceId)).toEqual(await shape(viaStore.device.deviceId));
    // the same key again: the existing device
    const again = batch.registerMany([{ deviceType: 'obu', key: canonicalKeyFromBytes(a!.canonical.publicKey) }], 'provision');
    expect(again[0]).toMatchObject({ created: false, device: { deviceId: a!.device.deviceId } });
    const cert = { kind: 'authorization-batch', hashedId8: '0011223344556677', issuer: 'ra' };
    batch.recordCertificateMany([{ deviceId: a!.device.deviceId, certificate: cert }], 'ra');
    batch.recordCertificateMany([{ deviceId: a!.device.deviceId, certificate: cert }], 'ra');
    expect((await ra.certificates(a!.device.deviceId)).map((c) => c.hashedId8)).toEqual(['0011223344556677']);
    expect((await ra.events(a!.device.deviceId)).map((e) => `${e.seq}:${e.kind}/${e.actor}`)).toEqual(['1:registered/provision', '2:certificate/ra']);
    expect(() => batch.recordCertificateMany([{ deviceId: 'no-such-device', certificate: cert }], 'ra')).toThrow();
  });
});

describe('EcaFactory', () => {
  it('issues explicit enrollment certificates for the requested keys, recorded as an online enrollment is', async () => {
    const devices = registerMany(3);
    const results = await factory.enroll(devices.map((d) => ({ device: d.device, request: request(d) })));
    for (const [n, r] of results.entries()) {
      expect(r.ok).toBe(true);
      if (!r.ok) continue;
      const d = devices[n]!;
      expect(toHex(encodeCertificate(r.certificate))).toBe(toHex(r.bytes));
      expect(verifyCertificateChain([r.certificate, h.eca, h.ica, h.root], { trustAnchors: [h.root], clock }).ok).toBe(true);
      expect(certificateKeyPairMatches(r.certificate, d.enrollment.privateKey, [h.eca, h.ica, h.root])).toBe(true);
      expect(r.requestHash).toBe(toHex(sha256(request(d)).slice(-8))); // HashedId8 of the COER request (same clock: same octets)
      expect((await ra.get(d.device.deviceId))!.state).toBe('enrolled');
    }

    // an online enrollment of another device, for comparison of the records
    const online = generateKeyPair('nistP256');
    const reg = await ra.register({ deviceType: 'obu', key: canonicalKeyFromBytes(online.publicKey) }, 'provision');
    const built = await buildEnrollmentRequest({ canonicalKey: keyPairSigner(online), type: 'explicit', psids: [32n, 38n], region: [840], validity: { durationSeconds: 3600 * 24 * 365 }, clock });
    expect((await eca.handleEnrollmentRequest(built.spdu)).status).toBe(200);
    const records = async (deviceId: string) => ({
      events: (await ra.events(deviceId)).map((e) => [e.kind, e.actor, Object.keys(e.details).sort()]),
      certificates: (await ra.certificates(deviceId)).map((c) => [c.kind, c.issuer, c.validFrom !== null, c.validUntil !== null]),
      eca: (await ecaStore.certificatesOf(deviceId)).map((c) => [c.type, c.requestHash.length, c.canonicalId]),
    });
    const factoryRecords = await records(devices[0]!.device.deviceId);
    const onlineRecords = await records(reg.device.deviceId);
    expect(factoryRecords.events).toEqual(onlineRecords.events);
    expect(factoryRecords.certificates).toEqual(onlineRecords.certificates);
    expect(factoryRecords.eca.map((x) => x.slice(0, 2))).toEqual(onlineRecords.eca.map((x) => x.slice(0, 2)));
  });

  it('the same request again returns the recorded certificate and records nothing more', async () => {
    const [d] = registerMany(1);
    const req = request(d!);
    const first = await factory.enroll([{ device: d!.device, request: req }]);
    const before = await rowCounts();
    const again = await factory.enroll([{ device: d!.device, request: req }]);
    expect(first[0]!.ok && again[0]!.ok).toBe(true);
    if (first[0]!.ok && again[0]!.ok) {
      expect(again[0]!.replayed).toBe(true);
      expect(toHex(again[0]!.bytes)).toBe(toHex(first[0]!.bytes));
      expect(again[0]!.requestHash).toBe(toHex(sha256(req).slice(-8)));
    }
    expect(await rowCounts()).toEqual(before);
    // another device presenting that request is refused
    const [other] = registerMany(1);
    const stolen = await factory.enroll([{ device: other!.device, request: req }]);
    expect(stolen[0]).toMatchObject({ ok: false, status: 400, code: Code.invalidContent });
  });

  it('refuses, recording nothing: canonicalId of another device, PSID or region outside the policy / ECA, blocked device, eca-minWait', async () => {
    const [a, b, c, blocked] = registerMany(4);
    await ra.block(blocked!.device.deviceId, 'test', 'operator');
    const before = await rowCounts();
    const r = await factory.enroll([
      { device: a!.device, request: request({ ...a!, canonicalId: b!.device.canonicalId }) },
      { device: b!.device, request: request({ ...b!, psids: [32, 135] }) },
      { device: c!.device, request: request({ ...c!, region: [124] }) }, // the ECA is in 840 only
      { device: { ...blocked!.device, state: 'blocked' }, request: request(blocked!) },
    ]);
    expect(r.map((x) => (x.ok ? 'ok' : `${x.status}-${x.code}`))).toEqual([
      `400-${Code.enrollmentCertificateUnknown}`,
      `400-${Code.requestedPermissionsNotAllowed}`,
      `400-${Code.requestedRegionNotAllowed}`,
      `403-${Code.enrollmentCertificateBlocked}`,
    ]);
    expect((r[1] as { reason: string }).reason).toMatch(/psid 135 is not allowed for OBU devices/);
    expect(await rowCounts()).toEqual(before);

    // eca-minWait: a second enrollment of the same device right after the first
    const [d] = registerMany(1);
    expect((await factory.enroll([{ device: d!.device, request: request(d!) }]))[0]!.ok).toBe(true);
    const second = await factory.enroll([{ device: d!.device, request: request({ ...d!, enrollment: generateKeyPair('nistP256') }) }]);
    expect(second[0]).toMatchObject({ ok: false, status: 429, code: EcaLimitCode.minWait });
    // and a stale request: eca-maxAge
    const [e] = registerMany(1);
    const stale = request(e!);
    clock.advance((policy['eca-maxAge'] + 10) * 1000);
    expect((await factory.enroll([{ device: e!.device, request: stale }]))[0]).toMatchObject({ ok: false, status: 400, code: EcaLimitCode.maxAge });
  });
});
