/**
 * Authorization CA: pseudonym (and other authorization) certificates from RaAcaCertRequestSpdus
 * (IEEE 1609.2.1 Ieee1609Dot2Dot1AcaRaInterface, Ieee1609Dot2Dot1Protocol; butterfly keys 9.3).
 *
 * Per request: verify the RA's SignedCertificateRequest (RaAcaCertRequestSpdu, SignerSingleCert with an RaSsp
 * certificate the ACA trusts), decrypt encPlv1 / encPlv2 with the LA-ACA shared keys (src/engine/la/la.ts),
 * lv = plv1 XOR plv2 into tbsCert.id.linkageData {iCert, linkage-value}, replace cracaId / crlSeries
 * (RaAcaCertRequest note), then
 *   - explicit + butterflyExplicit: random c, key B + c*G (crypto/butterfly acaExplicitKey), privateKeyInfo = c;
 *   - implicit: ECQV with R_U = B (the k of ECQV is the randomisation, also for compact unified),
 *     privateKeyInfo = s (AcaEeCertResponse privateKeyInfo comment);
 * and the AcaEeCertResponse goes out as (AcaRaCertResponse.acaResponse, certEncKey comment):
 *   - certEncKey present, cubk clear: AcaEeCertResponsePrivateSpdu = Ieee1609Dot2Data-EncryptedSigned (encrypted
 *     with rekRecipInfo to certEncKey, then signed by this ACA certificate);
 *   - certEncKey absent, cubk set: AcaEeCertResponseCubkSpdu = Ieee1609Dot2Data-Encrypted to the request's
 *     verification key Bt (rekRecipInfo); valid only if the ACA certificate has flags usesCubk;
 *   - both absent: AcaEeCertResponsePlainSpdu.
 * Identification / application certificates and non-butterfly requests (ra/kinds.ts) come without linkageInfo:
 * the requested id (name / binaryId / none) is kept, flags are clear, and the key in tbsCert is the EE's own
 * (explicit: certified as is, no privateKeyInfo; implicit: ECQV, privateKeyInfo = s); certEncKey present ->
 * private (encrypted to AdditionalParams.encryptionKey), absent -> plain. LinkageData without linkageInfo is
 * refused.
 * AcaRaCertResponse { requestHash = HashedId8(SHA-256(COER RaAcaCertRequestSpdu)) } signed as
 * AcaRaCertResponseSpdu. The ACA sees the RA, never the EE: requests carry no EE identifier.
 *
 * Batches (speed, same outputs): `issue` verifies every request first, then unwraps all PLV data keys per LA key in
 * one AES pass, computes all ECQV reconstruction values / butterfly keys B + c*G with one shared field inversion,
 * and answers each request; a failing request gets its own error and does not affect the others.
 */
import {
  HashAlgorithm as HashAlgorithmCodec,
  Signature as SignatureCodec,
  SignerIdentifier as SignerIdentifierCodec,
  Ieee1609Dot2Data as Ieee1609Dot2DataCodec,
  ScmsPdu as ScmsPduCodec,
  SecurityMgmtSsp as SecurityMgmtSspCodec,
  SymmetricEncryptionKey as SymmetricEncryptionKeyCodec,
  type Certificate,
  type Ieee1609Dot2Data,
  type PublicEncryptionKey,
  type ScmsPdu,
  type SignerIdentifier,
  type SymmetricCiphertext,
  type ToBeSignedData,
  type ToBeSignedCertificate,
} from '../../codec/index.js';
import type { EncryptedIndividualPLV, RaAcaCertRequest } from '../../codec/gen/Ieee1609Dot2Dot1AcaRaInterface.js';
import { aesCcmDecrypt, aesCcmDecryptMany } from '../../crypto/aesccm.js';
import { bigIntToBytes, concat, toHex, wipe } from '../../crypto/bytes.js';
import { acaExplicitKeys, type ButterflyCurve } from '../../crypto/butterfly.js';
import { curve, decodeAffine, type AffinePoint, type CurveName } from '../../crypto/curves.js';
import { sha256 } from '../../crypto/hash.js';
import { linkageValue } from '../../crypto/linkage.js';
import {
  certificateCurve,
  certificateHashedId8,
  certificatePublicKey,
  eccPointToBytes,
  fromPublicVerificationKey,
  issueExplicitCertificate,
  issueImplicitCertificates,
  sign1609Dot2,
  verificationKeyIndicator,
  type EccCurvePoint,
} from '../../security/certificate.js';
import { decryptDataDetailed, encryptData, symmetricKeyId, type EciesPrivate } from '../../security/encryption.js';
import { scmsPdu, SECURITY_MGMT_PSID, unsecuredSpdu } from '../../security/scms-pdu.js';
import type { Signer } from '../../security/signer.js';
import {
  PROTOCOL_VERSION,
  toBeSignedDataBytes,
  unsecuredData,
  verifyCertificateRequest,
  verifySignedData,
  type ResolvedSigner,
} from '../../security/spdu.js';
import { nowTime32, systemClock, type Clock } from '../../security/time.js';
import type { LaKeyClient } from '../la/la.js';

