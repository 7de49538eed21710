// EE key handling: P-256 (or other 1609.2 curve) key pairs held in memory as scalars, wrapped as Signers. Nothing
// here writes a private key anywhere; persisting EE keys is the caller's business (encrypted keystore).
import { bigIntToBytes, toHex } from '../../crypto/bytes.js';
import { curve, decodePoint, encodeCompressed, mulBase, type CurveName } from '../../crypto/curves.js';
import { hashedId8 } from '../../crypto/hash.js';
import { randomScalar } from '../../crypto/random.js';
import { scalarSigner, type Signer } from '../../security/signer.js';

export interface EeKeyPair {
  readonly curve: CurveName;
  /** Private scalar d in [1, n-1]. */
  readonly privateKey: bigint;
  /** Uncompressed public key 04||x||y. */
  readonly publicKey: Uint8Array;
}

/** A fresh key pair (uniform d, Q = dG by OpenSSL). */
export function generateKeyPair(curveName: CurveName = 'nistP256'): EeKeyPair {
  return keyPairFromPrivate(curveName, randomScalar(curveName));
}

/** The key pair of a known scalar. */
export function keyPairFromPrivate(curveName: CurveName, d: bigint): EeKeyPair {
  const c = curve(curveName);
  if (d <= 0n || d >= c.n) throw new RangeError(`private key out of range for ${curveName}`);
  return Object.freeze({ curve: curveName, privateKey: d, publicKey: mulBase(curveName, d) });
}

/** A Signer over the key pair (1609.2 5.3.1 input handed in by the security layer). */
export function keyPairSigner(kp: EeKeyPair): Signer {
  return scalarSigner(kp.curve, kp.privateKey, kp.publicKey);
}

/** SEC 1 compressed encoding (33 or 49 octets) of a public key given in either form. */
export function compressedPublicKey(curveName: CurveName, publicKey: Uint8Array): Uint8Array {
  return encodeCompressed(decodePoint(curveName, publicKey));
}

/**
 * The canonical id of a canonical public key as the registry defines it (src/engine/ra/registration.ts): HashedId8
 * (low-order 8 octets of SHA-256) of the compressed point, 16 lower-case hex digits. Goes in
 * EeEcaCertRequest.canonicalId (1609.2.1 4.1.4.2).
 */
export function canonicalIdOf(curveName: CurveName, publicKey: Uint8Array): string {
  return toHex(hashedId8(compressedPublicKey(curveName, publicKey)));
}

/** Fixed-length big-endian octets of a private scalar (for handing to an encrypted keystore). */
export function privateKeyBytes(kp: EeKeyPair): Uint8Array {
  return bigIntToBytes(kp.privateKey, curve(kp.curve).size);
}
