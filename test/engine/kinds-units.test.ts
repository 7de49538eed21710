// Certificate kinds, piece by piece: RA classification and policy (ra/kinds.ts), the RaAcaCertRequests it builds,
// the ACA on requests without linkageInfo, and EE refusals of responses that do not fit its request (ee/kinds.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AcaEeCertResponsePlainSpdu as PlainCodec, AcaEeCertResponsePrivateSpdu as PrivateCodec, Ieee1609Dot2Data as Ieee1609Dot2DataCodec } from '../../src/codec/index.js';
import type { EeRaCertRequest } from '../../src/codec/gen/Ieee1609Dot2Dot1EeRaInterface.js';
import type { AcaService } from '../../src/engine/aca/aca.js';
import { createKindRequest, processNonButterflyResponse, KindResponseError } from '../../src/engine/ee/kinds.js';
import { ScmsHttpError } from '../../src/engine/http/errors.js';
import { signRaAcaCertRequest } from '../../src/engine/ra/expand.js';
import { checkKindPermissions, classifyRequest, kindRaAcaCertRequests, planKindRequest, type KindPlan } from '../../src/engine/ra/kinds.js';
import { certificateKeyPairMatches, fromPublicVerificationKey, eccPointToBytes } from '../../src/security/certificate.js';
import { verifySignedSpdu } from '../../src/security/scms-pdu.js';
import { dateToTime32, ManualClock } from '../../src/security/time.js';
import { acaService, hierarchy, iPeriodParamsOf, laPair, type Hierarchy, type TempDb } from './aca/fixtures.js';

const NOW = new Date('2025-03-01T00:00:00Z');
const clock = new ManualClock(NOW);
const validity = { start: dateToTime32(NOW), duration: { hours: 24 * 30 } };
const perms = (...psids: number[]) => psids.map((psid) => ({ psid: BigInt(psid) }));

let h: Hierarchy;
let aca: AcaService;
const dbs: TempDb[] = [];

beforeAll(async () => {
  h = await hierarchy();
  aca = acaService(h, await laPair(h, dbs), clock);
}, 60_000);
afterAll(async () => {
  for (const d of dbs) await d.close();
});

function req(opts: { id: EeRaCertRequest['tbsCert']['id']; form: 'butterfly' | 'plain' | 'encrypted' }): EeRaCertRequest {
  const r =
    opts.form === 'butterfly'
      ? createKindRequest({ kind: 'pseudonym', form: 'butterfly', variant: 'unified', type: 'implicit', tbsCert: { validityPeriod: validity, appPermissions: perms(32) }, clock }).request
      : createKindRequest({ kind: 'identification', form: opts.form, type: 'explicit', tbsCert: { validityPeriod: validity, appPermissions: perms(32) }, clock }).request;
  r.tbsCert.id = opts.id;
  return r;
}

describe('RA classification (tbsCert.id, AdditionalParams, device type)', () => {
  const lv = { linkageData: { iCert: 0, 'linkage-value': new Uint8Array(9) } };
  const ids = { linkageData: lv, none: { none: null }, name: { name: 'x' }, binaryId: { binaryId: Uint8Array.of(1, 2) } };
  it.each([
    ['obu', 'linkageData', 'butterfly', 'pseudonym'],
    ['obu', 'none', 'butterfly', 'pseudonym'],
    ['obu', 'name', 'butterfly', 'identification'],
    ['obu', 'binaryId', 'encrypted', 'identification'],
    ['obu', 'none', 'plain', 'identification'],
    ['obu', 'linkageData', 'plain', 'pseudonym'],
    ['rsu', 'none', 'butterfly', 'identification'],
    ['rsu', 'none', 'encrypted', 'identification'],
    ['rsu', 'linkageData', 'butterfly', 'pseudonym'],
  ] as const)('%s, id %s, %s -> %s', (device, idAlt, form, kind) => {
    const id = ids[idAlt];
    expect(classifyRequest(req({ id: id as never, form }), device)).toEqual({ kind, form });
  });
});

