// ECIES key encapsulation of IEEE 1609.2 5.3.5 (curves NIST P-256 and brainpoolP256r1), and the data encryption
// of 5.3.4/5.3.8 built on it (random AES-128 key + nonce, AES-CCM).
//
//   V = k*G, Z = x(k*R), K = KDF2-SHA256(Z, P1, 48), C = K[0:16] XOR key, T = MAC1(K[16:48], C)
//
// P1 is supplied by the caller, per the RecipientInfo choice (1609.2 6.3.x RecipientInfo):
//   certRecipInfo       - hash of the recipient's certificate (COER, whole-certificate hash algorithm, 6.4.3)
//   signedDataRecipInfo - SHA-256 hash of the Ieee1609Dot2Data (signedData) that carried the response encryption key
//   rekRecipInfo        - hash of the empty string
// (pskRecipInfo / symmRecipInfo do not use ECIES.)
import { constantTimeEqual, wipe, xor } from './bytes.js';
import { nodeEcdh, scalarFromBytes, type CurveName } from './curves.js';
import { kdf2Sha256 } from './kdf2.js';
import { mac1 } from './mac1.js';
import { aesCcmDecrypt, aesCcmEncrypt } from './aesccm.js';
import { randomOctets } from './random.js';

/** Curves for which 1609.2 defines ECIES (EciesP256EncryptedKey). */
export type EciesCurve = Extract<CurveName, 'nistP256' | 'brainpoolP256r1'>;

/** 1609.2 EciesP256EncryptedKey: v (ephemeral public key), c (encrypted key), t (tag). */
export interface EciesEncryptedKey {
  /** Ephemeral public key V, 02/03||x (compressed, the default) or 04||x||y. */
  readonly v: Uint8Array;
  readonly c: Uint8Array;
  readonly t: Uint8Array;
}

/** Computes the ECDH x-coordinate with the recipient's private key for a given V (e.g. inside an HSM). */
export type EcdhFunction = (ephemeralPublicKey: Uint8Array) => Uint8Array;
export type AsyncEcdhFunction = (ephemeralPublicKey: Uint8Array) => Promise<Uint8Array>;

export class EciesDecryptionError extends Error {
  constructor() {
    super('ECIES decryption failed: authentication tag mismatch');
    this.name = 'EciesDecryptionError';
  }
}

const KEY_LENGTH = 16;
const MAC_KEY_LENGTH = 32;

function checkCurve(name: CurveName): asserts name is EciesCurve {
  if (name !== 'nistP256' && name !== 'brainpoolP256r1') throw new Error(`ECIES is not defined for ${name}`);
}

export interface EciesEncryptOptions {
  /** Ephemeral private key k (tests only; by default OpenSSL draws a fresh one). */
  readonly ephemeralPrivateKey?: Uint8Array;
  /** Encode V uncompressed (default: compressed). */
  readonly uncompressedV?: boolean;
}

/** Encrypt a 16-octet symmetric key to the recipient public key R. */
export function eciesEncryptKey(
  name: EciesCurve,
  recipientPublicKey: Uint8Array,
  symmetricKey: Uint8Array,
  p1: Uint8Array,
  options: EciesEncryptOptions = {},
): EciesEncryptedKey {
  checkCurve(name);
  if (symmetricKey.length !== KEY_LENGTH) throw new RangeError('symmetric key must be 16 octets');
  const e = nodeEcdh(name); // reused OpenSSL object (curves.ts): fresh key set here, used in this tick only
  const form = options.uncompressedV ? 'uncompressed' : 'compressed';
  let v: Uint8Array;
  if (options.ephemeralPrivateKey) {
    scalarFromBytes(name, options.ephemeralPrivateKey);
    e.setPrivateKey(options.ephemeralPrivateKey);
    v = new Uint8Array(e.getPublicKey(null, form));
  } else {
    // generateKeys(encoding, format) returns the public key in that format (one conversion instead of two)
    v = new Uint8Array((e.generateKeys as unknown as (enc: undefined, f: string) => Buffer)(undefined, form));
  }
  const z = e.computeSecret(recipientPublicKey); // validates R
  const k = kdf2Sha256(z, p1, KEY_LENGTH + MAC_KEY_LENGTH);
  z.fill(0);
  const c = xor(k.subarray(0, KEY_LENGTH), symmetricKey);
  const t = mac1(k.subarray(KEY_LENGTH), c);
  wipe(k);
  return { v, c, t };
}

