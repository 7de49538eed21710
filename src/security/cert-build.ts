/**
 * ToBeSignedCertificate (1609.2 6.4.8) from friendly inputs. Values that are already in the codec's shape
 * (CertificateId, GeographicRegion, PsidGroupPermissions, PublicEncryptionKey, ...) pass through unchanged.
 */
import type {
  CertificateId,
  LinkageData,
  PsidGroupPermissions,
  SequenceOfPsidGroupPermissions,
  ToBeSignedCertificate,
  VerificationKeyIndicator,
} from '../codec/gen/Ieee1609Dot2.js';
import type {
  GeographicRegion,
  PsidSsp,
  PsidSspRange,
  PublicEncryptionKey,
  ServiceSpecificPermissions,
  SspRange,
  SymmAlgorithm,
  TwoDLocation,
} from '../codec/gen/Ieee1609Dot2BaseTypes.js';
import type { CurveName } from '../crypto/curves.js';
import { dateToTime32, durationFromSeconds, type Duration } from './time.js';
import { publicEncryptionKey, publicVerificationKey } from './certificate.js';

export type PsidInput = number | bigint;

/** An SSP: raw octets (opaque) or the codec CHOICE. */
export type SspInput = Uint8Array | ServiceSpecificPermissions;

/** One PsidSspRange of a PsidGroupPermissions: a PSID alone (any SSP) or with an SspRange. */
export type PsidRangeInput = PsidInput | { psid: PsidInput; sspRange?: SspRange | 'all' | Uint8Array[] };

/** Friendly PsidGroupPermissions (6.4.28): psids 'all' = SubjectPermissions all. */
export interface PsidGroupInput {
  psids: 'all' | PsidRangeInput[];
  minChainLength?: number;
  chainLengthRange?: number;
  /** EndEntityType (6.4.31): default app only. */
  eeType?: { app?: boolean; enrol?: boolean } | string;
}

export interface TbsCertificateInput {
  id: { name: string } | { linkageData: LinkageData } | { binaryId: Uint8Array } | 'none' | CertificateId;
  /** HashedId3 of the CRACA certificate; default 000000 (no CRACA, 6.4.8). */
  cracaId?: Uint8Array;
  crlSeries?: number;
  validity: { start: Date; durationSeconds: number } | { start: Date; duration: Duration };
  region?: { countries: number[] } | GeographicRegion;
  /** SubjectAssurance: one octet (a number 0..255 or the octet). */
  assuranceLevel?: number | Uint8Array;
  appPermissions?: Array<{ psid: PsidInput; ssp?: SspInput }>;
  certIssuePermissions?: Array<PsidGroupInput | PsidGroupPermissions>;
  certRequestPermissions?: Array<PsidGroupInput | PsidGroupPermissions>;
  canRequestRollover?: boolean;
  /** 1609.2-2022 6.4.8 flags BIT STRING {usesCubk (0)} (SIZE (8)), e.g. '10000000' for usesCubk. */
  flags?: string;
  /** ECIES key (256-bit curves): encoded point (nistP256 assumed) or with curve / symmetric algorithm. */
  encryptionKey?: Uint8Array | { curve: CurveName; publicKey: Uint8Array; symmAlgorithm?: SymmAlgorithm } | PublicEncryptionKey;
  /** Verification key of an explicit certificate (nistP256 assumed for bare bytes). Absent: filled in by issuance. */
  verifyKey?: Uint8Array | { curve: CurveName; publicKey: Uint8Array };
}

function psid(p: PsidInput): bigint {
  const v = typeof p === 'bigint' ? p : BigInt(p);
  if (v < 0n) throw new RangeError(`negative PSID ${p}`);
  return v;
}

function ssp(s: SspInput): ServiceSpecificPermissions {
  return s instanceof Uint8Array ? { opaque: s } : s;
}

function psidRange(r: PsidRangeInput): PsidSspRange {
  if (typeof r === 'number' || typeof r === 'bigint') return { psid: psid(r) };
  const out: PsidSspRange = { psid: psid(r.psid) };
  if (r.sspRange === 'all') out.sspRange = { all: null };
  else if (Array.isArray(r.sspRange)) out.sspRange = { opaque: r.sspRange };
  else if (r.sspRange !== undefined) out.sspRange = r.sspRange;
  return out;
}

