// The path `scms serve ra` will take: config -> startService -> RA registration mounted -> SIGTERM.
import { createECDH } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadServiceConfig } from '../../../src/engine/config.js';
import { createLogger, startService } from '../../../src/engine/http/index.js';
import { openDatabase } from '../../../src/engine/store/index.js';
import { RegistrationStore } from '../../../src/engine/ra/registration-store.js';
import { registerRegistrationRoutes } from '../../../src/engine/ra/registration-routes.js';
import { captureLogs } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'scms-service-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('startService', () => {
  it('runs the RA registration API from a ServiceConfig and shuts down on SIGTERM', async () => {
    const token = 'service-test-operator-token';
    const config = loadServiceConfig(['ra'], { port: '0', dataDir: join(dir, 'data') }, { env: { SCMS_OPERATOR_TOKEN: token }, cwd: dir });
    const logs = captureLogs();
    let store!: RegistrationStore;
    let exitCode: number | undefined;
    let onExit!: () => void;
    const exited = new Promise<void>((resolve) => (onExit = resolve));
    const { address } = await startService(
      config,
      async (server) => {
        const db = await openDatabase<any>(config.databases.ra!);
        server.onShutdown('ra.db', () => db.destroy());
        store = new RegistrationStore(db);
        await store.migrate();
        server.addHealthCheck('ra.db', () => store.ping());
        await server.registerComponent({
          name: 'ra',
          deps: { store, operatorToken: config.operatorToken, componentToken: config.componentToken },
          register: registerRegistrationRoutes,
        });
      },
      { logger: createLogger({ destination: logs.destination }), signals: { signals: ['SIGTERM'], exit: (c) => ((exitCode = c), onExit()) } },
    );
    try {
      expect(address.port).toBeGreaterThan(0);
      expect(existsSync(join(dir, 'data', 'ra.db'))).toBe(true);
      const ecdh = createECDH('prime256v1');
      ecdh.generateKeys();
      const res = await fetch(`${address.url}/v3/devices`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ deviceType: 'rsu', canonicalPublicKey: ecdh.getPublicKey('hex', 'compressed') }),
      });
      expect(res.status).toBe(201);
      // The internal API is disabled: no component token configured.
      expect((await fetch(`${address.url}/internal/devices/by-canonical-id/0000000000000000`, { headers: { authorization: 'Bearer x' } })).status).toBe(403);
    } finally {
      process.emit('SIGTERM', 'SIGTERM');
    }
    await exited;
    expect(exitCode).toBe(0);
    await expect(store.ping()).rejects.toThrow(); // database closed by the shutdown hook
    const listening = logs.lines.find((l) => l.msg === 'listening');
    expect(listening.config.operatorToken).toBe('set');
    expect(JSON.stringify(logs.lines)).not.toContain(token);
  });

  it('closes what was opened when mounting fails', async () => {
    const config = loadServiceConfig(['ra'], { port: '0', dataDir: join(dir, 'fail') }, { env: {}, cwd: dir });
    let closed = false;
    await expect(
      startService(
        config,
        async (server) => {
          server.onShutdown('resource', () => void (closed = true));
          throw new Error('trust directory missing');
        },
        { logger: createLogger({ destination: captureLogs().destination }), signals: false },
      ),
    ).rejects.toThrow('trust directory missing');
    expect(closed).toBe(true);
  });
});
