/**
 * EE side of every certificate kind (IEEE 1609.2.1 EeRaCertRequest / AdditionalParams; Protocol
 * AcaEeCertResponse{Plain,Private,Cubk}Spdu; RA rules in src/engine/ra/kinds.ts):
 *
 *   kind            tbsCert.id the EE sends                form        additionalParams
 *   pseudonym       linkageData (dummy; the RA replaces)   butterfly   original | unified | compactUnified
 *   identification  name / binaryId (none: non-butterfly)  butterfly   original | unified | compactUnified
 *                                                          encrypted   encryptionKey (response encrypted to it)
 *                                                          plain       absent (response in the clear)
 * Non-butterfly: tbsCert.verifyKeyIndicator.verificationKey is the EE's own key (explicit: the certificate's key;
 * implicit: the ECQV request key), kept with the secrets.
 *
 * Response processing: butterfly -> ee/authorization.ts (cocoon keys, decrypt / verify); plain -> read the
 * unsecured AcaEeCertResponsePlainSpdu; encrypted -> verify the ACA signature and decrypt with the
 * encryptionKey's private half (AcaEeCertResponsePrivateSpdu). Then: certificate issued by the ACA, of the
 * requested type; private key = own key (explicit) or ECQV reconstruction e*k + s (implicit), checked against
 * the certificate; chain to the trust anchors.
 * Download file: butterfly `<hash>_<i hex>.zip`, non-butterfly `<hash>.zip` (ra/kinds.ts).
 */
import { unzipSync } from 'fflate';
import type { Certificate, ScmsPdu, ToBeSignedCertificate } from '../../codec/index.js';
import type { EeRaCertRequest, RaEeCertInfo } from '../../codec/gen/Ieee1609Dot2Dot1EeRaInterface.js';
import { bytesToBigInt, toHex } from '../../crypto/bytes.js';
import type { ButterflyCurve, ButterflyVariant } from '../../crypto/butterfly.js';
import { generateKeyPair } from '../../crypto/ecdh.js';
import { mulBase } from '../../crypto/curves.js';
import { certificateHashedId8, certificateKeyPairMatches, isIssuedBy, publicEncryptionKey } from '../../security/certificate.js';
import { DecryptionError, type DecryptionKey } from '../../security/encryption.js';
import { readUnsecuredSpdu, verifyEncryptedSignedSpdu } from '../../security/scms-pdu.js';
import type { Clock } from '../../security/time.js';
import { processAuthorizationResponse } from './authorization.js';
import { reconstructImplicitKeyPair, verifyChainFast, type PublicKey } from './fast-verify.js';
import { createButterflyRequest, eeRaCertRequest, type ButterflySecrets } from './butterfly.js';

export class KindResponseError extends Error {
  override readonly name = 'KindResponseError';
}

export type EeCertificateKind = 'pseudonym' | 'identification';
export type EeRequestForm = 'butterfly' | 'plain' | 'encrypted';

export interface KindRequestOptions {
  readonly kind: EeCertificateKind;
  readonly form: EeRequestForm;
  /** Butterfly variant (form butterfly). */
  readonly variant?: ButterflyVariant;
  readonly type: 'explicit' | 'implicit';
  readonly curve?: ButterflyCurve;
  /** Identification id: name / binaryId (required for butterfly), none allowed for non-butterfly. */
  readonly id?: ToBeSignedCertificate['id'];
  readonly tbsCert: Pick<ToBeSignedCertificate, 'validityPeriod' | 'appPermissions'> & Partial<Pick<ToBeSignedCertificate, 'region' | 'assuranceLevel'>>;
  readonly clock?: Clock;
}

/** What the EE keeps to process the response (memory only). */
export type KindSecrets =
  | { readonly kind: EeCertificateKind; readonly form: 'butterfly'; readonly type: 'explicit' | 'implicit'; readonly butterfly: ButterflySecrets }
  | {
      readonly kind: 'identification';
      readonly form: 'plain' | 'encrypted';
      readonly type: 'explicit' | 'implicit';
      readonly curve: ButterflyCurve;
      /** The key in tbsCert.verifyKeyIndicator (explicit: the certificate key; implicit: ECQV k). */
      readonly signingPrivate: bigint;
      /** Private half of AdditionalParams.encryptionKey (encrypted). */
      readonly encryptionPrivate?: bigint;
    };

const fail = (m: string): never => {
  throw new KindResponseError(m);
};

