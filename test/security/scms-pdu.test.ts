/**
 * 1609.2.1 SPDU wrappers: each builder's COER decodes with the generated parameterized SPDU type
 * (Ieee1609Dot2Dot1Protocol), and each unwrap/verify gets the ScmsPdu back.
 */
import { describe, expect, it } from 'vitest';
import {
  AcaEeCertResponsePrivateSpdu,
  CtlSignatureSpdu,
  EeRaCertRequestSpdu,
  EeRaDownloadRequestSpdu,
  Ieee1609Dot2Data,
  RaEeCertAckSpdu,
  RaEeCertInfoSpdu,
  ScmsPdu,
  type ScopedCertificateRequest,
} from '../../src/codec/index.js';
import { DecryptionError } from '../../src/security/encryption.js';
import {
  decryptSignedEncryptedCertRequestSpdu,
  decryptSignedEncryptedSpdu,
  encryptedSignedSpdu,
  readUnsecuredSpdu,
  scmsPdu,
  signedCertRequestSpdu,
  signedEncryptedCertRequestSpdu,
  signedEncryptedSpdu,
  signedSpdu,
  unsecuredSpdu,
  verifyEncryptedSignedSpdu,
  verifySignedCertRequestSpdu,
  verifySignedSpdu,
} from '../../src/security/scms-pdu.js';
import { signData } from '../../src/security/spdu.js';
import { bytes, curvePoint, hex, testCertificate, testKey } from './spdu-fixtures.js';

const hex2 = (b: Uint8Array) => hex(b);

