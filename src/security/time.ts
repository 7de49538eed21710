/**
 * Time for every layer above crypto: the Clock abstraction, IEEE 1609.2 Time32 / Time64 /
 * Duration / ValidityPeriod (1609.2-2022 6.4.12-6.4.15) and 1609.2.1 i-periods (clause 4.3
 * policy parameters time-iPeriodEpoch, time-iPeriodLength, time-iPeriodInit, time-overlap,
 * time-baseCertNumber, time-overlapCertNumber).
 *
 * Value shapes follow the COER codec's runtime representation (src/codec/schema.ts):
 * Time32 is a number, Time64 a bigint, a CHOICE a single-key object such as `{ hours: 168 }`.
 */

// ---------------------------------------------------------------------------------------------
// Clock
// ---------------------------------------------------------------------------------------------

/** Source of the current time. Logic takes a Clock; only `systemClock` reads the host clock. */
export interface Clock {
  now(): Date;
}

/** The host's clock. */
export const systemClock: Clock = {
  now: () => new Date(),
};

/** A clock that only moves when told to (tests, simulations, replay). */
export class ManualClock implements Clock {
  private ms: number;

  constructor(start: Date | number | string = 0) {
    this.ms = toMs(start);
  }

  now(): Date {
    return new Date(this.ms);
  }

  set(time: Date | number | string): void {
    this.ms = toMs(time);
  }

  /** Moves the clock forward (or backward, for a negative value) by `ms` milliseconds. */
  advance(ms: number): void {
    if (!Number.isFinite(ms)) throw new RangeError(`ManualClock.advance: not a finite number: ${ms}`);
    this.ms += ms;
  }
}

function toMs(t: Date | number | string): number {
  const ms = t instanceof Date ? t.getTime() : typeof t === 'number' ? t : Date.parse(t);
  if (!Number.isFinite(ms)) throw new RangeError(`invalid time: ${String(t)}`);
  return ms;
}

// ---------------------------------------------------------------------------------------------
// Time32 / Time64 (1609.2 6.4.12, 6.4.13, 6.4.14)
// ---------------------------------------------------------------------------------------------

/** Time32 ::= Uint32 — TAI seconds since 2004-01-01T00:00:00Z (6.4.14). */
export type Time32 = number;
/** Time64 ::= Uint64 — TAI microseconds since 2004-01-01T00:00:00Z (6.4.13). */
export type Time64 = bigint;

/** 2004-01-01T00:00:00Z in Unix milliseconds: the 1609.2 epoch. */
export const TIME_EPOCH_MS = Date.UTC(2004, 0, 1);

const UINT32_MAX = 0xffff_ffff;
const UINT64_MAX = (1n << 64n) - 1n;

/**
 * Leap seconds inserted since the 1609.2 epoch (IERS Bulletin C), given as the UTC instant at
 * which TAI-UTC grew by one second, i.e. the 00:00:00 that follows the inserted 23:59:60.
 * TAI-UTC was 32 s at the epoch; it is 37 s since 2017-01-01. No leap second has been announced
 * after 2016-12-31; when IERS announces one, append it here.
 */
export const LEAP_SECONDS_SINCE_2004: readonly string[] = Object.freeze([
  '2006-01-01T00:00:00Z', // after 2005-12-31T23:59:60
  '2009-01-01T00:00:00Z', // after 2008-12-31T23:59:60
  '2012-07-01T00:00:00Z', // after 2012-06-30T23:59:60
  '2015-07-01T00:00:00Z', // after 2015-06-30T23:59:60
  '2017-01-01T00:00:00Z', // after 2016-12-31T23:59:60
]);

/** Each leap second as UTC seconds since the epoch of the instant following it. */
const LEAP_UTC: readonly number[] = LEAP_SECONDS_SINCE_2004.map((s) => (Date.parse(s) - TIME_EPOCH_MS) / 1000);
/** TAI seconds since the epoch of the instant following each leap second (after k+1 insertions). */
const LEAP_TAI: readonly number[] = LEAP_UTC.map((u, k) => u + k + 1);

/** Number of leap seconds inserted between the epoch and the UTC instant `utcSec` (seconds since the epoch). */
function leapsBeforeUtc(utcSec: number): number {
  let n = 0;
  for (const u of LEAP_UTC) if (utcSec >= u) n++;
  return n;
}