/** Builds the EeRaCertRequest of a kind and form (module comment) and the secrets to process its response. */
export function createKindRequest(opts: KindRequestOptions): { request: EeRaCertRequest; secrets: KindSecrets } {
  const c = opts.curve ?? 'nistP256';
  if (opts.form === 'butterfly') {
    if (!opts.variant) throw new Error('a butterfly request needs a variant');
    let id: ToBeSignedCertificate['id'];
    if (opts.kind === 'pseudonym') id = { linkageData: { iCert: 0, 'linkage-value': new Uint8Array(9) } };
    else {
      id = opts.id ?? fail('a butterfly identification request needs an id (name or binaryId)');
      if (!('name' in id) && !('binaryId' in id)) fail('a butterfly identification request needs an id name or binaryId');
    }
    const { request, secrets } = createButterflyRequest({
      variant: opts.variant,
      type: opts.type,
      curve: c,
      tbsCert: { ...opts.tbsCert, id },
      ...(opts.clock ? { clock: opts.clock } : {}),
    });
    return { request, secrets: { kind: opts.kind, form: 'butterfly', type: opts.type, butterfly: secrets } };
  }
  if (opts.kind !== 'identification') throw new Error('pseudonym certificates are requested with butterfly keys');
  const k = generateKeyPair(c);
  const enc = opts.form === 'encrypted' ? generateKeyPair(c) : undefined;
  const request = eeRaCertRequest({
    type: opts.type,
    curve: c,
    tbsCert: { ...opts.tbsCert, ...(opts.id ? { id: opts.id } : {}) },
    publicKey: k.publicKey,
    ...(enc ? { additionalParams: { encryptionKey: publicEncryptionKey(c, enc.publicKey) } } : {}),
    ...(opts.clock ? { clock: opts.clock } : {}),
  });
  return {
    request,
    secrets: {
      kind: 'identification',
      form: opts.form,
      type: opts.type,
      curve: c,
      signingPrivate: bytesToBigInt(k.privateKey),
      ...(enc ? { encryptionPrivate: bytesToBigInt(enc.privateKey) } : {}),
    },
  };
}

/** The download file name (8.2 / ra/kinds.ts): `<hash>_<i hex>.zip` for butterfly, `<hash>.zip` otherwise. */
export function kindDownloadFilename(requestHash: Uint8Array, form: EeRequestForm, i: number): string {
  return form === 'butterfly' ? `${toHex(requestHash)}_${i.toString(16)}.zip` : `${toHex(requestHash)}.zip`;
}

export interface KindCertificate {
  readonly i: number;
  readonly j: number;
  readonly certificate: Certificate;
  /** Memory only. */
  readonly privateKey: bigint;
  /** The verification key the chain check found (uncompressed). */
  readonly publicKey?: PublicKey;
}

export interface KindResponseOptions {
  readonly acaChain: readonly Certificate[];
  readonly trustAnchors: readonly Certificate[];
  readonly clock: Clock;
}

