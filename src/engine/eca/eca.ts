/**
 * The ECA: enrollment certificate issuance (IEEE 1609.2.1-2022 6.3.4.2, EcaEe interface,
 * `POST /v3/enrollment-certificate`, synchronous).
 *
 * handleEnrollmentRequest(EeEcaCertRequestSpdu octets):
 *  1. strict COER decode as EeEcaCertRequestSpdu (Ieee1609Dot2Data-SignedCertRequest, SignerSelf)      -> 42
 *  2. the signing key (EeEcaCertRequestSpdu comment): with canonicalId, the canonical key, found from the
 *     canonicalId (canonical-key.ts); without, the requested key tbsCert.verifyKeyIndicator (which then is
 *     the device's canonical key); signature per 1609.2 5.3.1 with signer input H("")                       -> 43
 *  3. the canonical key is registered (RA DeviceRegistry) and not blocked                                -> 21 / 20
 *  4. generationTime: not after now + allowedClockSkew (50), not older than eca-maxAge (70)
 *  5. type allowed (32); certRequestPermissions within the device type's policy `enrollment` list and
 *     the ECA certificate's certIssuePermissions (30); region within the policy regions, the device's
 *     registered region and the ECA's effective region (31); validity: at most enrollmentValidity, inside
 *     the ECA certificate's validity, not starting before generationTime - skew (33), start at most
 *     eca-maxWait after generationTime (72)
 *  6. replay (same SPDU octets accepted before, 60); eca-maxReqs per 7 x 24 h (71); eca-minWait since the
 *     device's previous accepted request (73), counted on generationTime
 *  7. issue (explicit: signed by the ECA; implicit: ECQV, privateKeyInfo = s), respond with an
 *     EcaEeCertResponseSpdu (Ieee1609Dot2Data-Signed, SecurityMgmtPsid, signed with the ECA certificate)
 *  8. record in the ECA tables and tell the registry (markEnrolled). A refusal writes nothing.
 *
 * Successor enrollment (6.3.5.4, successor.ts): handleEnrollmentRequest(bytes, link) for an inner
 * EeEcaCertRequestSpdu forwarded by the RA; step 2 uses the requested key only (no canonicalId), step 3 finds the
 * device through the current enrollment certificate this ECA issued, requestHash is link.requestHash, and the
 * registry records kind 'successor-enrollment'.
 *
 * Successor replay (idempotence): the RA's durable job may forward the same successor request again after a crash
 * between this ECA's answer and the job's completion. A successor request whose inner SPDU was accepted before, with
 * the same link requestHash (the HashedId8 of the RA-side request) and device, is answered with the stored
 * EcaEeCertResponseSpdu octets (eca_requests.response) after steps 1-3 (decoding, signature, device registered and
 * not blocked); the age and rate checks (4, 6) are not applied again, nothing is issued or written, and the registry
 * is told again (markEnrolled is idempotent; it covers a crash between this ECA's commit and that call). The same inner
 * request under another requestHash or device is still a replay (400-60), as is any replay on the EE-facing
 * POST /v3/enrollment-certificate (that answer would hand the certificate to whoever replays the octets).
 *
 * requestHash (EcaEeCertResponse comment): the hash of the EeEcaCertRequestSpdu as received ("calculated
 * without canonicalizing the signature"), as a HashedId8: the low-order 8 octets of SHA-256 (1609.2 6.3.x
 * HashedId8; SHA-256 for the 256-bit curves EEs use, SHA-384 for a P-384 request: the request's hashAlgorithmId).
 */
