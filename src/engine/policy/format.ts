/**
 * Policy files: the global policy (one per SCMS, signed by the policy generator) and the local
 * policy (per deployment: component URLs, device-type restrictions within the global limits).
 * Keys of the parameters that IEEE 1609.2.1-2022 clause 4.3 names are spelled as the standard
 * spells them (`time-iPeriodLength`, `eca-maxReqs`, ...). The format is documented key by key
 * in templates/policies/README.md. All durations are whole seconds; absolute times are UTC
 * strings `YYYY-MM-DDTHH:MM:SSZ`.
 */
import { dateToTime32, type IPeriodParams, type Time32 } from '../../security/time.js';
import { canonicalJsonBytes } from './canonical.js';

export const POLICY_FORMAT = 1;

export type DeviceType = 'OBU' | 'RSU';
export const DEVICE_TYPES: readonly DeviceType[] = ['OBU', 'RSU'];
export type CertificateKind = 'pseudonym' | 'identification' | 'enrollment';
export const CERTIFICATE_KINDS: readonly CertificateKind[] = ['pseudonym', 'identification', 'enrollment'];

/** 1609.2.1 butterfly key variants (ra-butterflyType). */
export type ButterflyType = 'original' | 'unified' | 'compactUnified';
export const BUTTERFLY_TYPES: readonly ButterflyType[] = ['original', 'unified', 'compactUnified'];

/** scmsV3-eeAuth: how the EE authenticates each request kind at the REST API level. */
export type EeAuth = 'canonical' | 'enrollment' | 'authorization' | 'none';
export const EE_AUTH_VALUES: readonly EeAuth[] = ['canonical', 'enrollment', 'authorization', 'none'];
export const EE_AUTH_ENDPOINTS = [
  'enrollmentCertificate',
  'authorizationCertificate',
  'authorizationDownload',
  'successorEnrollmentCertificate',
  'successorEnrollmentDownload',
  'misbehaviorReport',
  'trustFiles',
] as const;
export type EeAuthEndpoint = (typeof EE_AUTH_ENDPOINTS)[number];

/** One PSID with an optional SSP; no `ssp` means any SSP (1609.2 PsidSsp / PsidSspRange). */
export interface PsidSsp {
  psid: number;
  /** ServiceSpecificPermissions CHOICE as hex: `{ opaque: "..." }` or `{ bitmapSsp: "..." }`. */
  ssp?: { opaque: string } | { bitmapSsp: string };
}

export type DevicePermissions = Record<CertificateKind, PsidSsp[]>;

export interface ButterflyTypeEntry {
  psids: number[];
  'ra-butterflyType': ButterflyType[];
}

export interface GlobalPolicy {
  policyType: 'globalPolicy';
  policyFormat: 1;
  policyId: string;
  policyVersion: number;
  sequenceNumber: number;
  issueTime: string;
  /** CountryOnly (1609.2 6.4.23) codes, UN M.49 / ISO 3166-1 numeric. */
  regions: number[];
  'time-iPeriodEpoch': string;
  'time-iPeriodLength': number;
  'time-iPeriodInit': number;
  'time-overlap': number;
  'time-baseCertNumber': number;
  'time-overlapCertNumber': number;
  'eca-maxAge': number;
  'eca-maxReqs': number;
  'eca-minWait': number;
  'eca-maxWait': number;
  'ra-maxAge': number;
  'ra-maxGenDelay': number;
  'ra-maxReqs': number;
  'ra-minWait': number;
  'ra-maxPreloadTime': number;
  'ra-acpcSupport': boolean;
  'ra-butterflyType': ButterflyTypeEntry[];
  'download-maxAge': number;
  'download-maxReqs': number;
  'download-minWait': number;
  'scmsV3-eeAuth': Record<EeAuthEndpoint, EeAuth>;
  'scmsV3-error': 'fine' | 'coarse';
  allowedClockSkew: number;
  enrollmentValidity: number;
  identificationValidity: number;
  'crl-nextUpdate': number;
  'ctl-nextUpdate': number;
  crlOverdueTolerance: number;
  deviceTypes: Record<DeviceType, DevicePermissions>;
}

