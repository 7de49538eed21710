/**
 * Test fixtures for the SPDU tests: key pairs, Signers and hand-built explicit certificates (values of the generated
 * Certificate type; their own signature is a placeholder — these tests exercise SPDUs, not chains).
 */
import { ECDH } from 'node:crypto';
import type { Certificate } from '../../src/codec/index.js';
import { bytesToBigInt } from '../../src/crypto/bytes.js';
import type { CurveName } from '../../src/crypto/curves.js';
import { generateKeyPair, type KeyPair } from '../../src/crypto/ecdh.js';
import { scalarSigner, type Signer } from '../../src/security/signer.js';

export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
export const bytes = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));

export interface TestKey extends KeyPair {
  readonly curve: CurveName;
  readonly signer: Signer;
}

export function testKey(curve: CurveName): TestKey {
  const kp = generateKeyPair(curve);
  return { curve, ...kp, signer: scalarSigner(curve, bytesToBigInt(kp.privateKey), kp.publicKey) };
}

const VK_ALT: Record<CurveName, string> = {
  nistP256: 'ecdsaNistP256',
  brainpoolP256r1: 'ecdsaBrainpoolP256r1',
  nistP384: 'ecdsaNistP384',
  brainpoolP384r1: 'ecdsaBrainpoolP384r1',
};

const NODE_NAME: Record<CurveName, string> = {
  nistP256: 'prime256v1',
  nistP384: 'secp384r1',
  brainpoolP256r1: 'brainpoolP256r1',
  brainpoolP384r1: 'brainpoolP384r1',
};

/**
 * 04||x||y -> EccP256CurvePoint / EccP384CurvePoint: compressed-y-0/1 (canonical, 1609.2 6.1.2; compressed by
 * node:crypto) or uncompressedP256/P384 (written out by hand).
 */
export function curvePoint(curve: CurveName, pub: Uint8Array, form: 'compressed' | 'uncompressed' = 'compressed') {
  const n = (pub.length - 1) / 2;
  if (form === 'uncompressed') {
    const alt = n === 48 ? 'uncompressedP384' : 'uncompressedP256';
    return { [alt]: { x: pub.slice(1, 1 + n), y: pub.slice(1 + n) } };
  }
  const c = new Uint8Array(ECDH.convertKey(Buffer.from(pub), NODE_NAME[curve], undefined, undefined, 'compressed') as Buffer);
  return { [c[0] === 2 ? 'compressed-y-0' : 'compressed-y-1']: c.slice(1) };
}

/**
 * An explicit certificate for `key` (issuer self, hash per the key size), psid 35, optional encryption key
 * (P-256 ECIES); key points compressed (canonical) unless `form: 'uncompressed'`.
 */
export function testCertificate(key: { curve: CurveName; publicKey: Uint8Array }, opts: { name?: string; encryptionPublicKey?: Uint8Array; form?: 'compressed' | 'uncompressed' } = {}): Certificate {
  const is384 = key.curve === 'nistP384' || key.curve === 'brainpoolP384r1';
  const size = is384 ? 48 : 32;
  return {
    version: 3,
    type: 'explicit',
    issuer: { self: is384 ? 'sha384' : 'sha256' },
    toBeSigned: {
      id: { name: opts.name ?? 'spdu-test' },
      cracaId: new Uint8Array(3),
      crlSeries: 0,
      validityPeriod: { start: 600_000_000, duration: { years: 1 } },
      appPermissions: [{ psid: 35n }],
      ...(opts.encryptionPublicKey
        ? { encryptionKey: { supportedSymmAlg: 'aes128Ccm', publicKey: { eciesNistP256: curvePoint('nistP256', opts.encryptionPublicKey, opts.form) } } }
        : {}),
      verifyKeyIndicator: { verificationKey: { [VK_ALT[key.curve]]: curvePoint(key.curve, key.publicKey, opts.form) } },
    },
    signature: {
      [is384 ? 'ecdsaNistP384Signature' : 'ecdsaNistP256Signature']: {
        rSig: { 'x-only': new Uint8Array(size).fill(1) },
        sSig: new Uint8Array(size).fill(2),
      },
    },
  } as Certificate;
}
