// Fixtures for the CTL tests: soft-keystore keys and self-signed elector / root certificates.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Certificate } from '../../../src/codec/gen/Ieee1609Dot2.js';
import { SoftKeyStore, KeyStores } from '../../../src/hsm/index.js';
import { buildTbsCertificate, issueExplicitCertificate } from '../../../src/security/certificate.js';
import { keyStoreSigner, type Signer } from '../../../src/security/signer.js';

export const PASS = 'correct horse battery staple';
export const FAST = { N: 2 ** 10, r: 8, p: 1 };
/** Certificates start here and last ten years; CTLs take effect inside that. */
export const START = new Date('2025-01-01T00:00:00Z');
export const TEN_YEARS = 10 * 365 * 86400;

export interface Party {
  name: string;
  uri: string;
  cert: Certificate;
  signer: Signer;
}

export function tempDir(prefix = 'scms-ctl-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A soft keystore in `dir/keys` (passphrase as an option) and KeyStores over it. */
export function keyStore(dir: string): { store: SoftKeyStore; stores: KeyStores } {
  return {
    store: new SoftKeyStore({ baseDir: dir, passphrase: PASS, scrypt: FAST }),
    stores: new KeyStores({ baseDir: dir, passphrase: PASS, scrypt: FAST }),
  };
}

/**
 * A self-signed explicit certificate (issuer self) named `name`, key generated in the soft keystore.
 * `curve` 'P-384' gives a SHA-384 certificate. `validFrom` / `seconds` set the validity period.
 */
export async function party(
  dir: string,
  name: string,
  opts: { curve?: 'P-256' | 'P-384'; validFrom?: Date; seconds?: number } = {},
): Promise<Party> {
  const { store, stores } = keyStore(dir);
  const handle = await store.generate(name, opts.curve ?? 'P-256');
  const signer = keyStoreSigner(stores, handle);
  const tbs = buildTbsCertificate({
    id: { name },
    validity: { start: opts.validFrom ?? START, durationSeconds: opts.seconds ?? TEN_YEARS },
    appPermissions: [{ psid: 35 }],
    verifyKey: { curve: signer.curve, publicKey: signer.publicKey },
  });
  const cert = await issueExplicitCertificate({ tbs, issuer: 'self', signer });
  return { name, uri: handle.uri, cert, signer };
}

export const SERIES = Uint8Array.from([0x53, 0x43, 0x4d, 0x53, 0, 0, 0, 1]);
