// A provisioned device brought online: `scms provision batch` into the data directory of `scms serve all`,
// `scms provision unpack` into an EE state directory, then `scms ee simulate` against the running server continues
// from the enrolled state (no registration, no enrollment) and gets pseudonyms for its provisioned identity; an RSU
// provisioned with an identification certificate signs with it and asks for its next one online. One server for
// both (the batches are issued before it starts).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readJson, PASS, provisionFixture, type ProvisionFixture } from '../engine/provision/fixtures.js';
import type { BatchManifest } from '../../src/engine/provision/bundle.js';
import { ManualClock } from '../../src/security/time.js';
import { bin, startScms } from './serve-flow-helpers.js';

const DEVICE_PASS = 'provisioned device passphrase';
let f: ProvisionFixture;
let server: ChildProcess | undefined;
let url: string;
let obuBatch: BatchManifest;
let rsuBatch: BatchManifest;

function provision(...args: string[]): BatchManifest {
  const p = spawnSync(
    process.execPath,
    [bin, 'provision', 'batch', '--trust', f.trustDir, '--data', join(f.base, 'data'), '--transport-key', f.transportFile, '--json', ...args],
    { encoding: 'utf8', env: { ...process.env, SCMS_KEYSTORE_PASSPHRASE: PASS } },
  );
  expect(p.status, p.stderr).toBe(0);
  return readJson<BatchManifest>(JSON.parse(p.stdout).batchManifest);
}

beforeAll(async () => {
  f = await provisionFixture(new ManualClock(new Date()));
  obuBatch = provision('--out', join(f.base, 'out'), '--count', '1', '--type', 'obu', '--pseudonyms-weeks', '1');
  rsuBatch = provision('--out', join(f.base, 'out-rsu'), '--count', '2', '--type', 'rsu', '--identification-weeks', '1');
  const started = await startScms(['all', '--trust', f.trustDir, '--data', join(f.base, 'data'), '--port', '0', '--host', '127.0.0.1'], {
    ...process.env,
    SCMS_KEYSTORE_PASSPHRASE: PASS,
    SCMS_RA_WORKER_POLL_MS: '100',
    SCMS_RA_PROCESSING_DELAY_S: '1',
    SCMS_LOG_LEVEL: 'warn',
  });
  server = started.child;
  url = started.out.url;
}, 120_000);
afterAll(() => {
  if (server && server.exitCode === null) server.kill('SIGKILL');
  f?.cleanup();
});

function runAsync(args: string[], env: NodeJS.ProcessEnv): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, NO_COLOR: '1', SCMS_OPERATOR_TOKEN: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (status) => resolve({ status, stdout, stderr })));
}

interface SimReport {
  complete: boolean;
  deviceId: string;
  steps: Array<{ step: string; status: string }>;
  certificates: Array<{ verified: boolean; i: number; hashedId8: string; certificateType: string; id: string; message?: { verified: boolean; psid: number } }>;
}

/** `scms ee simulate --state <state> --json [extra]` of a provisioned device: exit 0 and its report. */
async function simulateRun(state: string, ...extra: string[]): Promise<SimReport> {
  const r = await runAsync(['ee', 'simulate', '--state', state, '--json', ...extra], { SCMS_KEYSTORE_PASSPHRASE: DEVICE_PASS });
  expect(r.status, r.stdout + r.stderr).toBe(0);
  return JSON.parse(r.stdout) as SimReport;
}
const steps = (x: SimReport) => x.steps.map((s) => `${s.step}:${s.status}`);