import {
  EeEcaCertRequestSpdu as EeEcaCertRequestSpduCodec,
  Ieee1609Dot2Data as Ieee1609Dot2DataCodec,
  ScopedCertificateRequest as ScopedCertificateRequestCodec,
  SignedCertificateRequest as SignedCertificateRequestCodec,
  type Certificate,
  type EcaEeCertResponse,
  type EeEcaCertRequest,
  type GeographicRegion,
  type PsidGroupPermissions,
  type PsidSspRange,
  type ToBeSignedCertificate,
} from '../../codec/index.js';
import { toHex, fromHex } from '../../crypto/bytes.js';
import { decodePoint, scalarToBytes, type CurveName } from '../../crypto/curves.js';
import { hashedId8, sha256 } from '../../crypto/hash.js';
import {
  certificateCurve,
  certificateHashedId8,
  decodeCertificate,
  encodeCertificate,
  fromPublicVerificationKey,
  issueExplicitCertificate,
  issueImplicitCertificate,
} from '../../security/certificate.js';
import { regionWithin } from '../../security/chain.js';
import { checkIssuePermissions } from '../../security/permissions.js';
import { scmsPdu, signedSpdu } from '../../security/scms-pdu.js';
import { verifyCertificateRequest } from '../../security/spdu.js';
import {
  durationToSeconds,
  nowTime32,
  time32ToDate,
  validityPeriodContainsPeriod,
  validityPeriodEnd,
  type ValidityPeriod,
} from '../../security/time.js';
import { Ieee1609Dot2Dot1ErrorCode as Code } from '../http/errors.js';
import type { DeviceType as PolicyDeviceType, PsidSsp as PolicyPsidSsp } from '../policy/index.js';
import { WEEK_SECONDS } from '../policy/index.js';
import { CANONICAL_KEY_CURVES, canonicalIdOf, isCanonicalId, type CanonicalKeyCurve, type CertificateRecordInput, type RegisteredDevice } from '../ra/registration.js';
import { recoverSelfSignerKeys } from './canonical-key.js';
import type { EcaDeps } from './deps.js';
import type { DeviceRequestHistory, EcaStoreTx } from './store.js';
import type { SuccessorLink } from './successor.js';

/**
 * ECA members of the 1609.2.1 policy-limit codes ("Table 8 - Error codes", 70–79): the numbering as OpenSCMS
 * (github.com/OpenSCMS/OpenSCMS, scmscommon errors) quotes the table: 70 eca-maxAge, 71 eca-maxReqs, 72 eca-maxWait,
 * 73 eca-minWait (the RA / download members: ra/authorization.ts RaLimitCode). Before, minWait and maxWait were
 * 72 / 73 the other way round here. Status: 429 (with Retry-After) for the rate rules, 400 for the others.
 */
export const EcaLimitCode = Object.freeze({
  /** eca-maxAge exceeded. */
  maxAge: 70,
  /** eca-maxReqs per 7 x 24 h exceeded. */
  maxReqs: 71,
  /** eca-maxWait: requested validity starts too long after generationTime. */
  maxWait: 72,
  /** eca-minWait not respected. */
  minWait: 73,
});

export interface EnrollmentIssued {
  status: 200;
  /** COER EcaEeCertResponseSpdu. */
  body: Uint8Array;
  certificate: Certificate;
  deviceId: string;
  /** HashedId8 of the certificate, hex. */
  hashedId8: string;
}

export interface EnrollmentRefused {
  status: 400 | 403 | 429 | 500 | 503;
  /** 1609.2.1 error code (Ieee-1609.2.1-Error: <status>-<code>). */
  code: number;
  reason: string;
  /** Seconds after which a rate refusal (429) would not recur: the HTTP route's Retry-After. */
  retryAfter?: number;
}

export type EnrollmentResult = EnrollmentIssued | EnrollmentRefused;

/**
 * What the RA registry records of an enrollment certificate this ECA issued (DeviceRegistry.markEnrolled):
 * validity from the certificate's ValidityPeriod, or start / end in Time32 as the ECA tables keep them.
 */
export function enrollmentRecord(
  kind: 'enrollment' | 'successor-enrollment',
  hashedId8: string,
  issuedAt: Date,
  validity: ValidityPeriod | { start: number; end: number },
): CertificateRecordInput & { kind: 'enrollment' | 'successor-enrollment' } {
  const end = 'end' in validity ? validity.end : Math.floor(validityPeriodEnd(validity));
  return { kind, hashedId8, issuer: 'eca', issuedAt, validFrom: time32ToDate(validity.start), validUntil: time32ToDate(end) };
}

