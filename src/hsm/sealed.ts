// Passphrase-based sealing of small secrets: scrypt (RFC 7914) -> AES-256-GCM (NIST SP 800-38D).
import { createCipheriv, createDecipheriv, randomBytes, scrypt } from 'node:crypto';

export interface ScryptParams {
  name: 'scrypt';
  /** CPU/memory cost, power of two. */
  N: number;
  r: number;
  p: number;
  /** base64 */
  salt: string;
}

export interface GcmBox {
  name: 'aes-256-gcm';
  /** base64, 12 bytes (SP 800-38D 8.2.2, random IV construction) */
  iv: string;
  /** base64, 16 bytes */
  tag: string;
  /** base64 */
  ciphertext: string;
}

export const DEFAULT_SCRYPT = { N: 2 ** 15, r: 8, p: 1 } as const;

export function newScryptParams(cost: { N?: number; r?: number; p?: number } = {}): ScryptParams {
  const N = cost.N ?? DEFAULT_SCRYPT.N;
  const r = cost.r ?? DEFAULT_SCRYPT.r;
  const p = cost.p ?? DEFAULT_SCRYPT.p;
  checkScrypt({ name: 'scrypt', N, r, p, salt: '' });
  return { name: 'scrypt', N, r, p, salt: randomBytes(16).toString('base64') };
}

export function checkScrypt(k: ScryptParams): void {
  const pow2 = Number.isInteger(k.N) && k.N >= 2 && (k.N & (k.N - 1)) === 0;
  if (k.name !== 'scrypt' || !pow2 || k.N > 2 ** 22 || !(k.r >= 1 && k.r <= 32) || !(k.p >= 1 && k.p <= 16)) {
    throw new RangeError(`unsupported KDF parameters ${JSON.stringify({ ...k, salt: undefined })}`);
  }
}

/** 32-byte key from the passphrase (RFC 7914). */
export function deriveKey(passphrase: string, k: ScryptParams): Promise<Buffer> {
  checkScrypt(k);
  const salt = Buffer.from(k.salt, 'base64');
  return new Promise((resolve, reject) =>
    scrypt(passphrase.normalize('NFC'), salt, 32, { N: k.N, r: k.r, p: k.p, maxmem: 256 * k.N * k.r + 1024 * 1024 }, (e, key) =>
      e ? reject(e) : resolve(key),
    ),
  );
}

export function seal(key: Buffer, plaintext: Uint8Array, aad: Uint8Array): GcmBox {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(aad);
  const ct = Buffer.concat([c.update(plaintext), c.final()]);
  return {
    name: 'aes-256-gcm',
    iv: iv.toString('base64'),
    tag: c.getAuthTag().toString('base64'),
    ciphertext: ct.toString('base64'),
  };
}

/** Returns null when authentication fails (wrong key or modified data). */
export function open(key: Buffer, box: GcmBox, aad: Uint8Array): Buffer | null {
  if (box.name !== 'aes-256-gcm') return null;
  const iv = Buffer.from(box.iv, 'base64');
  const tag = Buffer.from(box.tag, 'base64');
  if (iv.length !== 12 || tag.length !== 16) return null;
  const d = createDecipheriv('aes-256-gcm', key, iv);
  d.setAAD(aad);
  d.setAuthTag(tag);
  try {
    return Buffer.concat([d.update(Buffer.from(box.ciphertext, 'base64')), d.final()]);
  } catch {
    return null;
  }
}
