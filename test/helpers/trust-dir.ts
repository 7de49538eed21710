// A small trust directory for the tests that start the SCMS components: `scms manager init` with a soft keystore
// (cheap scrypt), one elector (quorum 1), dated a minute back so that every certificate is valid now.
import { initTrustDir, type InitOptions, type InitResult } from '../../src/engine/manager/init.js';
import { ManualClock } from '../../src/security/time.js';

export function initTestTrustDir(dir: string, passphrase: string, more: Partial<Omit<InitOptions, 'dir'>> = {}): Promise<InitResult> {
  return initTrustDir({
    dir,
    keystore: 'file',
    keyStoreOptions: { passphrase, scrypt: { N: 1024 } },
    electors: 1,
    quorum: 1,
    clock: new ManualClock(new Date(Date.now() - 60_000).toISOString()),
    ...more,
  });
}
