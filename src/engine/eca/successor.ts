/**
 * Successor enrollment at the ECA (IEEE 1609.2.1 6.3.5.4; EeRaInterface eeRaSuccessorEnrollmentCertRequest comment:
 * "a self-signed request for an enrollment certificate, identical in format to the one submitted for an initial
 * enrollment certificate. (This becomes a request for a successor enrollment certificate by virtue of being signed
 * by the current enrollment certificate.)").
 *
 * The RA decrypts the EeRaSuccessorEnrollmentCertRequestSpdu, verifies the outer signature with the current
 * enrollment certificate and forwards the inner EeEcaCertRequestSpdu with a SuccessorLink: the device the RA found
 * for that certificate, the certificate's HashedId8 and the outer request's HashedId8 (EcaEeCertResponse.requestHash
 * comment: the hash of the EeRaSuccessorEnrollmentCertRequestSpdu when the request was one).
 *
 * The ECA then (Eca.handleEnrollmentRequest with a link; choices, documented):
 * - the inner request carries no canonicalId and is verified with its own tbsCert.verificationKey (the new key:
 *   proof of possession; SignerSelf); a canonicalId is refused 400-60;
 * - the current enrollment certificate must be one this ECA issued to that device (eca_enrollment_certificates),
 *   else 400-21; the device (registry, by its canonical id) must not be blocked (403-20);
 * - every other check, the rate limits and issuance are those of an initial enrollment; the new certificate is
 *   recorded (ECA tables) and the registry is told with kind 'successor-enrollment'.
 */
import type { Eca, EnrollmentResult } from './eca.js';

/** What the RA vouches for when it forwards a successor request (the ECA re-checks it against its own records). */
export interface SuccessorLink {
  /** The RA's device id of the device that signed the outer request. */
  deviceId: string;
  /** HashedId8 (16 hex) of the current enrollment certificate that signed the outer request. */
  currentEnrollment: string;
  /** HashedId8 of the EeRaSuccessorEnrollmentCertRequestSpdu octets as received (EcaEeCertResponse.requestHash). */
  requestHash: Uint8Array;
}

/** The ECA's answer to a forwarded successor request: the EcaEeCertResponseSpdu octets, or a refusal. */
export type SuccessorEnrollmentResult =
  | { status: 200; body: Uint8Array; hashedId8: string; deviceId: string }
  | { status: number; code: number; reason: string; /** Retry-After (s) of a 429. */ retryAfter?: number };

/** How the RA reaches the ECA (in-process now; an HTTP transport would carry the same three values). */
export interface EcaClient {
  successorEnrollment(request: Uint8Array, link: SuccessorLink): Promise<SuccessorEnrollmentResult>;
}

function narrow(r: EnrollmentResult): SuccessorEnrollmentResult {
  if (r.status === 200) return { status: 200, body: r.body, hashedId8: r.hashedId8, deviceId: r.deviceId };
  return { status: r.status, code: r.code, reason: r.reason, ...(r.retryAfter !== undefined ? { retryAfter: r.retryAfter } : {}) };
}

/** Direct calls into an Eca in the same process (serve all, tests). */
export function inProcessEcaClient(eca: Eca): EcaClient {
  return {
    async successorEnrollment(request, link) {
      return narrow(await eca.handleEnrollmentRequest(request, link));
    },
  };
}
