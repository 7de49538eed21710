// EE trust bootstrap: download the trust files from an RA (src/engine/ra/distribution.ts) over HTTP and verify
// them before use. Checks, each failing with a BootstrapError naming it:
// - ctl: the series from sequence 1 verifies (verifyCtlSeries: elector quorum, continuity) and is anchored in what
//   the EE already trusts: the CTLs of a local trust directory (byte-identical where both have a sequence number)
//   or the HashedId8s of trusted root certificates (only those roots become trust anchors);
// - ccf: the CertificateChainSpdu's homeCtl is the latest CTL and each of its certificates chains to an anchor;
// - ra-certificate: the RA certificate chains to an anchor and carries RaSsp;
// - policy: the global and local policy SPDUs are signed by a PG certificate of the CCF (psid 35) and parse;
// - info-status: the certificate-management-info-status (if the RA serves it) verifies with the RA certificate.
import { unzipSync } from 'fflate';
import {
  CertificateManagementInformationStatusSpdu,
  type Certificate,
  type CertificateManagementInfoStatus,
} from '../../codec/index.js';
import { constantTimeEqual, toHex } from '../../crypto/bytes.js';
import { certificateHashedId8, decodeCertificate, encodeCertificate } from '../../security/certificate.js';
import { chainOf, verifyCertificateChain } from '../../security/chain.js';
import { verifySignedSpdu } from '../../security/scms-pdu.js';
import { verifySignedData } from '../../security/spdu.js';
import type { Clock } from '../../security/time.js';
import { parseCcf } from '../manager/ccf.js';
import { verifyCtlSeries, type CtlState } from '../manager/ctl.js';
import { roleOfSsp, SECURITY_MGMT_PSID } from '../manager/profiles.js';
import { loadTrustDir } from '../manager/trust-dir.js';
import { parseGlobalPolicy, parseLocalPolicy, type GlobalPolicy, type LocalPolicy } from '../policy/index.js';

export type BootstrapCheck = 'download' | 'ctl' | 'ccf' | 'ra-certificate' | 'policy' | 'info-status';

export class BootstrapError extends Error {
  override readonly name = 'BootstrapError';
  constructor(
    readonly check: BootstrapCheck,
    reason: string,
  ) {
    super(`${check}: ${reason}`);
  }
}

export interface BootstrapOptions {
  /** RA base URL, e.g. http://127.0.0.1:8080 */
  raUrl: string;
  /** Default globalThis.fetch. */
  fetch?: typeof fetch;
  /** HashedId8s (16 hex or 8 octets) of the root certificates the EE trusts. */
  trustedRootHashes?: ReadonlyArray<string | Uint8Array>;
  /** A trust directory whose CTLs the EE trusts (`scms manager init` output). */
  trustDir?: string;
  /** CTL series to fetch; default: the trust directory's, else the one the RA's info status names. */
  ctlSeriesId?: string;
  clock: Clock;
}

export interface TrustStore {
  ctlSeriesId: string;
  /** State after the latest CTL: electors, roots, quorum. */
  ctl: CtlState;
  /** The CTL files, ascending sequence number. */
  ctlFiles: Uint8Array[];
  /** Roots certificates may chain to. */
  trustAnchors: Certificate[];
  ccf: Uint8Array;
  /** The CCF's certificates (ICA and component certificates), all verified. */
  certificates: Certificate[];
  raCertificate: Certificate;
  raCertificateBytes: Uint8Array;
  globalPolicy: { policy: GlobalPolicy; signed: Uint8Array };
  localPolicy?: { policy: LocalPolicy; signed: Uint8Array };
  /** The RA's signed status, when served. */
  infoStatus?: CertificateManagementInfoStatus;
}

const HEX16 = /^[0-9a-f]{16}$/;

