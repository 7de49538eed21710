/**
 * SPDUs of asn1/scms/ScmsInterfaces.asn (this project's module for the interfaces 1609.2.1-2022 leaves NULL):
 * an ScmsLocalPdu in Ieee1609Dot2Data-Signed {.., SecurityMgmtPsid} by the sender's certificate (SignerSingleCert),
 * and the checks a receiver makes: the exact SPDU form (the generated codec of the SPDU type enforces the
 * Ieee1609Dot2Data-Signed constraints), the signature, the sender's certificate chain to a trust anchor, its role
 * (SecurityMgmtSsp alternative) and the freshness of generationTime. Failures are ScmsHttpErrors with 1609.2.1
 * codes (parsing 42, signature 43, chain 40, future 50, too old 70, content 60).
 */
import {
  Ieee1609Dot2Data as Ieee1609Dot2DataCodec,
  ScmsLocalPdu as ScmsLocalPduCodec,
  type Certificate,
  type Codec,
  type ScmsLocalPdu,
} from '../../codec/index.js';
import { isIssuedBy, isSelfSigned } from '../../security/certificate.js';
import { verifyCertificateChain } from '../../security/chain.js';
import { SECURITY_MGMT_PSID } from '../../security/scms-pdu.js';
import type { Signer } from '../../security/signer.js';
import { signData, verifySignedData } from '../../security/spdu.js';
import { dateToTime32, systemClock, type Clock } from '../../security/time.js';
import { securityMgmtSspOf } from '../aca/aca.js';
import { Ieee1609Dot2Dot1ErrorCode as E, ScmsHttpError } from '../http/errors.js';

/** ScmsLocalPdu.version (Uint8 (1)). */
export const SCMS_LOCAL_PDU_VERSION = 1;

/** Default freshness window for generationTime in requests (seconds, either direction). */
export const DEFAULT_MAX_AGE_SECONDS = 300;

export type ScmsRole = 'ra' | 'aca' | 'la';

/** ScmsLocalPdu { version 1, content }. */
export function scmsLocalPdu(content: ScmsLocalPdu['content']): ScmsLocalPdu {
  return { version: SCMS_LOCAL_PDU_VERSION, content };
}

/** COER Ieee1609Dot2Data-Signed {ScmsLocalPdu, SecurityMgmtPsid}, signed by `certificate`. */
export async function signedLocalSpdu(pdu: ScmsLocalPdu, signer: Signer, certificate: Certificate): Promise<Uint8Array> {
  const data = await signData({ payload: ScmsLocalPduCodec.encode(pdu), psid: SECURITY_MGMT_PSID, signer, signerId: { certificate } });
  return Ieee1609Dot2DataCodec.encode(data);
}

export interface PeerTrustOptions {
  /** Root certificates of the trust domain. */
  readonly trustAnchors: readonly Certificate[];
  /** Intermediate CA certificates used to complete a sender's chain. */
  readonly caCertificates?: readonly Certificate[];
  readonly clock?: Clock;
  /** generationTime window, seconds (default 300). */
  readonly maxAgeSeconds?: number;
}

export interface VerifiedLocalSpdu {
  readonly pdu: ScmsLocalPdu;
  readonly signerCertificate: Certificate;
}

/** Which SCMS certificates a component accepts messages from: chain to a trust anchor + role. */
export class PeerTrust {
  readonly clock: Clock;
  readonly #anchors: readonly Certificate[];
  readonly #cas: readonly Certificate[];
  readonly #maxAge: number;

  constructor(opts: PeerTrustOptions) {
    this.#anchors = opts.trustAnchors;
    this.#cas = opts.caCertificates ?? [];
    this.clock = opts.clock ?? systemClock;
    this.#maxAge = opts.maxAgeSeconds ?? DEFAULT_MAX_AGE_SECONDS;
  }

