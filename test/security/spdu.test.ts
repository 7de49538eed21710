/**
 * signData / verifySignedData (IEEE 1609.2-2022 5.3.1.2.2, 6.3.4): round trips for self, certificate and digest
 * signers on P-256 and P-384; the signature re-checked with node:crypto over an input rebuilt here from the COER
 * bytes; tampering, psid and time refusals.
 */
import { createHash, createPublicKey, verify as nodeVerify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Certificate, Ieee1609Dot2Data, ToBeSignedData, type EncryptionKey, type SignedData } from '../../src/codec/index.js';
import type { CurveName } from '../../src/crypto/curves.js';
import { signData, verifySignedData, type SignerIdInput } from '../../src/security/spdu.js';
import { ManualClock, dateToTime64 } from '../../src/security/time.js';
import { bytes, curvePoint, hex, testCertificate, testKey, type TestKey } from './spdu-fixtures.js';

const NODE_CURVE: Partial<Record<CurveName, { crv: string; hash: 'sha256' | 'sha384'; size: number }>> = {
  nistP256: { crv: 'P-256', hash: 'sha256', size: 32 },
  nistP384: { crv: 'P-384', hash: 'sha384', size: 48 },
};

const b64u = (b: Uint8Array) => Buffer.from(b).toString('base64url');

/** node:crypto verification of r||s over H(tbs)||H(signer cert or "") rebuilt from the encoded structures. */
function nodeCheck(key: TestKey, sd: SignedData, signerCert: Certificate | undefined): boolean {
  const nc = NODE_CURVE[key.curve]!;
  const h = (b: Uint8Array) => createHash(nc.hash).update(b).digest();
  const input = Buffer.concat([h(ToBeSignedData.encode(sd.tbsData)), h(signerCert ? Certificate.encode(signerCert) : new Uint8Array(0))]);
  const sigAlt = Object.values(sd.signature)[0] as { rSig: Record<string, Uint8Array>; sSig: Uint8Array };
  const r = Object.values(sigAlt.rSig)[0]!;
  const pub = key.publicKey;
  const jwk = { kty: 'EC', crv: nc.crv, x: b64u(pub.slice(1, 1 + nc.size)), y: b64u(pub.slice(1 + nc.size)) };
  const k = createPublicKey({ key: jwk, format: 'jwk' });
  return nodeVerify(nc.hash, input, { key: k, dsaEncoding: 'ieee-p1363' }, Buffer.concat([r, sigAlt.sSig]));
}

function signedDataOf(d: Ieee1609Dot2Data): SignedData {
  if (!('signedData' in d.content)) throw new Error('not signed');
  return d.content.signedData;
}

const payload = bytes('00112233445566778899');

describe.each(['nistP256', 'nistP384'] as const)('signData -> verifySignedData on %s', (curve) => {
  const key = testKey(curve);
  const cert = testCertificate(key);
  const certHash = createHash(curve === 'nistP384' ? 'sha384' : 'sha256').update(Certificate.encode(cert)).digest();
  const cases: Array<[string, SignerIdInput]> = [
    ['self', 'self'],
    ['certificate', { certificate: cert }],
    ['digest', { digest: cert }],
  ];

  it.each(cases)('%s signer: structure, node:crypto check, round trip through bytes', async (name, signerId) => {
    const data = await signData({ payload, psid: 35, signer: key.signer, signerId });
    const sd = signedDataOf(data);
    expect(data.protocolVersion).toBe(3);
    expect(sd.hashId).toBe(curve === 'nistP384' ? 'sha384' : 'sha256');
    expect(sd.tbsData.payload.data).toEqual({ protocolVersion: 3, content: { unsecuredData: payload } });
    expect(sd.tbsData.headerInfo).toEqual({ psid: 35n });
    expect(Object.keys(sd.signature)).toEqual([curve === 'nistP384' ? 'ecdsaNistP384Signature' : 'ecdsaNistP256Signature']);
    if (name === 'self') expect(sd.signer).toEqual({ self: null });
    if (name === 'certificate') expect(sd.signer).toEqual({ certificate: [cert] });
    // digest: HashedId8 = last 8 octets of the whole-certificate hash (issuer self sha256/sha384, 1609.2 6.4.3).
    if (name === 'digest') expect(hex((sd.signer as { digest: Uint8Array }).digest)).toBe(hex(certHash.subarray(-8)));

    expect(nodeCheck(key, sd, name === 'self' ? undefined : cert)).toBe(true);
    // The signer input matters: the same signature is wrong with the other choice of H(signer).
    expect(nodeCheck(key, sd, name === 'self' ? cert : undefined)).toBe(false);

    const encoded = Ieee1609Dot2Data.encode(data);
    // 03 = protocolVersion, 81 = [1] signedData, hashId 00 sha256 / 01 sha384 (X.696 enumerated).
    expect(hex(encoded.subarray(0, 3))).toBe(curve === 'nistP384' ? '038101' : '038100');
    const resolveSigner = (id: object) => ('self' in id ? key : cert);
    const res = verifySignedData(encoded, { resolveSigner, expectedPsid: 35 });
    expect(res).toMatchObject({ ok: true, headerInfo: { psid: 35n } });
    if (!res.ok) throw new Error(res.reason);
    expect(hex(res.payload)).toBe(hex(payload));
    if (name === 'self') expect(res.signerCertificate).toBeUndefined();
    else expect(res.signerCertificate).toEqual(cert);
  });

  it('compressed R form verifies (node:crypto with r = x(R)) and says which y parity', async () => {
    const data = await signData({ payload, psid: 35, signer: key.signer, signerId: 'self', rForm: 'compressed' });
    const sd = signedDataOf(data);
    const rSig = (Object.values(sd.signature)[0] as { rSig: object }).rSig;
    expect(Object.keys(rSig)[0]).toMatch(/^compressed-y-[01]$/);
    expect(nodeCheck(key, sd, undefined)).toBe(true);
    expect(verifySignedData(data, { resolveSigner: () => key }).ok).toBe(true);
  });
});

