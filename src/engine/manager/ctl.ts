/**
 * The Certificate Trust List (IEEE 1609.2.1 MultiSignedCtl, fullIeeeCtl type): build a FullIeeeTbsCtl, have
 * electors sign it separately (CtlSignatureSpdu "ballots"), assemble the MultiSignedCtlSpdu once a quorum has
 * signed, and verify a CTL or a whole series.
 *
 * Rules implemented (see ctl.md beside this file for the full list and the clauses they come from):
 * - FullIeeeTbsCtl lists the COMPLETE set of approved electors (HashedId48 = SHA-384 of the COER elector
 *   certificate) and root CAs (HashedId32 = SHA-256 of the COER root certificate, or the low-order 32 octets of
 *   SHA-384 for a root signed with a 48-octet hash). "Any root CA or elector certificate that is not on the CTL is
 *   not trusted"; electorRemove / rootCaRemove are informational. The certificates themselves travel in `unsigned`.
 * - A CtlSignatureSpdu signs ToBeSignedCtlSignature {ctlSeriesId, ctlType, sequenceNumber, tbsCtlHash =
 *   SHA-384(COER tbsCtl)} with SecurityMgmtPsid (35), signer = the elector certificate; 1609.2 signature input
 *   H(COER ToBeSignedData) || H(COER elector certificate).
 * - Each signature in a MultiSignedCtl is by a distinct elector.
 * - The first CTL of a series (no previous CTL known) is self-approving: at least its own `quorum` of the
 *   electors it approves sign it; it is trusted by out-of-band installation.
 * - CTL n+1 (same ctlSeriesId, sequenceNumber n+1, effectiveDate >= that of CTL n) needs signatures from at
 *   least `quorum` electors that CTL n approves (the quorum of CTL n, carried forward when a CTL omits it) and
 *   that CTL n+1 does not remove: removing an elector needs the quorum without that elector.
 * - An elector's certificate must be valid at the effectiveDate of the CTL it signs.
 */
import { Certificate, Ieee1609Dot2Data, SequenceOfCertificate, ToBeSignedData } from '../../codec/gen/Ieee1609Dot2.js';
import { FullIeeeTbsCtl, fullIeeeCtl, type MultiSignedCtl, type ToBeSignedCtlSignature } from '../../codec/gen/Ieee1609Dot2Dot1CertManagement.js';
import { CtlSignatureSpdu, MultiSignedCtlSpdu, ScmsPdu } from '../../codec/gen/Ieee1609Dot2Dot1Protocol.js';
import { constantTimeEqual, toHex } from '../../crypto/bytes.js';
import { sha384 } from '../../crypto/hash.js';
import type { Signer } from '../../security/signer.js';
import { dateToTime32, time32ToDate, type Clock } from '../../security/time.js';
import { sign1609Dot2, verify1609Dot2Signature } from '../../security/certificate.js';
import { curve, decodePoint, type CurveName } from '../../crypto/curves.js';
import {
  certificateLabel,
  certificateValidAt,
  certificateVerificationKey,
  electorHash,
  rootCaHash,
  selfSignatureProblem,
} from './ctl-crypto.js';

export { FullIeeeTbsCtl };
export { electorHash, rootCaHash, certificateLabel } from './ctl-crypto.js';

/** SecurityMgmtPsid (1609.2.1 Ieee1609Dot2Dot1Protocol): the PSID of every CtlSignatureSpdu. */
export const SECURITY_MGMT_PSID = 35n;
/** Ieee1609Dot2Data protocolVersion (1609.2) and ScmsPdu version (1609.2.1). */
const IEEE1609DOT2_VERSION = 3;
const SCMS_PDU_VERSION = 2;

/** Trust state after a verified CTL: the approved electors and roots (certificates) and the quorum for the next CTL. */
export interface CtlState {
  ctlSeriesId: Uint8Array;
  sequenceNumber: number;
  effectiveDate: Date;
  /** Electors needed to sign the next CTL of the series. */
  quorum: number;
  electors: Certificate[];
  roots: Certificate[];
}

