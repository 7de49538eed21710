// Certificates (1609.2 6.4.3, 5.3.1, 5.3.2): explicit issue/verify checked independently with node:crypto,
// deployed RCA/ICA certificates and HashedIds from scms-verified-vectors.json, implicit issue/reconstruct and
// the published 1609.2 implicit certificate vector.
import { createHash, createPublicKey, createVerify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Certificate, ToBeSignedCertificate } from '../../src/codec/gen/Ieee1609Dot2.js';
import { bytesToBigInt } from '../../src/crypto/bytes.js';
import { curve as curveOf, mulBase, type CurveName } from '../../src/crypto/curves.js';
import {
  buildTbsCertificate,
  certificateEncryptionKey,
  certificateHash,
  certificateHashedId10,
  certificateHashedId3,
  certificateHashedId8,
  certificateKeyPairMatches,
  certificatePublicKey,
  CertificateError,
  decodeCertificate,
  encodeCertificate,
  issueExplicitCertificate,
  issueImplicitCertificate,
  reconstructImplicitPrivateKey,
  verifyCertificateSignature,
} from '../../src/security/certificate.js';
import { hex, readJson, toHex } from '../crypto/vectors.js';
import { testKey, type TestKey } from './cert-fixtures.js';

const verified = readJson('scms-verified-vectors.json');
const START = new Date('2025-01-01T00:00:00Z');

function nodeHash(alg: 'sha256' | 'sha384', b: Uint8Array): Buffer {
  return createHash(alg).update(b).digest();
}

/** Independent check with node:crypto: ECDSA (ieee-p1363) over H(H(tbs) || H(issuer or "")). */
function nodeVerify(cert: Certificate, key: TestKey, issuerBytes: Uint8Array | undefined): boolean {
  const c = curveOf(key.curve);
  const alg = c.size === 32 ? 'sha256' : 'sha384';
  const tbs = ToBeSignedCertificate.encode(cert.toBeSigned);
  const input = Buffer.concat([nodeHash(alg, tbs), nodeHash(alg, issuerBytes ?? new Uint8Array(0))]);
  const sigAlt = Object.values(cert.signature as object)[0] as { rSig: Record<string, Uint8Array>; sSig: Uint8Array };
  const r = Object.values(sigAlt.rSig)[0]!;
  const size = c.size;
  const pub = key.publicKey;
  const jwk = {
    kty: 'EC',
    crv: key.curve === 'nistP256' ? 'P-256' : 'P-384',
    x: Buffer.from(pub.subarray(1, 1 + size)).toString('base64url'),
    y: Buffer.from(pub.subarray(1 + size)).toString('base64url'),
  };
  const v = createVerify(alg);
  v.update(input);
  return v.verify({ key: createPublicKey({ key: jwk, format: 'jwk' }), dsaEncoding: 'ieee-p1363' }, Buffer.concat([r, sigAlt.sSig]));
}

function rootTbs(key: TestKey, name = 'root.test') {
  return buildTbsCertificate({
    id: { name },
    validity: { start: START, durationSeconds: 20 * 365 * 86400 },
    region: { countries: [840] },
    certIssuePermissions: [{ psids: 'all', minChainLength: 3 }],
    verifyKey: { curve: key.curve, publicKey: key.publicKey },
  });
}

function flipLast(b: Uint8Array): Uint8Array {
  const c = new Uint8Array(b);
  c[c.length - 1] ^= 1;
  return c;
}

