// The simulated device's state directory: public facts in state.json, trust files under trust/, certificates
// under certs/, and every secret (canonical key, enrollment key, butterfly caterpillar keys and expansion keys,
// pseudonym keys) in the encrypted soft keystore (src/hsm SoftKeyStore, baseDir = the state directory, keys/*.key,
// passphrase SCMS_KEYSTORE_PASSPHRASE). Nothing secret is written in plain text.
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { SoftKeyStore, type SoftKeyStoreOptions } from '../../hsm/soft.js';
import { writeFileAtomic } from '../../hsm/atomic-file.js';
import type { CurveName as KeyStoreCurve } from '../../hsm/keystore.js';
import { bigIntToBytes, bytesToBigInt } from '../../crypto/bytes.js';
import type { ButterflyPrivateParams } from '../../crypto/butterfly.js';
import type { CurveName } from '../../crypto/curves.js';

export const STATE_FILE = 'state.json';
export const STATE_FORMAT = 'scms-ee-state';

export type DeviceType = 'obu' | 'rsu';
export type CertKind = 'pseudonym' | 'identification';
export type CertForm = 'implicit' | 'explicit';
export type ButterflyChoice = 'original' | 'unified' | 'compact-unified' | 'none';

export interface StoredCertificate {
  /** Relative path under the state directory. */
  file: string;
  hashedId8: string;
  keyUri: string;
  validFrom?: string;
  validUntil?: string;
}

export interface EeState {
  format: typeof STATE_FORMAT;
  version: 1;
  config: {
    raUrl: string;
    ecaUrl: string;
    deviceType: DeviceType;
    cert: CertKind;
    form: CertForm;
    butterfly: ButterflyChoice;
    encrypted: boolean;
    /** HashedId8s of the roots the device trusts (its factory anchors). */
    trustedRootHashes: string[];
  };
  canonical?: { keyUri: string; publicKey: string; canonicalId: string; curve: CurveName };
  registration?: { deviceId: string; state: string; at: string };
  trust?: { ctlSeriesId: string; ctlSequenceNumber: number; raCertificate: string; files: string[]; at: string };
  enrollment?: StoredCertificate & { type: CertForm; at: string };
  authorization?: {
    requestHash: string;
    filename: string;
    firstI: number;
    nextDlTime: number;
    kind: CertKind;
    form: 'butterfly' | 'plain' | 'encrypted';
    variant?: 'original' | 'unified' | 'compactUnified';
    type: CertForm;
    curve: CurveName;
    /** Keystore URIs of the request secrets (scalars; butterfly expansion keys stored as 16-octet scalars). */
    secretUris: Record<string, string>;
    at: string;
    downloadedAt?: string;
  };
  certificates: Array<StoredCertificate & { i: number; j: number }>;
  history: Array<{ at: string; step: string; note: string }>;
}

export class EeStateError extends Error {
  override readonly name = 'EeStateError';
}

/** keystore curve name of a 1609.2 curve (the soft keystore holds P-256 and P-384). */
export function keyStoreCurve(c: CurveName): KeyStoreCurve {
  if (c === 'nistP256') return 'P-256';
  if (c === 'nistP384') return 'P-384';
  throw new EeStateError(`the soft keystore cannot hold ${c} keys`);
}

/** A state directory: state.json plus the keystore. */
export class EeStateDir {
  readonly keystore: SoftKeyStore;

  constructor(
    readonly dir: string,
    opts: Pick<SoftKeyStoreOptions, 'passphrase' | 'scrypt'> = {},
  ) {
    this.keystore = new SoftKeyStore({ baseDir: dir, keyDir: 'keys', ...opts });
  }

  get statePath(): string {
    return join(this.dir, STATE_FILE);
  }

  exists(): boolean {
    return existsSync(this.statePath);
  }

  /** Reads state.json; throws EeStateError when it is missing or not a state file. */
  load(): EeState {
    if (!this.exists()) throw new EeStateError(`${this.dir}: no ${STATE_FILE} (not an EE state directory; run \`scms ee simulate --state ${this.dir}\` first)`);
    let s: EeState;
    try {
      s = JSON.parse(readFileSync(this.statePath, 'utf8')) as EeState;
    } catch (e) {
      throw new EeStateError(`${this.statePath}: not JSON: ${(e as Error).message}`);
    }
    if (s.format !== STATE_FORMAT || s.version !== 1) throw new EeStateError(`${this.statePath}: not an ${STATE_FORMAT} v1 file`);
    return s;
  }

  async save(s: EeState): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    await writeFileAtomic(this.statePath, `${JSON.stringify(s, null, 2)}\n`, false);
  }

  /** Writes a public file (certificate, trust file) under the directory; returns its relative path. */
  async writeFile(rel: string, bytes: Uint8Array): Promise<string> {
    const path = join(this.dir, rel);
    mkdirSync(join(path, '..'), { recursive: true });
    await writeFileAtomic(path, bytes, false);
    return rel;
  }

  readFile(rel: string): Uint8Array {
    return new Uint8Array(readFileSync(join(this.dir, rel)));
  }

  listFiles(relDir: string): string[] {
    const d = join(this.dir, relDir);
    return existsSync(d) ? readdirSync(d).sort().map((f) => `${relDir}/${f}`) : [];
  }

  /** Stores a private scalar in the encrypted keystore; returns its URI. */
  async putScalar(name: string, curve: CurveName, d: bigint): Promise<string> {
    return (await this.keystore.importPrivateScalar(name, keyStoreCurve(curve), d, { overwrite: true })).uri;
  }

  async getScalar(uri: string): Promise<bigint> {
    return this.keystore.exportPrivateScalar(uri);
  }

  /** Stores butterfly secrets (scalars and 16-octet expansion keys) under `prefix`; returns field -> URI. */
  async putButterflySecrets(prefix: string, curve: CurveName, params: ButterflyPrivateParams): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const [field, v] of Object.entries(params)) {
      if (field === 'variant') continue;
      const d = typeof v === 'bigint' ? v : bytesToBigInt(v as Uint8Array);
      // An all-zero 16-octet expansion key (probability 2^-128) cannot be stored as a scalar.
      if (d === 0n) throw new EeStateError(`butterfly ${field} is zero`);
      out[field] = await this.putScalar(`${prefix}-${field}`, curve, d);
    }
    return out;
  }

  async getButterflySecrets(variant: 'original' | 'unified' | 'compactUnified', uris: Record<string, string>): Promise<ButterflyPrivateParams> {
    const get = async (f: string) => {
      const u = uris[f];
      if (!u) throw new EeStateError(`butterfly secret ${f} missing from the state`);
      return this.getScalar(u);
    };
    const aes = async (f: string) => bigIntToBytes(await get(f), 16);
    if (variant === 'original') {
      return {
        variant,
        signingCaterpillarPrivate: await get('signingCaterpillarPrivate'),
        signingExpansionKey: await aes('signingExpansionKey'),
        encryptionCaterpillarPrivate: await get('encryptionCaterpillarPrivate'),
        encryptionExpansionKey: await aes('encryptionExpansionKey'),
      };
    }
    return { variant, caterpillarPrivate: await get('caterpillarPrivate'), expansionKey: await aes('expansionKey') };
  }

  async close(): Promise<void> {
    await this.keystore.close();
  }
}

/** A fresh state for the given configuration. */
export function newState(config: EeState['config']): EeState {
  return { format: STATE_FORMAT, version: 1, config, certificates: [], history: [] };
}
