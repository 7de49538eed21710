// Encrypted soft keystore: one JSON file per key, private scalar sealed with scrypt + AES-256-GCM.
// Design (see README.md): a store-level scrypt salt (keystore.json) so one scrypt run unlocks every key
// written by this store; each key file still carries its own KDF parameters and is decryptable alone.
import {
  createECDH,
  createPrivateKey,
  generateKeyPair,
  sign as nodeSign,
  type ECDH,
  type KeyObject,
} from 'node:crypto';
import { promises as fs } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { FileExistsError, writeFileAtomic } from './atomic-file.js';
import {
  type CurveInfo,
  type CurveName,
  type GenerateOptions,
  type KeyHandle,
  type KeyStore,
  KeyStoreError,
  type SecretProvider,
  bigintToBytes,
  bytesToBigint,
  checkKeyName,
  curveInfo,
  resolveSecret,
  toUncompressed,
} from './keystore.js';
import { type GcmBox, type ScryptParams, deriveKey, newScryptParams, open as openBox, seal } from './sealed.js';

export const PASSPHRASE_ENV = 'SCMS_KEYSTORE_PASSPHRASE';
const KEY_FORMAT = 'scms-soft-key';
const STORE_FORMAT = 'scms-soft-keystore';
const STORE_FILE = 'keystore.json';
const CHECK_AAD = Buffer.from('scms-soft-keystore passphrase check v1');

export interface SoftKeyStoreOptions {
  /** Directory `file:` URIs are relative to (e.g. the data directory). */
  baseDir: string;
  /** Where generate()/importPrivateScalar() put keys, relative to baseDir. Default 'keys'. */
  keyDir?: string;
  /** Passphrase or a provider (CLI prompt). Default: env SCMS_KEYSTORE_PASSPHRASE (see passphraseEnv). */
  passphrase?: SecretProvider;
  passphraseEnv?: string;
  /** scrypt cost for a new store salt; default N=2^15, r=8, p=1. */
  scrypt?: { N?: number; r?: number; p?: number };
}

interface KeyFile {
  format: typeof KEY_FORMAT;
  version: 1;
  curve: CurveName;
  /** hex, uncompressed point */
  publicKey: string;
  kdf: ScryptParams;
  cipher: GcmBox;
}

interface StoreFile {
  format: typeof STORE_FORMAT;
  version: 1;
  kdf: ScryptParams;
  /** GCM tag over an empty plaintext: detects a wrong passphrase before any key is written. */
  check: GcmBox;
}

interface LoadedKey {
  handle: KeyHandle;
  curve: CurveInfo;
  privateKey: KeyObject;
  ecdh: ECDH;
}

/** Authenticated header of a key file (GCM AAD): curve, public key and KDF cannot be swapped. */
function keyAad(f: Pick<KeyFile, 'curve' | 'publicKey' | 'kdf'>): Buffer {
  const { name, N, r, p, salt } = f.kdf;
  return Buffer.from(
    JSON.stringify([KEY_FORMAT, 1, f.curve, f.publicKey.toLowerCase(), name, N, r, p, salt]),
  );
}

function kdfId(k: ScryptParams): string {
  return `${k.N}/${k.r}/${k.p}/${k.salt}`;
}

export class SoftKeyStore implements KeyStore {
  readonly scheme = 'file' as const;
  readonly exportable = true;
  private readonly baseDir: string;
  private readonly keyDir: string;
  private passphrase: Promise<string> | undefined;
  private storeKdf: Promise<ScryptParams> | undefined;
  /** Derived AES keys per (salt, cost): one scrypt run per distinct salt, not per key. */
  private readonly kek = new Map<string, Promise<Buffer>>();
  private readonly keys = new Map<string, Promise<LoadedKey>>();
  private closed = false;

  constructor(private readonly opts: SoftKeyStoreOptions) {
    this.baseDir = resolve(opts.baseDir);
    this.keyDir = opts.keyDir ?? 'keys';
    if (isAbsolute(this.keyDir)) throw new KeyStoreError('BAD_URI', 'keyDir must be relative to baseDir');
  }

  /** The URI a key named `name` gets. */
  uriFor(name: string): string {
    checkKeyName(name);
    return `file:${this.keyDir.split(sep).join('/')}/${name}.key`;
  }

  /** file:<relative path> (resolved against baseDir) or file:/<absolute path>. */
  pathOf(uri: string): string {
    if (!uri.startsWith('file:')) throw new KeyStoreError('BAD_URI', `not a file: key URI: '${uri}'`);
    let p: string;
    try {
      p = decodeURIComponent(uri.slice(5));
    } catch (cause) {
      throw new KeyStoreError('BAD_URI', `bad percent-encoding in '${uri}'`, { cause });
    }
    if (p.startsWith('//')) {
      // RFC 8089: file://<host>/path; only the local host form file:///path is accepted.
      if (!p.startsWith('///')) throw new KeyStoreError('BAD_URI', `remote file URI not supported: '${uri}'`);
      p = p.slice(2);
    }
    if (p === '' || p.includes('\0')) throw new KeyStoreError('BAD_URI', `empty or invalid path in '${uri}'`);
    return isAbsolute(p) ? p : resolve(this.baseDir, p);
  }

