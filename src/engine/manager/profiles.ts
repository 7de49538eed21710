/**
 * Certificate profiles of the SCMS roles the Manager creates: which permissions each certificate
 * carries (IEEE 1609.2-2022 6.4.8 ToBeSignedCertificate, 6.4.28 PsidGroupPermissions) and which
 * 1609.2.1 SecurityMgmtSsp it holds for SecurityMgmtPsid (1609.2.1-2022 Ieee1609Dot2Dot1Protocol
 * "Service Specific Permissions"; roles as in 1609.2.1 clause 4.1).
 *
 * Hierarchy built by `scms manager init` (1609.2.1 4.1.2, figure 1):
 *   electors (self-signed, listed in the CTL)
 *   root CA (self-signed, listed in the CTL)
 *     └ ICA
 *         ├ ECA  (issues enrollment certificates: eeType enrol)
 *         ├ ACA  (issues pseudonym / identification certificates: eeType app)
 *         ├ RA, LA1, LA2, MA, CRL signer, PG (end-entity certificates of SCMS components)
 *
 * Curves: NIST P-256 for every certificate by default (what every EE verifies fastest, the curve of
 * ECQV implicit certificates, and one hash, SHA-256, for every HashedId8 in the hierarchy).
 * Electors and the root can use P-384 instead (`curves.top`, `scms manager init --root-curve P-384`;
 * 1609.2 ecdsaNistP384 with SHA-384), which gives the ICA a sha384AndDigest issuer (the root key's hash)
 * while it signs with SHA-256 itself and its own HashedId8 stays SHA-256 (whole-certificate hash of a
 * P-256 key, 6.4.3): what it issues names it sha256AndDigest.
 *
 * Chain lengths (6.4.28): minChainLength / chainLengthRange count the certificates below the
 * issuing certificate down to and including the end-entity certificate. root -> ICA -> ACA -> EE
 * is 3 below the root, so the root allows 1..3 (min 1, range 2), the ICA 1..2 and the ECA / ACA 1.
 */
import {
  AcaSsp,
  CrlSignerSsp,
  EcaSsp,
  ElectorSsp,
  IcaSsp,
  LaSsp,
  MaSsp,
  PgSsp,
  RaSsp,
  RootCaSsp,
  SecurityMgmtSsp,
  type PsidGroupPermissions,
  type PsidSsp as CodecPsidSsp,
  type PsidSspRange,
} from '../../codec/index.js';
import { CrlSsp } from '../../codec/gen/Ieee1609Dot2CrlSsp.js';
import { fromHex } from '../../crypto/bytes.js';
import type { GlobalPolicy, PsidSsp as PolicyPsidSsp } from '../policy/index.js';
import { PSID, YEAR_SECONDS } from '../policy/index.js';

// Keep the SSP codecs referenced (the CHOICE alternatives are typed by them).
void [AcaSsp, CrlSignerSsp, EcaSsp, ElectorSsp, IcaSsp, LaSsp, MaSsp, PgSsp, RaSsp, RootCaSsp];

export type Role = 'elector' | 'root' | 'ica' | 'eca' | 'aca' | 'ra' | 'la' | 'ma' | 'crl-signer' | 'pg';
export const ROLES: readonly Role[] = ['elector', 'root', 'ica', 'eca', 'aca', 'ra', 'la', 'ma', 'crl-signer', 'pg'];
/** Roles `scms manager issue` can add under the ICA. */
export type ComponentRole = 'eca' | 'aca' | 'ra' | 'la' | 'ma' | 'crl-signer' | 'pg';
export const COMPONENT_ROLES: readonly ComponentRole[] = ['eca', 'aca', 'ra', 'la', 'ma', 'crl-signer', 'pg'];

/** 1609.2.1 SecurityMgmtPsid (0x23). */
export const SECURITY_MGMT_PSID = 35n;
/** 1609.2 Ieee1609Dot2Crl CrlPsid (0x100). */
export const CRL_PSID = 256n;
/** The CRL series the CRL signer signs and component certificates name (1609.2 6.4.8 crlSeries). */
export const DEFAULT_CRL_SERIES = 1;

/** EndEntityType bits (1609.2 6.4.30): app = bit 0, enrol = bit 1 (8-bit BIT STRING). */
export const EE_TYPE = { app: '10000000', enrol: '01000000', both: '11000000' } as const;

export type KeyCurve = 'P-256' | 'P-384';

export interface RoleContext {
  policy: GlobalPolicy;
  /** LaSsp.laId of an LA (1609.2.1: distinguishes LA1 / LA2 in the linkage value computation). */
  laId?: number;
}

export interface CertificateProfile {
  role: Role;
  /** Default validity in seconds. */
  validitySeconds: number;
  curve: KeyCurve;
  /** The component receives data encrypted to it (1609.2 6.4.8 encryptionKey). */
  encryptionKey: boolean;
  appPermissions: CodecPsidSsp[];
  certIssuePermissions?: PsidGroupPermissions[];
  certRequestPermissions?: PsidGroupPermissions[];
  /** ToBeSignedCertificate flags (1609.2-2022 6.4.8), e.g. usesCubk for the ACA. */
  flags?: string;
}

