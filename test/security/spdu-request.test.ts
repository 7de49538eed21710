/**
 * Signed certificate requests (IEEE 1609.2.1 SignedCertificateRequest, Ieee1609Dot2Dot1Protocol): signature over
 * H(COER(tbsRequest)) || H(signer certificate or ""), checked here with node:crypto; EeEcaCertRequestSpdu built with
 * signCertificateRequest decodes with the generated parameterized type.
 */
import { createHash, createPublicKey, verify as nodeVerify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  Certificate,
  EeEcaCertRequestSpdu,
  Ieee1609Dot2Data,
  ScopedCertificateRequest,
  SignedCertificateRequest,
} from '../../src/codec/index.js';
import { signCertificateRequest, verifyCertificateRequest } from '../../src/security/spdu.js';
import { curvePoint, hex, testCertificate, testKey, type TestKey } from './spdu-fixtures.js';

const b64u = (b: Uint8Array) => Buffer.from(b).toString('base64url');

function nodeCheckP256(key: TestKey, scr: SignedCertificateRequest, signerCert?: Certificate): boolean {
  const h = (b: Uint8Array) => createHash('sha256').update(b).digest();
  const input = Buffer.concat([h(ScopedCertificateRequest.encode(scr.tbsRequest)), h(signerCert ? Certificate.encode(signerCert) : new Uint8Array(0))]);
  const sig = (scr.signature as { ecdsaNistP256Signature: { rSig: { 'x-only': Uint8Array }; sSig: Uint8Array } }).ecdsaNistP256Signature;
  const pub = key.publicKey;
  const k = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: b64u(pub.slice(1, 33)), y: b64u(pub.slice(33)) }, format: 'jwk' });
  return nodeVerify('sha256', input, { key: k, dsaEncoding: 'ieee-p1363' }, Buffer.concat([sig.rSig['x-only'], sig.sSig]));
}

function eeEcaRequest(verifyKey: TestKey, canonicalId?: string): ScopedCertificateRequest {
  return {
    version: 2,
    content: {
      'eca-ee': {
        eeEcaCertRequest: {
          version: 2,
          generationTime: 667_915_205,
          type: 'explicit',
          tbsCert: {
            id: { name: 'obu-1' },
            cracaId: new Uint8Array(3),
            crlSeries: 0,
            validityPeriod: { start: 667_915_205, duration: { years: 6 } },
            certRequestPermissions: [{ subjectPermissions: { explicit: [{ psid: 32n }] } }],
            verifyKeyIndicator: { verificationKey: { ecdsaNistP256: curvePoint('nistP256', verifyKey.publicKey) } as never },
          },
          ...(canonicalId !== undefined ? { canonicalId } : {}),
        },
      },
    },
  };
}

function innerRequest(d: Ieee1609Dot2Data): SignedCertificateRequest {
  if (!('signedCertificateRequest' in d.content)) throw new Error('not a signed certificate request');
  return SignedCertificateRequest.decode(d.content.signedCertificateRequest);
}

