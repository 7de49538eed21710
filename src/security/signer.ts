/**
 * Signer: the one thing the 1609.2 security services need from a private key to sign.
 * Backed by a KeyStore key (soft or PKCS#11) or by an in-memory scalar (EE keys, tests).
 */
import type { CurveName } from '../crypto/curves.js';
import { ecdsaSign, signingKey } from '../crypto/ecdsa.js';
import type { KeyHandle, KeyStores } from '../hsm/index.js';

export interface Signer {
  /** Curve of the key (crypto naming). */
  readonly curve: CurveName;
  /** Uncompressed public key 04||x||y. */
  readonly publicKey: Uint8Array;
  /**
   * ECDSA over `message` (hashed with the curve's hash: SHA-256 for 256-bit curves, SHA-384 for P-384)
   * returning r||s; `message` is the 1609.2 data input H(tbs)||H(signer) (1609.2 5.3.1.2.2).
   */
  sign(message: Uint8Array): Promise<Uint8Array>;
}

/** hsm curve names -> crypto curve names. */
export function curveOfKeyStore(curve: 'P-256' | 'P-384'): CurveName {
  return curve === 'P-256' ? 'nistP256' : 'nistP384';
}

/** A Signer over a key held in a KeyStore (soft or PKCS#11). */
export function keyStoreSigner(stores: KeyStores, handle: KeyHandle): Signer {
  return {
    curve: curveOfKeyStore(handle.curve),
    publicKey: handle.publicKey,
    sign: (message) => stores.sign(handle.uri, message),
  };
}

/** A Signer over an in-memory private scalar (EE keys after reconstruction, tests). */
export function scalarSigner(curve: CurveName, d: bigint, publicKey: Uint8Array): Signer {
  const key = signingKey(curve, d);
  return {
    curve,
    publicKey,
    sign: async (message) => {
      const sig = ecdsaSign(key, message, 'x-only');
      const out = new Uint8Array(sig.r.length + sig.s.length);
      out.set(sig.r, 0);
      out.set(sig.s, sig.r.length);
      return out;
    },
  };
}
