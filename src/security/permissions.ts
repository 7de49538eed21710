/**
 * Permissions consistency between a certificate and its issuer (1609.2 5.1.2.x certificate chain
 * consistency; 6.4.28 PsidGroupPermissions, 6.4.29 SubjectPermissions, 6.4.30 minChainLength /
 * chainLengthRange, 6.4.31 EndEntityType; BaseTypes PsidSspRange / SspRange / BitmapSspRange).
 *
 * Rules implemented (the issuer's certIssuePermissions is a list of groups G = (perms, min, range, eeType)):
 * - Chain length: G allows chains of length L from the issuer down to an end entity when
 *   min <= L <= min + range (range -1: no upper bound). A subject end entity is at L = 1; a subject CA's group
 *   G' = (min', range') needs every L' it allows to give L = L' + 1 allowed by G: min' + 1 >= min and
 *   (range = -1 or (range' != -1 and min' + range' + 1 <= min + range)).
 * - appPermissions (PsidSsp): some G with eeType app, L = 1 allowed, covering the PSID and the SSP.
 * - certRequestPermissions groups: each PSID range within some G with eeType enrol and L = 1 allowed
 *   (the requesting certificate is an end entity of the issuer); the group's eeType within G's.
 * - certIssuePermissions groups: each PSID range (or `all`) within some G whose chain lengths contain the
 *   shifted ones and whose eeType contains the group's eeType.
 * - SSP containment: issuer range absent or `all` admits anything; `opaque` lists admit those exact octet
 *   strings (a subject opaque list must be a subset); `bitmapSspRange` admits SSPs of the same length equal to
 *   sspValue on the sspBitmask bits (a subject bitmap range must fix at least those bits to the same values).
 *   An absent SSP in appPermissions is taken as the empty octet string.
 * An issuer with no certIssuePermissions permits nothing.
 */
import type { Certificate, PsidGroupPermissions, SubjectPermissions } from '../codec/gen/Ieee1609Dot2.js';
import type { PsidSsp, PsidSspRange, ServiceSpecificPermissions, SspRange } from '../codec/gen/Ieee1609Dot2BaseTypes.js';

/** How a certificate is named in messages: its id name, or a role label given by the caller. */
export interface PermissionLabels {
  issuer?: string;
  subject?: string;
}

export function certificateLabel(cert: Certificate, role: string): string {
  const id = cert.toBeSigned.id as Record<string, unknown>;
  if (typeof id.name === 'string') return `${role} certificate '${id.name}'`;
  if (id.binaryId instanceof Uint8Array) return `${role} certificate ${Buffer.from(id.binaryId).toString('hex')}`;
  return `${role} certificate`;
}

const hexPsid = (p: bigint): string => `0x${p.toString(16)}`;
const hexBytes = (b: Uint8Array): string => (b.length === 0 ? '(empty)' : Buffer.from(b).toString('hex'));

interface Group {
  all: boolean;
  ranges: PsidSspRange[];
  min: bigint;
  range: bigint; // -1 = unbounded
  app: boolean;
  enrol: boolean;
}

function group(g: PsidGroupPermissions): Group {
  const sp = g.subjectPermissions as Record<string, unknown>;
  const ee = g.eeType ?? '10000000';
  return {
    all: 'all' in sp,
    ranges: 'explicit' in sp ? (sp.explicit as PsidSspRange[]) : [],
    min: g.minChainLength ?? 1n,
    range: g.chainLengthRange ?? 0n,
    app: ee[0] === '1',
    enrol: ee[1] === '1',
  };
}

function allowsLength(g: Group, L: bigint): boolean {
  return L >= g.min && (g.range < 0n || L <= g.min + g.range);
}

/** Subject group chain lengths (shifted by one) within the issuer group's. */
function containsChain(g: Group, sub: Group): boolean {
  if (sub.min + 1n < g.min) return false;
  if (g.range < 0n) return true;
  if (sub.range < 0n) return false;
  return sub.min + sub.range + 1n <= g.min + g.range;
}

function sspOctets(ssp: ServiceSpecificPermissions | undefined): Uint8Array | undefined {
  if (ssp === undefined) return new Uint8Array(0);
  const s = ssp as Record<string, unknown>;
  if (s.opaque instanceof Uint8Array) return s.opaque;
  if (s.bitmapSsp instanceof Uint8Array) return s.bitmapSsp;
  return undefined; // unknown alternative
}

