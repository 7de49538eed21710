// P-384 electors and root over a P-256 ICA and components (`curves.top`, `scms manager init --root-curve P-384`).
// 1609.2 IssuerIdentifier / CertificateBase (6.4.3): the issuer alternative names the issuer key's hash (the ICA
// carries sha384AndDigest), the HashedId8 in it is the issuer's whole-certificate hash, which follows the issuer's
// OWN key: SHA-384 for the root, SHA-256 for the P-256 ICA. Digests are recomputed here with node:crypto.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Certificate } from '../../../src/codec/index.js';
import { initTrustDir } from '../../../src/engine/manager/init.js';
import { loadTrustDir, type TrustDir } from '../../../src/engine/manager/trust-dir.js';
import { verifyTrustDir } from '../../../src/engine/manager/verify.js';
import { ManualClock } from '../../../src/security/time.js';

const PASS = 'correct horse battery staple';
const clock = new ManualClock('2025-03-01T12:00:00Z');
const later = new ManualClock('2025-03-02T12:00:00Z');
const bin = new URL('../../../bin/run.js', import.meta.url).pathname;

const keyAlt = (c: Certificate) => Object.keys((c.toBeSigned.verifyKeyIndicator as { verificationKey: object }).verificationKey)[0];
const issuerField = (c: Certificate) => Object.entries(c.issuer)[0] as [string, Uint8Array | string];
const nodeHashedId8 = (alg: 'sha256' | 'sha384', bytes: Uint8Array) => createHash(alg).update(bytes).digest().subarray(-8).toString('hex');

/** Every non-self certificate names its issuer with the issuer key's alternative and its own-key digest. */
function expectIssuerFields(td: TrustDir): void {
  for (const c of td.certificates) {
    if (c.issuer === 'self') continue;
    const issuer = td.byName.get(c.issuer)!;
    const p384 = keyAlt(issuer.certificate!) === 'ecdsaNistP384';
    const [alt, digest] = issuerField(c.certificate!);
    expect(alt, c.name).toBe(p384 ? 'sha384AndDigest' : 'sha256AndDigest');
    expect(Buffer.from(digest as Uint8Array).toString('hex'), c.name).toBe(nodeHashedId8(p384 ? 'sha384' : 'sha256', issuer.bytes));
  }
}

describe('trust directory with a P-384 root and electors over a P-256 ICA', () => {
  let base: string;
  let dir: string;
  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'scms-p384-'));
    dir = join(base, 'trust');
    await initTrustDir({
      dir,
      keystore: 'file',
      keyStoreOptions: { passphrase: PASS },
      electors: 2,
      quorum: 2,
      regions: [840],
      clock,
      curves: { top: 'P-384' },
    });
  }, 60_000);
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it('electors and root are P-384, the ICA and components P-256', () => {
    const td = loadTrustDir(dir);
    for (const c of td.certificates) {
      const top = c.role === 'root' || c.role === 'elector';
      expect(keyAlt(c.certificate!), c.name).toBe(top ? 'ecdsaNistP384' : 'ecdsaNistP256');
    }
    expect(issuerField(td.byName.get('ica')!.certificate!)[0]).toBe('sha384AndDigest');
    expect(issuerField(td.byName.get('eca')!.certificate!)[0]).toBe('sha256AndDigest');
  });

  it('issuer fields carry the issuer HashedId8 by its own key hash (ICA: SHA-256)', () => {
    expectIssuerFields(loadTrustDir(dir));
  });

  it('manifest HashedId8 of the ICA is SHA-256 of its COER', () => {
    const td = loadTrustDir(dir);
    const ica = td.manifest.components.find((c) => c.name === 'ica')!;
    expect(ica.hashedId8).toBe(nodeHashedId8('sha256', td.byName.get('ica')!.bytes));
  });

  it('verifyTrustDir is ok', () => {
    const r = verifyTrustDir(dir, { clock: later });
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
  });
});

describe('scms manager init --root-curve P-384 (CLI, dist/)', () => {
  let base: string;
  beforeAll(() => {
    base = mkdtempSync(join(tmpdir(), 'scms-p384-cli-'));
  });
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it('init --yes --root-curve P-384, then manager verify exits 0', () => {
    const dir = join(base, 'scms');
    const env = { ...process.env, SCMS_KEYSTORE_PASSPHRASE: PASS };
    const init = spawnSync(process.execPath, [bin, 'manager', 'init', '--yes', '--dir', dir, '--electors', '1', '--root-curve', 'P-384', '--json'], {
      encoding: 'utf8',
      env,
      timeout: 120_000,
    });
    expect(init.status, init.stderr).toBe(0);
    const td = loadTrustDir(dir);
    expect(keyAlt(td.byName.get('root')!.certificate!)).toBe('ecdsaNistP384');
    expect(keyAlt(td.byName.get('elector-1')!.certificate!)).toBe('ecdsaNistP384');
    expect(keyAlt(td.byName.get('ica')!.certificate!)).toBe('ecdsaNistP256');
    expectIssuerFields(td);
    const v = spawnSync(process.execPath, [bin, 'manager', 'verify', dir], { encoding: 'utf8', env, timeout: 120_000 });
    expect(v.status, v.stdout + v.stderr).toBe(0);
    const bad = spawnSync(process.execPath, [bin, 'manager', 'init', '--yes', '--dir', join(base, 'x'), '--root-curve', 'P-521'], { encoding: 'utf8', env });
    expect(bad.status).not.toBe(0);
  }, 120_000);
});