class Refusal extends Error {
  constructor(
    readonly status: EnrollmentRefused['status'],
    readonly code: number,
    readonly reason: string,
    readonly retryAfter?: number,
  ) {
    super(reason);
  }
}

const refuse = (status: EnrollmentRefused['status'], code: number, reason: string, retryAfter?: number): never => {
  throw new Refusal(status, code, reason, retryAfter);
};

const refusedOf = (e: Refusal): EnrollmentRefused => ({ status: e.status, code: e.code, reason: e.reason, ...(e.retryAfter === undefined ? {} : { retryAfter: e.retryAfter }) });

const EE_TYPE_ALLOWED = /^[01]{2}0*$/; // only app (bit 0) and enrol (bit 1) of EndEntityType (1609.2 6.4.31)

export class Eca {
  readonly #d: EcaDeps;
  readonly #ecaCurve: CurveName;

  constructor(deps: EcaDeps) {
    this.#d = deps;
    this.#ecaCurve = certificateCurve(deps.eca.certificate, deps.eca.chain);
  }

  /** The EcaEeCertResponse.ecaCertChain: the ECA certificate, then its issuers up to the root. */
  get ecaCertChain(): Certificate[] {
    return [this.#d.eca.certificate, ...this.#d.eca.chain];
  }

  /** With `successor`: a successor request forwarded by the RA (successor.ts). */
  async handleEnrollmentRequest(bytes: Uint8Array, successor?: SuccessorLink): Promise<EnrollmentResult> {
    try {
      return await this.#handle(bytes, successor);
    } catch (e) {
      if (e instanceof Refusal) return refusedOf(e);
      throw e;
    }
  }

  async #handle(bytes: Uint8Array, successor?: SuccessorLink): Promise<EnrollmentIssued> {
    const { policy, clock, registry, store } = this.#d;
    const opts = this.#d.options ?? {};

    // 1. Strict decode (trailing octets, constraints of EeEcaCertRequestSpdu: SignerSelf, version 2, cracaId 000000,
    //    crlSeries 0, certRequestPermissions PRESENT, verificationKey, ...).
    let spdu;
    try {
      spdu = EeEcaCertRequestSpduCodec.decode(bytes);
    } catch (e) {
      return refuse(400, Code.parsingFailure, `not an EeEcaCertRequestSpdu: ${(e as Error).message}`);
    }
    if (spdu.protocolVersion !== 3) refuse(400, Code.parsingFailure, `Ieee1609Dot2Data.protocolVersion ${spdu.protocolVersion}, expected 3`);
    if (!('signedCertificateRequest' in spdu.content)) {
      refuse(400, Code.parsingFailure, `content is ${Object.keys(spdu.content)[0]}, expected signedCertificateRequest`);
    }
    const scr = (spdu.content as { signedCertificateRequest: Extract<typeof spdu.content, { signedCertificateRequest: unknown }>['signedCertificateRequest'] })
      .signedCertificateRequest;
    const req: EeEcaCertRequest = scr.tbsRequest.content['eca-ee'].eeEcaCertRequest;
    const alg = scr.hashAlgorithmId === 'sha384' ? 'sha384' : 'sha256';
    const requestHash = successor ? successor.requestHash : hashedId8(bytes, alg);
    const requestDigest = toHex(sha256(bytes));

    // 2. Who signed.
    let requested: { curve: CurveName; publicKey: Uint8Array };
    try {
      requested = fromPublicVerificationKey(req.tbsCert.verifyKeyIndicator.verificationKey);
      decodePoint(requested.curve, requested.publicKey);
    } catch (e) {
      return refuse(400, Code.parsingFailure, `tbsCert.verifyKeyIndicator: ${(e as Error).message}`);
    }
    let signerKey: { curve: CurveName; publicKey: Uint8Array };
    if (successor && req.canonicalId !== undefined) {
      refuse(400, Code.invalidContent, 'a successor request is signed with the new enrollment key and carries no canonicalId');
    }
    if (req.canonicalId !== undefined) {
      const id = req.canonicalId.toLowerCase();
      if (!isCanonicalId(id)) refuse(400, Code.enrollmentCertificateUnknown, `canonicalId ${JSON.stringify(req.canonicalId)} is not a registered canonical id`);
      // tbsRequest octets from the generic decoding (a value of the parameterized SPDU type does not re-encode as one)
      const generic = Ieee1609Dot2DataCodec.decode(bytes).content as { signedCertificateRequest: Uint8Array };
      const tbsBytes = ScopedCertificateRequestCodec.encode(SignedCertificateRequestCodec.decode(generic.signedCertificateRequest).tbsRequest);
      const rec = recoverSelfSignerKeys(tbsBytes, scr.signature);
      const match = rec?.publicKeys.find((k) => canonicalIdOf(k) === id);
      if (!rec || !match) {
        const known = await registry.lookupByCanonicalId(id);
        return known
          ? refuse(400, Code.signatureFailure, 'the request is not signed with the canonical key of canonicalId')
          : refuse(400, Code.enrollmentCertificateUnknown, `canonicalId ${id} is not registered`);
      }
      signerKey = { curve: rec.curve, publicKey: match };
    } else {
      signerKey = requested; // signed with the requested key, which is then the canonical key
    }
    const verified = verifyCertificateRequest(bytes, { resolveSigner: () => signerKey });
    if (!verified.ok) refuse(400, Code.signatureFailure, `signature: ${verified.reason}`);

    // 3. Registered and not blocked (successor: the device of the current enrollment certificate this ECA issued).
    let device: RegisteredDevice | undefined;
    if (successor) {
      const current = await store.certificate(successor.currentEnrollment.toLowerCase());
      if (!current || current.deviceId !== successor.deviceId) refuse(400, Code.enrollmentCertificateUnknown, 'the current enrollment certificate was not issued by this ECA to that device');
      device = await registry.lookupByCanonicalId(current!.canonicalId);
    } else {
      if (!(CANONICAL_KEY_CURVES as readonly string[]).includes(signerKey.curve)) {
        refuse(400, Code.enrollmentCertificateUnknown, `canonical keys on ${signerKey.curve} are not registered`);
      }
      device = await registry.lookupByCanonicalKey(signerKey.publicKey, signerKey.curve as CanonicalKeyCurve);
    }
    if (!device) return refuse(400, Code.enrollmentCertificateUnknown, 'the canonical key is not registered');
    if (device.state === 'blocked') refuse(403, Code.enrollmentCertificateBlocked, 'the device is blocked');

    // Successor replay (module comment): the stored answer, before the age and rate checks.
    if (successor) {
      const again = await this.#successorReplay(requestDigest, successor, device);
      if (again) return again;
    }

    // 4. Generation time.
    const now = nowTime32(clock);
    this.#checkGenerationTime(req, now);

    // 5. Content.
    const type = req.type;
    if (type !== 'explicit' && type !== 'implicit') return refuse(400, Code.requestedCertificateTypeNotAllowed, `certificate type ${String(type)} is not supported`);
    if (!(opts.allowedTypes ?? ['explicit', 'implicit']).includes(type)) refuse(400, Code.requestedCertificateTypeNotAllowed, `${type} enrollment certificates are not issued`);
    if (type === 'implicit') {
      if (this.#d.eca.privateScalar === undefined) refuse(400, Code.requestedCertificateTypeNotAllowed, 'this ECA issues explicit enrollment certificates only');
      if (requested.curve !== this.#ecaCurve) {
        refuse(400, Code.requestedCertificateTypeNotAllowed, `implicit certificates of this ECA are on ${this.#ecaCurve}, the requested key is on ${requested.curve}`);
      }
    }
    const tbs = this.#enrollmentTbs(req, device, type);
    const validity = tbs.validityPeriod;

    // 6. Nothing stored so far; cheap replay / rate pre-check before spending a signature.
    await store.transaction((tx) => this.#checkHistory(tx, requestDigest, device.deviceId, req.generationTime));

    // 7. Issue and answer.
    const { eca } = this.#d;
    let certificate: Certificate;
    let privateKeyInfo: Uint8Array | undefined;
    if (type === 'explicit') {
      certificate = await issueExplicitCertificate({ tbs, issuer: eca.certificate, signer: eca.signer });
    } else {
      const issued = issueImplicitCertificate({
        tbs,
        issuer: eca.certificate,
        issuerPrivateScalar: eca.privateScalar!,
        requestPublicKey: requested.publicKey,
        curve: this.#ecaCurve,
      });
      certificate = issued.certificate;
      privateKeyInfo = scalarToBytes(this.#ecaCurve, issued.privateKeyContribution);
    }
    const response: EcaEeCertResponse = {
      version: 2,
      generationTime: now,
      requestHash,
      ecaCertChain: this.ecaCertChain,
      certificate,
      ...(privateKeyInfo ? { privateKeyInfo } : {}),
    };
    const signed = await signedSpdu({ pdu: scmsPdu({ 'eca-ee': { ecaEeCertResponse: response } }), signer: eca.signer, certificate: eca.certificate });
    const body = Ieee1609Dot2DataCodec.encode(signed);

    // 8. Record (checks again inside the writing transaction: concurrent duplicates lose here).
    const certHashedId8 = toHex(certificateHashedId8(certificate));
    const receivedAt = clock.now();
    try {
      await store.transaction(async (tx) => {
        await this.#checkHistory(tx, requestDigest, device.deviceId, req.generationTime);
        await tx.recordEnrollment({
          requestDigest,
          requestHash: toHex(requestHash),
          deviceId: device.deviceId,
          canonicalId: device.canonicalId,
          generationTime: req.generationTime,
          receivedAt,
          ...(successor ? { response: body } : {}),
          certificate: {
            hashedId8: certHashedId8,
            type,
            bytes: encodeCertificate(certificate),
            validFrom: validity.start,
            validUntil: Math.floor(validityPeriodEnd(validity)),
          },
        });
      });
    } catch (e) {
      // A concurrent run of the same successor request committed first: answer what it stored.
      const again = successor && e instanceof Refusal && e.code === Code.invalidContent ? await this.#successorReplay(requestDigest, successor, device) : undefined;
      if (again) return again;
      throw e;
    }
    try {
      await registry.markEnrolled(device.deviceId, enrollmentRecord(successor ? 'successor-enrollment' : 'enrollment', certHashedId8, receivedAt, validity));
    } catch (e) {
      await store.removeEnrollment(requestDigest, certHashedId8);
      return refuse(503, Code.undefined, `the device registry could not record the enrollment: ${(e as Error).message}`);
    }
    return { status: 200, body, certificate, deviceId: device.deviceId, hashedId8: certHashedId8 };
  }

  /**
   * The stored answer to a successor request accepted before (module comment), or undefined when this inner request
   * was never accepted; a match of the digest under another requestHash / device, or without a stored response,
   * is a replay (400-60).
   */
  async #successorReplay(requestDigest: string, link: SuccessorLink, device: RegisteredDevice): Promise<EnrollmentIssued | undefined> {
    const prior = await this.#d.store.acceptedRequest(requestDigest);
    if (!prior) return undefined;
    if (prior.requestHash !== toHex(link.requestHash) || prior.deviceId !== device.deviceId || !prior.response || !prior.certificate) {
      return refuse(400, Code.invalidContent, 'replayed request: this EeEcaCertRequestSpdu was accepted before under another request');
    }
    const c = prior.certificate;
    try {
      await this.#d.registry.markEnrolled(device.deviceId, enrollmentRecord('successor-enrollment', c.hashedId8, c.issuedAt, { start: c.validFrom, end: c.validUntil }));
    } catch (e) {
      return refuse(503, Code.undefined, `the device registry could not record the enrollment: ${(e as Error).message}`);
    }
    return { status: 200, body: prior.response, certificate: decodeCertificate(c.certificate), deviceId: device.deviceId, hashedId8: c.hashedId8 };
  }

  async #checkHistory(tx: EcaStoreTx, requestDigest: string, deviceId: string, generationTime: number): Promise<void> {
    if (await tx.hasRequest(requestDigest)) refuse(400, Code.invalidContent, 'replayed request: this EeEcaCertRequestSpdu was accepted before');
    this.#checkRate(await tx.history(deviceId, generationTime - WEEK_SECONDS), generationTime);
  }

  /** eca-maxReqs per 7 x 24 h and eca-minWait on the device's accepted requests (`h` counted since generationTime - 7 x 24 h). */
  #checkRate(h: DeviceRequestHistory, generationTime: number): void {
    const { policy } = this.#d;
    if (h.countSince >= policy['eca-maxReqs']) {
      // Retry-After: at least until the window can have moved past one request (the oldest is not tracked: eca-minWait).
      refuse(429, EcaLimitCode.maxReqs, `eca-maxReqs: ${h.countSince} enrollment requests in the last 7 x 24 h (limit ${policy['eca-maxReqs']})`, Math.max(1, policy['eca-minWait']));
    }
    if (h.latestGenerationTime !== undefined && generationTime - h.latestGenerationTime < policy['eca-minWait']) {
      const left = policy['eca-minWait'] - (generationTime - h.latestGenerationTime);
      refuse(429, EcaLimitCode.minWait, `eca-minWait: ${generationTime - h.latestGenerationTime} s since the previous request (minimum ${policy['eca-minWait']} s)`, Math.max(1, left));
    }
  }

