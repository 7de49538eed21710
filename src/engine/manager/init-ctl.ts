/**
 * The CTL step of the ceremony: the first CTL of a series (1609.2.1 CertManagement FullIeeeTbsCtl,
 * sequence 1, every elector and root approved, nothing removed, `quorum`), signed by every elector
 * (ballots: CtlSignatureSpdu over ToBeSignedCtlSignature) and assembled into a MultiSignedCtlSpdu
 * whose `unsigned` carries the elector and root certificates. The CTL engine is ctl.ts.
 */
import type { Certificate } from '../../codec/index.js';
import type { Signer } from '../../security/signer.js';
import type { Clock } from '../../security/time.js';
import { assembleMultiSignedCtl, buildTbsCtl, signCtlBallot } from './ctl.js';

export interface FirstCtlInput {
  ctlSeriesId: Uint8Array;
  quorum: number;
  electors: Array<{ certificate: Certificate; signer: Signer }>;
  roots: Certificate[];
  clock: Clock;
}

/** Returns the COER MultiSignedCtlSpdu. */
export async function buildFirstCtl(input: FirstCtlInput): Promise<Uint8Array> {
  const tbsCtl = buildTbsCtl({
    ctlSeriesId: input.ctlSeriesId,
    sequenceNumber: 1,
    effectiveDate: input.clock.now(),
    electorApprove: input.electors.map((e) => e.certificate),
    electorRemove: [],
    rootCaApprove: input.roots,
    rootCaRemove: [],
    quorum: input.quorum,
  });
  const signatures: Uint8Array[] = [];
  for (const e of input.electors) {
    signatures.push(await signCtlBallot({ tbsCtl, electorCertificate: e.certificate, signer: e.signer, clock: input.clock }));
  }
  const unsigned = [...input.electors.map((e) => e.certificate), ...input.roots];
  return assembleMultiSignedCtl({ tbsCtl, unsigned, signatures });
}
