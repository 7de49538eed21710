// The KeyStore interface shared by the soft (file:) and PKCS#11 (pkcs11:) backends.
import { ECDH } from 'node:crypto';

export type CurveName = 'P-256' | 'P-384';

export interface CurveInfo {
  name: CurveName;
  /** Field / scalar size in bytes. */
  size: number;
  /** Hash used by sign(): SHA-256 for P-256, SHA-384 for P-384 (IEEE 1609.2 5.3.1). */
  hash: 'sha256' | 'sha384';
  /** OpenSSL curve name for node:crypto createECDH. */
  openssl: 'prime256v1' | 'secp384r1';
  /** JWK "crv". */
  jwk: 'P-256' | 'P-384';
  /** namedCurve OID (RFC 5480 2.1.1.1), DER-encoded into CKA_EC_PARAMS. */
  oid: string;
  /** Group order n (FIPS 186-4 D.1.2). */
  n: bigint;
}

export const CURVES: Record<CurveName, CurveInfo> = {
  'P-256': {
    name: 'P-256',
    size: 32,
    hash: 'sha256',
    openssl: 'prime256v1',
    jwk: 'P-256',
    oid: '1.2.840.10045.3.1.7',
    n: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  },
  'P-384': {
    name: 'P-384',
    size: 48,
    hash: 'sha384',
    openssl: 'secp384r1',
    jwk: 'P-384',
    oid: '1.3.132.0.34',
    n: 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
  },
};

export function curveInfo(curve: string): CurveInfo {
  const info = (CURVES as Record<string, CurveInfo | undefined>)[curve];
  if (!info) throw new KeyStoreError('BAD_CURVE', `unsupported curve '${curve}' (expected P-256 or P-384)`);
  return info;
}

export interface KeyHandle {
  /** URI the key is referenced by in configuration (file:... or pkcs11:...). */
  uri: string;
  curve: CurveName;
  /** Uncompressed SEC 1 point 04||x||y. */
  publicKey: Uint8Array;
}

export interface GenerateOptions {
  /** Replace an existing key of the same name (soft store only; PKCS#11 refuses duplicates). */
  overwrite?: boolean;
}

export interface KeyStore {
  /** 'file' or 'pkcs11'. */
  readonly scheme: 'file' | 'pkcs11';
  /** True when exportPrivateScalar() works (soft store). */
  readonly exportable: boolean;
  /** Creates a new key pair named `name`; fails if the name is taken (unless overwrite). */
  generate(name: string, curve: CurveName, opts?: GenerateOptions): Promise<KeyHandle>;
  /** Looks a key up by URI; fails with KeyStoreError('NOT_FOUND') when absent. */
  open(uri: string): Promise<KeyHandle>;
  /** ECDSA over `message`, hashed inside with SHA-256 (P-256) / SHA-384 (P-384); returns r||s, 2*size bytes. */
  sign(uri: string, message: Uint8Array): Promise<Uint8Array>;
  /** ECDH: x-coordinate of d*Q for the peer point Q (SEC 1 compressed or uncompressed). */
  ecdh(uri: string, peerPublicKey: Uint8Array): Promise<Uint8Array>;
  /** Private scalar d (soft store only: the ECQV CA side needs it). PKCS#11 throws NOT_EXPORTABLE. */
  exportPrivateScalar(uri: string): Promise<bigint>;
  /** Stores a known private scalar (soft store only, e.g. EE keys from ECQV reconstruction). */
  importPrivateScalar(name: string, curve: CurveName, d: bigint, opts?: GenerateOptions): Promise<KeyHandle>;
  /** Releases sessions/cached keys. The store is unusable afterwards. */
  close(): Promise<void>;
}

export type KeyStoreErrorCode =
  | 'BAD_URI'
  | 'BAD_CURVE'
  | 'BAD_NAME'
  | 'BAD_KEY'
  | 'NOT_FOUND'
  | 'EXISTS'
  | 'AMBIGUOUS'
  | 'NO_SECRET'
  | 'WRONG_SECRET'
  | 'CORRUPT'
  | 'NOT_EXPORTABLE'
  | 'MODULE'
  | 'TOKEN'
  | 'CLOSED'
  | 'PKCS11';

export class KeyStoreError extends Error {
  constructor(
    readonly code: KeyStoreErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'KeyStoreError';
  }
}

/** A secret given directly, or asked for when first needed (CLI prompt). */
export type SecretProvider = string | (() => string | Promise<string>);

export async function resolveSecret(
  given: SecretProvider | undefined,
  envName: string,
  what: string,
): Promise<string> {
  let value: string | undefined;
  if (typeof given === 'function') value = await given();
  else if (typeof given === 'string') value = given;
  else value = process.env[envName];
  if (value === undefined || value === '') {
    throw new KeyStoreError('NO_SECRET', `no ${what}: pass one or set ${envName}`);
  }
  return value;
}

/** Key names become file names and CKA_LABELs: keep them plain. */
export function checkKeyName(name: string): void {
  if (!/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/.test(name)) {
    throw new KeyStoreError('BAD_NAME', `invalid key name '${name}' (letters, digits, . _ -, max 128, no leading dot)`);
  }
}

/**
 * SEC 1 2.3.4: returns the uncompressed point for a compressed or uncompressed
 * encoding; OpenSSL checks that the point is on the curve.
 */
export function toUncompressed(curve: CurveInfo, point: Uint8Array): Buffer {
  const p = Buffer.from(point.buffer, point.byteOffset, point.byteLength);
  const ok =
    (p.length === 2 * curve.size + 1 && p[0] === 0x04) ||
    (p.length === curve.size + 1 && (p[0] === 0x02 || p[0] === 0x03));
  if (!ok) throw new KeyStoreError('BAD_KEY', `peer public key is not a SEC 1 ${curve.name} point (${p.length} bytes)`);
  try {
    return ECDH.convertKey(p, curve.openssl, undefined, undefined, 'uncompressed') as Buffer;
  } catch (cause) {
    throw new KeyStoreError('BAD_KEY', `peer public key is not on ${curve.name}`, { cause });
  }
}

export function bigintToBytes(v: bigint, size: number): Buffer {
  const hex = v.toString(16);
  if (v < 0n || hex.length > size * 2) throw new RangeError('integer does not fit');
  return Buffer.from(hex.padStart(size * 2, '0'), 'hex');
}

export function bytesToBigint(b: Uint8Array): bigint {
  return b.length === 0 ? 0n : BigInt('0x' + Buffer.from(b).toString('hex'));
}
