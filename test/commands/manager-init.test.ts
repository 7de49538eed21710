// CLI tests: `node bin/run.js manager init|verify|issue` after `npx tsc -p .` (dist/).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTrustDir } from '../../src/engine/manager/trust-dir.js';
import { createSoftHsmToken, type SoftHsmToken } from '../helpers/softhsm.js';
import { verifyExplicitWithNodeCrypto } from '../helpers/node-crypto-verify.js';

const bin = new URL('../../bin/run.js', import.meta.url).pathname;
const PASS = 'cli test passphrase';

function run(args: string[], env: Record<string, string | undefined> = {}) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120_000 });
}

function checkAllSignatures(dir: string): void {
  const td = loadTrustDir(dir);
  expect(td.certificates.length).toBeGreaterThanOrEqual(13);
  for (const c of td.certificates) {
    const issuer = c.issuer === 'self' ? undefined : td.byName.get(c.issuer)!;
    expect(verifyExplicitWithNodeCrypto(c.certificate!, issuer?.bytes, issuer ? issuer.certificate! : c.certificate!), c.name).toBe(true);
  }
}

describe('scms manager init --yes / verify / issue (CLI)', () => {
  let base: string;
  beforeAll(() => {
    base = mkdtempSync(join(tmpdir(), 'scms-cli-mgr-'));
  });
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it('soft keystore: init --json lists every file with its role; verify exits 0; a flipped byte makes it exit 1', () => {
    const dir = join(base, 'soft');
    const r = run(['manager', 'init', '--yes', '--dir', dir, '--electors', '3', '--quorum', '2', '--region', '840', '--json'], {
      SCMS_KEYSTORE_PASSPHRASE: PASS,
    });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { files: Array<{ path: string; role: string }> };
    const roles = new Set(out.files.map((f) => f.role));
    for (const role of ['certificate', 'ctl', 'ccf', 'global-policy', 'global-policy-signed', 'local-policy', 'local-policy-signed', 'manifest', 'keystore', 'audit']) {
      expect(roles.has(role), role).toBe(true);
    }
    for (const f of out.files.filter((x) => x.role !== 'keystore')) expect(existsSync(join(dir, f.path)), f.path).toBe(true);
    const v = run(['manager', 'verify', dir]);
    expect(v.status, v.stdout + v.stderr).toBe(0);
    expect(v.stdout).toMatch(/all checks passed/);
    checkAllSignatures(dir);

    const iss = run(['manager', 'issue', '--dir', dir, '--role', 'aca', '--json'], { SCMS_KEYSTORE_PASSPHRASE: PASS });
    expect(iss.status, iss.stderr).toBe(0);
    expect(JSON.parse(iss.stdout).name).toBe('aca-2');
    expect(run(['manager', 'verify', dir]).status).toBe(0);

    const f = join(dir, 'trust', 'certs', 'ica.oer');
    const b = readFileSync(f);
    b[b.length - 1]! ^= 0xff;
    writeFileSync(f, b);
    const bad = run(['manager', 'verify', dir]);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(/trust\/certs\/ica\.oer: .*modified/);
  }, 120_000);

  describe('PKCS#11 (SoftHSM2)', () => {
    let token: SoftHsmToken;
    beforeAll(() => {
      token = createSoftHsmToken({ label: 'scms-mgr-test' });
    });
    afterAll(() => token?.cleanup());

    it('init --yes with a PKCS#11 token: no keys directory, verify exits 0, issue works', () => {
      const dir = join(base, 'hsm');
      const env = { SCMS_PKCS11_MODULE: token.modulePath, SCMS_PKCS11_PIN: token.pin, SOFTHSM2_CONF: process.env.SOFTHSM2_CONF };
      const r = run(['manager', 'init', '--yes', '--dir', dir, '--keystore', `pkcs11:token=${token.label}`, '--json'], env);
      expect(r.status, r.stderr).toBe(0);
      expect(existsSync(join(dir, 'keys'))).toBe(false);
      const td = loadTrustDir(dir);
      expect(td.manifest.keystore).toBe(`pkcs11:token=${token.label}`);
      for (const c of td.manifest.components) expect(c.keyUri).toMatch(new RegExp(`^pkcs11:token=${token.label};object=scms-`));
      const v = run(['manager', 'verify', dir]);
      expect(v.status, v.stdout).toBe(0);
      checkAllSignatures(dir);
      const iss = run(['manager', 'issue', '--dir', dir, '--role', 'la', '--name', 'la3'], env);
      expect(iss.status, iss.stderr).toBe(0);
      expect(run(['manager', 'verify', dir]).status).toBe(0);
      expect(loadTrustDir(dir).byName.get('la3')!.laId).toBe(3);
    }, 120_000);
  });

  it('interactive ceremony driven through a pty (script): answers each prompt, then verify exits 0', async () => {
    const dir = join(base, 'interactive');
    // [prompt text to wait for, keys to send]
    const script: Array<[RegExp, string]> = [
      [/Output directory/, `${dir}\r`],
      [/Key store/, '\r'], // soft keystore (first choice)
      [/Number of electors/, '4\r'],
      [/Quorum/, '3\r'],
      [/Region country codes/, '840,124\r'],
      [/Root CA and electors, years/, '\r'],
      [/ICA, years/, '\r'],
      [/Components, years/, '\r'],
      [/Components/, '\r'],
      [/Generate the keys and certificates now/, 'y\r'],
    ];
    const child = spawn('script', ['-qfec', `${process.execPath} ${bin} manager init`, '/dev/null'], {
      env: { ...process.env, SCMS_KEYSTORE_PASSPHRASE: PASS, TERM: 'dumb', COLUMNS: '200' },
    });
    let out = '';
    let step = 0;
    let seen = 0;
    const done = new Promise<number>((res) => child.on('exit', (code) => res(code ?? -1)));
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString('utf8');
      while (step < script.length) {
        const [re, keys] = script[step]!;
        const m = re.exec(out.slice(seen));
        if (!m) break;
        seen += m.index + m[0].length;
        step++;
        setTimeout(() => child.stdin.write(keys), 150);
      }
    });
    const code = await done;
    expect(step, out).toBe(script.length);
    expect(code, out).toBe(0);
    expect(out).toMatch(/SCMS key ceremony/);
    expect(out).toMatch(/8\/8\S* done/);
    const td = loadTrustDir(dir);
    expect(td.electors).toHaveLength(4);
    expect(td.manifest.quorum).toBe(3);
    expect(td.manifest.regions).toEqual([840, 124]);
    const v = run(['manager', 'verify', dir]);
    expect(v.status, v.stdout).toBe(0);
  }, 120_000);

  it('--help shows examples', () => {
    const help = execFileSync(process.execPath, [bin, 'manager', 'init', '--help'], { encoding: 'utf8' });
    expect(help).toMatch(/--keystore/);
    expect(help).toMatch(/EXAMPLES/);
  });
});