export interface BuildTbsCtlInput {
  ctlSeriesId: Uint8Array;
  sequenceNumber: number;
  effectiveDate: Date;
  electorApprove: Certificate[];
  electorRemove: Certificate[];
  rootCaApprove: Certificate[];
  rootCaRemove: Certificate[];
  quorum: number;
}

/** One signature that did not count, and why. */
export interface IgnoredSignature {
  /** 0-based index in the input list. */
  index: number;
  /** Signer label when the signature could be decoded. */
  signer?: string;
  kind: 'malformed' | 'other-ctl' | 'not-elector' | 'removed' | 'bad-signature' | 'expired' | 'duplicate';
  reason: string;
}

/** Thrown by assembleMultiSignedCtl when the counted signatures fall short of the quorum. */
export class CtlQuorumError extends Error {
  constructor(
    /** Labels of the electors whose signatures count. */
    readonly signed: string[],
    /** Signatures needed (the quorum). */
    readonly needed: number,
    /** Labels of the eligible electors that have not signed. */
    readonly missing: string[],
    /** Signatures that did not count. */
    readonly ignored: IgnoredSignature[],
    /** Number of eligible electors. */
    readonly eligible: number,
  ) {
    const tail = ignored.length ? `; ignored: ${ignored.map((i) => `#${i.index + 1} ${i.reason}`).join('; ')}` : '';
    super(
      `${needed} of ${eligible} signatures needed, have ${signed.length}` +
        (missing.length ? `: missing ${missing.join(', ')}` : '') +
        tail,
    );
    this.name = 'CtlQuorumError';
  }
}

// ------------------------------------------------------------------------------------------------------------
// Build
// ------------------------------------------------------------------------------------------------------------

/** FullIeeeTbsCtl from certificates (hashes computed here). RangeError on values the standard does not allow. */
export function buildTbsCtl(input: BuildTbsCtlInput): FullIeeeTbsCtl {
  if (!(input.ctlSeriesId instanceof Uint8Array) || input.ctlSeriesId.length !== 8) {
    throw new RangeError('ctlSeriesId must be 8 octets (CtlSeriesId ::= OCTET STRING (SIZE(8)))');
  }
  if (!Number.isInteger(input.sequenceNumber) || input.sequenceNumber < 0 || input.sequenceNumber > 65535) {
    throw new RangeError(`sequenceNumber ${input.sequenceNumber} is outside CtlSequenceNumber (0..65535)`);
  }
  const tbs: FullIeeeTbsCtl = {
    type: fullIeeeCtl,
    ctlSeriesId: new Uint8Array(input.ctlSeriesId),
    sequenceNumber: input.sequenceNumber,
    effectiveDate: dateToTime32(input.effectiveDate),
    electorApprove: input.electorApprove.map(electorHash),
    electorRemove: input.electorRemove.map(electorHash),
    rootCaApprove: input.rootCaApprove.map(rootCaHash),
    rootCaRemove: input.rootCaRemove.map(rootCaHash),
    quorum: BigInt(input.quorum),
  };
  const problems = tbsCtlProblems(tbs, true);
  if (problems.length) throw new RangeError(problems.join('; '));
  return tbs;
}