export interface ComponentUrls {
  ra: string;
  eca: string;
  la1: string;
  la2: string;
  ma: string;
  distribution: string;
}

/** Limits a local policy may tighten. `max`: local <= global; `min`: local >= global. */
export const OVERRIDABLE_LIMITS = {
  'eca-maxAge': 'max',
  'eca-maxReqs': 'max',
  'eca-maxWait': 'max',
  'eca-minWait': 'min',
  'ra-maxAge': 'max',
  'ra-maxGenDelay': 'max',
  'ra-maxReqs': 'max',
  'ra-minWait': 'min',
  'ra-maxPreloadTime': 'max',
  'download-maxAge': 'max',
  'download-maxReqs': 'max',
  'download-minWait': 'min',
  allowedClockSkew: 'max',
  enrollmentValidity: 'max',
  identificationValidity: 'max',
} as const satisfies Partial<Record<keyof GlobalPolicy, 'max' | 'min'>>;
export type OverridableLimit = keyof typeof OVERRIDABLE_LIMITS;

export interface LocalPolicy {
  policyType: 'localPolicy';
  policyFormat: 1;
  policyId: string;
  /** policyId of the global policy this one refines. */
  globalPolicyId: string;
  policyVersion: number;
  sequenceNumber: number;
  issueTime: string;
  urls: ComponentUrls;
  limits?: Partial<Record<OverridableLimit, number>>;
  /** Per device type and certificate kind, a subset of the global PSID/SSP list. */
  deviceTypes?: Partial<Record<DeviceType, Partial<DevicePermissions>>>;
}

export type Policy = GlobalPolicy | LocalPolicy;

// ---------------------------------------------------------------------------------------------
// Defaults (US deployment sizing: 1-week i-period, 20 pseudonyms per period, 3-year preload,
// 5 s clock skew, 2-week CRL overdue tolerance)
// ---------------------------------------------------------------------------------------------

/** 1609.2 6.4.15: a year is 31556952 s. */
export const YEAR_SECONDS = 31_556_952;
export const WEEK_SECONDS = 7 * 24 * 3600;

/** PSIDs used by the defaults (IEEE 1609.12 registry; see templates/policies/README.md). */
export const PSID = {
  /** 0x20 vehicle-to-vehicle safety and awareness (SAE J2735 BSM). */
  vehicleToVehicleSafety: 32,
  /** 0x23 SecurityMgmtPsid (1609.2.1 Ieee1609Dot2Dot1Protocol). */
  securityMgmt: 35,
  /** 0x26 misbehavior reporting for common applications (1609.2.1 BaseMbrPsid). */
  misbehaviorReporting: 38,
  /** 0x82 intersection safety and awareness (SPaT, MAP). */
  intersectionSafety: 130,
  /** 0x83 traveller information and roadside signage (TIM). */
  travellerInformation: 131,
  /** 0x100 CrlPsid (1609.2 Ieee1609Dot2Crl). */
  crl: 256,
} as const;