describe('explicit certificates (6.4.3, 5.3.1)', () => {
  for (const curveName of ['nistP256', 'nistP384', 'brainpoolP256r1'] as CurveName[]) {
    it(`self-signed ${curveName}: verifies here and with node:crypto; issuer self names the curve hash`, async () => {
      const k = testKey(curveName);
      const cert = await issueExplicitCertificate({ tbs: rootTbs(k), issuer: 'self', signer: k.signer });
      const alg = curveOf(curveName).hash;
      expect(cert.issuer).toEqual({ self: alg });
      expect(cert.version).toBe(3);
      expect(cert.type).toBe('explicit');
      expect(Object.keys(cert.signature!)[0]).toBe(
        { nistP256: 'ecdsaNistP256Signature', nistP384: 'ecdsaNistP384Signature', brainpoolP256r1: 'ecdsaBrainpoolP256r1Signature' }[
          curveName as 'nistP256'
        ],
      );
      expect(verifyCertificateSignature(cert, 'self')).toBe(true);
      if (curveName !== 'brainpoolP256r1') expect(nodeVerify(cert, k, undefined)).toBe(true);
      // whole-certificate hash: the named algorithm over the COER bytes
      const bytes = Certificate.encode(cert);
      expect(toHex(certificateHash(cert))).toBe(nodeHash(alg, bytes).toString('hex'));
      expect(toHex(certificateHash(bytes))).toBe(nodeHash(alg, bytes).toString('hex'));
    });
  }

  it('issued by a P-384 root: sha384AndDigest with the root HashedId8, signature over H(tbs) || H(root)', async () => {
    const rk = testKey('nistP384');
    const root = await issueExplicitCertificate({ tbs: rootTbs(rk), issuer: 'self', signer: rk.signer });
    const ik = testKey('nistP256');
    const tbs = buildTbsCertificate({
      id: { name: 'ica.test' },
      validity: { start: START, durationSeconds: 86400 * 365 },
      certIssuePermissions: [{ psids: 'all' }],
      verifyKey: { curve: 'nistP256', publicKey: ik.publicKey },
    });
    const ica = await issueExplicitCertificate({ tbs, issuer: root, signer: rk.signer });
    const rootBytes = Certificate.encode(root);
    expect(ica.issuer).toEqual({ sha384AndDigest: new Uint8Array(nodeHash('sha384', rootBytes).subarray(-8)) });
    expect(toHex(certificateHashedId8(root))).toBe(nodeHash('sha384', rootBytes).subarray(-8).toString('hex'));
    expect(verifyCertificateSignature(ica, root)).toBe(true);
    expect(nodeVerify(ica, rk, rootBytes)).toBe(true);
    // signed with the issuer's key but verified against another root: false
    const other = await issueExplicitCertificate({ tbs: rootTbs(rk, 'other.test'), issuer: 'self', signer: rk.signer });
    expect(verifyCertificateSignature(ica, other)).toBe(false);
  });

  it('P-256 issuer, compressed rSig: verifies here and with node:crypto', async () => {
    const rk = testKey('nistP256');
    const root = await issueExplicitCertificate({ tbs: rootTbs(rk), issuer: 'self', signer: rk.signer });
    const ek = testKey('nistP256');
    const tbs = buildTbsCertificate({
      id: 'none',
      validity: { start: START, durationSeconds: 3600 },
      appPermissions: [{ psid: 0x20 }],
      verifyKey: ek.publicKey,
    });
    const cert = await issueExplicitCertificate({ tbs, issuer: root, signer: rk.signer, rForm: 'compressed' });
    const rSig = (cert.signature as { ecdsaNistP256Signature: { rSig: object } }).ecdsaNistP256Signature.rSig;
    expect(Object.keys(rSig)[0]).toMatch(/^compressed-y-[01]$/);
    expect(verifyCertificateSignature(cert, root)).toBe(true);
    expect(nodeVerify(cert, rk, Certificate.encode(root))).toBe(true);
    // the whole-certificate hash uses the canonical x-only rSig (6.1.2)
    const xOnly = { ...cert, signature: { ecdsaNistP256Signature: { ...(cert.signature as any).ecdsaNistP256Signature, rSig: { 'x-only': Object.values(rSig)[0] } } } } as Certificate;
    expect(toHex(certificateHash(cert))).toBe(nodeHash('sha256', Certificate.encode(xOnly)).toString('hex'));
    expect(toHex(certificateHash(cert))).not.toBe(nodeHash('sha256', Certificate.encode(cert)).toString('hex'));
  });

  it('tampered tbs or signature: false; malformed input: CertificateError', async () => {
    const k = testKey();
    const cert = await issueExplicitCertificate({ tbs: rootTbs(k), issuer: 'self', signer: k.signer });
    const tampered: Certificate = { ...cert, toBeSigned: { ...cert.toBeSigned, crlSeries: cert.toBeSigned.crlSeries + 1 } };
    expect(verifyCertificateSignature(tampered, 'self')).toBe(false);
    const sig = (cert.signature as any).ecdsaNistP256Signature;
    const badS: Certificate = { ...cert, signature: { ecdsaNistP256Signature: { ...sig, sSig: flipLast(sig.sSig) } } };
    expect(verifyCertificateSignature(badS, 'self')).toBe(false);
    const badR: Certificate = { ...cert, signature: { ecdsaNistP256Signature: { ...sig, rSig: { 'x-only': flipLast(sig.rSig['x-only']) } } } };
    expect(verifyCertificateSignature(badR, 'self')).toBe(false);
    const wrongCurve: Certificate = { ...cert, signature: { ecdsaBrainpoolP256r1Signature: sig } };
    expect(verifyCertificateSignature(wrongCurve, 'self')).toBe(false);
    expect(() => verifyCertificateSignature({ ...cert, signature: undefined } as any, 'self')).toThrow(CertificateError);
    expect(() => verifyCertificateSignature(cert, cert)).toThrow(/self-signed/);
    // a key that is not the tbs key cannot self-sign
    await expect(issueExplicitCertificate({ tbs: rootTbs(k), issuer: 'self', signer: testKey().signer })).rejects.toThrow(CertificateError);
    // placeholder verifyKeyIndicator
    const noKey = buildTbsCertificate({ id: 'none', validity: { start: START, durationSeconds: 60 } });
    await expect(issueExplicitCertificate({ tbs: noKey, issuer: 'self', signer: k.signer })).rejects.toThrow(/verificationKey/);
  });

  it('uncompressed keys in the tbs are canonicalized (compressed) before signing', async () => {
    const k = testKey();
    const tbs = rootTbs(k);
    const size = 32;
    const uncompressed = { ...tbs, verifyKeyIndicator: { verificationKey: { ecdsaNistP256: { uncompressedP256: { x: k.publicKey.slice(1, 1 + size), y: k.publicKey.slice(1 + size) } } } } };
    const cert = await issueExplicitCertificate({ tbs: uncompressed as any, issuer: 'self', signer: k.signer });
    const p = (cert.toBeSigned.verifyKeyIndicator as any).verificationKey.ecdsaNistP256;
    expect(Object.keys(p)[0]).toBe((k.publicKey[64]! & 1) === 0 ? 'compressed-y-0' : 'compressed-y-1');
    expect(toHex(certificatePublicKey(cert).publicKey)).toBe(toHex(k.publicKey));
  });

  it('a verification key that is not on the curve: CertificateError', async () => {
    const k = testKey();
    const cert = await issueExplicitCertificate({ tbs: rootTbs(k), issuer: 'self', signer: k.signer });
    const off = { ...cert, toBeSigned: { ...cert.toBeSigned, verifyKeyIndicator: { verificationKey: { ecdsaNistP256: { 'compressed-y-0': Uint8Array.from([...new Uint8Array(31), 1]) } } } } } as Certificate;
    expect(() => certificatePublicKey(off)).toThrow(CertificateError);
    expect(() => verifyCertificateSignature(off, 'self')).toThrow(CertificateError);
  });

  it('encryption key', async () => {
    const k = testKey();
    const enc = testKey();
    const tbs = buildTbsCertificate({ ...({} as any), id: 'none', validity: { start: START, durationSeconds: 60 }, verifyKey: k.publicKey, encryptionKey: enc.publicKey });
    const cert = await issueExplicitCertificate({ tbs, issuer: 'self', signer: k.signer });
    const ek = certificateEncryptionKey(cert)!;
    expect(ek.curve).toBe('nistP256');
    expect(ek.symmAlgorithm).toBe('aes128Ccm');
    expect(toHex(ek.publicKey.subarray(1))).toBe(toHex(enc.publicKey.subarray(1, 33)));
    expect(ek.publicKey[0]).toBe(2 + (enc.publicKey[64]! & 1));
    expect(certificateEncryptionKey({ ...cert, toBeSigned: { ...cert.toBeSigned, encryptionKey: undefined } } as any)).toBeUndefined();
  });
});

