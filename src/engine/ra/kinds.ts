/**
 * Certificate kinds at the RA (IEEE 1609.2.1 EeRaInterface EeRaCertRequest / AdditionalParams, AcaRaInterface
 * RaAcaCertRequest; policy deviceTypes, templates/policies/README.md):
 *
 * Kind (how the EE asks). 1609.2.1 has no "kind" field; the EeRaCertRequest tbsCert.id comment ties LinkageData to
 * linkage values ("If the type is LinkageData ... RA replaces that ... with the linkage values"), so:
 *   tbsCert.id linkageData          -> pseudonym
 *   tbsCert.id name / binaryId      -> identification (OBU identification, RSU application / identification)
 *   tbsCert.id none                 -> pseudonym for an OBU butterfly request (what existing EEs send),
 *                                      identification otherwise (RSUs; non-butterfly requests)
 * The policy list checked is deviceTypes[<OBU|RSU>][<pseudonym|identification>]: an empty list means the device
 * type may not request that kind (400-32); a PSID (or SSP) outside it -> 400-30.
 *
 * Form (AdditionalParams, EeRaCertRequest additionalParams comment):
 *   original | unified | compactUnified -> butterfly (9.3); encryptionKey -> non-butterfly, response encrypted to
 *   that key (RaAcaCertRequest certEncKey = encryptionKey -> AcaEeCertResponsePrivateSpdu); absent ->
 *   non-butterfly plain (no certEncKey -> AcaEeCertResponsePlainSpdu, the certificate in the clear).
 *   Non-butterfly: tbsCert.verifyKeyIndicator.verificationKey is the EE's own key (explicit: the certificate key;
 *   implicit: the ECQV request key R_U), passed to the ACA unchanged.
 *
 * Identification: ONE certificate (i = the i-period of the start, j = 0) with the requested id and validity
 * (duration at most identificationValidity, else 400-33), no linkageInfo, no LinkageData.
 *
 * Download names (8.2 / CAMP): butterfly `<request hash 16 hex>_<i hex>.zip` (entries `<i hex>_<j hex>` and
 * `<i hex>.info`, as for pseudonyms: authorization.ts module comment); non-butterfly `<request hash 16 hex>.zip` with
 * the entries `<hash>` (the AcaEeCertResponse{Plain,Private}Spdu; OpenSCMS names that entry with the hash as well,
 * in upper case) and `<hash>.info` (RaEeCertInfoSpdu). The ASN.1 ties RaEeCertInfo to butterfly batches and OpenSCMS
 * writes no .info for a non-butterfly request; it is kept here because the EE reads currentI from it (a superset:
 * a client that ignores it loses nothing).
 */
import type { ToBeSignedCertificate } from '../../codec/index.js';
import type { EeRaCertRequest } from '../../codec/gen/Ieee1609Dot2Dot1EeRaInterface.js';
import type { RaAcaCertRequest } from '../../codec/gen/Ieee1609Dot2Dot1AcaRaInterface.js';
import { toHex } from '../../crypto/bytes.js';
import { fromPublicVerificationKey } from '../../security/certificate.js';
import { durationToSeconds, type IPeriodParams, type Time32 } from '../../security/time.js';
import { ScmsHttpError, Ieee1609Dot2Dot1ErrorCode as Code } from '../http/errors.js';
import type { GlobalPolicy } from '../policy/index.js';
import { butterflyRequestInfo, checkButterflyPolicy, expandCocoons, raAcaCertRequest } from './expand.js';

export type CertificateKindName = 'pseudonym' | 'identification';
export type RequestForm = 'butterfly' | 'plain' | 'encrypted';

export interface RequestClass {
  readonly kind: CertificateKindName;
  readonly form: RequestForm;
}

/** What a non-pseudonym job carries besides the request (JSON-safe). */
export interface KindPlan {
  readonly kind: CertificateKindName;
  readonly form: RequestForm;
  /** i of the certificate (the i-period of its start); j is 0. */
  readonly i: number;
  /** Validity of the certificate: the request's (checked against identificationValidity). */
  readonly validityPeriod: ToBeSignedCertificate['validityPeriod'];
}

const refuse = (status: number, code: number, reason: string): never => {
  throw new ScmsHttpError(status, code, reason);
};

