// Signed certificate revocation lists (IEEE 1609.2 clause 7.3 / 7.4, Ieee1609Dot2Crl, Ieee1609Dot2CrlBaseTypes,
// Ieee1609Dot2CrlSsp) and the revocation checks a relying party makes with them (1609.2 5.1.3).
//
// - signCrl: SecuredCrl = Ieee1609Dot2Data signedData { psid CrlPsid (0x100), no generationTime / expiryTime
//   (SecuredCrl makes them ABSENT), payload unsecuredData(COER CrlContents), signer certificate }.
// - verifyCrl (7.4 valid signed CRL): strict COER decoding as SecuredCrl, signature, the signer certificate chains to
//   a trust anchor and carries CrlPsid with a CrlSsp whose `crls` holds crlSeries and whose associatedCraca gives the
//   crlCraca (isCraca: the signer itself, issuerIsCraca: its issuer), nextCrl strictly after issueDate, and the CRL
//   not expired (now <= nextCrl + overdue tolerance) nor issued in the future.
// - CrlIndex: "is this certificate revoked" for hash-based entries (HashedId10 of the certificate, 7.3 / 6.4.3) and
//   linkage-based individual entries (5.1.3.4: ls(i) = seed evolution from ls(iRev), lv(i, j) = plv1 XOR plv2 with
//   the AES-128 / SHA-256 functions of src/crypto/linkage.ts, used for a crlCraca obtained with SHA-256 / SHA-384).
import {
  CrlContents as CrlContentsCodec,
  CrlSsp as CrlSspCodec,
  Ieee1609Dot2Data as Ieee1609Dot2DataCodec,
  SecuredCrl as SecuredCrlCodec,
  type Certificate,
  type CrlContents,
  type CrlSsp,
  type JMaxGroup,
  type SecuredCrl,
  type SignerIdentifier,
} from '../codec/index.js';
import { constantTimeEqual, toHex } from '../crypto/bytes.js';
import { linkageSeedAt, linkageValue, preLinkageValues } from '../crypto/linkage.js';
import { certificateHashedId10, certificateHashedId8 } from './certificate.js';
import { chainOf, verifyCertificateChain } from './chain.js';
import type { Signer } from './signer.js';
import { signData, verifySignedData } from './spdu.js';
import { nowTime32, type Clock, type Time32 } from './time.js';

/** CrlPsid ::= Psid(256) (Ieee1609Dot2Crl). */
export const CRL_PSID = 256n;
/** CrlContents.version (1609.2-2022: 1). */
export const CRL_VERSION = 1;

export type CrlKind = 'fullHashCrl' | 'fullLinkedCrl' | 'deltaHashCrl' | 'deltaLinkedCrl' | 'fullLinkedCrlWithAlg' | 'deltaLinkedCrlWithAlg';

export interface SignCrlOptions {
  contents: CrlContents;
  /** The CRL signer's key and certificate (SignerIdentifier certificate). */
  signer: Signer;
  certificate: Certificate;
}

/** Signs CrlContents as a SecuredCrl; returns its COER (checked against the SecuredCrl constraints). */
export async function signCrl(opts: SignCrlOptions): Promise<Uint8Array> {
  const c = opts.contents;
  if (c.nextCrl <= c.issueDate) throw new RangeError('nextCrl must be strictly after issueDate (1609.2 CrlContents)');
  const data = await signData({
    payload: CrlContentsCodec.encode(c),
    psid: CRL_PSID,
    signer: opts.signer,
    signerId: { certificate: opts.certificate },
  });
  const bytes = Ieee1609Dot2DataCodec.encode(data);
  SecuredCrlCodec.decode(bytes); // the constraints of SecuredCrl hold for what we hand out
  return bytes;
}

