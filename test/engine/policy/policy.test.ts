import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  canonicalJson,
  canonicalPolicyBytes,
  defaultGlobalPolicy,
  effectivePolicy,
  iPeriodParamsOf,
  loadPolicyTemplate,
  parseGlobalPolicy,
  parseLocalPolicy,
  parsePolicy,
  PolicyError,
  renderPolicy,
  templatePlaceholders,
  TemplateError,
  type GlobalPolicy,
  type LocalPolicy,
} from '../../../src/engine/policy/index.js';
import { dateToTime32, iPeriodOf } from '../../../src/security/time.js';

const globalValues = {
  policyId: 'scms-us',
  issueTime: '2025-03-01T00:00:00Z',
  regions: [840, 124],
  iPeriodEpoch: '2025-01-05T00:00:00Z',
};
const localValues = {
  policyId: 'scms-us-east',
  globalPolicyId: 'scms-us',
  issueTime: '2025-03-02T00:00:00Z',
  baseUrl: 'https://scms.example.org/v3',
};

function renderGlobal(extra: Record<string, unknown> = {}): GlobalPolicy {
  return parseGlobalPolicy(renderPolicy(loadPolicyTemplate('global'), { ...globalValues, ...extra }));
}
function renderLocal(extra: Record<string, unknown> = {}): LocalPolicy {
  return parseLocalPolicy(renderPolicy(loadPolicyTemplate('local'), { ...localValues, ...extra }));
}

/** Expects a PolicyError with an issue on `key` whose message matches `re`. */
function expectIssue(f: () => unknown, key: string, re: RegExp = /./): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(PolicyError);
  const issues = (err as PolicyError).issues;
  const hit = issues.find((i) => i.key === key);
  expect(hit, `issues were ${JSON.stringify(issues)}`).toBeDefined();
  expect(hit!.message).toMatch(re);
  expect((err as Error).message).toContain(key);
}

describe('policy templates', () => {
  it('render and parse the global template with US-sizing defaults', () => {
    const g = renderGlobal();
    expect(g.policyId).toBe('scms-us');
    expect(g.regions).toEqual([840, 124]);
    expect(g['time-iPeriodLength']).toBe(7 * 24 * 3600);
    expect(g['time-baseCertNumber']).toBe(20);
    expect(g['ra-maxPreloadTime']).toBe(3 * 31_556_952);
    expect(g.allowedClockSkew).toBe(5);
    expect(g['scmsV3-error']).toBe('fine');
    expect(g.crlOverdueTolerance).toBe(14 * 24 * 3600);
    expect(g.deviceTypes.OBU.pseudonym.map((p) => p.psid)).toContain(32);
  });
  it('the template and defaultGlobalPolicy() agree', () => {
    const fromCode = defaultGlobalPolicy({
      policyId: 'scms-us',
      issueTime: '2025-03-01T00:00:00Z',
      regions: [840, 124],
      iPeriodEpoch: '2025-01-05T00:00:00Z',
    });
    expect(canonicalJson(renderGlobal())).toBe(canonicalJson(parseGlobalPolicy(fromCode)));
  });
  it('values chosen at init override template defaults', () => {
    const g = renderGlobal({ iPeriodLength: 86_400, baseCertNumber: 5, overlapCertNumber: 0, overlap: 0, errorDetail: 'coarse', raMinWait: 5, ecaMinWait: 2 });
    expect(g['time-iPeriodLength']).toBe(86_400);
    expect(g['ra-minWait']).toBe(5);
    expect(renderGlobal()['ra-minWait']).toBe(60);
    expect(g['eca-minWait']).toBe(2);
    expect(renderGlobal()['eca-minWait']).toBe(10);
    expect(g['time-baseCertNumber']).toBe(5);
    expect(g['scmsV3-error']).toBe('coarse');
  });
  it('lists placeholders with defaults', () => {
    const ph = templatePlaceholders(loadPolicyTemplate('global'));
    expect(ph.find((p) => p.name === 'regions')).toEqual({ name: 'regions' });
    expect(ph.find((p) => p.name === 'iPeriodLength')).toEqual({ name: 'iPeriodLength', default: 604_800 });
    expect(templatePlaceholders(loadPolicyTemplate('local')).map((p) => p.name)).toContain('baseUrl');
  });
  it('render and parse the local template; URLs are interpolated', () => {
    const l = renderLocal();
    expect(l.urls.la2).toBe('https://scms.example.org/v3/la2');
    expect(l.urls.distribution).toBe('https://scms.example.org/v3/dist');
    expect(l.limits).toEqual({});
    expect(parseLocalPolicy(l, renderGlobal())).toEqual(l);
  });
  it('rendering errors name the placeholder', () => {
    const tpl = loadPolicyTemplate('global');
    const { regions: _r, ...noRegions } = globalValues;
    expect(() => renderPolicy(tpl, noRegions)).toThrow(TemplateError);
    expect(() => renderPolicy(tpl, noRegions)).toThrow('${regions}');
    expect(() => renderPolicy(tpl, { ...globalValues, iPeriodLenght: 5 })).toThrow(/not used by the template: iPeriodLenght/);
    expect(() => renderPolicy('{"a": "x${n}"}', { n: [1] })).toThrow(/string or number/);
    expect(() => renderPolicy('{"a": ', {})).toThrow(/not JSON/);
    expect(renderPolicy('{"a": "x-${n}-${m}", "b": ["${n}"]}', { n: 7, m: 'z' })).toEqual({ a: 'x-7-z', b: [7] });
  });
  it('a template value is inserted as data, not as JSON text', () => {
    // a string value containing quotes cannot break out of its JSON string
    const out = renderPolicy('{"u": "${v}/x", "w": "${v}"}', { v: '", "injected": "1' }) as Record<string, unknown>;
    expect(Object.keys(out)).toEqual(['u', 'w']);
    expect(out.w).toBe('", "injected": "1');
  });
});

