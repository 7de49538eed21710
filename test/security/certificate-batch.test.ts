// Batch implicit issuance (issueImplicitCertificates) and the reuse of encodings for decoded copies of known
// certificates (certificate.ts encodeCertificate / sameValue), through the real codec and ECQV reconstruction.
import { describe, expect, it } from 'vitest';
import { Certificate } from '../../src/codec/gen/Ieee1609Dot2.js';
import { bytesToBigInt } from '../../src/crypto/bytes.js';
import { mulBase } from '../../src/crypto/curves.js';
import { generateKeyPair } from '../../src/crypto/ecdh.js';
import { sha256 } from '../../src/crypto/hash.js';
import {
  buildTbsCertificate,
  CertificateError,
  certificateHash,
  certificateHashedId8,
  certificatePublicKey,
  encodeCertificate,
  encodeTbsCertificate,
  issueExplicitCertificate,
  issueImplicitCertificates,
  reconstructImplicitPrivateKey,
  sameValue,
} from '../../src/security/certificate.js';
import { hexOf, testKey } from './cert-fixtures.js';

const START = new Date('2025-01-01T00:00:00Z');

async function ca() {
  const k = testKey();
  const tbs = buildTbsCertificate({ id: { name: 'aca' }, validity: { start: START, durationSeconds: 86400 * 365 }, appPermissions: [{ psid: 32 }], verifyKey: k.publicKey });
  const root = testKey();
  const rootTbs = buildTbsCertificate({ id: { name: 'root' }, validity: { start: START, durationSeconds: 86400 * 3650 }, appPermissions: [{ psid: 32 }], verifyKey: root.publicKey });
  const rootCert = await issueExplicitCertificate({ tbs: rootTbs, issuer: 'self', signer: root.signer });
  const cert = await issueExplicitCertificate({ tbs, issuer: rootCert, signer: root.signer });
  return { k, cert, rootCert };
}

describe('issueImplicitCertificates', () => {
  it('issues every valid request (keys reconstruct, e over the tbs) and reports a bad request key at its index', async () => {
    const { k, cert } = await ca();
    const ees = Array.from({ length: 5 }, () => generateKeyPair('nistP256'));
    const bad = ees[2]!.publicKey.slice();
    bad[bad.length - 1]! ^= 1;
    const requests = ees.map((ee, n) => ({
      tbs: buildTbsCertificate({ id: { name: `ee${n}` }, validity: { start: START, durationSeconds: 3600 }, appPermissions: [{ psid: 32 }] }),
      requestPublicKey: n === 2 ? bad : ee.publicKey,
    }));
    const out = issueImplicitCertificates({ issuer: cert, issuerPrivateScalar: k.d, requests });
    expect(out.length).toBe(5);
    expect(out[2]).toBeInstanceOf(CertificateError);
    out.forEach((r, n) => {
      if (n === 2) return;
      if (r instanceof Error) throw r;
      // the COER tbs inside the certificate is what e hashed: the certificate bytes after the 12-octet prefix
      expect(hexOf(encodeCertificate(r.certificate).subarray(12))).toBe(hexOf(encodeTbsCertificate(r.certificate.toBeSigned)));
      const d = reconstructImplicitPrivateKey(r.certificate, cert, bytesToBigInt(ees[n]!.privateKey), r.privateKeyContribution);
      const q = certificatePublicKey(r.certificate, cert);
      expect(hexOf(mulBase('nistP256', d))).toBe(hexOf(q.publicKey)); // d_U*G = Q_U = e*P_U + Q_CA
      // a round trip through COER gives the same certificate hash
      expect(hexOf(certificateHash(Certificate.encode(r.certificate)))).toBe(hexOf(certificateHash(r.certificate)));
    });
  });
  it('a wrong issuer scalar is refused for the whole batch', async () => {
    const { cert } = await ca();
    const ee = generateKeyPair('nistP256');
    const tbs = buildTbsCertificate({ id: 'none', validity: { start: START, durationSeconds: 3600 } });
    expect(() => issueImplicitCertificates({ issuer: cert, issuerPrivateScalar: 12345n, requests: [{ tbs, requestPublicKey: ee.publicKey }] })).toThrow(/issuer/);
  });
});

describe('encodings of decoded copies', () => {
  it('a decoded copy reuses the encoding and hash; a copy with the same signature but another tbs does not', async () => {
    const { cert } = await ca();
    const bytes = Certificate.encode(cert);
    const expected = hexOf(sha256(bytes));
    const first = Certificate.decode(bytes);
    expect(hexOf(certificateHash(first))).toBe(expected);
    const second = Certificate.decode(bytes);
    expect(second).not.toBe(first);
    expect(hexOf(certificateHash(second))).toBe(expected);
    expect(hexOf(certificateHashedId8(second))).toBe(expected.slice(-16));
    // the copy's link to its twin is invisible to keys, spreads and the codec
    expect(Object.keys(second)).toEqual(Object.keys(Certificate.decode(bytes)));
    expect(Object.getOwnPropertySymbols({ ...second })).toEqual([]);
    expect(hexOf(Certificate.encode(second))).toBe(hexOf(bytes));
    expect(hexOf(certificateHash(second))).toBe(expected);
    // same signature octets (same fingerprint), different tbs: its own encoding and hash
    const forged = Certificate.decode(bytes);
    forged.toBeSigned = { ...forged.toBeSigned, crlSeries: forged.toBeSigned.crlSeries + 1 };
    expect(hexOf(encodeCertificate(forged))).toBe(hexOf(Certificate.encode(forged)));
    expect(hexOf(certificateHash(forged))).toBe(hexOf(sha256(Certificate.encode(forged))));
    expect(hexOf(certificateHash(forged))).not.toBe(expected);
  });
  it('sameValue compares codec values structurally', () => {
    expect(sameValue({ a: 1n, b: [Uint8Array.of(1, 2)], c: 'x' }, { c: 'x', b: [Uint8Array.of(1, 2)], a: 1n })).toBe(true);
    expect(sameValue({ a: 1n, u: undefined }, { a: 1n })).toBe(true);
    expect(sameValue({ a: 1n }, { a: 2n })).toBe(false);
    expect(sameValue({ a: Uint8Array.of(1) }, { a: Uint8Array.of(2) })).toBe(false);
    expect(sameValue({ a: Uint8Array.of(1) }, { a: [1] })).toBe(false);
    expect(sameValue([1, 2], [1, 2, 3])).toBe(false);
    expect(sameValue({ a: null }, { a: null })).toBe(true);
    expect(sameValue({ a: null }, {})).toBe(false);
    expect(sameValue({ a: { b: 1 } }, { a: { b: 1, c: 2 } })).toBe(false);
  });
});
