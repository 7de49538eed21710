/**
 * The trust directory written by `scms manager init` and read by `scms manager verify`,
 * `scms serve` and `scms ee simulate`.
 *
 *   DIR/
 *     trust/
 *       manifest.json            every file below with its role and SHA-256, every component's key URI
 *       certs/<name>.oer         1609.2 Certificate (COER): elector-N, root, ica, eca, aca, ra, la1, la2, ma, crl-signer, pg, ...
 *       ctl/ctl_<series hex>_<seq>.oer   MultiSignedCtlSpdu (1609.2.1 CertManagement multiSignedCtl)
 *       ccf.oer                  CertificateChainSpdu (homeCtl + ICA and component CA certificates)
 *       policy/global-policy.json, policy/global-policy.oer   policy JSON and the PG-signed SPDU over its canonical bytes
 *       policy/local-policy.json,  policy/local-policy.oer
 *     keys/                      encrypted soft keystore (absent with PKCS#11)
 *     audit.log                  hash-chained audit log (audit.ts)
 *
 * The manifest never contains key material: only URIs (`file:keys/root.key`, `pkcs11:token=...;object=...`).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync, openSync, fsyncSync, closeSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import type { Certificate } from '../../codec/index.js';
import { Certificate as CertificateCodec } from '../../codec/index.js';
import type { GlobalPolicy, LocalPolicy } from '../policy/index.js';
import { parseGlobalPolicy, parseLocalPolicy } from '../policy/index.js';
import type { Role } from './profiles.js';

export const MANIFEST_FORMAT = 'scms-trust-dir';
export const MANIFEST_VERSION = 1;
export const TRUST_SUBDIR = 'trust';
export const KEYS_SUBDIR = 'keys';
export const AUDIT_FILE = 'audit.log';

/** What a file in the trust directory is. */
export type FileRole =
  | 'certificate'
  | 'ctl'
  | 'ccf'
  | 'global-policy'
  | 'global-policy-signed'
  | 'local-policy'
  | 'local-policy-signed';

export interface ManifestFile {
  /** Path relative to DIR/trust, '/' separated. */
  path: string;
  role: FileRole;
  /** For certificates: the component name (e.g. 'la1'). */
  name?: string;
  /** For certificates: the SCMS role of the holder. */
  certRole?: Role;
  sha256: string;
}

export interface ManifestComponent {
  name: string;
  role: Role;
  /** Certificate file (relative to DIR/trust). */
  certificate: string;
  /** HashedId8 of the certificate, hex. */
  hashedId8: string;
  /** Name of the issuing component ('self' for electors and roots). */
  issuer: string;
  /** URI of the signing key (never the key). */
  keyUri: string;
  /** URI of the ECIES decryption key, for components that receive encrypted data. */
  encryptionKeyUri?: string;
  laId?: number;
}

export interface ManifestCtl {
  path: string;
  ctlSeriesId: string;
  sequenceNumber: number;
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  version: typeof MANIFEST_VERSION;
  createdAt: string;
  updatedAt: string;
  /** Key store the component keys live in ('file:keys' or a pkcs11: token URI). */
  keystore: string;
  regions: number[];
  quorum: number;
  ctlSeriesId: string;
  components: ManifestComponent[];
  ctls: ManifestCtl[];
  files: ManifestFile[];
}

export interface TrustDirPaths {
  root: string;
  trust: string;
  keys: string;
  audit: string;
  manifest: string;
}

export function trustDirPaths(dir: string): TrustDirPaths {
  const trust = join(dir, TRUST_SUBDIR);
  return { root: dir, trust, keys: join(dir, KEYS_SUBDIR), audit: join(dir, AUDIT_FILE), manifest: join(trust, 'manifest.json') };
}

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function certificateFilePath(name: string): string {
  return `certs/${name}.oer`;
}

export function ctlFilePath(seriesIdHex: string, seq: number): string {
  return `ctl/ctl_${seriesIdHex}_${seq}.oer`;
}

/** Writes a file atomically (temp file, fsync, rename), creating its directory. */
export function writeFileAtomic(path: string, data: Uint8Array | string, mode = 0o644): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeFileSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/** Accumulates the files of a trust directory and writes the manifest. */
export class TrustDirWriter {
  readonly paths: TrustDirPaths;
  readonly manifest: Manifest;

  constructor(dir: string, manifest: Manifest) {
    this.paths = trustDirPaths(dir);
    this.manifest = manifest;
  }

  /** Writes `data` at `rel` (relative to DIR/trust) and records it; returns the absolute path. */
  put(rel: string, data: Uint8Array | string, entry: Omit<ManifestFile, 'path' | 'sha256'>): string {
    const abs = join(this.paths.trust, ...rel.split('/'));
    writeFileAtomic(abs, data);
    const file: ManifestFile = { path: rel, ...entry, sha256: sha256Hex(typeof data === 'string' ? Buffer.from(data, 'utf8') : data) };
    const i = this.manifest.files.findIndex((f) => f.path === rel);
    if (i >= 0) this.manifest.files[i] = file;
    else this.manifest.files.push(file);
    return abs;
  }

  addComponent(c: ManifestComponent): void {
    if (this.manifest.components.some((x) => x.name === c.name)) throw new Error(`component '${c.name}' already exists`);
    this.manifest.components.push(c);
  }

  writeManifest(now: Date): string {
    this.manifest.updatedAt = now.toISOString();
    writeFileAtomic(this.paths.manifest, JSON.stringify(this.manifest, null, 2) + '\n');
    return this.paths.manifest;
  }

