/**
 * Policy files signed by the policy generator (PG): a 1609.2 signed SPDU (1609.2 6.3.4 SignedData,
 * psid = SecurityMgmtPsid 35, signer = the PG certificate) whose payload is the policy's canonical
 * bytes (templates/policies/README.md "Canonical bytes"). The JSON is kept next to the signed .oer.
 */
import { Ieee1609Dot2Data } from '../../codec/index.js';
import type { Certificate } from '../../codec/index.js';
import { constantTimeEqual } from '../../crypto/bytes.js';
import { certificateHashedId8 } from '../../security/certificate.js';
import type { Signer } from '../../security/signer.js';
import { signData, verifySignedData } from '../../security/spdu.js';
import type { Clock } from '../../security/time.js';
import { canonicalPolicyBytes, type Policy } from '../policy/index.js';
import { SECURITY_MGMT_PSID } from './profiles.js';

/** Signs the canonical bytes of `policy` with the PG key; returns the COER Ieee1609Dot2Data. */
export async function signPolicy(opts: { policy: Policy; pgCertificate: Certificate; signer: Signer; clock: Clock }): Promise<Uint8Array> {
  const data = await signData({
    payload: canonicalPolicyBytes(opts.policy),
    psid: SECURITY_MGMT_PSID,
    signer: opts.signer,
    signerId: { certificate: opts.pgCertificate },
    clock: opts.clock,
  });
  return Ieee1609Dot2Data.encode(data);
}

/**
 * Checks a signed policy: the signature verifies with the PG certificate (signer identified by that
 * certificate or its digest), psid 35, and the payload equals the canonical bytes of `policy`.
 * Returns the problems found (empty = valid).
 */
export function verifyPolicySignature(signed: Uint8Array, policy: Policy, pgCertificate: Certificate, clock?: Clock): string[] {
  const pgId = certificateHashedId8(pgCertificate);
  const r = verifySignedData(signed, {
    expectedPsid: SECURITY_MGMT_PSID,
    clock,
    resolveSigner: (sid) => {
      const s = sid as Record<string, unknown>;
      if ('digest' in s) return constantTimeEqual(s.digest as Uint8Array, pgId) ? pgCertificate : undefined;
      if ('certificate' in s) {
        const certs = s.certificate as Certificate[];
        return certs.length === 1 && constantTimeEqual(certificateHashedId8(certs[0]!), pgId) ? pgCertificate : undefined;
      }
      return undefined;
    },
  });
  if (!r.ok) return [`signature does not verify with the PG certificate: ${r.reason}`];
  if (!constantTimeEqual(r.payload, canonicalPolicyBytes(policy))) return ['signed payload differs from the canonical bytes of the policy JSON'];
  return [];
}