/** Number of leap seconds fully elapsed at TAI second count `taiSec` (seconds since the epoch). */
function leapsBeforeTai(taiSec: number): number {
  let n = 0;
  for (const t of LEAP_TAI) if (taiSec >= t) n++;
  return n;
}

/** TAI seconds since the epoch (possibly fractional) for a Date. */
function dateToTaiSeconds(date: Date): number {
  const ms = date.getTime();
  if (!Number.isFinite(ms)) throw new RangeError('invalid Date');
  const utcSec = (ms - TIME_EPOCH_MS) / 1000;
  return utcSec + leapsBeforeUtc(utcSec);
}

/**
 * Date -> Time32: TAI seconds since 2004-01-01T00:00:00Z, counting the leap seconds inserted
 * since then. Fractions of a second are truncated. RangeError outside Uint32.
 */
export function dateToTime32(date: Date): Time32 {
  const tai = Math.floor(dateToTaiSeconds(date));
  if (tai < 0 || tai > UINT32_MAX) throw new RangeError(`time ${date.toISOString()} is outside the Time32 range`);
  return tai;
}

/**
 * Time32 -> Date. A Date cannot express 23:59:60: the Time32 value of an inserted leap second
 * maps to the following 00:00:00 UTC (the same Date as the next Time32 value).
 */
export function time32ToDate(t: Time32): Date {
  assertTime32(t);
  const utcSec = t - leapsBeforeTai(t);
  return new Date(TIME_EPOCH_MS + utcSec * 1000);
}

/** True when Time32 `t` is an inserted leap second (a 23:59:60 UTC). */
export function isLeapSecond(t: Time32): boolean {
  return LEAP_TAI.some((after) => after - 1 === t);
}

/** Date -> Time64: TAI microseconds since the epoch (Date resolution is 1 ms). */
export function dateToTime64(date: Date): Time64 {
  const ms = date.getTime();
  if (!Number.isFinite(ms)) throw new RangeError('invalid Date');
  const utcMs = ms - TIME_EPOCH_MS;
  const leaps = leapsBeforeUtc(Math.floor(utcMs / 1000));
  const us = BigInt(utcMs) * 1000n + BigInt(leaps) * 1_000_000n;
  if (us < 0n || us > UINT64_MAX) throw new RangeError(`time ${date.toISOString()} is outside the Time64 range`);
  return us;
}

/**
 * Time64 -> Date, truncated to the millisecond. A microsecond inside an inserted leap second
 * maps to the following 00:00:00.000 UTC (as for Time32).
 */
export function time64ToDate(t: Time64): Date {
  if (typeof t !== 'bigint' || t < 0n || t > UINT64_MAX) throw new RangeError(`not a Time64: ${String(t)}`);
  const taiSec = Number(t / 1_000_000n);
  const leaps = leapsBeforeTai(taiSec);
  if (isLeapSecond(taiSec)) return new Date(TIME_EPOCH_MS + (taiSec + 1 - (leaps + 1)) * 1000);
  const utcUs = t - BigInt(leaps) * 1_000_000n;
  return new Date(TIME_EPOCH_MS + Number(utcUs / 1000n));
}

/** Time32 -> Time64 (same instant, microseconds). */
export function time32ToTime64(t: Time32): Time64 {
  assertTime32(t);
  return BigInt(t) * 1_000_000n;
}

/** Time64 -> Time32, truncating to the whole second. */
export function time64ToTime32(t: Time64): Time32 {
  const s = t / 1_000_000n;
  if (t < 0n || s > BigInt(UINT32_MAX)) throw new RangeError(`Time64 ${t} is outside the Time32 range`);
  return Number(s);
}

/** The current Time32 of a clock. */
export function nowTime32(clock: Clock): Time32 {
  return dateToTime32(clock.now());
}

/** The current Time64 of a clock. */
export function nowTime64(clock: Clock): Time64 {
  return dateToTime64(clock.now());
}

export function isTime32(t: unknown): t is Time32 {
  return typeof t === 'number' && Number.isInteger(t) && t >= 0 && t <= UINT32_MAX;
}

function assertTime32(t: Time32): void {
  if (!isTime32(t)) throw new RangeError(`not a Time32: ${String(t)}`);
}

