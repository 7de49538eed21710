// CrlService with a manual clock, real SQLite and real LaServices: first CRLs, re-issue before nextCrl and at an
// i-period change (iRev, indexWithinI, evolved seeds), counters across a restart, expired entries leaving the CRL,
// and refused revocations writing nothing.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecuredCrl, type Certificate, type CrlContents, type JMaxGroup } from '../../../src/codec/index.js';
import { toHex } from '../../../src/crypto/bytes.js';
import { linkageSeedAt } from '../../../src/crypto/linkage.js';
import { generateKeyPair, compressedPublicKey } from '../../../src/engine/ee/keys.js';
import { CrlService, type RevocationSeedSource } from '../../../src/engine/crl/service.js';
import { CrlStore } from '../../../src/engine/crl/store.js';
import { LaService, LaStore, laIdOctets } from '../../../src/engine/la/la.js';
import { initTrustDir, openStores } from '../../../src/engine/manager/init.js';
import { loadTrustDir, type TrustDir } from '../../../src/engine/manager/trust-dir.js';
import { parseRegisterDeviceBody } from '../../../src/engine/ra/registration.js';
import { RegistrationStore } from '../../../src/engine/ra/registration-store.js';
import { openDatabase } from '../../../src/engine/store/index.js';
import { verifyCrl } from '../../../src/security/crl.js';
import { keyStoreSigner, type Signer } from '../../../src/security/signer.js';
import { dateToTime32, ManualClock, time32ToDate, type IPeriodParams } from '../../../src/security/time.js';
import { certificateHashedId8 } from '../../../src/security/certificate.js';

const PASS = 'crl service test passphrase';
const START = Date.parse('2025-06-01T00:00:00Z');