/** The CrlSsp of a certificate's CrlPsid permission, or undefined (none, or not a CrlSsp). */
export function crlSspOf(cert: Certificate): CrlSsp | undefined {
  for (const p of cert.toBeSigned.appPermissions ?? []) {
    if (BigInt(p.psid) !== CRL_PSID || !p.ssp || !('opaque' in p.ssp)) continue;
    try {
      return CrlSspCodec.decode(p.ssp.opaque);
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** The kind of a CrlContents' typeSpecific (its CHOICE alternative). */
export function crlKindOf(c: CrlContents): CrlKind | undefined {
  const [k] = Object.keys(c.typeSpecific);
  return k as CrlKind | undefined;
}

/** crlSerial (hash-based) or indexWithinI (linkage-based): the CRL's counter. */
export function crlSerialOf(c: CrlContents): number | undefined {
  const t = c.typeSpecific as Record<string, { crlSerial?: number }>;
  const [k] = Object.keys(t);
  return k ? t[k]!.crlSerial : undefined;
}

export type CrlRefusal = 'malformed' | 'signature' | 'signer' | 'chain' | 'permissions' | 'craca' | 'time';

export type VerifyCrlResult =
  | {
      ok: true;
      contents: CrlContents;
      kind: CrlKind;
      signerCertificate: Certificate;
      /** The CRACA certificate the crlCraca names (the signer or its issuer). */
      craca: Certificate;
    }
  | { ok: false; refusal: CrlRefusal; reason: string };

export interface VerifyCrlOptions {
  /** Roots the CRL signer must chain to (from the CTL). */
  trustAnchors: readonly Certificate[];
  /** Intermediate certificates to build the chain (e.g. the CCF's); the CRL's own signer chain is used too. */
  certificates?: readonly Certificate[];
  clock: Clock;
  /** A CRL past nextCrl is still accepted for this long (policy crlOverdueTolerance). Default 0. */
  overdueToleranceSeconds?: number;
  /** Tolerated clock skew for issueDate in the future, seconds. Default 300. */
  clockSkewSeconds?: number;
}

const refuse = (refusal: CrlRefusal, reason: string): VerifyCrlResult => ({ ok: false, refusal, reason });

/** Verifies a SecuredCrl (COER) as a valid signed CRL (1609.2 7.4). */
export function verifyCrl(bytes: Uint8Array, opts: VerifyCrlOptions): VerifyCrlResult {
  let crl: SecuredCrl;
  try {
    crl = SecuredCrlCodec.decode(bytes);
  } catch (e) {
    return refuse('malformed', `not a SecuredCrl: ${(e as Error).message}`);
  }
  const sd = crl.content.signedData;
  const contents = sd.tbsData.payload.data?.content.unsecuredData;
  if (!contents) return refuse('malformed', 'SecuredCrl without payload data');
  const kind = crlKindOf(contents);
  if (!kind) return refuse('malformed', 'unknown TypeSpecificCrlContents alternative');

  // Signer: the certificate carried in the SignerIdentifier, or a digest of one of the given certificates.
  const pool = [...(opts.certificates ?? []), ...opts.trustAnchors];
  const sid: SignerIdentifier = sd.signer;
  let signerCert: Certificate | undefined;
  if ('certificate' in sid && sid.certificate.length === 1) signerCert = sid.certificate[0];
  else if ('digest' in sid) signerCert = pool.find((c) => constantTimeEqual(certificateHashedId8(c), sid.digest));
  if (!signerCert) return refuse('signer', 'the CRL signer is not identified by a single certificate (or a known digest)');
  const signer = signerCert;
  const v = verifySignedData(bytes, { expectedPsid: CRL_PSID, resolveSigner: () => signer });
  if (!v.ok) return refuse('signature', v.reason);

  const chain = chainOf(signer, pool);
  const ch = verifyCertificateChain(chain, { trustAnchors: opts.trustAnchors, clock: opts.clock, requiredPsid: CRL_PSID });
  if (!ch.ok) return refuse('chain', `the CRL signer does not chain to a trust anchor: ${ch.errors.map((e) => e.reason).join('; ')}`);

  const ssp = crlSspOf(signer);
  if (!ssp) return refuse('permissions', 'the CRL signer certificate has no CrlSsp for CrlPsid');
  if (!ssp.crls.includes(contents.crlSeries)) return refuse('permissions', `the CRL signer may not sign CRL series ${contents.crlSeries} (CrlSsp crls ${ssp.crls.join(', ')})`);
  const craca = ssp.associatedCraca === 'isCraca' ? signer : ch.chain[1];
  if (!craca) return refuse('craca', 'issuerIsCraca but the CRL signer has no issuer in the chain');
  if (!constantTimeEqual(certificateHashedId8(craca), contents.crlCraca)) {
    return refuse('craca', `crlCraca ${toHex(contents.crlCraca)} is not the CRACA the CrlSsp names (${ssp.associatedCraca}: ${toHex(certificateHashedId8(craca))})`);
  }

  if (contents.nextCrl <= contents.issueDate) return refuse('time', 'nextCrl is not after issueDate');
  const now = nowTime32(opts.clock);
  if (contents.issueDate > now + (opts.clockSkewSeconds ?? 300)) return refuse('time', 'issueDate is in the future');
  if (now > contents.nextCrl + (opts.overdueToleranceSeconds ?? 0)) return refuse('time', `the CRL is expired (nextCrl ${contents.nextCrl} < now ${now})`);
  return { ok: true, contents, kind, signerCertificate: signer, craca };
}

/** One individual linkage-based revocation: seeds at iRev of LA1 and LA2. */
export interface LinkedRevocation {
  la1Id: Uint8Array;
  la2Id: Uint8Array;
  linkageSeed1: Uint8Array;
  linkageSeed2: Uint8Array;
  /** j values 0 .. jmax - 1 (time-baseCertNumber). */
  jmax: number;
  /** Last i-period with valid certificates (IMaxGroup.iMax). */
  iMax: number;
}

/** ToBeSignedLinkageValueCrl.individual: entries grouped by jmax, then (la1Id, la2Id), then iMax. */
export function individualLinkageGroups(entries: readonly LinkedRevocation[]): JMaxGroup[] {
  const byJ = new Map<number, Map<string, { la1Id: Uint8Array; la2Id: Uint8Array; byI: Map<number, LinkedRevocation[]> }>>();
  for (const e of entries) {
    const las = byJ.get(e.jmax) ?? byJ.set(e.jmax, new Map()).get(e.jmax)!;
    const key = toHex(e.la1Id) + toHex(e.la2Id);
    const g = las.get(key) ?? las.set(key, { la1Id: e.la1Id, la2Id: e.la2Id, byI: new Map() }).get(key)!;
    (g.byI.get(e.iMax) ?? g.byI.set(e.iMax, []).get(e.iMax)!).push(e);
  }
  return [...byJ.entries()]
    .sort(([a], [b]) => a - b)
    .map(([jmax, las]) => ({
      jmax,
      contents: [...las.values()].map((g) => ({
        la1Id: g.la1Id,
        la2Id: g.la2Id,
        contents: [...g.byI.entries()]
          .sort(([a], [b]) => a - b)
          .map(([iMax, rs]) => ({ iMax, contents: rs.map((r) => ({ linkageSeed1: r.linkageSeed1, linkageSeed2: r.linkageSeed2 })) })),
      })),
    }));
}

/** lv(i, j) for j = 0 .. jCount - 1 of one individual revocation, seeds given at iRev (1609.2 5.1.3.4). */
export function linkageValuesAt(r: Pick<LinkedRevocation, 'la1Id' | 'la2Id' | 'linkageSeed1' | 'linkageSeed2'>, iRev: number, i: number, jCount: number): Uint8Array[] {
  if (i < iRev) throw new RangeError(`i = ${i} is before iRev ${iRev}: the seeds cannot be evolved backwards`);
  const s1 = linkageSeedAt(r.la1Id, r.linkageSeed1, i - iRev);
  const s2 = linkageSeedAt(r.la2Id, r.linkageSeed2, i - iRev);
  const js = Array.from({ length: jCount }, (_, j) => j);
  const p1 = preLinkageValues(r.la1Id, s1, js);
  const p2 = preLinkageValues(r.la2Id, s2, js);
  return js.map((j) => linkageValue(p1[j]!, p2[j]!));
}

/** Map key of a linkage value (its 9 octets as a latin1 string: no hex conversion on the hot path). */
const lvKey = (lv: Uint8Array): string => Buffer.from(lv.buffer, lv.byteOffset, lv.byteLength).toString('latin1');

export type RevocationMatch = { revoked: false } | { revoked: true; by: 'hash'; hashedId10: string } | { revoked: true; by: 'linkage'; i: number; j: number };

/**
 * Answers "is this certificate revoked" from verified CRLs: hash-based entries by HashedId10, linkage-based individual
 * entries by recomputing lv(iCert, j) (cached per i-period). The (cracaId, crlSeries) relevance test of 5.1.3.2 is
 * not applied: this SCMS's ECA and ACA write cracaId 000000 and the ECA crlSeries 0, while the CRL signer may sign
 * series 1 only; a HashedId10 or a 9-octet linkage value names one certificate regardless.
 */
export class CrlIndex {
  readonly #hash = new Map<string, Time32>();
  readonly #linked: Array<{ iRev: number; groups: JMaxGroup[] }> = [];
  readonly #lvCache = new Map<number, Map<string, number>>();

  constructor(crls: readonly CrlContents[]) {
    for (const c of crls) this.add(c);
  }

  add(c: CrlContents): void {
    const t = c.typeSpecific as Record<string, unknown>;
    const hash = (t.fullHashCrl ?? t.deltaHashCrl) as { entries: Array<{ id: Uint8Array; expiry: number }> } | undefined;
    if (hash) for (const e of hash.entries) this.#hash.set(toHex(e.id), e.expiry);
    const linked = (t.fullLinkedCrl ?? t.deltaLinkedCrl) as { iRev: number; individual?: JMaxGroup[] } | undefined;
    if (linked?.individual) this.#linked.push({ iRev: linked.iRev, groups: linked.individual });
    this.#lvCache.clear();
  }

  /** Number of hash-based entries and individual linkage-based entries. */
  get size(): { hash: number; linked: number } {
    let linked = 0;
    for (const l of this.#linked) for (const jg of l.groups) for (const la of jg.contents) for (const ig of la.contents) linked += ig.contents.length;
    return { hash: this.#hash.size, linked };
  }

  /** hex(lv) -> j for i-period i. */
  #valuesAt(i: number): Map<string, number> {
    const hit = this.#lvCache.get(i);
    if (hit) return hit;
    const out = new Map<string, number>();
    for (const l of this.#linked) {
      if (i < l.iRev) continue;
      for (const jg of l.groups) {
        for (const la of jg.contents) {
          for (const ig of la.contents) {
            if (i > ig.iMax) continue;
            for (const r of ig.contents) {
              // jmax read as the number of j values; one more is computed so that an inclusive reading matches too.
              linkageValuesAt({ la1Id: la.la1Id, la2Id: la.la2Id, ...r }, l.iRev, i, jg.jmax + 1).forEach((lv, j) => out.set(lvKey(lv), j));
            }
          }
        }
      }
    }
    this.#lvCache.set(i, out);
    return out;
  }

  check(cert: Certificate): RevocationMatch {
    const h10 = toHex(certificateHashedId10(cert));
    if (this.#hash.has(h10)) return { revoked: true, by: 'hash', hashedId10: h10 };
    const id = cert.toBeSigned.id;
    if ('linkageData' in id) {
      const { iCert } = id.linkageData;
      const j = this.#valuesAt(iCert).get(lvKey(id.linkageData['linkage-value']));
      if (j !== undefined) return { revoked: true, by: 'linkage', i: iCert, j };
    }
    return { revoked: false };
  }
}