// ---------------------------------------------------------------------------------------------
// Duration (1609.2 6.4.15)
// ---------------------------------------------------------------------------------------------

/** Duration ::= CHOICE { microseconds Uint16, milliseconds Uint16, ..., years Uint16 }. */
export type Duration =
  | { microseconds: number }
  | { milliseconds: number }
  | { seconds: number }
  | { minutes: number }
  | { hours: number }
  | { sixtyHours: number }
  | { years: number };

export type DurationUnit = 'microseconds' | 'milliseconds' | 'seconds' | 'minutes' | 'hours' | 'sixtyHours' | 'years';

/** Microseconds per unit, finest first. A year is 31556952 s (6.4.15). */
export const DURATION_UNIT_MICROSECONDS: Readonly<Record<DurationUnit, bigint>> = Object.freeze({
  microseconds: 1n,
  milliseconds: 1_000n,
  seconds: 1_000_000n,
  minutes: 60n * 1_000_000n,
  hours: 3_600n * 1_000_000n,
  sixtyHours: 216_000n * 1_000_000n,
  years: 31_556_952n * 1_000_000n,
});

const UNITS_FINEST_FIRST: readonly DurationUnit[] = [
  'microseconds',
  'milliseconds',
  'seconds',
  'minutes',
  'hours',
  'sixtyHours',
  'years',
];

const UINT16_MAX = 0xffff;

/** The single alternative of a Duration and its Uint16 value; TypeError for a malformed value. */
export function durationParts(d: Duration): { unit: DurationUnit; value: number } {
  const keys = typeof d === 'object' && d !== null ? Object.keys(d) : [];
  if (keys.length !== 1 || !(UNITS_FINEST_FIRST as readonly string[]).includes(keys[0]!)) {
    throw new TypeError(`not a Duration: ${JSON.stringify(d)}`);
  }
  const unit = keys[0] as DurationUnit;
  const value = (d as Record<string, unknown>)[unit];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > UINT16_MAX) {
    throw new TypeError(`Duration.${unit} is not a Uint16: ${String(value)}`);
  }
  return { unit, value };
}

/** Length of a Duration in microseconds (exact). */
export function durationToMicroseconds(d: Duration): bigint {
  const { unit, value } = durationParts(d);
  return BigInt(value) * DURATION_UNIT_MICROSECONDS[unit];
}

/** Length of a Duration in seconds (fractional for microseconds/milliseconds; exact otherwise). */
export function durationToSeconds(d: Duration): number {
  const { unit, value } = durationParts(d);
  if (unit === 'microseconds') return value / 1e6;
  if (unit === 'milliseconds') return value / 1e3;
  return value * Number(DURATION_UNIT_MICROSECONDS[unit] / 1_000_000n);
}

/**
 * Encodes a span of microseconds as a Duration.
 * - The finest unit that represents the span exactly with a value <= 65535 is chosen.
 * - When no unit is exact: with `exact: true` a RangeError; otherwise the smallest Duration that
 *   covers the span (the finest unit whose rounded-up value fits a Uint16), so that a validity
 *   period built from it never ends before the requested end.
 * RangeError when the span is negative or longer than 65535 years.
 */
export function durationFromMicroseconds(us: bigint, opts: { exact?: boolean } = {}): Duration {
  if (us < 0n) throw new RangeError(`negative duration: ${us} us`);
  for (const unit of UNITS_FINEST_FIRST) {
    const per = DURATION_UNIT_MICROSECONDS[unit];
    if (us % per === 0n && us / per <= BigInt(UINT16_MAX)) return { [unit]: Number(us / per) } as Duration;
  }
  if (opts.exact) throw new RangeError(`${us} us is not exactly representable as a Duration`);
  for (const unit of UNITS_FINEST_FIRST) {
    const per = DURATION_UNIT_MICROSECONDS[unit];
    const n = (us + per - 1n) / per;
    if (n <= BigInt(UINT16_MAX)) return { [unit]: Number(n) } as Duration;
  }
  throw new RangeError(`${us} us exceeds the longest Duration (65535 years)`);
}

/**
 * Encodes a span of seconds as a Duration (see durationFromMicroseconds for the unit choice).
 * Non-integer seconds are taken to the nearest microsecond.
 */
