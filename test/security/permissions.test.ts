// Permissions consistency (1609.2 5.1.2.x, 6.4.28-6.4.31): every rule with a positive and a negative case,
// and the published RCA -> ICA pair.
import { describe, expect, it } from 'vitest';
import type { Certificate } from '../../src/codec/gen/Ieee1609Dot2.js';
import { buildTbsCertificate, decodeCertificate, type TbsCertificateInput } from '../../src/security/certificate.js';
import { checkIssuePermissions, sspRangeWithin, sspWithinRange } from '../../src/security/permissions.js';
import { hex, readJson } from '../crypto/vectors.js';

const START = new Date('2025-01-01T00:00:00Z');

/** A certificate value for permission checks only (signature and keys are not looked at). */
function cert(name: string, p: Partial<TbsCertificateInput>): Certificate {
  const tbs = buildTbsCertificate({ id: { name }, validity: { start: START, durationSeconds: 3600 }, verifyKey: Uint8Array.of(2, ...new Uint8Array(32).fill(1)), ...p });
  return { version: 3, type: 'explicit', issuer: { self: 'sha256' }, toBeSigned: tbs, signature: { ecdsaNistP256Signature: { rSig: { 'x-only': new Uint8Array(32) }, sSig: new Uint8Array(32) } } };
}

const ok = (issuer: Certificate, subject: Certificate) => expect(checkIssuePermissions(issuer, subject)).toEqual([]);
function bad(issuer: Certificate, subject: Certificate, re: RegExp) {
  const errs = checkIssuePermissions(issuer, subject);
  expect(errs.length).toBeGreaterThan(0);
  expect(errs.join('\n')).toMatch(re);
}

describe('appPermissions within certIssuePermissions', () => {
  const ica = cert('ica', { certIssuePermissions: [{ psids: [0x20, 0x26], eeType: { app: true } }] });
  it('listed psids: ok', () => ok(ica, cert('ee', { appPermissions: [{ psid: 0x20 }, { psid: 0x26, ssp: Uint8Array.of(1) }] })));
  it('unlisted psid: readable message naming both certificates', () => {
    const errs = checkIssuePermissions(ica, cert('eca', { appPermissions: [{ psid: 0x20 }, { psid: 0x87 }] }), { issuer: 'ICA', subject: 'ECA certificate' });
    expect(errs).toEqual(['ECA certificate grants psid 0x87 which its ICA does not allow']);
  });
  it('subjectPermissions all covers any psid', () => ok(cert('i', { certIssuePermissions: [{ psids: 'all' }] }), cert('e', { appPermissions: [{ psid: 0x12345 }] })));
  it('issuer without certIssuePermissions permits nothing', () => bad(cert('i', {}), cert('e', { appPermissions: [{ psid: 0x20 }] }), /psid 0x20/));
  it('eeType enrol only does not cover appPermissions', () =>
    bad(cert('i', { certIssuePermissions: [{ psids: [0x20], eeType: { enrol: true } }] }), cert('e', { appPermissions: [{ psid: 0x20 }] }), /another eeType or chain length/));
  it('minChainLength 2 excludes end-entity certificates (chain length 1)', () =>
    bad(cert('i', { certIssuePermissions: [{ psids: 'all', minChainLength: 2 }] }), cert('e', { appPermissions: [{ psid: 0x20 }] }), /chain length/));
});

describe('SSP ranges', () => {
  it('opaque list: exact values only', () => {
    const i = cert('i', { certIssuePermissions: [{ psids: [{ psid: 0x23, sspRange: [Uint8Array.of(0x83, 0, 1), Uint8Array.of(0x84, 0, 1)] }] }] });
    ok(i, cert('e', { appPermissions: [{ psid: 0x23, ssp: Uint8Array.of(0x84, 0, 1) }] }));
    bad(i, cert('e', { appPermissions: [{ psid: 0x23, ssp: Uint8Array.of(0x85, 0, 1) }] }), /psid 0x23 with SSP 850001/);
    bad(i, cert('e', { appPermissions: [{ psid: 0x23 }] }), /psid 0x23/);
  });
  it('bitmapSspRange: masked bits must equal sspValue, same length', () => {
    const range = { bitmapSspRange: { sspValue: Uint8Array.of(0x01, 0x80), sspBitmask: Uint8Array.of(0xff, 0x80) } };
    expect(sspWithinRange({ bitmapSsp: Uint8Array.of(0x01, 0xff) }, range)).toBe(true);
    expect(sspWithinRange({ bitmapSsp: Uint8Array.of(0x01, 0x80) }, range)).toBe(true);
    expect(sspWithinRange({ bitmapSsp: Uint8Array.of(0x01, 0x7f) }, range)).toBe(false);
    expect(sspWithinRange({ bitmapSsp: Uint8Array.of(0x03, 0x80) }, range)).toBe(false);
    expect(sspWithinRange({ bitmapSsp: Uint8Array.of(0x01) }, range)).toBe(false);
    const i = cert('i', { certIssuePermissions: [{ psids: [{ psid: 0x20, sspRange: range }] }] });
    ok(i, cert('e', { appPermissions: [{ psid: 0x20, ssp: { bitmapSsp: Uint8Array.of(1, 0xc0) } }] }));
    bad(i, cert('e', { appPermissions: [{ psid: 0x20, ssp: { bitmapSsp: Uint8Array.of(1, 0x40) } }] }), /psid 0x20 with SSP 0140/);
  });
  it('range within range', () => {
    const op = (...v: number[][]) => ({ opaque: v.map((x) => Uint8Array.from(x)) });
    const bm = (v: number[], m: number[]) => ({ bitmapSspRange: { sspValue: Uint8Array.from(v), sspBitmask: Uint8Array.from(m) } });
    expect(sspRangeWithin(op([1], [2]), op([1], [2], [3]))).toBe(true);
    expect(sspRangeWithin(op([1], [4]), op([1], [2], [3]))).toBe(false);
    expect(sspRangeWithin(undefined, op([1]))).toBe(false);
    expect(sspRangeWithin({ all: null }, op([1]))).toBe(false);
    expect(sspRangeWithin(op([1]), { all: null })).toBe(true);
    expect(sspRangeWithin(op([1]), undefined)).toBe(true);
    expect(sspRangeWithin(bm([0x81], [0xf0]), bm([0x80], [0x80]))).toBe(true);
    expect(sspRangeWithin(bm([0x81], [0x70]), bm([0x80], [0x80]))).toBe(false); // subject leaves the fixed bit free
    expect(sspRangeWithin(bm([0x01], [0xf0]), bm([0x80], [0x80]))).toBe(false); // fixed to another value
    expect(sspRangeWithin(op([0x81], [0x90]), bm([0x80], [0x80]))).toBe(true);
    expect(sspRangeWithin(op([0x81], [0x10]), bm([0x80], [0x80]))).toBe(false);
    expect(sspRangeWithin(bm([0x80], [0x80]), op([0x80]))).toBe(false);
  });
});

