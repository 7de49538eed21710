// EE-side CRL check: download the CRLs from the RA (GET /v3/crl, 1609.2.1 6.3.5.10, or the composite CRL/CTL,
// 6.3.5.8), verify each as a valid signed CRL (1609.2 7.4: security/crl.ts verifyCrl, the CRL signer chaining to a
// root the EE's CTL approved), and answer "is this certificate revoked" for hash-based entries (HashedId10) and
// linkage-based entries (lv(i, j) recomputed from the published seeds, src/crypto/linkage.ts).
import { CompositeCrlSpdu, MultiSignedCtlSpdu, SecuredCrl, type Certificate, type CrlContents } from '../../codec/index.js';
import { constantTimeEqual, toHex } from '../../crypto/bytes.js';
import { CrlIndex, verifyCrl, type CrlKind, type RevocationMatch } from '../../security/crl.js';
import type { Clock } from '../../security/time.js';
import type { TrustStore } from './bootstrap.js';

export class CrlCheckError extends Error {
  override readonly name = 'CrlCheckError';
}

export interface EeCrlOptions {
  /** RA base URL. */
  raUrl: string;
  /** The bootstrapped trust (anchors, CCF certificates, CTL files). */
  trust: Pick<TrustStore, 'trustAnchors' | 'certificates' | 'ctlSeriesId' | 'ctlFiles'>;
  clock: Clock;
  fetch?: typeof fetch;
  /** Accept a CRL this long past nextCrl (policy crlOverdueTolerance). Default 0. */
  overdueToleranceSeconds?: number;
}

/** A verified CRL as the EE keeps it. */
export interface VerifiedCrl {
  kind: CrlKind;
  craca: string;
  series: number;
  issueDate: number;
  nextCrl: number;
  contents: CrlContents;
  bytes: Uint8Array;
}

/** The EE's revocation state: the verified CRLs and the check over them. */
export class EeCrlCheck {
  readonly crls: readonly VerifiedCrl[];
  readonly #index: CrlIndex;
  constructor(crls: readonly VerifiedCrl[]) {
    this.crls = crls;
    this.#index = new CrlIndex(crls.map((c) => c.contents));
  }
  /** Hash-based: the certificate's HashedId10; linkage-based: its (iCert, linkage-value) against lv(iCert, j). */
  isRevoked(cert: Certificate): RevocationMatch {
    return this.#index.check(cert);
  }
}

async function download(opts: EeCrlOptions, path: string): Promise<Uint8Array> {
  const url = `${opts.raUrl.replace(/\/+$/, '')}${path}`;
  let res: Response;
  try {
    res = await (opts.fetch ?? globalThis.fetch)(url);
  } catch (e) {
    throw new CrlCheckError(`GET ${path}: ${(e as Error).message}`);
  }
  if (res.status !== 200) {
    const code = res.headers.get('ieee-1609.2.1-error');
    throw new CrlCheckError(`GET ${path}: HTTP ${res.status}${code ? ` (${code})` : ''} ${await res.text().catch(() => '')}`.trim());
  }
  return new Uint8Array(await res.arrayBuffer());
}

/** Verifies one SecuredCrl against the EE's trust; throws CrlCheckError naming the refusal. */
export function verifyEeCrl(bytes: Uint8Array, opts: Pick<EeCrlOptions, 'trust' | 'clock' | 'overdueToleranceSeconds'>): VerifiedCrl {
  const v = verifyCrl(bytes, {
    trustAnchors: opts.trust.trustAnchors,
    certificates: opts.trust.certificates,
    clock: opts.clock,
    ...(opts.overdueToleranceSeconds !== undefined ? { overdueToleranceSeconds: opts.overdueToleranceSeconds } : {}),
  });
  if (!v.ok) throw new CrlCheckError(`CRL refused (${v.refusal}): ${v.reason}`);
  const c = v.contents;
  return { kind: v.kind, craca: toHex(c.crlCraca), series: c.crlSeries, issueDate: c.issueDate, nextCrl: c.nextCrl, contents: c, bytes };
}

/** GET /v3/crl?craca=&crlSeries=[&type=hash] and verify it. */
export async function fetchCrl(opts: EeCrlOptions, craca: string, crlSeries: number, type: 'linked' | 'hash' = 'linked'): Promise<VerifiedCrl> {
  const bytes = await download(opts, `/v3/crl?craca=${craca}&crlSeries=${crlSeries}${type === 'hash' ? '&type=hash' : ''}`);
  return verifyEeCrl(bytes, opts);
}

/**
 * GET /v3/composite-crl-ctl for the EE's CTL series: its homeCtl must be the EE's latest CTL, and every SecuredCrl in
 * it must verify. Returns the check over all of them.
 */
export async function fetchCompositeCrls(opts: EeCrlOptions): Promise<EeCrlCheck> {
  const bytes = await download(opts, `/v3/composite-crl-ctl?ctlSeriesId=${opts.trust.ctlSeriesId}`);
  let composite;
  try {
    const spdu = CompositeCrlSpdu.decode(bytes);
    composite = (spdu.content as { unsecuredData: { content: { cert: { compositeCrl: { crl: SecuredCrl[]; homeCtl: unknown } } } } }).unsecuredData.content.cert.compositeCrl;
  } catch (e) {
    throw new CrlCheckError(`not a CompositeCrlSpdu: ${(e as Error).message}`);
  }
  const latest = opts.trust.ctlFiles[opts.trust.ctlFiles.length - 1];
  const home = MultiSignedCtlSpdu.encode(composite.homeCtl as never);
  if (!latest || !constantTimeEqual(home, latest)) throw new CrlCheckError('the composite homeCtl is not the EE\'s latest CTL');
  return new EeCrlCheck(composite.crl.map((c) => verifyEeCrl(SecuredCrl.encode(c), opts)));
}
