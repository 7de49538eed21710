/**
 * RA butterfly expansion (IEEE 1609.2.1 9.3; crypto/butterfly.ts raExpand) and the individual RaAcaCertRequests
 * (1609.2.1 Ieee1609Dot2Dot1AcaRaInterface) built from one EeRaCertRequest.
 *
 * From the EeRaCertRequest (EeRaInterface comments): tbsCert.verifyKeyIndicator.verificationKey is the signing
 * caterpillar A; additionalParams original {signingExpansion, encryptionKey H, encryptionExpansion} /
 * unified / compactUnified (one expansion key). Per (i, j):
 *   type      flags                       certEncKey                   tbsCert.verifyKeyIndicator
 *   explicit  butterflyExplicit           original: J, unified: B      verificationKey B
 *   implicit  -                           original: J, unified: B      reconstructionValue B
 *   implicit  cubk (compactUnified)       absent                       reconstructionValue B
 * (certEncKey absent without cubk would ask for a plain, RA-readable response: the AcaRaInterface certEncKey
 * comment; so unified carries B, the key the Protocol comment on AcaEeCertResponsePrivateSpdu names for unified.)
 * tbsCert.id is LinkageData {iCert i, dummy linkage-value} (RaAcaCertRequest linkageInfo comment), validity
 * certValidityPeriod(i, j), cracaId 000000 / crlSeries 0 (replaced by the ACA). Points go uncompressed between
 * our own components (no decompression at the ACA; it canonicalises what it signs).
 */
import {
  HashAlgorithm as HashAlgorithmCodec,
  Ieee1609Dot2Data as Ieee1609Dot2DataCodec,
  ScopedCertificateRequest as ScopedCertificateRequestCodec,
  Signature as SignatureCodec,
  SignerIdentifier as SignerIdentifierCodec,
  type Ieee1609Dot2Data,
  type ScopedCertificateRequest,
  type ToBeSignedCertificate,
} from '../../codec/index.js';
import type { EeRaCertRequest } from '../../codec/gen/Ieee1609Dot2Dot1EeRaInterface.js';
import type { LinkageInfo, RaAcaCertRequest } from '../../codec/gen/Ieee1609Dot2Dot1AcaRaInterface.js';
import { raExpand, type ButterflyCurve, type ButterflyPublicParams, type ButterflyVariant, type CocoonPair, type IJ } from '../../crypto/butterfly.js';
import { randomOctets } from '../../crypto/random.js';
import { concat } from '../../crypto/bytes.js';
import { curve } from '../../crypto/curves.js';
import { eccPointFromBytes, eccPointToBytes, fromPublicVerificationKey, sign1609Dot2, type EccCurvePoint } from '../../security/certificate.js';
import { PROTOCOL_VERSION, signCertificateRequest } from '../../security/spdu.js';
import type { Signer } from '../../security/signer.js';
import type { Certificate } from '../../codec/index.js';
import { certValidityPeriod, type IPeriodParams, type Time32 } from '../../security/time.js';
import type { ButterflyType, GlobalPolicy } from '../policy/index.js';

export class ExpansionError extends Error {
  override readonly name = 'ExpansionError';
}

export interface ButterflyRequestInfo {
  readonly variant: ButterflyVariant;
  readonly type: 'explicit' | 'implicit';
  readonly curve: ButterflyCurve;
  readonly params: ButterflyPublicParams;
}

function aes128(e: unknown, what: string): Uint8Array {
  if (e && typeof e === 'object' && 'aes128' in e && (e as { aes128: unknown }).aes128 instanceof Uint8Array) return (e as { aes128: Uint8Array }).aes128;
  throw new ExpansionError(`${what}: only ButterflyExpansion aes128 is supported`);
}

function encKeyPoint(k: { publicKey: Record<string, unknown> }, c: ButterflyCurve): Uint8Array {
  const alt = c === 'nistP256' ? 'eciesNistP256' : 'eciesBrainpoolP256r1';
  if (!(alt in k.publicKey)) throw new ExpansionError(`encryption caterpillar is not an ${alt} key`);
  return eccPointToBytes(k.publicKey[alt] as EccCurvePoint);
}

