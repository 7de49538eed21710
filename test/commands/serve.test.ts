// `scms serve all` as a real child process (node bin/run.js; the dist/ build from `npx tsc -p .`).
import { spawn, type ChildProcess } from 'node:child_process';
import { createECDH } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../src/crypto/bytes.js';
import { bootstrapTrust } from '../../src/engine/ee/bootstrap.js';
import { loadTrustDir } from '../../src/engine/manager/trust-dir.js';
import { certificateHashedId8 } from '../../src/security/certificate.js';
import { systemClock } from '../../src/security/time.js';
import { initTestTrustDir } from '../helpers/trust-dir.js';
import { bin, exitOf, startScms } from './serve-flow-helpers.js';

const PASS = 'serve command test passphrase';
const OPERATOR = 'operator-token-serve-test-000001';

describe('scms serve all (child process)', () => {
  let base: string;
  let dir: string;
  let child: ChildProcess | undefined;

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'scms-serve-'));
    dir = join(base, 'scms');
    await initTestTrustDir(dir, PASS);
  }, 120_000);
  afterAll(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    rmSync(base, { recursive: true, force: true });
  });

  it('starts, serves /healthz, trust files and registration, and exits 0 on SIGTERM', async () => {
    const env = { ...process.env, SCMS_KEYSTORE_PASSPHRASE: PASS, SCMS_OPERATOR_TOKEN: OPERATOR };
    const data = join(base, 'data');
    const started = await startScms(['all', '--trust', dir, '--data', data, '--port', '0', '--host', '127.0.0.1'], env);
    child = started.child;
    const { url, components } = started.out;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(components).toEqual(['ra', 'eca']);

    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(200);
    const h = (await health.json()) as Record<string, unknown>;
    expect(JSON.stringify(h)).toMatch(/ra\.db/);

    const td = loadTrustDir(dir);
    const ra = await fetch(`${url}/v3/ra-certificate`);
    expect(ra.status).toBe(200);
    expect(Buffer.from(await ra.arrayBuffer()).equals(Buffer.from(td.byName.get('ra')!.bytes))).toBe(true);

    // Operator registration with the token from the environment; without it 401.
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const body = JSON.stringify({ deviceType: 'obu', canonicalPublicKey: ecdh.getPublicKey('hex', 'compressed') });
    const unauth = await fetch(`${url}/v3/devices`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(unauth.status).toBe(401);
    const reg = await fetch(`${url}/v3/devices`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${OPERATOR}` },
      body,
    });
    expect(reg.status).toBe(201);
    const device = (await reg.json()) as { deviceId: string; state: string };
    expect(device.state).toBe('registered');

    // The ECA is mounted: a request that is not an SPDU is refused with a 1609.2.1 code, not 404.
    const enroll = await fetch(`${url}/v3/enrollment-certificate`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array([1, 2, 3]) });
    expect(enroll.status).toBe(400);
    expect(enroll.headers.get('ieee-1609.2.1-error')).toMatch(/^400-\d+$/);

    // An EE bootstraps from it (the RA key signs the info status in the child process).
    const store = await bootstrapTrust({ raUrl: url, trustedRootHashes: [toHex(certificateHashedId8(td.byName.get('root')!.certificate!))], clock: systemClock });
    expect(store.infoStatus).toBeDefined();

    child.kill('SIGTERM');
    expect(await exitOf(child)).toBe(0);
    // SQLite files in the data directory.
    expect(readFileSync(join(data, 'ra.db')).length).toBeGreaterThan(0);
    expect(readFileSync(join(data, 'eca.db')).length).toBeGreaterThan(0);
  }, 60_000);

  it('refuses to start on a directory that is not a trust directory (exit 2, reason)', async () => {
    const c = spawn(process.execPath, [bin, 'serve', 'all', '--trust', join(base, 'nope'), '--data', join(base, 'd2'), '--port', '0'], {
      env: process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    c.stderr!.on('data', (d) => (stderr += d));
    expect(await exitOf(c)).toBe(2);
    expect(stderr).toMatch(/no manifest/);
  }, 30_000);
});
