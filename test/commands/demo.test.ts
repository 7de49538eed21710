import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const bin = new URL('../../bin/run.js', import.meta.url).pathname;
const base = mkdtempSync(join(tmpdir(), 'scms-demo-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

describe('scms demo (README main job)', () => {
  it('creates an SCMS, serves it, and a simulated OBU obtains and verifies pseudonym certificates', () => {
    const dir = join(base, 'demo');
    const env = { ...process.env, SCMS_KEYSTORE_PASSPHRASE: 'demo-test-passphrase' };
    delete env.SCMS_OPERATOR_TOKEN;
    const r = spawnSync(process.execPath, [bin, 'demo', '--dir', dir], { env, encoding: 'utf8', timeout: 180_000 });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/all checks passed/);
    expect(r.stdout).toMatch(/device complete/);
    expect(r.stdout).toMatch(/Kind:\s+implicit certificate/);
    expect(r.stdout).toMatch(/linkage-value: [0-9a-f]{18}/);
    // The device state holds its certificates; its keys are only in the encrypted keystore.
    const pseudonyms = readdirSync(join(dir, 'obu-1', 'certs', 'pseudonym'));
    expect(pseudonyms.length).toBeGreaterThan(0);
    expect(existsSync(join(dir, 'scms', 'trust', 'manifest.json'))).toBe(true);
  }, 200_000);
});
