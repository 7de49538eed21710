// provisionBatch with the trust directory's keys on a PKCS#11 token (SoftHSM2): the ECA signs the explicit
// enrollment certificates inside the token (its key is not extractable).
import { readdirSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Certificate as CertificateCodec } from '../../../src/codec/index.js';
import { generateKeyPair } from '../../../src/engine/ee/keys.js';
import { initTrustDir, openStores } from '../../../src/engine/manager/init.js';
import { loadTrustDir } from '../../../src/engine/manager/trust-dir.js';
import { decodeChain, type BatchManifest } from '../../../src/engine/provision/bundle.js';
import { provisionBatch } from '../../../src/engine/provision/batch.js';
import { toHex } from '../../../src/crypto/bytes.js';
import { certificateKeyPairMatches } from '../../../src/security/certificate.js';
import { verifyCertificateChain } from '../../../src/security/chain.js';
import { ManualClock } from '../../../src/security/time.js';
import { createSoftHsmToken, type SoftHsmToken } from '../../helpers/softhsm.js';
import { readJson } from './fixtures.js';

const clock = new ManualClock(new Date());
let token: SoftHsmToken;
let base: string;

beforeAll(() => {
  token = createSoftHsmToken({ label: 'scms-provision-test' });
  base = mkdtempSync(join(tmpdir(), 'scms-provision-p11-'));
});
afterAll(() => {
  token?.cleanup();
  if (base) rmSync(base, { recursive: true, force: true });
});

describe('provisionBatch with the ECA key on a PKCS#11 token', () => {
  it('generated and factory keys: explicit enrollment certificates signed in the token, chains verify', async () => {
    const trustDir = join(base, 'scms');
    const ks = { pin: token.pin, modulePath: token.modulePath };
    await initTrustDir({ dir: trustDir, keystore: `pkcs11:token=${token.label}`, keyStoreOptions: ks, electors: 1, quorum: 1, clock: new ManualClock(new Date(clock.now().getTime() - 3_600_000).toISOString()) });
    const trust = loadTrustDir(trustDir);
    expect(trust.byName.get('eca')!.keyUri).toMatch(/^pkcs11:/);
    const transport = generateKeyPair('nistP256');
    const roots = trust.roots.map((r) => r.certificate!);

    const gen = await provisionBatch({
      trust,
      stores: openStores(trustDir, ks),
      dataDir: join(base, 'data'),
      outDir: join(base, 'out-gen'),
      count: 3,
      deviceType: 'obu',
      pseudonymWeeks: 0,
      transportKey: { curve: 'nistP256', publicKey: transport.publicKey },
      statePassphrase: 'state passphrase',
      clock,
    });
    expect(gen).toMatchObject({ issued: 3, certificates: 3 });

    const devices = [0, 1].map(() => ({ canonical: generateKeyPair('nistP256'), enrollment: generateKeyPair('nistP256') }));
    const fac = await provisionBatch({
      trust,
      stores: openStores(trustDir, ks),
      dataDir: join(base, 'data'),
      outDir: join(base, 'out-factory'),
      count: 2,
      deviceType: 'obu',
      pseudonymWeeks: 0,
      deviceKeys: devices.map((d) => ({ canonicalPublicKey: toHex(d.canonical.publicKey), enrollmentPublicKey: toHex(d.enrollment.publicKey) })),
      clock,
    });
    expect(fac).toMatchObject({ issued: 2, certificates: 2 });

    for (const [summary, out] of [
      [gen, 'out-gen'],
      [fac, 'out-factory'],
    ] as const) {
      for (const [n, d] of readJson<BatchManifest>(summary.batchManifest).devices.entries()) {
        const dir = join(base, out, d.dir);
        expect(readdirSync(dir)).toContain('enrollment.oer');
        const cert = CertificateCodec.decode(new Uint8Array(readFileSync(join(dir, 'enrollment.oer'))));
        const chain = decodeChain(new Uint8Array(readFileSync(join(dir, 'eca-chain.oer'))));
        expect(verifyCertificateChain([cert, ...chain], { trustAnchors: roots, clock }).ok).toBe(true);
        if (out === 'out-factory') expect(certificateKeyPairMatches(cert, devices[n]!.enrollment.privateKey, chain)).toBe(true);
      }
    }
  }, 180_000);
});