/** Downloads and verifies the SCMS trust files from an RA; throws BootstrapError on the first failed check. */
export async function bootstrapTrust(opts: BootstrapOptions): Promise<TrustStore> {
  const base = opts.raUrl.replace(/\/+$/, '');
  const doFetch = opts.fetch ?? globalThis.fetch;
  if (!opts.trustDir && !opts.trustedRootHashes?.length) {
    throw new BootstrapError('ctl', 'nothing to anchor trust in: give trustedRootHashes or trustDir');
  }
  const get = async (path: string, optional = false): Promise<Uint8Array | undefined> => {
    let res: Response;
    try {
      res = await doFetch(`${base}${path}`);
    } catch (e) {
      throw new BootstrapError('download', `GET ${path}: ${(e as Error).message}`);
    }
    if (res.status !== 200) {
      if (optional) return undefined;
      const err = res.headers.get('ieee-1609.2.1-error');
      throw new BootstrapError('download', `GET ${path}: HTTP ${res.status}${err ? ` (${err})` : ''}`);
    }
    return new Uint8Array(await res.arrayBuffer());
  };

  // Local anchors.
  const local = opts.trustDir ? loadTrustDir(opts.trustDir) : undefined;
  const trustedIds = new Set((opts.trustedRootHashes ?? []).map((h) => (typeof h === 'string' ? h.toLowerCase() : toHex(h))));
  for (const id of trustedIds) if (!HEX16.test(id)) throw new BootstrapError('ctl', `trusted root hash ${id} is not a HashedId8 (16 hex digits)`);

  // Info status first (unverified until the RA certificate is): it names the CTL series.
  const infoBytes = await get('/v3/certificate-management-info-status', true);
  const series = (opts.ctlSeriesId ?? local?.manifest.ctlSeriesId ?? seriesFromInfo(infoBytes))?.toLowerCase();
  if (!series || !HEX16.test(series)) throw new BootstrapError('ctl', 'no CTL series id: give ctlSeriesId or trustDir, or the RA must serve its info status');

  // 1. CTL series.
  const zip = (await get(`/v3/ctl?ctlSeriesId=${series}&ctlSequenceNumber=1`))!;
  const ctlFiles = ctlFilesOf(zip, series);
  const v = verifyCtlSeries(ctlFiles, { clock: opts.clock });
  if (!v.ok || !v.state) throw new BootstrapError('ctl', `CTL series ${series} does not verify: ${v.errors.join('; ')}`);
  const state = v.state;
  let trustAnchors: Certificate[];
  if (local) {
    for (const c of local.ctls) {
      const remote = ctlFiles[c.sequenceNumber - 1];
      if (!remote || !constantTimeEqual(remote, c.bytes)) {
        throw new BootstrapError('ctl', `CTL ${c.ctlSeriesId} #${c.sequenceNumber} from the RA differs from the trusted local copy`);
      }
    }
    trustAnchors = state.roots;
  } else {
    trustAnchors = state.roots.filter((r) => trustedIds.has(toHex(certificateHashedId8(r))));
  }
  if (trustedIds.size) trustAnchors = trustAnchors.filter((r) => trustedIds.has(toHex(certificateHashedId8(r))));
  if (trustAnchors.length === 0) throw new BootstrapError('ctl', `no root approved by CTL ${series} #${state.sequenceNumber} is one the EE trusts`);

  // 2. CCF.
  const ccf = (await get(`/v3/ccf-ctl?ctlSeriesId=${series}`))!;
  let parsed;
  try {
    parsed = parseCcf(ccf);
  } catch (e) {
    throw new BootstrapError('ccf', `not a CertificateChainSpdu: ${(e as Error).message}`);
  }
  if (!constantTimeEqual(parsed.homeCtlBytes, ctlFiles[ctlFiles.length - 1]!)) {
    throw new BootstrapError('ccf', `homeCtl is not the latest CTL (#${state.sequenceNumber}) of series ${series}`);
  }
  const certificates = parsed.others;
  for (const c of certificates) {
    const r = verifyCertificateChain(chainOf(c, certificates), { trustAnchors, clock: opts.clock });
    if (!r.ok) throw new BootstrapError('ccf', `certificate ${toHex(certificateHashedId8(c))} does not chain to a trusted root: ${r.errors.map((e) => e.reason).join('; ')}`);
  }

  // 3. RA certificate.
  const raBytes = (await get('/v3/ra-certificate'))!;
  let raCertificate: Certificate;
  try {
    raCertificate = decodeCertificate(raBytes);
  } catch (e) {
    throw new BootstrapError('ra-certificate', `not a COER Certificate: ${(e as Error).message}`);
  }
  const rc = verifyCertificateChain(chainOf(raCertificate, certificates), { trustAnchors, clock: opts.clock, requiredPsid: SECURITY_MGMT_PSID });
  if (!rc.ok) {
    throw new BootstrapError('ra-certificate', `RA certificate ${toHex(certificateHashedId8(raCertificate))} does not chain to a root of this SCMS: ${rc.errors.map((e) => e.reason).join('; ')}`);
  }
  if (securityMgmtRole(raCertificate) !== 'ra') throw new BootstrapError('ra-certificate', 'the certificate does not carry RaSsp (SecurityMgmtSsp ra)');

  // 4. Policies, signed by a PG certificate of the CCF.
  const pgs = certificates.filter((c) => securityMgmtRole(c) === 'pg');
  if (pgs.length === 0) throw new BootstrapError('policy', 'the CCF has no PG certificate to verify the policy files');
  const globalSigned = (await get('/v3/global-policy'))!;
  const globalPolicy = policyOf(globalSigned, pgs, opts.clock, 'global', (json) => parseGlobalPolicy(json));
  const localSigned = await get('/v3/local-policy', true);
  const localPolicy = localSigned ? policyOf(localSigned, pgs, opts.clock, 'local', (json) => parseLocalPolicy(json, globalPolicy)) : undefined;

  // 5. Info status, now that the RA certificate is verified.
  let infoStatus: CertificateManagementInfoStatus | undefined;
  if (infoBytes) {
    const raId = certificateHashedId8(raCertificate);
    const r = verifySignedSpdu(infoBytes, {
      resolveSigner: (sid) => {
        const certs = (sid as { certificate?: Certificate[] }).certificate;
        return certs?.length === 1 && constantTimeEqual(certificateHashedId8(certs[0]!), raId) ? raCertificate : undefined;
      },
    });
    if (!r.ok) throw new BootstrapError('info-status', `not signed by the RA certificate: ${r.reason}`);
    const content = r.pdu.content as { cert?: { infoStatus?: CertificateManagementInfoStatus } };
    infoStatus = content.cert?.infoStatus;
    if (!infoStatus) throw new BootstrapError('info-status', 'the signed ScmsPdu is not a CertificateManagementInfoStatus');
  }

  return {
    ctlSeriesId: series,
    ctl: state,
    ctlFiles,
    trustAnchors,
    ccf,
    certificates,
    raCertificate,
    raCertificateBytes: raBytes,
    globalPolicy: { policy: globalPolicy, signed: globalSigned },
    ...(localPolicy && localSigned ? { localPolicy: { policy: localPolicy, signed: localSigned } } : {}),
    ...(infoStatus ? { infoStatus } : {}),
  };
}