/** Structural rules of a FullIeeeTbsCtl on its own. */
function tbsCtlProblems(tbs: FullIeeeTbsCtl, quorumRequired: boolean): string[] {
  const out: string[] = [];
  if (tbs.type !== fullIeeeCtl) out.push(`type ${tbs.type} is not fullIeeeCtl (1)`);
  const dup = (list: Uint8Array[], what: string) => {
    const seen = new Set<string>();
    for (const h of list) {
      const k = toHex(h);
      if (seen.has(k)) out.push(`${what} lists ${k.slice(-16)} twice`);
      seen.add(k);
    }
    return seen;
  };
  const ea = dup(tbs.electorApprove, 'electorApprove');
  const er = dup(tbs.electorRemove, 'electorRemove');
  const ra = dup(tbs.rootCaApprove, 'rootCaApprove');
  const rr = dup(tbs.rootCaRemove, 'rootCaRemove');
  for (const k of er) if (ea.has(k)) out.push(`elector ${k.slice(-16)} is both approved and removed`);
  for (const k of rr) if (ra.has(k)) out.push(`root CA ${k.slice(-16)} is both approved and removed`);
  if (tbs.electorApprove.length === 0) out.push('electorApprove is empty: nobody could sign the next CTL');
  if (tbs.quorum === undefined) {
    if (quorumRequired) out.push('quorum is absent in the first CTL of the series');
  } else if (tbs.quorum < 1n) {
    out.push(`quorum ${tbs.quorum} is less than 1`);
  } else if (tbs.quorum > BigInt(tbs.electorApprove.length)) {
    out.push(`quorum ${tbs.quorum} exceeds the ${tbs.electorApprove.length} approved electors`);
  }
  return out;
}

/** SHA-384 of the COER FullIeeeTbsCtl: ToBeSignedCtlSignature.tbsCtlHash (HashedId48). */
export function tbsCtlHash(tbsCtl: FullIeeeTbsCtl): Uint8Array {
  return sha384(FullIeeeTbsCtl.encode(tbsCtl));
}

// ------------------------------------------------------------------------------------------------------------
// Ballots (CtlSignatureSpdu)
// ------------------------------------------------------------------------------------------------------------

function toBeSignedCtlSignature(tbsCtl: FullIeeeTbsCtl): ToBeSignedCtlSignature {
  return { ctlSeriesId: tbsCtl.ctlSeriesId, ctlType: tbsCtl.type, sequenceNumber: tbsCtl.sequenceNumber, tbsCtlHash: tbsCtlHash(tbsCtl) };
}

/** COER ToBeSignedData of a CtlSignatureSpdu: payload.data = unsecured Ieee1609Dot2Data(ScmsPdu), psid 35. */
function ctlSignatureTbsData(tbs: ToBeSignedCtlSignature): Uint8Array {
  const scmsPdu = ScmsPdu.encode({ version: SCMS_PDU_VERSION, content: { cert: { tbsCtlSignature: tbs } } });
  return ToBeSignedData.encode({
    payload: { data: { protocolVersion: IEEE1609DOT2_VERSION, content: { unsecuredData: scmsPdu } } },
    headerInfo: { psid: SECURITY_MGMT_PSID },
  });
}

/**
 * An elector's signature on a CTL: CtlSignatureSpdu (COER). Refuses when the signer's key is not the elector
 * certificate's key, or the elector certificate is not valid now (clock) or at the CTL's effectiveDate.
 */
export async function signCtlBallot(args: {
  tbsCtl: FullIeeeTbsCtl;
  electorCertificate: Certificate;
  signer: Signer;
  clock: Clock;
}): Promise<Uint8Array> {
  const { tbsCtl, electorCertificate: cert, signer, clock } = args;
  const problems = tbsCtlProblems(tbsCtl, false);
  if (problems.length) throw new RangeError(`the ballot is not a valid FullIeeeTbsCtl: ${problems.join('; ')}`);
  const key = certificateVerificationKey(cert);
  if (key.curve !== signer.curve || !samePoint(key.curve, key.publicKey, signer.publicKey)) {
    throw new Error(`the signing key is not the key of elector certificate ${certificateLabel(cert)}`);
  }
  const now = dateToTime32(clock.now());
  if (!certificateValidAt(cert, now)) throw new Error(`elector certificate ${certificateLabel(cert)} is not valid now`);
  if (!certificateValidAt(cert, tbsCtl.effectiveDate)) {
    throw new Error(`elector certificate ${certificateLabel(cert)} is not valid at the CTL effectiveDate`);
  }
  const tbs = toBeSignedCtlSignature(tbsCtl);
  const tbsData = ctlSignatureTbsData(tbs);
  const hashId = curve(key.curve).hash;
  // 1609.2 5.3.1.2.2: signed over H(tbsData) || H(signer certificate); the Signer applies ECDSA's own hash.
  const signature = await sign1609Dot2({ tbsBytes: tbsData, signerCertificate: cert, signer });
  const value: CtlSignatureSpdu = {
    protocolVersion: IEEE1609DOT2_VERSION,
    content: {
      signedData: {
        hashId,
        tbsData: {
          payload: {
            data: {
              protocolVersion: IEEE1609DOT2_VERSION,
              content: { unsecuredData: { version: SCMS_PDU_VERSION, content: { cert: { tbsCtlSignature: tbs } } } },
            },
          },
          headerInfo: { psid: SECURITY_MGMT_PSID },
        },
        signer: { certificate: [cert] },
        signature,
      },
    },
  };
  return CtlSignatureSpdu.encode(value);
}

