// PKCS#11 key store (pkcs11js): EC keys generated and used inside the token, never extractable.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pkcs11js from 'pkcs11js';
import {
  type CurveInfo,
  type CurveName,
  type KeyHandle,
  type KeyStore,
  KeyStoreError,
  type SecretProvider,
  checkKeyName,
  curveInfo,
  resolveSecret,
  toUncompressed,
} from './keystore.js';
import { curveFromEcParams, ecParamsDer, pointFromEcPoint } from './pkcs11-der.js';
import { formatPkcs11Uri, parsePkcs11Uri } from './pkcs11-uri.js';

type Handle = Buffer;
const P = pkcs11js;

export const PIN_ENV = 'SCMS_PKCS11_PIN';
export const MODULE_ENV = 'SCMS_PKCS11_MODULE';

export interface Pkcs11KeyStoreOptions {
  /** Token label (CK_TOKEN_INFO.label). Taken from `uri` when omitted. */
  token?: string;
  /** Any pkcs11: URI naming the token (and possibly module-path / pin-source / pin-value). */
  uri?: string;
  /** Module (shared library) path; else the URI's module-path, else env SCMS_PKCS11_MODULE. */
  modulePath?: string;
  moduleEnv?: string;
  /** User PIN or a provider (prompt); else the URI's pin-value / pin-source, else env SCMS_PKCS11_PIN. */
  pin?: SecretProvider;
  pinEnv?: string;
}

// ---- process-wide module and login state (PKCS#11 v2.40 5.4/5.6: both are per application) ----

interface LoadedModule {
  lib: pkcs11js.PKCS11;
  refs: number;
  /** slot hex -> number of stores logged in on it */
  logins: Map<string, number>;
}
const modules = new Map<string, LoadedModule>();

