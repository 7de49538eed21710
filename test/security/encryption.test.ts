/**
 * EncryptedData (IEEE 1609.2-2022 5.3.4, 5.3.5, 5.3.8; RecipientInfo / PKRecipientInfo definitions): round trips for
 * every recipient kind, and the structure checked by hand: recipientId values, and the P1 of each kind proven by
 * unwrapping the data key here with node:crypto only (ECDH, KDF2-SHA-256, HMAC-SHA-256, AES-128-CCM).
 */
import { createDecipheriv, createECDH, createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Certificate, Ieee1609Dot2Data, type EncryptedData, type RecipientInfo } from '../../src/codec/index.js';
import { DecryptionError, decryptData, decryptDataDetailed, encryptData } from '../../src/security/encryption.js';
import { signData } from '../../src/security/spdu.js';
import { bytes, curvePoint, hex, testCertificate, testKey, type TestKey } from './spdu-fixtures.js';

const sha256 = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest());
const payload = bytes('0123456789abcdef');
// '03 80 08 01 23 45 67 89 AB CD EF': the payload in an unsecuredData Ieee1609Dot2Data (EncryptedData note, 4.2.2.2.2).
const encapsulated = '038008' + hex(payload);

function encryptedDataOf(d: Ieee1609Dot2Data): EncryptedData {
  if (!('encryptedData' in d.content)) throw new Error('not encrypted');
  return d.content.encryptedData;
}

/** ECIES key unwrap by hand (1609.2 5.3.5): Z = x(dV), K = KDF2(Z, P1) (48 octets), T = HMAC(K[16:], C)[:16]. */
function unwrapByHand(priv: Uint8Array, enc: { v: Record<string, Uint8Array>; c: Uint8Array; t: Uint8Array }, p1: Uint8Array): Uint8Array | undefined {
  const [form, x] = Object.entries(enc.v)[0]!;
  const V = Buffer.concat([Buffer.of(form === 'compressed-y-0' ? 2 : 3), x]);
  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(priv);
  const z = ecdh.computeSecret(V);
  const k = Buffer.concat([1, 2].map((i) => createHash('sha256').update(Buffer.concat([z, Buffer.of(0, 0, 0, i), p1])).digest()));
  const t = createHmac('sha256', k.subarray(16, 48)).update(enc.c).digest().subarray(0, 16);
  if (!t.equals(Buffer.from(enc.t))) return undefined;
  return new Uint8Array(enc.c.map((c, i) => c ^ k[i]!));
}

function ccmOpenByHand(key: Uint8Array, ct: { aes128ccm: { nonce: Uint8Array; ccmCiphertext: Uint8Array } }): string {
  const { nonce, ccmCiphertext } = ct.aes128ccm;
  const d = createDecipheriv('aes-128-ccm', key, nonce, { authTagLength: 16 });
  d.setAuthTag(ccmCiphertext.subarray(ccmCiphertext.length - 16));
  const out = d.update(ccmCiphertext.subarray(0, ccmCiphertext.length - 16));
  d.final();
  return out.toString('hex');
}

function pk(ri: RecipientInfo, alt: string) {
  expect(Object.keys(ri)).toEqual([alt]);
  return (ri as Record<string, { recipientId: Uint8Array; encKey: { eciesNistP256: { v: Record<string, Uint8Array>; c: Uint8Array; t: Uint8Array } } }>)[alt]!;
}