describe('deployed certificates (scms-verified-vectors.json hashedid)', () => {
  const vs = verified.vectors.hashedid.vectors as Array<Record<string, string>>;
  const byName = (n: string) => vs.find((v) => v.name === n)!;
  it('has the RCA and ICA', () => {
    expect(byName('pentasecurity_rca')).toBeDefined();
    expect(byName('pentasecurity_ica')).toBeDefined();
  });
  for (const v of vs) {
    it(`${v.name}: hash and HashedId8/10/3`, () => {
      const bytes = hex(v.certificate_coer!);
      expect(toHex(certificateHash(bytes))).toBe(v.sha256);
      expect(toHex(certificateHashedId8(bytes))).toBe(v.hashedid8);
      expect(toHex(certificateHashedId10(bytes))).toBe(v.hashedid10);
      expect(toHex(certificateHashedId3(bytes))).toBe(v.hashedid3);
      const cert = decodeCertificate(bytes);
      expect(toHex(encodeCertificate(cert))).toBe(v.certificate_coer);
      expect(toHex(certificateHashedId8(cert))).toBe(v.hashedid8);
    });
  }
  it('RCA is self-signed and verifies; ICA verifies with the RCA', () => {
    const rca = decodeCertificate(hex(byName('pentasecurity_rca').certificate_coer!));
    const ica = decodeCertificate(hex(byName('pentasecurity_ica').certificate_coer!));
    expect(verifyCertificateSignature(rca, 'self')).toBe(true);
    expect(toHex((ica.issuer as { sha256AndDigest: Uint8Array }).sha256AndDigest)).toBe(byName('pentasecurity_rca').hashedid8);
    expect(verifyCertificateSignature(ica, rca)).toBe(true);
    // and not with the ICA itself as issuer (wrong key and wrong signer hash)
    expect(verifyCertificateSignature(ica, ica)).toBe(false);
    const badIca = decodeCertificate(flipLast(hex(byName('pentasecurity_ica').certificate_coer!)));
    expect(verifyCertificateSignature(badIca, rca)).toBe(false);
  });
});

