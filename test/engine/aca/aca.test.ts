// ACA tamper cases: RA signature, RA trust, encPlv for another ACA / corrupted / same LA twice, corrupted responses.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AcaEeCertResponsePrivateSpdu, Ieee1609Dot2Data as Ieee1609Dot2DataCodec, ScmsPdu, SignedCertificateRequest, type Certificate } from '../../../src/codec/index.js';
import type { RaAcaCertRequest } from '../../../src/codec/gen/Ieee1609Dot2Dot1AcaRaInterface.js';
import { toHex } from '../../../src/crypto/bytes.js';
import { sha256 } from '../../../src/crypto/hash.js';
import { verifySignedSpdu } from '../../../src/security/scms-pdu.js';
import { verifyCertificateRequest } from '../../../src/security/spdu.js';
import { dateToTime32, iPeriodOf, ManualClock } from '../../../src/security/time.js';
import { AcaService, type AcaIssueResult } from '../../../src/engine/aca/aca.js';
import type { LaService } from '../../../src/engine/la/la.js';
import { butterflyRequestInfo, expandCocoons, raAcaCertRequest, signRaAcaCertRequest, signRaAcaCertRequestBytes } from '../../../src/engine/ra/expand.js';
import { createButterflyRequest } from '../../../src/engine/ee/butterfly.js';
import { AuthorizationResponseError, processAuthorizationResponse } from '../../../src/engine/ee/authorization.js';
import type { Signer } from '../../../src/security/signer.js';
import { acaService, hierarchy, iPeriodParamsOf, laPair, type Hierarchy, type TempDb } from './fixtures.js';

const NOW = new Date('2025-03-01T00:00:00Z');
const clock = new ManualClock(NOW);
let h: Hierarchy;
let la1: LaService;
let la2: LaService;
let aca: AcaService;
const dbs: TempDb[] = [];

beforeAll(async () => {
  h = await hierarchy();
  [la1, la2] = await laPair(h, dbs);
  aca = acaService(h, [la1, la2], clock);
});
afterAll(async () => {
  for (const d of dbs) await d.close();
});

async function buildRequest(opts: { plvFor?: Certificate; variant?: 'unified' | 'compactUnified'; sameLa?: boolean } = {}) {
  const variant = opts.variant ?? 'unified';
  const ee = createButterflyRequest({
    variant,
    type: 'implicit',
    tbsCert: { validityPeriod: { start: dateToTime32(NOW), duration: { hours: 168 } }, appPermissions: [{ psid: 32n }] },
    clock,
  });
  const p = iPeriodParamsOf(h.policy);
  const i = iPeriodOf(p, dateToTime32(NOW));
  const info = butterflyRequestInfo(ee.request);
  const [cocoon] = expandCocoons(info, [{ i, j: 0 }]);
  const acaCertificate = opts.plvFor ?? h.aca.cert;
  const r1 = await la1.preLinkageValues({ newChain: true, iRange: { first: i, last: i }, jMax: 1, acaCertificate });
  const r2 = await (opts.sameLa ? la1 : la2).preLinkageValues({ newChain: true, iRange: { first: i, last: i }, jMax: 1, acaCertificate });
  const req = raAcaCertRequest({
    info,
    eeRequest: ee.request,
    cocoon: cocoon!,
    linkageInfo: { encPlv1: r1.plvs[0]!.encPlv, encPlv2: r2.plvs[0]!.encPlv },
    iPeriod: p,
    generationTime: dateToTime32(NOW),
  });
  return { ee, req, i };
}

async function sign(req: RaAcaCertRequest, cert = h.ra.cert, signer: Signer = h.ra.key.signer): Promise<Uint8Array> {
  return Ieee1609Dot2DataCodec.encode(await signRaAcaCertRequest(req, cert, signer));
}

function failure(r: AcaIssueResult[]): { code: string; error: string } {
  expect(r).toHaveLength(1);
  expect(r[0]!.ok).toBe(false);
  return r[0] as { code: string; error: string };
}

