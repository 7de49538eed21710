/** Summary facts about a certificate for `scms cert show` / `verify`: HashedId8, type, issuer, name, validity. */
import type { Certificate } from '../codec/gen/Ieee1609Dot2.js';
import { certificateHashAlgorithm, certificateHashedId8 } from '../security/certificate.js';
import { time32ToDate, time64ToDate, validityPeriodEndTime64 } from '../security/time.js';
import { bytesToHex } from './input.js';

export interface CertificateSummary {
  hashedId8: string;
  /** Whole-certificate hash algorithm (from the issuer field). */
  hashAlgorithm?: string;
  certificateType: 'explicit' | 'implicit' | string;
  /** "self" or the issuer's HashedId8 */
  issuer: string;
  issuerKind: string;
  id: string;
  validFrom: string;
  validUntil?: string;
}

function idText(id: Certificate['toBeSigned']['id']): string {
  const [alt, v] = Object.entries(id)[0] ?? ['?', undefined];
  if (alt === 'name') return `name "${String(v)}"`;
  if (alt === 'binaryId') return `binaryId ${bytesToHex(v as Uint8Array)}`;
  if (alt === 'linkageData') return 'linkageData';
  return alt;
}

export function certificateSummary(cert: Certificate, bytes: Uint8Array): CertificateSummary {
  let hashedId8: string;
  let hashAlgorithm: string | undefined;
  try {
    hashedId8 = bytesToHex(certificateHashedId8(bytes));
    hashAlgorithm = certificateHashAlgorithm(cert);
  } catch (err) {
    hashedId8 = `(not computable: ${(err as Error).message})`;
  }
  const [issuerKind, iv] = Object.entries(cert.issuer)[0] ?? ['?', undefined];
  const issuer = issuerKind === 'self' ? 'self' : iv instanceof Uint8Array ? bytesToHex(iv) : String(iv);
  const vp = cert.toBeSigned.validityPeriod;
  let validUntil: string | undefined;
  try {
    validUntil = iso(time64ToDate(validityPeriodEndTime64(vp)));
  } catch {
    validUntil = undefined;
  }
  return {
    hashedId8,
    ...(hashAlgorithm ? { hashAlgorithm } : {}),
    certificateType: String(cert.type),
    issuer,
    issuerKind,
    id: idText(cert.toBeSigned.id),
    validFrom: iso(time32ToDate(vp.start)),
    ...(validUntil ? { validUntil } : {}),
  };
}

function iso(d: Date): string {
  return d.toISOString().replace('.000Z', 'Z');
}
