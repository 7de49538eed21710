// ACA over HTTP: POST /internal/aca/cert-requests with RaAcaCertRequestBatchSpdu (asn1/scms/ScmsInterfaces.asn).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AcaRaCertResponseSpdu as AcaRaCertResponseSpduCodec, Ieee1609Dot2Data as Ieee1609Dot2DataCodec } from '../../../src/codec/index.js';
import { toHex } from '../../../src/crypto/bytes.js';
import { sha256 } from '../../../src/crypto/hash.js';
import { dateToTime32, iPeriodOf, ManualClock } from '../../../src/security/time.js';
import type { AcaClient, AcaErrorCode, AcaIssueResult } from '../../../src/engine/aca/aca.js';
import { HttpAcaClient } from '../../../src/engine/aca/http-client.js';
import {
  ACA_CERT_REQUESTS_PATH,
  decodeCertRequestBatch,
  decodeCertResponseBatch,
  encodeCertRequestBatch,
  encodeCertResponseBatch,
  registerAca,
} from '../../../src/engine/aca/routes.js';
import { createButterflyRequest } from '../../../src/engine/ee/butterfly.js';
import { ScmsHttpError } from '../../../src/engine/http/errors.js';
import { PseudonymStore } from '../../../src/engine/ra/pseudonym.js';
import { startTestServer, type TestServer } from '../http/helpers.js';
import { acaService, hierarchy, iPeriodParamsOf, laPair, pseudonymService, tempSqlite, type Hierarchy, type TempDb } from './fixtures.js';

const NOW = new Date('2025-03-01T00:00:00Z');
const clock = new ManualClock(NOW);
let h: Hierarchy;
const dbs: TempDb[] = [];
let server: TestServer;
let aca: AcaClient;
/** Real RaAcaCertRequestSpdus (RA-signed), captured from an in-process run. */
let requests: Uint8Array[] = [];

beforeAll(async () => {
  h = await hierarchy();
  const las = await laPair(h, dbs);
  const dr = await tempSqlite('ra');
  dbs.push(dr);
  aca = acaService(h, las, clock);
  const store = new PseudonymStore(dr.db);
  await store.migrate();
  const capture: AcaClient = {
    issue: async (r) => {
      requests.push(...r);
      return aca.issue(r);
    },
  };
  const ra = pseudonymService(h, { store, la1: las[0]!, la2: las[1]!, aca: capture, clock, seed: 3 });
  const i0 = iPeriodOf(iPeriodParamsOf(h.policy), dateToTime32(NOW));
  const { request } = createButterflyRequest({
    variant: 'original',
    type: 'explicit',
    tbsCert: { validityPeriod: { start: dateToTime32(NOW), duration: { hours: 168 } }, appPermissions: [{ psid: 32n }] },
    clock,
  });
  await ra.processBatch([{ requestHash: new Uint8Array(8).fill(1), request, chainKey: 'dev', iRange: { first: i0, last: i0 + 1 } }]);
  requests = requests.slice(0, 5);
  server = await startTestServer((s) => s.registerComponent({ name: 'aca', register: registerAca, deps: { aca, maxBatch: 3 } }));
});

afterAll(async () => {
  await server?.close();
  for (const d of dbs) await d.close();
});

describe('ACA cert-requests over HTTP', () => {
  it('batches carry the request octets unchanged; responses answer them (requestHash), split at maxBatch', async () => {
    expect(requests).toHaveLength(5);
    expect(decodeCertRequestBatch(encodeCertRequestBatch(requests)).map(toHex)).toEqual(requests.map(toHex));
    const results = await new HttpAcaClient({ baseUrl: server.url, maxBatch: 3 }).issue(requests);
    expect(results).toHaveLength(5);
    results.forEach((r, n) => {
      expect(r.ok).toBe(true);
      const d = AcaRaCertResponseSpduCodec.decode((r as { response: Uint8Array }).response) as any;
      const resp = d.content.signedData.tbsData.payload.data.content.unsecuredData.content['aca-ra'].acaRaCertResponse;
      expect(toHex(resp.requestHash)).toBe(toHex(sha256(requests[n]!).slice(-8)));
    });
  });

  it('a batch over the server limit is 400-60', async () => {
    const e = await new HttpAcaClient({ baseUrl: server.url, maxBatch: 4 }).issue(requests).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ScmsHttpError);
    expect([(e as ScmsHttpError).status, (e as ScmsHttpError).code]).toEqual([400, 60]);
  });

  it('per-request failures travel with their code', () => {
    const codes: AcaErrorCode[] = ['malformed', 'untrusted-ra', 'bad-signature', 'invalid-request', 'linkage', 'issuance'];
    const results: AcaIssueResult[] = codes.map((code) => ({ ok: false, code, error: `why ${code}` }));
    expect(decodeCertResponseBatch(encodeCertResponseBatch(results))).toEqual(results);
  });

  it('garbage, an empty batch and a wrong content type are 4xx; the server keeps serving', async () => {
    const emptyBatch = Uint8Array.of(0x03, 0x80, 0x05, 0x01, 0x82, 0x80, 0x01, 0x00); // SIZE(1..MAX) violated
    const bodies = [new Uint8Array(0), Uint8Array.of(0xff, 0x00), emptyBatch, Ieee1609Dot2DataCodec.encode({ protocolVersion: 3, content: { unsecuredData: Uint8Array.of(9) } })];
    for (const body of bodies) {
      const res = await fetch(server.url + ACA_CERT_REQUESTS_PATH, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body });
      expect(res.status).toBe(400);
      expect(res.headers.get('ieee-1609.2.1-error')).toBe('400-42');
      await res.body?.cancel();
    }
    const json = await fetch(server.url + ACA_CERT_REQUESTS_PATH, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[]' });
    expect(json.status).toBe(415);
    await json.body?.cancel();
    const [r] = await new HttpAcaClient({ baseUrl: server.url }).issue(requests.slice(0, 1));
    expect(r!.ok).toBe(true);
  });

  it('with a component token: 401 without it, served with it', async () => {
    const token = 'aca-component-token-0123456789';
    const guarded = await startTestServer((s) => s.registerComponent({ name: 'aca', register: registerAca, deps: { aca, token } }));
    try {
      const e = await new HttpAcaClient({ baseUrl: guarded.url }).issue(requests.slice(0, 1)).catch((x: unknown) => x);
      expect((e as ScmsHttpError).status).toBe(401);
      const [r] = await new HttpAcaClient({ baseUrl: guarded.url, token }).issue(requests.slice(0, 1));
      expect(r!.ok).toBe(true);
    } finally {
      await guarded.close();
    }
  });
});