function samePoint(c: CurveName, a: Uint8Array, b: Uint8Array): boolean {
  try {
    return decodePoint(c, a).equals(decodePoint(c, b));
  } catch {
    return false;
  }
}

interface DecodedBallot {
  tbs: ToBeSignedCtlSignature;
  signerCert: Certificate;
  /** COER ToBeSignedData as carried. */
  tbsData: Uint8Array;
  signed: Extract<CtlSignatureSpdu['content'], { signedData: unknown }>['signedData'];
}

function decodeBallot(bytes: Uint8Array): DecodedBallot {
  const spdu = CtlSignatureSpdu.decode(bytes);
  if (!('signedData' in spdu.content)) throw new Error('not signed data');
  const signed = spdu.content.signedData;
  const data = signed.tbsData.payload.data;
  if (!data) throw new Error('payload.data is absent');
  if (signed.signer.certificate.length !== 1) throw new Error('signer is not exactly one certificate');
  // The ToBeSignedData exactly as carried (generic types keep the inner ScmsPdu as its octets).
  const generic = Ieee1609Dot2Data.decode(bytes) as { content: { signedData: { tbsData: ToBeSignedData } } };
  return {
    tbs: data.content.unsecuredData.content.cert.tbsCtlSignature,
    signerCert: signed.signer.certificate[0]!,
    tbsData: ToBeSignedData.encode(generic.content.signedData.tbsData),
    signed,
  };
}

/** Who signed a CtlSignatureSpdu, and over what (no verification). */
export function describeCtlSignature(bytes: Uint8Array): { signer: Certificate; tbsCtlSignature: ToBeSignedCtlSignature } {
  const b = decodeBallot(bytes);
  return { signer: b.signerCert, tbsCtlSignature: b.tbs };
}

interface Tally {
  counted: Array<{ index: number; cert: Certificate; spdu: Uint8Array }>;
  ignored: IgnoredSignature[];
}

/**
 * Checks each CtlSignatureSpdu against `tbsCtl`; counts the distinct `eligible` electors with a valid signature.
 * `removed`: electors of the previous CTL that this CTL no longer approves (their signatures do not count).
 */