export function durationFromSeconds(seconds: number, opts: { exact?: boolean } = {}): Duration {
  if (!Number.isFinite(seconds)) throw new RangeError(`not a finite duration: ${seconds}`);
  const us = Number.isInteger(seconds) ? BigInt(seconds) * 1_000_000n : BigInt(Math.round(seconds * 1e6));
  return durationFromMicroseconds(us, opts);
}

// ---------------------------------------------------------------------------------------------
// ValidityPeriod (1609.2 6.4.12)
// ---------------------------------------------------------------------------------------------

/** ValidityPeriod ::= SEQUENCE { start Time32, duration Duration }. */
export interface ValidityPeriod {
  start: Time32;
  duration: Duration;
}

/** The end of a validity period as Time64 (start + duration, 6.4.12), exact to the microsecond. */
export function validityPeriodEndTime64(vp: ValidityPeriod): Time64 {
  return time32ToTime64(vp.start) + durationToMicroseconds(vp.duration);
}

/** The end of a validity period in TAI seconds since the epoch (fractional for sub-second durations). */
export function validityPeriodEnd(vp: ValidityPeriod): number {
  return vp.start + durationToSeconds(vp.duration);
}

/**
 * Whether `time` lies in the validity period. The period is taken as closed: start and
 * start + duration both belong to it. `time` is a Time32, a Time64 (bigint) or a Date.
 */
export function validityPeriodContains(vp: ValidityPeriod, time: Time32 | Time64 | Date): boolean {
  const t =
    time instanceof Date ? dateToTime64(time) : typeof time === 'bigint' ? time : time32ToTime64(time);
  return t >= time32ToTime64(vp.start) && t <= validityPeriodEndTime64(vp);
}

/** Whether `inner` lies entirely within `outer` (e.g. a certificate within its issuer, 5.1.2.4). */
export function validityPeriodContainsPeriod(outer: ValidityPeriod, inner: ValidityPeriod): boolean {
  return inner.start >= outer.start && validityPeriodEndTime64(inner) <= validityPeriodEndTime64(outer);
}

/** A ValidityPeriod from a start Date and a length in seconds (unit chosen as durationFromSeconds). */
export function validityPeriodFrom(start: Date, seconds: number, opts: { exact?: boolean } = {}): ValidityPeriod {
  return { start: dateToTime32(start), duration: durationFromSeconds(seconds, opts) };
}

// ---------------------------------------------------------------------------------------------
// i-periods (1609.2.1 clause 4.3 "time-*" policy parameters)
// ---------------------------------------------------------------------------------------------

/**
 * The i-period parameters of a policy. Interpretation used throughout scms:
 * - i-period i starts at time-iPeriodEpoch + (i - time-iPeriodInit) * time-iPeriodLength and
 *   ends where i-period i+1 starts; i is an IValue (Uint16).
 * - Each i-period has time-baseCertNumber certificates, j = 0 .. baseCertNumber-1, all valid
 *   for the whole i-period.
 * - The first time-overlapCertNumber of them (j < overlapCertNumber) stay valid for time-overlap
 *   seconds into i-period i+1, so that an EE is never without a certificate at the boundary.
 */
export interface IPeriodParams {
  /** time-iPeriodEpoch: Time32 at which i-period time-iPeriodInit starts. */
  iPeriodEpoch: Time32;
  /** time-iPeriodLength, seconds (> 0). */
  iPeriodLength: number;
  /** time-iPeriodInit: the i value of the i-period that starts at the epoch. */
  iPeriodInit: number;
  /** time-overlap, seconds (>= 0, < iPeriodLength). Default 0. */
  overlap?: number;
  /** time-baseCertNumber: certificates per i-period. Default 1. */
  baseCertNumber?: number;
  /** time-overlapCertNumber: certificates of a period that extend into the next. Default baseCertNumber when overlap > 0. */
  overlapCertNumber?: number;
}

function checkIPeriodParams(p: IPeriodParams): void {
  if (!isTime32(p.iPeriodEpoch)) throw new RangeError(`time-iPeriodEpoch is not a Time32: ${p.iPeriodEpoch}`);
  if (!Number.isInteger(p.iPeriodLength) || p.iPeriodLength <= 0) {
    throw new RangeError(`time-iPeriodLength must be a positive integer number of seconds: ${p.iPeriodLength}`);
  }
  if (!Number.isInteger(p.iPeriodInit) || p.iPeriodInit < 0 || p.iPeriodInit > UINT16_MAX) {
    throw new RangeError(`time-iPeriodInit is not a Uint16: ${p.iPeriodInit}`);
  }
}

