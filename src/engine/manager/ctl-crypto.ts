/**
 * Certificate facts the CTL needs, on top of src/security/certificate.ts: the CTL's certificate hashes
 * (CtlElectorEntry, CtlRootCaEntry), labels for messages, keys, self-signatures and validity.
 */
import type { Certificate } from '../../codec/gen/Ieee1609Dot2.js';
import { toHex } from '../../crypto/bytes.js';
import type { CurveName } from '../../crypto/curves.js';
import { sha384 } from '../../crypto/hash.js';
import {
  certificateHash,
  certificateHashedId8,
  certificatePublicKey,
  encodeCertificate,
  verifyCertificateSignature,
} from '../../security/certificate.js';
import { validityPeriodContains, type Time32 } from '../../security/time.js';

/** Canonical COER of a certificate (1609.2 6.1.2; the input of every certificate hash). */
export function certificateBytes(cert: Certificate): Uint8Array {
  return encodeCertificate(cert);
}

/**
 * CtlElectorEntry ::= HashedId48: SHA-384 of the canonical COER elector certificate (1609.2.1 FullIeeeTbsCtl
 * electorApprove / electorRemove). HashedId48 is 48 octets, so the hash is SHA-384 whatever the elector's curve.
 */
export function electorHash(cert: Certificate): Uint8Array {
  return sha384(certificateBytes(cert));
}

/**
 * CtlRootCaEntry ::= HashedId32: the root certificate's own hash (SHA-256, or for a root whose hash is SHA-384
 * its low-order 32 octets), 1609.2.1 FullIeeeTbsCtl rootCaApprove / rootCaRemove.
 */
export function rootCaHash(cert: Certificate): Uint8Array {
  return certificateHash(cert).slice(-32);
}

/** A label for an elector/root in messages: its CertificateId name when it has one, else its HashedId8 hex. */
export function certificateLabel(cert: Certificate): string {
  const id = cert.toBeSigned.id as Record<string, unknown>;
  if (typeof id.name === 'string' && id.name !== '') return id.name;
  try {
    return toHex(certificateHashedId8(cert));
  } catch {
    return toHex(sha384(certificateBytes(cert)).slice(-8));
  }
}

/** The verification key of an explicit certificate (1609.2 6.4.35). Throws with a reason otherwise. */
export function certificateVerificationKey(cert: Certificate): { curve: CurveName; publicKey: Uint8Array } {
  if (cert.type !== 'explicit') throw new Error('not an explicit certificate (elector and root certificates are explicit)');
  return certificatePublicKey(cert);
}

/** Why a certificate is not a valid self-signed explicit certificate, or undefined when it is. */
export function selfSignatureProblem(cert: Certificate): string | undefined {
  try {
    return verifyCertificateSignature(cert, 'self') ? undefined : 'self-signature does not verify';
  } catch (e) {
    return (e as Error).message;
  }
}

/** Whether the certificate's validity period contains Time32 `t` (1609.2 6.4.12, closed interval). */
export function certificateValidAt(cert: Certificate, t: Time32): boolean {
  return validityPeriodContains(cert.toBeSigned.validityPeriod as Parameters<typeof validityPeriodContains>[0], t);
}
