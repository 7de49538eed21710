// RA trust-distribution endpoints (1609.2.1 6.3.5.7–6.3.5.14; /work/shared/reference/REST-INTERFACE.md), served
// from the trust directory written by `scms manager init`. Every file answer is 200 with
// `Content-Disposition: attachment; filename=...`, a strong ETag and If-None-Match -> 304 (http/files.ts).
//
// | route                                                   | answer (file name)                                                      |
// |---------------------------------------------------------|-------------------------------------------------------------------------|
// | GET /v3/ctl?ctlSeriesId=<16 hex>&ctlSequenceNumber=<n>  | uncompressed zip `ctl_<series>_<lowestSeq>.zip` of `ctl_<series>_<seq>.oer` (seq >= n) |
// | GET /v3/ccf-ctl?ctlSeriesId=<16 hex>                     | CertificateChainSpdu `ccf_<homeCtl sequence number, hex>.oer`           |
// | GET /v3/composite-crl-ctl?ctlSeriesId=<16 hex>           | CompositeCrlSpdu `composite-crl_<version hex>.oer` (the current CRLs)   |
// | GET /v3/crl?craca=<16 hex>&crlSeries=<uint16>[&type=]    | SecuredCrl `crl_<craca>_<series>.oer` (linked; type=hash: `..._hash.oer`) |
// | GET /v3/ca-certificate?certId=<16 hex HashedId8>         | the CA certificate `ca_<certId>.oer` (root, ICA, ECA, ACA, CRL signer)  |
// | GET /v3/ra-certificate                                   | `ra_<HashedId8>.oer`                                                    |
// | GET /v3/certificate-management-info-status               | CertificateManagementInformationStatusSpdu signed by the RA             |
// | GET /v3/global-policy, GET /v3/local-policy              | the PG-signed policy SPDU `global-policy.oer` / `local-policy.oer`     |
//
// The policy paths are ours: the fact sheet does not give the standard's. The composite CRL's version is the
// home CTL's sequence number while no CRL is issued, then the latest CRL's issueDate (Time32, strictly increasing
// with every CRL: crl/service.ts). Per (crlCraca, crlSeries) the CRL signer issues a linkage-based and a hash-based
// full CRL (TypeSpecificCrlContents is a CHOICE): GET /v3/crl answers the linkage-based one (pseudonym certificates),
// `type=hash` (our extension) the hash-based one; the composite carries both. The composite and the info status are
// rebuilt when the CRL source's version changes.
import { zipSync } from 'fflate';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  CompositeCrlSpdu,
  Ieee1609Dot2Data,
  MultiSignedCtlSpdu,
  SecuredCrl,
  type Certificate,
  type CrlInfoStatus,
} from '../../codec/index.js';
import { fromHex, toHex } from '../../crypto/bytes.js';
import { certificateHashedId8 } from '../../security/certificate.js';
import { scmsPdu, signedSpdu } from '../../security/scms-pdu.js';
import type { Signer } from '../../security/signer.js';
import { dateToTime32, type Clock } from '../../security/time.js';
import { Ieee1609Dot2Dot1ErrorCode, ScmsHttpError } from '../http/errors.js';
import { sendFile } from '../http/files.js';
import type { TrustDir } from '../manager/trust-dir.js';
import type { Role } from '../manager/profiles.js';
import type { IssuedCrl } from '../crl/store.js';

/** Roles whose certificates `GET /v3/ca-certificate` serves. */
export const CA_ROLES: readonly Role[] = ['root', 'ica', 'eca', 'aca', 'crl-signer'];

export interface DistributionDeps {
  /** The loaded trust directory (loadTrustDir). */
  trust: TrustDir;
  clock: Clock;
  /** RA component name in the manifest (default 'ra'). */
  raName?: string;
  /** The RA's signing key; without it certificate-management-info-status answers 503. */
  raSigner?: Signer;
  /** The CRLs to distribute (crl/service.ts CrlService); absent: no CRL is served. */
  crl?: CrlSource;
}

/** The current CRLs and a version that increases whenever they change. */
export interface CrlSource {
  readonly version: number;
  current(): readonly IssuedCrl[];
}

/** A file the routes serve: bytes and offered name. */
export interface DistributedFile {
  bytes: Uint8Array;
  filename: string;
}

const HEX16 = /^[0-9a-fA-F]{16}$/;
// Fixed zip timestamps: the same CTL files give the same zip bytes (stable ETag).
const ZIP_MTIME = new Date('2004-01-01T00:00:00Z');

function badRequest(reason: string): ScmsHttpError {
  return new ScmsHttpError(400, Ieee1609Dot2Dot1ErrorCode.invalidContent, reason);
}
function notFound(reason: string): ScmsHttpError {
  return new ScmsHttpError(404, Ieee1609Dot2Dot1ErrorCode.undefined, reason);
}

function queryOf(request: FastifyRequest): Record<string, unknown> {
  return (request.query ?? {}) as Record<string, unknown>;
}

