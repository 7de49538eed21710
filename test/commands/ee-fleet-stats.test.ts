// Fleet statistics: fixed-size latency histogram (quantiles to within a bucket), endpoint names, error groups.
import { describe, expect, it } from 'vitest';
import { EndpointRecorder, endpointOf, ErrorGroups, LatencyHistogram } from '../../src/engine/ee/fleet-stats.js';

describe('fleet statistics', () => {
  it('histogram quantiles are within one bucket (5 %) of the exact ones', () => {
    const h = new LatencyHistogram();
    const xs: number[] = [];
    for (let k = 1; k <= 10_000; k++) {
      const x = (k * 7919) % 10_007; // a spread of 0..10 s in ms, out of order
      xs.push(x);
      h.record(x);
    }
    xs.sort((a, b) => a - b);
    for (const q of [0.5, 0.95, 0.99]) {
      const exact = xs[Math.ceil(q * xs.length) - 1]!;
      const got = h.quantile(q);
      expect(got).toBeGreaterThanOrEqual(exact);
      expect(got).toBeLessThanOrEqual(exact * 1.05 + 0.05);
    }
    expect(h.count).toBe(10_000);
    expect(h.quantile(1)).toBe(h.maxMs);
    expect(new LatencyHistogram().quantile(0.5)).toBe(0);
  });

  it('endpoints are method + path with device ids folded; statuses counted', () => {
    expect(endpointOf('get', 'http://h:1/v3/authorization-certificate?filename=x.zip')).toBe('GET /v3/authorization-certificate');
    expect(endpointOf('POST', 'http://h/v3/devices/0f0e0d0c-0b0a-4908-8706-050403020100/block')).toBe('POST /v3/devices/:id/block');
    const r = new EndpointRecorder();
    r.record('POST /v3/devices', 201, 5);
    r.record('POST /v3/devices', 401, 1);
    r.record('GET /v3/ctl', 200, 2);
    expect(r.total).toBe(3);
    const s = r.summary();
    expect(s.map((e) => e.endpoint)).toEqual(['GET /v3/ctl', 'POST /v3/devices']);
    expect(s[1]).toMatchObject({ requests: 2, statuses: { '201': 1, '401': 1 } });
  });

  it('errors are grouped by step + HTTP status-code or local check, most frequent first', () => {
    const g = new ErrorGroups();
    for (let k = 0; k < 3; k++) g.add({ step: 'enroll', status: 403, code: 20, meaning: 'blocked', example: `device-${k}: blocked` });
    g.add({ step: 'register', status: 401, example: 'device-9: HTTP 401' });
    g.add({ step: 'download', check: 'certificate-response', example: 'device-7: bad batch' });
    const l = g.list();
    expect(l.map((e) => [e.cause, e.count])).toEqual([
      ['enroll: HTTP 403-20', 3],
      ['download: check certificate-response', 1],
      ['register: HTTP 401', 1],
    ]);
    expect(l[0]!.example).toBe('device-0: blocked');
  });
});