/** Form from AdditionalParams; kind from tbsCert.id and the device type (module comment). */
export function classifyRequest(req: EeRaCertRequest, deviceType: string): RequestClass {
  const ap = req.additionalParams as Record<string, unknown> | undefined;
  const form: RequestForm = !ap ? 'plain' : 'encryptionKey' in ap ? 'encrypted' : 'butterfly';
  const id = req.tbsCert.id as Record<string, unknown>;
  let kind: CertificateKindName;
  if ('linkageData' in id) kind = 'pseudonym';
  else if ('name' in id || 'binaryId' in id) kind = 'identification';
  else kind = deviceType.toUpperCase() === 'OBU' && form === 'butterfly' ? 'pseudonym' : 'identification';
  return { kind, form };
}

/** The pseudonym butterfly path of authorization.ts handles this class unchanged. */
export const isPseudonymButterfly = (c: RequestClass): boolean => c.kind === 'pseudonym' && c.form === 'butterfly';

const sspKey = (s: unknown): string => {
  if (!s || typeof s !== 'object') return '';
  const [alt, v] = Object.entries(s as Record<string, unknown>)[0] ?? [];
  if (alt === undefined) return '';
  return `${alt}:${v instanceof Uint8Array ? toHex(v) : String(v)}`;
};

/** The device type may request the kind at all: its policy list for the kind is not empty (else 400-32). */
export function checkKindAllowed(c: RequestClass, deviceType: string, policy: GlobalPolicy): void {
  const dt = deviceType.toUpperCase() as keyof GlobalPolicy['deviceTypes'];
  if ((policy.deviceTypes[dt]?.[c.kind] ?? []).length === 0) refuse(400, Code.requestedCertificateTypeNotAllowed, `${dt} devices may not request ${c.kind} certificates`);
}

/**
 * Policy of the kind for the device type: kind allowed (non-empty list, else 400-32), each PSID in the
 * enrollment certificate's certRequestPermissions and in the list (400-30), SSP as the list restricts it (400-30).
 */
export function checkKindPermissions(
  req: EeRaCertRequest,
  c: RequestClass,
  enrollmentPerms: NonNullable<ToBeSignedCertificate['certRequestPermissions']>,
  deviceType: string,
  policy: GlobalPolicy,
): void {
  checkKindAllowed(c, deviceType, policy);
  const dt = deviceType.toUpperCase() as keyof GlobalPolicy['deviceTypes'];
  const list = policy.deviceTypes[dt]?.[c.kind] ?? [];
  if (req.tbsCert.appPermissions.length === 0) refuse(400, Code.requestedPermissionsNotAllowed, 'appPermissions is empty');
  const allowedByCert = (psid: bigint) =>
    enrollmentPerms.some((g) => {
      const sp = g.subjectPermissions as Record<string, unknown>;
      if ('all' in sp) return true;
      return ((sp.explicit as Array<{ psid: bigint }>) ?? []).some((r) => BigInt(r.psid) === psid);
    });
  for (const p of req.tbsCert.appPermissions) {
    const psid = BigInt(p.psid);
    if (!allowedByCert(psid)) refuse(400, Code.requestedPermissionsNotAllowed, `psid ${psid} is not in the enrollment certificate's certRequestPermissions`);
    const entry = list.find((e) => BigInt(e.psid) === psid);
    if (!entry) return refuse(400, Code.requestedPermissionsNotAllowed, `psid ${psid} is not allowed in ${dt} ${c.kind} certificates`);
    if (entry.ssp) {
      const want = 'opaque' in entry.ssp ? `opaque:${entry.ssp.opaque}` : `bitmapSsp:${entry.ssp.bitmapSsp}`;
      if (sspKey(p.ssp) !== want) refuse(400, Code.requestedPermissionsNotAllowed, `psid ${psid}: the SSP is not the one ${dt} ${c.kind} certificates allow`);
    }
  }
}

/**
 * Checks of a non-pseudonym-butterfly request (form, curve, butterfly policy, validity) and its plan.
 * `first` is the i-period of the certificate start.
 */