describe('implicit certificates (ECQV, 5.3.2)', () => {
  async function caFixture(curveName: CurveName = 'nistP256') {
    const rk = testKey(curveName);
    const root = await issueExplicitCertificate({ tbs: rootTbs(rk), issuer: 'self', signer: rk.signer });
    return { rk, root };
  }

  it('issue -> reconstruct private and public key: d*G == Q', async () => {
    const { rk, root } = await caFixture();
    const req = testKey();
    const tbs = buildTbsCertificate({ id: 'none', validity: { start: START, durationSeconds: 3600 }, appPermissions: [{ psid: 0x20 }] });
    const { certificate, privateKeyContribution } = issueImplicitCertificate({
      tbs,
      issuer: root,
      issuerPrivateScalar: rk.d,
      requestPublicKey: req.publicKey,
    });
    expect(certificate.type).toBe('implicit');
    expect(certificate.signature).toBeUndefined();
    expect(toHex((certificate.issuer as any).sha256AndDigest)).toBe(toHex(certificateHashedId8(root)));
    // decodes as an ImplicitCertificate-shaped Certificate
    expect(decodeCertificate(Certificate.encode(certificate))).toEqual(certificate);
    const dU = reconstructImplicitPrivateKey(certificate, root, req.d, privateKeyContribution);
    const QU = certificatePublicKey(certificate, root);
    expect(toHex(mulBase('nistP256', dU))).toBe(toHex(QU.publicKey));
    expect(certificateKeyPairMatches(certificate, dU, root)).toBe(true);
    // independent formula: e = SHA-256(SHA-256(tbs) || SHA-256(root)) full-length, d = e*k_U + s
    const n = curveOf('nistP256').n;
    const e = bytesToBigInt(nodeHash('sha256', Buffer.concat([nodeHash('sha256', ToBeSignedCertificate.encode(certificate.toBeSigned)), nodeHash('sha256', Certificate.encode(root))]))) % n;
    expect(dU).toBe((e * req.d + privateKeyContribution) % n);
    // wrong contribution or wrong request key: mismatch detected
    expect(() => reconstructImplicitPrivateKey(certificate, root, req.d, privateKeyContribution + 1n)).toThrow(CertificateError);
    expect(() => reconstructImplicitPrivateKey(certificate, root, req.d + 1n, privateKeyContribution)).toThrow(/does not match/);
  });

  it('implicit issuer (implicit ICA -> implicit EE): public key needs the chain', async () => {
    const { rk, root } = await caFixture();
    const icaReq = testKey();
    const icaTbs = buildTbsCertificate({ id: { name: 'ica' }, validity: { start: START, durationSeconds: 86400 }, certIssuePermissions: [{ psids: 'all' }] });
    const ica = issueImplicitCertificate({ tbs: icaTbs, issuer: root, issuerPrivateScalar: rk.d, requestPublicKey: icaReq.publicKey });
    const dIca = reconstructImplicitPrivateKey(ica.certificate, root, icaReq.d, ica.privateKeyContribution);
    const eeReq = testKey();
    const ee = issueImplicitCertificate({
      tbs: buildTbsCertificate({ id: 'none', validity: { start: START, durationSeconds: 3600 } }),
      issuer: ica.certificate,
      issuerPrivateScalar: dIca,
      requestPublicKey: eeReq.publicKey,
    });
    const dEe = reconstructImplicitPrivateKey(ee.certificate, [ica.certificate, root], eeReq.d, ee.privateKeyContribution);
    expect(toHex(mulBase('nistP256', dEe))).toBe(toHex(certificatePublicKey(ee.certificate, [ica.certificate, root]).publicKey));
    expect(() => certificatePublicKey(ee.certificate, ica.certificate)).toThrow(/issuer/);
    expect(() => certificatePublicKey(ee.certificate)).toThrow(CertificateError);
  });

  it('a P-384 issuer cannot issue implicit certificates; a wrong CA scalar is refused', async () => {
    const { rk, root } = await caFixture('nistP384');
    const req = testKey();
    const tbs = buildTbsCertificate({ id: 'none', validity: { start: START, durationSeconds: 60 } });
    expect(() => issueImplicitCertificate({ tbs, issuer: root, issuerPrivateScalar: rk.d, requestPublicKey: req.publicKey })).toThrow(/256-bit/);
    const p = await caFixture();
    expect(() => issueImplicitCertificate({ tbs, issuer: p.root, issuerPrivateScalar: p.rk.d + 1n, requestPublicKey: req.publicKey })).toThrow(
      /issuer certificate key/,
    );
  });

  describe('published 1609.2 implicit certificate (ecqv_implicit_1609dot2)', () => {
    const vs = verified.vectors.ecqv_implicit_1609dot2.vectors as Array<Record<string, string>>;
    it('has vectors', () => expect(vs.length).toBeGreaterThan(0));
    for (const v of vs) {
      it(`${v.id}: d_U through the certificate-level API`, () => {
        const cert = decodeCertificate(hex(v.certificate_coer!));
        expect(cert.type).toBe('implicit');
        const dU = reconstructImplicitPrivateKey(cert, { hash: hex(v.issuer_sha256!) }, bytesToBigInt(hex(v.request_private!)), bytesToBigInt(hex(v.s!)));
        expect(toHex(curveOf('nistP256').Fn.toBytes(dU))).toBe(v.expected_private_key);
        // the issuer field names the issuer by the last 8 octets of its hash
        expect(toHex((cert.issuer as any).sha256AndDigest)).toBe(v.issuer_sha256!.slice(-16));
        // a different issuer hash gives a different key
        const other = reconstructImplicitPrivateKey(cert, { hash: flipLast(hex(v.issuer_sha256!)) }, bytesToBigInt(hex(v.request_private!)), bytesToBigInt(hex(v.s!)));
        expect(other).not.toBe(dU);
      });
    }
  });
});