describe('CrlService', () => {
  let base: string;
  let trust: TrustDir;
  let crlCert: Certificate;
  let crlSigner: Signer;
  let ica: Certificate;
  let las: [LaService, LaService];
  let acaCert: Certificate;
  let cleanup: Array<() => Promise<void>> = [];
  const clock = new ManualClock(START);
  // One-hour i-periods starting at START with i = 100; 4 certificates per i-period.
  const iPeriod: IPeriodParams = { iPeriodEpoch: dateToTime32(new Date(START)), iPeriodLength: 3600, iPeriodInit: 100, baseCertNumber: 4 };

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'scms-crl-service-'));
    const dir = join(base, 'scms');
    await initTrustDir({ dir, keystore: 'file', keyStoreOptions: { passphrase: PASS, scrypt: { N: 1024 } }, electors: 1, quorum: 1, clock: new ManualClock(START - 86_400_000) });
    trust = loadTrustDir(dir);
    const stores = openStores(dir, { passphrase: PASS });
    cleanup.push(() => stores.close());
    const c = trust.byName.get('crl-signer')!;
    crlCert = c.certificate!;
    crlSigner = keyStoreSigner(stores, await stores.open(c.keyUri));
    ica = trust.byName.get(c.issuer)!.certificate!;
    acaCert = trust.byName.get('aca')!.certificate!;
    const mk = async (name: 'la1' | 'la2') => {
      const l = trust.byName.get(name)!;
      const db = await openDatabase<any>(`sqlite:${join(base, `${name}.db`)}`);
      cleanup.push(() => db.destroy());
      const store = new LaStore(db);
      await store.migrate();
      return new LaService({ laId: l.laId!, store, masterSecret: new Uint8Array(32).fill(name === 'la1' ? 1 : 2), certificate: l.certificate!, signer: keyStoreSigner(stores, await stores.open(l.keyUri)), clock });
    };
    las = [await mk('la1'), await mk('la2')];
  }, 120_000);
  afterAll(async () => {
    for (const f of cleanup.reverse()) await f();
    rmSync(base, { recursive: true, force: true });
  });

  /** A fresh RA database: registration store, CRL store, chain table (in memory), a registered device. */
  async function setup(name: string) {
    const db = await openDatabase<any>(`sqlite:${join(base, `${name}.db`)}`);
    cleanup.push(() => db.destroy());
    const registration = new RegistrationStore(db, { clock });
    await registration.migrate();
    const store = new CrlStore(db);
    await store.migrate();
    const chains = new Map<string, Uint8Array>();
    const device = async () => {
      const key = generateKeyPair('nistP256');
      const r = await registration.register(parseRegisterDeviceBody({ deviceType: 'obu', canonicalPublicKey: toHex(compressedPublicKey('nistP256', key.publicKey)) }), 'test');
      return r.device.deviceId;
    };
    const withChains = async (deviceId: string, first: number) => {
      for (const la of las) {
        const res = await la.preLinkageValues({ newChain: true, iRange: { first, last: first }, jMax: 4, acaCertificate: acaCert });
        chains.set(`${deviceId}/${la.laId}`, res.chainId);
      }
    };
    const service = (over: Partial<ConstructorParameters<typeof CrlService>[0]> = {}) =>
      new CrlService({
        store,
        registration,
        certificate: crlCert,
        signer: crlSigner,
        issuer: ica,
        iPeriod,
        nextUpdateSeconds: 600,
        chains: { chainId: async (k, laId) => chains.get(`${k}/${laId}`) },
        las,
        clock,
        ...over,
      });
    return { db, registration, store, chains, device, withChains, service };
  }

  const verified = (bytes: Uint8Array): CrlContents => {
    const v = verifyCrl(bytes, { trustAnchors: trust.roots.map((r) => r.certificate!), certificates: trust.certificates.map((c) => c.certificate!), clock });
    if (!v.ok) throw new Error(v.reason);
    return v.contents;
  };
  const linkedOf = (s: CrlService) => verified(s.find(s.cracaId, 1, 'fullLinkedCrl')!.crl).typeSpecific as { fullLinkedCrl: { iRev: number; indexWithinI: number; individual: JMaxGroup[] } };
  const hashOf = (s: CrlService) => verified(s.find(s.cracaId, 1, 'fullHashCrl')!.crl).typeSpecific as { fullHashCrl: { crlSerial: number; entries: Array<{ id: Uint8Array; expiry: number }> } };

  it('issues the first CRLs, re-issues before nextCrl and at an i-period change, and resumes after a restart', async () => {
    clock.set(START + 60_000);
    const env = await setup('ra-1');
    const s = env.service();
    await s.init();
    expect(s.current()).toHaveLength(2);
    expect(s.cracaId).toBe(toHex(certificateHashedId8(ica)));
    const first = linkedOf(s).fullLinkedCrl;
    expect(first).toMatchObject({ iRev: 100, indexWithinI: 0, individual: [] });
    expect(hashOf(s).fullHashCrl).toMatchObject({ crlSerial: 1, entries: [] });
    const v0 = s.version;

    // Not due: nothing issued.
    clock.advance(60_000);
    expect(await s.refresh()).toBe(false);
    expect(s.version).toBe(v0);

    // Revoke a device with chains from i = 100: seeds at i = 100.
    const id = await env.device();
    await env.withChains(id, 100);
    const r = await s.revoke({ deviceId: id, reason: 'test', actor: 'test' });
    expect(r.linkage).toMatchObject({ la1Id: las[0].laId, la2Id: las[1].laId, i: 100, jmax: 4 });
    const l1 = linkedOf(s).fullLinkedCrl;
    expect(l1.indexWithinI).toBe(1);
    const seeds100 = l1.individual[0]!.contents[0]!.contents[0]!.contents[0]!;
    expect(toHex(seeds100.linkageSeed1)).toBe(toHex((await las[0].seedsForRevocation(env.chains.get(`${id}/${las[0].laId}`)!, 100)).linkageSeed));
    expect(hashOf(s).fullHashCrl.crlSerial).toBe(2);
    const issue1 = s.find(s.cracaId, 1, 'fullLinkedCrl')!.issueDate;

    // 9 minutes later (within the 60 s margin of nextCrl = issueDate + 600): re-issued, counters up, same iRev.
    clock.advance(9 * 60_000 + 5_000);
    expect(await s.refresh()).toBe(true);
    const l2 = linkedOf(s).fullLinkedCrl;
    expect(l2).toMatchObject({ iRev: 100, indexWithinI: 2 });
    expect(hashOf(s).fullHashCrl.crlSerial).toBe(3);
    expect(s.find(s.cracaId, 1, 'fullLinkedCrl')!.issueDate).toBeGreaterThan(issue1);

    // Next i-period: iRev 101, indexWithinI back to 0, the seeds evolved one step (= the LA's ls(101)).
    clock.set(START + 3600_000 + 1000);
    expect(await s.refresh()).toBe(true);
    const l3 = linkedOf(s).fullLinkedCrl;
    expect(l3).toMatchObject({ iRev: 101, indexWithinI: 0 });
    const seeds101 = l3.individual[0]!.contents[0]!.contents[0]!.contents[0]!;
    expect(toHex(seeds101.linkageSeed1)).toBe(toHex(linkageSeedAt(laIdOctets(las[0].laId), seeds100.linkageSeed1, 1)));
    expect(toHex(seeds101.linkageSeed2)).toBe(toHex((await las[1].seedsForRevocation(env.chains.get(`${id}/${las[1].laId}`)!, 101)).linkageSeed));

    // Restart: a new service on the same store continues the counters.
    const again = env.service();
    await again.init();
    expect(again.version).toBe(1);
    clock.advance(10 * 60_000);
    expect(await again.refresh()).toBe(true);
    expect(linkedOf(again).fullLinkedCrl).toMatchObject({ iRev: 101, indexWithinI: 1 });
    expect(hashOf(again).fullHashCrl.crlSerial).toBe(5);
  });

  it('two processes on one database: the other takes up the CRLs and continues the counters', async () => {
    clock.set(START + 60_000);
    const env = await setup('ra-4');
    const one = env.service();
    const two = env.service();
    await one.init();
    await two.init();
    const id = await env.device();
    await env.withChains(id, 100);
    await one.revoke({ deviceId: id, reason: 'x', actor: 't' });
    const v = two.version;
    expect(await two.refresh()).toBe(false); // not due: nothing issued, but the newer CRLs are taken up
    expect(two.version).toBe(v + 1);
    expect(Buffer.from(two.find(two.cracaId, 1, 'fullLinkedCrl')!.crl).equals(Buffer.from(one.find(one.cracaId, 1, 'fullLinkedCrl')!.crl))).toBe(true);
    const id2 = await env.device();
    await two.revoke({ deviceId: id2, reason: 'y', actor: 't' });
    expect(hashOf(two).fullHashCrl.crlSerial).toBe(hashOf(one).fullHashCrl.crlSerial + 1);
    expect(linkedOf(two).fullLinkedCrl.individual[0]!.contents[0]!.contents[0]!.contents).toHaveLength(1);
  });

  it('hash entries leave the CRL once the certificate expired', async () => {
    clock.set(START + 60_000);
    const env = await setup('ra-2');
    const id = await env.device();
    // The ECA certificate stands in for an enrollment certificate of the device (the lookup returns COER).
    const s = env.service({ chains: undefined, las: undefined, enrollmentCertificates: async (d) => (d === id ? [trust.byName.get('eca')!.bytes] : []) });
    await s.init();
    await s.revoke({ deviceId: id, reason: 'test', actor: 'test' });
    const entries = hashOf(s).fullHashCrl.entries;
    expect(entries).toHaveLength(1);
    const expiry = entries[0]!.expiry;
    expect(expiry).toBeGreaterThan(dateToTime32(clock.now()));
    // Past the certificate's expiry the entry is gone on the next CRL (read without verifying: the CRL signer's
    // own certificate has expired by then).
    clock.set(time32ToDate(expiry + 10).getTime());
    expect(await s.refresh()).toBe(true);
    const after = SecuredCrl.decode(s.find(s.cracaId, 1, 'fullHashCrl')!.crl).content.signedData.tbsData.payload.data!.content.unsecuredData;
    expect((after.typeSpecific as { fullHashCrl: { entries: unknown[] } }).fullHashCrl.entries).toEqual([]);
    expect((await env.store.revocations())[0]!.hashEntries).toHaveLength(1);
  });

  it('refused revocations write nothing: unknown device, already revoked, a chain at one LA only, an LA failure', async () => {
    clock.set(START + 60_000);
    const env = await setup('ra-3');
    const s = env.service();
    await s.init();
    const v0 = s.version;
    await expect(s.revoke({ deviceId: '00000000-0000-4000-8000-000000000000', reason: 'x', actor: 't' })).rejects.toMatchObject({ status: 404 });

    const half = await env.device();
    const res = await las[0].preLinkageValues({ newChain: true, iRange: { first: 100, last: 100 }, jMax: 4, acaCertificate: acaCert });
    env.chains.set(`${half}/${las[0].laId}`, res.chainId);
    await expect(s.revoke({ deviceId: half, reason: 'x', actor: 't' })).rejects.toMatchObject({ status: 500 });

    const failing: RevocationSeedSource = { laId: las[1].laId, seedsForRevocation: async () => Promise.reject(new Error('LA down')) };
    const s2 = env.service({ las: [las[0], failing] });
    await s2.init();
    const id = await env.device();
    await env.withChains(id, 100);
    await expect(s2.revoke({ deviceId: id, reason: 'x', actor: 't' })).rejects.toMatchObject({ status: 503 });

    expect(await env.store.revocations()).toEqual([]);
    expect((await env.registration.get(id))!.state).not.toBe('blocked');
    expect((await env.registration.get(half))!.state).not.toBe('blocked');
    expect(s.version).toBe(v0);

    await s.revoke({ deviceId: id, reason: 'x', actor: 't' });
    await expect(s.revoke({ deviceId: id, reason: 'x', actor: 't' })).rejects.toMatchObject({ status: 409 });
    expect(await env.store.revocations()).toHaveLength(1);
  });
});

