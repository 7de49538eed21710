// renewal.ts: when a continued device asks for its next batch and its successor enrollment certificate.
import { describe, expect, it } from 'vitest';
import { coverageEnd, enrollmentRenewalDue, planAuthorization, stillValid, usableAt } from '../../../src/engine/ee/renewal.js';
import { defaultGlobalPolicy } from '../../../src/engine/policy/index.js';
import { ManualClock, time32ToDate } from '../../../src/security/time.js';

const policy = { ...defaultGlobalPolicy({ policyId: 't', issueTime: '2026-01-01T00:00:00Z', regions: [840], iPeriodEpoch: '2026-01-05T00:00:00Z' }), 'time-overlap': 3600, 'ra-maxGenDelay': 604_800 };
const T = 800_000_000; // a Time32
const clock = new ManualClock(time32ToDate(T));
const cert = (from: number, until: number) => ({ validFrom: time32ToDate(from).toISOString(), validUntil: time32ToDate(until).toISOString() });
const held = (until: number) => ({ authorization: { downloadedAt: 'x' } as never, certificates: [{ ...cert(T - 100, until), i: 1, j: 0, file: '', hashedId8: '', keyUri: '' }] });

describe('planAuthorization', () => {
  it('a batch not downloaded yet: download, no request', () => {
    expect(planAuthorization({ authorization: {} as never, certificates: [] }, policy, clock)).toEqual({ action: 'download' });
  });
  it('nothing held: request from now', () => {
    expect(planAuthorization({ certificates: [] }, policy, clock)).toMatchObject({ action: 'request', start: T });
  });
  it('held beyond the look-ahead (default time-overlap): nothing to ask', () => {
    expect(planAuthorization(held(T + 3601), policy, clock)).toEqual({ action: 'held', until: T + 3601 });
  });
  it('ending within the look-ahead: request from where the held ones stop overlapping, not before now', () => {
    expect(planAuthorization(held(T + 3600), policy, clock)).toMatchObject({ action: 'request', start: T });
    expect(planAuthorization(held(T + 86_400), policy, clock, 604_800)).toMatchObject({ action: 'request', start: T + 86_400 - 3600 });
    expect(planAuthorization(held(T - 10), policy, clock)).toMatchObject({ action: 'request', start: T, reason: 'the held certificates have expired' });
  });
  it('the look-ahead is clamped to ra-maxGenDelay and ra-maxPreloadTime', () => {
    expect(planAuthorization(held(T + 700_000), policy, clock, 10 * 604_800)).toMatchObject({ action: 'held' });
    expect(planAuthorization(held(T + 700_000), { ...policy, 'ra-maxGenDelay': 800_000 }, clock, 10 * 604_800)).toMatchObject({ action: 'request' });
  });
});

describe('validity helpers', () => {
  it('coverageEnd, stillValid, usableAt', () => {
    const a = cert(T - 10, T + 10);
    const b = cert(T + 5, T + 50);
    expect(coverageEnd([a, b])).toBe(T + 50);
    expect(coverageEnd([])).toBeUndefined();
    expect(stillValid([a, b], T + 10)).toEqual([b]);
    expect(usableAt(a, T)).toBe(true);
    expect(usableAt(b, T)).toBe(false); // not yet valid
    expect(usableAt(a, T + 10)).toBe(false); // validUntil is exclusive
  });
  it('enrollmentRenewalDue: seconds left within the window, else undefined', () => {
    const st = { enrollment: { ...cert(T - 10, T + 1000), file: '', hashedId8: '', keyUri: '', type: 'implicit' as const, at: '' } };
    expect(enrollmentRenewalDue(st, clock, 999)).toBeUndefined();
    expect(enrollmentRenewalDue(st, clock, 1000)).toBe(1000);
    expect(enrollmentRenewalDue({}, clock)).toBeUndefined();
  });
});
