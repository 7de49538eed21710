// Chain verification (1609.2 5.1.2.x): root -> ICA -> ECA -> enrollment (implicit) built here verifies; every
// failure is reported at the right index with the right code; region containment; the published RCA -> ICA.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Certificate } from '../../src/codec/gen/Ieee1609Dot2.js';
import { mulBase } from '../../src/crypto/curves.js';
import {
  buildTbsCertificate,
  decodeCertificate,
  issueExplicitCertificate,
  issueImplicitCertificate,
  reconstructImplicitPrivateKey,
  type TbsCertificateInput,
} from '../../src/security/certificate.js';
import { regionWithin, verifyCertificateChain, type ChainError } from '../../src/security/chain.js';
import { ManualClock } from '../../src/security/time.js';
import { hex, readJson, toHex } from '../crypto/vectors.js';
import { testKey, type TestKey } from './cert-fixtures.js';

const DAY = 86400;
const T0 = new Date('2025-01-01T00:00:00Z');
const at = (days: number) => new Date(T0.getTime() + days * DAY * 1000);

interface Pki {
  rootKey: TestKey;
  root: Certificate;
  icaKey: TestKey;
  ica: Certificate;
  ecaKey: TestKey;
  eca: Certificate;
  enrolment: Certificate;
  enrolmentPrivate: bigint;
  app: Certificate;
}

const rootInput = (k: TestKey, name = 'root.test'): TbsCertificateInput => ({
  id: { name },
  validity: { start: T0, durationSeconds: 3650 * DAY },
  region: { countries: [840, 124] },
  certIssuePermissions: [{ psids: 'all', minChainLength: 2, chainLengthRange: -1, eeType: { app: true, enrol: true } }],
  verifyKey: { curve: k.curve, publicKey: k.publicKey },
});
const icaInput = (k: TestKey): TbsCertificateInput => ({
  id: { name: 'ica.test' },
  validity: { start: T0, durationSeconds: 1000 * DAY },
  region: { countries: [840] },
  certIssuePermissions: [{ psids: 'all', minChainLength: 1, chainLengthRange: -1, eeType: { app: true, enrol: true } }],
  verifyKey: k.publicKey,
});
const ecaInput = (k: TestKey, over: Partial<TbsCertificateInput> = {}): TbsCertificateInput => ({
  id: { name: 'eca.test' },
  validity: { start: T0, durationSeconds: 500 * DAY },
  certIssuePermissions: [{ psids: [0x20, 0x26], minChainLength: 1, eeType: { enrol: true } }],
  verifyKey: k.publicKey,
  ...over,
});

async function buildPki(): Promise<Pki> {
  const rootKey = testKey('nistP384');
  const root = await issueExplicitCertificate({ tbs: buildTbsCertificate(rootInput(rootKey)), issuer: 'self', signer: rootKey.signer });
  const icaKey = testKey();
  const ica = await issueExplicitCertificate({ tbs: buildTbsCertificate(icaInput(icaKey)), issuer: root, signer: rootKey.signer });
  const ecaKey = testKey();
  const eca = await issueExplicitCertificate({ tbs: buildTbsCertificate(ecaInput(ecaKey)), issuer: ica, signer: icaKey.signer });
  const req = testKey();
  const issued = issueImplicitCertificate({
    tbs: buildTbsCertificate({ id: 'none', validity: { start: at(1), durationSeconds: 100 * DAY }, certRequestPermissions: [{ psids: [0x20, 0x26] }] }),
    issuer: eca,
    issuerPrivateScalar: ecaKey.d,
    requestPublicKey: req.publicKey,
  });
  const enrolmentPrivate = reconstructImplicitPrivateKey(issued.certificate, eca, req.d, issued.privateKeyContribution);
  const appKey = testKey();
  const app = await issueExplicitCertificate({
    tbs: buildTbsCertificate({ id: 'none', validity: { start: at(1), durationSeconds: 30 * DAY }, appPermissions: [{ psid: 0x20 }], verifyKey: appKey.publicKey }),
    issuer: ica,
    signer: icaKey.signer,
  });
  return { rootKey, root, icaKey, ica, ecaKey, eca, enrolment: issued.certificate, enrolmentPrivate, app };
}

const codes = (errors: ChainError[]) => errors.map((e) => `${e.index}:${e.code}`);

