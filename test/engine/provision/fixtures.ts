// A trust directory (manager init, soft keystore) for the provisioning tests, and bundle checks.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initTrustDir, openStores } from '../../../src/engine/manager/init.js';
import { loadTrustDir, type TrustDir } from '../../../src/engine/manager/trust-dir.js';
import { ManualClock } from '../../../src/security/time.js';
import { generateKeyPair, type EeKeyPair } from '../../../src/engine/ee/keys.js';
import { SymmetricEncryptionKey as SymmetricEncryptionKeyCodec } from '../../../src/codec/gen/Ieee1609Dot2BaseTypes.js';
import type { Certificate } from '../../../src/codec/index.js';
import { toHex } from '../../../src/crypto/bytes.js';
import { linkageValue, preLinkageValue } from '../../../src/crypto/linkage.js';
import { laIdOctets } from '../../../src/engine/la/la.js';
import type { BundleSecrets } from '../../../src/engine/provision/bundle.js';
import type { ProvisionComponents } from '../../../src/engine/provision/components.js';
import { decryptData } from '../../../src/security/encryption.js';

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

/** keys.oer opened as the factory does: transport-key.oer with the transport private key, then keys.oer. */
export async function openBundleKeys(dir: string, transport: EeKeyPair): Promise<BundleSecrets> {
  const wrapped = await decryptData(new Uint8Array(readFileSync(join(dir, 'transport-key.oer'))), [
    { kind: 'rek', publicKey: { curve: 'nistP256', publicKey: transport.publicKey }, privateKey: transport.privateKey },
  ]);
  const key = (SymmetricEncryptionKeyCodec.decode(wrapped) as { aes128Ccm: Uint8Array }).aes128Ccm;
  const plain = await decryptData(new Uint8Array(readFileSync(join(dir, 'keys.oer'))), [{ kind: 'symmetric', key }]);
  return JSON.parse(new TextDecoder().decode(plain)) as BundleSecrets;
}

/**
 * The linkage value of a device's pseudonym (i, j) recomputed from the LAs' linkage seeds of its chains (Annex D:
 * lv = PLV1 xor PLV2), and the one the certificate carries (hex both).
 */
export async function linkageValues(c: ProvisionComponents, deviceId: string, cert: Certificate, i: number, j: number): Promise<{ expected: string; got: string }> {
  const chain1 = (await c.pseudonyms!.store.chainId(deviceId, 1))!;
  const chain2 = (await c.pseudonyms!.store.chainId(deviceId, 2))!;
  const s1 = await c.pseudonyms!.la1.seedsForRevocation(chain1, i);
  const s2 = await c.pseudonyms!.la2.seedsForRevocation(chain2, i);
  const lv = linkageValue(preLinkageValue(laIdOctets(s1.laId), s1.linkageSeed, j), preLinkageValue(laIdOctets(s2.laId), s2.linkageSeed, j));
  const id = cert.toBeSigned.id as { linkageData: { iCert: number; 'linkage-value': Uint8Array } };
  return { expected: toHex(lv), got: toHex(id.linkageData['linkage-value']) };
}
