// Shared fixtures for the certificate / chain / permissions tests: key pairs and a small CA hierarchy.
import { generateKeyPair } from '../../src/crypto/ecdh.js';
import { bytesToBigInt } from '../../src/crypto/bytes.js';
import type { CurveName } from '../../src/crypto/curves.js';
import { scalarSigner, type Signer } from '../../src/security/signer.js';

export interface TestKey {
  curve: CurveName;
  d: bigint;
  publicKey: Uint8Array;
  signer: Signer;
}

export function testKey(curve: CurveName = 'nistP256'): TestKey {
  const kp = generateKeyPair(curve);
  const d = bytesToBigInt(kp.privateKey);
  return { curve, d, publicKey: kp.publicKey, signer: scalarSigner(curve, d, kp.publicKey) };
}

export const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');