function expectError(res: ReturnType<typeof verifyCertificateChain>, index: number, code: string, reason?: RegExp) {
  expect(res.ok).toBe(false);
  if (res.ok) return;
  const hit = res.errors.find((e) => e.index === index && e.code === code);
  expect(hit, `expected ${index}:${code} in ${JSON.stringify(res.errors)}`).toBeDefined();
  if (reason) expect(hit!.reason).toMatch(reason);
}

describe('verifyCertificateChain', () => {
  let p: Pki;
  const clock = new ManualClock(at(10));
  beforeAll(async () => {
    p = await buildPki();
  });

  it('root -> ICA -> ECA -> enrollment (implicit) verifies; public keys include the reconstructed one', () => {
    const res = verifyCertificateChain([p.enrolment, p.eca, p.ica, p.root], { trustAnchors: [p.root], clock });
    expect(res.ok ? [] : res.errors).toEqual([]);
    if (!res.ok) return;
    expect(res.root).toBe(p.root);
    expect(res.publicKeys).toHaveLength(4);
    expect(toHex(res.publicKeys[0]!.publicKey)).toBe(toHex(mulBase('nistP256', p.enrolmentPrivate)));
    expect(toHex(res.publicKeys[2]!.publicKey)).toBe(toHex(p.icaKey.publicKey));
    expect(res.publicKeys[3]!.curve).toBe('nistP384');
  });

  it('a chain without its root is completed from the trust anchors', () => {
    const res = verifyCertificateChain([p.enrolment, p.eca, p.ica], { trustAnchors: [p.root], clock });
    expect(res.ok).toBe(true);
    if (res.ok) expect(res.chain).toHaveLength(4);
  });

  it('requiredPsid: the leaf must grant it', () => {
    expect(verifyCertificateChain([p.app, p.ica], { trustAnchors: [p.root], clock, requiredPsid: 0x20 }).ok).toBe(true);
    expectError(verifyCertificateChain([p.app, p.ica], { trustAnchors: [p.root], clock, requiredPsid: 0x26 }), 0, 'psid-not-permitted', /0x26/);
    expectError(verifyCertificateChain([p.enrolment, p.eca, p.ica], { trustAnchors: [p.root], clock, requiredPsid: 0x20 }), 0, 'psid-not-permitted');
  });

  it('bad signature on the leaf', () => {
    const sig = (p.app.signature as any).ecdsaNistP256Signature;
    const s = new Uint8Array(sig.sSig);
    s[5] ^= 0x10;
    const bad = { ...p.app, signature: { ecdsaNistP256Signature: { ...sig, sSig: s } } } as Certificate;
    const res = verifyCertificateChain([bad, p.ica, p.root], { trustAnchors: [p.root], clock });
    expectError(res, 0, 'bad-signature', /does not verify with the key of CA certificate 'ica.test'/);
    if (!res.ok) expect(codes(res.errors)).toEqual(['0:bad-signature']);
  });

  it('bad signature on a CA (its subordinate then names a different certificate)', () => {
    const sig = (p.eca.signature as any).ecdsaNistP256Signature;
    const s = new Uint8Array(sig.sSig);
    s[0] ^= 1;
    const bad = { ...p.eca, signature: { ecdsaNistP256Signature: { ...sig, sSig: s } } } as Certificate;
    const res = verifyCertificateChain([p.enrolment, bad, p.ica, p.root], { trustAnchors: [p.root], clock });
    expectError(res, 1, 'bad-signature');
    expectError(res, 0, 'issuer-mismatch');
  });

  it('wrong issuer (ICA left out)', () => {
    const res = verifyCertificateChain([p.enrolment, p.eca, p.root], { trustAnchors: [p.root], clock });
    expectError(res, 1, 'issuer-mismatch', /names issuer/);
  });

  it('issuer not found among the trust anchors', () => {
    expectError(verifyCertificateChain([p.enrolment, p.eca], { trustAnchors: [p.root], clock }), 1, 'issuer-not-found');
  });

  it('root not trusted', async () => {
    const k = testKey();
    const other = await issueExplicitCertificate({ tbs: buildTbsCertificate(rootInput(k, 'other.test')), issuer: 'self', signer: k.signer });
    const res = verifyCertificateChain([p.enrolment, p.eca, p.ica, p.root], { trustAnchors: [other], clock });
    expectError(res, 3, 'untrusted-root', /root certificate 'root.test'/);
    if (!res.ok) expect(codes(res.errors)).toEqual(['3:untrusted-root']);
  });

  it('expired leaf, and a leaf not yet valid', () => {
    const res = verifyCertificateChain([p.enrolment, p.eca, p.ica, p.root], { trustAnchors: [p.root], clock: new ManualClock(at(102)) });
    expectError(res, 0, 'expired');
    if (!res.ok) expect(codes(res.errors)).toEqual(['0:expired']);
    const early = verifyCertificateChain([p.enrolment, p.eca, p.ica, p.root], { trustAnchors: [p.root], clock: new ManualClock(at(0.5)) });
    expectError(early, 0, 'not-yet-valid');
  });

  it('subordinate validity outside its issuer', async () => {
    const eca = await issueExplicitCertificate({
      tbs: buildTbsCertificate(ecaInput(p.ecaKey, { validity: { start: T0, durationSeconds: 1500 * DAY } })),
      issuer: p.ica,
      signer: p.icaKey.signer,
    });
    const res = verifyCertificateChain([eca, p.ica, p.root], { trustAnchors: [p.root], clock });
    expectError(res, 0, 'validity-outside-issuer', /not within CA certificate 'ica.test' validity/);
    if (!res.ok) expect(codes(res.errors)).toEqual(['0:validity-outside-issuer']);
  });

  it('psid not permitted by the issuer', async () => {
    const req = testKey();
    const { certificate } = issueImplicitCertificate({
      tbs: buildTbsCertificate({ id: 'none', validity: { start: at(1), durationSeconds: 30 * DAY }, certRequestPermissions: [{ psids: [0x20, 0x30] }] }),
      issuer: p.eca,
      issuerPrivateScalar: p.ecaKey.d,
      requestPublicKey: req.publicKey,
    });
    const res = verifyCertificateChain([certificate, p.eca, p.ica, p.root], { trustAnchors: [p.root], clock });
    expectError(res, 0, 'permissions', /grants psid 0x30 which its CA certificate 'eca.test' does not allow/);
    if (!res.ok) expect(codes(res.errors)).toEqual(['0:permissions']);
  });

  it('region outside the issuer (explicit ECA region; inherited region for its subordinate)', async () => {
    const eca = await issueExplicitCertificate({ tbs: buildTbsCertificate(ecaInput(p.ecaKey, { region: { countries: [124] } })), issuer: p.ica, signer: p.icaKey.signer });
    const res = verifyCertificateChain([eca, p.ica, p.root], { trustAnchors: [p.root], clock });
    expectError(res, 0, 'region-outside-issuer', /country 124 is outside country 840/);
    // a region-less CA inherits its issuer's region: an EE under the ECA (no region) must be within the ICA's
    const req = testKey();
    const { certificate } = issueImplicitCertificate({
      tbs: buildTbsCertificate({ id: 'none', validity: { start: at(1), durationSeconds: 30 * DAY }, region: { countries: [124] } }),
      issuer: p.eca,
      issuerPrivateScalar: p.ecaKey.d,
      requestPublicKey: req.publicKey,
    });
    expectError(verifyCertificateChain([certificate, p.eca, p.ica, p.root], { trustAnchors: [p.root], clock }), 0, 'region-outside-issuer');
    const { certificate: inside } = issueImplicitCertificate({
      tbs: buildTbsCertificate({ id: 'none', validity: { start: at(1), durationSeconds: 30 * DAY }, region: { countries: [840] } }),
      issuer: p.eca,
      issuerPrivateScalar: p.ecaKey.d,
      requestPublicKey: req.publicKey,
    });
    expect(verifyCertificateChain([inside, p.eca, p.ica, p.root], { trustAnchors: [p.root], clock }).ok).toBe(true);
  });

  it('malformed: an implicit certificate carrying a signature', () => {
    const bad = { ...p.enrolment, signature: p.eca.signature } as Certificate;
    expectError(verifyCertificateChain([bad, p.eca, p.ica, p.root], { trustAnchors: [p.root], clock }), 0, 'malformed', /signature/);
  });
});

