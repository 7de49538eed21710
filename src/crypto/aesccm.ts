// AES-128-CCM as 1609.2 5.3.8 uses it: 16-octet key, 12-octet nonce, 16-octet tag, no associated data.
// Output is ciphertext || tag.
import { createCipheriv, createDecipheriv } from 'node:crypto';

export const AES_CCM_NONCE_LENGTH = 12;
export const AES_CCM_TAG_LENGTH = 16;

/** Thrown when the CCM tag does not verify (wrong key, nonce, or tampered ciphertext). */
export class AesCcmDecryptionError extends Error {
  constructor() {
    super('AES-CCM decryption failed: authentication tag mismatch');
    this.name = 'AesCcmDecryptionError';
  }
}

function check(key: Uint8Array, nonce: Uint8Array): void {
  if (key.length !== 16) throw new RangeError('AES-128-CCM key must be 16 octets');
  if (nonce.length !== AES_CCM_NONCE_LENGTH) throw new RangeError('AES-CCM nonce must be 12 octets');
}

export function aesCcmEncrypt(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array): Uint8Array {
  check(key, nonce);
  const c = createCipheriv('aes-128-ccm', key, nonce, { authTagLength: AES_CCM_TAG_LENGTH });
  const body = c.update(plaintext);
  c.final();
  const out = new Uint8Array(body.length + AES_CCM_TAG_LENGTH);
  out.set(body, 0);
  out.set(c.getAuthTag(), body.length);
  return out;
}

export function aesCcmDecrypt(key: Uint8Array, nonce: Uint8Array, ciphertextAndTag: Uint8Array): Uint8Array {
  check(key, nonce);
  if (ciphertextAndTag.length < AES_CCM_TAG_LENGTH) throw new AesCcmDecryptionError();
  const n = ciphertextAndTag.length - AES_CCM_TAG_LENGTH;
  const d = createDecipheriv('aes-128-ccm', key, nonce, { authTagLength: AES_CCM_TAG_LENGTH });
  d.setAuthTag(ciphertextAndTag.subarray(n));
  let body: Buffer | undefined;
  try {
    body = d.update(ciphertextAndTag.subarray(0, n));
    d.final();
  } catch {
    body?.fill(0);
    throw new AesCcmDecryptionError();
  }
  return new Uint8Array(body);
}
