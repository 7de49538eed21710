// What the ECA needs from the rest of the SCMS. The device registry is the RA's (src/engine/ra/registration.ts:
// in-process or HTTP transport); the ECA's own key material comes from the trust directory (manager).
import type { Certificate } from '../../codec/index.js';
import type { Signer } from '../../security/signer.js';
import type { Clock } from '../../security/time.js';
import type { GlobalPolicy } from '../policy/index.js';
import type { EcaStore } from './store.js';

export type { DeviceRegistry, RegisteredDevice, CertificateRecordInput } from '../ra/registration.js';
import type { DeviceRegistry } from '../ra/registration.js';

/** The ECA's certificate, its chain and its key. */
export interface EcaIdentity {
  /** The ECA certificate (SecurityMgmtPsid with EcaSsp, 1609.2.1 EcaEeCertResponseSpdu). */
  certificate: Certificate;
  /** The ECA's issuers, ICA first, up to and including the root (EcaEeCertResponse.ecaCertChain after the ECA). */
  chain: Certificate[];
  /** Signs explicit enrollment certificates and the responses (may live in an HSM). */
  signer: Signer;
  /**
   * The ECA's private scalar, needed for implicit (ECQV) issuance s = e*k + d_CA (1609.2 5.3.2): PKCS#11 has no
   * ECQV mechanism. Without it only explicit enrollment certificates are issued.
   */
  privateScalar?: bigint;
}

/** Issuance choices that the global policy does not carry. */
export interface EcaOptions {
  /** Certificate types issued (1609.2.1 EeEcaCertRequest.type note: a policy decides). Default both. */
  allowedTypes?: ReadonlyArray<'explicit' | 'implicit'>;
  /** tbs.cracaId of issued certificates (1609.2 6.4.8; default 000000: the ECA's issuer chain is the CRACA). */
  cracaId?: Uint8Array;
  /** tbs.crlSeries of issued certificates (default 0). */
  crlSeries?: number;
  /** tbs.id: 'none' (default; enrollment certificates carry no identity) or the requested name / binaryId. */
  certificateId?: 'none' | 'requested';
}

export interface EcaDeps {
  eca: EcaIdentity;
  registry: DeviceRegistry;
  policy: GlobalPolicy;
  clock: Clock;
  store: EcaStore;
  options?: EcaOptions;
}