function bitmapAdmits(value: Uint8Array, mask: Uint8Array, ssp: Uint8Array): boolean {
  if (ssp.length !== value.length || mask.length !== value.length) return false;
  for (let i = 0; i < value.length; i++) if (((ssp[i]! ^ value[i]!) & mask[i]!) !== 0) return false;
  return true;
}

/** Whether an SSP lies in an SspRange (absent range = all). */
export function sspWithinRange(ssp: ServiceSpecificPermissions | undefined, range: SspRange | undefined): boolean {
  if (range === undefined) return true;
  const r = range as Record<string, unknown>;
  if ('all' in r) return true;
  const octets = sspOctets(ssp);
  if (octets === undefined) return false;
  if (Array.isArray(r.opaque)) return (r.opaque as Uint8Array[]).some((o) => Buffer.from(o).equals(Buffer.from(octets)));
  if (r.bitmapSspRange) {
    const { sspValue, sspBitmask } = r.bitmapSspRange as { sspValue: Uint8Array; sspBitmask: Uint8Array };
    return bitmapAdmits(sspValue, sspBitmask, octets);
  }
  return false;
}

/** Whether SspRange `sub` lies within SspRange `sup` (absent = all). */
export function sspRangeWithin(sub: SspRange | undefined, sup: SspRange | undefined): boolean {
  if (sup === undefined || 'all' in (sup as object)) return true;
  if (sub === undefined || 'all' in (sub as object)) return false;
  const s = sub as Record<string, unknown>;
  const p = sup as Record<string, unknown>;
  if (Array.isArray(s.opaque)) return (s.opaque as Uint8Array[]).every((o) => sspWithinRange({ opaque: o }, sup));
  if (s.bitmapSspRange && p.bitmapSspRange) {
    const a = s.bitmapSspRange as { sspValue: Uint8Array; sspBitmask: Uint8Array };
    const b = p.bitmapSspRange as { sspValue: Uint8Array; sspBitmask: Uint8Array };
    if (a.sspValue.length !== b.sspValue.length || a.sspBitmask.length !== b.sspBitmask.length) return false;
    for (let i = 0; i < b.sspValue.length; i++) {
      const m = b.sspBitmask[i]!;
      if ((a.sspBitmask[i]! & m) !== m) return false; // subject must fix every bit the issuer fixes
      if (((a.sspValue[i]! ^ b.sspValue[i]!) & m) !== 0) return false; // ... to the same value
    }
    return true;
  }
  return false;
}

function rangeCovers(ranges: PsidSspRange[], all: boolean, psid: bigint, test: (r: SspRange | undefined) => boolean): boolean {
  if (all) return true;
  return ranges.some((r) => r.psid === psid && test(r.sspRange));
}

function describeSsp(ssp: ServiceSpecificPermissions | undefined): string {
  if (ssp === undefined) return '';
  const o = sspOctets(ssp);
  return o === undefined ? ' with an unknown SSP type' : ` with SSP ${hexBytes(o)}`;
}

function describeRange(r: SspRange | undefined): string {
  if (r === undefined || 'all' in (r as object)) return '';
  const x = r as Record<string, unknown>;
  if (Array.isArray(x.opaque)) return ` with SSPs {${(x.opaque as Uint8Array[]).map(hexBytes).join(', ')}}`;
  if (x.bitmapSspRange) {
    const b = x.bitmapSspRange as { sspValue: Uint8Array; sspBitmask: Uint8Array };
    return ` with SSP bitmap value ${hexBytes(b.sspValue)} mask ${hexBytes(b.sspBitmask)}`;
  }
  return ' with an unknown SSP range';
}

const lenText = (g: Group): string => `chain length ${g.min}..${g.range < 0n ? 'unbounded' : g.min + g.range}`;
const eeText = (g: Group): string => [g.app ? 'app' : '', g.enrol ? 'enrol' : ''].filter(Boolean).join('+') || 'none';

/**
 * The permissions of `subject` that its issuer's certIssuePermissions do not allow, as readable messages;
 * empty when consistent (rules in the module comment).
 */