  async generate(name: string, curve: CurveName, opts?: GenerateOptions): Promise<KeyHandle> {
    this.assertOpen();
    const c = curveInfo(curve);
    const uri = this.uriFor(name);
    const privateKey = await new Promise<KeyObject>((res, rej) =>
      generateKeyPair('ec', { namedCurve: c.openssl }, (e, _pub, priv) => (e ? rej(e) : res(priv))),
    );
    const jwk = privateKey.export({ format: 'jwk' });
    const d = Buffer.from(jwk.d as string, 'base64url');
    try {
      return await this.store(uri, c, d, opts?.overwrite ?? false);
    } finally {
      d.fill(0);
    }
  }

  async importPrivateScalar(name: string, curve: CurveName, d: bigint, opts?: GenerateOptions): Promise<KeyHandle> {
    this.assertOpen();
    const c = curveInfo(curve);
    if (d <= 0n || d >= c.n) throw new KeyStoreError('BAD_KEY', `private scalar out of range [1, n-1] for ${curve}`);
    const uri = this.uriFor(name);
    const bytes = bigintToBytes(d, c.size);
    try {
      return await this.store(uri, c, bytes, opts?.overwrite ?? false);
    } finally {
      bytes.fill(0);
    }
  }

  async open(uri: string): Promise<KeyHandle> {
    return (await this.load(uri)).handle;
  }

  async sign(uri: string, message: Uint8Array): Promise<Uint8Array> {
    const k = await this.load(uri);
    // IEEE 1609.2 5.3.1: SHA-256 with P-256, SHA-384 with P-384; ieee-p1363 = fixed-length r||s.
    return nodeSign(k.curve.hash, message, { key: k.privateKey, dsaEncoding: 'ieee-p1363' });
  }

  async ecdh(uri: string, peerPublicKey: Uint8Array): Promise<Uint8Array> {
    const k = await this.load(uri);
    const peer = toUncompressed(k.curve, peerPublicKey);
    // SEC 1 3.3.1: the shared secret is the x-coordinate of d*Q.
    return k.ecdh.computeSecret(peer);
  }

  async exportPrivateScalar(uri: string): Promise<bigint> {
    const k = await this.load(uri);
    return bytesToBigint(Buffer.from(k.privateKey.export({ format: 'jwk' }).d as string, 'base64url'));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.keys.clear();
    for (const p of this.kek.values()) p.then((k) => k.fill(0), () => undefined);
    this.kek.clear();
    this.passphrase = undefined;
  }

  // ---- internals ----

  private assertOpen(): void {
    if (this.closed) throw new KeyStoreError('CLOSED', 'soft keystore is closed');
  }

  private getPassphrase(): Promise<string> {
    if (!this.passphrase) {
      this.passphrase = resolveSecret(this.opts.passphrase, this.opts.passphraseEnv ?? PASSPHRASE_ENV, 'keystore passphrase');
      this.passphrase.catch(() => (this.passphrase = undefined));
    }
    return this.passphrase;
  }

  private getKek(k: ScryptParams): Promise<Buffer> {
    const id = kdfId(k);
    let p = this.kek.get(id);
    if (!p) {
      p = this.getPassphrase().then((pw) => deriveKey(pw, k));
      this.kek.set(id, p);
      p.catch(() => this.kek.delete(id));
    }
    return p;
  }

  /** Store salt: read keystore.json (checking the passphrase) or create it on first use. */
  private getStoreKdf(): Promise<ScryptParams> {
    if (!this.storeKdf) {
      this.storeKdf = this.loadOrCreateStoreFile();
      this.storeKdf.catch(() => (this.storeKdf = undefined));
    }
    return this.storeKdf;
  }

  /** The store salt if keystore.json exists (verifying the passphrase), without creating it. */
  private async existingStoreKdf(): Promise<ScryptParams | undefined> {
    if (!this.storeKdf) {
      const path = join(resolve(this.baseDir, this.keyDir), STORE_FILE);
      if ((await readJson<StoreFile>(path)) === undefined) return undefined;
    }
    return this.getStoreKdf();
  }

  private async loadOrCreateStoreFile(): Promise<ScryptParams> {
    const dir = resolve(this.baseDir, this.keyDir);
    const path = join(dir, STORE_FILE);
    let existing: StoreFile | undefined = await readJson<StoreFile>(path);
    if (!existing) {
      await fs.mkdir(dir, { recursive: true, mode: 0o700 });
      const kdf = newScryptParams(this.opts.scrypt);
      const key = await this.getKek(kdf);
      const file: StoreFile = { format: STORE_FORMAT, version: 1, kdf, check: seal(key, new Uint8Array(0), CHECK_AAD) };
      try {
        await writeFileAtomic(path, JSON.stringify(file, null, 2) + '\n', true);
        return kdf;
      } catch (e) {
        if (!(e instanceof FileExistsError)) throw e;
        existing = await readJson<StoreFile>(path); // another process created it first
        if (!existing) throw e;
      }
    }
    if (existing.format !== STORE_FORMAT || existing.version !== 1) {
      throw new KeyStoreError('CORRUPT', `${path}: not a version 1 scms keystore file`);
    }
    const key = await this.getKek(existing.kdf);
    if (openBox(key, existing.check, CHECK_AAD) === null) {
      throw new KeyStoreError('WRONG_SECRET', `wrong keystore passphrase for ${dir}`);
    }
    return existing.kdf;
  }