  /** Step 4: generationTime not after now + allowedClockSkew, not older than eca-maxAge. */
  #checkGenerationTime(req: EeEcaCertRequest, now: number): void {
    const { policy } = this.#d;
    if (req.generationTime > now + policy.allowedClockSkew) {
      refuse(400, Code.generationTimeInFuture, `generationTime ${time32ToDate(req.generationTime).toISOString()} is in the future`);
    }
    if (now - req.generationTime > policy['eca-maxAge']) {
      refuse(400, EcaLimitCode.maxAge, `generationTime is ${now - req.generationTime} s old, eca-maxAge is ${policy['eca-maxAge']} s`);
    }
  }

  /**
   * Step 5 (permissions, region, validity) and the ToBeSignedCertificate of the enrollment certificate (step 7),
   * checked against the ECA certificate's certIssuePermissions (1609.2 5.1.2.4): the online path (#handle) and the
   * factory path (checkFactoryRequest) build and check it here.
   */
  #enrollmentTbs(req: EeEcaCertRequest, device: RegisteredDevice, type: 'explicit' | 'implicit'): ToBeSignedCertificate {
    const opts = this.#d.options ?? {};
    const permissions = this.#checkPermissions(req, device);
    const region = this.#checkRegion(req, device);
    const validity = this.#checkValidity(req);
    const tbs: ToBeSignedCertificate = {
      id: opts.certificateId === 'requested' ? req.tbsCert.id : { none: null },
      cracaId: opts.cracaId ?? new Uint8Array(3),
      crlSeries: opts.crlSeries ?? 0,
      validityPeriod: validity,
      certRequestPermissions: permissions,
      verifyKeyIndicator: type === 'explicit' ? { verificationKey: req.tbsCert.verifyKeyIndicator.verificationKey } : { reconstructionValue: { fill: null } },
    };
    if (region) tbs.region = region;
    if (req.tbsCert.assuranceLevel !== undefined) tbs.assuranceLevel = req.tbsCert.assuranceLevel;
    if (req.tbsCert.canRequestRollover !== undefined) tbs.canRequestRollover = null;
    if (req.tbsCert.encryptionKey !== undefined) tbs.encryptionKey = req.tbsCert.encryptionKey;
    const problems = checkIssuePermissions(this.#d.eca.certificate, { version: 3, type: 'explicit', issuer: { self: 'sha256' }, toBeSigned: tbs }, {
      issuer: 'ECA certificate',
      subject: 'enrollment certificate',
    });
    if (problems.length > 0) refuse(400, Code.requestedPermissionsNotAllowed, problems.join('; '));
    return tbs;
  }

  /**
   * Steps 3 (blocked), 4, 5, the issue-permission check of step 7 and the rate limits of step 6 for an
   * explicit-certificate EeEcaCertRequest that reached the ECA over another authenticated channel (the factory line,
   * factory.ts), for a device already looked up, with `history` (the device's accepted requests, as
   * EcaStoreTx.history) read from the caller's store: the ToBeSignedCertificate this ECA would issue, built as in
   * #handle, or the refusal. Records nothing.
   */
  checkFactoryRequest(
    req: EeEcaCertRequest,
    device: RegisteredDevice,
    history: (deviceId: string, since: number) => DeviceRequestHistory,
  ): { tbs: ToBeSignedCertificate } | EnrollmentRefused {
    try {
      if (device.state === 'blocked') refuse(403, Code.enrollmentCertificateBlocked, 'the device is blocked');
      const opts = this.#d.options ?? {};
      this.#checkGenerationTime(req, nowTime32(this.#d.clock));
      if (req.type !== 'explicit' || !(opts.allowedTypes ?? ['explicit', 'implicit']).includes('explicit')) {
        refuse(400, Code.requestedCertificateTypeNotAllowed, 'the factory path issues explicit enrollment certificates only');
      }
      const tbs = this.#enrollmentTbs(req, device, 'explicit');
      this.#checkRate(history(device.deviceId, req.generationTime - WEEK_SECONDS), req.generationTime);
      return { tbs };
    } catch (e) {
      if (e instanceof Refusal) return { status: e.status, code: e.code, reason: e.reason };
      throw e;
    }
  }

  /** certRequestPermissions within the policy's `enrollment` list of the device type (1609.2 6.4.28). */
  #checkPermissions(req: EeEcaCertRequest, device: RegisteredDevice): PsidGroupPermissions[] {
    const dt = device.deviceType.toUpperCase() as PolicyDeviceType;
    const allowed = this.#d.policy.deviceTypes[dt]?.enrollment ?? [];
    const groups = req.tbsCert.certRequestPermissions;
    if (groups.length === 0) refuse(400, Code.requestedPermissionsNotAllowed, 'certRequestPermissions is empty');
    const out: PsidGroupPermissions[] = [];
    for (const [i, g] of groups.entries()) {
      const where = `certRequestPermissions[${i}]`;
      const sp = g.subjectPermissions as Record<string, unknown>;
      if (!('explicit' in sp)) refuse(400, Code.requestedPermissionsNotAllowed, `${where}: subjectPermissions all is not allowed for ${dt} devices`);
      const ranges = sp.explicit as PsidSspRange[];
      if (ranges.length === 0) refuse(400, Code.requestedPermissionsNotAllowed, `${where}: no PSIDs`);
      for (const r of ranges) {
        const entry = allowed.find((a) => BigInt(a.psid) === r.psid);
        if (!entry) refuse(400, Code.requestedPermissionsNotAllowed, `${where}: psid ${r.psid} is not allowed for ${dt} devices`);
        const why = sspRangeAllowed(r, entry!);
        if (why) refuse(400, Code.requestedPermissionsNotAllowed, `${where}: psid ${r.psid}: ${why}`);
      }
      const eeType = g.eeType ?? '10000000';
      if (!EE_TYPE_ALLOWED.test(eeType) || !eeType.slice(0, 2).includes('1')) {
        refuse(400, Code.requestedPermissionsNotAllowed, `${where}: eeType ${eeType}: enrollment certificates request app and/or enrol certificates only`);
      }
      out.push(g);
    }
    return out;
  }

  /** Region: within policy regions, the device's registered region and the ECA's effective region (1609.2 5.1.2.4). */
  #checkRegion(req: EeEcaCertRequest, device: RegisteredDevice): GeographicRegion | undefined {
    const policyRegion: GeographicRegion = { identifiedRegion: this.#d.policy.regions.map((c) => ({ countryOnly: c })) };
    const deviceRegion: GeographicRegion | undefined = device.region?.length ? { identifiedRegion: device.region.map((c) => ({ countryOnly: c })) } : undefined;
    const region = req.tbsCert.region ?? deviceRegion;
    if (!region) return undefined;
    const bounds: Array<[string, GeographicRegion | undefined]> = [
      ['the policy regions', policyRegion],
      ["the device's registered region", deviceRegion],
      ["the ECA's region", this.#ecaRegion()],
    ];
    for (const [name, outer] of bounds) {
      if (!outer) continue;
      const why = regionWithin(region, outer);
      if (why) refuse(400, Code.requestedRegionNotAllowed, `requested region is not within ${name}: ${why}`);
    }
    return region;
  }

  #ecaRegion(): GeographicRegion | undefined {
    for (const c of this.ecaCertChain) if (c.toBeSigned.region) return c.toBeSigned.region;
    return undefined;
  }

  #checkValidity(req: EeEcaCertRequest): ValidityPeriod {
    const { policy, eca } = this.#d;
    const vp = req.tbsCert.validityPeriod;
    const seconds = durationToSeconds(vp.duration);
    if (seconds > policy.enrollmentValidity) {
      refuse(400, Code.requestedValidityNotAllowed, `requested validity ${seconds} s exceeds enrollmentValidity ${policy.enrollmentValidity} s`);
    }
    if (vp.start < req.generationTime - policy.allowedClockSkew) {
      refuse(400, Code.requestedValidityNotAllowed, 'requested validity starts before the generation time');
    }
    if (vp.start - req.generationTime > policy['eca-maxWait']) {
      refuse(400, EcaLimitCode.maxWait, `requested validity starts ${vp.start - req.generationTime} s after generationTime (eca-maxWait ${policy['eca-maxWait']} s)`);
    }
    if (!validityPeriodContainsPeriod(eca.certificate.toBeSigned.validityPeriod, vp)) {
      refuse(400, Code.requestedValidityNotAllowed, "requested validity is not within the ECA certificate's validity");
    }
    return { start: vp.start, duration: vp.duration };
  }
}

