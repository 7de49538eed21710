// RA trust distribution against a real server on 127.0.0.1 and a trust directory made by `scms manager init`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Certificate,
  CertificateChainSpdu,
  CertificateManagementInformationStatusSpdu,
  CompositeCrlSpdu,
  Ieee1609Dot2Data,
  MultiSignedCtlSpdu,
  SecuredCrl,
} from '../../../src/codec/index.js';
import type { IssuedCrl } from '../../../src/engine/crl/store.js';
import { signCrl } from '../../../src/security/crl.js';
import { toHex } from '../../../src/crypto/bytes.js';
import { ERROR_HEADER } from '../../../src/engine/http/index.js';
import { initTrustDir, openStores } from '../../../src/engine/manager/init.js';
import { loadTrustDir, type TrustDir } from '../../../src/engine/manager/trust-dir.js';
import { registerRa } from '../../../src/engine/ra/index.js';
import { RegistrationStore } from '../../../src/engine/ra/registration-store.js';
import { openDatabase } from '../../../src/engine/store/index.js';
import { certificateHashedId8 } from '../../../src/security/certificate.js';
import { verifySignedSpdu } from '../../../src/security/scms-pdu.js';
import { keyStoreSigner } from '../../../src/security/signer.js';
import { ManualClock, dateToTime32 } from '../../../src/security/time.js';
import { startTestServer, type TestServer } from '../http/helpers.js';

const PASS = 'distribution test passphrase';
const clock = new ManualClock('2025-03-01T12:00:00Z');

