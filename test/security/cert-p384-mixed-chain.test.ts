// A P-384 root over a P-256 ICA (1609.2 6.4.3 / 5.3.9.2): the ICA's issuer field is sha384AndDigest (the root's
// key hash, used to verify it), but the ICA's own whole-certificate hash is SHA-256 (its key is P-256), so what
// the ICA issues names it sha256AndDigest with SHA-256(ICA COER)[-8:]. Hashes are recomputed with node:crypto and
// the subordinate certificate is built by hand here, so the test does not lean on certificateHashedId8.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Certificate } from '../../src/codec/gen/Ieee1609Dot2.js';
import { mulBase } from '../../src/crypto/curves.js';
import {
  buildTbsCertificate,
  certificateHashAlgorithm,
  certificateHashedId8,
  certificatePublicKey,
  encodeTbsCertificate,
  issueExplicitCertificate,
  issueImplicitCertificate,
  reconstructImplicitPrivateKey,
  sign1609Dot2,
} from '../../src/security/certificate.js';
import { verifyCertificateChain } from '../../src/security/chain.js';
import { ManualClock } from '../../src/security/time.js';
import { hexOf, testKey } from './cert-fixtures.js';

const START = new Date('2025-01-01T00:00:00Z');
const clock = new ManualClock('2025-06-01T00:00:00Z');
const sha = (alg: 'sha256' | 'sha384', b: Uint8Array) => new Uint8Array(createHash(alg).update(b).digest());

async function hierarchy() {
  const rk = testKey('nistP384');
  const root = await issueExplicitCertificate({
    tbs: buildTbsCertificate({
      id: { name: 'root-384' },
      validity: { start: START, durationSeconds: 20 * 365 * 86400 },
      region: { countries: [840] },
      certIssuePermissions: [{ psids: 'all', minChainLength: 1, chainLengthRange: 2 }],
      verifyKey: { curve: 'nistP384', publicKey: rk.publicKey },
    }),
    issuer: 'self',
    signer: rk.signer,
  });
  const ik = testKey('nistP256');
  const ica = await issueExplicitCertificate({
    tbs: buildTbsCertificate({
      id: { name: 'ica-256' },
      validity: { start: START, durationSeconds: 10 * 365 * 86400 },
      region: { countries: [840] },
      certIssuePermissions: [{ psids: 'all', minChainLength: 1, chainLengthRange: 1 }],
      verifyKey: { curve: 'nistP256', publicKey: ik.publicKey },
    }),
    issuer: root,
    signer: rk.signer,
  });
  return { rk, root, ik, ica, icaBytes: Certificate.encode(ica), rootBytes: Certificate.encode(root) };
}

/** A P-256 ECA certificate under `ica` with the issuer field given by hand, signed by the ICA key (5.3.1). */
async function ecaWithIssuer(h: Awaited<ReturnType<typeof hierarchy>>, digest: Uint8Array): Promise<Certificate> {
  const ek = testKey('nistP256');
  const toBeSigned = buildTbsCertificate({
    id: { name: 'eca' },
    validity: { start: START, durationSeconds: 3 * 365 * 86400 },
    region: { countries: [840] },
    certIssuePermissions: [{ psids: 'all', minChainLength: 1 }],
    verifyKey: { curve: 'nistP256', publicKey: ek.publicKey },
  });
  const signature = await sign1609Dot2({ tbsBytes: encodeTbsCertificate(toBeSigned), signerCertificate: h.ica, signer: h.ik.signer });
  return { version: 3, type: 'explicit', issuer: { sha256AndDigest: digest }, toBeSigned, signature };
}

describe('P-384 root -> P-256 ICA -> P-256 ECA (whole-certificate hash of the issuer)', () => {
  it('the ICA names the root sha384AndDigest with SHA-384(root); its own HashedId8 is SHA-256(ICA)', async () => {
    const h = await hierarchy();
    expect(h.ica.issuer).toEqual({ sha384AndDigest: sha('sha384', h.rootBytes).slice(-8) });
    expect(certificateHashAlgorithm(h.root)).toBe('sha384');
    expect(certificateHashAlgorithm(h.ica)).toBe('sha256');
    expect(hexOf(certificateHashedId8(h.ica))).toBe(hexOf(sha('sha256', h.icaBytes).slice(-8)));
  });

  it('verifyCertificateChain accepts an ECA naming the ICA by SHA-256(ICA)[-8:] (built by hand)', async () => {
    const h = await hierarchy();
    const eca = await ecaWithIssuer(h, sha('sha256', h.icaBytes).slice(-8));
    const r = verifyCertificateChain([eca, h.ica], { trustAnchors: [h.root], clock });
    expect(r.ok ? [] : r.errors).toEqual([]);
    // issueExplicitCertificate writes the same issuer field
    const issued = await issueExplicitCertificate({ tbs: eca.toBeSigned, issuer: h.ica, signer: h.ik.signer });
    expect(issued.issuer).toEqual({ sha256AndDigest: sha('sha256', h.icaBytes).slice(-8) });
  });

  it('an ECA naming the ICA by its SHA-384 digest does not chain (issuer-mismatch)', async () => {
    const h = await hierarchy();
    const eca = await ecaWithIssuer(h, sha('sha384', h.icaBytes).slice(-8));
    const r = verifyCertificateChain([eca, h.ica], { trustAnchors: [h.root], clock });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.errors.map((e) => [e.index, e.code])).toEqual([[0, 'issuer-mismatch']]);
  });

  it('an implicit certificate under the P-256 ICA: e uses SHA-256(ICA) (5.3.2)', async () => {
    const h = await hierarchy();
    const req = testKey('nistP256');
    const { certificate, privateKeyContribution } = issueImplicitCertificate({
      tbs: buildTbsCertificate({ id: 'none', validity: { start: START, durationSeconds: 365 * 86400 }, region: { countries: [840] }, appPermissions: [{ psid: 0x20 }] }),
      issuer: h.ica,
      issuerPrivateScalar: h.ik.d,
      requestPublicKey: req.publicKey,
    });
    expect(certificate.issuer).toEqual({ sha256AndDigest: sha('sha256', h.icaBytes).slice(-8) });
    // the holder knows only SHA-256 of the ICA: the key must match the one reconstructed from the chain
    const dU = reconstructImplicitPrivateKey(certificate, { hash: sha('sha256', h.icaBytes) }, req.d, privateKeyContribution);
    expect(hexOf(mulBase('nistP256', dU))).toBe(hexOf(certificatePublicKey(certificate, [h.ica, h.root]).publicKey));
    const r = verifyCertificateChain([certificate, h.ica], { trustAnchors: [h.root], clock });
    expect(r.ok ? [] : r.errors).toEqual([]);
  });
});