function unwrap(z: Uint8Array, enc: EciesEncryptedKey, p1: Uint8Array): Uint8Array {
  if (enc.c.length !== KEY_LENGTH || enc.t.length !== 16) throw new EciesDecryptionError();
  const k = kdf2Sha256(z, p1, KEY_LENGTH + MAC_KEY_LENGTH);
  wipe(z);
  const ok = constantTimeEqual(mac1(k.subarray(KEY_LENGTH), enc.c), enc.t);
  if (!ok) {
    wipe(k);
    throw new EciesDecryptionError();
  }
  const key = xor(k.subarray(0, KEY_LENGTH), enc.c);
  wipe(k);
  return key;
}

/**
 * Recover the symmetric key with the recipient private scalar or with an ECDH callback (HSM).
 * Throws EciesDecryptionError when the tag does not verify.
 */
export function eciesDecryptKey(
  name: EciesCurve,
  recipient: Uint8Array | EcdhFunction,
  enc: EciesEncryptedKey,
  p1: Uint8Array,
): Uint8Array {
  checkCurve(name);
  let z: Uint8Array;
  if (typeof recipient === 'function') {
    z = recipient(enc.v);
  } else {
    scalarFromBytes(name, recipient);
    const e = nodeEcdh(name);
    e.setPrivateKey(recipient);
    z = new Uint8Array(e.computeSecret(enc.v)); // validates V
  }
  return unwrap(z, enc, p1);
}

/** As eciesDecryptKey, with an asynchronous ECDH callback. */
export async function eciesDecryptKeyAsync(
  name: EciesCurve,
  ecdh: AsyncEcdhFunction,
  enc: EciesEncryptedKey,
  p1: Uint8Array,
): Promise<Uint8Array> {
  checkCurve(name);
  return unwrap(await ecdh(enc.v), enc, p1);
}

// ---------------------------------------------------------------- encrypted data (1609.2 5.3.4, 5.3.8)

export interface EciesRecipient {
  readonly curve: EciesCurve;
  readonly publicKey: Uint8Array;
  /** P1 for this recipient (see the table at the top of this file). */
  readonly p1: Uint8Array;
}

export interface EncryptedDataParts {
  /** One encrypted data key per recipient, in the order given. */
  readonly encKeys: EciesEncryptedKey[];
  /** AesCcmCiphertext.nonce (12 octets). */
  readonly nonce: Uint8Array;
  /** AesCcmCiphertext.ccmCiphertext (ciphertext || 16-octet tag). */
  readonly ccmCiphertext: Uint8Array;
}

/** Encrypt data: fresh random AES-128 key and nonce, AES-CCM over the plaintext, the key ECIES-wrapped per recipient. */
export function eciesEncryptData(recipients: readonly EciesRecipient[], plaintext: Uint8Array): EncryptedDataParts {
  if (recipients.length === 0) throw new Error('no recipients');
  const key = randomOctets(KEY_LENGTH);
  const nonce = randomOctets(12);
  try {
    const ccmCiphertext = aesCcmEncrypt(key, nonce, plaintext);
    const encKeys = recipients.map((r) => eciesEncryptKey(r.curve, r.publicKey, key, r.p1));
    return { encKeys, nonce, ccmCiphertext };
  } finally {
    wipe(key);
  }
}

/** Decrypt data encrypted for us: unwrap the data key (our encKey and P1) then AES-CCM-decrypt. */
export function eciesDecryptData(
  name: EciesCurve,
  recipient: Uint8Array | EcdhFunction,
  encKey: EciesEncryptedKey,
  p1: Uint8Array,
  nonce: Uint8Array,
  ccmCiphertext: Uint8Array,
): Uint8Array {
  const key = eciesDecryptKey(name, recipient, encKey, p1);
  try {
    return aesCcmDecrypt(key, nonce, ccmCiphertext);
  } finally {
    wipe(key);
  }
}
