// `scms provision batch` as a child process (bin/run.js -> dist/): kill -9 at several points and resume; a
// finished batch re-run changes nothing; factory keys.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { Certificate as CertificateCodec } from '../../src/codec/index.js';
import { certificateKeyPairMatches } from '../../src/security/certificate.js';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../src/crypto/bytes.js';
import { generateKeyPair } from '../../src/engine/ee/keys.js';
import { openComponents } from '../../src/engine/provision/components.js';
import { decodeChain, type BatchManifest, type BundleManifest } from '../../src/engine/provision/bundle.js';
import { ManualClock } from '../../src/security/time.js';
import { EeStateDir } from '../../src/engine/ee/state.js';
import { PASS, provisionFixture, readJson, stores, type ProvisionFixture } from '../engine/provision/fixtures.js';

const bin = new URL('../../bin/run.js', import.meta.url).pathname;
const clock = new ManualClock(new Date());
let f: ProvisionFixture;
beforeAll(async () => {
  f = await provisionFixture(clock);
}, 120_000);
afterAll(() => f?.cleanup());

function run(args: string[], extraEnv: Record<string, string> = {}) {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', SCMS_KEYSTORE_PASSPHRASE: PASS, ...extraEnv };
  delete env.SCMS_PROVISION_TEST_KILL;
  Object.assign(env, extraEnv);
  const r = spawnSync(process.execPath, [bin, 'provision', 'batch', ...args], { encoding: 'utf8', env });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** Every file under dir with its SHA-256 and mtime. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      const s = statSync(p);
      if (s.isDirectory()) walk(p);
      else out[p] = `${createHash('sha256').update(readFileSync(p)).digest('hex')} ${s.mtimeMs}`;
    }
  };
  walk(dir);
  return out;
}

