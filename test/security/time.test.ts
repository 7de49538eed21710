import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  certificatesValidAt,
  certValidityPeriod,
  dateToTime32,
  dateToTime64,
  durationFromMicroseconds,
  durationFromSeconds,
  durationToMicroseconds,
  durationToSeconds,
  iPeriodEnd,
  iPeriodOf,
  iPeriodStart,
  isLeapSecond,
  jValues,
  ManualClock,
  nowTime32,
  systemClock,
  time32ToDate,
  time32ToTime64,
  time64ToDate,
  time64ToTime32,
  validityPeriodContains,
  validityPeriodContainsPeriod,
  validityPeriodEnd,
  validityPeriodEndTime64,
  type Duration,
  type IPeriodParams,
} from '../../src/security/time.js';

const DAY = 86_400;
const d = (s: string) => new Date(s);

describe('Clock', () => {
  it('ManualClock sets and advances', () => {
    const c = new ManualClock('2020-01-01T00:00:00Z');
    expect(c.now().toISOString()).toBe('2020-01-01T00:00:00.000Z');
    c.advance(1500);
    expect(c.now().toISOString()).toBe('2020-01-01T00:00:01.500Z');
    c.set(d('2021-06-01T12:00:00Z'));
    expect(c.now().toISOString()).toBe('2021-06-01T12:00:00.000Z');
    expect(() => c.advance(Number.NaN)).toThrow(RangeError);
    expect(() => new ManualClock('not a date')).toThrow(RangeError);
  });
  it('now() returns a fresh Date each call (mutating it does not move the clock)', () => {
    const c = new ManualClock(0);
    c.now().setTime(123456);
    expect(c.now().getTime()).toBe(0);
  });
  it('systemClock follows the host clock', () => {
    const before = Date.now();
    const t = systemClock.now().getTime();
    expect(t).toBeGreaterThanOrEqual(before);
    expect(t - before).toBeLessThan(5000);
  });
  it('nowTime32 reads the clock', () => {
    // 2004-01-02T00:00:00Z: one day after the epoch, no leap second yet.
    expect(nowTime32(new ManualClock('2004-01-02T00:00:00Z'))).toBe(DAY);
  });
});

describe('Time32 (1609.2 6.4.14): TAI seconds since 2004-01-01 including leap seconds', () => {
  // Day counts worked by hand: 2004 is a leap year (366 days), 2005 has 365.
  it('epoch is 0', () => {
    expect(dateToTime32(d('2004-01-01T00:00:00Z'))).toBe(0);
    expect(time32ToDate(0).toISOString()).toBe('2004-01-01T00:00:00.000Z');
  });
  it('just before the first leap second (2005-12-31T23:59:59Z): 730 days + 86399 s, no leap', () => {
    expect(dateToTime32(d('2005-12-31T23:59:59Z'))).toBe(730 * DAY + 86_399);
  });
  it('2006-01-01T00:00:00Z includes 1 leap second; the leap second itself is 63158400', () => {
    expect(dateToTime32(d('2006-01-01T00:00:00Z'))).toBe(731 * DAY + 1);
    expect(isLeapSecond(731 * DAY)).toBe(true);
    expect(isLeapSecond(731 * DAY + 1)).toBe(false);
    // 23:59:60 cannot be a Date: it maps to the following midnight.
    expect(time32ToDate(731 * DAY).toISOString()).toBe('2006-01-01T00:00:00.000Z');
    expect(time32ToDate(731 * DAY - 1).toISOString()).toBe('2005-12-31T23:59:59.000Z');
  });
  it('2017-01-01T00:00:00Z: 13 years with 4 leap days = 4749 days, plus 5 leap seconds', () => {
    expect(dateToTime32(d('2017-01-01T00:00:00Z'))).toBe(4749 * DAY + 5);
    expect(dateToTime32(d('2016-12-31T23:59:59Z'))).toBe(4749 * DAY - 1 + 4);
    expect(isLeapSecond(4749 * DAY + 4)).toBe(true);
  });
  it('2020-01-01T00:00:00Z: 16 years, 4 leap days = 5844 days, plus 5 leap seconds', () => {
    expect(dateToTime32(d('2020-01-01T00:00:00Z'))).toBe(5844 * DAY + 5);
    expect(time32ToDate(5844 * DAY + 5).toISOString()).toBe('2020-01-01T00:00:00.000Z');
  });
  it('2012-07-01 and 2015-07-01 leap seconds are counted (3 and 4)', () => {
    // 2004-01-01 .. 2012-07-01: 8 years (2004, 2008 leap) = 2922 days, + Jan..Jun 2012 (leap) = 182 days.
    expect(dateToTime32(d('2012-07-01T00:00:00Z'))).toBe((2922 + 182) * DAY + 3);
    // .. 2015-07-01: 11 years (3 leap days) = 4018 days, + Jan..Jun 2015 = 181 days.
    expect(dateToTime32(d('2015-07-01T00:00:00Z'))).toBe((4018 + 181) * DAY + 4);
  });
  it('truncates fractions of a second and rejects out-of-range times', () => {
    expect(dateToTime32(d('2004-01-01T00:00:01.999Z'))).toBe(1);
    expect(() => dateToTime32(d('2003-12-31T23:59:59Z'))).toThrow(RangeError);
    expect(() => dateToTime32(new Date(Date.UTC(2141, 0, 1)))).toThrow(RangeError);
    expect(() => time32ToDate(-1)).toThrow(RangeError);
    expect(() => time32ToDate(1.5)).toThrow(RangeError);
    expect(() => time32ToDate(2 ** 32)).toThrow(RangeError);
  });
  it('round trip Date -> Time32 -> Date for whole seconds (property)', () => {
    const lo = Date.UTC(2004, 0, 1) / 1000;
    const hi = Date.UTC(2130, 0, 1) / 1000;
    fc.assert(
      fc.property(fc.integer({ min: lo, max: hi }), (s) => {
        const date = new Date(s * 1000);
        expect(time32ToDate(dateToTime32(date)).getTime()).toBe(date.getTime());
      }),
    );
  });
  it('round trip Time32 -> Date -> Time32 except on leap seconds (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 200 }), (t) => {
        const back = dateToTime32(time32ToDate(t));
        expect(back).toBe(isLeapSecond(t) ? t + 1 : t);
      }),
    );
  });
  it('monotonic: a later Date never gives a smaller Time32 (property)', () => {
    const lo = Date.UTC(2004, 0, 1);
    const hi = Date.UTC(2030, 0, 1);
    fc.assert(
      fc.property(fc.integer({ min: lo, max: hi }), fc.integer({ min: 0, max: 10 ** 9 }), (a, delta) => {
        expect(dateToTime32(new Date(a + delta))).toBeGreaterThanOrEqual(dateToTime32(new Date(a)));
      }),
    );
  });
});