/** The butterfly parameters of an EeRaCertRequest (AdditionalParams original / unified / compactUnified). */
export function butterflyRequestInfo(req: EeRaCertRequest): ButterflyRequestInfo {
  if (req.type !== 'explicit' && req.type !== 'implicit') throw new ExpansionError(`unsupported certificate type ${String(req.type)}`);
  const ap = req.additionalParams as Record<string, unknown> | undefined;
  if (!ap) throw new ExpansionError('additionalParams absent: not a butterfly request');
  const vk = fromPublicVerificationKey(req.tbsCert.verifyKeyIndicator.verificationKey);
  if (vk.curve !== 'nistP256' && vk.curve !== 'brainpoolP256r1') throw new ExpansionError(`butterfly keys need a 256-bit curve, not ${vk.curve}`);
  const curve = vk.curve;
  if ('original' in ap) {
    const o = ap.original as { signingExpansion: unknown; encryptionKey: { publicKey: Record<string, unknown> }; encryptionExpansion: unknown };
    return {
      variant: 'original',
      type: req.type,
      curve,
      params: {
        variant: 'original',
        signingCaterpillar: vk.publicKey,
        signingExpansionKey: aes128(o.signingExpansion, 'signingExpansion'),
        encryptionCaterpillar: encKeyPoint(o.encryptionKey, curve),
        encryptionExpansionKey: aes128(o.encryptionExpansion, 'encryptionExpansion'),
      },
    };
  }
  for (const variant of ['unified', 'compactUnified'] as const) {
    if (variant in ap) {
      if (variant === 'compactUnified' && req.type !== 'implicit') throw new ExpansionError('compact unified butterfly keys are for implicit certificates only');
      return { variant, type: req.type, curve, params: { variant, caterpillar: vk.publicKey, expansionKey: aes128(ap[variant], variant) } };
    }
  }
  throw new ExpansionError(`additionalParams ${Object.keys(ap)[0]} is not a butterfly expansion`);
}

/** Policy check (ra-butterflyType): every requested PSID must allow the variant. */
export function checkButterflyPolicy(policy: GlobalPolicy, req: EeRaCertRequest, variant: ButterflyType): void {
  for (const p of req.tbsCert.appPermissions) {
    const psid = Number(p.psid);
    const entry = policy['ra-butterflyType'].find((e) => e.psids.includes(psid));
    if (!entry || !entry['ra-butterflyType'].includes(variant)) {
      throw new ExpansionError(`policy ra-butterflyType does not allow ${variant} for PSID ${psid}`);
    }
  }
}

/** The (i, j) of i-periods first..last with j = 0 .. jMax-1. */
export function periodIndices(first: number, last: number, jMax: number): IJ[] {
  const out: IJ[] = [];
  for (let i = first; i <= last; i++) for (let j = 0; j < jMax; j++) out.push({ i, j });
  return out;
}

/** Cocoon keys for all (i, j), batched (one AES call per key, shared inversions; crypto/butterfly raExpand). */
export function expandCocoons(info: ButterflyRequestInfo, ijs: readonly IJ[]): CocoonPair[] {
  return raExpand(info.curve, info.params, ijs);
}

const FLAGS = { explicit: '10000000', implicit: '00000000', cubk: '01000000' } as const;

export interface RaAcaCertRequestInput {
  readonly info: ButterflyRequestInfo;
  readonly eeRequest: EeRaCertRequest;
  readonly cocoon: CocoonPair;
  /** Absent for identification / application certificates (no linkage values; kinds.ts). */
  readonly linkageInfo?: LinkageInfo;
  readonly iPeriod: IPeriodParams;
  readonly generationTime: Time32;
  /** Overrides of the pseudonym defaults (LinkageData id, certValidityPeriod(i, j)) for the other kinds. */
  readonly id?: ToBeSignedCertificate['id'];
  readonly validityPeriod?: ToBeSignedCertificate['validityPeriod'];
}

