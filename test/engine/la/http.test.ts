// Pseudonym pipeline with RA -> HTTP -> LA1, LA2, ACA (and ACA -> HTTP -> LA key deliveries), each a real server on
// 127.0.0.1 port 0; same outcome as in process; the LA's refusals (non-RA signer, foreign LA, stale, garbage).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AcaLaPlvKeyRequestSpdu as AcaLaPlvKeyRequestSpduCodec,
  Ieee1609Dot2Data as Ieee1609Dot2DataCodec,
  LaAcaPlvKeyDeliverySpdu as LaAcaPlvKeyDeliverySpduCodec,
  LaRaPreLinkageValueResponseSpdu as LaRaPreLinkageValueResponseSpduCodec,
  RaLaPreLinkageValueRequestSpdu as RaLaPreLinkageValueRequestSpduCodec,
} from '../../../src/codec/index.js';
import { toHex } from '../../../src/crypto/bytes.js';
import { sha256 } from '../../../src/crypto/hash.js';
import { linkageValue, preLinkageValue } from '../../../src/crypto/linkage.js';
import { certificateKeyPairMatches } from '../../../src/security/certificate.js';
import { dateToTime32, iPeriodOf, ManualClock } from '../../../src/security/time.js';
import { AcaService, type AcaClient, type AcaIssueResult } from '../../../src/engine/aca/aca.js';
import { HttpAcaClient } from '../../../src/engine/aca/http-client.js';
import { registerAca } from '../../../src/engine/aca/routes.js';
import { createButterflyRequest, type ButterflySecrets } from '../../../src/engine/ee/butterfly.js';
import type { AuthorizationCertificate } from '../../../src/engine/ee/authorization.js';
import { ScmsHttpError } from '../../../src/engine/http/errors.js';
import { HttpLaClient, HttpLaKeyClient } from '../../../src/engine/la/http-client.js';
import { PeerTrust, type PeerTrustOptions } from '../../../src/engine/la/http-spdu.js';
import { laIdOctets, type LaClient, type LaKeyClient, type LaService } from '../../../src/engine/la/la.js';
import { LA_ACA_KEY_PATH, LA_PRE_LINKAGE_VALUES_PATH, registerLa } from '../../../src/engine/la/routes.js';
import { PseudonymStore, type PseudonymJob } from '../../../src/engine/ra/pseudonym.js';
import { downloadCertificates, hierarchy, iPeriodParamsOf, laPair, pseudonymService, tempSqlite, type Hierarchy, type TempDb } from '../aca/fixtures.js';
import { startTestServer, type TestServer } from '../http/helpers.js';

const NOW = new Date('2025-03-01T00:00:00Z');
const clock = new ManualClock(NOW);

let h: Hierarchy;
let trust: PeerTrustOptions;
const dbs: TempDb[] = [];
const servers: TestServer[] = [];
let la1: LaService;
let la2: LaService;
let laUrl: Record<1 | 2, string>;
let acaUrl: string;
let untrustingAcaUrl: string;

class RecordingAca implements AcaClient {
  seen: Uint8Array[] = [];
  constructor(readonly inner: AcaClient) {}
  issue(requests: readonly Uint8Array[]): Promise<AcaIssueResult[]> {
    this.seen.push(...requests);
    return this.inner.issue(requests);
  }
}

function acaOver(laKeys: LaKeyClient[], raCertificates = [h.ra.cert]): AcaService {
  return new AcaService({
    certificate: h.aca.cert,
    signer: h.aca.key.signer,
    privateScalar: h.aca.key.d,
    encryptionKey: { privateKey: h.aca.enc!.d },
    raCertificates,
    laCertificates: [h.la1.cert, h.la2.cert],
    laKeys,
    clock,
  });
}

const keyClient = (laId: 1 | 2) => new HttpLaKeyClient({ baseUrl: laUrl[laId], laId, acaCertificate: h.aca.cert, acaSigner: h.aca.key.signer, clock });
const laClient = (laId: 1 | 2, signer = h.ra, peer: PeerTrustOptions = trust) =>
  new HttpLaClient({ baseUrl: laUrl[laId], laId, raCertificate: signer.cert, raSigner: signer.key.signer, trust: peer });