describe('signCertificateRequest / verifyCertificateRequest', () => {
  const enrolmentKey = testKey('nistP256');
  const canonicalKey = testKey('nistP256');

  it('self-signed EeEcaCertRequest (no canonicalId): signed with the requested key, verifies without a resolver', async () => {
    const tbsRequest = eeEcaRequest(enrolmentKey);
    const d = await signCertificateRequest({ tbsRequest, signer: enrolmentKey.signer, signerId: 'self' });
    const scr = innerRequest(d);
    expect(scr.hashAlgorithmId).toBe('sha256');
    expect(scr.signer).toEqual({ self: null });
    expect(scr.tbsRequest).toEqual(tbsRequest);
    expect(nodeCheckP256(enrolmentKey, scr)).toBe(true);

    const bytesOut = Ieee1609Dot2Data.encode(d);
    // 03 = protocolVersion, 83 = [3] signedCertificateRequest (an Opaque octet string follows).
    expect(hex(bytesOut.subarray(0, 2))).toBe('0383');
    const res = verifyCertificateRequest(bytesOut);
    expect(res).toMatchObject({ ok: true, signer: { self: null }, tbsRequest });

    // The same octets are an EeEcaCertRequestSpdu (Ieee1609Dot2Data-SignedCertRequest {..., SignerSelf}).
    const spdu = EeEcaCertRequestSpdu.decode(bytesOut);
    const content = spdu.content as { signedCertificateRequest: { tbsRequest: unknown; signer: unknown; hashAlgorithmId: unknown } };
    expect(content.signedCertificateRequest.tbsRequest).toEqual(tbsRequest);
    expect(content.signedCertificateRequest.signer).toEqual({ self: null });
    expect(hex(EeEcaCertRequestSpdu.encode(spdu))).toBe(hex(bytesOut));
  });

  it('with canonicalId: signed with the canonical key, which the resolver must supply', async () => {
    const tbsRequest = eeEcaRequest(enrolmentKey, 'canonical-0001');
    const d = await signCertificateRequest({ tbsRequest, signer: canonicalKey.signer, signerId: 'self' });
    expect(nodeCheckP256(canonicalKey, innerRequest(d))).toBe(true);
    expect(verifyCertificateRequest(d)).toEqual({ ok: false, reason: 'unknown or untrusted signer (self)' });
    expect(verifyCertificateRequest(d, { resolveSigner: () => enrolmentKey })).toEqual({ ok: false, reason: 'signature does not verify' });
    expect(verifyCertificateRequest(d, { resolveSigner: () => canonicalKey })).toMatchObject({ ok: true });
  });

  it('signed with a certificate (SignerSingleCert): H(certificate) in the input', async () => {
    const cert = testCertificate(enrolmentKey);
    const tbsRequest = eeEcaRequest(testKey('nistP256'));
    const d = await signCertificateRequest({ tbsRequest, signer: enrolmentKey.signer, signerId: { certificate: cert } });
    const scr = innerRequest(d);
    expect(scr.signer).toEqual({ certificate: [cert] });
    expect(nodeCheckP256(enrolmentKey, scr, cert)).toBe(true);
    expect(nodeCheckP256(enrolmentKey, scr)).toBe(false);
    const res = verifyCertificateRequest(d, { resolveSigner: () => cert });
    expect(res).toMatchObject({ ok: true, signerCertificate: cert });
    // Such a request is not an EeEcaCertRequestSpdu (its signer must be self).
    expect(() => EeEcaCertRequestSpdu.decode(Ieee1609Dot2Data.encode(d))).toThrow();
  });

  it('tampered request and signature fail', async () => {
    const tbsRequest = eeEcaRequest(enrolmentKey);
    const d = await signCertificateRequest({ tbsRequest, signer: enrolmentKey.signer, signerId: 'self' });
    const scr = innerRequest(d);
    const tampered = structuredClone(scr);
    (tampered.tbsRequest.content as { 'eca-ee': { eeEcaCertRequest: { generationTime: number } } })['eca-ee'].eeEcaCertRequest.generationTime += 1;
    const wrap = (s: SignedCertificateRequest): Ieee1609Dot2Data => ({ protocolVersion: 3, content: { signedCertificateRequest: SignedCertificateRequest.encode(s) } });
    expect(verifyCertificateRequest(wrap(tampered))).toEqual({ ok: false, reason: 'signature does not verify' });
    const badSig = structuredClone(scr);
    (badSig.signature as { ecdsaNistP256Signature: { sSig: Uint8Array } }).ecdsaNistP256Signature.sSig[0] ^= 1;
    expect(verifyCertificateRequest(wrap(badSig))).toEqual({ ok: false, reason: 'signature does not verify' });
    expect(verifyCertificateRequest({ protocolVersion: 3, content: { unsecuredData: new Uint8Array(1) } })).toMatchObject({ ok: false });
  });
});
