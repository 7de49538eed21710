// `scms ee simulate` / `scms ee status` as real processes against a real `scms serve all` child process
// (node bin/run.js; the dist/ build from `npx tsc -p .`).
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServeAll, type ServeAll } from '../helpers/serve-all.js';
import { bin, startScms } from './serve-flow-helpers.js';

const PASS = 'ee simulate test: scms passphrase';
const DEVICE_PASS = 'ee simulate test: device passphrase';
const OPERATOR = 'operator-token-ee-simulate-test-01';

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI asynchronously (the server child keeps running meanwhile). */
function scms(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const child = spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', SCMS_OPERATOR_TOKEN: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (status) => resolve({ status, stdout, stderr })));
}

const json = (r: Run) => {
  try {
    return JSON.parse(r.stdout);
  } catch {
    throw new Error(`not JSON (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  }
};

describe('scms ee simulate / status against scms serve all', () => {
  let base: string;
  let url: string;
  let rootHash: string;
  let trustDir: string;
  let serveAll: ServeAll | undefined;
  const deviceEnv = { SCMS_KEYSTORE_PASSPHRASE: DEVICE_PASS };

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'scms-ee-sim-'));
    serveAll = await startServeAll({ base, passphrase: PASS, operatorToken: OPERATOR, env: { SCMS_RA_PROCESSING_DELAY_S: '2' } });
    trustDir = serveAll.trustDir;
    rootHash = serveAll.rootHash;
    url = serveAll.url;
  }, 120_000);

  afterAll(() => {
    serveAll?.kill();
    rmSync(base, { recursive: true, force: true });
  });

  const operator = (path: string, body?: unknown) =>
    fetch(`${url}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${OPERATOR}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

  it('pseudonym (unified, implicit): full lifecycle, status, and a second run continues', async () => {
    const state = join(base, 'obu1');
    const args = ['ee', 'simulate', '--ra', url, '--trust-root', rootHash, '--type', 'obu', '--cert', 'pseudonym', '--form', 'implicit', '--butterfly', 'unified', '--state', state];
    const r = await scms([...args, '--json'], { ...deviceEnv, SCMS_OPERATOR_TOKEN: OPERATOR });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const report = json(r);
    expect(report.complete).toBe(true);
    expect(report.steps.map((s: { step: string; status: string }) => `${s.step}:${s.status}`)).toEqual([
      'bootstrap:done',
      'register:done',
      'enroll:done',
      'request:done',
      'download:done',
      'use:done',
    ]);
    expect(report.deviceId).toMatch(/^[0-9a-f-]{36}$/);
    expect(report.enrollment.certificateType).toBe('implicit');
    expect(report.certificates.length).toBeGreaterThan(0);
    const ids = new Set<string>();
    for (const c of report.certificates) {
      expect(c.hashedId8).toMatch(/^[0-9a-f]{16}$/);
      expect(c.certificateType).toBe('implicit');
      expect(c.id).toBe('linkageData');
      expect(c.verified).toBe(true);
      expect(c.message).toMatchObject({ psid: 0x20, signed: true, verified: true });
      ids.add(c.hashedId8);
    }
    expect(ids.size).toBe(report.certificates.length);

    // Keys only in the encrypted keystore: no key file holds a plain scalar field.
    const keyFiles = readdirSync(join(state, 'keys')).filter((f) => f.endsWith('.key'));
    expect(keyFiles.length, keyFiles.join(' ')).toBe(report.certificates.length + 4); // canonical, enrollment, caterpillar, expansion key
    for (const f of keyFiles) expect(JSON.parse(readFileSync(join(state, 'keys', f), 'utf8')).cipher).toBeDefined();
    expect(existsSync(join(state, 'trust', 'ccf.oer'))).toBe(true);

    // The device is registered once and enrolled at the RA.
    const devices = (await (await operator(`/v3/devices?canonicalId=${report.canonicalId}`)).json()) as { devices: Array<{ deviceId: string; state: string }> };
    expect(devices.devices.map((d) => d.deviceId)).toEqual([report.deviceId]);

    // status shows the same certificates (no passphrase needed).
    const s = await scms(['ee', 'status', '--state', state, '--json']);
    expect(s.status, s.stderr).toBe(0);
    const status = json(s);
    expect(status.registration.deviceId).toBe(report.deviceId);
    expect(status.enrollment.hashedId8).toBe(report.enrollment.hashedId8);
    expect(status.certificates.map((c: { hashedId8: string }) => c.hashedId8).sort()).toEqual([...ids].sort());
    expect(status.certificates.every((c: { key: boolean }) => c.key)).toBe(true);
    const human = await scms(['ee', 'status', '--state', state]);
    expect(human.status).toBe(0);
    expect(human.stdout).toContain(report.enrollment.hashedId8);
    for (const id of ids) expect(human.stdout).toContain(id);

    // Second run (no flags but --state): nothing re-registered or re-enrolled, the certificates used again.
    const again = await scms(['ee', 'simulate', '--state', state, '--json'], { ...deviceEnv, SCMS_OPERATOR_TOKEN: OPERATOR });
    expect(again.status, again.stdout + again.stderr).toBe(0);
    const second = json(again);
    expect(second.steps.map((x: { step: string; status: string }) => `${x.step}:${x.status}`)).toEqual([
      'bootstrap:done',
      'register:already done',
      'enroll:already done',
      'request:already done',
      'download:already done',
      'use:done',
    ]);
    expect(second.enrollment.hashedId8).toBe(report.enrollment.hashedId8);
    expect(second.certificates.map((c: { hashedId8: string }) => c.hashedId8).sort()).toEqual([...ids].sort());
    const after = (await (await operator(`/v3/devices?canonicalId=${report.canonicalId}`)).json()) as { devices: unknown[] };
    expect(after.devices).toHaveLength(1);

    // The wrong passphrase cannot open the device's keys.
    const wrong = await scms(['ee', 'simulate', '--state', state], { SCMS_KEYSTORE_PASSPHRASE: 'not the device passphrase' });
    expect(wrong.status).toBe(2);
    expect(wrong.stderr).toMatch(/keystore/i);

    // A tampered state (the enrollment certificate swapped for a pseudonym certificate) is caught locally.
    const pseudonymFile = readdirSync(join(state, 'certs', 'pseudonym'))[0]!;
    copyFileSync(join(state, 'certs', 'pseudonym', pseudonymFile), join(state, 'certs', 'enrollment.oer'));
    const tampered = await scms(['ee', 'simulate', '--state', state, '--json'], deviceEnv);
    expect(tampered.status).toBe(1);
    expect(json(tampered).error).toMatchObject({ step: 'enroll', check: 'enrollment-chain' });
  }, 180_000);

  it('download time beyond --max-wait: pending (exit 0); the next run picks the batch up without a new request', async () => {
    const state = join(base, 'obu-pending');
    const first = await scms(
      ['ee', 'simulate', '--ra', url, '--trust-root', rootHash, '--type', 'obu', '--cert', 'pseudonym', '--form', 'explicit', '--butterfly', 'compact-unified', '--state', state, '--max-wait', '0', '--json'],
      { ...deviceEnv, SCMS_OPERATOR_TOKEN: OPERATOR },
    );
    // compact unified butterfly keys are for implicit certificates only: refused before anything is sent
    expect(first.status).toBe(2);
    expect(json(first).error.message).toMatch(/compact unified .* implicit/);
    expect(existsSync(join(state, 'state.json'))).toBe(false);

    const state2 = join(base, 'obu-pending2');
    const a = await scms(
      ['ee', 'simulate', '--ra', url, '--trust-root', rootHash, '--type', 'obu', '--cert', 'pseudonym', '--form', 'explicit', '--butterfly', 'original', '--state', state2, '--max-wait', '0', '--json'],
      { ...deviceEnv, SCMS_OPERATOR_TOKEN: OPERATOR },
    );
    expect(a.status, a.stdout + a.stderr).toBe(0);
    const pending = json(a);
    expect(pending.complete).toBe(false);
    expect(pending.pending).toBeDefined();
    expect(pending.steps.at(-1)).toMatchObject({ step: 'download', status: 'pending' });
    const status = json(await scms(['ee', 'status', '--state', state2, '--json']));
    expect(status.authorization.downloaded).toBeNull();
    expect(status.certificates).toEqual([]);

    const b = await scms(['ee', 'simulate', '--state', state2, '--json'], deviceEnv);
    expect(b.status, b.stdout + b.stderr).toBe(0);
    const done = json(b);
    expect(done.complete).toBe(true);
    expect(done.steps.find((x: { step: string }) => x.step === 'request').status).toBe('already done');
    expect(done.steps.find((x: { step: string }) => x.step === 'download').status).toBe('done');
    expect(done.certificates.length).toBeGreaterThan(0);
    for (const c of done.certificates) {
      expect(c.certificateType).toBe('explicit');
      expect(c.verified).toBe(true);
      expect(c.message.verified).toBe(true);
    }
  }, 180_000);

  it('RSU identification (non-butterfly, encrypted response): one certificate, message signed with its PSID', async () => {
    const state = join(base, 'rsu-none');
    const r = await scms(
      ['ee', 'simulate', '--ra', url, '--trust-root', rootHash, '--type', 'rsu', '--cert', 'identification', '--form', 'implicit', '--butterfly', 'none', '--encrypted', '--state', state, '--json'],
      { ...deviceEnv, SCMS_OPERATOR_TOKEN: OPERATOR },
    );
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const report = json(r);
    expect(report.complete).toBe(true);
    expect(report.certificates).toHaveLength(1);
    const c = report.certificates[0];
    expect(c.id).toBe('none');
    expect(c.psids).toEqual(['0x82', '0x83']);
    expect(c.verified).toBe(true);
    expect(c.message).toMatchObject({ psid: 0x82, signed: true, verified: true });
  }, 120_000);

  it('a request the policy refuses (RSU identification with unified butterfly keys): 400-32 named', async () => {
    const state = join(base, 'rsu-unified');
    const r = await scms(
      ['ee', 'simulate', '--ra', url, '--trust-root', rootHash, '--type', 'rsu', '--cert', 'identification', '--form', 'implicit', '--butterfly', 'unified', '--state', state],
      { ...deviceEnv, SCMS_OPERATOR_TOKEN: OPERATOR },
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/request: POST .*\/v3\/authorization-certificate: HTTP 400, Ieee-1609\.2\.1-Error 400-32: requested certificate type is not allowed — policy ra-butterflyType/);
    // The enrollment is kept: the device continues from there.
    expect(json(await scms(['ee', 'status', '--state', state, '--json'])).enrollment.hashedId8).toMatch(/^[0-9a-f]{16}$/);
  }, 120_000);

  it('batch not ready at the download time: 503 + Retry-After honoured, then downloaded', async () => {
    // A second server on the same trust directory whose worker is slower than its announced download time.
    const slow = await startScms(['all', '--trust', trustDir, '--data', join(base, 'data-slow'), '--port', '0', '--host', '127.0.0.1'], {
      ...process.env,
      SCMS_KEYSTORE_PASSPHRASE: PASS,
      SCMS_OPERATOR_TOKEN: OPERATOR,
      SCMS_RA_WORKER_POLL_MS: '2500',
      SCMS_RA_PROCESSING_DELAY_S: '0',
      SCMS_LOG_LEVEL: 'warn',
    });
    try {
      const r = await scms(['ee', 'simulate', '--ra', slow.out.url, '--trust-root', rootHash, '--state', join(base, 'obu-slow')], { ...deviceEnv, SCMS_OPERATOR_TOKEN: OPERATOR });
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toMatch(/\[download\] … not ready \(HTTP 503-99\); Retry-After \d+: retry in \d+ s/);
      expect(r.stdout).toMatch(/\[download\] ✔ \d+ certificates/);
      expect(r.stdout).toMatch(/device complete/);
    } finally {
      slow.child.kill('SIGTERM');
    }
  }, 120_000);

  it('human output: the steps, what was sent and received, HashedId8s', async () => {
    const state = join(base, 'obu-human');
    const r = await scms(
      ['ee', 'simulate', '--ra', url, '--trust-root', rootHash, '--type', 'obu', '--cert', 'pseudonym', '--form', 'explicit', '--butterfly', 'original', '--state', state, '--stop-after', 'enroll', '--verbose'],
      { ...deviceEnv, SCMS_OPERATOR_TOKEN: OPERATOR },
    );
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\[bootstrap\] ✔ CTL [0-9a-f]{16} #1 verified/);
    expect(r.stdout).toMatch(/\[register\] → POST .*\/v3\/devices/);
    expect(r.stdout).toMatch(/\[enroll\] → POST .*\/v3\/enrollment-certificate EeEcaCertRequestSpdu/);
    expect(r.stdout).toMatch(/\[enroll\] ✔ enrollment certificate [0-9a-f]{16} \(explicit/);
    expect(r.stdout).toMatch(/^ {6}[0-9a-f]{20,}/m); // --verbose SPDU dump: hex
    expect(r.stdout).toMatch(/^ {6}Ieee1609Dot2\S*\.\S+$/m); // ... and decoded like cert show: the type, then the tree
    expect(r.stdout).toMatch(/signedData/);
    expect(r.stdout).toMatch(/stopped/);

    // --json --verbose: the events carry the decoded SPDUs (codec JSON) beside the hex.
    const j = await scms(
      ['ee', 'simulate', '--ra', url, '--trust-root', rootHash, '--type', 'obu', '--cert', 'pseudonym', '--form', 'explicit', '--butterfly', 'original', '--state', join(base, 'obu-verbose-json'), '--stop-after', 'enroll', '--verbose', '--json'],
      { ...deviceEnv, SCMS_OPERATOR_TOKEN: OPERATOR },
    );
    expect(j.status, j.stdout + j.stderr).toBe(0);
    const events = (JSON.parse(j.stdout) as { events: Array<{ step: string; kind: string; spdu?: string; decoded?: { type?: string; value?: unknown; hex: string } }> }).events;
    const sent = events.find((e) => e.step === 'enroll' && e.kind === 'sent')!;
    expect(sent.decoded!.hex).toBe(sent.spdu);
    expect(sent.decoded!.type).toMatch(/^Ieee1609Dot2/);
    expect(JSON.stringify(sent.decoded!.value)).toContain('eeEcaCertRequest'); // decoded all the way into the request
  }, 120_000);

  it('a blocked device: enrollment refused, 403 and code 20 named, non-zero exit', async () => {
    const state = join(base, 'blocked');
    const first = await scms(
      ['ee', 'simulate', '--ra', url, '--trust-root', rootHash, '--type', 'obu', '--cert', 'pseudonym', '--form', 'implicit', '--butterfly', 'unified', '--state', state, '--stop-after', 'register', '--json'],
      { ...deviceEnv, SCMS_OPERATOR_TOKEN: OPERATOR },
    );
    expect(first.status, first.stdout + first.stderr).toBe(0);
    const deviceId = json(first).deviceId as string;
    const b = await operator(`/v3/devices/${deviceId}/block`, { reason: 'ee simulate test' });
    expect(b.status).toBe(200);

    const r = await scms(['ee', 'simulate', '--state', state, '--json'], deviceEnv);
    expect(r.status).toBe(1);
    const err = json(r).error;
    expect(err.step).toBe('enroll');
    expect(err.http).toMatchObject({ status: 403, code: 20 });
    expect(err.http.meaning).toMatch(/blocked/);
    const human = await scms(['ee', 'simulate', '--state', state], deviceEnv);
    expect(human.status).toBe(1);
    expect(human.stderr).toMatch(/HTTP 403, Ieee-1609\.2\.1-Error 403-20: the device .* is blocked/);
  }, 120_000);

  it('an unregistered canonical key (no operator token): 400-21 named', async () => {
    const state = join(base, 'unregistered');
    const r = await scms(['ee', 'simulate', '--ra', url, '--trust-root', rootHash, '--state', state, '--json'], deviceEnv);
    expect(r.status, r.stdout + r.stderr).toBe(1);
    const err = json(r).error;
    expect(err.step).toBe('enroll');
    expect(err.http.code).toBe(21);
    expect(err.http.meaning).toMatch(/unknown|not registered/);
  }, 120_000);

  it('a trust root the SCMS does not use: bootstrap fails on the CTL check', async () => {
    const state = join(base, 'wrong-root');
    const wrongRoot = rootHash.replace(/^./, (c) => (c === '0' ? '1' : '0'));
    const r = await scms(['ee', 'simulate', '--ra', url, '--trust-root', wrongRoot, '--state', state, '--json'], { ...deviceEnv, SCMS_OPERATOR_TOKEN: OPERATOR });
    expect(r.status).toBe(1);
    const err = json(r).error;
    expect(err.step).toBe('bootstrap');
    expect(err.check).toBe('ctl');
    expect(err.message).toMatch(/no root approved by CTL .* is one the EE trusts/);
    // Nothing was registered (nor kept) on the strength of untrusted files.
    expect(existsSync(join(state, 'state.json'))).toBe(false);
  }, 60_000);

  it('the RA unreachable: named, non-zero exit', async () => {
    const state = join(base, 'unreachable');
    // A port nobody listens on: bind one, then close it.
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as AddressInfo).port;
    await new Promise((r) => srv.close(r));
    const r = await scms(['ee', 'simulate', '--ra', `http://127.0.0.1:${port}`, '--trust-root', rootHash, '--state', state]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/unreachable \(ECONNREFUSED\)/);
  }, 60_000);

  it('status of a directory that is not a device state: exit 2', async () => {
    const r = await scms(['ee', 'status', '--state', join(base, 'nothing-here')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/not an EE state directory/);
  });
});