/** A required query parameter given once. */
function param(request: FastifyRequest, name: string): string {
  const v = queryOf(request)[name];
  if (v === undefined || v === '') throw badRequest(`query parameter ${name} is required`);
  if (typeof v !== 'string') throw badRequest(`query parameter ${name} is given more than once`);
  return v;
}

/** A HashedId8 / CtlSeriesId parameter: 16 hex digits, returned lower-case. */
function hex16Param(request: FastifyRequest, name: string): string {
  const v = param(request, name);
  if (!HEX16.test(v)) throw badRequest(`${name}: expected 16 hex digits (8 octets)`);
  return v.toLowerCase();
}

/** CtlSequenceNumber / CrlSeries ::= Uint16. */
function sequenceParam(request: FastifyRequest, name: string, type = 'Uint16'): number {
  const v = param(request, name);
  if (!/^\d{1,5}$/.test(v) || Number(v) > 0xffff) throw badRequest(`${name}: expected an integer 0..65535 (${type})`);
  return Number(v);
}

/** The CTL zip: `ctl_<series>_<seq>.oer` for each CTL of the series with sequence number >= `from`. */
export function ctlZip(trust: TrustDir, seriesHex: string, from: number): DistributedFile | undefined {
  const ctls = trust.ctls.filter((c) => c.ctlSeriesId.toLowerCase() === seriesHex && c.sequenceNumber >= from);
  if (ctls.length === 0) return undefined;
  const entries: Record<string, [Uint8Array, { level: 0; mtime: Date }]> = {};
  for (const c of ctls) entries[`ctl_${seriesHex}_${c.sequenceNumber}.oer`] = [c.bytes, { level: 0, mtime: ZIP_MTIME }];
  return { bytes: zipSync(entries, { level: 0, mtime: ZIP_MTIME }), filename: `ctl_${seriesHex}_${ctls[0]!.sequenceNumber}.zip` };
}

/** Latest CTL of the directory's series (the home CTL). */
function latestCtl(trust: TrustDir) {
  const c = trust.ctls[trust.ctls.length - 1];
  if (!c) throw new Error(`${trust.dir}: the trust directory has no CTL`);
  return c;
}

/** CompositeCrlSpdu { crl: the given SecuredCrls, homeCtl: latest CTL } (Ieee1609Dot2Data-Unsecured). */
export function buildCompositeCrl(trust: TrustDir, crls: readonly Uint8Array[] = []): Uint8Array {
  const homeCtl = MultiSignedCtlSpdu.decode(latestCtl(trust).bytes);
  const crl = crls.map((b) => SecuredCrl.decode(b));
  return CompositeCrlSpdu.encode({
    protocolVersion: 3,
    content: { unsecuredData: { version: 2, content: { cert: { compositeCrl: { crl, homeCtl } } } } },
  });
}

/** One CrlInfoStatus per (crlCraca, crlSeries), with the latest issueDate of its CRLs. */
export function crlInfoStatus(crls: readonly IssuedCrl[]): CrlInfoStatus[] {
  const by = new Map<string, CrlInfoStatus>();
  for (const c of crls) {
    const key = `${c.craca}/${c.series}`;
    const prev = by.get(key);
    if (!prev || prev.issueDate < c.issueDate) by.set(key, { cracaId: fromHex(c.craca), series: c.series, issueDate: c.issueDate });
  }
  return [...by.values()];
}

/** CertificateManagementInfoStatus from the trust directory (and CRLs), signed by the RA (Ieee1609Dot2Data-Signed). */
export async function buildInfoStatus(trust: TrustDir, ra: Certificate, signer: Signer, crls: readonly IssuedCrl[] = []): Promise<Uint8Array> {
  const lastUpdate = dateToTime32(new Date(trust.manifest.updatedAt));
  const data = await signedSpdu({
    pdu: scmsPdu({
      cert: {
        infoStatus: {
          crl: crlInfoStatus(crls),
          ctl: trust.ctls.length
            ? [{ ctlSeriesId: fromHex(trust.manifest.ctlSeriesId), sequenceNumber: latestCtl(trust).sequenceNumber, lastUpdate }]
            : [],
          caCcf: lastUpdate,
          ma: [],
          ra: ra.toBeSigned.validityPeriod.start,
        },
      },
    }),
    signer,
    certificate: ra,
  });
  return Ieee1609Dot2Data.encode(data);
}