  /** Path relative to DIR (for audit records and summaries). */
  relToDir(abs: string): string {
    return relative(this.paths.root, abs).split(sep).join('/');
  }
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

export interface LoadedCertificate {
  name: string;
  role: Role;
  issuer: string;
  path: string;
  bytes: Uint8Array;
  /** Decoded certificate; undefined when the file does not decode (see `problems`). */
  certificate?: Certificate;
  keyUri: string;
  encryptionKeyUri?: string;
  laId?: number;
}

export interface LoadedCtl {
  path: string;
  ctlSeriesId: string;
  sequenceNumber: number;
  bytes: Uint8Array;
}

export interface TrustDir {
  dir: string;
  paths: TrustDirPaths;
  manifest: Manifest;
  /** Every component certificate, in manifest order. */
  certificates: LoadedCertificate[];
  byName: Map<string, LoadedCertificate>;
  electors: LoadedCertificate[];
  roots: LoadedCertificate[];
  /** CTLs of the series, ascending sequence number. */
  ctls: LoadedCtl[];
  ccf?: Uint8Array;
  globalPolicy?: { json: GlobalPolicy; signed?: Uint8Array };
  localPolicy?: { json: LocalPolicy; signed?: Uint8Array };
  /** Problems found while loading (missing files, undecodable certificates or policies). */
  problems: Array<{ file: string; reason: string }>;
}

export class TrustDirError extends Error {
  override readonly name = 'TrustDirError';
}

export function readManifest(dir: string): Manifest {
  const p = trustDirPaths(dir).manifest;
  if (!existsSync(p)) throw new TrustDirError(`${p}: no manifest (not a trust directory; run scms manager init)`);
  let m: unknown;
  try {
    m = JSON.parse(readFileSync(p, 'utf8'));
  } catch (e) {
    throw new TrustDirError(`${p}: not JSON: ${(e as Error).message}`);
  }
  const o = m as Partial<Manifest>;
  if (o.format !== MANIFEST_FORMAT || o.version !== MANIFEST_VERSION) {
    throw new TrustDirError(`${p}: not a ${MANIFEST_FORMAT} v${MANIFEST_VERSION} manifest`);
  }
  if (!Array.isArray(o.components) || !Array.isArray(o.files) || !Array.isArray(o.ctls)) {
    throw new TrustDirError(`${p}: components, files and ctls must be arrays`);
  }
  return o as Manifest;
}

/** Reads a trust directory: manifest, certificates, CTLs, CCF and policies (typed). */
export function loadTrustDir(dir: string): TrustDir {
  const paths = trustDirPaths(dir);
  const manifest = readManifest(dir);
  const problems: TrustDir['problems'] = [];
  const read = (rel: string): Uint8Array | undefined => {
    const abs = join(paths.trust, ...rel.split('/'));
    if (!existsSync(abs)) {
      problems.push({ file: `trust/${rel}`, reason: 'file is missing' });
      return undefined;
    }
    return new Uint8Array(readFileSync(abs));
  };

  const certificates: LoadedCertificate[] = [];
  for (const c of manifest.components) {
    const bytes = read(c.certificate);
    if (!bytes) continue;
    let certificate: Certificate | undefined;
    try {
      certificate = CertificateCodec.decode(bytes);
    } catch (e) {
      problems.push({ file: `trust/${c.certificate}`, reason: `not a COER Certificate: ${(e as Error).message}` });
    }
    certificates.push({
      name: c.name,
      role: c.role,
      issuer: c.issuer,
      path: c.certificate,
      bytes,
      certificate,
      keyUri: c.keyUri,
      encryptionKeyUri: c.encryptionKeyUri,
      laId: c.laId,
    });
  }
  const byName = new Map(certificates.map((c) => [c.name, c]));

  const ctls: LoadedCtl[] = [];
  for (const c of [...manifest.ctls].sort((a, b) => a.sequenceNumber - b.sequenceNumber)) {
    const bytes = read(c.path);
    if (bytes) ctls.push({ ...c, bytes });
  }

  const fileOf = (role: FileRole) => manifest.files.find((f) => f.role === role)?.path;
  const ccfPath = fileOf('ccf');
  const ccf = ccfPath ? read(ccfPath) : undefined;

  let globalPolicy: TrustDir['globalPolicy'];
  const gp = fileOf('global-policy');
  if (gp) {
    const b = read(gp);
    if (b) {
      try {
        const json = parseGlobalPolicy(Buffer.from(b).toString('utf8'));
        const sp = fileOf('global-policy-signed');
        globalPolicy = { json, signed: sp ? read(sp) : undefined };
      } catch (e) {
        problems.push({ file: `trust/${gp}`, reason: (e as Error).message });
      }
    }
  }
  let localPolicy: TrustDir['localPolicy'];
  const lp = fileOf('local-policy');
  if (lp) {
    const b = read(lp);
    if (b) {
      try {
        const json = parseLocalPolicy(Buffer.from(b).toString('utf8'), globalPolicy?.json);
        const sp = fileOf('local-policy-signed');
        localPolicy = { json, signed: sp ? read(sp) : undefined };
      } catch (e) {
        problems.push({ file: `trust/${lp}`, reason: (e as Error).message });
      }
    }
  }

  return {
    dir,
    paths,
    manifest,
    certificates,
    byName,
    electors: certificates.filter((c) => c.role === 'elector'),
    roots: certificates.filter((c) => c.role === 'root'),
    ctls,
    ccf,
    globalPolicy,
    localPolicy,
    problems,
  };
}
