// Device bundle layout (README "Provisioning bundles"):
//
//   OUT/<deviceId>/
//     manifest.json            BundleManifest below (public data only)
//     enrollment.oer           enrollment certificate (COER), when enrolled
//     eca-chain.oer            SequenceOfCertificate (1609.2): the ECA certificate, its issuers, the root last
//     aca-chain.oer            SequenceOfCertificate: the ACA's chain, when pseudonyms were issued
//     pseudonyms/<i>_<j>.oer   generated keys: pseudonym certificates
//     identification/<i>_<j>.oer  generated keys: the identification certificate (--identification-weeks; j = 0)
//     responses/<i>_<j>.oer    factory keys: the ACA responses (AcaEeCertResponse*Spdu; pseudonyms: encrypted to
//                              the device's cocoon keys; identification: encrypted to its identificationEncryptionKey,
//                              or AcaEeCertResponsePlainSpdu without one), opened on the device
//     keys.oer                 generated keys only: Ieee1609Dot2Data encryptedData of the UTF-8 JSON BundleSecrets,
//                              symmRecipInfo: its AES-128-CCM data key wrapped under the batch transport key
//     transport-key.oer        generated keys only: Ieee1609Dot2Data encryptedData, rekRecipInfo (ECIES to the
//                              factory's --transport-key), of the COER SymmetricEncryptionKey { aes128Ccm: the
//                              batch transport key }; the same file in every bundle of the batch
//   OUT/batch-<batchId>.json   BatchManifest
//
// With `--archive zip` a bundle is OUT/<deviceId>.zip instead, holding the same files (stored, not compressed).
//
// The files every bundle of a batch has (eca-chain.oer, aca-chain.oer, transport-key.oer) are hard links to one
// copy (SharedFiles). A bundle is written into OUT/.tmp-<batchId>-<index> and renamed into place: it exists whole
// or not at all. Files
// are not fsync'ed one by one: the batch syncs the file system once per chunk before it records the chunk done.
import { spawn } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { unzipSync, zipSync } from 'fflate';
import { SequenceOfCertificate as SequenceOfCertificateCodec, type Certificate } from '../../codec/gen/Ieee1609Dot2.js';

export const BUNDLE_FORMAT = 'scms-provision-bundle';
export const BATCH_FORMAT = 'scms-provision-batch';

export interface BundleCertificate {
  /** Path relative to the bundle directory. */
  file: string;
  kind: 'enrollment' | 'pseudonym' | 'identification';
  hashedId8: string;
  validFrom: string;
  validUntil: string;
  i?: number;
  j?: number;
}

export interface BundleManifest {
  format: typeof BUNDLE_FORMAT;
  version: 2;
  batchId: string;
  index: number;
  deviceId: string;
  canonicalId: string;
  /** Compressed canonical public key, hex. */
  canonicalPublicKey: string;
  deviceType: 'obu' | 'rsu';
  /** 'generated': keys.oer holds the private keys; 'factory': no private key exists outside the device. */
  keys: 'generated' | 'factory';
  /** What the tool did for the device. */
  steps: Array<'registered' | 'enrolled' | 'pseudonyms' | 'identification'>;
  certificates: BundleCertificate[];
  /** Factory keys with butterfly keys: the ACA responses (encrypted to the device), to be opened on the device. */
  pseudonymResponses?: Array<{ file: string; i: number; j: number; kind: string }>;
  /** Factory keys with identification keys: the ACA response (kind private: encrypted to the device; plain). */
  identificationResponses?: Array<{ file: string; i: number; j: number; kind: string }>;
  /** Form of the pseudonym / identification certificates (implicit | explicit), when the bundle has them. */
  form?: 'implicit' | 'explicit';
  /** HashedId8 of the transport key's PublicEncryptionKey (the transport-key.oer recipient), hex. */
  transportKeyId?: string;
  /** Request hash of the authorization (pseudonym) batch, hex, as the RA records it. */
  authorizationRequestHash?: string;
  /** Request hash (HashedId8 of the COER EeEcaCertRequest) of the enrollment, hex, as the ECA records it. */
  enrollmentRequestHash?: string;
}

/** Decrypted content of keys.oer (hex scalars). */
export interface BundleSecrets {
  canonicalPrivateKey: string;
  enrollmentPrivateKey: string;
  pseudonyms: Array<{ i: number; j: number; privateKey: string }>;
  /** Identification certificate keys (--identification-weeks). */
  identification?: Array<{ i: number; j: number; privateKey: string }>;
  /** Butterfly secrets for later authorization requests (variant, caterpillar private key(s), expansion key(s)). */
  butterfly?: Record<string, string>;
}

export interface BatchManifest {
  format: typeof BATCH_FORMAT;
  version: 2;
  batchId: string;
  deviceType: 'obu' | 'rsu';
  count: number;
  keys: 'generated' | 'factory';
  pseudonymWeeks: number;
  identificationWeeks?: number;
  /** Form of the pseudonym / identification certificates. */
  form?: 'implicit' | 'explicit';
  region: number[];
  psids: number[];
  devices: Array<{ index: number; deviceId: string; canonicalId: string; dir: string; certificates: number }>;
}