/** undefined when the requested SSP range is within the policy entry (no ssp: any SSP). */
function sspRangeAllowed(r: PsidSspRange, entry: PolicyPsidSsp): string | undefined {
  if (entry.ssp === undefined) return undefined;
  const range = r.sspRange as Record<string, unknown> | undefined;
  const want = 'opaque' in entry.ssp ? { kind: 'opaque', hex: entry.ssp.opaque } : { kind: 'bitmapSsp', hex: entry.ssp.bitmapSsp };
  if (range === undefined || 'all' in range) return `policy restricts the SSP to ${want.kind} ${want.hex}; any SSP requested`;
  if (want.kind === 'opaque' && 'opaque' in range) {
    const bad = (range.opaque as Uint8Array[]).find((o) => toHex(o) !== want.hex);
    return bad ? `SSP ${toHex(bad)} is not the policy's ${want.hex}` : undefined;
  }
  if (want.kind === 'bitmapSsp' && 'bitmapSspRange' in range) {
    const b = range.bitmapSspRange as { sspValue: Uint8Array; sspBitmask: Uint8Array };
    const v = fromHex(want.hex);
    // every SSP the range admits must equal the policy's: all bits fixed by the mask and the value equal
    return b.sspBitmask.every((m) => m === 0xff) && toHex(b.sspValue) === toHex(v) ? undefined : `SSP range is wider than the policy's bitmapSsp ${want.hex}`;
  }
  return 'SSP range of another kind than the policy entry';
}