describe('global policy validation', () => {
  const good = () => JSON.parse(JSON.stringify(renderGlobal())) as Record<string, unknown>;
  it('unknown key', () => expectIssue(() => parseGlobalPolicy({ ...good(), 'eca-maxReq': 3 }), 'eca-maxReq', /unknown key/));
  it('missing key', () => {
    const g = good();
    delete g['ra-maxReqs'];
    expectIssue(() => parseGlobalPolicy(g), 'ra-maxReqs', /missing/);
  });
  it('wrong types', () => {
    expectIssue(() => parseGlobalPolicy({ ...good(), 'eca-maxAge': '300' }), 'eca-maxAge', /integer/);
    expectIssue(() => parseGlobalPolicy({ ...good(), 'ra-acpcSupport': 'no' }), 'ra-acpcSupport', /boolean/);
    expectIssue(() => parseGlobalPolicy({ ...good(), regions: 840 }), 'regions', /array/);
    expectIssue(() => parseGlobalPolicy({ ...good(), 'time-iPeriodLength': 1.5 }), 'time-iPeriodLength', /integer/);
    expectIssue(() => parseGlobalPolicy({ ...good(), policyType: 'localPolicy' }), 'policyType');
    expectIssue(() => parseGlobalPolicy({ ...good(), policyFormat: 2 }), 'policyFormat', /unsupported/);
    expectIssue(() => parseGlobalPolicy('[1, 2]'), '(document)', /object/);
    expectIssue(() => parseGlobalPolicy('{'), '(document)', /not JSON/);
  });
  it('out-of-range values', () => {
    expectIssue(() => parseGlobalPolicy({ ...good(), 'time-iPeriodInit': 65536 }), 'time-iPeriodInit', /out of range/);
    expectIssue(() => parseGlobalPolicy({ ...good(), 'eca-maxReqs': 0 }), 'eca-maxReqs', /out of range/);
    expectIssue(() => parseGlobalPolicy({ ...good(), regions: [840, 1000] }), 'regions[1]', /out of range/);
    expectIssue(() => parseGlobalPolicy({ ...good(), regions: [] }), 'regions', /empty/);
    expectIssue(() => parseGlobalPolicy({ ...good(), regions: [840, 840] }), 'regions[1]', /duplicate/);
    expectIssue(() => parseGlobalPolicy({ ...good(), issueTime: '2025-02-30T00:00:00Z' }), 'issueTime', /UTC time/);
    expectIssue(() => parseGlobalPolicy({ ...good(), issueTime: '2025-03-01' }), 'issueTime', /UTC time/);
    expectIssue(() => parseGlobalPolicy({ ...good(), 'time-iPeriodEpoch': '2003-12-31T00:00:00Z' }), 'time-iPeriodEpoch', /Time32/);
    expectIssue(() => parseGlobalPolicy({ ...good(), 'scmsV3-error': 'verbose' }), 'scmsV3-error', /fine, coarse/);
    expectIssue(() => parseGlobalPolicy({ ...good(), policyId: 'has space' }), 'policyId', /identifier/);
  });
  it('cross-field constraints', () => {
    expectIssue(() => parseGlobalPolicy({ ...good(), 'time-overlap': 604_800 }), 'time-overlap', /less than/);
    expectIssue(() => parseGlobalPolicy({ ...good(), 'time-overlapCertNumber': 21 }), 'time-overlapCertNumber', /exceed/);
    expectIssue(() => parseGlobalPolicy({ ...good(), 'eca-minWait': 7200 }), 'eca-minWait', /eca-maxWait/);
    expectIssue(() => parseGlobalPolicy({ ...good(), 'ra-maxPreloadTime': 3600 }), 'ra-maxPreloadTime', /i-period/);
  });
  it('nested structures', () => {
    const g = good();
    (g['ra-butterflyType'] as Array<Record<string, unknown>>)[0]!['ra-butterflyType'] = ['original', 'sideways'];
    expectIssue(() => parseGlobalPolicy(g), 'ra-butterflyType[0].ra-butterflyType[1]', /compactUnified/);
    const g2 = good();
    (g2['scmsV3-eeAuth'] as Record<string, unknown>).trustFiles = 'password';
    expectIssue(() => parseGlobalPolicy(g2), 'scmsV3-eeAuth.trustFiles', /canonical/);
    const g3 = good();
    (g3.deviceTypes as Record<string, Record<string, unknown[]>>).OBU!.pseudonym!.push({ psid: 32 });
    expectIssue(() => parseGlobalPolicy(g3), 'deviceTypes.OBU.pseudonym[2].psid', /duplicate/);
    const g4 = good();
    (g4.deviceTypes as Record<string, Record<string, unknown[]>>).RSU!.identification![0] = { psid: 130, ssp: { opaque: 'XYZ' } };
    expectIssue(() => parseGlobalPolicy(g4), 'deviceTypes.RSU.identification[0].ssp.opaque', /hex/);
    const g5 = good();
    (g5.deviceTypes as Record<string, unknown>).TRUCK = {};
    expectIssue(() => parseGlobalPolicy(g5), 'deviceTypes.TRUCK', /unknown key/);
  });
  it('reports every problem at once', () => {
    try {
      parseGlobalPolicy({ ...good(), 'eca-maxAge': -1, 'ra-maxAge': 'x', extra: 1 });
      expect.unreachable();
    } catch (e) {
      expect((e as PolicyError).issues.map((i) => i.key).sort()).toEqual(['eca-maxAge', 'extra', 'ra-maxAge']);
    }
  });
  it('i-period parameters feed security/time', () => {
    const p = iPeriodParamsOf(renderGlobal({ iPeriodInit: 10 }));
    expect(p.iPeriodEpoch).toBe(dateToTime32(new Date('2025-01-05T00:00:00Z')));
    expect(iPeriodOf(p, dateToTime32(new Date('2025-01-19T00:00:00Z')))).toBe(12);
  });
});

