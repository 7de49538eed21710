// serve.ts pieces of the authorization wiring: timing settings from the environment, the LA master secret.
import { createECDH, hkdfSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/engine/config.js';
import { authorizationSettings, laMasterSecret } from '../../src/engine/serve.js';
import { KeyStores } from '../../src/hsm/index.js';

describe('authorizationSettings', () => {
  it('defaults, values from the environment, and a ConfigError naming each bad variable', () => {
    expect(authorizationSettings({})).toEqual({ processingDelaySeconds: 60, pollIntervalMs: 1000, iPeriodsPerRequest: 1 });
    expect(authorizationSettings({ SCMS_RA_PROCESSING_DELAY_S: '0', SCMS_RA_WORKER_POLL_MS: '50', SCMS_RA_I_PERIODS: '3' })).toEqual({
      processingDelaySeconds: 0,
      pollIntervalMs: 50,
      iPeriodsPerRequest: 3,
    });
    let err: unknown;
    try {
      authorizationSettings({ SCMS_RA_PROCESSING_DELAY_S: 'soon', SCMS_RA_WORKER_POLL_MS: '1', SCMS_RA_I_PERIODS: '1.5' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    for (const v of ['SCMS_RA_PROCESSING_DELAY_S', 'SCMS_RA_WORKER_POLL_MS', 'SCMS_RA_I_PERIODS']) expect((err as Error).message).toContain(v);
  });
});

describe('laMasterSecret', () => {
  const base = mkdtempSync(join(tmpdir(), 'scms-la-secret-'));
  const stores = new KeyStores({ baseDir: base, passphrase: 'la secret test', scrypt: { N: 1024 } });
  afterAll(async () => {
    await stores.close();
    rmSync(base, { recursive: true, force: true });
  });

  it('is HKDF-SHA256 over x(d * Q) of the LA key, stable, bound to the laId and to the key', async () => {
    const store = await stores.storeFor('file:keys');
    const a = await store.generate('la-a', 'P-256');
    const b = await store.generate('la-b', 'P-256');
    const s1 = await laMasterSecret(stores, a.uri, 1);
    expect(s1).toHaveLength(32);
    expect(Buffer.from(await laMasterSecret(stores, a.uri, 1)).equals(Buffer.from(s1))).toBe(true);
    expect(Buffer.from(await laMasterSecret(stores, a.uri, 2)).equals(Buffer.from(s1))).toBe(false);
    expect(Buffer.from(await laMasterSecret(stores, b.uri, 1)).equals(Buffer.from(s1))).toBe(false);

    // Independently: node's ECDH with the exported scalar against the key's own public point.
    const d = await stores.exportPrivateScalar(a.uri);
    const ecdh = createECDH('prime256v1');
    ecdh.setPrivateKey(Buffer.from(d.toString(16).padStart(64, '0'), 'hex'));
    const z = ecdh.computeSecret(Buffer.from(a.publicKey));
    const info = Buffer.concat([Buffer.from('scms-la/master-secret/v1'), Buffer.from([0, 1])]);
    expect(Buffer.from(hkdfSync('sha256', z, Buffer.alloc(0), info, 32)).equals(Buffer.from(s1))).toBe(true);
  });
});