  private async store(uri: string, c: CurveInfo, d: Buffer, overwrite: boolean): Promise<KeyHandle> {
    const kdf = await this.getStoreKdf();
    const key = await this.getKek(kdf);
    const ecdh = createECDH(c.openssl);
    ecdh.setPrivateKey(d);
    const publicKey = ecdh.getPublicKey(undefined, 'uncompressed');
    const header = { curve: c.name, publicKey: publicKey.toString('hex'), kdf };
    const file: KeyFile = { format: KEY_FORMAT, version: 1, ...header, cipher: seal(key, d, keyAad(header)) };
    const path = this.pathOf(uri);
    try {
      await writeFileAtomic(path, JSON.stringify(file, null, 2) + '\n', !overwrite);
    } catch (e) {
      if (e instanceof FileExistsError) throw new KeyStoreError('EXISTS', `key already exists: ${uri}`);
      throw e;
    }
    const loaded = this.materialize(uri, c, d, ecdh, publicKey);
    this.keys.set(path, Promise.resolve(loaded));
    return loaded.handle;
  }

  private materialize(uri: string, c: CurveInfo, d: Buffer, ecdh: ECDH, publicKey: Buffer): LoadedKey {
    const x = publicKey.subarray(1, 1 + c.size).toString('base64url');
    const y = publicKey.subarray(1 + c.size).toString('base64url');
    const privateKey = createPrivateKey({
      key: { kty: 'EC', crv: c.jwk, d: d.toString('base64url'), x, y },
      format: 'jwk',
    });
    return { handle: { uri, curve: c.name, publicKey: new Uint8Array(publicKey) }, curve: c, privateKey, ecdh };
  }

  private load(uri: string): Promise<LoadedKey> {
    this.assertOpen();
    const path = this.pathOf(uri);
    let p = this.keys.get(path);
    if (!p) {
      p = this.readKey(uri, path);
      this.keys.set(path, p);
      p.catch(() => this.keys.delete(path));
    }
    return p;
  }

  private async readKey(uri: string, path: string): Promise<LoadedKey> {
    const f = await readJson<KeyFile>(path);
    if (!f) throw new KeyStoreError('NOT_FOUND', `no such key: ${uri} (${path})`);
    if (f.format !== KEY_FORMAT || f.version !== 1 || !f.kdf || !f.cipher || typeof f.publicKey !== 'string') {
      throw new KeyStoreError('CORRUPT', `${path}: not a version 1 scms key file`);
    }
    const c = curveInfo(f.curve);
    let key: Buffer;
    try {
      key = await this.getKek(f.kdf);
    } catch (e) {
      if (e instanceof KeyStoreError) throw e;
      throw new KeyStoreError('CORRUPT', `${path}: bad KDF parameters`, { cause: e });
    }
    const d = openBox(key, f.cipher, keyAad(f));
    if (d === null) {
      // With the store salt the passphrase is already checked against keystore.json: then it is tampering.
      const storeKdf = await this.existingStoreKdf();
      const sameSalt = storeKdf !== undefined && kdfId(storeKdf) === kdfId(f.kdf);
      throw new KeyStoreError(
        sameSalt ? 'CORRUPT' : 'WRONG_SECRET',
        sameSalt
          ? `${path}: key file was modified or is corrupt (authentication failed)`
          : `${path}: wrong passphrase, or the key file was modified (authentication failed)`,
      );
    }
    try {
      const dv = bytesToBigint(d);
      if (d.length !== c.size || dv <= 0n || dv >= c.n) throw new KeyStoreError('CORRUPT', `${path}: bad private scalar`);
      const ecdh = createECDH(c.openssl);
      ecdh.setPrivateKey(d);
      const publicKey = ecdh.getPublicKey(undefined, 'uncompressed');
      if (publicKey.toString('hex') !== f.publicKey.toLowerCase()) {
        throw new KeyStoreError('CORRUPT', `${path}: public key does not match the private key`);
      }
      return this.materialize(uri, c, d, ecdh, publicKey);
    } finally {
      d.fill(0);
    }
  }
}

async function readJson<T>(path: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    return JSON.parse(text) as T;
  } catch (cause) {
    throw new KeyStoreError('CORRUPT', `${path}: not valid JSON`, { cause });
  }
}

/** Relative URI path helper for callers that keep keys outside keyDir. */
export function fileUri(baseDir: string, path: string): string {
  const rel = relative(resolve(baseDir), resolve(path));
  return rel.startsWith('..') || isAbsolute(rel) ? `file:${resolve(path)}` : `file:${rel.split(sep).join('/')}`;
}