beforeAll(async () => {
  h = await hierarchy();
  trust = { trustAnchors: [h.root.cert], caCertificates: [h.ica.cert], clock };
  [la1, la2] = await laPair(h, dbs);
  const s1 = await startTestServer((s) => s.registerComponent({ name: 'la1', register: registerLa, deps: { la: la1, signer: h.la1.key.signer, trust } }));
  const s2 = await startTestServer((s) => s.registerComponent({ name: 'la2', register: registerLa, deps: { la: la2, signer: h.la2.key.signer, trust: new PeerTrust(trust) } }));
  servers.push(s1, s2);
  laUrl = { 1: s1.url, 2: s2.url };
  const sa = await startTestServer((s) => s.registerComponent({ name: 'aca', register: registerAca, deps: { aca: acaOver([keyClient(1), keyClient(2)]) } }));
  const su = await startTestServer((s) => s.registerComponent({ name: 'aca', register: registerAca, deps: { aca: acaOver([keyClient(1), keyClient(2)], []) } }));
  servers.push(sa, su);
  acaUrl = sa.url;
  untrustingAcaUrl = su.url;
});

afterAll(async () => {
  for (const s of servers) await s.close();
  for (const d of dbs) await d.close();
});

interface Ee {
  name: string;
  secrets: ButterflySecrets;
  job: PseudonymJob;
  certs: AuthorizationCertificate[];
}

function newEe(name: string, first: number, last: number): Ee {
  const { request, secrets } = createButterflyRequest({
    variant: 'unified',
    type: 'implicit',
    tbsCert: { validityPeriod: { start: dateToTime32(NOW), duration: { hours: 168 } }, appPermissions: [{ psid: 32n }] },
    clock,
  });
  const requestHash = sha256(new TextEncoder().encode(`${name}-${Math.random()}`)).slice(-8);
  return { name, secrets, job: { requestHash, request, chainKey: `device-${name}`, iRange: { first, last } }, certs: [] };
}

async function runPipeline(l1: LaClient, l2: LaClient, aca: AcaClient) {
  const raDb = await tempSqlite('ra');
  dbs.push(raDb);
  const store = new PseudonymStore(raDb.db);
  await store.migrate();
  const ra = pseudonymService(h, { store, la1: l1, la2: l2, aca, clock, seed: 7 });
  const i0 = iPeriodOf(iPeriodParamsOf(h.policy), dateToTime32(NOW));
  const ees = [newEe('a', i0, i0 + 1), newEe('b', i0, i0 + 1)];
  const report = await ra.processBatch(ees.map((e) => e.job));
  for (const ee of ees) ee.certs.push(...(await downloadCertificates(ra, h, ee.job.requestHash, ee.secrets, clock)));
  // Every certificate's linkage value from the LAs' seeds (seedsForRevocation).
  const lvs: string[] = [];
  for (const ee of ees) {
    const c1 = (await store.chainId(ee.job.chainKey, 1))!;
    const c2 = (await store.chainId(ee.job.chainKey, 2))!;
    for (const c of ee.certs) {
      expect(certificateKeyPairMatches(c.certificate, c.privateKey, h.acaChain)).toBe(true);
      const s1 = await la1.seedsForRevocation(c1, c.i);
      const s2 = await la2.seedsForRevocation(c2, c.i);
      const lv = linkageValue(preLinkageValue(laIdOctets(1), s1.linkageSeed, c.j), preLinkageValue(laIdOctets(2), s2.linkageSeed, c.j));
      const id = c.certificate.toBeSigned.id as { linkageData: { iCert: number; 'linkage-value': Uint8Array } };
      expect(id.linkageData.iCert).toBe(c.i);
      expect(toHex(id.linkageData['linkage-value'])).toBe(toHex(lv));
      lvs.push(toHex(lv));
    }
  }
  return {
    report,
    shape: ees.map((e) => e.certs.map((c) => `${c.i}/${c.j}/${c.certificate.type}`)),
    lvs,
  };
}

async function post(url: string, body: Uint8Array | string, type = 'application/octet-stream') {
  return fetch(url, { method: 'POST', headers: { 'content-type': type }, body });
}