/** The i value (IValue, Uint16) of the i-period containing Time32 `t`. RangeError before the epoch or past i = 65535. */
export function iPeriodOf(p: IPeriodParams, t: Time32): number {
  checkIPeriodParams(p);
  assertTime32(t);
  if (t < p.iPeriodEpoch) throw new RangeError(`time ${t} is before time-iPeriodEpoch ${p.iPeriodEpoch}`);
  const i = p.iPeriodInit + Math.floor((t - p.iPeriodEpoch) / p.iPeriodLength);
  if (i > UINT16_MAX) throw new RangeError(`i-period ${i} exceeds the IValue range`);
  return i;
}

/** Time32 at which i-period i starts. */
export function iPeriodStart(p: IPeriodParams, i: number): Time32 {
  checkIPeriodParams(p);
  if (!Number.isInteger(i) || i < p.iPeriodInit || i > UINT16_MAX) {
    throw new RangeError(`i = ${i} is outside [time-iPeriodInit ${p.iPeriodInit}, 65535]`);
  }
  const t = p.iPeriodEpoch + (i - p.iPeriodInit) * p.iPeriodLength;
  assertTime32(t);
  return t;
}

/** Time32 at which i-period i ends (= the start of i-period i+1, exclusive). */
export function iPeriodEnd(p: IPeriodParams, i: number): Time32 {
  const t = iPeriodStart(p, i) + p.iPeriodLength;
  assertTime32(t);
  return t;
}

function certCounts(p: IPeriodParams): { base: number; overlap: number; overlapCerts: number } {
  const base = p.baseCertNumber ?? 1;
  const overlap = p.overlap ?? 0;
  const overlapCerts = overlap > 0 ? (p.overlapCertNumber ?? base) : 0;
  if (!Number.isInteger(base) || base < 1) throw new RangeError(`time-baseCertNumber must be >= 1: ${base}`);
  if (!Number.isInteger(overlap) || overlap < 0 || overlap >= p.iPeriodLength) {
    throw new RangeError(`time-overlap must be an integer in [0, time-iPeriodLength): ${overlap}`);
  }
  if (!Number.isInteger(overlapCerts) || overlapCerts < 0 || overlapCerts > base) {
    throw new RangeError(`time-overlapCertNumber must be in [0, time-baseCertNumber]: ${overlapCerts}`);
  }
  return { base, overlap, overlapCerts };
}

/**
 * Validity period of certificate (i, j): it starts with i-period i and lasts time-iPeriodLength,
 * plus time-overlap for j < time-overlapCertNumber. The Duration is the exact one when
 * representable, otherwise the smallest covering one.
 */
export function certValidityPeriod(p: IPeriodParams, i: number, j: number): ValidityPeriod {
  const { base, overlap, overlapCerts } = certCounts(p);
  if (!Number.isInteger(j) || j < 0 || j >= base) throw new RangeError(`j = ${j} is outside [0, ${base})`);
  const seconds = p.iPeriodLength + (j < overlapCerts ? overlap : 0);
  return { start: iPeriodStart(p, i), duration: durationFromSeconds(seconds) };
}

/** The j values of i-period i: 0 .. time-baseCertNumber-1. */
export function jValues(p: IPeriodParams): number[] {
  const { base } = certCounts(p);
  return Array.from({ length: base }, (_, j) => j);
}

/**
 * The (i, j) certificates usable at Time32 `t`: every j of the current i-period and, during the
 * first time-overlap seconds of it, the j < time-overlapCertNumber of the previous i-period.
 */
export function certificatesValidAt(p: IPeriodParams, t: Time32): Array<{ i: number; j: number }> {
  const { base, overlap, overlapCerts } = certCounts(p);
  const i = iPeriodOf(p, t);
  const out: Array<{ i: number; j: number }> = [];
  if (i > p.iPeriodInit && t < iPeriodStart(p, i) + overlap) {
    for (let j = 0; j < overlapCerts; j++) out.push({ i: i - 1, j });
  }
  for (let j = 0; j < base; j++) out.push({ i, j });
  return out;
}
