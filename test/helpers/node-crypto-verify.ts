// An independent check of explicit P-256 certificates with node:crypto (not the project's ECDSA code).
import { createHash, createPublicKey, createVerify } from 'node:crypto';
import { ToBeSignedCertificate, type Certificate } from '../../src/codec/index.js';

/** IEEE 1609.2 5.3.1: ECDSA-SHA256 over SHA256(tbs) || SHA256(issuer COER or '' when self-signed), r || s. */
export function verifyExplicitWithNodeCrypto(cert: Certificate, issuerBytes: Uint8Array | undefined, issuerCert: Certificate): boolean {
  const h = (b: Uint8Array) => createHash('sha256').update(b).digest();
  const message = Buffer.concat([h(ToBeSignedCertificate.encode(cert.toBeSigned)), h(issuerBytes ?? new Uint8Array(0))]);
  const vk = (issuerCert.toBeSigned.verifyKeyIndicator as { verificationKey: { ecdsaNistP256: Record<string, Uint8Array> } }).verificationKey
    .ecdsaNistP256;
  const [form, x] = Object.entries(vk)[0]!;
  const point = Buffer.concat([Buffer.of(form === 'compressed-y-0' ? 2 : 3), Buffer.from(x)]);
  // SubjectPublicKeyInfo for id-ecPublicKey / prime256v1 with a compressed point.
  const spki = Buffer.concat([Buffer.from('3039301306072a8648ce3d020106082a8648ce3d030107032200', 'hex'), point]);
  const key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  const sig = (cert.signature as { ecdsaNistP256Signature: { rSig: { 'x-only': Uint8Array }; sSig: Uint8Array } }).ecdsaNistP256Signature;
  const rs = Buffer.concat([Buffer.from(sig.rSig['x-only']), Buffer.from(sig.sSig)]);
  return createVerify('sha256').update(message).verify({ key, dsaEncoding: 'ieee-p1363' }, rs);
}
