// Elliptic-curve Diffie-Hellman (ECSVDP-DH, IEEE 1363; as used by ECIES in 1609.2 5.3.5) through node:crypto.
import { createECDH } from 'node:crypto';
import { bigIntToBytes } from './bytes.js';
import { curve, mulBase, nodeEcdh, scalarFromBytes, type CurveName } from './curves.js';

/** Shared secret Z = x-coordinate of d*P (fixed length). Throws if P is not a valid point on the curve. */
export function ecdhSharedSecret(name: CurveName, privateKey: Uint8Array, peerPublicKey: Uint8Array): Uint8Array {
  scalarFromBytes(name, privateKey);
  const e = nodeEcdh(name);
  e.setPrivateKey(privateKey);
  return new Uint8Array(e.computeSecret(peerPublicKey));
}

export interface KeyPair {
  /** Private scalar, fixed-length big-endian (in memory only). */
  readonly privateKey: Uint8Array;
  /** Public key, uncompressed 04||x||y unless compressed was asked for. */
  readonly publicKey: Uint8Array;
}

/** Fresh key pair from OpenSSL. */
export function generateKeyPair(name: CurveName, compressed = false): KeyPair {
  const c = curve(name);
  const e = createECDH(c.nodeName);
  e.generateKeys();
  const pub = e.getPublicKey(null, compressed ? 'compressed' : 'uncompressed');
  const d = e.getPrivateKey();
  // OpenSSL strips leading zero octets: pad to the fixed length.
  const privateKey = d.length === c.size ? new Uint8Array(d) : bigIntToBytes(BigInt('0x' + d.toString('hex')), c.size);
  return { privateKey, publicKey: new Uint8Array(pub) };
}

/** Public key d*G from the private scalar. */
export function publicFromPrivate(name: CurveName, privateKey: Uint8Array, compressed = false): Uint8Array {
  return mulBase(name, privateKey, compressed);
}