/** Registers the distribution routes on `app`. Trust files are prepared here; CRL-dependent ones per CRL version. */
export async function registerDistribution(app: FastifyInstance, deps: DistributionDeps): Promise<void> {
  const { trust } = deps;
  const series = trust.manifest.ctlSeriesId.toLowerCase();
  const raName = deps.raName ?? 'ra';
  const ra = trust.byName.get(raName);
  if (!ra?.certificate) throw new Error(`${trust.dir}: no decodable RA certificate '${raName}' in the trust directory`);
  const raCert = ra.certificate;
  const raFile: DistributedFile = { bytes: ra.bytes, filename: `ra_${toHex(certificateHashedId8(raCert))}.oer` };

  const caById = new Map<string, DistributedFile>();
  for (const c of trust.certificates) {
    if (!c.certificate || !CA_ROLES.includes(c.role)) continue;
    const id = toHex(certificateHashedId8(c.certificate));
    caById.set(id, { bytes: c.bytes, filename: `ca_${id}.oer` });
  }
  const home = trust.ctls.length ? latestCtl(trust) : undefined;
  const version = (home?.sequenceNumber ?? 0).toString(16);
  const ccf: DistributedFile | undefined = trust.ccf ? { bytes: trust.ccf, filename: `ccf_${version}.oer` } : undefined;
  const crlSource = deps.crl;
  const crls = () => crlSource?.current() ?? [];
  const crlVersion = () => crlSource?.version ?? 0;

  // Rebuilt when the CRLs change (crlVersion), otherwise the same bytes (stable ETag).
  let composite: { at: number; file: DistributedFile } | undefined;
  const compositeFile = (): DistributedFile | undefined => {
    if (!home) return undefined;
    const at = crlVersion();
    if (composite?.at !== at) {
      const current = crls();
      const v = current.length ? Math.max(...current.map((c) => c.issueDate)).toString(16) : version;
      composite = { at, file: { bytes: buildCompositeCrl(trust, current.map((c) => c.crl)), filename: `composite-crl_${v}.oer` } };
    }
    return composite.file;
  };

  // Signed on first use and again when the CRLs change: ECDSA is randomized, and one SPDU keeps the ETag stable.
  let infoStatus: { at: number; file: Promise<DistributedFile> } | undefined;
  const infoStatusFile = () => {
    const at = crlVersion();
    if (infoStatus?.at !== at) {
      const file = buildInfoStatus(trust, raCert, deps.raSigner!, crls()).then((bytes) => ({ bytes, filename: 'certificate-management-info-status.oer' }));
      infoStatus = { at, file };
      file.catch(() => {
        if (infoStatus?.file === file) infoStatus = undefined;
      });
    }
    return infoStatus.file;
  };

  const send = (request: FastifyRequest, reply: FastifyReply, f: DistributedFile) => sendFile(request, reply, f);
  const knownSeries = (request: FastifyRequest): void => {
    const s = hex16Param(request, 'ctlSeriesId');
    if (s !== series) throw notFound(`unknown CTL series ${s}`);
  };

  app.get('/v3/ctl', async (request, reply) => {
    const s = hex16Param(request, 'ctlSeriesId');
    const from = sequenceParam(request, 'ctlSequenceNumber');
    if (s !== series) throw notFound(`unknown CTL series ${s}`);
    const zip = ctlZip(trust, s, from);
    if (!zip) throw notFound(`CTL series ${s} has no CTL with sequence number ${from} or later`);
    return send(request, reply, zip);
  });

  app.get('/v3/ccf-ctl', async (request, reply) => {
    knownSeries(request);
    if (!ccf) throw notFound('no certificate chain file in the trust directory');
    return send(request, reply, ccf);
  });

  app.get('/v3/composite-crl-ctl', async (request, reply) => {
    knownSeries(request);
    const f = compositeFile();
    if (!f) throw notFound('no CTL to build the composite CRL from');
    return send(request, reply, f);
  });

  // 1609.2.1 6.3.5.10: the SecuredCrl of (craca, crlSeries).
  app.get('/v3/crl', async (request, reply) => {
    const craca = hex16Param(request, 'craca');
    const crlSeries = sequenceParam(request, 'crlSeries', 'CrlSeries ::= Uint16');
    const type = queryOf(request).type;
    if (type !== undefined && type !== 'linked' && type !== 'hash') throw badRequest('type: expected linked or hash');
    const kind = type === 'hash' ? 'fullHashCrl' : 'fullLinkedCrl';
    const c = crls().find((x) => x.craca === craca && x.series === crlSeries && x.kind === kind);
    if (!c) throw notFound(`no ${type === 'hash' ? 'hash-based' : 'linkage-based'} CRL for craca ${craca}, crlSeries ${crlSeries}`);
    return send(request, reply, { bytes: c.crl, filename: `crl_${craca}_${crlSeries}${type === 'hash' ? '_hash' : ''}.oer` });
  });

  app.get('/v3/ca-certificate', async (request, reply) => {
    const id = hex16Param(request, 'certId');
    const f = caById.get(id);
    if (!f) throw notFound(`unknown CA certificate ${id}`);
    return send(request, reply, f);
  });

  app.get('/v3/ra-certificate', async (request, reply) => send(request, reply, raFile));

  app.get('/v3/certificate-management-info-status', async (request, reply) => {
    if (!deps.raSigner) throw new ScmsHttpError(503, Ieee1609Dot2Dot1ErrorCode.undefined, 'the RA signing key is not available in this process');
    return send(request, reply, await infoStatusFile());
  });

  for (const kind of ['global', 'local'] as const) {
    app.get(`/v3/${kind}-policy`, async (request, reply) => {
      const signed = (kind === 'global' ? trust.globalPolicy : trust.localPolicy)?.signed;
      if (!signed) throw notFound(`no signed ${kind} policy in the trust directory`);
      return send(request, reply, { bytes: signed, filename: `${kind}-policy.oer` });
    });
  }
}