describe('provisioned device online', () => {
  it('provision -> unpack -> ee simulate against serve all: no register / enroll, provisioned pseudonyms used, next batch requested online and downloaded', async () => {
    const out = join(f.base, 'out');
    const device = obuBatch.devices[0]!;

    const state = join(f.base, 'device');
    const deviceEnv = { SCMS_KEYSTORE_PASSPHRASE: DEVICE_PASS, SCMS_TRANSPORT_PRIVATE_KEY: f.transport.privateKey.toString(16).padStart(64, '0') };
    const u = await runAsync(['provision', 'unpack', '--bundle', join(out, device.dir), '--state', state, '--ra', url, '--json'], deviceEnv);
    expect(u.status, u.stderr).toBe(0);

    // The provisioned pseudonyms cover this i-period: nothing to ask; they are verified and sign messages.
    const report = await simulateRun(state);
    expect(steps(report)).toEqual(['bootstrap:done', 'register:already done', 'enroll:already done', 'request:already done', 'download:already done', 'use:done']);
    expect(report.complete).toBe(true);
    expect(report.deviceId).toBe(device.deviceId);
    expect(report.certificates.length).toBe(device.certificates - 1);
    expect(report.certificates.every((c) => c.verified && c.message?.verified)).toBe(true);
    const i0 = report.certificates[0]!.i;

    // Its next batch, asked for one i-period ahead: the RA accepts a request signed with the provisioned enrollment
    // certificate, and the batch downloads (LA chains continued by the served LAs); held until its i-period.
    const next = await simulateRun(state, '--look-ahead', '604800');
    expect(steps(next)).toEqual(['bootstrap:done', 'register:already done', 'enroll:already done', 'request:done', 'download:done', 'use:done']);
    const fresh = next.certificates.filter((c) => c.i === i0 + 1);
    expect(fresh.length).toBeGreaterThan(0);
    expect(fresh.every((c) => c.verified && c.message === undefined)).toBe(true);
    expect(next.certificates.filter((c) => c.i === i0)).toHaveLength(device.certificates - 1);

    // A further run holds both batches and asks for nothing.
    const again = await simulateRun(state);
    expect(steps(again)).toEqual(['bootstrap:done', 'register:already done', 'enroll:already done', 'request:already done', 'download:already done', 'use:done']);
  }, 180_000);
  it('RSU bundles with an identification certificate: unpack -> ee simulate signs with it (its first PSID) and asks for the next identification certificate online', async () => {
    expect(rsuBatch).toMatchObject({ deviceType: 'rsu', identificationWeeks: 1, form: 'implicit', psids: [130, 131] });
    const device = rsuBatch.devices[1]!;
    expect(device.certificates).toBe(2);
    const state = join(f.base, 'rsu');
    const deviceEnv = { SCMS_KEYSTORE_PASSPHRASE: DEVICE_PASS, SCMS_TRANSPORT_PRIVATE_KEY: f.transport.privateKey.toString(16).padStart(64, '0') };
    const u = await runAsync(['provision', 'unpack', '--bundle', join(f.base, 'out-rsu', device.dir), '--state', state, '--ra', url, '--json'], deviceEnv);
    expect(u.status, u.stderr).toBe(0);
    expect(JSON.parse(u.stdout)).toMatchObject({ deviceId: device.deviceId, certificates: 1 });
    const st = readJson<{ config: Record<string, unknown>; certificates: Array<{ file: string; i: number; j: number }> }>(join(state, 'state.json'));
    expect(st.config).toMatchObject({ deviceType: 'rsu', cert: 'identification', form: 'implicit', butterfly: 'none', encrypted: true });
    expect(st.certificates.map((c) => c.file)).toEqual([`certs/identification/${st.certificates[0]!.i.toString(16)}_0.oer`]);

    // The provisioned certificate covers this i-period: the use step verifies it and signs with PSID 130.
    const report = await simulateRun(state);
    expect(steps(report)).toEqual(['bootstrap:done', 'register:already done', 'enroll:already done', 'request:already done', 'download:already done', 'use:done']);
    expect(report.deviceId).toBe(device.deviceId);
    expect(report.certificates).toHaveLength(1);
    expect(report.certificates[0]).toMatchObject({ verified: true, certificateType: 'implicit', id: 'none', message: { verified: true, psid: 130 } });

    // The state's configuration is the online identification flow (non-butterfly, response encrypted): asked ahead,
    // the RA accepts a request signed with the provisioned enrollment certificate and the certificate downloads.
    const next = await simulateRun(state, '--look-ahead', '604800');
    expect(steps(next)).toEqual(['bootstrap:done', 'register:already done', 'enroll:already done', 'request:done', 'download:done', 'use:done']);
    // (the new certificate starts in the same i-period: it takes the provisioned one's place (i, 0) in the state)
    expect(next.certificates.some((c) => c.hashedId8 !== report.certificates[0]!.hashedId8)).toBe(true);
    expect(next.certificates.every((c) => c.verified && c.certificateType === 'implicit' && c.id === 'none')).toBe(true);
  }, 120_000);
});
