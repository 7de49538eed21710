// Key store factory: dispatch on URI scheme (file: / pkcs11:), one cached store per backend.
import { resolve } from 'node:path';
import { type KeyHandle, type KeyStore, KeyStoreError, type SecretProvider } from './keystore.js';
import { MODULE_ENV, Pkcs11KeyStore } from './pkcs11.js';
import { parsePkcs11Uri } from './pkcs11-uri.js';
import { SoftKeyStore } from './soft.js';

export * from './keystore.js';
export { SoftKeyStore, PASSPHRASE_ENV, type SoftKeyStoreOptions } from './soft.js';
export { Pkcs11KeyStore, PIN_ENV, MODULE_ENV, type Pkcs11KeyStoreOptions } from './pkcs11.js';
export { parsePkcs11Uri, formatPkcs11Uri, type Pkcs11Uri } from './pkcs11-uri.js';

export interface KeyStoreOptions {
  /** file: base directory (default: process.cwd()). */
  baseDir?: string;
  /** file: directory for new keys, relative to baseDir (default 'keys'). */
  keyDir?: string;
  passphrase?: SecretProvider;
  passphraseEnv?: string;
  scrypt?: { N?: number; r?: number; p?: number };
  /** pkcs11: module path (else URI module-path, else env SCMS_PKCS11_MODULE). */
  modulePath?: string;
  moduleEnv?: string;
  pin?: SecretProvider;
  pinEnv?: string;
}

/**
 * Opens the store a URI lives in: `file:...` -> SoftKeyStore on baseDir,
 * `pkcs11:token=...` -> Pkcs11KeyStore on that token. Not cached; see KeyStores.
 */
export async function openKeyStore(uri: string, opts: KeyStoreOptions = {}): Promise<KeyStore> {
  const scheme = schemeOf(uri);
  if (scheme === 'file') {
    return new SoftKeyStore({
      baseDir: opts.baseDir ?? process.cwd(),
      keyDir: opts.keyDir,
      passphrase: opts.passphrase,
      passphraseEnv: opts.passphraseEnv,
      scrypt: opts.scrypt,
    });
  }
  return Pkcs11KeyStore.open({ uri, modulePath: opts.modulePath, moduleEnv: opts.moduleEnv, pin: opts.pin, pinEnv: opts.pinEnv });
}

function schemeOf(uri: string): 'file' | 'pkcs11' {
  if (/^file:/i.test(uri)) return 'file';
  if (/^pkcs11:/i.test(uri)) return 'pkcs11';
  throw new KeyStoreError('BAD_URI', `unsupported key URI '${uri}' (expected file:... or pkcs11:...)`);
}

/**
 * A set of open stores keyed by backend (soft: base directory; PKCS#11: module + token),
 * so a process keeps one session per token however many key URIs its configuration names.
 */
export class KeyStores {
  private readonly stores = new Map<string, Promise<KeyStore>>();

  constructor(private readonly opts: KeyStoreOptions = {}) {}

  /** The (cached) store holding `uri`; `uri` may name just the token (pkcs11:token=scms) or be `file:`. */
  storeFor(uri: string): Promise<KeyStore> {
    const id = this.backendId(uri);
    let p = this.stores.get(id);
    if (!p) {
      p = openKeyStore(uri, this.opts);
      this.stores.set(id, p);
      p.catch(() => this.stores.delete(id));
    }
    return p;
  }

  async open(uri: string): Promise<KeyHandle> {
    return (await this.storeFor(uri)).open(uri);
  }

  async sign(uri: string, message: Uint8Array): Promise<Uint8Array> {
    return (await this.storeFor(uri)).sign(uri, message);
  }

  async ecdh(uri: string, peerPublicKey: Uint8Array): Promise<Uint8Array> {
    return (await this.storeFor(uri)).ecdh(uri, peerPublicKey);
  }

  async exportPrivateScalar(uri: string): Promise<bigint> {
    return (await this.storeFor(uri)).exportPrivateScalar(uri);
  }

  async close(): Promise<void> {
    const all = [...this.stores.values()];
    this.stores.clear();
    await Promise.all(all.map((p) => p.then((s) => s.close(), () => undefined)));
  }

  private backendId(uri: string): string {
    if (schemeOf(uri) === 'file') return `file:${resolve(this.opts.baseDir ?? process.cwd())}`;
    const u = parsePkcs11Uri(uri);
    if (!u.token) throw new KeyStoreError('BAD_URI', `${uri}: no token= attribute`);
    const mod = this.opts.modulePath ?? u.modulePath ?? process.env[this.opts.moduleEnv ?? MODULE_ENV] ?? '';
    return `pkcs11:${mod}\0${u.token}`;
  }
}