describe('scms provision batch (child process)', () => {
  it('killed (-9) at four points (chunks of two) and resumed: every device issued exactly once; a finished batch re-run changes nothing', async () => {
    const data = join(f.base, 'cli-data');
    const out = join(f.base, 'cli-out');
    // chunks of two devices: [0, 1], [2, 3], [4]
    const args = ['--trust', f.trustDir, '--data', data, '--out', out, '--count', '5', '--type', 'obu', '--pseudonyms-weeks', '1', '--transport-key', f.transportFile, '--chunk-size', '2'];

    // 1: the ECA issued 0 and 1, the state does not know; 2: chunk [0, 1] finished from the ECA's records, the RA
    // issued the pseudonyms of [2, 3], the state does not know; 3: [2, 3] finished from the stored responses up to
    // their bundles, not recorded done; 4: [2, 3] again (bundles replaced), killed once recorded done (chunk [4]
    // is then under way: it is worked on while the bundles of [2, 3] are synced)
    for (const point of ['enrollment-issued:1', 'pseudonyms-issued:2', 'bundle-written:3', 'done:3']) {
      const r = run(args, { SCMS_PROVISION_TEST_KILL: point });
      expect(r.signal, `${point}: ${r.stderr}`).toBe('SIGKILL');
    }
    // after the kills: devices 0..3 have bundles (4 too when its chunk got that far while [2, 3] was synced)
    expect(readdirSync(out).filter((n) => !n.startsWith('.') && !n.startsWith('batch-')).length).toBeGreaterThanOrEqual(4);

    const done = run([...args, '--json']);
    expect(done.status, done.stderr).toBe(0);
    const summary = JSON.parse(done.stdout) as { issued: number; alreadyDone: number; total: number; batchManifest: string; devicesPerSecond: number };
    expect(summary.total).toBe(5);
    expect(summary.alreadyDone).toBe(4);
    expect(summary.issued).toBe(1);
    expect(summary.devicesPerSecond).toBeGreaterThan(0);

    const batch = readJson<BatchManifest>(summary.batchManifest);
    expect(batch.devices).toHaveLength(5);
    expect(readdirSync(out).filter((n) => n.startsWith('.'))).toEqual([]);
    const bundleCerts: string[] = [];
    for (const d of batch.devices) {
      const m = readJson<BundleManifest>(join(out, d.dir, 'manifest.json'));
      expect(m.index).toBe(d.index);
      bundleCerts.push(...m.certificates.map((c) => c.hashedId8));
    }
    expect(new Set(bundleCerts).size).toBe(bundleCerts.length);

    // the stores: 5 devices, one enrollment certificate and one authorization batch each, no duplicate responses
    const c = await openComponents({ trust: f.trust, stores: stores(f.trustDir), dataDir: data, clock, env: { SCMS_KEYSTORE_PASSPHRASE: PASS }, pseudonyms: true });
    try {
      const devices = await c.registration.list();
      expect(devices.map((d) => d.deviceId).sort()).toEqual(batch.devices.map((d) => d.deviceId).sort());
      expect(devices.every((d) => d.state === 'enrolled')).toBe(true);
      for (const d of devices) {
        const kinds = (await c.registration.certificates(d.deviceId)).map((r) => r.kind).sort();
        expect(kinds).toEqual(['authorization-batch', 'enrollment']);
        expect(await c.ecaStore.certificatesOf(d.deviceId)).toHaveLength(1);
      }
      expect(await c.ecaStore.counts()).toEqual({ requests: 5, certificates: 5 });
      const responses = await c.pseudonyms!.store.allResponses();
      const pseudonymCount = bundleCerts.length - 5;
      expect(responses).toHaveLength(pseudonymCount);
      expect(new Set(responses.map((r) => `${toHex(r.requestHash)}/${r.i}/${r.j}`)).size).toBe(pseudonymCount);
    } finally {
      await c.close();
    }

    // re-running the finished batch changes nothing (files, and the databases' contents)
    const before = snapshot(out);
    const again = run([...args, '--json']);
    expect(again.status, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ issued: 0, alreadyDone: 5 });
    expect(snapshot(out)).toEqual(before);
    const c2 = await openComponents({ trust: f.trust, stores: stores(f.trustDir), dataDir: data, clock, env: { SCMS_KEYSTORE_PASSPHRASE: PASS }, pseudonyms: false });
    try {
      expect(await c2.registration.list()).toHaveLength(5);
      expect((await c2.ecaStore.counts()).certificates).toBe(5);
    } finally {
      await c2.close();
    }

    // one process per batch: a lock held by a live process is refused
    const lock = join(out, `.lock-${JSON.parse(again.stdout).batchId}`);
    writeFileSync(lock, String(process.pid));
    const locked = run(args);
    expect(locked.status).toBe(2);
    expect(locked.stderr).toMatch(new RegExp(`being run by process ${process.pid}`));
    rmSync(lock);

    // a bundle unpacked (CLI) into an `scms ee simulate --state` directory
    const stateDir = join(f.base, 'cli-ee-state');
    const env = { ...process.env, NO_COLOR: '1', SCMS_KEYSTORE_PASSPHRASE: 'device', SCMS_TRANSPORT_PRIVATE_KEY: f.transport.privateKey.toString(16).padStart(64, '0') };
    const u = spawnSync(process.execPath, [bin, 'provision', 'unpack', '--bundle', join(out, batch.devices[1]!.dir), '--state', stateDir, '--ra', 'http://127.0.0.1:1', '--json'], { encoding: 'utf8', env });
    expect(u.status, u.stderr).toBe(0);
    expect(JSON.parse(u.stdout)).toMatchObject({ deviceId: batch.devices[1]!.deviceId, canonicalId: batch.devices[1]!.canonicalId, certificates: batch.devices[1]!.certificates - 1 });
    const sd = new EeStateDir(stateDir, { passphrase: 'device' });
    try {
      const st = sd.load();
      expect(st.registration!.deviceId).toBe(batch.devices[1]!.deviceId);
      expect(st.enrollment!.hashedId8).toBe(readJson<BundleManifest>(join(out, batch.devices[1]!.dir, 'manifest.json')).certificates[0]!.hashedId8);
      await sd.getScalar(st.enrollment!.keyUri);
    } finally {
      await sd.close();
    }
  }, 180_000);

  it('factory keys (--device-keys JSON and CSV): registered, or enrolled with their own enrollment keys; bundles without private keys; text summary with throughput', async () => {
    const keys = [0, 1].map(() => generateKeyPair('nistP256'));
    const file = join(f.base, 'factory.json');
    writeFileSync(file, JSON.stringify(keys.map((k) => ({ canonicalPublicKey: toHex(k.publicKey) }))));
    const out = join(f.base, 'cli-factory-out');
    const r = run(['--trust', f.trustDir, '--data', join(f.base, 'cli-factory-data'), '--out', out, '--type', 'obu', '--device-keys', file]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/2 devices \(2 issued now, 0 already done\)/);
    expect(r.stdout).toMatch(/throughput: 2 devices in [\d.]+ s = [\d.]+ devices\/s/);
    const dirs = readdirSync(out).filter((n) => !n.startsWith('batch-'));
    expect(dirs).toHaveLength(2);
    for (const d of dirs) expect(readdirSync(join(out, d))).toEqual(['manifest.json']);

    const bad = run(['--trust', f.trustDir, '--data', join(f.base, 'cli-factory-data'), '--out', out, '--type', 'obu', '--device-keys', file, '--pseudonyms-weeks', '1']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/pseudonyms need each device key to come with its caterpillarPublicKey and expansionKey/);

    // CSV with a header: canonical and enrollment public keys -> explicit enrollment certificates
    const devices = [0, 1, 2].map(() => ({ canonical: generateKeyPair('nistP256'), enrollment: generateKeyPair('nistP256') }));
    const csv = join(f.base, 'factory.csv');
    writeFileSync(csv, ['# from the secure elements', 'canonicalPublicKey,enrollmentPublicKey', ...devices.map((d) => `${toHex(d.canonical.publicKey)},${toHex(d.enrollment.publicKey)}`)].join('\n'));
    const out2 = join(f.base, 'cli-factory-csv-out');
    const data2 = join(f.base, 'cli-factory-csv-data');
    const r2 = run(['--trust', f.trustDir, '--data', data2, '--out', out2, '--type', 'obu', '--device-keys', csv, '--json']);
    expect(r2.status, r2.stderr).toBe(0);
    const s2 = JSON.parse(r2.stdout) as { issued: number; certificates: number; batchManifest: string };
    expect(s2).toMatchObject({ issued: 3, certificates: 3 });
    const batch = readJson<BatchManifest>(s2.batchManifest);
    const c = await openComponents({ trust: f.trust, stores: stores(f.trustDir), dataDir: data2, clock, env: { SCMS_KEYSTORE_PASSPHRASE: PASS }, pseudonyms: false });
    try {
      for (const [n, d] of batch.devices.entries()) {
        expect(readdirSync(join(out2, d.dir)).sort()).toEqual(['eca-chain.oer', 'enrollment.oer', 'manifest.json']);
        const cert = CertificateCodec.decode(new Uint8Array(readFileSync(join(out2, d.dir, 'enrollment.oer'))));
        const chain = decodeChain(new Uint8Array(readFileSync(join(out2, d.dir, 'eca-chain.oer'))));
        expect(certificateKeyPairMatches(cert, devices[n]!.enrollment.privateKey, chain)).toBe(true);
        expect((await c.registration.get(d.deviceId))!.state).toBe('enrolled');
      }
    } finally {
      await c.close();
    }
  }, 60_000);

  it('--region / --psid outside the policy: exit 2 with the reason, nothing issued', () => {
    const out = join(f.base, 'cli-refused-out');
    const data = join(f.base, 'cli-refused-data');
    const base = ['--trust', f.trustDir, '--data', data, '--out', out, '--count', '3', '--type', 'obu', '--transport-key', f.transportFile];
    const r1 = run([...base, '--region', '250']);
    expect(r1.status).toBe(2);
    expect(r1.stderr).toMatch(/region 250 is not in the policy regions \(840, 124\): nothing issued/);
    const r2 = run([...base, '--psid', '32', '--psid', '135']);
    expect(r2.status).toBe(2);
    expect(r2.stderr).toMatch(/psid 135 is not in the policy's enrollment PSIDs for OBU devices \(32, 38\): nothing issued/);
    expect(existsSync(join(data, 'ra.db'))).toBe(false);
    expect(existsSync(join(data, 'eca.db'))).toBe(false);
  }, 60_000);
});