describe('pseudonym pipeline over HTTP (unified butterfly, implicit certificates)', () => {
  it('RA -> HTTP -> LA1, LA2, ACA gives what the in-process pipeline gives; linkage values from the LA seeds', async () => {
    const aca = new RecordingAca(new HttpAcaClient({ baseUrl: acaUrl, maxBatch: 5 }));
    const http = await runPipeline(laClient(1), laClient(2), aca);
    expect(http.report.failed).toEqual([]);
    expect(http.report.issued).toBe(12);
    expect(new Set(http.lvs).size).toBe(12);
    expect(aca.seen).toHaveLength(12);

    const inProcess = await runPipeline(la1, la2, acaOver([la1, la2]));
    expect(inProcess.report).toEqual(http.report);
    expect(inProcess.shape).toEqual(http.shape);

    // The same RA requests sent to an ACA that does not trust this RA: per-request failures through the batch.
    const refused = await new HttpAcaClient({ baseUrl: untrustingAcaUrl }).issue(aca.seen.slice(0, 3));
    expect(refused.map((r) => (r.ok ? 'ok' : r.code))).toEqual(['untrusted-ra', 'untrusted-ra', 'untrusted-ra']);
  });

  it('the SPDUs on the wire decode with the generated ScmsInterfaces types', async () => {
    const seen: Array<{ url: string; body: Uint8Array; answer: Uint8Array }> = [];
    const recordingFetch: typeof fetch = async (url, init) => {
      const res = await fetch(url, init);
      const answer = new Uint8Array(await res.arrayBuffer());
      seen.push({ url: String(url), body: init!.body as Uint8Array, answer });
      return new Response(answer, { status: res.status, headers: res.headers });
    };
    const client = new HttpLaClient({ baseUrl: laUrl[1], laId: 1, raCertificate: h.ra.cert, raSigner: h.ra.key.signer, trust, fetch: recordingFetch });
    const res = await client.preLinkageValues({ newChain: true, iRange: { first: 10, last: 11 }, jMax: 2, acaCertificate: h.aca.cert });
    expect(res.plvs.map((p) => `${p.i}/${p.j}`)).toEqual(['10/0', '10/1', '11/0', '11/1']);
    const keys = new HttpLaKeyClient({ baseUrl: laUrl[2], laId: 2, acaCertificate: h.aca.cert, acaSigner: h.aca.key.signer, clock, fetch: recordingFetch });
    await keys.acaKeyDelivery(h.aca.cert);
    const [plv, key] = seen;
    const req = RaLaPreLinkageValueRequestSpduCodec.decode(plv!.body) as any;
    const r = req.content.signedData.tbsData.payload.data.content.unsecuredData.content['la-ra'].raLaPreLinkageValueRequest;
    expect(r).toMatchObject({ iFirst: 10, iLast: 11, jMax: 2, chain: { newChain: null } });
    const resp = LaRaPreLinkageValueResponseSpduCodec.decode(plv!.answer) as any;
    const body = resp.content.signedData.tbsData.payload.data.content.unsecuredData.content['la-ra'].laRaPreLinkageValueResponse;
    expect(toHex(body.requestHash)).toBe(toHex(sha256(plv!.body).slice(-8)));
    expect(toHex(body.chainId)).toBe(toHex(res.chainId));
    expect(key!.url).toBe(laUrl[2] + LA_ACA_KEY_PATH);
    expect(() => AcaLaPlvKeyRequestSpduCodec.decode(key!.body)).not.toThrow();
    expect('encryptedData' in (LaAcaPlvKeyDeliverySpduCodec.decode(key!.answer) as any).content).toBe(true);
  });
});

