// A trust directory (manager init, soft keystore) for the provisioning tests, and bundle checks.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initTrustDir, openStores } from '../../../src/engine/manager/init.js';
import { loadTrustDir, type TrustDir } from '../../../src/engine/manager/trust-dir.js';
import { ManualClock } from '../../../src/security/time.js';
import { generateKeyPair, type EeKeyPair } from '../../../src/engine/ee/keys.js';

export const PASS = 'provision test passphrase';

export interface ProvisionFixture {
  base: string;
  trustDir: string;
  trust: TrustDir;
  transport: EeKeyPair;
  transportFile: string;
  cleanup(): void;
}

export async function provisionFixture(clock: ManualClock): Promise<ProvisionFixture> {
  const base = mkdtempSync(join(tmpdir(), 'scms-provision-'));
  const trustDir = join(base, 'scms');
  await initTrustDir({
    dir: trustDir,
    keystore: 'file',
    keyStoreOptions: { passphrase: PASS, scrypt: { N: 1024 } },
    electors: 1,
    quorum: 1,
    regions: [840, 124],
    clock: new ManualClock(new Date(clock.now().getTime() - 3_600_000).toISOString()),
  });
  const transport = generateKeyPair('nistP256');
  const transportFile = join(base, 'transport.pub');
  writeFileSync(transportFile, Buffer.from(transport.publicKey).toString('hex'));
  return { base, trustDir, trust: loadTrustDir(trustDir), transport, transportFile, cleanup: () => rmSync(base, { recursive: true, force: true }) };
}

export const stores = (dir: string) => openStores(dir, { passphrase: PASS });
export const readJson = <T>(p: string): T => JSON.parse(readFileSync(p, 'utf8')) as T;