function acquireModule(path: string): LoadedModule {
  let m = modules.get(path);
  if (!m) {
    if (!existsSync(path)) {
      throw new KeyStoreError('MODULE', `PKCS#11 module not found: ${path} (for SoftHSM2: apt-get install softhsm2)`);
    }
    const lib = new P.PKCS11();
    try {
      lib.load(path);
    } catch (cause) {
      throw new KeyStoreError('MODULE', `cannot load PKCS#11 module ${path}: ${(cause as Error).message}`, { cause });
    }
    try {
      lib.C_Initialize();
    } catch (e) {
      if (!isCkr(e, P.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
        lib.close();
        throw wrap(e, `C_Initialize of ${path}`);
      }
    }
    m = { lib, refs: 0, logins: new Map() };
    modules.set(path, m);
  }
  m.refs++;
  return m;
}

function releaseModule(path: string): void {
  const m = modules.get(path);
  if (!m || --m.refs > 0) return;
  modules.delete(path);
  try {
    m.lib.C_Finalize();
  } finally {
    m.lib.close();
  }
}

function isCkr(e: unknown, code: number): boolean {
  return e instanceof P.Pkcs11Error && e.code === code;
}

function wrap(e: unknown, what: string): KeyStoreError {
  if (e instanceof KeyStoreError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new KeyStoreError('PKCS11', `PKCS#11 ${what} failed: ${msg}`, { cause: e });
}

/** Errors after which a fresh session (and login) may succeed. */
const SESSION_ERRORS = () => [
  P.CKR_SESSION_HANDLE_INVALID,
  P.CKR_SESSION_CLOSED,
  P.CKR_USER_NOT_LOGGED_IN,
  P.CKR_DEVICE_ERROR,
  P.CKR_DEVICE_REMOVED,
  P.CKR_TOKEN_NOT_PRESENT,
  P.CKR_OBJECT_HANDLE_INVALID,
  P.CKR_KEY_HANDLE_INVALID,
];

interface CachedKey {
  handle: KeyHandle;
  curve: CurveInfo;
  priv: Handle;
}

export class Pkcs11KeyStore implements KeyStore {
  readonly scheme = 'pkcs11' as const;
  readonly exportable = false;
  readonly token: string;
  readonly modulePath: string;
  private module: LoadedModule;
  private slot: Handle | undefined;
  private session: Handle | undefined;
  private pin: string | undefined;
  private readonly keys = new Map<string, CachedKey>();
  private closed = false;
  private connecting: Promise<void> | undefined;

  private constructor(
    modulePath: string,
    token: string,
    private readonly pinSource: () => Promise<string>,
  ) {
    this.modulePath = modulePath;
    this.token = token;
    this.module = acquireModule(modulePath);
  }

  /** Loads the module, finds the token by label, opens a session and logs in as CKU_USER. */
  static async open(opts: Pkcs11KeyStoreOptions): Promise<Pkcs11KeyStore> {
    const u = opts.uri !== undefined ? parsePkcs11Uri(opts.uri) : undefined;
    const token = opts.token ?? u?.token;
    if (!token) throw new KeyStoreError('BAD_URI', 'no token label: give a pkcs11: URI with token=... or the token option');
    const modulePath = opts.modulePath ?? u?.modulePath ?? process.env[opts.moduleEnv ?? MODULE_ENV];
    if (!modulePath) {
      throw new KeyStoreError(
        'MODULE',
        `no PKCS#11 module: set ${opts.moduleEnv ?? MODULE_ENV}, the modulePath option or module-path in the URI`,
      );
    }
    const pinEnv = opts.pinEnv ?? PIN_ENV;
    const pinSource = async (): Promise<string> => {
      if (opts.pin !== undefined) return resolveSecret(opts.pin, pinEnv, `PIN for token '${token}'`);
      if (u?.pinValue !== undefined) return u.pinValue; // RFC 7512 2.3 pin-value
      if (u?.pinSource !== undefined) return readPinSource(u.pinSource); // RFC 7512 2.3 pin-source
      return resolveSecret(undefined, pinEnv, `PIN for token '${token}'`);
    };
    const store = new Pkcs11KeyStore(modulePath, token, pinSource);
    try {
      await store.connect();
    } catch (e) {
      await store.close();
      throw e;
    }
    return store;
  }

  uriFor(name: string): string {
    checkKeyName(name);
    return formatPkcs11Uri({ token: this.token, object: name });
  }

  async generate(name: string, curve: CurveName): Promise<KeyHandle> {
    const c = curveInfo(curve);
    const uri = this.uriFor(name);
    return this.withSession((s) => {
      if (this.findObjects(s, P.CKO_PRIVATE_KEY, name).length > 0 || this.findObjects(s, P.CKO_PUBLIC_KEY, name).length > 0) {
        throw new KeyStoreError('EXISTS', `key already exists on token '${this.token}': ${uri}`);
      }
      const id = randomBytes(16);
      const common = [
        { type: P.CKA_TOKEN, value: true },
        { type: P.CKA_LABEL, value: name },
        { type: P.CKA_ID, value: id },
        { type: P.CKA_KEY_TYPE, value: P.CKK_EC },
      ];
      const pubT = [
        ...common,
        { type: P.CKA_CLASS, value: P.CKO_PUBLIC_KEY },
        { type: P.CKA_PRIVATE, value: false },
        { type: P.CKA_VERIFY, value: true },
        { type: P.CKA_EC_PARAMS, value: ecParamsDer(c) },
      ];
      const privT = [
        ...common,
        { type: P.CKA_CLASS, value: P.CKO_PRIVATE_KEY },
        { type: P.CKA_PRIVATE, value: true },
        { type: P.CKA_SENSITIVE, value: true },
        { type: P.CKA_EXTRACTABLE, value: false },
        { type: P.CKA_SIGN, value: true },
        { type: P.CKA_DERIVE, value: true },
      ];
      // PKCS#11 v2.40 2.3.5 CKM_EC_KEY_PAIR_GEN
      const kp = this.module.lib.C_GenerateKeyPair(s, { mechanism: P.CKM_EC_KEY_PAIR_GEN }, pubT, privT);
      const publicKey = this.readPoint(s, kp.publicKey, c);
      const k: CachedKey = { handle: { uri, curve: c.name, publicKey: new Uint8Array(publicKey) }, curve: c, priv: kp.privateKey };
      this.keys.set(uri, k);
      return k.handle;
    }, 'generate');
  }

  async open(uri: string): Promise<KeyHandle> {
    return (await this.key(uri)).handle;
  }

  async sign(uri: string, message: Uint8Array): Promise<Uint8Array> {
    const k = await this.key(uri);
    // Digest outside the token (SHA-256 / SHA-384, IEEE 1609.2 5.3.1), then CKM_ECDSA on the digest.
    const digest = createHash(k.curve.hash).update(message).digest();
    return this.withSession((s) => {
      const key = this.keys.get(uri) ?? k;
      this.module.lib.C_SignInit(s, { mechanism: P.CKM_ECDSA }, key.priv);
      // PKCS#11 v2.40 2.3.1: CKM_ECDSA output is r||s, each the length of n.
      const sig = this.module.lib.C_Sign(s, digest, Buffer.alloc(2 * k.curve.size));
      if (sig.length !== 2 * k.curve.size) throw new KeyStoreError('PKCS11', `unexpected signature length ${sig.length}`);
      return new Uint8Array(sig);
    }, 'sign', uri);
  }

  async ecdh(uri: string, peerPublicKey: Uint8Array): Promise<Uint8Array> {
    const k = await this.key(uri);
    const peer = toUncompressed(k.curve, peerPublicKey);
    return this.withSession((s) => {
      const key = this.keys.get(uri) ?? k;
      const lib = this.module.lib;
      // PKCS#11 v2.40 2.3.10 CKM_ECDH1_DERIVE with CKD_NULL: the derived value is the x-coordinate of d*Q.
      const secret = lib.C_DeriveKey(
        s,
        { mechanism: P.CKM_ECDH1_DERIVE, parameter: { type: P.CK_PARAMS_EC_DH, kdf: P.CKD_NULL, publicData: peer } as pkcs11js.ECDH1 },
        key.priv,
        [
          { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
          { type: P.CKA_KEY_TYPE, value: P.CKK_GENERIC_SECRET },
          { type: P.CKA_TOKEN, value: false },
          { type: P.CKA_SENSITIVE, value: false },
          { type: P.CKA_EXTRACTABLE, value: true },
          { type: P.CKA_VALUE_LEN, value: k.curve.size },
        ],
      );
      try {
        const [v] = lib.C_GetAttributeValue(s, secret, [{ type: P.CKA_VALUE }]);
        return new Uint8Array(v!.value);
      } finally {
        lib.C_DestroyObject(s, secret);
      }
    }, 'ecdh', uri);
  }

  async exportPrivateScalar(uri: string): Promise<bigint> {
    throw new KeyStoreError(
      'NOT_EXPORTABLE',
      `${uri}: PKCS#11 keys are non-extractable; the ECQV CA side needs a soft (file:) key`,
    );
  }

  async importPrivateScalar(name: string): Promise<KeyHandle> {
    throw new KeyStoreError('NOT_EXPORTABLE', `cannot import a private scalar as '${name}' into a PKCS#11 store; use a file: key store`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.keys.clear();
    this.dropSession(true);
    this.pin = undefined;
    releaseModule(this.modulePath);
  }

  // ---- internals ----

  /** One connect at a time, however many operations notice the lost session. */
  private reconnect(): Promise<void> {
    if (this.session !== undefined) return Promise.resolve();
    if (!this.connecting) {
      this.connecting = this.connect().finally(() => (this.connecting = undefined));
    }
    return this.connecting;
  }

  private async connect(): Promise<void> {
    const lib = this.module.lib;
    this.slot = this.findSlot();
    if (this.pin === undefined) this.pin = await this.pinSource();
    try {
      this.session = lib.C_OpenSession(this.slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
    } catch (e) {
      throw wrap(e, `C_OpenSession on token '${this.token}'`);
    }
    const slotKey = this.slot.toString('hex');
    try {
      lib.C_Login(this.session, P.CKU_USER, this.pin);
    } catch (e) {
      if (!isCkr(e, P.CKR_USER_ALREADY_LOGGED_IN)) {
        this.dropSession(false);
        if (isCkr(e, P.CKR_PIN_INCORRECT)) {
          this.pin = undefined;
          throw new KeyStoreError('WRONG_SECRET', `PKCS#11 login to token '${this.token}' failed: wrong PIN (CKR_PIN_INCORRECT)`);
        }
        if (isCkr(e, P.CKR_PIN_LOCKED)) {
          throw new KeyStoreError('WRONG_SECRET', `PKCS#11 token '${this.token}': user PIN is locked (CKR_PIN_LOCKED)`);
        }
        throw wrap(e, `login to token '${this.token}'`);
      }
    }
    this.module.logins.set(slotKey, (this.module.logins.get(slotKey) ?? 0) + 1);
  }

  /** Slot ids are not stable (SoftHSM assigns random ones): match the token label. */
  private findSlot(): Handle {
    const lib = this.module.lib;
    const labels: string[] = [];
    let slots: Handle[];
    try {
      slots = lib.C_GetSlotList(true);
    } catch (e) {
      throw wrap(e, 'C_GetSlotList');
    }
    const found: Handle[] = [];
    for (const slot of slots) {
      const label = lib.C_GetTokenInfo(slot).label.replace(/[ \0]+$/, ''); // CK_TOKEN_INFO: blank-padded
      labels.push(label);
      if (label === this.token) found.push(slot);
    }
    if (found.length === 0) {
      throw new KeyStoreError(
        'TOKEN',
        `no PKCS#11 token labelled '${this.token}' in ${this.modulePath} (tokens present: ${labels.map((l) => `'${l}'`).join(', ') || 'none'})`,
      );
    }
    if (found.length > 1) throw new KeyStoreError('AMBIGUOUS', `${found.length} tokens are labelled '${this.token}'`);
    return found[0]!;
  }

  private dropSession(logout: boolean): void {
    const lib = this.module.lib;
    if (this.session === undefined) return;
    const slotKey = this.slot?.toString('hex');
    const count = slotKey !== undefined ? (this.module.logins.get(slotKey) ?? 0) : 0;
    try {
      // Login state is shared by all sessions on the token: log out with the last store using it.
      if (logout && count === 1) lib.C_Logout(this.session);
    } catch {
      /* already logged out / session gone */
    }
    if (slotKey !== undefined && count > 0) {
      if (count === 1) this.module.logins.delete(slotKey);
      else this.module.logins.set(slotKey, count - 1);
    }
    try {
      lib.C_CloseSession(this.session);
    } catch {
      /* session already invalid */
    }
    this.session = undefined;
  }

  /** Runs `fn` on the store's session; on a session-level error reopens the session once and retries. */
  private async withSession<T>(fn: (s: Handle) => T, what: string, uri?: string): Promise<T> {
    if (this.closed) throw new KeyStoreError('CLOSED', 'PKCS#11 key store is closed');
    if (this.session === undefined) await this.reconnect();
    const session = this.session!;
    try {
      return fn(session);
    } catch (e) {
      if (!SESSION_ERRORS().some((c) => isCkr(e, c))) throw wrap(e, what);
      if (this.session === session) {
        this.keys.clear();
        this.dropSession(false);
      }
      await this.reconnect();
      if (uri !== undefined) await this.key(uri);
      try {
        return fn(this.session!);
      } catch (e2) {
        throw wrap(e2, what);
      }
    }
  }

  private findObjects(s: Handle, cls: number, label: string, id?: Uint8Array): Handle[] {
    const lib = this.module.lib;
    const t: pkcs11js.Template = [
      { type: P.CKA_CLASS, value: cls },
      { type: P.CKA_LABEL, value: label },
    ];
    if (id) t.push({ type: P.CKA_ID, value: Buffer.from(id) });
    lib.C_FindObjectsInit(s, t);
    try {
      return lib.C_FindObjects(s, 4);
    } finally {
      lib.C_FindObjectsFinal(s);
    }
  }

  private readPoint(s: Handle, pub: Handle, c: CurveInfo): Buffer {
    const [v] = this.module.lib.C_GetAttributeValue(s, pub, [{ type: P.CKA_EC_POINT }]);
    return pointFromEcPoint(c, v!.value);
  }

  /** Resolves an object URI to the private key handle, curve and public key (cached per URI). */
  private async key(uri: string): Promise<CachedKey> {
    const hit = this.keys.get(uri);
    if (hit) return hit;
    const u = parsePkcs11Uri(uri);
    if (u.token !== undefined && u.token !== this.token) {
      throw new KeyStoreError('BAD_URI', `${uri} names token '${u.token}', this store is on token '${this.token}'`);
    }
    if (!u.object && !u.id) throw new KeyStoreError('BAD_URI', `${uri}: no object= or id= attribute`);
    if (u.type !== undefined && u.type !== 'private' && u.type !== 'public') {
      throw new KeyStoreError('BAD_URI', `${uri}: type=${u.type} is not a key pair object`);
    }
    return this.withSession((s) => {
      const lib = this.module.lib;
      const find = (cls: number) => {
        const t: pkcs11js.Template = [{ type: P.CKA_CLASS, value: cls }];
        if (u.object !== undefined) t.push({ type: P.CKA_LABEL, value: u.object });
        if (u.id !== undefined) t.push({ type: P.CKA_ID, value: u.id });
        lib.C_FindObjectsInit(s, t);
        try {
          return lib.C_FindObjects(s, 2);
        } finally {
          lib.C_FindObjectsFinal(s);
        }
      };
      const privs = find(P.CKO_PRIVATE_KEY);
      if (privs.length === 0) throw new KeyStoreError('NOT_FOUND', `no private key ${uri} on token '${this.token}'`);
      if (privs.length > 1) throw new KeyStoreError('AMBIGUOUS', `${uri} matches several private keys; add id=`);
      const priv = privs[0]!;
      const [ktype, params, id] = lib.C_GetAttributeValue(s, priv, [
        { type: P.CKA_KEY_TYPE },
        { type: P.CKA_EC_PARAMS },
        { type: P.CKA_ID },
      ]);
      if (readUlong(ktype!.value) !== P.CKK_EC) {
        throw new KeyStoreError('BAD_KEY', `${uri} is not an EC key`);
      }
      const c = curveFromEcParams(params!.value);
      // The public half: same CKA_ID (PKCS#11 convention for key pairs), else same label.
      lib.C_FindObjectsInit(s, [
        { type: P.CKA_CLASS, value: P.CKO_PUBLIC_KEY },
        ...(id!.value.length > 0 ? [{ type: P.CKA_ID, value: id!.value }] : [{ type: P.CKA_LABEL, value: u.object! }]),
      ]);
      let pubs: Handle[];
      try {
        pubs = lib.C_FindObjects(s, 2);
      } finally {
        lib.C_FindObjectsFinal(s);
      }
      if (pubs.length !== 1) {
        throw new KeyStoreError('NOT_FOUND', `${uri}: found ${pubs.length} matching public key objects (need exactly 1)`);
      }
      const publicKey = this.readPoint(s, pubs[0]!, c);
      const k: CachedKey = { handle: { uri, curve: c.name, publicKey: new Uint8Array(publicKey) }, curve: c, priv };
      this.keys.set(uri, k);
      return k;
    }, 'open');
  }
}

/** CK_ULONG attribute value in host byte order (little-endian on supported hosts). */
function readUlong(b: Buffer): number {
  return b.length === 8 ? Number(b.readBigUInt64LE(0)) : b.readUInt32LE(0);
}

/** RFC 7512 2.3 pin-source: a file path or file: URI holding the PIN (trailing newline ignored). */
function readPinSource(src: string): string {
  if (src.startsWith('|')) throw new KeyStoreError('BAD_URI', 'pin-source commands (|...) are not supported');
  const path = src.startsWith('file:') ? fileURLToPath(src.startsWith('file://') ? src : 'file://' + src.slice(5)) : src;
  try {
    return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  } catch (cause) {
    throw new KeyStoreError('NO_SECRET', `cannot read PIN from pin-source ${path}`, { cause });
  }
}