export const encodeChain = (chain: readonly Certificate[]): Uint8Array => SequenceOfCertificateCodec.encode([...chain]);
export const decodeChain = (bytes: Uint8Array): Certificate[] => SequenceOfCertificateCodec.decode(bytes);

/**
 * Writes a bundle atomically (temporary directory renamed into place). An existing OUT/<deviceId> of a device
 * the batch state does not record as done (an interrupted run) is replaced.
 */
/**
 * Files with the same content in every bundle of a batch (chains, transport key), written once into a hidden
 * directory and hard-linked into each bundle directory (a link costs a third of writing a file); written instead
 * where the file system has no hard links. The directory is removed at the end of the run (the links remain).
 */
export class SharedFiles {
  readonly #dir: string;
  readonly #content: Record<string, Uint8Array>;
  #links = true;
  constructor(dir: string, content: Record<string, Uint8Array>) {
    this.#dir = dir;
    this.#content = content;
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    for (const [name, bytes] of Object.entries(content)) writeFileSync(join(dir, name), bytes);
  }
  /** Places `name` at `path` if it is a shared file with these octets; false otherwise. */
  place(name: string, bytes: Uint8Array, path: string): boolean {
    const mine = this.#content[name];
    if (!mine || (mine !== bytes && Buffer.compare(mine, bytes) !== 0)) return false;
    if (this.#links) {
      try {
        linkSync(join(this.#dir, name), path);
        return true;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EMLINK') throw e;
        this.#links = false;
      }
    }
    writeFileSync(path, bytes);
    return true;
  }
  remove(): void {
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

export function writeBundle(outDir: string, batchId: string, manifest: BundleManifest, files: Record<string, Uint8Array>, archive?: 'zip', shared?: SharedFiles): string {
  if (archive === 'zip') {
    const name = `${manifest.deviceId}.zip`;
    const tmp = join(outDir, `.tmp-${batchId}-${manifest.index}.zip`);
    const entries: Record<string, Uint8Array> = { 'manifest.json': new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`), ...files };
    writeFileSync(tmp, zipSync(entries, { level: 0 }));
    renameSync(tmp, join(outDir, name));
    return name;
  }
  const final = join(outDir, manifest.deviceId);
  const tmp = join(outDir, `.tmp-${batchId}-${manifest.index}`);
  try {
    mkdirSync(tmp);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp);
  }
  const dirs = new Set<string>();
  for (const [rel, bytes] of Object.entries(files)) {
    const slash = rel.lastIndexOf('/');
    if (slash > 0) {
      const d = rel.slice(0, slash);
      if (!dirs.has(d)) {
        mkdirSync(join(tmp, d), { recursive: true });
        dirs.add(d);
      }
    }
    if (!shared?.place(rel, bytes, join(tmp, rel))) writeFileSync(join(tmp, rel), bytes);
  }
  writeFileSync(join(tmp, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  try {
    renameSync(tmp, final);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
    rmSync(final, { recursive: true, force: true });
    renameSync(tmp, final);
  }
  return manifest.deviceId;
}

/** The files of a bundle (directory or .zip), by path relative to the bundle. */
export function bundleReader(path: string): (rel: string) => Uint8Array {
  if (path.endsWith('.zip')) {
    const entries = unzipSync(new Uint8Array(readFileSync(path)));
    return (rel) => {
      const e = entries[rel];
      if (!e) throw new Error(`${path}: no ${rel}`);
      return e;
    };
  }
  return (rel) => new Uint8Array(readFileSync(join(path, ...rel.split('/'))));
}

/**
 * Makes everything written under `dir` durable: syncfs(2) of its file system through `sync -f` (coreutils, a
 * child process: the caller's thread goes on meanwhile), one call for a whole chunk of bundles; where that is not
 * available, fsync of every file and directory under the given paths (in parallel).
 */
export async function syncPaths(dir: string, paths: readonly string[]): Promise<void> {
  const ok = await new Promise<boolean>((resolvePromise) => {
    try {
      const child = spawn('sync', ['-f', dir], { stdio: 'ignore' });
      child.on('error', () => resolvePromise(false));
      child.on('exit', (code) => resolvePromise(code === 0));
    } catch {
      resolvePromise(false);
    }
  });
  if (ok) return;
  const all: string[] = [dir];
  const walk = (p: string) => {
    all.push(p);
    let names: string[] = [];
    try {
      names = readdirSync(p);
    } catch {
      return; // a file
    }
    for (const n of names) walk(join(p, n));
  };
  for (const p of paths) walk(p);
  await Promise.all(
    all.map(async (p) => {
      const h = await open(p, 'r');
      try {
        await h.sync();
      } finally {
        await h.close();
      }
    }),
  );
}

export function readBundleManifest(dir: string): BundleManifest {
  return JSON.parse(new TextDecoder().decode(bundleReader(dir)('manifest.json'))) as BundleManifest;
}

/** Writes the batch manifest if its content changed (a finished batch re-run leaves the file untouched). */
export async function writeBatchManifest(outDir: string, m: BatchManifest): Promise<string> {
  const path = join(outDir, `batch-${m.batchId}.json`);
  const text = `${JSON.stringify(m, null, 2)}\n`;
  if (existsSync(path) && readFileSync(path, 'utf8') === text) return path;
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
  await syncPaths(outDir, [path]);
  return path;
}
