// SecuredCrl (1609.2 7.3 / 7.4) signed by the CRL signer of a `scms manager init` trust directory: encoding, the
// validity checks of verifyCrl, and the revocation check (hash-based and linkage-based) of CrlIndex.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ieee1609Dot2Data, SecuredCrl, type Certificate, type CrlContents } from '../../src/codec/index.js';
import { fromHex, toHex } from '../../src/crypto/bytes.js';
import { linkageSeedAt, linkageValue, preLinkageValue } from '../../src/crypto/linkage.js';
import { randomOctets } from '../../src/crypto/random.js';
import { initTrustDir, openStores } from '../../src/engine/manager/init.js';
import { loadTrustDir, type TrustDir } from '../../src/engine/manager/trust-dir.js';
import { certificateHashedId10, certificateHashedId8 } from '../../src/security/certificate.js';
import { CRL_PSID, CrlIndex, crlSspOf, individualLinkageGroups, signCrl, verifyCrl } from '../../src/security/crl.js';
import { keyStoreSigner, type Signer } from '../../src/security/signer.js';
import { ManualClock, nowTime32 } from '../../src/security/time.js';

const PASS = 'crl unit test passphrase';
const clock = new ManualClock('2025-06-01T00:00:00Z');

describe('SecuredCrl', () => {
  let base: string;
  let trust: TrustDir;
  let crlCert: Certificate;
  let crlSigner: Signer;
  let raCert: Certificate;
  let raSigner: Signer;
  let ica: Certificate;
  let anchors: Certificate[];
  let pool: Certificate[];
  let close: () => Promise<void>;

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'scms-crl-'));
    const dir = join(base, 'scms');
    await initTrustDir({ dir, keystore: 'file', keyStoreOptions: { passphrase: PASS, scrypt: { N: 1024 } }, electors: 1, quorum: 1, clock: new ManualClock('2025-05-01T00:00:00Z') });
    trust = loadTrustDir(dir);
    const stores = openStores(dir, { passphrase: PASS });
    close = () => stores.close();
    const c = trust.byName.get('crl-signer')!;
    crlCert = c.certificate!;
    crlSigner = keyStoreSigner(stores, await stores.open(c.keyUri));
    raCert = trust.byName.get('ra')!.certificate!;
    raSigner = keyStoreSigner(stores, await stores.open(trust.byName.get('ra')!.keyUri));
    ica = trust.byName.get(c.issuer)!.certificate!;
    anchors = trust.roots.map((r) => r.certificate!);
    pool = trust.certificates.filter((x) => x.certificate).map((x) => x.certificate!);
  }, 120_000);
  afterAll(async () => {
    await close?.();
    rmSync(base, { recursive: true, force: true });
  });

  const contents = (over: Partial<CrlContents> = {}): CrlContents => {
    const now = nowTime32(clock);
    return {
      version: 1,
      crlSeries: 1,
      crlCraca: certificateHashedId8(ica),
      issueDate: now,
      nextCrl: now + 7 * 86_400,
      priorityInfo: {},
      typeSpecific: { fullHashCrl: { crlSerial: 1, entries: [{ id: certificateHashedId10(raCert), expiry: now + 86_400 }] } },
      ...over,
    };
  };
  const verify = (bytes: Uint8Array, c = clock) => verifyCrl(bytes, { trustAnchors: anchors, certificates: pool, clock: c });

  it('the CRL signer of manager init: CrlSsp issuerIsCraca, series [1]', () => {
    const ssp = crlSspOf(crlCert)!;
    expect(ssp).toEqual({ version: 1, associatedCraca: 'issuerIsCraca', crls: [1] });
    expect(crlSspOf(raCert)).toBeUndefined();
  });

  it('encodes as a SecuredCrl: psid 0x100, signer certificate, no generationTime; verifies', async () => {
    const bytes = await signCrl({ contents: contents(), signer: crlSigner, certificate: crlCert });
    const d = Ieee1609Dot2Data.decode(bytes);
    const sd = (d.content as any).signedData;
    expect(sd.tbsData.headerInfo.psid).toBe(CRL_PSID);
    expect(sd.tbsData.headerInfo.generationTime).toBeUndefined();
    expect(toHex(certificateHashedId8(sd.signer.certificate[0]))).toBe(toHex(certificateHashedId8(crlCert)));
    const crl = SecuredCrl.decode(bytes);
    expect(crl.content.signedData.tbsData.payload.data!.content.unsecuredData.crlSeries).toBe(1);
    const v = verify(bytes);
    expect(v.ok, v.ok ? '' : v.reason).toBe(true);
    if (v.ok) {
      expect(v.kind).toBe('fullHashCrl');
      expect(toHex(certificateHashedId8(v.craca))).toBe(toHex(certificateHashedId8(ica)));
    }
  });

  it('refuses a tampered signature and tampered contents', async () => {
    const bytes = await signCrl({ contents: contents(), signer: crlSigner, certificate: crlCert });
    const sig = bytes.slice();
    sig[sig.length - 5]! ^= 0x01; // inside sSig
    const v1 = verify(sig);
    expect(v1.ok).toBe(false);
    if (!v1.ok) expect(['signature', 'malformed']).toContain(v1.refusal);
    // Flip a bit of the crlSerial inside the signed contents: still a SecuredCrl, the signature no longer verifies.
    const good = SecuredCrl.decode(bytes);
    const fs = good.content.signedData.tbsData.payload.data!.content.unsecuredData.typeSpecific as any;
    fs.fullHashCrl.crlSerial = 2;
    const v2 = verify(SecuredCrl.encode(good));
    expect(v2).toMatchObject({ ok: false, refusal: 'signature' });
    // Not a SecuredCrl at all.
    expect(verify(new Uint8Array([3, 0x81, 0]))).toMatchObject({ ok: false, refusal: 'malformed' });
  });

  it('refuses a signer without CRL permissions, a series the CrlSsp does not permit, and a wrong crlCraca', async () => {
    const byRa = await signCrl({ contents: contents(), signer: raSigner, certificate: raCert });
    expect(verify(byRa)).toMatchObject({ ok: false, refusal: 'chain' });
    const series7 = await signCrl({ contents: contents({ crlSeries: 7 }), signer: crlSigner, certificate: crlCert });
    const v = verify(series7);
    expect(v).toMatchObject({ ok: false, refusal: 'permissions' });
    if (!v.ok) expect(v.reason).toMatch(/series 7/);
    const otherCraca = await signCrl({ contents: contents({ crlCraca: certificateHashedId8(crlCert) }), signer: crlSigner, certificate: crlCert });
    expect(verify(otherCraca)).toMatchObject({ ok: false, refusal: 'craca' });
  });

  it('refuses an expired CRL (past nextCrl), one issued in the future, and nextCrl <= issueDate', async () => {
    const bytes = await signCrl({ contents: contents(), signer: crlSigner, certificate: crlCert });
    const later = new ManualClock(clock.now().getTime() + 7 * 86_400_000 + 1000);
    const v = verify(bytes, later);
    expect(v).toMatchObject({ ok: false, refusal: 'time' });
    if (!v.ok) expect(v.reason).toMatch(/expired/);
    // Within an overdue tolerance it is still accepted.
    expect(verifyCrl(bytes, { trustAnchors: anchors, certificates: pool, clock: later, overdueToleranceSeconds: 3600 }).ok).toBe(true);
    const earlier = new ManualClock(clock.now().getTime() - 3600_000);
    expect(verify(bytes, earlier)).toMatchObject({ ok: false, refusal: 'time' });
    await expect(signCrl({ contents: contents({ nextCrl: nowTime32(clock) }), signer: crlSigner, certificate: crlCert })).rejects.toThrow(/nextCrl/);
  });

  it('refuses a signer outside the trust anchors', async () => {
    const bytes = await signCrl({ contents: contents(), signer: crlSigner, certificate: crlCert });
    expect(verifyCrl(bytes, { trustAnchors: [], certificates: pool, clock })).toMatchObject({ ok: false, refusal: 'chain' });
  });

  it('CrlIndex: hash entries by HashedId10; linkage entries match every lv(i, j) for i >= iRev and no other value', async () => {
    const la1 = Uint8Array.of(0, 1);
    const la2 = Uint8Array.of(0, 2);
    const ls1 = randomOctets(16);
    const ls2 = randomOctets(16);
    const iRev = 10;
    const jmax = 5;
    const linked: CrlContents = contents({
      typeSpecific: {
        fullLinkedCrl: {
          iRev,
          indexWithinI: 0,
          individual: individualLinkageGroups([{ la1Id: la1, la2Id: la2, linkageSeed1: ls1, linkageSeed2: ls2, jmax, iMax: 20 }]),
        },
      },
    });
    // Through signing and verification, as an EE would have it.
    const v = verify(await signCrl({ contents: linked, signer: crlSigner, certificate: crlCert }));
    expect(v.ok).toBe(true);
    const index = new CrlIndex([contents(), (v as { contents: CrlContents }).contents]);
    expect(index.size).toEqual({ hash: 1, linked: 1 });
    expect(index.check(raCert)).toMatchObject({ revoked: true, by: 'hash' });
    expect(index.check(crlCert)).toEqual({ revoked: false });

    // A pseudonym certificate (i, j): lv = plv1 XOR plv2 from the chain's seeds at i (independent computation).
    const pseudonym = (i: number, lv: Uint8Array): Certificate => ({ ...raCert, toBeSigned: { ...raCert.toBeSigned, id: { linkageData: { iCert: i, 'linkage-value': lv } } } });
    const lvOf = (s1: Uint8Array, s2: Uint8Array, i: number, j: number) =>
      linkageValue(preLinkageValue(la1, linkageSeedAt(la1, s1, i - iRev), j), preLinkageValue(la2, linkageSeedAt(la2, s2, i - iRev), j));
    for (const i of [10, 11, 15, 20]) {
      for (let j = 0; j < jmax; j++) expect(index.check(pseudonym(i, lvOf(ls1, ls2, i, j))), `${i}/${j}`).toMatchObject({ revoked: true, by: 'linkage', i, j });
    }
    // Another device's chain, and i beyond iMax, are not matched.
    const other1 = randomOctets(16);
    const other2 = randomOctets(16);
    for (let j = 0; j < jmax; j++) expect(index.check(pseudonym(12, lvOf(other1, other2, 12, j)))).toEqual({ revoked: false });
    expect(index.check(pseudonym(21, lvOf(ls1, ls2, 21, 0)))).toEqual({ revoked: false });
    // Before iRev the seeds cannot be evolved backwards: not matched.
    expect(index.check(pseudonym(9, fromHex('00'.repeat(9))))).toEqual({ revoked: false });
  });
});