describe('Time64 (1609.2 6.4.13): TAI microseconds', () => {
  it('known values', () => {
    expect(dateToTime64(d('2004-01-01T00:00:00Z'))).toBe(0n);
    expect(dateToTime64(d('2017-01-01T00:00:00.123Z'))).toBe(BigInt(4749 * DAY + 5) * 1_000_000n + 123_000n);
    expect(time64ToDate(BigInt(4749 * DAY + 5) * 1_000_000n + 456_789n).toISOString()).toBe(
      '2017-01-01T00:00:00.456Z',
    );
    // a microsecond inside the 2016-12-31 leap second
    expect(time64ToDate(BigInt(4749 * DAY + 4) * 1_000_000n + 500_000n).toISOString()).toBe(
      '2017-01-01T00:00:00.000Z',
    );
    expect(() => time64ToDate(-1n)).toThrow(RangeError);
  });
  it('agrees with Time32 (property)', () => {
    const lo = Date.UTC(2004, 0, 1);
    const hi = Date.UTC(2100, 0, 1);
    fc.assert(
      fc.property(fc.integer({ min: lo, max: hi }), (ms) => {
        const date = new Date(ms);
        const t64 = dateToTime64(date);
        expect(time64ToTime32(t64)).toBe(dateToTime32(date));
        expect(time64ToDate(t64).getTime()).toBe(ms);
        expect(time32ToTime64(dateToTime32(date))).toBe((t64 / 1_000_000n) * 1_000_000n);
      }),
    );
  });
});

