/**
 * EE processing of downloaded authorization (pseudonym) certificate responses (IEEE 1609.2.1 9.3, Protocol
 * AcaEeCertResponsePrivateSpdu / AcaEeCertResponseCubkSpdu, AcaEeInterface AcaEeCertResponse):
 *   1. cocoon private keys for (i, j): b (signing) and the response decryption key (original: the expanded
 *      encryption caterpillar; unified / compact unified: b itself) — crypto/butterfly eeCocoonKeys;
 *   2. private: verify the ACA's outer signature, then decrypt (rekRecipInfo); cubk: decrypt only, and the ACA
 *      certificate must have flags usesCubk;
 *   3. the certificate must be issued by that ACA (the Protocol note: the outer signer is the issuing ACA);
 *   4. private key: explicit butterfly d = b + c (privateKeyInfo = c); implicit d = e*b + s (ECQV,
 *      privateKeyInfo = s) — checked against the certificate's (reconstructed) public key;
 *   5. the chain certificate -> ACA -> ... -> root verifies against the trust anchors (validity-period nesting and
 *      permissions; not "valid now": batches cover future i-periods);
 *   6. LinkageData.iCert = i (pseudonyms; identification certificates from butterfly keys carry no LinkageData).
 */
import { Ieee1609Dot2Data as Ieee1609Dot2DataCodec, ScmsPdu as ScmsPduCodec, type Certificate, type ScmsPdu } from '../../codec/index.js';
import { bytesToBigInt, toHex } from '../../crypto/bytes.js';
import { eeCocoonKeys, eeExplicitPrivateKey } from '../../crypto/butterfly.js';
import { mulBase } from '../../crypto/curves.js';
import { certificateHashedId8, certificateKeyPairMatches, isIssuedBy } from '../../security/certificate.js';
import { decryptDataDetailed, DecryptionError, type DecryptionKey } from '../../security/encryption.js';
import { verifyEncryptedSignedSpdu } from '../../security/scms-pdu.js';
import type { Clock } from '../../security/time.js';
import type { ButterflySecrets } from './butterfly.js';
import { reconstructImplicitKeyPair, verifyChainFast, type PublicKey } from './fast-verify.js';

export class AuthorizationResponseError extends Error {
  override readonly name = 'AuthorizationResponseError';
}

export interface AuthorizationResponseInput {
  readonly secrets: ButterflySecrets;
  readonly i: number;
  readonly j: number;
  readonly kind: 'private' | 'cubk';
  /** COER of the AcaEeCertResponsePrivateSpdu / AcaEeCertResponseCubkSpdu. */
  readonly response: Uint8Array;
  /** The ACA certificate and its issuers up to the root: [aca, ica, root]. */
  readonly acaChain: readonly Certificate[];
  readonly trustAnchors: readonly Certificate[];
  readonly clock: Clock;
  /**
   * Pseudonyms (default true): the id must be LinkageData with iCert = i. False for identification / application
   * certificates issued from butterfly keys (ee/kinds.ts): the id must then NOT be LinkageData.
   */
  readonly expectLinkage?: boolean;
}

export interface AuthorizationCertificate {
  readonly i: number;
  readonly j: number;
  readonly certificate: Certificate;
  /** The certificate's private key (memory only). */
  readonly privateKey: bigint;
  /** Its verification key (uncompressed; reconstructed for implicit certificates), as the chain check found it. */
  readonly publicKey?: PublicKey;
}

const fail = (m: string): never => {
  throw new AuthorizationResponseError(m);
};

export async function processAuthorizationResponse(input: AuthorizationResponseInput): Promise<AuthorizationCertificate> {
  const { secrets, i, j } = input;
  const aca = input.acaChain[0] ?? fail('acaChain is empty');
  const { signingCocoonPrivate: b, decryptionPrivate } = eeCocoonKeys(secrets.curve, secrets.params, i, j);
  const key: DecryptionKey = {
    kind: 'rek',
    publicKey: { curve: secrets.curve, publicKey: mulBase(secrets.curve, decryptionPrivate, true) },
    privateKey: decryptionPrivate,
  };

  let pdu: ScmsPdu;
  try {
    if (input.kind === 'private') {
      const acaId = toHex(certificateHashedId8(aca));
      const v = await verifyEncryptedSignedSpdu(input.response, [key], {
        resolveSigner: (id) => ('certificate' in id && id.certificate.length === 1 && toHex(certificateHashedId8(id.certificate[0]!)) === acaId ? aca : undefined),
      });
      if (!v.ok) fail(`AcaEeCertResponsePrivateSpdu: ${v.reason}`);
      pdu = (v as { pdu: ScmsPdu }).pdu;
    } else {
      if (aca.toBeSigned.flags?.[0] !== '1') fail('AcaEeCertResponseCubkSpdu from an ACA certificate without flags usesCubk');
      const d = await decryptDataDetailed(Ieee1609Dot2DataCodec.decode(input.response), [key]);
      if (!('unsecuredData' in d.data.content)) fail('AcaEeCertResponseCubkSpdu: plaintext is not unsecuredData');
      pdu = ScmsPduCodec.decode(d.payload);
    }
  } catch (e) {
    if (e instanceof AuthorizationResponseError) throw e;
    if (e instanceof DecryptionError) fail(`cannot decrypt the response for (i, j) = (${i}, ${j}): ${e.message}`);
    fail(`malformed response for (i, j) = (${i}, ${j}): ${(e as Error).message}`);
  }
  const c = pdu!.content;
  if (!('aca-ee' in c) || !('acaEeCertResponse' in c['aca-ee'])) fail('response is not an aca-ee acaEeCertResponse');
  const resp = (c as { 'aca-ee': { acaEeCertResponse: { certificate: Certificate; privateKeyInfo?: Uint8Array } } })['aca-ee'].acaEeCertResponse;
  const cert = resp.certificate;
  if (!isIssuedBy(cert, aca)) fail('the certificate is not issued by the ACA that signed / was expected for the response');
  if (cert.type !== secrets.type) fail(`requested a ${secrets.type} certificate, got ${String(cert.type)}`);
  const id = cert.toBeSigned.id as Record<string, unknown>;
  if (input.expectLinkage === false) {
    if ('linkageData' in id) fail('an identification certificate with LinkageData');
  } else if (!('linkageData' in id) || (id.linkageData as { iCert: number }).iCert !== i) fail(`certificate id is not LinkageData with iCert ${i}`);
  if (!resp.privateKeyInfo) fail('privateKeyInfo absent');
  const r = bytesToBigInt(resp.privateKeyInfo!);

  let privateKey: bigint;
  if (cert.type === 'explicit') {
    privateKey = eeExplicitPrivateKey(secrets.curve, b, r);
    if (!certificateKeyPairMatches(cert, privateKey)) fail('b + c does not match the certificate verification key');
  } else {
    try {
      privateKey = reconstructImplicitKeyPair(cert, input.acaChain, b, r).privateKey;
    } catch (e) {
      return fail(`implicit key reconstruction failed: ${(e as Error).message}`);
    }
  }
  // The ACA -> ... -> root part is verified once per chain (fast-verify.ts), the certificate itself every time.
  const chain = verifyChainFast([cert, ...input.acaChain], { trustAnchors: input.trustAnchors, clock: input.clock, skipCurrentValidity: true });
  if (!chain.ok) fail(`certificate chain: ${chain.errors.map((e) => `${e.code} at ${e.index}: ${e.reason}`).join('; ')}`);
  return { i, j, certificate: cert, privateKey: privateKey!, publicKey: (chain as { publicKeys: PublicKey[] }).publicKeys[0]! };
}