describe('1609.2.1 SPDU wrappers', () => {
  const raKey = testKey('nistP256');
  const raEnc = testKey('nistP256');
  const raCert = testCertificate(raKey, { name: 'ra', encryptionPublicKey: raEnc.publicKey });
  const eeKey = testKey('nistP256');
  const eeCert = testCertificate(eeKey, { name: 'enrolment' });
  const resolveSigner = (id: object) => ('certificate' in id ? (id as { certificate: [typeof raCert] }).certificate[0] : undefined);
  const raKeys = [{ kind: 'cert' as const, certificate: raCert, privateKey: raEnc.privateKey }];

  it('signedSpdu(tbsCtlSignature) is a CtlSignatureSpdu and verifies', async () => {
    const tbsCtlSignature = { ctlSeriesId: bytes('0102030405060708'), ctlType: 1, sequenceNumber: 7, tbsCtlHash: new Uint8Array(48).fill(0xab) };
    const pdu: ScmsPdu = scmsPdu({ cert: { tbsCtlSignature } });
    const d = await signedSpdu({ pdu, signer: raKey.signer, certificate: raCert });
    const enc = Ieee1609Dot2Data.encode(d);
    const typed = CtlSignatureSpdu.decode(enc);
    const sd = (typed.content as { signedData: { tbsData: { payload: { data: { content: { unsecuredData: unknown } } }; headerInfo: unknown }; signer: unknown } }).signedData;
    expect(sd.tbsData.payload.data.content.unsecuredData).toEqual(pdu);
    expect(sd.tbsData.headerInfo).toEqual({ psid: 35n });
    expect(sd.signer).toEqual({ certificate: [raCert] });
    expect(hex2(CtlSignatureSpdu.encode(typed))).toBe(hex2(enc));

    const res = verifySignedSpdu(enc, { resolveSigner });
    expect(res).toMatchObject({ ok: true, pdu, signerCertificate: raCert });
    expect(verifySignedSpdu(enc, { resolveSigner, psid: 36 })).toMatchObject({ ok: false, reason: expect.stringContaining('psid') });
  });

  it('verifySignedSpdu enforces Ieee1609Dot2Data-Signed: no generationTime, a single certificate signer', async () => {
    const pdu = scmsPdu({ 'ee-ra': { raEeCertAck: { version: 2, generationTime: 1, requestHash: new Uint8Array(8), nextDlTime: 2 } } });
    const withTime = await signData({ payload: ScmsPdu.encode(pdu), psid: 35, signer: raKey.signer, signerId: { certificate: raCert }, headerInfo: { generationTime: 5n } });
    expect(verifySignedSpdu(withTime, { resolveSigner })).toMatchObject({ ok: false, reason: expect.stringContaining('generationTime') });
    const selfSigned = await signData({ payload: ScmsPdu.encode(pdu), psid: 35, signer: raKey.signer, signerId: 'self' });
    expect(verifySignedSpdu(selfSigned, { resolveSigner: () => raKey })).toMatchObject({ ok: false, reason: expect.stringContaining('SignerSingleCert') });
    const good = await signedSpdu({ pdu, signer: raKey.signer, certificate: raCert });
    expect(() => RaEeCertAckSpdu.decode(Ieee1609Dot2Data.encode(good))).not.toThrow();
  });

  it('unsecuredSpdu: RaEeCertInfoSpdu round trip', () => {
    const info = scmsPdu({ 'ee-ra': { raEeCertInfo: { version: 2, generationTime: 10, currentI: 3, requestHash: new Uint8Array(8).fill(9), nextDlTime: 20 } } });
    expect(info.version).toBe(2);
    const enc = Ieee1609Dot2Data.encode(unsecuredSpdu(info));
    expect(hex2(enc.subarray(0, 2))).toBe('0380'); // protocolVersion 3, [0] unsecuredData
    const typed = RaEeCertInfoSpdu.decode(enc);
    expect((typed.content as { unsecuredData: unknown }).unsecuredData).toEqual(info);
    expect(readUnsecuredSpdu(enc)).toEqual(info);
  });

  it('signedEncryptedSpdu: EeRaDownloadRequestSpdu (Encrypted(Signed)) round trip', async () => {
    const pdu = scmsPdu({ 'ee-ra': { eeRaDownloadRequest: { generationTime: 667_915_205, filename: 'ab12cd34_0.zip' } } });
    const d = await signedEncryptedSpdu({ pdu, signer: eeKey.signer, certificate: eeCert, recipients: [{ kind: 'cert', certificate: raCert }] });
    const enc = Ieee1609Dot2Data.encode(d);
    expect(() => EeRaDownloadRequestSpdu.decode(enc)).not.toThrow();
    expect(Object.keys(d.content)).toEqual(['encryptedData']);
    const res = await decryptSignedEncryptedSpdu(enc, raKeys, { resolveSigner: () => eeCert });
    expect(res).toMatchObject({ ok: true, pdu, signerCertificate: eeCert });
    await expect(decryptSignedEncryptedSpdu(enc, [{ kind: 'symmetric', key: new Uint8Array(16) }], { resolveSigner: () => eeCert })).rejects.toBeInstanceOf(DecryptionError);
  });

  it('encryptedSignedSpdu: AcaEeCertResponsePrivateSpdu (Signed(Unsecured(Encrypted))) round trip', async () => {
    const aca = testKey('nistP256');
    const acaCert = testCertificate(aca, { name: 'aca' });
    const responseKey = testKey('nistP256');
    const pdu = scmsPdu({ 'aca-ee': { acaEeCertResponse: { version: 2, generationTime: 667_915_205, certificate: eeCert } } });
    const rek = { kind: 'rek' as const, publicKey: { curve: 'nistP256' as const, publicKey: responseKey.publicKey } };
    const d = await encryptedSignedSpdu({ pdu, signer: aca.signer, certificate: acaCert, recipients: [rek] });
    const enc = Ieee1609Dot2Data.encode(d);
    const typed = AcaEeCertResponsePrivateSpdu.decode(enc);
    const inner = (typed.content as { signedData: { tbsData: { payload: { data: { content: { unsecuredData: Ieee1609Dot2Data } } } } } }).signedData.tbsData.payload.data.content.unsecuredData;
    expect(Object.keys(inner.content)).toEqual(['encryptedData']);
    const res = await verifyEncryptedSignedSpdu(enc, [{ ...rek, privateKey: responseKey.privateKey }], { resolveSigner: () => acaCert });
    expect(res).toMatchObject({ ok: true, pdu, signerCertificate: acaCert });
  });

  it('signedEncryptedCertRequestSpdu: EeRaCertRequestSpdu round trip', async () => {
    const tbsRequest: ScopedCertificateRequest = {
      version: 2,
      content: {
        'ee-ra': {
          eeRaCertRequest: {
            version: 2,
            generationTime: 667_915_205,
            type: 'implicit',
            tbsCert: {
              id: { linkageData: { iCert: 0, 'linkage-value': new Uint8Array(9), } },
              cracaId: new Uint8Array(3),
              crlSeries: 0,
              validityPeriod: { start: 667_915_205, duration: { hours: 168 } },
              appPermissions: [{ psid: 32n }],
              verifyKeyIndicator: { verificationKey: { ecdsaNistP256: curvePoint('nistP256', testKey('nistP256').publicKey) as never } },
            },
          },
        },
      },
    } as ScopedCertificateRequest;
    const d = await signedEncryptedCertRequestSpdu({ tbsRequest, signer: eeKey.signer, signerId: { certificate: eeCert }, recipients: [{ kind: 'cert', certificate: raCert }] });
    const enc = Ieee1609Dot2Data.encode(d);
    expect(() => EeRaCertRequestSpdu.decode(enc)).not.toThrow();
    const res = await decryptSignedEncryptedCertRequestSpdu(enc, raKeys, { resolveSigner: () => eeCert });
    expect(res).toMatchObject({ ok: true, tbsRequest, signerCertificate: eeCert });

    const plain = await signedCertRequestSpdu({ tbsRequest, signer: eeKey.signer, signerId: { certificate: eeCert } });
    expect(verifySignedCertRequestSpdu(plain, { resolveSigner: () => eeCert })).toMatchObject({ ok: true });
    expect(verifySignedCertRequestSpdu(plain, { resolveSigner: () => raCert })).toMatchObject({ ok: false });
  });
});