/** One RaAcaCertRequest (see the module comment). */
export function raAcaCertRequest(input: RaAcaCertRequestInput): RaAcaCertRequest {
  const { info, eeRequest, cocoon } = input;
  const t = eeRequest.tbsCert;
  const B = eccPointFromBytes(cocoon.signingCocoon, 'uncompressed');
  const keyAlt = info.curve === 'nistP256' ? 'ecdsaNistP256' : 'ecdsaBrainpoolP256r1';
  const encAlt = info.curve === 'nistP256' ? 'eciesNistP256' : 'eciesBrainpoolP256r1';
  const tbsCert: ToBeSignedCertificate = {
    id: input.id ?? { linkageData: { iCert: cocoon.i, 'linkage-value': randomOctets(9) } },
    cracaId: new Uint8Array(3),
    crlSeries: 0,
    validityPeriod: input.validityPeriod ?? certValidityPeriod(input.iPeriod, cocoon.i, cocoon.j),
    ...(t.region ? { region: t.region } : {}),
    ...(t.assuranceLevel ? { assuranceLevel: t.assuranceLevel } : {}),
    appPermissions: t.appPermissions,
    verifyKeyIndicator: info.type === 'explicit' ? { verificationKey: { [keyAlt]: B } as never } : { reconstructionValue: B as never },
  };
  const flags = info.variant === 'compactUnified' ? FLAGS.cubk : info.type === 'explicit' ? FLAGS.explicit : FLAGS.implicit;
  const req: RaAcaCertRequest = {
    version: 2,
    generationTime: input.generationTime,
    type: info.type,
    flags,
    ...(input.linkageInfo ? { linkageInfo: input.linkageInfo } : {}),
    tbsCert: tbsCert as RaAcaCertRequest['tbsCert'],
  };
  if (info.variant !== 'compactUnified') {
    req.certEncKey = { supportedSymmAlg: 'aes128Ccm', publicKey: { [encAlt]: eccPointFromBytes(cocoon.encryptionKey, 'uncompressed') } as never };
  }
  return req;
}

/** RaAcaCertRequestSpdu: Ieee1609Dot2Data-SignedCertRequest signed by the RA certificate (SignerSingleCert). */
export function signRaAcaCertRequest(req: RaAcaCertRequest, raCertificate: Certificate, raSigner: Signer): Promise<Ieee1609Dot2Data> {
  return signCertificateRequest({
    tbsRequest: { version: 2, content: { 'aca-ra': { raAcaCertRequest: req } } },
    signer: raSigner,
    signerId: { certificate: raCertificate },
  });
}

/** COER SignerIdentifier { certificate: [RA certificate] } per RA certificate object (constant for an RA). */
const signerIdBytes = new WeakMap<Certificate, Uint8Array>();

/**
 * COER of the RaAcaCertRequestSpdu, as Ieee1609Dot2DataCodec.encode(await signRaAcaCertRequest(...)) gives it, for
 * the RA's per-certificate loop: SignedCertificateRequest (Ieee1609Dot2Dot1Protocol) is a SEQUENCE without optional
 * fields or extension marker, so its COER is the concatenation of its fields' encodings: HashAlgorithm,
 * ScopedCertificateRequest (the octets just signed, 1609.2 5.3.1 data input), SignerIdentifier (encoded once per RA
 * certificate) and Signature. Saves encoding the whole request a second time.
 */
export async function signRaAcaCertRequestBytes(req: RaAcaCertRequest, raCertificate: Certificate, raSigner: Signer): Promise<Uint8Array> {
  const tbsRequest: ScopedCertificateRequest = { version: 2, content: { 'aca-ra': { raAcaCertRequest: req } } };
  const tbsBytes = ScopedCertificateRequestCodec.encode(tbsRequest);
  const signature = await sign1609Dot2({ tbsBytes, signerCertificate: raCertificate, signer: raSigner, rForm: 'x-only' });
  let sid = signerIdBytes.get(raCertificate);
  if (!sid) {
    sid = SignerIdentifierCodec.encode({ certificate: [raCertificate] });
    signerIdBytes.set(raCertificate, sid);
  }
  const scr = concat(HashAlgorithmCodec.encode(curve(raSigner.curve).hash), tbsBytes, sid, SignatureCodec.encode(signature));
  return Ieee1609Dot2DataCodec.encode({ protocolVersion: PROTOCOL_VERSION, content: { signedCertificateRequest: scr } });
}