describe('RA kind policy', () => {
  const code = (f: () => void) => {
    try {
      f();
    } catch (e) {
      return e instanceof ScmsHttpError ? `${e.status}-${e.code}` : String(e);
    }
    return 'ok';
  };
  const all = [{ subjectPermissions: { all: null }, minChainLength: 1, chainLengthRange: 0, eeType: '10' }] as never;

  it('SSP: the listed SSP is required when the policy restricts it', () => {
    const policy = structuredClone(h.policy);
    policy.deviceTypes.RSU.identification = [{ psid: 130, ssp: { opaque: '0102' } }];
    const r = (ssp?: Uint8Array) => {
      const x = req({ id: { none: null }, form: 'plain' });
      x.tbsCert.appPermissions = [{ psid: 130n, ...(ssp ? { ssp: { opaque: ssp } } : {}) }];
      return x;
    };
    const cls = { kind: 'identification', form: 'plain' } as const;
    expect(code(() => checkKindPermissions(r(Uint8Array.of(1, 2)), cls, all, 'rsu', policy))).toBe('ok');
    expect(code(() => checkKindPermissions(r(Uint8Array.of(1, 3)), cls, all, 'rsu', policy))).toBe('400-30');
    expect(code(() => checkKindPermissions(r(), cls, all, 'rsu', policy))).toBe('400-30');
  });

  it('a kind with an empty list for the device type -> 400-32; validity beyond identificationValidity -> 400-33', () => {
    const cls = { kind: 'identification', form: 'plain' } as const;
    expect(code(() => checkKindPermissions(req({ id: { none: null }, form: 'plain' }), cls, all, 'obu', h.policy))).toBe('400-32');
    const long = req({ id: { none: null }, form: 'plain' });
    const hours = Math.floor(h.policy.identificationValidity / 3600); // 8765 h <= 1 year of 31556952 s < 8766 h
    long.tbsCert.validityPeriod = { start: validity.start, duration: { hours: hours + 1 } };
    expect(code(() => planKindRequest(long, cls, h.policy, 0))).toBe('400-33');
    long.tbsCert.validityPeriod = { start: validity.start, duration: { hours } };
    expect(code(() => planKindRequest(long, cls, h.policy, 0))).toBe('ok');
  });
});

describe('RaAcaCertRequests of the other kinds', () => {
  const plan = (form: KindPlan['form']): KindPlan => ({ kind: 'identification', form, i: 7, validityPeriod: validity });
  const opts = { iPeriod: undefined as never, generationTime: dateToTime32(NOW) };

  it('plain explicit: the EE key as is, flags clear, no certEncKey, no linkageInfo, id and validity as requested', () => {
    const { request } = createKindRequest({ kind: 'identification', form: 'plain', type: 'explicit', id: { name: 'rsu' }, tbsCert: { validityPeriod: validity, appPermissions: perms(130) }, clock });
    const [r] = kindRaAcaCertRequests(request, plan('plain'), opts);
    expect(r!.i).toBe(7);
    expect(r!.j).toBe(0);
    expect(r!.request.flags).toBe('00000000');
    expect(r!.request.linkageInfo).toBeUndefined();
    expect(r!.request.certEncKey).toBeUndefined();
    expect(r!.request.tbsCert.id).toEqual({ name: 'rsu' });
    expect(r!.request.tbsCert.validityPeriod).toEqual(validity);
    expect(r!.request.tbsCert.verifyKeyIndicator).toEqual(request.tbsCert.verifyKeyIndicator);
  });

  it('encrypted implicit: reconstructionValue = the EE key, certEncKey = AdditionalParams.encryptionKey', () => {
    const { request } = createKindRequest({ kind: 'identification', form: 'encrypted', type: 'implicit', tbsCert: { validityPeriod: validity, appPermissions: perms(130) }, clock });
    const [r] = kindRaAcaCertRequests(request, plan('encrypted'), opts);
    const rv = (r!.request.tbsCert.verifyKeyIndicator as { reconstructionValue: never }).reconstructionValue;
    expect(eccPointToBytes(rv)).toEqual(fromPublicVerificationKey(request.tbsCert.verifyKeyIndicator.verificationKey).publicKey);
    expect(r!.request.certEncKey).toEqual((request.additionalParams as { encryptionKey: unknown }).encryptionKey);
    expect(r!.request.type).toBe('implicit');
  });

  it('butterfly identification: the cocoon of (i, 0), id and validity kept, no linkageInfo', () => {
    const { request } = createKindRequest({ kind: 'identification', form: 'butterfly', variant: 'original', type: 'explicit', id: { name: 'obu' }, tbsCert: { validityPeriod: validity, appPermissions: perms(32) }, clock });
    const [r] = kindRaAcaCertRequests(request, plan('butterfly'), opts);
    expect(r!.request.linkageInfo).toBeUndefined();
    expect(r!.request.flags).toBe('10000000'); // butterflyExplicit
    expect(r!.request.certEncKey).toBeDefined();
    expect(r!.request.tbsCert.id).toEqual({ name: 'obu' });
    expect(r!.request.tbsCert.validityPeriod).toEqual(validity);
    expect(r!.request.tbsCert.verifyKeyIndicator).not.toEqual(request.tbsCert.verifyKeyIndicator);
  });
});