describe('ACA: RA authentication', () => {
  it('accepts the trusted RA and answers with requestHash = HashedId8(request SPDU), signed by the ACA', async () => {
    const { req } = await buildRequest();
    const spdu = await sign(req);
    const [r] = await aca.issue([spdu]);
    expect(r!.ok).toBe(true);
    const v = verifySignedSpdu((r as { response: Uint8Array }).response, { resolveSigner: () => h.aca.cert });
    expect(v.ok).toBe(true);
    const resp = ((v as { pdu: { content: { 'aca-ra': { acaRaCertResponse: { requestHash: Uint8Array } } } } }).pdu.content)['aca-ra'].acaRaCertResponse;
    expect(toHex(resp.requestHash)).toBe(toHex(sha256(spdu).slice(-8)));
  });

  it('refuses a wrong RA signature', async () => {
    const { req } = await buildRequest();
    const spdu = await sign(req);
    spdu[spdu.length - 1]! ^= 0x01; // last octet of s
    const f = failure(await aca.issue([spdu]));
    expect(f.code).toBe('bad-signature');
  });

  it('refuses a request signed with another key under the RA certificate', async () => {
    const { req } = await buildRequest();
    const f = failure(await aca.issue([await sign(req, h.ra.cert, h.la1.key.signer)]));
    expect(f.code).toBe('bad-signature');
  });

  it('refuses a request from a certificate the ACA does not trust as RA (an LA certificate)', async () => {
    const { req } = await buildRequest();
    const f = failure(await aca.issue([await sign(req, h.la1.cert, h.la1.key.signer)]));
    expect(f.code).toBe('untrusted-ra');
  });

  it('refuses malformed bytes', async () => {
    const f = failure(await aca.issue([Uint8Array.of(3, 0x80, 1)]));
    expect(f.code).toBe('malformed');
  });
});

describe('ACA: encrypted pre-linkage values', () => {
  it('refuses encPlvs the LAs encrypted for another ACA', async () => {
    const { req } = await buildRequest({ plvFor: h.aca2.cert });
    const f = failure(await aca.issue([await sign(req)]));
    expect(f.code).toBe('linkage');
    expect(f.error).toMatch(/not encrypted for this ACA/);
    // ... which ACA2 accepts
    const aca2 = acaService(h, [la1, la2], clock, 'aca2');
    const [ok] = await aca2.issue([await sign(req)]);
    expect(ok!.ok).toBe(true);
  });

  it('refuses a corrupted encPlv ciphertext', async () => {
    const { req } = await buildRequest();
    const ct = (req.linkageInfo!.encPlv2.encPlv.content.encryptedData.ciphertext as { aes128ccm: { ccmCiphertext: Uint8Array } }).aes128ccm.ccmCiphertext;
    ct[0]! ^= 0x80;
    const f = failure(await aca.issue([await sign(req)]));
    expect(f.code).toBe('linkage');
    expect(f.error).toMatch(/AES-CCM tag/);
  });

  it('refuses two encPlvs from the same LA', async () => {
    const { req } = await buildRequest({ sameLa: true });
    const f = failure(await aca.issue([await sign(req)]));
    expect(f.code).toBe('linkage');
    expect(f.error).toMatch(/same LA/);
  });

  it('refuses a key delivery not signed by the LA of that laId', async () => {
    // LA2's client answering for laId 1: the delivery's signer (LA2, laId 2) does not match laId 1.
    const impostor = { laId: 1, acaKeyDelivery: (c: Certificate) => la2.acaKeyDelivery(c) };
    const acaX = new AcaService({
      certificate: h.aca.cert,
      signer: h.aca.key.signer,
      privateScalar: h.aca.key.d,
      encryptionKey: { privateKey: h.aca.enc!.d },
      raCertificates: [h.ra.cert],
      laCertificates: [h.la1.cert, h.la2.cert],
      laKeys: [impostor, la2],
      clock,
    });
    const { req } = await buildRequest();
    const f = failure(await acaX.issue([await sign(req)]));
    expect(f.code).toBe('linkage');
    expect(f.error).toMatch(/LA 1 key delivery/);
  });
});