describe('local policy validation', () => {
  const good = () => JSON.parse(JSON.stringify(renderLocal())) as Record<string, unknown>;
  it('unknown keys, bad URLs, wrong types', () => {
    expectIssue(() => parseLocalPolicy({ ...good(), url: {} }), 'url', /unknown key/);
    expectIssue(() => parseLocalPolicy({ ...good(), urls: { ...(good().urls as object), ra: 'ftp://x/ra' } }), 'urls.ra', /http/);
    expectIssue(() => parseLocalPolicy({ ...good(), urls: { ...(good().urls as object), ma: 'not a url' } }), 'urls.ma', /not a URL/);
    expectIssue(() => parseLocalPolicy({ ...good(), urls: { ...(good().urls as object), cam: 'https://x' } }), 'urls.cam', /unknown/);
    expectIssue(() => parseLocalPolicy({ ...good(), limits: { 'time-iPeriodLength': 5 } }), 'limits.time-iPeriodLength', /unknown/);
    expectIssue(() => parseLocalPolicy({ ...good(), limits: { 'eca-maxReqs': 'many' } }), 'limits.eca-maxReqs', /integer/);
  });
  it('local exceeding global is rejected, naming the key', () => {
    const g = renderGlobal();
    expectIssue(() => parseLocalPolicy({ ...good(), limits: { 'eca-maxReqs': 11 } }, g), 'limits.eca-maxReqs', /exceeds the global eca-maxReqs \(10\)/);
    expectIssue(() => parseLocalPolicy({ ...good(), limits: { 'ra-minWait': 59 } }, g), 'limits.ra-minWait', /below/);
    expectIssue(
      () => parseLocalPolicy({ ...good(), deviceTypes: { OBU: { pseudonym: [{ psid: 130 }] } } }, g),
      'deviceTypes.OBU.pseudonym[0]',
      /PSID 130 is not allowed/,
    );
    expectIssue(() => parseLocalPolicy({ ...good(), globalPolicyId: 'other' }, g), 'globalPolicyId', /not to global policy scms-us/);
  });
  it('tighter limits and subsets are accepted and applied', () => {
    const g = renderGlobal();
    const l = parseLocalPolicy(
      { ...good(), limits: { 'eca-maxReqs': 5, 'ra-minWait': 120 }, deviceTypes: { OBU: { pseudonym: [{ psid: 32 }] } } },
      g,
    );
    const eff = effectivePolicy(g, l);
    expect(eff['eca-maxReqs']).toBe(5);
    expect(eff['ra-minWait']).toBe(120);
    expect(eff.deviceTypes.OBU.pseudonym).toEqual([{ psid: 32 }]);
    expect(eff.deviceTypes.RSU).toEqual(g.deviceTypes.RSU);
    expect(g['eca-maxReqs']).toBe(10); // the global is not mutated
  });
  it('an SSP-restricted global entry requires the same SSP locally', () => {
    const g = JSON.parse(JSON.stringify(renderGlobal())) as GlobalPolicy;
    g.deviceTypes.RSU.identification = [{ psid: 130, ssp: { opaque: '0102' } }];
    const gp = parseGlobalPolicy(g);
    expect(() => parseLocalPolicy({ ...good(), deviceTypes: { RSU: { identification: [{ psid: 130, ssp: { opaque: '0102' } }] } } }, gp)).not.toThrow();
    expectIssue(
      () => parseLocalPolicy({ ...good(), deviceTypes: { RSU: { identification: [{ psid: 130 }] } } }, gp),
      'deviceTypes.RSU.identification[0]',
    );
  });
  it('parsePolicy dispatches on policyType', () => {
    expect(parsePolicy(JSON.stringify(renderLocal())).policyType).toBe('localPolicy');
    expect(parsePolicy(renderGlobal()).policyType).toBe('globalPolicy');
    expectIssue(() => parsePolicy({ policyType: 'x' }), 'policyType');
  });
});