describe('ACA without linkageInfo, and the EE on the responses', () => {
  async function issue(form: 'plain' | 'encrypted', type: 'explicit' | 'implicit', mutate?: (r: ReturnType<typeof kindRaAcaCertRequests>[0]['request']) => void) {
    const ee = createKindRequest({ kind: 'identification', form, type, id: { name: 'rsu' }, tbsCert: { validityPeriod: validity, appPermissions: perms(130) }, clock });
    const [r] = kindRaAcaCertRequests(ee.request, { kind: 'identification', form, i: 0, validityPeriod: validity }, { iPeriod: iPeriodParamsOf(h.policy), generationTime: dateToTime32(NOW) });
    mutate?.(r!.request);
    const [res] = await aca.issue([Ieee1609Dot2DataCodec.encode(await signRaAcaCertRequest(r!.request, h.ra.cert, h.ra.key.signer))]);
    return { ee, res: res! };
  }
  const acaResponse = (bytes: Uint8Array) => {
    const v = verifySignedSpdu(bytes, { resolveSigner: () => h.aca.cert });
    expect(v.ok).toBe(true);
    return (v as { pdu: { content: { 'aca-ra': { acaRaCertResponse: { acaResponse: Record<string, unknown> } } } } }).pdu.content['aca-ra'].acaRaCertResponse.acaResponse;
  };

  it('plain explicit: AcaEeCertResponsePlainSpdu with the EE key certified as is, no privateKeyInfo', async () => {
    const { ee, res } = await issue('plain', 'explicit');
    expect(res.ok, JSON.stringify(res)).toBe(true);
    const ar = acaResponse((res as { response: Uint8Array }).response);
    expect(Object.keys(ar)).toEqual(['plain']);
    const plain = PlainCodec.encode(ar.plain as never);
    const got = await processNonButterflyResponse(plain, ee.secrets as never, { acaChain: h.acaChain, trustAnchors: [h.root.cert], clock });
    expect(got.certificate.toBeSigned.id).toEqual({ name: 'rsu' });
    expect(certificateKeyPairMatches(got.certificate, (ee.secrets as { signingPrivate: bigint }).signingPrivate)).toBe(true);
    // Another EE's key: refused.
    const other = createKindRequest({ kind: 'identification', form: 'plain', type: 'explicit', tbsCert: { validityPeriod: validity, appPermissions: perms(130) }, clock });
    await expect(processNonButterflyResponse(plain, other.secrets as never, { acaChain: h.acaChain, trustAnchors: [h.root.cert], clock })).rejects.toThrow(KindResponseError);
    // Expected from another ACA: refused.
    await expect(processNonButterflyResponse(plain, ee.secrets as never, { acaChain: [h.aca2.cert, h.ica.cert, h.root.cert], trustAnchors: [h.root.cert], clock })).rejects.toThrow(/not issued by the expected ACA/);
  });

  it('encrypted implicit: AcaEeCertResponsePrivateSpdu only the encryptionKey holder can open', async () => {
    const { ee, res } = await issue('encrypted', 'implicit');
    expect(res.ok, JSON.stringify(res)).toBe(true);
    const ar = acaResponse((res as { response: Uint8Array }).response);
    expect(Object.keys(ar)).toEqual(['private']);
    const priv = PrivateCodec.encode(ar.private as never);
    const got = await processNonButterflyResponse(priv, ee.secrets as never, { acaChain: h.acaChain, trustAnchors: [h.root.cert], clock });
    expect(got.certificate.type).toBe('implicit');
    expect(certificateKeyPairMatches(got.certificate, got.privateKey, h.acaChain)).toBe(true);
    const other = createKindRequest({ kind: 'identification', form: 'encrypted', type: 'implicit', tbsCert: { validityPeriod: validity, appPermissions: perms(130) }, clock });
    await expect(processNonButterflyResponse(priv, other.secrets as never, { acaChain: h.acaChain, trustAnchors: [h.root.cert], clock })).rejects.toThrow(/decrypt/);
  });

  it('refuses LinkageData without linkageInfo (the RA filler must never be certified)', async () => {
    const { res } = await issue('plain', 'explicit', (r) => {
      r.tbsCert.id = { linkageData: { iCert: 0, 'linkage-value': new Uint8Array(9) } } as never;
    });
    expect(res.ok).toBe(false);
    expect((res as { code: string }).code).toBe('invalid-request');
  });
});