/** flags with usesCubk (bit 0) set. */
export const USES_CUBK = '10000000';

/** Default validity per role, seconds (1609.2 years of 31556952 s). */
export const DEFAULT_VALIDITY: Readonly<Record<Role, number>> = {
  elector: 20 * YEAR_SECONDS,
  root: 20 * YEAR_SECONDS,
  ica: 10 * YEAR_SECONDS,
  eca: 5 * YEAR_SECONDS,
  aca: 3 * YEAR_SECONDS,
  ra: 3 * YEAR_SECONDS,
  la: 3 * YEAR_SECONDS,
  ma: 3 * YEAR_SECONDS,
  'crl-signer': 3 * YEAR_SECONDS,
  pg: 3 * YEAR_SECONDS,
};

/** COER of the SecurityMgmtSsp for a role (1609.2.1 SecurityMgmtSsp; every *Ssp has version 2). */
export function securityMgmtSsp(role: Role, ctx: RoleContext): Uint8Array {
  const v = { version: 2 };
  switch (role) {
    case 'elector':
      return SecurityMgmtSsp.encode({ elector: v });
    case 'root':
      return SecurityMgmtSsp.encode({ root: v });
    case 'ica':
      return SecurityMgmtSsp.encode({ ica: v });
    case 'eca':
      return SecurityMgmtSsp.encode({ eca: v });
    case 'aca':
      return SecurityMgmtSsp.encode({ aca: v });
    case 'ra':
      return SecurityMgmtSsp.encode({ ra: v });
    case 'crl-signer':
      return SecurityMgmtSsp.encode({ crl: v });
    case 'pg':
      return SecurityMgmtSsp.encode({ pg: v });
    case 'la': {
      if (ctx.laId === undefined || !Number.isInteger(ctx.laId) || ctx.laId < 0 || ctx.laId > 0xffff) {
        throw new RangeError('an LA certificate needs an laId (Uint16)');
      }
      return SecurityMgmtSsp.encode({ la: { version: 2, laId: ctx.laId } });
    }
    case 'ma':
      // MaSsp.relevantPsids: the PSIDs whose misbehavior this MA receives reports about (1609.2.1 4.1.5).
      return SecurityMgmtSsp.encode({ ma: { version: 2, relevantPsids: applicationPsids(ctx.policy, ['pseudonym', 'identification']) } });
  }
}

/** Decodes the SecurityMgmtSsp of an appPermissions entry; undefined if none / not decodable. */
export function roleOfSsp(ssp: Uint8Array): string | undefined {
  try {
    return Object.keys(SecurityMgmtSsp.decode(ssp))[0];
  } catch {
    return undefined;
  }
}

/** Sorted distinct PSIDs of the policy's device-type lists of the given kinds. */
export function applicationPsids(policy: GlobalPolicy, kinds: Array<'pseudonym' | 'identification' | 'enrollment'>): bigint[] {
  const set = new Set<number>();
  for (const dt of Object.values(policy.deviceTypes)) {
    for (const k of kinds) for (const e of dt[k]) set.add(e.psid);
  }
  return [...set].sort((a, b) => a - b).map(BigInt);
}

/**
 * PsidSspRange entries for the policy's lists of the given kinds: a PSID whose entries restrict
 * the SSP gets an opaque / bitmap range of exactly those SSPs, one without an SSP any SSP.
 */
function policyRanges(policy: GlobalPolicy, kinds: Array<'pseudonym' | 'identification' | 'enrollment'>): PsidSspRange[] {
  const byPsid = new Map<number, PolicyPsidSsp[]>();
  for (const dt of Object.values(policy.deviceTypes)) {
    for (const k of kinds) for (const e of dt[k]) byPsid.set(e.psid, [...(byPsid.get(e.psid) ?? []), e]);
  }
  const out: PsidSspRange[] = [];
  for (const psid of [...byPsid.keys()].sort((a, b) => a - b)) {
    const entries = byPsid.get(psid)!;
    if (entries.some((e) => e.ssp === undefined)) {
      out.push({ psid: BigInt(psid) });
      continue;
    }
    const opaque = [...new Set(entries.map((e) => ('opaque' in e.ssp! ? e.ssp.opaque : undefined)).filter((x) => x !== undefined))];
    const bitmaps = entries.filter((e) => 'bitmapSsp' in e.ssp!);
    if (bitmaps.length > 0) {
      // A bitmap SSP cannot be combined with others in one range: allow any SSP for that PSID.
      out.push({ psid: BigInt(psid), sspRange: { all: null } });
    } else {
      out.push({ psid: BigInt(psid), sspRange: { opaque: opaque.map(fromHex) } });
    }
  }
  return out;
}