describe('encryptData / decryptData', () => {
  const signing = testKey('nistP256');
  const encKey: TestKey = testKey('nistP256');
  const cert = testCertificate(signing, { encryptionPublicKey: encKey.publicKey });

  it('certRecipInfo: recipientId = HashedId8(cert), P1 = SHA-256(cert COER)', async () => {
    const d = encryptData({ plaintext: payload, recipients: [{ kind: 'cert', certificate: cert }] });
    const ed = encryptedDataOf(d);
    expect(ed.recipients).toHaveLength(1);
    const info = pk(ed.recipients[0]!, 'certRecipInfo');
    const certHash = sha256(Certificate.encode(cert));
    expect(hex(info.recipientId)).toBe(hex(certHash.slice(-8)));
    const e = info.encKey.eciesNistP256;
    expect(Object.keys(e.v)[0]).toMatch(/^compressed-y-[01]$/);
    // P1 is the certificate hash: with it the tag verifies, with P1 = H("") it does not.
    const dataKey = unwrapByHand(encKey.privateKey, e, certHash);
    expect(dataKey).toBeDefined();
    expect(unwrapByHand(encKey.privateKey, e, sha256(new Uint8Array(0)))).toBeUndefined();
    expect(ccmOpenByHand(dataKey!, ed.ciphertext as never)).toBe(encapsulated);

    const back = await decryptData(Ieee1609Dot2Data.encode(d), [{ kind: 'cert', certificate: cert, privateKey: encKey.privateKey }]);
    expect(hex(back)).toBe(hex(payload));
  });

  it('signedDataRecipInfo: the key from headerInfo.encryptionKey, recipientId/P1 from SHA-256 of the signed data', async () => {
    const requestKey = testKey('nistP256');
    const request = await signData({
      payload: bytes('aa'),
      psid: 35,
      signer: signing.signer,
      signerId: 'self',
      headerInfo: { encryptionKey: { public: { supportedSymmAlg: 'aes128Ccm', publicKey: { eciesNistP256: curvePoint('nistP256', requestKey.publicKey) as never } } } },
    });
    const requestBytes = Ieee1609Dot2Data.encode(request);
    const d = encryptData({ plaintext: payload, recipients: [{ kind: 'signedData', signedData: requestBytes }] });
    const ed = encryptedDataOf(d);
    const info = pk(ed.recipients[0]!, 'signedDataRecipInfo');
    expect(hex(info.recipientId)).toBe(hex(sha256(requestBytes).slice(-8)));
    const dataKey = unwrapByHand(requestKey.privateKey, info.encKey.eciesNistP256, sha256(requestBytes));
    expect(dataKey).toBeDefined();
    expect(ccmOpenByHand(dataKey!, ed.ciphertext as never)).toBe(encapsulated);
    const back = await decryptData(d, [{ kind: 'signedData', signedData: requestBytes, privateKey: requestKey.privateKey }]);
    expect(hex(back)).toBe(hex(payload));
  });

  it('rekRecipInfo: recipientId = HashedId8(COER PublicEncryptionKey), P1 = SHA-256("")', async () => {
    const rek = testKey('nistP256');
    const d = encryptData({ plaintext: payload, recipients: [{ kind: 'rek', publicKey: { curve: 'nistP256', publicKey: rek.publicKey } }] });
    const info = pk(encryptedDataOf(d).recipients[0]!, 'rekRecipInfo');
    // PublicEncryptionKey COER: 00 (aes128Ccm), 80 ([0] eciesNistP256), 82/83 ([2]/[3] compressed-y-0/1), x.
    const compressed = createECDH('prime256v1');
    compressed.setPrivateKey(rek.privateKey);
    const c = compressed.getPublicKey(null, 'compressed');
    const coer = Buffer.concat([Buffer.of(0x00, 0x80, c[0] === 2 ? 0x82 : 0x83), c.subarray(1)]);
    expect(hex(info.recipientId)).toBe(hex(sha256(coer).slice(-8)));
    expect(unwrapByHand(rek.privateKey, info.encKey.eciesNistP256, sha256(new Uint8Array(0)))).toBeDefined();
    expect(unwrapByHand(rek.privateKey, info.encKey.eciesNistP256, sha256(coer))).toBeUndefined();
    const back = await decryptData(d, [{ kind: 'rek', publicKey: { curve: 'nistP256', publicKey: rek.publicKey }, privateKey: rek.privateKey }]);
    expect(hex(back)).toBe(hex(payload));
  });

  it('symmRecipInfo and pskRecipInfo: recipientId = HashedId8(COER SymmetricEncryptionKey)', async () => {
    const key = bytes('000102030405060708090a0b0c0d0e0f');
    // SymmetricEncryptionKey COER: 80 ([0] aes128Ccm) || key.
    const id = hex(sha256(Buffer.concat([Buffer.of(0x80), key])).slice(-8));

    const d = encryptData({ plaintext: payload, recipients: [{ kind: 'symmetric', key }] });
    const ed = encryptedDataOf(d);
    const ri = ed.recipients[0] as { symmRecipInfo: { recipientId: Uint8Array; encKey: never } };
    expect(hex(ri.symmRecipInfo.recipientId)).toBe(id);
    const dataKey = bytes(ccmOpenByHand(key, ri.symmRecipInfo.encKey));
    expect(dataKey).toHaveLength(16);
    expect(ccmOpenByHand(dataKey, ed.ciphertext as never)).toBe(encapsulated);
    expect(hex(await decryptData(d, [{ kind: 'symmetric', key }]))).toBe(hex(payload));

    const p = encryptData({ plaintext: payload, recipients: [{ kind: 'symmetric', key, psk: true }] });
    const ped = encryptedDataOf(p);
    expect(ped.recipients.map((r) => hex((r as { pskRecipInfo: Uint8Array }).pskRecipInfo))).toEqual([id]);
    expect(ccmOpenByHand(key, ped.ciphertext as never)).toBe(encapsulated);
    expect(hex(await decryptData(p, [{ kind: 'symmetric', key }]))).toBe(hex(payload));
    expect(() => encryptData({ plaintext: payload, recipients: [{ kind: 'symmetric', key, psk: true }, { kind: 'cert', certificate: cert }] })).toThrow(/only recipient/);
  });

  it('several recipients share one data key; each key finds its RecipientInfo', async () => {
    const rek = testKey('nistP256');
    const sym = bytes('ffeeddccbbaa99887766554433221100');
    const d = encryptData({
      plaintext: payload,
      recipients: [
        { kind: 'cert', certificate: cert },
        { kind: 'rek', publicKey: { curve: 'nistP256', publicKey: rek.publicKey } },
        { kind: 'symmetric', key: sym },
      ],
    });
    expect(encryptedDataOf(d).recipients.map((r) => Object.keys(r)[0])).toEqual(['certRecipInfo', 'rekRecipInfo', 'symmRecipInfo']);
    const r1 = await decryptDataDetailed(d, [{ kind: 'symmetric', key: sym }]);
    const r2 = await decryptDataDetailed(d, [{ kind: 'rek', publicKey: { curve: 'nistP256', publicKey: rek.publicKey }, privateKey: rek.privateKey }]);
    expect([r1.recipientIndex, r2.recipientIndex]).toEqual([2, 1]);
    expect(hex(r1.payload)).toBe(hex(payload));
    expect(hex(r2.payload)).toBe(hex(payload));
  });

  it('decrypts with an ECDH callback (HSM-style: only x(dV) leaves the key store)', async () => {
    const d = encryptData({ plaintext: payload, recipients: [{ kind: 'cert', certificate: cert }] });
    const seen: string[] = [];
    const ecdh = async (V: Uint8Array) => {
      seen.push(hex(V));
      const e = createECDH('prime256v1');
      e.setPrivateKey(encKey.privateKey);
      return new Uint8Array(e.computeSecret(V));
    };
    expect(hex(await decryptData(d, [{ kind: 'cert', certificate: cert, ecdh }]))).toBe(hex(payload));
    // The generic form: recipientId and P1 worked out by the caller (here the certificate's HashedId8 and hash).
    const certHash = sha256(Certificate.encode(cert));
    expect(hex(await decryptData(d, [{ recipientId: certHash.slice(-8), curve: 'nistP256', p1: certHash, ecdh }]))).toBe(hex(payload));
    await expect(decryptData(d, [{ recipientId: certHash.slice(-8), curve: 'nistP256', p1: new Uint8Array(32), ecdh }])).rejects.toMatchObject({ code: 'key-unwrap-failed' });
    const v = pk(encryptedDataOf(d).recipients[0]!, 'certRecipInfo').encKey.eciesNistP256.v;
    const [form, x] = Object.entries(v)[0]!;
    expect(seen[0]).toBe((form === 'compressed-y-0' ? '02' : '03') + hex(x));
  });

  it('an Ieee1609Dot2Data plaintext is encrypted as is (signed-then-encrypted)', async () => {
    const signed = await signData({ payload, psid: 35, signer: signing.signer, signerId: 'self' });
    const d = encryptData({ plaintext: signed, recipients: [{ kind: 'cert', certificate: cert }] });
    const res = await decryptDataDetailed(d, [{ kind: 'cert', certificate: cert, privateKey: encKey.privateKey }]);
    expect(res.data).toEqual(signed);
    expect(hex(res.payload)).toBe(hex(Ieee1609Dot2Data.encode(signed)));
  });

  it('clear errors: no matching recipient, wrong private key, tampered ciphertext', async () => {
    const d = encryptData({ plaintext: payload, recipients: [{ kind: 'cert', certificate: cert }] });
    const other = testCertificate(signing, { name: 'other', encryptionPublicKey: testKey('nistP256').publicKey });
    const noMatch = decryptData(d, [{ kind: 'cert', certificate: other, privateKey: encKey.privateKey }]);
    await expect(noMatch).rejects.toBeInstanceOf(DecryptionError);
    await expect(noMatch).rejects.toMatchObject({ code: 'no-recipient', message: expect.stringContaining(`certRecipInfo ${hex(sha256(Certificate.encode(cert)).slice(-8))}`) });

    const wrongKey = decryptData(d, [{ kind: 'cert', certificate: cert, privateKey: testKey('nistP256').privateKey }]);
    await expect(wrongKey).rejects.toMatchObject({ code: 'key-unwrap-failed', message: expect.stringContaining('ECIES tag check failed') });

    const tampered = structuredClone(d);
    const ct = (encryptedDataOf(tampered).ciphertext as { aes128ccm: { ccmCiphertext: Uint8Array } }).aes128ccm.ccmCiphertext;
    ct[0] ^= 1;
    await expect(decryptData(tampered, [{ kind: 'cert', certificate: cert, privateKey: encKey.privateKey }])).rejects.toMatchObject({
      code: 'ciphertext-tag-mismatch',
    });
    await expect(decryptData({ protocolVersion: 3, content: { unsecuredData: payload } }, [])).rejects.toMatchObject({ code: 'malformed' });
  });
});