export function checkIssuePermissions(issuer: Certificate, subject: Certificate, labels: PermissionLabels = {}): string[] {
  const I = labels.issuer ?? certificateLabel(issuer, 'issuer');
  const S = labels.subject ?? certificateLabel(subject, 'subject');
  const groups = (issuer.toBeSigned.certIssuePermissions ?? []).map(group);
  const errors: string[] = [];
  const tbs = subject.toBeSigned;

  // appPermissions: the subject acts as an end entity of the issuer (chain length 1, eeType app)
  const appGroups = groups.filter((g) => g.app && allowsLength(g, 1n));
  for (const ps of (tbs.appPermissions ?? []) as PsidSsp[]) {
    if (appGroups.some((g) => rangeCovers(g.ranges, g.all, ps.psid, (r) => sspWithinRange(ps.ssp, r)))) continue;
    const psidAnywhere = groups.some((g) => g.all || g.ranges.some((r) => r.psid === ps.psid));
    const psidForApp = appGroups.some((g) => g.all || g.ranges.some((r) => r.psid === ps.psid));
    errors.push(
      psidAnywhere && !psidForApp
        ? `${S} grants psid ${hexPsid(ps.psid)} in appPermissions but its ${I} allows that psid only with another eeType or chain length`
        : `${S} grants psid ${hexPsid(ps.psid)}${describeSsp(ps.ssp)} which its ${I} does not allow`,
    );
  }

  // certRequestPermissions: the subject is an end entity (L = 1) that signs requests (eeType enrol)
  const enrolGroups = groups.filter((g) => g.enrol && allowsLength(g, 1n));
  for (const [i, raw] of (tbs.certRequestPermissions ?? []).entries()) {
    const where = `${S} certRequestPermissions[${i}]`;
    if (enrolGroups.length === 0) {
      errors.push(`${where} is not allowed: its ${I} grants no permissions with eeType enrol at chain length 1`);
      continue;
    }
    errors.push(...groupWithin(group(raw), enrolGroups, where, I, 'request'));
  }

  // certIssuePermissions: subject CA groups within the issuer's, chain lengths shifted by one
  for (const [i, raw] of (tbs.certIssuePermissions ?? []).entries()) {
    const sub = group(raw);
    const candidates = groups.filter((g) => containsChain(g, sub) && (!sub.app || g.app) && (!sub.enrol || g.enrol));
    if (candidates.length === 0) {
      const detail = groups.length === 0 ? 'has no certIssuePermissions' : `allows no ${lenText(sub)} (+1) with eeType ${eeText(sub)} for it`;
      errors.push(`${S} certIssuePermissions[${i}] (${lenText(sub)}) is not allowed: its ${I} ${detail}`);
      continue;
    }
    errors.push(...groupWithin(sub, candidates, `${S} certIssuePermissions[${i}]`, I, 'issue'));
  }
  return errors;
}

/** Every PSID range of `sub` covered by one of `candidates`. */
function groupWithin(sub: Group, candidates: Group[], where: string, I: string, verb: string): string[] {
  if (sub.all) {
    return candidates.some((g) => g.all) ? [] : [`${where} may ${verb} for all psids but its ${I} does not allow all psids`];
  }
  const out: string[] = [];
  for (const r of sub.ranges) {
    if (candidates.some((g) => rangeCovers(g.ranges, g.all, r.psid, (ir) => sspRangeWithin(r.sspRange, ir)))) continue;
    out.push(`${where} grants psid ${hexPsid(r.psid)}${describeRange(r.sspRange)} which its ${I} does not allow`);
  }
  return out;
}

/** Whether a certificate grants `psid` in its appPermissions (optionally with an SSP inside `sspRange`). */
export function certificateAllowsPsid(cert: Certificate, psid: number | bigint, sspRange?: SspRange): boolean {
  const p = BigInt(psid);
  return ((cert.toBeSigned.appPermissions ?? []) as PsidSsp[]).some(
    (ps) => ps.psid === p && (sspRange === undefined || sspWithinRange(ps.ssp, sspRange)),
  );
}

/** Whether a CA certificate may issue end-entity certificates (chain length 1) for `psid` with eeType app. */
export function certificateMayIssuePsid(cert: Certificate, psid: number | bigint, chainLength = 1): boolean {
  const p = BigInt(psid);
  return (cert.toBeSigned.certIssuePermissions ?? [])
    .map(group)
    .some((g) => g.app && allowsLength(g, BigInt(chainLength)) && (g.all || g.ranges.some((r) => r.psid === p)));
}

export type { SubjectPermissions };