describe('LA refusals', () => {
  const plvReq = () => ({ newChain: true, iRange: { first: 3, last: 3 }, jMax: 1, acaCertificate: h.aca.cert });

  async function refusal(p: Promise<unknown>): Promise<ScmsHttpError> {
    const e = await p.then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(ScmsHttpError);
    return e as ScmsHttpError;
  }

  it('a request signed by a non-RA certificate (ACA, LA) is refused with 403-40', async () => {
    for (const signer of [h.aca, h.la2]) {
      const e = await refusal(laClient(1, signer).preLinkageValues(plvReq()));
      expect([e.status, e.code]).toEqual([403, 40]);
      expect(e.reason).toMatch(/not an RA certificate/);
    }
  });

  it('a key request signed by the RA is refused (403-40); one for the wrong LA (400-60)', async () => {
    const asRa = new HttpLaKeyClient({ baseUrl: laUrl[1], laId: 1, acaCertificate: h.ra.cert, acaSigner: h.ra.key.signer, clock });
    const e = await refusal(asRa.acaKeyDelivery(h.ra.cert));
    expect([e.status, e.code]).toEqual([403, 40]);
    const wrongLa = new HttpLaKeyClient({ baseUrl: laUrl[1], laId: 2, acaCertificate: h.aca.cert, acaSigner: h.aca.key.signer, clock });
    const e2 = await refusal(wrongLa.acaKeyDelivery(h.aca.cert));
    expect([e2.status, e2.code]).toEqual([400, 60]);
  });

  it('PLVs for a non-ACA certificate, for another LA, or with a stale generationTime are refused', async () => {
    const e1 = await refusal(laClient(1).preLinkageValues({ ...plvReq(), acaCertificate: h.ra.cert }));
    expect([e1.status, e1.code]).toEqual([400, 40]);
    const other = new HttpLaClient({ baseUrl: laUrl[1], laId: 2, raCertificate: h.ra.cert, raSigner: h.ra.key.signer, trust });
    const e2 = await refusal(other.preLinkageValues(plvReq()));
    expect([e2.status, e2.code]).toEqual([400, 60]);
    const late = laClient(1, h.ra, { ...trust, clock: new ManualClock(new Date(NOW.getTime() - 3600_000)) });
    const e3 = await refusal(late.preLinkageValues(plvReq()));
    expect([e3.status, e3.code]).toEqual([400, 70]);
    const unknown = await refusal(laClient(1).preLinkageValues({ chainId: new Uint8Array(16), iRange: { first: 3, last: 3 }, jMax: 1, acaCertificate: h.aca.cert }));
    expect([unknown.status, unknown.code]).toEqual([400, 60]);
  });

  it('a request addressed to LA 1 sent to LA 2 is refused (400-60)', async () => {
    const wrongServer = new HttpLaClient({ baseUrl: laUrl[2], laId: 1, raCertificate: h.ra.cert, raSigner: h.ra.key.signer, trust });
    const e = await refusal(wrongServer.preLinkageValues(plvReq()));
    expect([e.status, e.code]).toEqual([400, 60]);
  });

  it('the RA client refuses a replayed answer (requestHash) and one signed by the other LA', async () => {
    let old: Uint8Array | undefined;
    const keep: typeof fetch = async (url, init) => {
      const res = await fetch(url, init);
      old = new Uint8Array(await res.arrayBuffer());
      return new Response(old, { status: res.status, headers: res.headers });
    };
    const replay: typeof fetch = async () => new Response(old!, { status: 200, headers: { 'content-type': 'application/octet-stream' } });
    const opts = { laId: 1, raCertificate: h.ra.cert, raSigner: h.ra.key.signer, trust };
    await new HttpLaClient({ ...opts, baseUrl: laUrl[1], fetch: keep }).preLinkageValues(plvReq());
    await expect(new HttpLaClient({ ...opts, baseUrl: laUrl[1], fetch: replay }).preLinkageValues(plvReq())).rejects.toThrow(/response to another request/);
    await new HttpLaClient({ ...opts, laId: 2, baseUrl: laUrl[2], fetch: keep }).preLinkageValues(plvReq());
    await expect(new HttpLaClient({ ...opts, baseUrl: laUrl[1], fetch: replay }).preLinkageValues(plvReq())).rejects.toThrow(/signed by another LA/);
  });

  it('garbage bodies get 4xx and the servers keep serving', async () => {
    const junk = [new Uint8Array(0), Uint8Array.of(0x03), new Uint8Array(300).fill(0xa5), Ieee1609Dot2DataCodec.encode({ protocolVersion: 3, content: { unsecuredData: Uint8Array.of(1, 2) } })];
    for (const path of [LA_PRE_LINKAGE_VALUES_PATH, LA_ACA_KEY_PATH]) {
      for (const b of junk) {
        const res = await post(laUrl[1] + path, b);
        expect(res.status).toBe(400);
        expect(res.headers.get('ieee-1609.2.1-error')).toBe('400-42');
        await res.body?.cancel();
      }
      const wrongType = await post(laUrl[1] + path, '{}', 'application/json');
      expect(wrongType.status).toBe(415);
      await wrongType.body?.cancel();
    }
    // A valid key request for LA 1's delivery still answers.
    expect((await keyClient(1).acaKeyDelivery(h.aca.cert)).length).toBeGreaterThan(100);
    const res = await laClient(1).preLinkageValues(plvReq());
    expect(res.plvs).toHaveLength(1);
  });
});
