/**
 * Certificate chain file (1609.2.1-2022 clause 6.3.5.x / CertManagement CertificateChain):
 * CertificateChainSpdu = Ieee1609Dot2Data-Unsecured { ScmsPdu { cert: certificateChain {
 *   homeCtl: MultiSignedCtlSpdu, others: SequenceOfCertificate } } }.
 * `homeCtl` carries the root certificates (its `unsigned` field); `others` the ICA and component
 * certificates an EE needs to validate the SCMS components up to a root in the CTL.
 */
import { CertificateChainSpdu, MultiSignedCtlSpdu } from '../../codec/index.js';
import type { Certificate } from '../../codec/index.js';

export function buildCcf(ctlSpdu: Uint8Array, others: Certificate[]): Uint8Array {
  const homeCtl = MultiSignedCtlSpdu.decode(ctlSpdu);
  return CertificateChainSpdu.encode({
    protocolVersion: 3,
    content: { unsecuredData: { version: 2, content: { cert: { certificateChain: { homeCtl, others } } } } },
  });
}

export interface ParsedCcf {
  homeCtl: MultiSignedCtlSpdu;
  homeCtlBytes: Uint8Array;
  others: Certificate[];
}

export function parseCcf(bytes: Uint8Array): ParsedCcf {
  const v = CertificateChainSpdu.decode(bytes);
  const c = v.content as Record<string, unknown>;
  if (!('unsecuredData' in c)) throw new Error('CertificateChainSpdu content is not unsecuredData');
  const chain = (c.unsecuredData as { content: { cert: { certificateChain: { homeCtl: MultiSignedCtlSpdu; others: Certificate[] } } } })
    .content.cert.certificateChain;
  return { homeCtl: chain.homeCtl, homeCtlBytes: MultiSignedCtlSpdu.encode(chain.homeCtl), others: chain.others };
}