function group(ranges: PsidSspRange[], minChainLength: number, chainLengthRange: number, eeType: string): PsidGroupPermissions {
  const g: PsidGroupPermissions = { subjectPermissions: { explicit: ranges } };
  if (minChainLength !== 1) g.minChainLength = BigInt(minChainLength);
  if (chainLengthRange !== 0) g.chainLengthRange = BigInt(chainLengthRange);
  if (eeType !== EE_TYPE.app) g.eeType = eeType;
  return g;
}

/**
 * The permissions of each role. CAs above the components (root, ICA) may issue psid 35 with any
 * SecurityMgmtSsp (an opaque list cannot enumerate LaSsp.laId / MaSsp.relevantPsids of future
 * LAs and MAs), the CRL PSID and every application PSID of the policy, for app and enrol
 * end entities. appPermissions always hold psid 35 with the role's SecurityMgmtSsp.
 */
export function certificateProfile(role: Role, ctx: RoleContext, curves?: { top?: KeyCurve; below?: KeyCurve }): CertificateProfile {
  const top = curves?.top ?? 'P-256';
  const below = curves?.below ?? 'P-256';
  const mgmt: CodecPsidSsp = { psid: SECURITY_MGMT_PSID, ssp: { opaque: securityMgmtSsp(role, ctx) } };
  const everything: PsidSspRange[] = [
    { psid: SECURITY_MGMT_PSID, sspRange: { all: null } },
    { psid: CRL_PSID, sspRange: { all: null } },
    ...policyRanges(ctx.policy, ['pseudonym', 'identification', 'enrollment']).filter(
      (r) => r.psid !== SECURITY_MGMT_PSID && r.psid !== CRL_PSID,
    ),
  ];
  const appRanges = policyRanges(ctx.policy, ['pseudonym', 'identification']);
  const enrolRanges = policyRanges(ctx.policy, ['enrollment']);
  const base = { role, validitySeconds: DEFAULT_VALIDITY[role], appPermissions: [mgmt] };
  switch (role) {
    case 'elector':
      // 1609.2.1 ElectorSsp: signs CTLs (ballots) only; no issuing.
      return { ...base, curve: top, encryptionKey: false };
    case 'root':
      return { ...base, curve: top, encryptionKey: false, certIssuePermissions: [group(everything, 1, 2, EE_TYPE.both)] };
    case 'ica':
      return { ...base, curve: below, encryptionKey: false, certIssuePermissions: [group(everything, 1, 1, EE_TYPE.both)] };
    case 'eca':
      // ECA: enrollment certificates (eeType enrol) carrying the PSIDs EEs may later request.
      return {
        ...base,
        curve: below,
        encryptionKey: true,
        certIssuePermissions: enrolRanges.length ? [group(enrolRanges, 1, 0, EE_TYPE.enrol)] : undefined,
      };
    case 'aca':
      // ACA: authorization (pseudonym / identification) certificates, eeType app. flags usesCubk
      // (1609.2-2022 6.4.8; 1609.2.1 compact unified butterfly): the ACA may answer cubk requests,
      // whose responses are signed by the ACA with no encryption key of its own in them.
      return {
        ...base,
        curve: below,
        encryptionKey: true,
        flags: USES_CUBK,
        certIssuePermissions: appRanges.length ? [group(appRanges, 1, 0, EE_TYPE.app)] : undefined,
      };
    case 'ra': {
      // RA requests authorization certificates from the ACA on behalf of EEs (1609.2.1 RaAcaCertRequest)
      // and forwards successor enrollment requests to the ECA.
      const req: PsidGroupPermissions[] = [];
      if (appRanges.length) req.push(group(appRanges, 1, 0, EE_TYPE.app));
      if (enrolRanges.length) req.push(group(enrolRanges, 1, 0, EE_TYPE.enrol));
      return { ...base, curve: below, encryptionKey: true, certRequestPermissions: req.length ? req : undefined };
    }
    case 'la':
    case 'ma':
      return { ...base, curve: below, encryptionKey: true };
    case 'crl-signer': {
      // 1609.2 CrlSsp for CrlPsid: signs CRLs of series DEFAULT_CRL_SERIES for its issuer (the CRACA).
      const crlSsp = CrlSsp.encode({ version: 1, associatedCraca: 'issuerIsCraca', crls: [DEFAULT_CRL_SERIES] });
      return {
        ...base,
        appPermissions: [mgmt, { psid: CRL_PSID, ssp: { opaque: crlSsp } }],
        curve: below,
        encryptionKey: false,
      };
    }
    case 'pg':
      return { ...base, curve: below, encryptionKey: false };
  }
}

/** Default component names of `scms manager init` (used as key names and certificate ids). */
export const DEFAULT_COMPONENTS: ReadonlyArray<{ name: string; role: ComponentRole; laId?: number }> = [
  { name: 'eca', role: 'eca' },
  { name: 'aca', role: 'aca' },
  { name: 'ra', role: 'ra' },
  { name: 'la1', role: 'la', laId: 1 },
  { name: 'la2', role: 'la', laId: 2 },
  { name: 'ma', role: 'ma' },
  { name: 'crl-signer', role: 'crl-signer' },
  { name: 'pg', role: 'pg' },
];

export { PSID };