describe('ACA request rules and EE-side response checks', () => {
  it('refuses inconsistent flags (cubk with certEncKey, butterflyExplicit with implicit)', async () => {
    const { req } = await buildRequest();
    const f1 = failure(await aca.issue([await sign({ ...req, flags: '01000000' })]));
    expect(f1.error).toMatch(/cubk needs certEncKey absent/);
    const f2 = failure(await aca.issue([await sign({ ...req, flags: '10000000' })]));
    expect(f2.error).toMatch(/butterflyExplicit needs type explicit/);
  });

  it('a corrupted response, or another EE, fails with a clear error; the intact one works', async () => {
    const { ee, req, i } = await buildRequest();
    const [r] = await aca.issue([await sign(req)]);
    const v = verifySignedSpdu((r as { response: Uint8Array }).response, { resolveSigner: () => h.aca.cert });
    const acaResponse = ((v as { pdu: { content: { 'aca-ra': { acaRaCertResponse: { acaResponse: { private: unknown } } } } } }).pdu.content)['aca-ra']
      .acaRaCertResponse.acaResponse;
    const bytes = AcaEeCertResponsePrivateSpdu.encode(acaResponse.private as never);
    const input = { secrets: ee.secrets, i, j: 0, kind: 'private' as const, acaChain: h.acaChain, trustAnchors: [h.root.cert], clock };
    const good = await processAuthorizationResponse({ ...input, response: bytes });
    expect(good.certificate.type).toBe('implicit');

    const corrupted = bytes.slice();
    corrupted[Math.floor(corrupted.length / 2)]! ^= 0x01;
    await expect(processAuthorizationResponse({ ...input, response: corrupted })).rejects.toThrow(AuthorizationResponseError);

    const other = createButterflyRequest({
      variant: 'unified',
      type: 'implicit',
      tbsCert: { validityPeriod: { start: dateToTime32(NOW), duration: { hours: 1 } }, appPermissions: [{ psid: 32n }] },
    });
    await expect(processAuthorizationResponse({ ...input, secrets: other.secrets, response: bytes })).rejects.toThrow(/cannot decrypt/);
    await expect(processAuthorizationResponse({ ...input, j: 1, response: bytes })).rejects.toThrow(/cannot decrypt/);
    // a response claimed to come from ACA2: the outer signature does not resolve
    await expect(processAuthorizationResponse({ ...input, acaChain: [h.aca2.cert, h.ica.cert, h.root.cert], response: bytes })).rejects.toThrow(
      AuthorizationResponseError,
    );
  });
});

describe('ACA batches and the RA request octets', () => {
  it('signRaAcaCertRequestBytes is the codec encoding of the signed request, and the ACA accepts it', async () => {
    const { req } = await buildRequest();
    const bytes = await signRaAcaCertRequestBytes(req, h.ra.cert, h.ra.key.signer);
    const d = Ieee1609Dot2DataCodec.decode(bytes);
    expect(toHex(Ieee1609Dot2DataCodec.encode(d))).toBe(toHex(bytes));
    const scrBytes = (d.content as { signedCertificateRequest: Uint8Array }).signedCertificateRequest;
    const scr = SignedCertificateRequest.decode(scrBytes);
    // the concatenated COER equals what the codec makes of the decoded value
    expect(toHex(SignedCertificateRequest.encode(scr))).toBe(toHex(scrBytes));
    expect(scr.hashAlgorithmId).toBe('sha256');
    const v = verifyCertificateRequest(bytes, { resolveSigner: () => h.ra.cert });
    expect(v.ok).toBe(true);
    const [r] = await aca.issue([bytes]);
    expect(r!.ok).toBe(true);
  });

  it('one batch with good and bad requests answers each in order (the bad ones do not spoil the batch)', async () => {
    const good = await Promise.all([buildRequest(), buildRequest({ variant: 'compactUnified' }), buildRequest()]);
    const spdus = await Promise.all(good.map((g) => sign(g.req)));
    const tampered = spdus[0]!.slice();
    tampered[tampered.length - 5]! ^= 0x01; // in the signature
    const foreign = await buildRequest({ plvFor: h.aca2.cert });
    const batch = [spdus[0]!, tampered, spdus[1]!, await sign(foreign.req), spdus[2]!];
    const rs = await aca.issue(batch);
    expect(rs.map((r) => r.ok)).toEqual([true, false, true, false, true]);
    expect((rs[1] as { code: string }).code).toBe('bad-signature');
    expect((rs[3] as { code: string }).code).toBe('linkage');
    rs.forEach((r, n) => {
      if (!r.ok) return;
      // the response octets (put together from the signed ToBeSignedData) are the codec's encoding of their value
      const outer = Ieee1609Dot2DataCodec.decode(r.response);
      expect(toHex(Ieee1609Dot2DataCodec.encode(outer))).toBe(toHex(r.response));
      // and so is the ScmsPdu inside (its 18-octet head is put together by the ACA)
      const payload = (outer.content as { signedData: { tbsData: { payload: { data: { content: { unsecuredData: Uint8Array } } } } } }).signedData.tbsData.payload.data.content.unsecuredData;
      expect(toHex(ScmsPdu.encode(ScmsPdu.decode(payload)))).toBe(toHex(payload));
      const v = verifySignedSpdu(r.response, { resolveSigner: () => h.aca.cert });
      expect(v.ok).toBe(true);
      const resp = (v as { pdu: { content: { 'aca-ra': { acaRaCertResponse: { requestHash: Uint8Array; acaResponse: object } } } } }).pdu.content['aca-ra'].acaRaCertResponse;
      expect(toHex(resp.requestHash)).toBe(toHex(sha256(batch[n]!).slice(-8)));
      expect(Object.keys(resp.acaResponse)[0]).toBe(n === 2 ? 'cubk' : 'private');
    });
  });
});