/** The CTL series id named by an (unverified) info status, if any. */
function seriesFromInfo(bytes: Uint8Array | undefined): string | undefined {
  if (!bytes) return undefined;
  try {
    const spdu = CertificateManagementInformationStatusSpdu.decode(bytes);
    const c = spdu.content as { signedData?: { tbsData: { payload: { data?: { content: { unsecuredData: { content: { cert: { infoStatus: CertificateManagementInfoStatus } } } } } } } } };
    const id = c.signedData?.tbsData.payload.data?.content.unsecuredData.content.cert.infoStatus.ctl[0]?.ctlSeriesId;
    return id ? toHex(id) : undefined;
  } catch {
    return undefined;
  }
}

/** The `ctl_<series>_<seq>.oer` files of a CTL zip, checked to be the series from 1 without gaps. */
function ctlFilesOf(zip: Uint8Array, series: string): Uint8Array[] {
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(zip);
  } catch (e) {
    throw new BootstrapError('ctl', `the CTL download is not a zip: ${(e as Error).message}`);
  }
  const bySeq = new Map<number, Uint8Array>();
  for (const [name, bytes] of Object.entries(entries)) {
    const m = /^ctl_([0-9a-f]{16})_(\d+)\.oer$/.exec(name);
    if (!m || m[1] !== series) throw new BootstrapError('ctl', `unexpected file ${JSON.stringify(name)} in the CTL zip`);
    bySeq.set(Number(m[2]), bytes);
  }
  const files: Uint8Array[] = [];
  for (let seq = 1; seq <= bySeq.size; seq++) {
    const f = bySeq.get(seq);
    if (!f) throw new BootstrapError('ctl', `the CTL zip lacks ctl_${series}_${seq}.oer`);
    files.push(f);
  }
  return files;
}

/** The SecurityMgmtSsp alternative (e.g. 'ra', 'pg') of a certificate's psid-35 permission. */
function securityMgmtRole(cert: Certificate): string | undefined {
  const e = cert.toBeSigned.appPermissions?.find((p) => BigInt(p.psid) === SECURITY_MGMT_PSID);
  const ssp = e?.ssp as { opaque?: Uint8Array } | undefined;
  return ssp?.opaque ? roleOfSsp(ssp.opaque) : undefined;
}

/** Verifies a PG-signed policy SPDU and parses its payload (the policy's canonical JSON). */
function policyOf<P>(signed: Uint8Array, pgs: Certificate[], clock: Clock, kind: string, parse: (json: unknown) => P): P {
  const ids = pgs.map((c) => ({ c, id: certificateHashedId8(c), bytes: encodeCertificate(c) }));
  const r = verifySignedData(signed, {
    expectedPsid: SECURITY_MGMT_PSID,
    clock,
    resolveSigner: (sid) => {
      const s = sid as { digest?: Uint8Array; certificate?: Certificate[] };
      if (s.digest) return ids.find((x) => constantTimeEqual(x.id, s.digest!))?.c;
      if (s.certificate?.length === 1) {
        const b = encodeCertificate(s.certificate[0]!);
        return ids.find((x) => constantTimeEqual(x.bytes, b))?.c;
      }
      return undefined;
    },
  });
  if (!r.ok) throw new BootstrapError('policy', `${kind} policy is not signed by a PG certificate of the CCF: ${r.reason}`);
  try {
    return parse(JSON.parse(Buffer.from(r.payload).toString('utf8')));
  } catch (e) {
    throw new BootstrapError('policy', `${kind} policy does not parse: ${(e as Error).message}`);
  }
}