function tally(tbsCtl: FullIeeeTbsCtl, signatures: Uint8Array[], eligible: Map<string, Certificate>, removed: Set<string>): Tally {
  const expected = toBeSignedCtlSignature(tbsCtl);
  const counted: Tally['counted'] = [];
  const ignored: IgnoredSignature[] = [];
  const seen = new Set<string>();
  signatures.forEach((bytes, index) => {
    let b: DecodedBallot;
    try {
      b = decodeBallot(bytes);
    } catch (e) {
      ignored.push({ index, kind: 'malformed', reason: `not a CtlSignatureSpdu (${(e as Error).message})` });
      return;
    }
    const signer = certificateLabel(b.signerCert);
    const skip = (kind: IgnoredSignature['kind'], reason: string) => ignored.push({ index, signer, kind, reason });
    if (!constantTimeEqual(b.tbs.ctlSeriesId, expected.ctlSeriesId) || b.tbs.ctlType !== expected.ctlType || b.tbs.sequenceNumber !== expected.sequenceNumber) {
      return skip('other-ctl', `by ${signer} is for CTL series ${toHex(b.tbs.ctlSeriesId)} type ${b.tbs.ctlType} sequence ${b.tbs.sequenceNumber}, not this CTL`);
    }
    if (!constantTimeEqual(b.tbs.tbsCtlHash, expected.tbsCtlHash)) {
      return skip('other-ctl', `by ${signer} is over a different tbsCtl (tbsCtlHash mismatch: the CTL was changed after signing, or the ballot differs)`);
    }
    const h = toHex(electorHash(b.signerCert));
    if (removed.has(h)) return skip('removed', `by ${signer}, an elector this CTL removes (removal needs the quorum without it)`);
    if (!eligible.has(h)) return skip('not-elector', `by ${signer}, which is not an approved elector`);
    let key;
    try {
      key = certificateVerificationKey(b.signerCert);
    } catch (e) {
      return skip('bad-signature', `by ${signer}: ${(e as Error).message}`);
    }
    if (b.signed.hashId !== curve(key.curve).hash) return skip('bad-signature', `by ${signer}: hashId ${String(b.signed.hashId)} does not match the key's curve`);
    let good = false;
    try {
      good = verify1609Dot2Signature({ tbsBytes: b.tbsData, signerCertificate: b.signerCert, signature: b.signed.signature, curve: key.curve, publicKey: key.publicKey });
    } catch (e) {
      return skip('bad-signature', `by ${signer}: ${(e as Error).message}`);
    }
    if (!good) return skip('bad-signature', `by ${signer}: the ECDSA signature does not verify`);
    if (!certificateValidAt(b.signerCert, tbsCtl.effectiveDate)) return skip('expired', `by ${signer}: the elector certificate is not valid at the CTL effectiveDate`);
    if (seen.has(h)) return skip('duplicate', `by ${signer}: a second signature by the same elector`);
    seen.add(h);
    counted.push({ index, cert: b.signerCert, spdu: bytes });
  });
  return { counted, ignored };
}

// ------------------------------------------------------------------------------------------------------------
// Assemble / verify
// ------------------------------------------------------------------------------------------------------------

/** Who may sign `tbsCtl`, and how many must (see the rules at the top). */
export function ctlElectorate(
  tbsCtl: FullIeeeTbsCtl,
  unsigned: Certificate[],
  previous?: CtlState,
): { eligible: Map<string, Certificate>; removed: Set<string>; needed: number } {
  const approved = new Set(tbsCtl.electorApprove.map(toHex));
  const eligible = new Map<string, Certificate>();
  const removed = new Set<string>();
  if (previous) {
    for (const c of previous.electors) {
      const h = toHex(electorHash(c));
      if (approved.has(h)) eligible.set(h, c);
      else removed.add(h);
    }
    return { eligible, removed, needed: previous.quorum };
  }
  for (const c of unsigned) {
    const h = toHex(electorHash(c));
    if (approved.has(h)) eligible.set(h, c);
  }
  return { eligible, removed, needed: Number(tbsCtl.quorum ?? 0n) };
}

export interface AssembleInput {
  tbsCtl: FullIeeeTbsCtl;
  unsigned: Certificate[];
  signatures: Uint8Array[];
  previous?: CtlState;
}