describe('canonical bytes', () => {
  it('independent of key order and whitespace', () => {
    const g = renderGlobal();
    const reversed = Object.fromEntries(Object.entries(g).reverse());
    const pretty = JSON.parse(JSON.stringify(g, null, 4));
    const a = Buffer.from(canonicalPolicyBytes(g)).toString('hex');
    expect(Buffer.from(canonicalPolicyBytes(reversed as GlobalPolicy)).toString('hex')).toBe(a);
    expect(Buffer.from(canonicalPolicyBytes(pretty)).toString('hex')).toBe(a);
  });
  it('changes when any value changes', () => {
    const g = renderGlobal();
    const h = (p: GlobalPolicy) => createHash('sha256').update(canonicalPolicyBytes(p)).digest('hex');
    expect(h({ ...g, sequenceNumber: 2 })).not.toBe(h(g));
    expect(h({ ...g, regions: [124, 840] })).not.toBe(h(g)); // array order is significant
  });
  it('exact form: sorted keys, no whitespace', () => {
    expect(canonicalJson({ b: [1, 'x', { d: null, c: true }], a: -0, 'é': 'q"' })).toBe(
      '{"a":0,"b":[1,"x",{"c":true,"d":null}],"é":"q\\""}',
    );
    expect(() => canonicalJson({ a: undefined })).toThrow(TypeError);
    expect(() => canonicalJson({ a: 1n })).toThrow(TypeError);
    expect(() => canonicalJson({ a: Number.NaN })).toThrow(TypeError);
    expect(() => canonicalJson(new Date(0))).toThrow(TypeError);
  });
});