describe('Duration (1609.2 6.4.15)', () => {
  it('to seconds / microseconds per unit', () => {
    expect(durationToSeconds({ microseconds: 1500 })).toBe(0.0015);
    expect(durationToSeconds({ milliseconds: 250 })).toBe(0.25);
    expect(durationToSeconds({ seconds: 30 })).toBe(30);
    expect(durationToSeconds({ minutes: 2 })).toBe(120);
    expect(durationToSeconds({ hours: 168 })).toBe(604_800);
    expect(durationToSeconds({ sixtyHours: 2 })).toBe(2 * 60 * 3600);
    expect(durationToSeconds({ years: 3 })).toBe(3 * 31_556_952);
    expect(durationToMicroseconds({ years: 65535 })).toBe(65535n * 31_556_952n * 1_000_000n);
  });
  it('rejects malformed values', () => {
    expect(() => durationToSeconds({ days: 1 } as unknown as Duration)).toThrow(TypeError);
    expect(() => durationToSeconds({ hours: 1, minutes: 1 } as unknown as Duration)).toThrow(TypeError);
    expect(() => durationToSeconds({ hours: 65536 })).toThrow(TypeError);
    expect(() => durationToSeconds({ hours: -1 })).toThrow(TypeError);
    expect(() => durationToSeconds({ hours: 1.5 })).toThrow(TypeError);
  });
  it('chooses the finest exact unit', () => {
    expect(durationFromSeconds(3600)).toEqual({ seconds: 3600 });
    expect(durationFromSeconds(65535)).toEqual({ seconds: 65535 });
    expect(durationFromSeconds(65580)).toEqual({ minutes: 1093 }); // 65580 = 1093 * 60
    expect(durationFromSeconds(604_800)).toEqual({ minutes: 10_080 }); // one week
    expect(durationFromSeconds(7 * 24 * 3600 + 3600)).toEqual({ minutes: 10_140 }); // week + 1 h
    expect(durationFromSeconds(0.0015)).toEqual({ microseconds: 1500 });
    expect(durationFromSeconds(0.25)).toEqual({ milliseconds: 250 }); // 250000 us exceeds Uint16
    expect(durationFromSeconds(0)).toEqual({ microseconds: 0 });
    expect(durationFromSeconds(3 * 31_556_952)).toEqual({ years: 3 }); // not a multiple of 60
    expect(durationFromSeconds(5 * 365 * 86_400)).toEqual({ hours: 43_800 }); // 5 x 365 days
    expect(durationFromSeconds(10 * 365 * 86_400)).toEqual({ sixtyHours: 1460 }); // 87600 h exceeds Uint16
    expect(durationFromSeconds(40 * 365 * 86_400)).toEqual({ sixtyHours: 5840 }); // 40 x 365 days
  });
  it('covers an inexact span with the smallest Duration, or refuses with exact: true', () => {
    // 65536 s: too many seconds, not a whole number of minutes -> ceil(65536/60) = 1093 minutes
    expect(durationFromSeconds(65_536)).toEqual({ minutes: 1093 });
    expect(() => durationFromSeconds(65_536, { exact: true })).toThrow(RangeError);
    // 65535.5 s -> 65535500 us, 65536 ms... -> covered by 1093 minutes
    expect(durationFromSeconds(65_535.5)).toEqual({ minutes: 1093 });
    expect(() => durationFromSeconds(-1)).toThrow(RangeError);
    expect(() => durationFromMicroseconds(65_536n * 31_556_952n * 1_000_000n)).toThrow(RangeError);
  });
  it('exact spans round trip and the unit is the finest possible (property)', () => {
    const units = ['microseconds', 'milliseconds', 'seconds', 'minutes', 'hours', 'sixtyHours', 'years'] as const;
    fc.assert(
      fc.property(fc.constantFrom(...units), fc.integer({ min: 0, max: 65535 }), (unit, value) => {
        const dur = { [unit]: value } as Duration;
        const us = durationToMicroseconds(dur);
        const enc = durationFromMicroseconds(us, { exact: true });
        expect(durationToMicroseconds(enc)).toBe(us);
        const encUnit = Object.keys(enc)[0] as (typeof units)[number];
        expect(units.indexOf(encUnit)).toBeLessThanOrEqual(units.indexOf(unit));
      }),
    );
  });
  it('a covering Duration is never shorter than the span, and a finer unit could not cover it (property)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 65535n * 31_556_952n * 1_000_000n }), (us) => {
        const enc = durationFromMicroseconds(us);
        const encUs = durationToMicroseconds(enc);
        expect(encUs).toBeGreaterThanOrEqual(us);
        if (encUs !== us) {
          // inexact: no finer unit could have covered the span within a Uint16
          const per = { microseconds: 1n, milliseconds: 1000n, seconds: 10n ** 6n, minutes: 6n * 10n ** 7n,
            hours: 36n * 10n ** 8n, sixtyHours: 216n * 10n ** 9n, years: 31_556_952n * 10n ** 6n };
          const unit = Object.keys(enc)[0] as keyof typeof per;
          for (const finer of Object.keys(per).slice(0, Object.keys(per).indexOf(unit)) as Array<keyof typeof per>) {
            expect((us + per[finer] - 1n) / per[finer]).toBeGreaterThan(65535n);
          }
        }
      }),
    );
  });
});