  /** The chain of `leaf` from the known CA certificates (leaf first; the anchor is added by the verifier). */
  #chainOf(leaf: Certificate): Certificate[] {
    const chain = [leaf];
    for (let c = leaf; !isSelfSigned(c) && chain.length < 8; ) {
      const up = [...this.#cas, ...this.#anchors].find((x) => isIssuedBy(c, x));
      if (!up || this.#anchors.includes(up)) break;
      chain.push(up);
      c = up;
    }
    return chain;
  }

  /** Undefined when `cert` chains to a trust anchor and has the SecurityMgmtSsp of `role`; else the reason. */
  check(cert: Certificate, role: ScmsRole): string | undefined {
    const res = verifyCertificateChain(this.#chainOf(cert), {
      trustAnchors: this.#anchors,
      clock: this.clock,
      requiredPsid: SECURITY_MGMT_PSID,
    });
    if (!res.ok) return res.errors.map((e) => e.reason).join('; ');
    const ssp = securityMgmtSspOf(cert);
    if (!ssp || !(role in ssp)) return `certificate is not an ${role.toUpperCase()} certificate (SecurityMgmtSsp ${ssp ? Object.keys(ssp)[0] : 'absent'})`;
    return undefined;
  }

  /** The LaSsp laId of an LA certificate. */
  static laIdOf(cert: Certificate): number | undefined {
    const ssp = securityMgmtSspOf(cert);
    return ssp && 'la' in ssp ? ssp.la.laId : undefined;
  }

  /**
   * Checks a signed local SPDU from a `role` sender: its form (`spduCodec`, the generated SPDU type), signature,
   * sender chain and role. Throws ScmsHttpError.
   */
  verify(bytes: Uint8Array, spduCodec: Codec<unknown>, role: ScmsRole): VerifiedLocalSpdu {
    let spdu: { content: object };
    try {
      spdu = spduCodec.decode(bytes) as { content: object };
    } catch (e) {
      throw new ScmsHttpError(400, E.parsingFailure, `not a ${spduCodec.schema.name ?? 'valid SPDU'}: ${(e as Error).message}`);
    }
    // Ieee1609Dot2Data-Signed constrains the signedData alternative only; anything else is not the SPDU.
    if (!('signedData' in spdu.content)) throw new ScmsHttpError(400, E.parsingFailure, `not signed data (${Object.keys(spdu.content)[0]})`);
    let chainError: string | undefined;
    const res = verifySignedData(bytes, {
      expectedPsid: SECURITY_MGMT_PSID,
      resolveSigner: (id) => {
        if (!('certificate' in id) || id.certificate.length !== 1) return undefined;
        const cert = id.certificate[0]!;
        chainError = this.check(cert, role);
        return chainError === undefined ? cert : undefined;
      },
    });
    if (chainError !== undefined) throw new ScmsHttpError(403, E.chainFailure, `signer refused: ${chainError}`);
    if (!res.ok || !res.signerCertificate) throw new ScmsHttpError(400, E.signatureFailure, `signature: ${res.ok ? 'no signer certificate' : res.reason}`);
    return { pdu: ScmsLocalPduCodec.decode(res.payload), signerCertificate: res.signerCertificate };
  }

  /** Checks a request's generationTime against the clock (50: in the future, 70: too old). */
  checkFresh(generationTime: number): void {
    const now = dateToTime32(this.clock.now());
    if (generationTime > now + this.#maxAge) throw new ScmsHttpError(400, E.generationTimeInFuture, 'generationTime is in the future');
    if (generationTime < now - this.#maxAge) throw new ScmsHttpError(400, E.policyLimit, 'generationTime is too old');
  }
}

/** The `Ieee-1609.2.1-Error` of a refused exchange as an ScmsHttpError (client side). */
export async function responseError(res: Response, what: string): Promise<ScmsHttpError> {
  const header = res.headers.get('ieee-1609.2.1-error');
  const code = header && /^\d+-(\d+)$/.test(header) ? Number(header.split('-')[1]) : E.undefined;
  let text = '';
  try {
    text = (await res.text()).slice(0, 500);
  } catch {
    /* status only */
  }
  const status = res.status >= 400 && res.status <= 599 ? res.status : 502;
  return new ScmsHttpError(status, code, `${what}: HTTP ${res.status}${text ? ` ${text}` : ''}`);
}

/** POSTs a COER body, returns the COER answer (200) or throws ScmsHttpError. */
export async function postOctets(fetchFn: typeof fetch, url: string, body: Uint8Array, timeoutMs: number, token?: string): Promise<Uint8Array> {
  const headers: Record<string, string> = { 'content-type': 'application/octet-stream', accept: 'application/octet-stream' };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  const res = await fetchFn(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(timeoutMs) });
  if (res.status !== 200) throw await responseError(res, `POST ${url}`);
  return new Uint8Array(await res.arrayBuffer());
}