function eeTypeBits(t: PsidGroupInput['eeType']): string | undefined {
  if (t === undefined || typeof t === 'string') return t;
  return `${t.app ? 1 : 0}${t.enrol ? 1 : 0}000000`;
}

/** PsidGroupPermissions (6.4.28) from friendly input (codec values pass through). */
export function psidGroupPermissions(g: PsidGroupInput | PsidGroupPermissions): PsidGroupPermissions {
  if ('subjectPermissions' in g) return g;
  const out: PsidGroupPermissions = {
    subjectPermissions: g.psids === 'all' ? { all: null } : { explicit: g.psids.map(psidRange) },
  };
  if (g.minChainLength !== undefined) out.minChainLength = BigInt(g.minChainLength);
  if (g.chainLengthRange !== undefined) out.chainLengthRange = BigInt(g.chainLengthRange);
  const ee = eeTypeBits(g.eeType);
  if (ee !== undefined) out.eeType = ee;
  return out;
}

function groups(gs: Array<PsidGroupInput | PsidGroupPermissions> | undefined): SequenceOfPsidGroupPermissions | undefined {
  return gs?.map(psidGroupPermissions);
}

/** A circular region (6.4.17) in 1/10 micro-degrees and metres. */
export function circularRegion(center: TwoDLocation, radius: number): GeographicRegion {
  return { circularRegion: { center, radius } };
}

/**
 * Builds a ToBeSignedCertificate (6.4.8). Without `verifyKey` the verifyKeyIndicator is the placeholder
 * `{ reconstructionValue: { fill: null } }`, which issueImplicitCertificate replaces and
 * issueExplicitCertificate rejects.
 */
export function buildTbsCertificate(input: TbsCertificateInput): ToBeSignedCertificate {
  const id: CertificateId = input.id === 'none' ? { none: null } : (input.id as CertificateId);
  const v = input.validity;
  const validityPeriod = {
    start: dateToTime32(v.start),
    duration: 'duration' in v ? v.duration : durationFromSeconds(v.durationSeconds),
  };
  let verifyKeyIndicator: VerificationKeyIndicator;
  if (input.verifyKey === undefined) verifyKeyIndicator = { reconstructionValue: { fill: null } };
  else if (input.verifyKey instanceof Uint8Array) verifyKeyIndicator = { verificationKey: publicVerificationKey('nistP256', input.verifyKey) };
  else verifyKeyIndicator = { verificationKey: publicVerificationKey(input.verifyKey.curve, input.verifyKey.publicKey) };

  const tbs: ToBeSignedCertificate = {
    id,
    cracaId: input.cracaId ?? new Uint8Array(3),
    crlSeries: input.crlSeries ?? 0,
    validityPeriod,
    verifyKeyIndicator,
  };
  if (input.region) {
    tbs.region =
      'countries' in input.region
        ? { identifiedRegion: input.region.countries.map((c) => ({ countryOnly: c })) }
        : input.region;
  }
  if (input.assuranceLevel !== undefined) {
    tbs.assuranceLevel = input.assuranceLevel instanceof Uint8Array ? input.assuranceLevel : Uint8Array.of(input.assuranceLevel);
  }
  if (input.appPermissions) {
    tbs.appPermissions = input.appPermissions.map((p): PsidSsp => (p.ssp === undefined ? { psid: psid(p.psid) } : { psid: psid(p.psid), ssp: ssp(p.ssp) }));
  }
  const cip = groups(input.certIssuePermissions);
  if (cip) tbs.certIssuePermissions = cip;
  const crp = groups(input.certRequestPermissions);
  if (crp) tbs.certRequestPermissions = crp;
  if (input.canRequestRollover) tbs.canRequestRollover = null;
  if (input.flags !== undefined) {
    if (!/^[01]{8}$/.test(input.flags)) throw new RangeError(`flags must be 8 bits, got '${input.flags}'`);
    tbs.flags = input.flags;
  }
  const ek = input.encryptionKey;
  if (ek !== undefined) {
    if (ek instanceof Uint8Array) tbs.encryptionKey = publicEncryptionKey('nistP256', ek);
    else if ('supportedSymmAlg' in ek) tbs.encryptionKey = ek;
    else tbs.encryptionKey = publicEncryptionKey(ek.curve, ek.publicKey, ek.symmAlgorithm);
  }
  return tbs;
}
