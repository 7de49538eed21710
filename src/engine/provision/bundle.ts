// Device bundle layout (defined here: the `scms ee simulate --state` layout had not landed when this was written).
//
//   OUT/<deviceId>/
//     manifest.json            BundleManifest below (public data only)
//     enrollment.oer           enrollment certificate (COER), when enrolled
//     chain/eca-<n>.oer        the ECA's certificate chain, ECA first, root last
//     chain/aca-<n>.oer        the ACA's certificate chain, when pseudonyms were issued
//     pseudonyms/<i>_<j>.oer   pseudonym certificates
//     responses/<i>_<j>.oer    factory keys with butterfly keys: the ACA responses (AcaEeCertResponse*Spdu,
//                              encrypted to the device's cocoon keys)
//     keys.oer                 generated keys only: Ieee1609Dot2Data encryptedData (rekRecipInfo, ECIES to the
//                              transport key) of the UTF-8 JSON BundleSecrets
//   OUT/batch-<batchId>.json   BatchManifest
//
// A bundle is written into OUT/.tmp-<batchId>-<index> and renamed into place: it exists whole or not at all.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const BUNDLE_FORMAT = 'scms-provision-bundle';
export const BATCH_FORMAT = 'scms-provision-batch';

export interface BundleCertificate {
  /** Path relative to the bundle directory. */
  file: string;
  kind: 'enrollment' | 'pseudonym';
  hashedId8: string;
  validFrom: string;
  validUntil: string;
  i?: number;
  j?: number;
}

export interface BundleManifest {
  format: typeof BUNDLE_FORMAT;
  version: 1;
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
  steps: Array<'registered' | 'enrolled' | 'pseudonyms'>;
  certificates: BundleCertificate[];
  /** Factory keys with butterfly keys: the ACA responses (encrypted to the device), to be opened on the device. */
  pseudonymResponses?: Array<{ file: string; i: number; j: number; kind: string }>;
  /** HashedId8 of the transport key's PublicEncryptionKey (the keys.oer recipient), hex. */
  transportKeyId?: string;
  /** Request hash of the authorization (pseudonym) batch, hex, as the RA records it. */
  authorizationRequestHash?: string;
}

/** Decrypted content of keys.oer (hex scalars). */
export interface BundleSecrets {
  canonicalPrivateKey: string;
  enrollmentPrivateKey: string;
  pseudonyms: Array<{ i: number; j: number; privateKey: string }>;
  /** Butterfly secrets for later authorization requests (variant, caterpillar private key(s), expansion key(s)). */
  butterfly?: Record<string, string>;
}

export interface BatchManifest {
  format: typeof BATCH_FORMAT;
  version: 1;
  batchId: string;
  deviceType: 'obu' | 'rsu';
  count: number;
  keys: 'generated' | 'factory';
  pseudonymWeeks: number;
  devices: Array<{ index: number; deviceId: string; canonicalId: string; dir: string; certificates: number }>;
}

function writeSynced(path: string, data: Uint8Array | string): void {
  writeFileSync(path, data, { mode: 0o644 });
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes a bundle atomically; returns false (writing nothing) when OUT/<deviceId> already exists. */
export function writeBundle(outDir: string, batchId: string, manifest: BundleManifest, files: Record<string, Uint8Array>): boolean {
  const final = join(outDir, manifest.deviceId);
  if (existsSync(final)) return false;
  const tmp = join(outDir, `.tmp-${batchId}-${manifest.index}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  for (const [rel, bytes] of Object.entries(files)) {
    const p = join(tmp, ...rel.split('/'));
    mkdirSync(join(p, '..'), { recursive: true });
    writeSynced(p, bytes);
  }
  writeSynced(join(tmp, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  renameSync(tmp, final);
  const fd = openSync(outDir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return true;
}

export function readBundleManifest(dir: string): BundleManifest {
  return JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as BundleManifest;
}

/** Writes the batch manifest if its content changed (a finished batch re-run leaves the file untouched). */
export function writeBatchManifest(outDir: string, m: BatchManifest): string {
  const path = join(outDir, `batch-${m.batchId}.json`);
  const text = `${JSON.stringify(m, null, 2)}\n`;
  if (existsSync(path) && readFileSync(path, 'utf8') === text) return path;
  const tmp = `${path}.tmp`;
  writeSynced(tmp, text);
  renameSync(tmp, path);
  return path;
}