describe('RA trust distribution routes', () => {
  let base: string;
  let dir: string;
  let trust: TrustDir;
  let srv: TestServer;
  let closeAll: () => Promise<void>;

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'scms-dist-'));
    dir = join(base, 'scms');
    await initTrustDir({ dir, keystore: 'file', keyStoreOptions: { passphrase: PASS, scrypt: { N: 1024 } }, electors: 3, quorum: 2, clock });
    trust = loadTrustDir(dir);
    const stores = openStores(dir, { passphrase: PASS });
    const raSigner = keyStoreSigner(stores, await stores.open(trust.byName.get('ra')!.keyUri));
    const db = await openDatabase<any>(`sqlite:${join(base, 'ra.db')}`);
    const store = new RegistrationStore(db, { clock });
    await store.migrate();
    srv = await startTestServer((server) =>
      server.registerComponent({
        name: 'ra',
        register: registerRa,
        deps: { store, operatorToken: 'operator-token-distribution-01', componentToken: undefined, trust, clock, raSigner },
      }),
    );
    closeAll = async () => {
      await srv.close();
      await db.destroy();
      await stores.close();
    };
  }, 120_000);
  afterAll(async () => {
    await closeAll?.();
    rmSync(base, { recursive: true, force: true });
  });

  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${srv.url}${path}`, { headers });
  const bytes = async (r: Response) => new Uint8Array(await r.arrayBuffer());
  const filename = (r: Response) => /filename=([^;]+)/.exec(r.headers.get('content-disposition') ?? '')?.[1];
  const series = () => trust.manifest.ctlSeriesId;

  it('GET /v3/ctl: uncompressed zip ctl_<series>_<lowestSeq>.zip of the CTL files', async () => {
    const r = await get(`/v3/ctl?ctlSeriesId=${series()}&ctlSequenceNumber=1`);
    expect(r.status).toBe(200);
    expect(filename(r)).toBe(`ctl_${series()}_1.zip`);
    const zip = await bytes(r);
    // Local file header: compression method 0 (stored).
    expect(Buffer.from(zip.subarray(0, 4)).toString('hex')).toBe('504b0304');
    expect(zip[8] | (zip[9]! << 8)).toBe(0);
    const files = unzipSync(zip);
    expect(Object.keys(files)).toEqual([`ctl_${series()}_1.oer`]);
    const f = files[`ctl_${series()}_1.oer`]!;
    expect(Buffer.from(f).equals(Buffer.from(trust.ctls[0]!.bytes))).toBe(true);
    const ctl = MultiSignedCtlSpdu.decode(f);
    expect('unsecuredData' in ctl.content).toBe(true);
    // Upper-case hex is accepted; same bytes, same ETag.
    const again = await get(`/v3/ctl?ctlSeriesId=${series().toUpperCase()}&ctlSequenceNumber=1`);
    expect(again.headers.get('etag')).toBe(r.headers.get('etag'));
  });

  it('GET /v3/ccf-ctl: the CertificateChainSpdu of the trust directory', async () => {
    const r = await get(`/v3/ccf-ctl?ctlSeriesId=${series()}`);
    expect(r.status).toBe(200);
    expect(filename(r)).toBe('ccf_1.oer');
    const b = await bytes(r);
    expect(Buffer.from(b).equals(Buffer.from(trust.ccf!))).toBe(true);
    const ccf = CertificateChainSpdu.decode(b);
    const chain = (ccf.content as any).unsecuredData.content.cert.certificateChain;
    expect(chain.others.length).toBe(trust.certificates.filter((c) => !['elector', 'root'].includes(c.role)).length);
  });

  it('GET /v3/composite-crl-ctl: CompositeCrlSpdu { crl: [], homeCtl: latest CTL } (no CRL source)', async () => {
    const r = await get(`/v3/composite-crl-ctl?ctlSeriesId=${series()}`);
    expect(r.status).toBe(200);
    expect(filename(r)).toBe('composite-crl_1.oer');
    const spdu = CompositeCrlSpdu.decode(await bytes(r));
    const cc = (spdu.content as any).unsecuredData.content.cert.compositeCrl;
    expect(cc.crl).toEqual([]);
    expect(Buffer.from(MultiSignedCtlSpdu.encode(cc.homeCtl)).equals(Buffer.from(trust.ctls[0]!.bytes))).toBe(true);
  });

  it('GET /v3/ca-certificate: each CA certificate by its HashedId8; not the RA', async () => {
    for (const name of ['root', 'ica', 'eca', 'aca']) {
      const c = trust.byName.get(name)!;
      const id = toHex(certificateHashedId8(c.certificate!));
      const r = await get(`/v3/ca-certificate?certId=${id}`);
      expect(r.status, name).toBe(200);
      expect(filename(r)).toBe(`ca_${id}.oer`);
      const b = await bytes(r);
      expect(Buffer.from(b).equals(Buffer.from(c.bytes))).toBe(true);
      expect(Certificate.decode(b).toBeSigned.id).toEqual(c.certificate!.toBeSigned.id);
    }
    const raId = toHex(certificateHashedId8(trust.byName.get('ra')!.certificate!));
    const r = await get(`/v3/ca-certificate?certId=${raId}`);
    expect(r.status).toBe(404);
    expect(r.headers.get(ERROR_HEADER)).toBe('404-99');
  });

  it('GET /v3/ra-certificate: the RA certificate', async () => {
    const r = await get('/v3/ra-certificate');
    expect(r.status).toBe(200);
    const ra = trust.byName.get('ra')!;
    expect(filename(r)).toBe(`ra_${toHex(certificateHashedId8(ra.certificate!))}.oer`);
    const b = await bytes(r);
    expect(Buffer.from(b).equals(Buffer.from(ra.bytes))).toBe(true);
    Certificate.decode(b);
  });

  it('GET /v3/certificate-management-info-status: signed by the RA, names the CTL series', async () => {
    const r = await get('/v3/certificate-management-info-status');
    expect(r.status).toBe(200);
    expect(filename(r)).toBe('certificate-management-info-status.oer');
    const b = await bytes(r);
    CertificateManagementInformationStatusSpdu.decode(b);
    const ra = trust.byName.get('ra')!.certificate!;
    const v = verifySignedSpdu(b, { resolveSigner: () => ra });
    expect(v.ok).toBe(true);
    const info = (v as any).pdu.content.cert.infoStatus;
    expect(toHex(info.ctl[0].ctlSeriesId)).toBe(series());
    expect(info.ctl[0].sequenceNumber).toBe(1);
    expect(info.caCcf).toBe(dateToTime32(new Date(trust.manifest.updatedAt)));
    // Signed once: the same bytes (and ETag) on every request.
    const again = await get('/v3/certificate-management-info-status');
    expect(again.headers.get('etag')).toBe(r.headers.get('etag'));
  });

  it('GET /v3/global-policy and /v3/local-policy: the PG-signed policy SPDUs', async () => {
    for (const kind of ['global', 'local'] as const) {
      const r = await get(`/v3/${kind}-policy`);
      expect(r.status).toBe(200);
      expect(filename(r)).toBe(`${kind}-policy.oer`);
      const b = await bytes(r);
      const signed = (kind === 'global' ? trust.globalPolicy : trust.localPolicy)!.signed!;
      expect(Buffer.from(b).equals(Buffer.from(signed))).toBe(true);
      expect('signedData' in Ieee1609Dot2Data.decode(b).content).toBe(true);
    }
  });

  it('If-None-Match with the ETag -> 304 on every file route', async () => {
    const paths = [
      `/v3/ctl?ctlSeriesId=${series()}&ctlSequenceNumber=1`,
      `/v3/ccf-ctl?ctlSeriesId=${series()}`,
      `/v3/composite-crl-ctl?ctlSeriesId=${series()}`,
      `/v3/ca-certificate?certId=${toHex(certificateHashedId8(trust.byName.get('root')!.certificate!))}`,
      '/v3/ra-certificate',
      '/v3/certificate-management-info-status',
      '/v3/global-policy',
      '/v3/local-policy',
    ];
    for (const p of paths) {
      const first = await get(p);
      const etag = first.headers.get('etag')!;
      expect(etag, p).toMatch(/^"[0-9a-f]{64}"$/);
      const second = await get(p, { 'if-none-match': etag });
      expect(second.status, p).toBe(304);
      expect((await second.arrayBuffer()).byteLength).toBe(0);
    }
  });

  it('unknown series, sequence numbers and certificates -> 404 with Ieee-1609.2.1-Error', async () => {
    const other = series() === '0123456789abcdef' ? 'fedcba9876543210' : '0123456789abcdef';
    for (const p of [
      `/v3/ctl?ctlSeriesId=${other}&ctlSequenceNumber=1`,
      `/v3/ctl?ctlSeriesId=${series()}&ctlSequenceNumber=2`,
      `/v3/ccf-ctl?ctlSeriesId=${other}`,
      `/v3/composite-crl-ctl?ctlSeriesId=${other}`,
      '/v3/ca-certificate?certId=0000000000000000',
    ]) {
      const r = await get(p);
      expect(r.status, p).toBe(404);
      expect(r.headers.get(ERROR_HEADER), p).toBe('404-99');
    }
  });

  it('GET /v3/crl without CRL generation in this process: 400 on bad parameters, else 404', async () => {
    const craca = toHex(certificateHashedId8(trust.byName.get('ica')!.certificate!));
    const r = await get(`/v3/crl?craca=${craca}&crlSeries=1`);
    expect(r.status).toBe(404);
    expect(r.headers.get(ERROR_HEADER)).toBe('404-99');
    const bad = await get(`/v3/crl?craca=${craca}&crlSeries=70000`);
    expect(bad.status).toBe(400);
    expect(await bad.text()).toMatch(/CrlSeries/);
  });

  it('bad query parameters -> 400 with the reason', async () => {
    const cases: [string, RegExp][] = [
      ['/v3/ctl', /ctlSeriesId is required/],
      [`/v3/ctl?ctlSeriesId=${series()}`, /ctlSequenceNumber is required/],
      [`/v3/ctl?ctlSeriesId=${series()}&ctlSequenceNumber=x`, /Uint16/],
      [`/v3/ctl?ctlSeriesId=${series()}&ctlSequenceNumber=65536`, /Uint16/],
      ['/v3/ctl?ctlSeriesId=abc&ctlSequenceNumber=1', /16 hex digits/],
      ['/v3/ccf-ctl?ctlSeriesId=zz23456789abcdef', /16 hex digits/],
      ['/v3/composite-crl-ctl', /ctlSeriesId is required/],
      ['/v3/ca-certificate', /certId is required/],
      ['/v3/ca-certificate?certId=0011', /16 hex digits/],
      ['/v3/ca-certificate?certId=0000000000000000&certId=1111111111111111', /more than once/],
    ];
    for (const [p, re] of cases) {
      const r = await get(p);
      expect(r.status, p).toBe(400);
      expect(r.headers.get(ERROR_HEADER), p).toBe('400-60');
      expect(await r.text(), p).toMatch(re);
    }
  });

  it('with a CRL source: /v3/crl, the composite and the info status follow its version', async () => {
    const stores = openStores(dir, { passphrase: PASS });
    const c = trust.byName.get('crl-signer')!;
    const signer = keyStoreSigner(stores, await stores.open(c.keyUri));
    const ica = trust.byName.get(c.issuer)!.certificate!;
    const craca = toHex(certificateHashedId8(ica));
    const now = dateToTime32(clock.now());
    const crl = (issueDate: number, kind: 'fullHashCrl' | 'fullLinkedCrl') =>
      signCrl({
        contents: {
          version: 1,
          crlSeries: 1,
          crlCraca: certificateHashedId8(ica),
          issueDate,
          nextCrl: issueDate + 3600,
          priorityInfo: {},
          typeSpecific: kind === 'fullHashCrl' ? { fullHashCrl: { crlSerial: issueDate - now + 1, entries: [] } } : { fullLinkedCrl: { iRev: 5, indexWithinI: issueDate - now, individual: [] } },
        },
        signer,
        certificate: c.certificate!,
      });
    const issued = async (issueDate: number): Promise<IssuedCrl[]> => [
      { craca, series: 1, kind: 'fullHashCrl', serial: 1, issueDate, nextCrl: issueDate + 3600, crl: await crl(issueDate, 'fullHashCrl') },
      { craca, series: 1, kind: 'fullLinkedCrl', serial: 0, iRev: 5, issueDate, nextCrl: issueDate + 3600, crl: await crl(issueDate, 'fullLinkedCrl') },
    ];
    const source = { version: 1, crls: await issued(now) };
    const db = await openDatabase<any>(`sqlite:${join(base, 'ra-crl.db')}`);
    const store = new RegistrationStore(db, { clock });
    await store.migrate();
    const raSigner = keyStoreSigner(stores, await stores.open(trust.byName.get('ra')!.keyUri));
    const s2 = await startTestServer((server) =>
      server.registerComponent({
        name: 'ra',
        register: registerRa,
        deps: { store, operatorToken: undefined, componentToken: undefined, trust, clock, raSigner, crl: { get version() { return source.version; }, current: () => source.crls } },
      }),
    );
    try {
      const g = (p: string, h: Record<string, string> = {}) => fetch(`${s2.url}${p}`, { headers: h });
      const linked = await g(`/v3/crl?craca=${craca}&crlSeries=1`);
      expect(linked.status).toBe(200);
      expect(filename(linked)).toBe(`crl_${craca}_1.oer`);
      expect(Buffer.from(await bytes(linked)).equals(Buffer.from(source.crls[1]!.crl))).toBe(true);
      const hash = await g(`/v3/crl?craca=${craca.toUpperCase()}&crlSeries=1&type=hash`);
      expect(filename(hash)).toBe(`crl_${craca}_1_hash.oer`);
      expect(Buffer.from(await bytes(hash)).equals(Buffer.from(source.crls[0]!.crl))).toBe(true);

      const comp1 = await g(`/v3/composite-crl-ctl?ctlSeriesId=${series()}`);
      expect(filename(comp1)).toBe(`composite-crl_${now.toString(16)}.oer`);
      const cc = (CompositeCrlSpdu.decode(await bytes(comp1)).content as any).unsecuredData.content.cert.compositeCrl;
      expect(cc.crl.map((x: unknown) => Buffer.from(SecuredCrl.encode(x as never)).toString('hex'))).toEqual(source.crls.map((x) => Buffer.from(x.crl).toString('hex')));
      const info1 = await g('/v3/certificate-management-info-status');
      const st1 = (verifySignedSpdu(await bytes(info1), { resolveSigner: () => trust.byName.get('ra')!.certificate! }) as any).pdu.content.cert.infoStatus;
      expect(st1.crl).toEqual([{ cracaId: certificateHashedId8(ica), series: 1, issueDate: now }]);
      // Same version: the same files.
      expect((await g(`/v3/composite-crl-ctl?ctlSeriesId=${series()}`, { 'if-none-match': comp1.headers.get('etag')! })).status).toBe(304);
      expect((await g('/v3/certificate-management-info-status', { 'if-none-match': info1.headers.get('etag')! })).status).toBe(304);

      // New CRLs: new composite version and file, new info status.
      source.crls = await issued(now + 60);
      source.version++;
      const comp2 = await g(`/v3/composite-crl-ctl?ctlSeriesId=${series()}`, { 'if-none-match': comp1.headers.get('etag')! });
      expect(comp2.status).toBe(200);
      expect(filename(comp2)).toBe(`composite-crl_${(now + 60).toString(16)}.oer`);
      const info2 = await g('/v3/certificate-management-info-status', { 'if-none-match': info1.headers.get('etag')! });
      expect(info2.status).toBe(200);
      const st2 = (verifySignedSpdu(await bytes(info2), { resolveSigner: () => trust.byName.get('ra')!.certificate! }) as any).pdu.content.cert.infoStatus;
      expect(st2.crl[0].issueDate).toBe(now + 60);
      expect((await g(`/v3/crl?craca=${craca}&crlSeries=1`, { 'if-none-match': linked.headers.get('etag')! })).status).toBe(200);
    } finally {
      await s2.close();
      await db.destroy();
      await stores.close();
    }
  });
});