describe('certIssuePermissions within certIssuePermissions (chain lengths, eeType, psids)', () => {
  const root = cert('root', { certIssuePermissions: [{ psids: 'all', minChainLength: 2, chainLengthRange: -1, eeType: { app: true, enrol: true } }] });
  it('sub-CA issuing end entities under a root requiring chain length >= 2: ok', () =>
    ok(root, cert('ica', { certIssuePermissions: [{ psids: 'all', minChainLength: 1, chainLengthRange: -1, eeType: { app: true, enrol: true } }] })));
  it('sub-CA whose shortest chain is too short', () =>
    bad(root, cert('ica', { certIssuePermissions: [{ psids: 'all', minChainLength: 0 }] }), /certIssuePermissions\[0\].*not allowed/));
  it('bounded issuer: subject chains must stay within', () => {
    const ica = cert('ica', { certIssuePermissions: [{ psids: [0x20, 0x26], minChainLength: 1, chainLengthRange: 1 }] });
    ok(ica, cert('eca', { certIssuePermissions: [{ psids: [0x20], minChainLength: 1, chainLengthRange: 0 }] }));
    bad(ica, cert('eca', { certIssuePermissions: [{ psids: [0x20], minChainLength: 2 }] }), /not allowed/);
    bad(ica, cert('eca', { certIssuePermissions: [{ psids: [0x20], minChainLength: 1, chainLengthRange: -1 }] }), /not allowed/);
  });
  it('psids and SSP ranges of the subject group', () => {
    const ica = cert('ica', { certIssuePermissions: [{ psids: [0x20, { psid: 0x23, sspRange: [Uint8Array.of(1)] }], chainLengthRange: -1 }] });
    ok(ica, cert('eca', { certIssuePermissions: [{ psids: [0x20, { psid: 0x23, sspRange: [Uint8Array.of(1)] }] }] }));
    bad(ica, cert('eca', { certIssuePermissions: [{ psids: [0x20, 0x26] }] }), /grants psid 0x26 which its issuer certificate 'ica' does not allow/);
    bad(ica, cert('eca', { certIssuePermissions: [{ psids: [{ psid: 0x23, sspRange: [Uint8Array.of(2)] }] }] }), /psid 0x23 with SSPs \{02\}/);
    bad(ica, cert('eca', { certIssuePermissions: [{ psids: 'all' }] }), /all psids/);
  });
  it('eeType of the subject group within the issuer group', () => {
    const appOnly = cert('ica', { certIssuePermissions: [{ psids: 'all', chainLengthRange: -1, eeType: { app: true } }] });
    ok(appOnly, cert('eca', { certIssuePermissions: [{ psids: [0x20], eeType: { app: true } }] }));
    bad(appOnly, cert('eca', { certIssuePermissions: [{ psids: [0x20], eeType: { enrol: true } }] }), /eeType enrol/);
  });
});

describe('certRequestPermissions (enrollment certificates)', () => {
  const eca = cert('eca', { certIssuePermissions: [{ psids: [0x20, 0x26], eeType: { enrol: true } }] });
  it('requested psids covered by an enrol group: ok', () => ok(eca, cert('enr', { certRequestPermissions: [{ psids: [0x20, 0x26] }] })));
  it('requested psid outside', () => bad(eca, cert('enr', { certRequestPermissions: [{ psids: [0x20, 0x30] }] }), /certRequestPermissions\[0\] grants psid 0x30/));
  it('issuer without an enrol group', () =>
    bad(cert('x', { certIssuePermissions: [{ psids: 'all', eeType: { app: true } }] }), cert('enr', { certRequestPermissions: [{ psids: [0x20] }] }), /eeType enrol/));
});

describe('published certificates', () => {
  it('Penta Security ICA is within its RCA', () => {
    const vs = readJson('scms-verified-vectors.json').vectors.hashedid.vectors as Array<Record<string, string>>;
    const rca = decodeCertificate(hex(vs.find((v) => v.name === 'pentasecurity_rca')!.certificate_coer!));
    const ica = decodeCertificate(hex(vs.find((v) => v.name === 'pentasecurity_ica')!.certificate_coer!));
    expect(checkIssuePermissions(rca, ica)).toEqual([]);
    // the reverse fails: the RCA's unbounded group for all psids is within no group of the ICA
    expect(checkIssuePermissions(ica, rca).join('\n')).toMatch(/certIssuePermissions\[0\] may issue for all psids/);
  });
});