export type AcaErrorCode = 'malformed' | 'untrusted-ra' | 'bad-signature' | 'invalid-request' | 'linkage' | 'issuance';

export class AcaError extends Error {
  override readonly name = 'AcaError';
  constructor(
    readonly code: AcaErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Per-request outcome of a batch. */
export type AcaIssueResult = { ok: true; response: Uint8Array } | { ok: false; code: AcaErrorCode; error: string };

/** What the RA talks to (in-process: the AcaService; later HTTP). COER RaAcaCertRequestSpdu in, COER AcaRaCertResponseSpdu out. */
export interface AcaClient {
  issue(requests: readonly Uint8Array[]): Promise<AcaIssueResult[]>;
}

export interface AcaServiceOptions {
  /** The ACA certificate (issues the certificates, signs responses). */
  readonly certificate: Certificate;
  readonly signer: Signer;
  /** The ACA's private scalar: needed for ECQV (implicit certificates); explicit-only ACAs may leave it out. */
  readonly privateScalar?: bigint;
  /** Decryption of data sent to the ACA certificate's encryptionKey (LA key deliveries). */
  readonly encryptionKey: EciesPrivate;
  /** RA certificates whose RaAcaCertRequestSpdus are accepted (matched by HashedId8). */
  readonly raCertificates: readonly Certificate[];
  /** LA certificates (LaSsp) and how to reach each LA for its shared PLV key. */
  readonly laCertificates: readonly Certificate[];
  readonly laKeys: readonly LaKeyClient[];
  /** cracaId / crlSeries written into issued certificates (RaAcaCertRequest note). Default 000000 / 1. */
  readonly cracaId?: Uint8Array;
  readonly crlSeries?: number;
  readonly clock?: Clock;
}

/** The SecurityMgmtSsp of a certificate's psid-35 appPermissions entry, or undefined. */
export function securityMgmtSspOf(cert: Certificate): ReturnType<typeof SecurityMgmtSspCodec.decode> | undefined {
  for (const p of cert.toBeSigned.appPermissions ?? []) {
    if (BigInt(p.psid) !== SECURITY_MGMT_PSID || !p.ssp || !('opaque' in p.ssp)) continue;
    try {
      return SecurityMgmtSspCodec.decode(p.ssp.opaque);
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/**
 * An ECIES PublicEncryptionKey as curve + point; the rekRecipInfo recipientId is then computed over the canonical
 * (compressed) PublicEncryptionKey whatever form the RA carried (it may send uncompressed points).
 */
export function publicEncryptionKeyPoint(k: PublicEncryptionKey): { curve: 'nistP256' | 'brainpoolP256r1'; publicKey: Uint8Array } {
  const pk = k.publicKey as Record<string, unknown>;
  if ('eciesNistP256' in pk) return { curve: 'nistP256', publicKey: eccPointToBytes(pk.eciesNistP256 as EccCurvePoint) };
  if ('eciesBrainpoolP256r1' in pk) return { curve: 'brainpoolP256r1', publicKey: eccPointToBytes(pk.eciesBrainpoolP256r1 as EccCurvePoint) };
  throw new AcaError('invalid-request', `unsupported public encryption key ${Object.keys(pk)[0]}`);
}

/** A trusted signer certificate with its key decoded once (uncompressed); the bare certificate if that fails. */
function withKey(c: Certificate): ResolvedSigner {
  try {
    return { certificate: c, publicKey: certificatePublicKey(c) };
  } catch {
    return c;
  }
}

/** A verified request, ready for issuance (AcaService #prepare). */
interface Prepared {
  readonly requestSpdu: Uint8Array;
  readonly req: RaAcaCertRequest;
  /** The tbs to certify: request tbs with cracaId / crlSeries replaced and the linkage value in place. */
  readonly tbs: ToBeSignedCertificate;
  /** B (uncompressed between our components) or the EE's own key. */
  readonly requestKey: Uint8Array;
  readonly butterflyExplicit: boolean;
  readonly cubk: boolean;
}

/** The key work of one request: an implicit certificate with s, or the explicit key (and c) to certify. */
type IssuedKey =
  | { kind: 'implicit'; certificate: Certificate; privateKeyContribution: bigint }
  | { kind: 'explicit'; key: Uint8Array; privateKeyInfo?: Uint8Array };

/** AcaResponse alternatives (AcaRaInterface AcaResponse ::= CHOICE { plain, private, cubk, ... }) and their COER tags. */
type AcaResponseKind = 'plain' | 'private' | 'cubk';
const ACA_RESPONSE_TAG: Record<AcaResponseKind, number> = { plain: 0x80, private: 0x81, cubk: 0x82 };

const FLAG_BUTTERFLY_EXPLICIT = 0;
const FLAG_CUBK = 1;
const bit = (flags: string, n: number): boolean => flags[n] === '1';

function ccmOpen(key: Uint8Array, ct: SymmetricCiphertext, what: string): Uint8Array {
  if (!('aes128ccm' in ct)) throw new AcaError('linkage', `${what}: unsupported symmetric ciphertext`);
  try {
    return aesCcmDecrypt(key, ct.aes128ccm.nonce, ct.aes128ccm.ccmCiphertext);
  } catch {
    throw new AcaError('linkage', `${what}: AES-CCM tag check failed`);
  }
}

export class AcaService implements AcaClient {
  readonly certificate: Certificate;
  readonly #signer: Signer;
  readonly #d: bigint | undefined;
  readonly #enc: EciesPrivate;
  /** RA certificates by HashedId8 (hex), with their verification keys decoded once (uncompressed). */
  readonly #ras: Map<string, ResolvedSigner>;
  /** Whether each trusted RA certificate (by HashedId8 hex) carries an RaSsp. */
  readonly #raSsp: Map<string, boolean>;
  readonly #las: Map<string, { cert: Certificate; laId: number }>;
  readonly #laKeys: Map<number, LaKeyClient>;
  /** recipientId (hex) -> { laId, key }. */
  readonly #plvKeys = new Map<string, { laId: number; key: Uint8Array }>();
  readonly #cracaId: Uint8Array;
  readonly #crlSeries: number;
  readonly #clock: Clock;
  readonly #curve: ButterflyCurve;
  readonly #usesCubk: boolean;
  /** COER SignerIdentifier { certificate: [this ACA's certificate] }. */
  #signerId: Uint8Array | undefined;

  constructor(opts: AcaServiceOptions) {
    this.certificate = opts.certificate;
    this.#signer = opts.signer;
    this.#d = opts.privateScalar;
    this.#enc = opts.encryptionKey;
    this.#ras = new Map(opts.raCertificates.map((c) => [toHex(certificateHashedId8(c)), withKey(c)]));
    this.#raSsp = new Map(opts.raCertificates.map((c) => {
      const ssp = securityMgmtSspOf(c);
      return [toHex(certificateHashedId8(c)), ssp !== undefined && 'ra' in ssp];
    }));
    this.#las = new Map();
    for (const c of opts.laCertificates) {
      const ssp = securityMgmtSspOf(c);
      if (!ssp || !('la' in ssp)) throw new AcaError('invalid-request', 'an LA certificate without LaSsp');
      this.#las.set(toHex(certificateHashedId8(c)), { cert: c, laId: ssp.la.laId });
    }
    this.#laKeys = new Map(opts.laKeys.map((l) => [l.laId, l]));
    this.#cracaId = opts.cracaId ?? new Uint8Array(3);
    this.#crlSeries = opts.crlSeries ?? 1;
    this.#clock = opts.clock ?? systemClock;
    const c = certificateCurve(opts.certificate);
    if (c !== 'nistP256' && c !== 'brainpoolP256r1') throw new AcaError('issuance', `butterfly issuance needs a 256-bit ACA curve, not ${c}`);
    this.#curve = c;
    this.#usesCubk = opts.certificate.toBeSigned.flags?.[0] === '1';
  }

  /**
   * Processes a batch of RaAcaCertRequestSpdus (COER); one result per request, in order. The key arithmetic of the
   * batch is shared (one field inversion for all ECQV reconstruction values / butterfly keys B + c*G), so callers
   * (RA, provisioning) should pass many requests per call.
   */
  async issue(requests: readonly Uint8Array[]): Promise<AcaIssueResult[]> {
    const results = await this.#issueBatch(requests);
    return results.map((r): AcaIssueResult => {
      if (r instanceof AcaError) return { ok: false, code: r.code, error: r.message };
      return { ok: true, response: r };
    });
  }

  /** One RaAcaCertRequestSpdu (COER) -> the AcaRaCertResponseSpdu (signed Ieee1609Dot2Data). AcaError on refusal. */
  async issueOne(requestSpdu: Uint8Array): Promise<Ieee1609Dot2Data> {
    const [r] = await this.#issueBatch([requestSpdu]);
    if (r instanceof AcaError) throw r;
    return Ieee1609Dot2DataCodec.decode(r!);
  }

  /** Verify and prepare every request, issue the certificates with batched key work, then answer each. */
  async #issueBatch(requests: readonly Uint8Array[]): Promise<Array<Uint8Array | AcaError>> {
    const out = new Array<Uint8Array | AcaError>(requests.length);
    const asAcaError = (e: unknown): AcaError => (e instanceof AcaError ? e : new AcaError('issuance', (e as Error).message));
    const prepared: { n: number; p: Prepared }[] = [];
    for (let n = 0; n < requests.length; n++) {
      try {
        prepared.push({ n, p: await this.#prepare(requests[n]!) });
      } catch (e) {
        out[n] = asAcaError(e);
      }
    }
    await this.#linkBatch(prepared, out);
    const ready = prepared.filter((x) => out[x.n] === undefined);
    const keys = this.#batchKeys(ready.map((x) => x.p));
    for (let m = 0; m < ready.length; m++) {
      const { n, p } = ready[m]!;
      try {
        const k = keys[m]!;
        if (k instanceof AcaError) throw k;
        out[n] = await this.#answer(p, await this.#certificate(p, k));
      } catch (e) {
        out[n] = asAcaError(e);
      }
    }
    return out;
  }

  /** RaAcaCertRequestSpdu -> checked request, tbs (linkage value filled in by #linkBatch), request key. */
  async #prepare(requestSpdu: Uint8Array): Promise<Prepared> {
    const req = this.#verifyRequest(requestSpdu);
    const butterflyExplicit = bit(req.flags, FLAG_BUTTERFLY_EXPLICIT);
    const cubk = bit(req.flags, FLAG_CUBK);
    // RaAcaCertRequest flags / type / certEncKey rules (AcaRaInterface comments).
    if (butterflyExplicit && req.type !== 'explicit') throw new AcaError('invalid-request', 'butterflyExplicit needs type explicit');
    if (cubk && req.certEncKey) throw new AcaError('invalid-request', 'cubk needs certEncKey absent');
    if (cubk && req.type !== 'implicit') throw new AcaError('invalid-request', 'compact unified butterfly keys are implicit only');
    if (cubk && !this.#usesCubk) throw new AcaError('invalid-request', 'cubk request but the ACA certificate lacks flags usesCubk');
    const vki = req.tbsCert.verifyKeyIndicator as Record<string, unknown>;
    let requestKey: Uint8Array;
    if (req.type === 'explicit') {
      if (!('verificationKey' in vki)) throw new AcaError('invalid-request', 'explicit request without verificationKey');
      const k = fromPublicVerificationKey(vki.verificationKey as never);
      if (k.curve !== this.#curve) throw new AcaError('invalid-request', `request key on ${k.curve}, ACA on ${this.#curve}`);
      requestKey = k.publicKey;
    } else if (req.type === 'implicit') {
      if (!('reconstructionValue' in vki)) throw new AcaError('invalid-request', 'implicit request without reconstructionValue');
      requestKey = eccPointToBytes(vki.reconstructionValue as EccCurvePoint);
    } else throw new AcaError('invalid-request', `unsupported certificate type ${String(req.type)}`);

    // Linkage value (1609.2.1 Annex D): lv = plv1 XOR plv2, LinkageData.iCert as requested.
    const { cracaId: _c, crlSeries: _s, ...rest } = req.tbsCert;
    const tbs: ToBeSignedCertificate = { ...rest, cracaId: this.#cracaId, crlSeries: this.#crlSeries } as ToBeSignedCertificate;
    if (!req.linkageInfo && 'linkageData' in (req.tbsCert.id as Record<string, unknown>)) {
      // The LinkageData the RA sends is random filler (RaAcaCertRequest linkageInfo comment): never certify it.
      throw new AcaError('invalid-request', 'tbsCert.id is linkageData but linkageInfo is absent');
    }
    if (req.linkageInfo) {
      const id = req.tbsCert.id as Record<string, unknown>;
      if (!('linkageData' in id)) throw new AcaError('invalid-request', 'linkageInfo present but tbsCert.id is not linkageData');
      const { encPlv1, encPlv2 } = req.linkageInfo;
      if (toHex(encPlv1.laId) === toHex(encPlv2.laId)) throw new AcaError('linkage', 'encPlv1 and encPlv2 come from the same LA');
    }
    // tbs.id gets the linkage value once the batch's PLVs are decrypted (#linkBatch)
    return { requestSpdu, req, tbs, requestKey, butterflyExplicit, cubk };
  }

  /**
   * The key work of a batch, shared: implicit requests get ECQV reconstruction values (issueImplicitCertificates),
   * butterfly explicit requests B + c*G (acaExplicitKeys), each batch with one field inversion.
   */
  #batchKeys(ps: readonly Prepared[]): Array<IssuedKey | AcaError> {
    const out = new Array<IssuedKey | AcaError>(ps.length);
    const implicit: number[] = [];
    const butterfly: { n: number; B: AffinePoint }[] = [];
    ps.forEach((p, n) => {
      if (p.req.type === 'implicit') implicit.push(n);
      else if (p.butterflyExplicit) {
        try {
          butterfly.push({ n, B: decodeAffine(this.#curve, p.requestKey) });
        } catch (e) {
          out[n] = new AcaError('issuance', `issuance failed: ${(e as Error).message}`);
        }
      } else out[n] = { kind: 'explicit', key: p.requestKey };
    });
    if (implicit.length > 0) {
      if (this.#d === undefined) {
        for (const n of implicit) out[n] = new AcaError('issuance', 'this ACA has no private scalar for implicit certificates');
      } else {
        try {
          const rs = issueImplicitCertificates({
            issuer: this.certificate,
            issuerPrivateScalar: this.#d,
            requests: implicit.map((n) => ({ tbs: ps[n]!.tbs, requestPublicKey: ps[n]!.requestKey })),
          });
          rs.forEach((r, m) => {
            out[implicit[m]!] = r instanceof Error ? new AcaError('issuance', `issuance failed: ${r.message}`) : { kind: 'implicit', ...r };
          });
        } catch (e) {
          for (const n of implicit) out[n] = new AcaError('issuance', `issuance failed: ${(e as Error).message}`);
        }
      }
    }
    if (butterfly.length > 0) {
      const size = curve(this.#curve).size;
      acaExplicitKeys(this.#curve, butterfly.map((b) => b.B)).forEach((k, m) => {
        out[butterfly[m]!.n] = { kind: 'explicit', key: k.verificationKey, privateKeyInfo: bigIntToBytes(k.c, size) };
      });
    }
    return out;
  }

  /** The certificate of a prepared request: the implicit one as issued, an explicit one signed here. */
  async #certificate(p: Prepared, k: IssuedKey): Promise<{ certificate: Certificate; privateKeyInfo?: Uint8Array }> {
    if (k.kind === 'implicit') return { certificate: k.certificate, privateKeyInfo: bigIntToBytes(k.privateKeyContribution, curve(this.#curve).size) };
    try {
      const tbs = { ...p.tbs, verifyKeyIndicator: verificationKeyIndicator(this.#curve as CurveName, k.key) };
      const certificate = await issueExplicitCertificate({ tbs, issuer: this.certificate, signer: this.#signer });
      return k.privateKeyInfo ? { certificate, privateKeyInfo: k.privateKeyInfo } : { certificate };
    } catch (e) {
      throw new AcaError('issuance', `issuance failed: ${(e as Error).message}`);
    }
  }

  /**
   * The signed AcaRaCertResponseSpdu of a request: ScmsPdu { version 2, aca-ra acaRaCertResponse { version 2,
   * generationTime, requestHash = HashedId8 of the request SPDU, acaResponse } }. Nothing in it is optional or an
   * extension, so its COER is a fixed 18-octet head (ScmsPdu version 02, aca-ra tag 83, acaRaCertResponse tag 81,
   * preamble 00, version 02, Time32, HashedId8, the AcaResponse tag 80 / 81 / 82) followed by the response SPDU's
   * COER, which #respond produced already (tested against the codec in test/engine/aca/aca.test.ts).
   */
  async #answer(p: Prepared, issued: { certificate: Certificate; privateKeyInfo?: Uint8Array }): Promise<Uint8Array> {
    const { kind, bytes } = await this.#respond(p, issued);
    const head = new Uint8Array(18);
    head.set([0x02, 0x83, 0x81, 0x00, 0x02]);
    new DataView(head.buffer).setUint32(5, nowTime32(this.#clock));
    head.set(sha256(p.requestSpdu).subarray(24), 9);
    head[17] = ACA_RESPONSE_TAG[kind];
    return this.#signedSpduBytes(concat(head, bytes));
  }

  /**
   * COER of Ieee1609Dot2Data-Signed {payload, SecurityMgmtPsid} signed by this ACA (scms-pdu signedSpdu / signData
   * with psid only in the header, the same octets): Ieee1609Dot2Data and SignedData are SEQUENCEs without optional
   * fields or extension marker, so the encoding is protocolVersion 03, the signedData tag 81, then hashId, the
   * ToBeSignedData octets just signed, the SignerIdentifier (encoded once) and the Signature.
   */
  async #signedSpduBytes(payload: Uint8Array): Promise<Uint8Array> {
    const tbsData: ToBeSignedData = { payload: { data: unsecuredData(payload) }, headerInfo: { psid: SECURITY_MGMT_PSID } };
    const tbsBytes = toBeSignedDataBytes(tbsData);
    const signature = await sign1609Dot2({ tbsBytes, signerCertificate: this.certificate, signer: this.#signer, rForm: 'x-only' });
    this.#signerId ??= SignerIdentifierCodec.encode({ certificate: [this.certificate] });
    return concat(
      Uint8Array.of(PROTOCOL_VERSION, 0x81),
      HashAlgorithmCodec.encode(curve(this.#signer.curve).hash),
      tbsBytes,
      this.#signerId,
      SignatureCodec.encode(signature),
    );
  }

  #verifyRequest(bytes: Uint8Array): RaAcaCertRequest {
    let data: Ieee1609Dot2Data;
    try {
      data = Ieee1609Dot2DataCodec.decode(bytes);
    } catch (e) {
      throw new AcaError('malformed', `RaAcaCertRequestSpdu: ${(e as Error).message}`);
    }
    let untrusted = false;
    let raId: string | undefined;
    const resolveSigner = (id: SignerIdentifier): ResolvedSigner | undefined => {
      if (!('certificate' in id) || id.certificate.length !== 1) return undefined;
      raId = toHex(certificateHashedId8(id.certificate[0]!));
      const ra = this.#ras.get(raId);
      if (!ra) untrusted = true;
      return ra;
    };
    const res = verifyCertificateRequest(data, { resolveSigner });
    if (!res.ok) {
      if (untrusted) throw new AcaError('untrusted-ra', `RaAcaCertRequestSpdu signer is not a trusted RA: ${res.reason}`);
      throw new AcaError(/signature/i.test(res.reason) ? 'bad-signature' : 'malformed', `RaAcaCertRequestSpdu: ${res.reason}`);
    }
    // the signer is a trusted RA certificate (same HashedId8): its RaSsp was read once at construction
    if (!res.signerCertificate || raId === undefined || this.#raSsp.get(raId) !== true) {
      throw new AcaError('untrusted-ra', 'RaAcaCertRequestSpdu signer certificate has no RaSsp');
    }
    const c = res.tbsRequest.content;
    if (!('aca-ra' in c) || !('raAcaCertRequest' in c['aca-ra'])) throw new AcaError('malformed', 'not an aca-ra raAcaCertRequest');
    return c['aca-ra'].raAcaCertRequest;
  }

  async #plvKey(encPlv: EncryptedIndividualPLV): Promise<{ key: Uint8Array; recipient: { recipientId: Uint8Array; encKey: SymmetricCiphertext } }> {
    const laId = (encPlv.laId[0]! << 8) | encPlv.laId[1]!;
    const rs = encPlv.encPlv.content.encryptedData.recipients;
    const ri = rs.length === 1 ? rs[0]! : undefined;
    if (!ri || !('symmRecipInfo' in ri)) throw new AcaError('linkage', `encPlv of LA ${laId}: not a single symmRecipInfo`);
    const id = toHex(ri.symmRecipInfo.recipientId);
    let k = this.#plvKeys.get(id);
    if (!k) {
      await this.#fetchLaKey(laId);
      k = this.#plvKeys.get(id);
    }
    if (!k || k.laId !== laId) throw new AcaError('linkage', `encPlv of LA ${laId} is not encrypted for this ACA (key ${id} unknown)`);
    return { key: k.key, recipient: ri.symmRecipInfo };
  }

  /** Gets and checks the LA-ACA key delivery (encrypted to us, signed by a trusted LA with this laId). */
  async #fetchLaKey(laId: number): Promise<void> {
    const client = this.#laKeys.get(laId);
    if (!client) throw new AcaError('linkage', `no LA with laId ${laId} is configured`);
    const delivery = await client.acaKeyDelivery(this.certificate);
    let inner;
    try {
      inner = await decryptDataDetailed(delivery, [{ kind: 'cert', certificate: this.certificate, ...this.#enc }]);
    } catch (e) {
      throw new AcaError('linkage', `LA ${laId} key delivery: ${(e as Error).message}`);
    }
    const v = verifySignedData(inner.data, {
      expectedPsid: SECURITY_MGMT_PSID,
      resolveSigner: (id) => {
        if (!('certificate' in id) || id.certificate.length !== 1) return undefined;
        const la = this.#las.get(toHex(certificateHashedId8(id.certificate[0]!)));
        return la && la.laId === laId ? la.cert : undefined;
      },
    });
    if (!v.ok) throw new AcaError('linkage', `LA ${laId} key delivery: ${v.reason}`);
    const sk = SymmetricEncryptionKeyCodec.decode(v.payload);
    if (!('aes128Ccm' in sk)) throw new AcaError('linkage', `LA ${laId} key delivery: not an AES-128 key`);
    this.#plvKeys.set(toHex(symmetricKeyId(sk.aes128Ccm)), { laId, key: sk.aes128Ccm });
  }

  /**
   * Linkage values of a batch (1609.2.1 Annex D: lv = plv1 XOR plv2 into tbsCert.id.linkageData): every encPlv's
   * data key unwrapped with its LA-ACA key in one AES pass per key (aesCcmDecryptMany), then each PLV. A request
   * whose PLVs fail gets its AcaError in `out`.
   */
  async #linkBatch(prepared: ReadonlyArray<{ n: number; p: Prepared }>, out: Array<Uint8Array | AcaError>): Promise<void> {
    const linked = prepared.filter((x) => x.p.req.linkageInfo);
    const encPlvs = linked.flatMap((x) => [x.p.req.linkageInfo!.encPlv1, x.p.req.linkageInfo!.encPlv2]);
    const plvs = await this.#decryptPlvs(encPlvs);
    linked.forEach((x, m) => {
      const plv1 = plvs[2 * m]!;
      const plv2 = plvs[2 * m + 1]!;
      if (plv1 instanceof AcaError || plv2 instanceof AcaError) {
        out[x.n] = plv1 instanceof AcaError ? plv1 : (plv2 as AcaError);
        if (!(plv1 instanceof AcaError)) wipe(plv1);
        if (!(plv2 instanceof AcaError)) wipe(plv2);
        return;
      }
      const lv = linkageValue(plv1, plv2);
      wipe(plv1);
      wipe(plv2);
      const id = x.p.req.tbsCert.id as { linkageData: { iCert: number } };
      x.p.tbs.id = { linkageData: { iCert: id.linkageData.iCert, 'linkage-value': lv } };
    });
  }

  /** The PLVs of many EncryptedIndividualPLVs (or the AcaError of each that fails), in order. */
  async #decryptPlvs(encPlvs: readonly EncryptedIndividualPLV[]): Promise<Array<Uint8Array | AcaError>> {
    const out = new Array<Uint8Array | AcaError>(encPlvs.length);
    const groups = new Map<Uint8Array, Array<{ n: number; nonce: Uint8Array; ciphertextAndTag: Uint8Array }>>();
    for (let n = 0; n < encPlvs.length; n++) {
      try {
        const { key, recipient } = await this.#plvKey(encPlvs[n]!);
        const ek = recipient.encKey;
        if (!('aes128ccm' in ek)) throw new AcaError('linkage', 'encPlv key unwrap: unsupported symmetric ciphertext');
        let g = groups.get(key);
        if (!g) groups.set(key, (g = []));
        g.push({ n, nonce: ek.aes128ccm.nonce, ciphertextAndTag: ek.aes128ccm.ccmCiphertext });
      } catch (e) {
        out[n] = e instanceof AcaError ? e : new AcaError('linkage', (e as Error).message);
      }
    }
    for (const [key, items] of groups) {
      let dataKeys: Array<Uint8Array | Error>;
      try {
        dataKeys = aesCcmDecryptMany(key, items);
      } catch (e) {
        dataKeys = items.map(() => e as Error); // a malformed nonce: reported per PLV below
      }
      items.forEach(({ n }, m) => {
        const dataKey = dataKeys[m]!;
        if (dataKey instanceof Error) {
          out[n] = new AcaError('linkage', 'encPlv key unwrap: AES-CCM tag check failed');
          return;
        }
        try {
          const plv = ccmOpen(dataKey, encPlvs[n]!.encPlv.content.encryptedData.ciphertext, 'encPlv');
          if (plv.length !== 9) throw new AcaError('linkage', `PreLinkageValue of ${plv.length} octets`);
          out[n] = plv;
        } catch (e) {
          out[n] = e instanceof AcaError ? e : new AcaError('linkage', (e as Error).message);
        } finally {
          wipe(dataKey);
        }
      });
    }
    return out;
  }

  /** The AcaEeCertResponse in its SPDU (see the module comment): the AcaResponse alternative and its COER. */
  async #respond(p: Prepared, issued: { certificate: Certificate; privateKeyInfo?: Uint8Array }): Promise<{ kind: AcaResponseKind; bytes: Uint8Array }> {
    const { req, cubk, requestKey } = p;
    const { certificate, privateKeyInfo } = issued;
    const pdu: ScmsPdu = scmsPdu({
      'aca-ee': {
        acaEeCertResponse: {
          version: 2,
          generationTime: nowTime32(this.#clock),
          certificate,
          ...(privateKeyInfo ? { privateKeyInfo } : {}),
        },
      },
    });
    if (req.certEncKey) {
      const ek = publicEncryptionKeyPoint(req.certEncKey);
      if (ek.curve !== this.#curve) throw new AcaError('invalid-request', `certEncKey on ${ek.curve}, ACA on ${this.#curve}`);
      // Ieee1609Dot2Data-EncryptedSigned (scms-pdu encryptedSignedSpdu): signed unsecuredData holding the COER of the
      // encrypted ScmsPdu.
      const encrypted = encryptData({ plaintext: ScmsPduCodec.encode(pdu), recipients: [{ kind: 'rek', publicKey: ek }] });
      return { kind: 'private', bytes: await this.#signedSpduBytes(Ieee1609Dot2DataCodec.encode(encrypted)) };
    }
    if (cubk) {
      // Ieee1609Dot2Data-Encrypted: the generic encoding is the typed one (encryptedData holds no typed payload).
      const spdu = encryptData({
        plaintext: ScmsPduCodec.encode(pdu),
        recipients: [{ kind: 'rek', publicKey: { curve: this.#curve, publicKey: requestKey } }],
      });
      return { kind: 'cubk', bytes: Ieee1609Dot2DataCodec.encode(spdu) };
    }
    return { kind: 'plain', bytes: Ieee1609Dot2DataCodec.encode(unsecuredSpdu(pdu)) };
  }
}