describe('published RCA -> ICA (scms-verified-vectors.json)', () => {
  it('verifies with the RCA as trust anchor at a time inside both validity periods', () => {
    const vs = readJson('scms-verified-vectors.json').vectors.hashedid.vectors as Array<Record<string, string>>;
    const rca = decodeCertificate(hex(vs.find((v) => v.name === 'pentasecurity_rca')!.certificate_coer!));
    const ica = decodeCertificate(hex(vs.find((v) => v.name === 'pentasecurity_ica')!.certificate_coer!));
    const clock = new ManualClock('2020-01-01T00:00:00Z');
    const res = verifyCertificateChain([ica], { trustAnchors: [rca], clock });
    expect(res.ok ? [] : res.errors).toEqual([]);
    expectError(verifyCertificateChain([ica], { trustAnchors: [rca], clock: new ManualClock('2010-01-01T00:00:00Z') }), 0, 'not-yet-valid');
  });
});

describe('regionWithin', () => {
  const loc = (lat: number, lon: number) => ({ latitude: Math.round(lat * 1e7), longitude: Math.round(lon * 1e7) });
  const circle = (lat: number, lon: number, r: number) => ({ circularRegion: { center: loc(lat, lon), radius: r } });
  const rect = (n: number, w: number, s: number, e: number) => ({ rectangularRegion: [{ northWest: loc(n, w), southEast: loc(s, e) }] });
  it('identified regions by set inclusion', () => {
    const us = { identifiedRegion: [{ countryOnly: 840 }] };
    const usRegions = { identifiedRegion: [{ countryAndRegions: { countryOnly: 840, regions: [1, 2, 3] } }] };
    expect(regionWithin(usRegions, us)).toBeUndefined();
    expect(regionWithin(us, usRegions)).toMatch(/outside/);
    expect(regionWithin({ identifiedRegion: [{ countryAndRegions: { countryOnly: 840, regions: [2] } }] }, usRegions)).toBeUndefined();
    expect(regionWithin({ identifiedRegion: [{ countryAndRegions: { countryOnly: 840, regions: [4] } }] }, usRegions)).toMatch(/outside/);
    const sub = { identifiedRegion: [{ countryAndSubregions: { countryOnly: 840, regionAndSubregions: [{ region: 1, subregions: [5] }] } }] };
    expect(regionWithin(sub, usRegions)).toBeUndefined();
    expect(regionWithin(sub, { identifiedRegion: [{ countryAndSubregions: { countryOnly: 840, regionAndSubregions: [{ region: 1, subregions: [5, 6] }] } }] })).toBeUndefined();
    expect(regionWithin(sub, { identifiedRegion: [{ countryAndSubregions: { countryOnly: 840, regionAndSubregions: [{ region: 1, subregions: [6] }] } }] })).toMatch(/outside/);
  });
  it('circles and rectangles (Detroit area, ~111 km per degree of latitude)', () => {
    expect(regionWithin(circle(42.3, -83.0, 10_000), circle(42.3, -83.0, 20_000))).toBeUndefined();
    expect(regionWithin(circle(42.38, -83.0, 10_000), circle(42.3, -83.0, 20_000))).toBeUndefined(); // 8.9 + 10 <= 20 km
    expect(regionWithin(circle(42.45, -83.0, 10_000), circle(42.3, -83.0, 20_000))).toMatch(/circle/); // 16.7 + 10 > 20
    expect(regionWithin(circle(42.3, -83.0, 10_000), rect(43, -84, 42, -82))).toBeUndefined();
    expect(regionWithin(circle(42.05, -83.0, 10_000), rect(43, -84, 42, -82))).toMatch(/outside/); // 5.6 km from the south edge
    expect(regionWithin(rect(42.5, -83.5, 42.2, -82.5), rect(43, -84, 42, -82))).toBeUndefined();
    expect(regionWithin(rect(43.5, -83.5, 42.2, -82.5), rect(43, -84, 42, -82))).toMatch(/outside/);
    expect(regionWithin(rect(42.31, -83.01, 42.29, -82.99), circle(42.3, -83.0, 5_000))).toBeUndefined();
    expect(regionWithin({ polygonalRegion: [loc(42.1, -83.9), loc(42.9, -83.9), loc(42.5, -82.1)] }, rect(43, -84, 42, -82))).toBeUndefined();
    expect(regionWithin(rect(42.5, -83.5, 42.2, -82.5), { polygonalRegion: [loc(42, -84), loc(43, -84), loc(43, -82), loc(42, -82)] })).toBeUndefined();
    expect(regionWithin(rect(42.5, -85, 42.2, -82.5), { polygonalRegion: [loc(42, -84), loc(43, -84), loc(43, -82), loc(42, -82)] })).toMatch(/outside/);
    expect(regionWithin(circle(42.3, -83, 1000), { identifiedRegion: [{ countryOnly: 840 }] })).toMatch(/cannot establish/);
  });
});