describe('ValidityPeriod (1609.2 6.4.12)', () => {
  const vp = { start: dateToTime32(d('2020-01-01T00:00:00Z')), duration: { hours: 168 } as Duration };
  it('end = start + duration', () => {
    expect(validityPeriodEnd(vp)).toBe(vp.start + 604_800);
    expect(validityPeriodEndTime64(vp)).toBe(BigInt(vp.start + 604_800) * 1_000_000n);
  });
  it('contains is closed at both ends', () => {
    expect(validityPeriodContains(vp, vp.start)).toBe(true);
    expect(validityPeriodContains(vp, vp.start - 1)).toBe(false);
    expect(validityPeriodContains(vp, vp.start + 604_800)).toBe(true);
    expect(validityPeriodContains(vp, vp.start + 604_801)).toBe(false);
    expect(validityPeriodContains(vp, d('2020-01-04T12:00:00Z'))).toBe(true);
    expect(validityPeriodContains(vp, d('2020-01-08T00:00:00.001Z'))).toBe(false);
    expect(validityPeriodContains(vp, BigInt(vp.start) * 1_000_000n - 1n)).toBe(false);
  });
  it('period containment', () => {
    expect(validityPeriodContainsPeriod(vp, { start: vp.start + 10, duration: { hours: 1 } })).toBe(true);
    expect(validityPeriodContainsPeriod(vp, { start: vp.start + 10, duration: { hours: 168 } })).toBe(false);
    expect(validityPeriodContainsPeriod(vp, { start: vp.start - 1, duration: { seconds: 5 } })).toBe(false);
  });
});

describe('i-periods (1609.2.1 4.3 time-*)', () => {
  const WEEK = 604_800;
  const epoch = dateToTime32(d('2020-01-05T00:00:00Z'));
  const p: IPeriodParams = {
    iPeriodEpoch: epoch,
    iPeriodLength: WEEK,
    iPeriodInit: 100,
    overlap: 3600,
    baseCertNumber: 20,
    overlapCertNumber: 2,
  };
  it('i of a time, with boundaries', () => {
    expect(iPeriodOf(p, epoch)).toBe(100);
    expect(iPeriodOf(p, epoch + WEEK - 1)).toBe(100);
    expect(iPeriodOf(p, epoch + WEEK)).toBe(101);
    expect(iPeriodOf(p, epoch + 10 * WEEK + 5)).toBe(110);
    expect(() => iPeriodOf(p, epoch - 1)).toThrow(RangeError);
    expect(() => iPeriodOf({ ...p, iPeriodInit: 65535 }, epoch + WEEK)).toThrow(RangeError);
  });
  it('start/end of period i', () => {
    expect(iPeriodStart(p, 100)).toBe(epoch);
    expect(iPeriodEnd(p, 100)).toBe(epoch + WEEK);
    expect(iPeriodStart(p, 103)).toBe(epoch + 3 * WEEK);
    expect(() => iPeriodStart(p, 99)).toThrow(RangeError);
  });
  it('start and end bracket every time (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 500 * WEEK }), (off) => {
        const t = epoch + off;
        const i = iPeriodOf(p, t);
        expect(iPeriodStart(p, i)).toBeLessThanOrEqual(t);
        expect(iPeriodEnd(p, i)).toBeGreaterThan(t);
      }),
    );
  });
  it('certificate (i, j) validity: iPeriodLength, plus overlap for j < overlapCertNumber', () => {
    expect(jValues(p)).toHaveLength(20);
    expect(certValidityPeriod(p, 101, 0)).toEqual({ start: epoch + WEEK, duration: { minutes: 10_140 } });
    expect(certValidityPeriod(p, 101, 1)).toEqual({ start: epoch + WEEK, duration: { minutes: 10_140 } });
    expect(certValidityPeriod(p, 101, 2)).toEqual({ start: epoch + WEEK, duration: { minutes: 10_080 } });
    expect(() => certValidityPeriod(p, 101, 20)).toThrow(RangeError);
  });
  it('certificates usable at a time, across the overlap', () => {
    const start101 = epoch + WEEK;
    const atStart = certificatesValidAt(p, start101);
    expect(atStart).toHaveLength(22);
    expect(atStart.slice(0, 2)).toEqual([
      { i: 100, j: 0 },
      { i: 100, j: 1 },
    ]);
    expect(certificatesValidAt(p, start101 + 3599)).toHaveLength(22);
    expect(certificatesValidAt(p, start101 + 3600)).toHaveLength(20);
    expect(certificatesValidAt(p, epoch)).toHaveLength(20); // no period before i = time-iPeriodInit
    // each listed certificate's validity period really contains the time
    for (const t of [start101, start101 + 3599, start101 + 3600, start101 + 5000]) {
      for (const { i, j } of certificatesValidAt(p, t)) {
        expect(validityPeriodContains(certValidityPeriod(p, i, j), t)).toBe(true);
      }
    }
  });
  it('rejects inconsistent parameters', () => {
    expect(() => certValidityPeriod({ ...p, overlapCertNumber: 21 }, 100, 0)).toThrow(/overlapCertNumber/);
    expect(() => certValidityPeriod({ ...p, overlap: WEEK }, 100, 0)).toThrow(/time-overlap/);
    expect(() => iPeriodOf({ ...p, iPeriodLength: 0 }, epoch)).toThrow(/iPeriodLength/);
  });
});