export function defaultGlobalPolicy(fields: {
  policyId: string;
  issueTime: string;
  regions: number[];
  iPeriodEpoch: string;
}): GlobalPolicy {
  return {
    policyType: 'globalPolicy',
    policyFormat: 1,
    policyId: fields.policyId,
    policyVersion: 1,
    sequenceNumber: 1,
    issueTime: fields.issueTime,
    regions: fields.regions,
    'time-iPeriodEpoch': fields.iPeriodEpoch,
    'time-iPeriodLength': WEEK_SECONDS,
    'time-iPeriodInit': 0,
    'time-overlap': 3600,
    'time-baseCertNumber': 20,
    'time-overlapCertNumber': 20,
    'eca-maxAge': 300,
    'eca-maxReqs': 10,
    'eca-minWait': 10,
    'eca-maxWait': 3600,
    'ra-maxAge': 300,
    'ra-maxGenDelay': WEEK_SECONDS,
    'ra-maxReqs': 10,
    'ra-minWait': 60,
    'ra-maxPreloadTime': 3 * YEAR_SECONDS,
    'ra-acpcSupport': false,
    'ra-butterflyType': [
      { psids: [PSID.vehicleToVehicleSafety, PSID.misbehaviorReporting], 'ra-butterflyType': ['original', 'unified', 'compactUnified'] },
    ],
    'download-maxAge': 300,
    'download-maxReqs': 1000,
    'download-minWait': 1,
    'scmsV3-eeAuth': {
      enrollmentCertificate: 'canonical',
      authorizationCertificate: 'enrollment',
      authorizationDownload: 'enrollment',
      successorEnrollmentCertificate: 'enrollment',
      successorEnrollmentDownload: 'enrollment',
      misbehaviorReport: 'authorization',
      trustFiles: 'none',
    },
    'scmsV3-error': 'fine',
    allowedClockSkew: 5,
    enrollmentValidity: 6 * YEAR_SECONDS,
    identificationValidity: YEAR_SECONDS,
    'crl-nextUpdate': WEEK_SECONDS,
    'ctl-nextUpdate': YEAR_SECONDS,
    crlOverdueTolerance: 2 * WEEK_SECONDS,
    deviceTypes: {
      OBU: {
        pseudonym: [{ psid: PSID.vehicleToVehicleSafety }, { psid: PSID.misbehaviorReporting }],
        identification: [],
        enrollment: [{ psid: PSID.vehicleToVehicleSafety }, { psid: PSID.misbehaviorReporting }],
      },
      RSU: {
        pseudonym: [],
        identification: [{ psid: PSID.intersectionSafety }, { psid: PSID.travellerInformation }],
        enrollment: [{ psid: PSID.intersectionSafety }, { psid: PSID.travellerInformation }],
      },
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

export interface PolicyIssue {
  /** Dotted key path, e.g. `deviceTypes.OBU.pseudonym[0].psid` or `eca-maxReqs`. */
  key: string;
  message: string;
}

export class PolicyError extends Error {
  constructor(readonly issues: PolicyIssue[]) {
    super(`invalid policy: ${issues.map((i) => `${i.key}: ${i.message}`).join('; ')}`);
    this.name = 'PolicyError';
  }
}

const UINT16_MAX = 0xffff;
const UINT32_MAX = 0xffff_ffff;
const UTC_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/;

class Checker {
  readonly issues: PolicyIssue[] = [];

  err(key: string, message: string): void {
    this.issues.push({ key, message });
  }

  object(v: unknown, key: string): Record<string, unknown> | undefined {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      this.err(key || '(document)', `expected an object, got ${describe(v)}`);
      return undefined;
    }
    return v as Record<string, unknown>;
  }

  /** Reports unknown and missing keys. */
  keys(obj: Record<string, unknown>, path: string, required: readonly string[], optional: readonly string[] = []): void {
    const known = new Set([...required, ...optional]);
    for (const k of Object.keys(obj)) if (!known.has(k)) this.err(join(path, k), 'unknown key');
    for (const k of required) if (!(k in obj)) this.err(join(path, k), 'missing');
  }

  int(obj: Record<string, unknown>, k: string, path: string, min: number, max: number): void {
    if (!(k in obj)) return;
    const v = obj[k];
    const key = join(path, k);
    if (typeof v !== 'number' || !Number.isInteger(v)) this.err(key, `expected an integer, got ${describe(v)}`);
    else if (v < min || v > max) this.err(key, `${v} is out of range [${min}, ${max}]`);
  }

  str(obj: Record<string, unknown>, k: string, path: string, re?: RegExp, what?: string): void {
    if (!(k in obj)) return;
    const v = obj[k];
    const key = join(path, k);
    if (typeof v !== 'string') this.err(key, `expected a string, got ${describe(v)}`);
    else if (re && !re.test(v)) this.err(key, `${JSON.stringify(v)} is not ${what ?? `matching ${re}`}`);
  }

  bool(obj: Record<string, unknown>, k: string, path: string): void {
    if (k in obj && typeof obj[k] !== 'boolean') this.err(join(path, k), `expected a boolean, got ${describe(obj[k])}`);
  }

  oneOf(obj: Record<string, unknown>, k: string, path: string, values: readonly string[]): void {
    if (!(k in obj)) return;
    const v = obj[k];
    if (typeof v !== 'string' || !values.includes(v)) {
      this.err(join(path, k), `expected one of ${values.join(', ')}, got ${describe(v)}`);
    }
  }

  time(obj: Record<string, unknown>, k: string, path: string): void {
    if (!(k in obj)) return;
    const v = obj[k];
    const key = join(path, k);
    if (typeof v !== 'string' || !UTC_RE.test(v) || !isRealUtc(v)) {
      this.err(key, `expected a UTC time YYYY-MM-DDTHH:MM:SSZ, got ${describe(v)}`);
      return;
    }
    try {
      dateToTime32(new Date(v));
    } catch {
      this.err(key, `${v} is outside the Time32 range (2004-01-01 .. 2140)`);
    }
  }

  intArray(obj: Record<string, unknown>, k: string, path: string, min: number, max: number, nonEmpty: boolean): void {
    if (!(k in obj)) return;
    const v = obj[k];
    const key = join(path, k);
    if (!Array.isArray(v)) return this.err(key, `expected an array, got ${describe(v)}`);
    if (nonEmpty && v.length === 0) this.err(key, 'must not be empty');
    const seen = new Set<unknown>();
    v.forEach((e, i) => {
      if (typeof e !== 'number' || !Number.isInteger(e)) this.err(`${key}[${i}]`, `expected an integer, got ${describe(e)}`);
      else if (e < min || e > max) this.err(`${key}[${i}]`, `${e} is out of range [${min}, ${max}]`);
      if (seen.has(e)) this.err(`${key}[${i}]`, `duplicate ${JSON.stringify(e)}`);
      seen.add(e);
    });
  }

  psidSspList(v: unknown, key: string): void {
    if (!Array.isArray(v)) return this.err(key, `expected an array, got ${describe(v)}`);
    const seen = new Set<number>();
    v.forEach((e, i) => {
      const p = `${key}[${i}]`;
      const o = this.object(e, p);
      if (!o) return;
      this.keys(o, p, ['psid'], ['ssp']);
      this.int(o, 'psid', p, 0, UINT32_MAX);
      if (typeof o.psid === 'number') {
        if (seen.has(o.psid)) this.err(join(p, 'psid'), `duplicate PSID ${o.psid}`);
        seen.add(o.psid);
      }
      if ('ssp' in o) {
        const s = this.object(o.ssp, join(p, 'ssp'));
        if (!s) return;
        const ks = Object.keys(s);
        if (ks.length !== 1 || (ks[0] !== 'opaque' && ks[0] !== 'bitmapSsp')) {
          this.err(join(p, 'ssp'), 'expected exactly one of opaque, bitmapSsp');
          return;
        }
        const hex = s[ks[0]!];
        const maxLen = ks[0] === 'bitmapSsp' ? 31 : 65535; // BitmapSsp ::= OCTET STRING (SIZE(0..31))
        if (typeof hex !== 'string' || !/^([0-9a-f]{2})*$/.test(hex)) {
          this.err(join(join(p, 'ssp'), ks[0]!), `expected lower-case hex octets, got ${describe(hex)}`);
        } else if (hex.length / 2 > maxLen) {
          this.err(join(join(p, 'ssp'), ks[0]!), `longer than ${maxLen} octets`);
        }
      }
    });
  }

  url(obj: Record<string, unknown>, k: string, path: string): void {
    if (!(k in obj)) return;
    const v = obj[k];
    const key = join(path, k);
    if (typeof v !== 'string') return this.err(key, `expected a URL string, got ${describe(v)}`);
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      return this.err(key, `${JSON.stringify(v)} is not a URL`);
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:') this.err(key, `${JSON.stringify(v)} is not an http(s) URL`);
    if (u.search || u.hash) this.err(key, `${JSON.stringify(v)} must not have a query or fragment`);
  }
}

function join(path: string, k: string): string {
  return path ? `${path}.${k}` : k;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return `${typeof v} ${String(v)}`;
  return typeof v;
}

function isRealUtc(s: string): boolean {
  const m = UTC_RE.exec(s)!;
  const [y, mo, d, h, mi, se] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const t = new Date(Date.UTC(y, mo - 1, d, h, mi, se));
  return t.getUTCFullYear() === y && t.getUTCMonth() === mo - 1 && t.getUTCDate() === d && h < 24 && mi < 60 && se < 60;
}

const SECONDS_MAX = UINT32_MAX;
const COUNT_MAX = 0x7fff_ffff;
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

const GLOBAL_SECONDS_KEYS = [
  'eca-maxAge',
  'eca-minWait',
  'eca-maxWait',
  'ra-maxAge',
  'ra-maxGenDelay',
  'ra-minWait',
  'ra-maxPreloadTime',
  'download-maxAge',
  'download-minWait',
  'allowedClockSkew',
  'crl-nextUpdate',
  'ctl-nextUpdate',
  'crlOverdueTolerance',
] as const;
const GLOBAL_COUNT_KEYS = ['eca-maxReqs', 'ra-maxReqs', 'download-maxReqs'] as const;
const GLOBAL_REQUIRED = [
  'policyType',
  'policyFormat',
  'policyId',
  'policyVersion',
  'sequenceNumber',
  'issueTime',
  'regions',
  'time-iPeriodEpoch',
  'time-iPeriodLength',
  'time-iPeriodInit',
  'time-overlap',
  'time-baseCertNumber',
  'time-overlapCertNumber',
  ...GLOBAL_SECONDS_KEYS,
  ...GLOBAL_COUNT_KEYS,
  'ra-acpcSupport',
  'ra-butterflyType',
  'scmsV3-eeAuth',
  'scmsV3-error',
  'enrollmentValidity',
  'identificationValidity',
  'deviceTypes',
] as const;

function checkHeader(c: Checker, o: Record<string, unknown>, type: string): void {
  if ('policyType' in o && o.policyType !== type) c.err('policyType', `expected "${type}", got ${describe(o.policyType)}`);
  if ('policyFormat' in o && o.policyFormat !== POLICY_FORMAT) {
    c.err('policyFormat', `unsupported format ${describe(o.policyFormat)} (this version reads ${POLICY_FORMAT})`);
  }
  c.str(o, 'policyId', '', ID_RE, 'an identifier ([A-Za-z0-9._-], 1-64 characters)');
  c.int(o, 'policyVersion', '', 0, UINT32_MAX);
  c.int(o, 'sequenceNumber', '', 0, UINT32_MAX);
  c.time(o, 'issueTime', '');
}

function toJson(input: string | unknown): unknown {
  if (typeof input !== 'string') return input;
  try {
    return JSON.parse(input);
  } catch (e) {
    throw new PolicyError([{ key: '(document)', message: `not JSON: ${(e as Error).message}` }]);
  }
}

/** Parses and strictly validates a global policy (JSON text or an already parsed value). */
export function parseGlobalPolicy(input: string | unknown): GlobalPolicy {
  const c = new Checker();
  const o = c.object(toJson(input), '');
  if (!o) throw new PolicyError(c.issues);
  c.keys(o, '', GLOBAL_REQUIRED);
  checkHeader(c, o, 'globalPolicy');
  c.intArray(o, 'regions', '', 1, 999, true);
  c.time(o, 'time-iPeriodEpoch', '');
  c.int(o, 'time-iPeriodLength', '', 1, SECONDS_MAX);
  c.int(o, 'time-iPeriodInit', '', 0, UINT16_MAX);
  c.int(o, 'time-overlap', '', 0, SECONDS_MAX);
  c.int(o, 'time-baseCertNumber', '', 1, UINT16_MAX);
  c.int(o, 'time-overlapCertNumber', '', 0, UINT16_MAX);
  for (const k of GLOBAL_SECONDS_KEYS) c.int(o, k, '', 0, SECONDS_MAX);
  for (const k of GLOBAL_COUNT_KEYS) c.int(o, k, '', 1, COUNT_MAX);
  c.int(o, 'enrollmentValidity', '', 1, SECONDS_MAX);
  c.int(o, 'identificationValidity', '', 1, SECONDS_MAX);
  c.bool(o, 'ra-acpcSupport', '');
  c.oneOf(o, 'scmsV3-error', '', ['fine', 'coarse']);

  // cross-field constraints
  const n = (k: string) => (typeof o[k] === 'number' && Number.isInteger(o[k]) ? (o[k] as number) : undefined);
  const len = n('time-iPeriodLength');
  const ov = n('time-overlap');
  if (len !== undefined && ov !== undefined && ov >= len) c.err('time-overlap', `must be less than time-iPeriodLength (${len})`);
  const base = n('time-baseCertNumber');
  const ovc = n('time-overlapCertNumber');
  if (base !== undefined && ovc !== undefined && ovc > base) {
    c.err('time-overlapCertNumber', `must not exceed time-baseCertNumber (${base})`);
  }
  const minW = n('eca-minWait');
  const maxW = n('eca-maxWait');
  if (minW !== undefined && maxW !== undefined && minW > maxW) c.err('eca-minWait', `must not exceed eca-maxWait (${maxW})`);
  const pre = n('ra-maxPreloadTime');
  if (pre !== undefined && len !== undefined && pre < len) c.err('ra-maxPreloadTime', `must be at least one i-period (${len})`);
  if (typeof o['time-iPeriodEpoch'] === 'string' && typeof o.issueTime === 'string' && len !== undefined) {
    // the last i-period (i = 65535) must not end before the policy is issued
    const epoch = Date.parse(o['time-iPeriodEpoch']);
    const init = n('time-iPeriodInit') ?? 0;
    if (Number.isFinite(epoch) && epoch + (UINT16_MAX + 1 - init) * len * 1000 <= Date.parse(o.issueTime)) {
      c.err('time-iPeriodEpoch', 'every i value (IValue, Uint16) is already in the past at issueTime');
    }
  }

  // ra-butterflyType: [{ psids, ra-butterflyType }]
  if ('ra-butterflyType' in o) {
    const v = o['ra-butterflyType'];
    if (!Array.isArray(v)) c.err('ra-butterflyType', `expected an array, got ${describe(v)}`);
    else {
      const seenPsid = new Set<number>();
      v.forEach((e, i) => {
        const p = `ra-butterflyType[${i}]`;
        const eo = c.object(e, p);
        if (!eo) return;
        c.keys(eo, p, ['psids', 'ra-butterflyType']);
        c.intArray(eo, 'psids', p, 0, UINT32_MAX, true);
        for (const psid of Array.isArray(eo.psids) ? eo.psids : []) {
          if (typeof psid === 'number' && seenPsid.has(psid)) c.err(`${p}.psids`, `PSID ${psid} is listed in another entry`);
          if (typeof psid === 'number') seenPsid.add(psid);
        }
        const types = eo['ra-butterflyType'];
        if (!Array.isArray(types) || types.length === 0) c.err(`${p}.ra-butterflyType`, 'expected a non-empty array');
        else {
          types.forEach((t, k) => {
            if (typeof t !== 'string' || !(BUTTERFLY_TYPES as readonly string[]).includes(t)) {
              c.err(`${p}.ra-butterflyType[${k}]`, `expected one of ${BUTTERFLY_TYPES.join(', ')}, got ${describe(t)}`);
            }
          });
          if (new Set(types).size !== types.length) c.err(`${p}.ra-butterflyType`, 'duplicate entries');
        }
      });
    }
  }

  if ('scmsV3-eeAuth' in o) {
    const a = c.object(o['scmsV3-eeAuth'], 'scmsV3-eeAuth');
    if (a) {
      c.keys(a, 'scmsV3-eeAuth', EE_AUTH_ENDPOINTS);
      for (const k of EE_AUTH_ENDPOINTS) c.oneOf(a, k, 'scmsV3-eeAuth', EE_AUTH_VALUES);
    }
  }

  if ('deviceTypes' in o) checkDeviceTypes(c, o.deviceTypes, true);

  if (c.issues.length) throw new PolicyError(c.issues);
  return o as unknown as GlobalPolicy;
}

function checkDeviceTypes(c: Checker, v: unknown, full: boolean): void {
  const dt = c.object(v, 'deviceTypes');
  if (!dt) return;
  c.keys(dt, 'deviceTypes', full ? DEVICE_TYPES : [], full ? [] : DEVICE_TYPES);
  for (const t of DEVICE_TYPES) {
    if (!(t in dt)) continue;
    const p = `deviceTypes.${t}`;
    const perms = c.object(dt[t], p);
    if (!perms) continue;
    c.keys(perms, p, full ? CERTIFICATE_KINDS : [], full ? [] : CERTIFICATE_KINDS);
    for (const k of CERTIFICATE_KINDS) if (k in perms) c.psidSspList(perms[k], `${p}.${k}`);
  }
}

const LOCAL_REQUIRED = [
  'policyType',
  'policyFormat',
  'policyId',
  'globalPolicyId',
  'policyVersion',
  'sequenceNumber',
  'issueTime',
  'urls',
] as const;
const URL_KEYS = ['ra', 'eca', 'la1', 'la2', 'ma', 'distribution'] as const;

/**
 * Parses and strictly validates a local policy. With `global`, also checks that it refines that
 * global policy (globalPolicyId) and stays within its limits and device-type permissions.
 */
export function parseLocalPolicy(input: string | unknown, global?: GlobalPolicy): LocalPolicy {
  const c = new Checker();
  const o = c.object(toJson(input), '');
  if (!o) throw new PolicyError(c.issues);
  c.keys(o, '', LOCAL_REQUIRED, ['limits', 'deviceTypes']);
  checkHeader(c, o, 'localPolicy');
  c.str(o, 'globalPolicyId', '', ID_RE, 'an identifier ([A-Za-z0-9._-], 1-64 characters)');
  if ('urls' in o) {
    const u = c.object(o.urls, 'urls');
    if (u) {
      c.keys(u, 'urls', URL_KEYS);
      for (const k of URL_KEYS) c.url(u, k, 'urls');
    }
  }
  const limitKeys = Object.keys(OVERRIDABLE_LIMITS) as OverridableLimit[];
  if ('limits' in o) {
    const l = c.object(o.limits, 'limits');
    if (l) {
      c.keys(l, 'limits', [], limitKeys);
      for (const k of limitKeys) {
        if (k.endsWith('maxReqs')) c.int(l, k, 'limits', 1, COUNT_MAX);
        else c.int(l, k, 'limits', 0, SECONDS_MAX);
      }
    }
  }
  if ('deviceTypes' in o) checkDeviceTypes(c, o.deviceTypes, false);
  if (c.issues.length) throw new PolicyError(c.issues);

  const local = o as unknown as LocalPolicy;
  if (global) {
    const issues = checkLocalWithinGlobal(local, global);
    if (issues.length) throw new PolicyError(issues);
  }
  return local;
}

/** Issues where a (well-formed) local policy exceeds its global policy. */
export function checkLocalWithinGlobal(local: LocalPolicy, global: GlobalPolicy): PolicyIssue[] {
  const issues: PolicyIssue[] = [];
  if (local.globalPolicyId !== global.policyId) {
    issues.push({ key: 'globalPolicyId', message: `refers to ${local.globalPolicyId}, not to global policy ${global.policyId}` });
  }
  for (const [k, v] of Object.entries(local.limits ?? {}) as Array<[OverridableLimit, number]>) {
    const g = global[k];
    if (OVERRIDABLE_LIMITS[k] === 'max' && v > g) issues.push({ key: `limits.${k}`, message: `${v} exceeds the global ${k} (${g})` });
    if (OVERRIDABLE_LIMITS[k] === 'min' && v < g) issues.push({ key: `limits.${k}`, message: `${v} is below the global ${k} (${g})` });
  }
  for (const t of DEVICE_TYPES) {
    const perms = local.deviceTypes?.[t];
    if (!perms) continue;
    for (const kind of CERTIFICATE_KINDS) {
      const list = perms[kind];
      if (!list) continue;
      const allowed = global.deviceTypes[t][kind];
      list.forEach((e, i) => {
        if (!allowed.some((a) => psidSspCovers(a, e))) {
          issues.push({
            key: `deviceTypes.${t}.${kind}[${i}]`,
            message: `PSID ${e.psid}${e.ssp ? ' with this SSP' : ''} is not allowed for ${t} ${kind} certificates by the global policy`,
          });
        }
      });
    }
  }
  return issues;
}

/** Whether global entry `g` allows local entry `l`: same PSID and (g has no SSP, or the same SSP). */
function psidSspCovers(g: PsidSsp, l: PsidSsp): boolean {
  if (g.psid !== l.psid) return false;
  if (!g.ssp) return true;
  if (!l.ssp) return false;
  return JSON.stringify(g.ssp) === JSON.stringify(l.ssp);
}

/** Parses either kind, by its policyType. */
export function parsePolicy(input: string | unknown): Policy {
  const v = toJson(input);
  const t = typeof v === 'object' && v !== null ? (v as Record<string, unknown>).policyType : undefined;
  if (t === 'globalPolicy') return parseGlobalPolicy(v);
  if (t === 'localPolicy') return parseLocalPolicy(v);
  throw new PolicyError([{ key: 'policyType', message: `expected "globalPolicy" or "localPolicy", got ${describe(t)}` }]);
}

/**
 * The bytes a policy generator signs: canonical JSON (sorted keys, no whitespace, UTF-8), so
 * that any party re-serializing the same policy gets the same bytes.
 */
export function canonicalPolicyBytes(policy: Policy): Uint8Array {
  return canonicalJsonBytes(policy);
}

/** The i-period parameters of a global policy, for src/security/time.ts. */
export function iPeriodParamsOf(policy: GlobalPolicy): IPeriodParams {
  return {
    iPeriodEpoch: dateToTime32(new Date(policy['time-iPeriodEpoch'])),
    iPeriodLength: policy['time-iPeriodLength'],
    iPeriodInit: policy['time-iPeriodInit'],
    overlap: policy['time-overlap'],
    baseCertNumber: policy['time-baseCertNumber'],
    overlapCertNumber: policy['time-overlapCertNumber'],
  };
}

/** A policy's issueTime as Time32. */
export function policyIssueTime32(policy: Policy): Time32 {
  return dateToTime32(new Date(policy.issueTime));
}

/**
 * The effective limits and permissions for a deployment: the global policy with the local
 * policy's tighter limits and device-type subsets applied (the local must already be checked).
 */
export function effectivePolicy(global: GlobalPolicy, local: LocalPolicy): GlobalPolicy {
  const issues = checkLocalWithinGlobal(local, global);
  if (issues.length) throw new PolicyError(issues);
  const out: GlobalPolicy = structuredClone(global);
  for (const [k, v] of Object.entries(local.limits ?? {}) as Array<[OverridableLimit, number]>) out[k] = v;
  for (const t of DEVICE_TYPES) {
    for (const kind of CERTIFICATE_KINDS) {
      const list = local.deviceTypes?.[t]?.[kind];
      if (list) out.deviceTypes[t][kind] = structuredClone(list);
    }
  }
  return out;
}
