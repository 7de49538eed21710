// Summary of a SecuredCrl for `scms crl show|verify` (1609.2 7.3 CrlContents).
import { SecuredCrl, type CrlContents, type JMaxGroup } from '../codec/index.js';
import { toHex } from '../crypto/bytes.js';
import { certificateHashedId8 } from '../security/certificate.js';
import { crlKindOf } from '../security/crl.js';
import { time32ToDate } from '../security/time.js';

export interface CrlSummary {
  kind: string;
  crlSeries: number;
  crlCraca: string;
  issueDate: string;
  nextCrl: string;
  /** fullHashCrl / deltaHashCrl. */
  crlSerial?: number;
  /** Linkage-based CRLs. */
  iRev?: number;
  indexWithinI?: number;
  /** Hash-based: HashedId10 (hex) and expiry; linkage-based: individual entries (seeds hex). */
  hashEntries?: Array<{ id: string; expiry: string }>;
  linkageEntries?: Array<{ jmax: number; la1Id: string; la2Id: string; iMax: number; linkageSeed1: string; linkageSeed2: string }>;
  /** HashedId8 of the signer certificate (when carried), or the digest. */
  signer?: string;
}

const iso = (t: number) => time32ToDate(t).toISOString();

/** Decodes a SecuredCrl strictly and summarizes it. */
export function crlSummary(bytes: Uint8Array): { summary: CrlSummary; contents: CrlContents } {
  const crl = SecuredCrl.decode(bytes);
  const sd = crl.content.signedData;
  const c = sd.tbsData.payload.data!.content.unsecuredData;
  const t = c.typeSpecific as Record<string, any>;
  const kind = crlKindOf(c) ?? 'unknown';
  const body = t[kind] ?? {};
  const signer = 'certificate' in sd.signer && sd.signer.certificate[0] ? toHex(certificateHashedId8(sd.signer.certificate[0])) : 'digest' in sd.signer ? toHex(sd.signer.digest) : undefined;
  const summary: CrlSummary = {
    kind,
    crlSeries: c.crlSeries,
    crlCraca: toHex(c.crlCraca),
    issueDate: iso(c.issueDate),
    nextCrl: iso(c.nextCrl),
    ...(body.crlSerial !== undefined ? { crlSerial: body.crlSerial } : {}),
    ...(body.iRev !== undefined ? { iRev: body.iRev, indexWithinI: body.indexWithinI } : {}),
    ...(body.entries ? { hashEntries: (body.entries as Array<{ id: Uint8Array; expiry: number }>).map((e) => ({ id: toHex(e.id), expiry: iso(e.expiry) })) } : {}),
    ...(body.individual
      ? {
          linkageEntries: (body.individual as JMaxGroup[]).flatMap((jg) =>
            jg.contents.flatMap((la) =>
              la.contents.flatMap((ig) =>
                ig.contents.map((r) => ({ jmax: jg.jmax, la1Id: toHex(la.la1Id), la2Id: toHex(la.la2Id), iMax: ig.iMax, linkageSeed1: toHex(r.linkageSeed1), linkageSeed2: toHex(r.linkageSeed2) })),
              ),
            ),
          ),
        }
      : {}),
    ...(signer ? { signer } : {}),
  };
  return { summary, contents: c };
}