describe('verifySignedData refusals', async () => {
  const key = testKey('nistP256');
  const other = testKey('nistP256');
  const cert = testCertificate(key);
  const resolveSigner = () => cert;
  const good = Ieee1609Dot2Data.encode(await signData({ payload, psid: 35, signer: key.signer, signerId: { certificate: cert } }));

  it('accepts the untouched data', () => {
    expect(verifySignedData(good, { resolveSigner }).ok).toBe(true);
  });

  it('tampered payload, header and signature fail', () => {
    const payloadAt = hex(good).indexOf(hex(payload)) / 2;
    expect(payloadAt).toBeGreaterThan(0);
    const t1 = good.slice();
    t1[payloadAt] ^= 1;
    expect(verifySignedData(t1, { resolveSigner })).toEqual({ ok: false, reason: 'signature does not verify' });

    const v = Ieee1609Dot2Data.decode(good);
    signedDataOf(v).tbsData.headerInfo.psid = 36n;
    expect(verifySignedData(v, { resolveSigner })).toEqual({ ok: false, reason: 'signature does not verify' });

    const t3 = good.slice();
    t3[t3.length - 1] ^= 0x80; // last octet of sSig
    expect(verifySignedData(t3, { resolveSigner })).toEqual({ ok: false, reason: 'signature does not verify' });
  });

  it('a different signer key or certificate fails', () => {
    expect(verifySignedData(good, { resolveSigner: () => other })).toMatchObject({ ok: false, reason: 'signature does not verify' });
    // The certificate is in the signer input: another certificate for the same key is a different signer.
    const cert2 = testCertificate(key, { name: 'another' });
    const v = Ieee1609Dot2Data.decode(good);
    signedDataOf(v).signer = { certificate: [cert2] };
    expect(verifySignedData(v, { resolveSigner: () => cert2 })).toMatchObject({ ok: false, reason: 'signature does not verify' });
  });

  it('an unknown signer is refused with a reason', () => {
    expect(verifySignedData(good, { resolveSigner: () => undefined })).toEqual({ ok: false, reason: 'unknown or untrusted signer (certificate)' });
  });

  it('digest signer: the resolved certificate must have that HashedId8', async () => {
    const d = await signData({ payload, psid: 35, signer: key.signer, signerId: { digest: cert } });
    const wrong = testCertificate(key, { name: 'wrong' });
    expect(verifySignedData(d, { resolveSigner: () => wrong })).toMatchObject({ ok: false, reason: expect.stringContaining('HashedId8') });
    expect(verifySignedData(d, { resolveSigner: () => key })).toMatchObject({ ok: false, reason: expect.stringContaining('must return the certificate') });
  });

  it('wrong psid is refused', () => {
    expect(verifySignedData(good, { resolveSigner, expectedPsid: 32 })).toEqual({ ok: false, reason: 'psid 35 is not the expected 32' });
    expect(verifySignedData(good, { resolveSigner, expectedPsid: 35n }).ok).toBe(true);
  });

  it('generationTime from the clock; stale, future and expired data refused', async () => {
    const clock = new ManualClock('2025-03-01T12:00:00Z');
    const d = await signData({ payload, psid: 35, signer: key.signer, signerId: 'self', clock, headerInfo: { expiryTime: dateToTime64(new Date('2025-03-01T13:00:00Z')) } });
    // 2025-03-01T12:00:00Z is 667,915,200 UTC seconds after 2004-01-01 plus 5 leap seconds (Time64, 1609.2 6.4.13).
    expect(signedDataOf(d).tbsData.headerInfo.generationTime).toBe((667_915_200n + 5n) * 1_000_000n);
    const r = () => key;
    expect(verifySignedData(d, { resolveSigner: r, clock, maxAgeSeconds: 30 }).ok).toBe(true);
    clock.advance(31_000);
    expect(verifySignedData(d, { resolveSigner: r, clock, maxAgeSeconds: 30 })).toMatchObject({ ok: false, reason: expect.stringContaining('stale') });
    expect(verifySignedData(d, { resolveSigner: r, clock, maxAgeSeconds: 60 }).ok).toBe(true);
    clock.set('2025-03-01T11:59:00Z');
    expect(verifySignedData(d, { resolveSigner: r, clock, maxAgeSeconds: 30 })).toMatchObject({ ok: false, reason: expect.stringContaining('future') });
    clock.set('2025-03-01T13:00:01Z');
    expect(verifySignedData(d, { resolveSigner: r, clock })).toEqual({ ok: false, reason: 'expired (headerInfo.expiryTime)' });
    // Data without generationTime cannot pass a freshness check.
    expect(verifySignedData(good, { resolveSigner, clock, maxAgeSeconds: 30 })).toEqual({ ok: false, reason: 'no generationTime to check freshness' });
  });

  it('a signer certificate with uncompressed keys enters the signer input in canonical (compressed) form (6.1.2)', async () => {
    const loose = testCertificate(key, { form: 'uncompressed' });
    const canonical = testCertificate(key); // the same certificate, key compressed
    expect(hex(Certificate.encode(loose))).not.toBe(hex(Certificate.encode(canonical)));
    const d = await signData({ payload, psid: 35, signer: key.signer, signerId: { digest: loose } });
    const sd = signedDataOf(d);
    const canonicalHash = createHash('sha256').update(Certificate.encode(canonical)).digest();
    expect(hex((sd.signer as { digest: Uint8Array }).digest)).toBe(hex(canonicalHash.subarray(-8)));
    expect(nodeCheck(key, sd, canonical)).toBe(true);
    expect(verifySignedData(d, { resolveSigner: () => loose }).ok).toBe(true);
  });

  it('headerInfo.encryptionKey is hashed in compressed form (HeaderInfo canonicalization, 6.1.2)', async () => {
    const enc = testKey('nistP256');
    const loose = { public: { supportedSymmAlg: 'aes128Ccm', publicKey: { eciesNistP256: curvePoint('nistP256', enc.publicKey, 'uncompressed') } } } as EncryptionKey;
    const canonical = { public: { supportedSymmAlg: 'aes128Ccm', publicKey: { eciesNistP256: curvePoint('nistP256', enc.publicKey) } } } as EncryptionKey;
    const d = await signData({ payload, psid: 35, signer: key.signer, signerId: 'self', headerInfo: { encryptionKey: loose } });
    const sd = signedDataOf(d);
    expect(sd.tbsData.headerInfo.encryptionKey).toEqual(loose); // carried as given
    const asHashed = { ...sd, tbsData: { ...sd.tbsData, headerInfo: { ...sd.tbsData.headerInfo, encryptionKey: canonical } } };
    expect(nodeCheck(key, asHashed, undefined)).toBe(true);
    expect(nodeCheck(key, sd, undefined)).toBe(false);
    expect(verifySignedData(d, { resolveSigner: () => key }).ok).toBe(true);
  });

  it('not signed data is refused', () => {
    expect(verifySignedData({ protocolVersion: 3, content: { unsecuredData: payload } }, { resolveSigner })).toMatchObject({ ok: false });
  });
});