/** assembleMultiSignedCtl with what counted and what was ignored. */
export function assembleMultiSignedCtlReport(input: AssembleInput): { bytes: Uint8Array; signers: string[]; ignored: IgnoredSignature[] } {
  const { tbsCtl, unsigned, signatures, previous } = input;
  const { eligible, removed, needed } = ctlElectorate(tbsCtl, unsigned, previous);
  const t = tally(tbsCtl, signatures, eligible, removed);
  const signedSet = new Set(t.counted.map((c) => toHex(electorHash(c.cert))));
  if (t.counted.length < needed || needed < 1) {
    const missing = [...eligible].filter(([h]) => !signedSet.has(h)).map(([, c]) => certificateLabel(c));
    throw new CtlQuorumError(t.counted.map((c) => certificateLabel(c.cert)), needed, missing, t.ignored, eligible.size);
  }
  const msctl: MultiSignedCtl = {
    type: fullIeeeCtl,
    tbsCtl,
    unsigned,
    signatures: t.counted.map((c) => CtlSignatureSpdu.decode(c.spdu)),
  };
  const bytes = MultiSignedCtlSpdu.encode({
    protocolVersion: IEEE1609DOT2_VERSION,
    content: { unsecuredData: { version: SCMS_PDU_VERSION, content: { cert: { multiSignedCtl: msctl } } } },
  });
  // What is handed out must verify (certificates in unsigned, structure, dates).
  const check = verifyMultiSignedCtl(bytes, { previous });
  if (!check.ok) throw new Error(`the assembled CTL does not verify: ${check.errors.join('; ')}`);
  return { bytes, signers: t.counted.map((c) => certificateLabel(c.cert)), ignored: t.ignored };
}

/**
 * MultiSignedCtlSpdu (COER) from a ballot and elector signatures. Only valid signatures of distinct eligible
 * electors are included; CtlQuorumError when they fall short of the quorum.
 */
export function assembleMultiSignedCtl(input: AssembleInput): Uint8Array {
  return assembleMultiSignedCtlReport(input).bytes;
}

export type CtlVerification =
  | { ok: true; state: CtlState; signers: string[]; notes: string[] }
  | { ok: false; errors: string[] };

/** The MultiSignedCtl inside a MultiSignedCtlSpdu (structure only, no verification). */
export function decodeMultiSignedCtl(bytes: Uint8Array): { tbsCtl: FullIeeeTbsCtl; unsigned: Certificate[]; signatures: Uint8Array[] } {
  const spdu = MultiSignedCtlSpdu.decode(bytes);
  if (!('unsecuredData' in spdu.content)) throw new Error('not unsecured data');
  const msctl = spdu.content.unsecuredData.content.cert.multiSignedCtl;
  if (msctl.type !== fullIeeeCtl) throw new Error(`CTL type ${msctl.type} is not fullIeeeCtl (1)`);
  const tbsCtl = msctl.tbsCtl as FullIeeeTbsCtl;
  const unsigned = msctl.unsigned as Certificate[];
  if (!Array.isArray(unsigned) || typeof tbsCtl !== 'object' || !('electorApprove' in tbsCtl)) throw new Error('tbsCtl / unsigned are not fullIeeeCtl content');
  return { tbsCtl, unsigned, signatures: msctl.signatures.map((s) => CtlSignatureSpdu.encode(s)) };
}

/**
 * Verifies a MultiSignedCtlSpdu: structure, certificates for every approved hash, self-signatures of new elector
 * and root certificates, continuity with `previous` (series, sequence + 1, effectiveDate not earlier), and the
 * quorum of valid elector signatures. With a clock, a CTL not yet effective is noted (not an error).
 */