/** One non-butterfly response (COER AcaEeCertResponsePlainSpdu / AcaEeCertResponsePrivateSpdu). */
export async function processNonButterflyResponse(response: Uint8Array, secrets: Extract<KindSecrets, { form: 'plain' | 'encrypted' }>, o: KindResponseOptions): Promise<{ certificate: Certificate; privateKey: bigint; publicKey: PublicKey }> {
  const aca = o.acaChain[0] ?? fail('acaChain is empty');
  let pdu: ScmsPdu;
  try {
    if (secrets.form === 'plain') pdu = readUnsecuredSpdu(response);
    else {
      const d = secrets.encryptionPrivate ?? fail('no encryption key kept for an encrypted request');
      const key: DecryptionKey = { kind: 'rek', publicKey: { curve: secrets.curve, publicKey: mulBase(secrets.curve, d, true) }, privateKey: d };
      const acaId = toHex(certificateHashedId8(aca));
      const v = await verifyEncryptedSignedSpdu(response, [key], {
        resolveSigner: (id) => ('certificate' in id && id.certificate.length === 1 && toHex(certificateHashedId8(id.certificate[0]!)) === acaId ? aca : undefined),
      });
      if (!v.ok) fail(`AcaEeCertResponsePrivateSpdu: ${v.reason}`);
      pdu = (v as { pdu: ScmsPdu }).pdu;
    }
  } catch (e) {
    if (e instanceof KindResponseError) throw e;
    if (e instanceof DecryptionError) fail(`cannot decrypt the response: ${e.message}`);
    return fail(`malformed response: ${(e as Error).message}`);
  }
  const c = pdu!.content;
  if (!('aca-ee' in c) || !('acaEeCertResponse' in c['aca-ee'])) fail('response is not an aca-ee acaEeCertResponse');
  const resp = (c as { 'aca-ee': { acaEeCertResponse: { certificate: Certificate; privateKeyInfo?: Uint8Array } } })['aca-ee'].acaEeCertResponse;
  const cert = resp.certificate;
  if (!isIssuedBy(cert, aca)) fail('the certificate is not issued by the expected ACA');
  if (cert.type !== secrets.type) fail(`requested a ${secrets.type} certificate, got ${String(cert.type)}`);
  if ('linkageData' in (cert.toBeSigned.id as Record<string, unknown>)) fail('an identification certificate with LinkageData');
  let privateKey: bigint;
  if (cert.type === 'explicit') {
    privateKey = secrets.signingPrivate;
    if (!certificateKeyPairMatches(cert, privateKey)) fail('the certificate verification key is not the requested key');
  } else {
    if (!resp.privateKeyInfo) fail('privateKeyInfo absent');
    try {
      privateKey = reconstructImplicitKeyPair(cert, o.acaChain, secrets.signingPrivate, bytesToBigInt(resp.privateKeyInfo!)).privateKey;
    } catch (e) {
      return fail(`implicit key reconstruction failed: ${(e as Error).message}`);
    }
  }
  const chain = verifyChainFast([cert, ...o.acaChain], { trustAnchors: o.trustAnchors, clock: o.clock, skipCurrentValidity: true });
  if (!chain.ok) fail(`certificate chain: ${chain.errors.map((e) => `${e.code} at ${e.index}: ${e.reason}`).join('; ')}`);
  return { certificate: cert, privateKey: privateKey!, publicKey: (chain as { publicKeys: PublicKey[] }).publicKeys[0]! };
}

export interface KindDownload {
  readonly certificates: KindCertificate[];
  readonly info: RaEeCertInfo;
}

/** Unzips a download of any kind / form and processes every certificate response. */
export async function processKindDownload(zip: Uint8Array, o: KindResponseOptions & { secrets: KindSecrets; requestHash: Uint8Array }): Promise<KindDownload> {
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(zip);
  } catch (e) {
    return fail(`not a zip file: ${(e as Error).message}`);
  }
  const hash = toHex(o.requestHash);
  const s = o.secrets;
  const certificates: KindCertificate[] = [];
  let info: RaEeCertInfo | undefined;
  for (const [name, bytes] of Object.entries(files)) {
    if (name.endsWith('.info')) {
      const c = readUnsecuredSpdu(bytes).content;
      if (!('ee-ra' in c) || !('raEeCertInfo' in c['ee-ra'])) fail(`${name} is not an RaEeCertInfoSpdu`);
      info = (c as { 'ee-ra': { raEeCertInfo: RaEeCertInfo } })['ee-ra'].raEeCertInfo;
      if (toHex(info.requestHash) !== hash) fail(`${name} is for another request`);
      continue;
    }
    if (s.form === 'butterfly') {
      const m = /^([0-9a-f]{1,4})_([0-9a-f]{1,8})$/i.exec(name) ?? fail(`unexpected entry ${name}`);
      const i = parseInt(m[1]!, 16);
      const j = parseInt(m[2]!, 16);
      const r = await processAuthorizationResponse({
        secrets: s.butterfly,
        i,
        j,
        kind: s.butterfly.params.variant === 'compactUnified' ? 'cubk' : 'private',
        response: bytes,
        acaChain: o.acaChain,
        trustAnchors: o.trustAnchors,
        clock: o.clock,
        expectLinkage: s.kind === 'pseudonym',
      });
      certificates.push(r);
    } else {
      if (name !== hash) fail(`unexpected entry ${name}`);
      // i is the .info file's currentI (set below: entry order in the zip is not fixed).
      certificates.push({ i: -1, j: 0, ...(await processNonButterflyResponse(bytes, s, o)) });
    }
  }
  if (!info) return fail('the download has no .info file');
  const currentI = info.currentI;
  const out = s.form === 'butterfly' ? certificates : certificates.map((c) => ({ ...c, i: currentI }));
  out.sort((a, b) => a.i - b.i || a.j - b.j);
  return { certificates: out, info };
}