describe('whole-certificate hash across curves and implicit issuers', () => {
  it('ICA signed by a P-384 root hashes with SHA-256 (its own P-256 key, 6.4.3); its subordinate names it sha256AndDigest', async () => {
    const rk = testKey('nistP384');
    const root = await issueExplicitCertificate({ tbs: rootTbs(rk), issuer: 'self', signer: rk.signer });
    const ik = testKey();
    const ica = await issueExplicitCertificate({
      tbs: buildTbsCertificate({ id: { name: 'ica' }, validity: { start: START, durationSeconds: 86400 }, certIssuePermissions: [{ psids: 'all' }], verifyKey: ik.publicKey }),
      issuer: root,
      signer: rk.signer,
    });
    const icaBytes = Certificate.encode(ica);
    expect(toHex(certificateHash(ica))).toBe(nodeHash('sha256', icaBytes).toString('hex'));
    const ek = testKey();
    const eca = await issueExplicitCertificate({
      tbs: buildTbsCertificate({ id: { name: 'eca' }, validity: { start: START, durationSeconds: 3600 }, verifyKey: ek.publicKey }),
      issuer: ica,
      signer: ik.signer,
    });
    expect(eca.issuer).toEqual({ sha256AndDigest: new Uint8Array(nodeHash('sha256', icaBytes).subarray(-8)) });
    expect(verifyCertificateSignature(eca, ica)).toBe(true);
    expect(nodeVerify(eca, ik, icaBytes)).toBe(true);
  });

  it('explicit certificate issued by an implicit CA verifies with the reconstructed key (issuerChain)', async () => {
    const rk = testKey();
    const root = await issueExplicitCertificate({ tbs: rootTbs(rk), issuer: 'self', signer: rk.signer });
    const req = testKey();
    const ica = issueImplicitCertificate({
      tbs: buildTbsCertificate({ id: { name: 'ica' }, validity: { start: START, durationSeconds: 86400 }, certIssuePermissions: [{ psids: 'all' }] }),
      issuer: root,
      issuerPrivateScalar: rk.d,
      requestPublicKey: req.publicKey,
    });
    const dIca = reconstructImplicitPrivateKey(ica.certificate, root, req.d, ica.privateKeyContribution);
    const icaPub = certificatePublicKey(ica.certificate, root).publicKey;
    const { scalarSigner } = await import('../../src/security/signer.js');
    const ek = testKey();
    const ee = await issueExplicitCertificate({
      tbs: buildTbsCertificate({ id: 'none', validity: { start: START, durationSeconds: 3600 }, verifyKey: ek.publicKey }),
      issuer: ica.certificate,
      signer: scalarSigner('nistP256', dIca, icaPub),
    });
    expect(verifyCertificateSignature(ee, ica.certificate, { issuerChain: [root] })).toBe(true);
    expect(nodeVerify(ee, { curve: 'nistP256', d: dIca, publicKey: icaPub, signer: undefined as any }, Certificate.encode(ica.certificate))).toBe(true);
    expect(() => verifyCertificateSignature(ee, ica.certificate)).toThrow(/issuer/);
  });
});