export function verifyMultiSignedCtl(bytes: Uint8Array, opts: { previous?: CtlState; clock?: Clock } = {}): CtlVerification {
  const { previous, clock } = opts;
  let ctl;
  try {
    ctl = decodeMultiSignedCtl(bytes);
  } catch (e) {
    return { ok: false, errors: [`not a valid MultiSignedCtlSpdu: ${(e as Error).message}`] };
  }
  const { tbsCtl, unsigned, signatures } = ctl;
  const errors = tbsCtlProblems(tbsCtl, !previous);
  const notes: string[] = [];
  const seq = tbsCtl.sequenceNumber;

  if (previous) {
    if (!constantTimeEqual(tbsCtl.ctlSeriesId, previous.ctlSeriesId)) {
      errors.push(`ctlSeriesId ${toHex(tbsCtl.ctlSeriesId)} differs from the previous CTL's ${toHex(previous.ctlSeriesId)}`);
    }
    if (seq !== previous.sequenceNumber + 1) {
      errors.push(`sequence gap: sequenceNumber ${seq} does not follow ${previous.sequenceNumber} (expected ${previous.sequenceNumber + 1})`);
    }
    if (tbsCtl.effectiveDate < dateToTime32(previous.effectiveDate)) {
      errors.push(`effectiveDate ${time32ToDate(tbsCtl.effectiveDate).toISOString()} is before the previous CTL's ${previous.effectiveDate.toISOString()}`);
    }
  }

  // Certificates for the approved hashes: from unsigned (checked here) or the previous state (checked before).
  const known = new Map<string, { cert: Certificate; fromUnsigned: boolean }>();
  for (const c of previous ? [...previous.electors, ...previous.roots] : []) {
    known.set(toHex(electorHash(c)), { cert: c, fromUnsigned: false });
    known.set(toHex(rootCaHash(c)), { cert: c, fromUnsigned: false });
  }
  const used = new Set<number>();
  const byElector = new Map<string, number>();
  const byRoot = new Map<string, number>();
  unsigned.forEach((c, i) => {
    byElector.set(toHex(electorHash(c)), i);
    byRoot.set(toHex(rootCaHash(c)), i);
  });
  const resolve = (h: Uint8Array, what: 'elector' | 'root CA'): Certificate | undefined => {
    const k = toHex(h);
    const i = (what === 'elector' ? byElector : byRoot).get(k);
    if (i !== undefined) {
      used.add(i);
      const c = unsigned[i]!;
      const p = selfSignatureProblem(c);
      if (p) errors.push(`${what} certificate ${certificateLabel(c)} in unsigned: ${p}`);
      return c;
    }
    const prev = known.get(k);
    if (prev) return prev.cert;
    errors.push(`${what} ${k.slice(-16)} is approved but its certificate is neither in unsigned nor in the previous CTL`);
    return undefined;
  };
  const electors = tbsCtl.electorApprove.map((h) => resolve(h, 'elector')).filter((c): c is Certificate => !!c);
  const roots = tbsCtl.rootCaApprove.map((h) => resolve(h, 'root CA')).filter((c): c is Certificate => !!c);
  unsigned.forEach((c, i) => {
    if (!used.has(i)) errors.push(`unsigned certificate ${certificateLabel(c)} is not approved by this CTL`);
  });

  // Quorum of valid signatures by eligible electors.
  const { eligible, removed, needed } = ctlElectorate(tbsCtl, unsigned, previous);
  const t = tally(tbsCtl, signatures, eligible, removed);
  for (const i of t.ignored) {
    if (i.kind === 'removed') notes.push(`signature #${i.index + 1} ${i.reason}: not counted`);
    else errors.push(`signature #${i.index + 1} ${i.reason}`);
  }
  if (t.counted.length < needed) {
    const signedSet = new Set(t.counted.map((c) => toHex(electorHash(c.cert))));
    const missing = [...eligible].filter(([h]) => !signedSet.has(h)).map(([, c]) => certificateLabel(c));
    errors.push(
      `quorum not met: ${needed} of ${eligible.size} ${previous ? 'electors of the previous CTL' : 'electors'} needed, ` +
        `${t.counted.length} valid signature(s)${missing.length ? `; not signed by ${missing.join(', ')}` : ''}`,
    );
  }
  if (errors.length) return { ok: false, errors: errors.map((e) => `CTL ${toHex(tbsCtl.ctlSeriesId)} #${seq}: ${e}`) };

  const effectiveDate = time32ToDate(tbsCtl.effectiveDate);
  if (clock && effectiveDate.getTime() > clock.now().getTime()) notes.push(`not yet effective (effectiveDate ${effectiveDate.toISOString()})`);
  const quorum = tbsCtl.quorum !== undefined ? Number(tbsCtl.quorum) : previous!.quorum;
  return {
    ok: true,
    state: { ctlSeriesId: new Uint8Array(tbsCtl.ctlSeriesId), sequenceNumber: seq, effectiveDate, quorum, electors, roots },
    signers: t.counted.map((c) => certificateLabel(c.cert)),
    notes,
  };
}