export function planKindRequest(req: EeRaCertRequest, c: RequestClass, policy: GlobalPolicy, first: number): KindPlan {
  if (c.kind === 'pseudonym') refuse(400, Code.requestedCertificateTypeNotAllowed, 'pseudonym certificates are issued with butterfly keys only');
  if (req.type !== 'explicit' && req.type !== 'implicit') refuse(400, Code.requestedCertificateTypeNotAllowed, `unsupported certificate type ${String(req.type)}`);
  try {
    if (c.form === 'butterfly') checkButterflyPolicy(policy, req, butterflyRequestInfo(req).variant);
    else {
      // Non-butterfly: the EE's own key, on a curve the ACA issues on (256-bit, as for butterfly keys).
      const { curve } = fromPublicVerificationKey(req.tbsCert.verifyKeyIndicator.verificationKey);
      if (curve !== 'nistP256' && curve !== 'brainpoolP256r1') throw new Error(`verification key on ${curve}: not issued`);
      if (c.form === 'encrypted') {
        const ek = (req.additionalParams as { encryptionKey: { publicKey: Record<string, unknown> } }).encryptionKey.publicKey;
        const alt = curve === 'nistP256' ? 'eciesNistP256' : 'eciesBrainpoolP256r1';
        if (!(alt in ek)) throw new Error(`encryptionKey is not an ${alt} key`);
      }
    }
  } catch (e) {
    refuse(400, Code.requestedCertificateTypeNotAllowed, (e as Error).message);
  }
  const vp = req.tbsCert.validityPeriod;
  const seconds = durationToSeconds(vp.duration);
  if (seconds > policy.identificationValidity) {
    refuse(400, Code.requestedValidityNotAllowed, `requested validity ${seconds} s exceeds identificationValidity (${policy.identificationValidity} s)`);
  }
  return { kind: c.kind, form: c.form, i: first, validityPeriod: { start: vp.start, duration: vp.duration } };
}

export interface KindAcaRequest {
  readonly i: number;
  readonly j: number;
  readonly request: RaAcaCertRequest;
}

const FLAGS_NONE = '00000000';

/**
 * The RaAcaCertRequest(s) of a non-pseudonym job: butterfly -> the cocoon of (i, 0), the request's id and validity,
 * no linkageInfo (expand.ts raAcaCertRequest); plain / encrypted -> the EE's key as requested, certEncKey =
 * AdditionalParams.encryptionKey for encrypted, absent for plain (AcaRaInterface certEncKey comment).
 */
export function kindRaAcaCertRequests(eeRequest: EeRaCertRequest, plan: KindPlan, opts: { iPeriod: IPeriodParams; generationTime: Time32 }): KindAcaRequest[] {
  const t = eeRequest.tbsCert;
  if (plan.form === 'butterfly') {
    const info = butterflyRequestInfo(eeRequest);
    const [cocoon] = expandCocoons(info, [{ i: plan.i, j: 0 }]);
    const request = raAcaCertRequest({
      info,
      eeRequest,
      cocoon: cocoon!,
      iPeriod: opts.iPeriod,
      generationTime: opts.generationTime,
      id: t.id,
      validityPeriod: plan.validityPeriod,
    });
    return [{ i: plan.i, j: 0, request }];
  }
  const vk = t.verifyKeyIndicator.verificationKey as unknown as Record<string, unknown>;
  const point = Object.values(vk)[0];
  const tbsCert: ToBeSignedCertificate = {
    id: t.id,
    cracaId: new Uint8Array(3),
    crlSeries: 0,
    validityPeriod: plan.validityPeriod,
    ...(t.region ? { region: t.region } : {}),
    ...(t.assuranceLevel ? { assuranceLevel: t.assuranceLevel } : {}),
    appPermissions: t.appPermissions,
    verifyKeyIndicator: eeRequest.type === 'explicit' ? { verificationKey: t.verifyKeyIndicator.verificationKey } : { reconstructionValue: point as never },
  };
  const request: RaAcaCertRequest = {
    version: 2,
    generationTime: opts.generationTime,
    type: eeRequest.type,
    flags: FLAGS_NONE,
    tbsCert: tbsCert as RaAcaCertRequest['tbsCert'],
  };
  if (plan.form === 'encrypted') request.certEncKey = (eeRequest.additionalParams as { encryptionKey: NonNullable<RaAcaCertRequest['certEncKey']> }).encryptionKey;
  return [{ i: plan.i, j: 0, request }];
}

/** The ACA response kinds the RA accepts for a form (pseudonyms: private / cubk, as before). */
export function expectedResponseKinds(form: RequestForm): ReadonlyArray<'private' | 'cubk' | 'plain'> {
  return form === 'plain' ? ['plain'] : form === 'encrypted' ? ['private'] : ['private', 'cubk'];
}

/** Non-butterfly download file `<request hash 16 hex>.zip` (REST-INTERFACE.md: "non-butterfly: `<hash>.zip`"). */
export function nonButterflyFilename(requestHash: Uint8Array | string): string {
  return `${typeof requestHash === 'string' ? requestHash.toLowerCase() : toHex(requestHash)}.zip`;
}

export function parseNonButterflyFilename(name: string): { requestHash: string } | undefined {
  const m = /^([0-9a-fA-F]{16})\.zip$/.exec(name);
  return m ? { requestHash: m[1]!.toLowerCase() } : undefined;
}