/** Verifies a series from its first CTL: each file against the state left by the one before. */
export function verifyCtlSeries(files: Uint8Array[], opts: { clock?: Clock } = {}): { ok: boolean; state?: CtlState; errors: string[]; states: CtlState[] } {
  const states: CtlState[] = [];
  if (files.length === 0) return { ok: false, errors: ['no CTL files'], states };
  let state: CtlState | undefined;
  for (const [i, f] of files.entries()) {
    const r = verifyMultiSignedCtl(f, { previous: state, clock: opts.clock });
    if (!r.ok) return { ok: false, state, errors: r.errors.map((e) => `file ${i + 1}: ${e}`), states };
    state = r.state;
    states.push(state);
  }
  return { ok: true, state, errors: [], states };
}

// ------------------------------------------------------------------------------------------------------------
// Next ballot
// ------------------------------------------------------------------------------------------------------------

export interface CtlChange {
  addRoots?: Certificate[];
  removeRoots?: Certificate[];
  addElectors?: Certificate[];
  removeElectors?: Certificate[];
  quorum?: number;
}

/**
 * The next CTL of the series (sequenceNumber + 1): the full approved lists after the change, the removed ones
 * listed in electorRemove / rootCaRemove, the quorum (changed or carried), and `unsigned` = every approved
 * elector and root certificate (so each CTL is self-contained for a relying party).
 */
export function nextCtlBallot(state: CtlState, change: CtlChange, effectiveDate: Date): { tbsCtl: FullIeeeTbsCtl; unsigned: Certificate[] } {
  if (effectiveDate.getTime() < state.effectiveDate.getTime()) {
    throw new RangeError(`effectiveDate ${effectiveDate.toISOString()} is before the current CTL's ${state.effectiveDate.toISOString()}`);
  }
  const apply = (current: Certificate[], add: Certificate[] = [], remove: Certificate[] = [], hash: (c: Certificate) => Uint8Array, what: string) => {
    const key = (c: Certificate) => toHex(hash(c));
    const have = new Map(current.map((c) => [key(c), c]));
    for (const c of remove) {
      if (!have.delete(key(c))) throw new Error(`${what} ${certificateLabel(c)} is not on the current CTL`);
    }
    for (const c of add) {
      if (have.has(key(c))) throw new Error(`${what} ${certificateLabel(c)} is already on the current CTL`);
      const p = selfSignatureProblem(c);
      if (p) throw new Error(`${what} certificate ${certificateLabel(c)}: ${p}`);
      have.set(key(c), c);
    }
    return [...have.values()];
  };
  const electors = apply(state.electors, change.addElectors, change.removeElectors, electorHash, 'elector');
  const roots = apply(state.roots, change.addRoots, change.removeRoots, rootCaHash, 'root CA');
  const tbsCtl = buildTbsCtl({
    ctlSeriesId: state.ctlSeriesId,
    sequenceNumber: state.sequenceNumber + 1,
    effectiveDate,
    electorApprove: electors,
    electorRemove: change.removeElectors ?? [],
    rootCaApprove: roots,
    rootCaRemove: change.removeRoots ?? [],
    quorum: change.quorum ?? state.quorum,
  });
  return { tbsCtl, unsigned: [...electors, ...roots] };
}

/** COER of the unsigned certificates (SequenceOfCertificate), for ballot files. */
export function encodeUnsigned(certs: Certificate[]): Uint8Array {
  return SequenceOfCertificate.encode(certs);
}

export function decodeUnsigned(bytes: Uint8Array): Certificate[] {
  return SequenceOfCertificate.decode(bytes);
}
