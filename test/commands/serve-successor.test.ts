// Successor enrollment end to end: a real `scms serve all` child process (node bin/run.js; the dist/ build from
// `npx tsc -p .`) and `scms ee simulate --successor` / `ee status` as real processes. The new enrollment
// certificate differs from the old one, chains to the root, matches the key in the device keystore, and the next
// `ee simulate` run sends its authorization request signed with it (the RA accepts it: the device knows it).
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../src/crypto/bytes.js';
import { EeStateDir } from '../../src/engine/ee/state.js';
import { loadTrustDir } from '../../src/engine/manager/trust-dir.js';
import { certificateHashedId8, certificateKeyPairMatches, decodeCertificate } from '../../src/security/certificate.js';
import { verifyCertificateChain } from '../../src/security/chain.js';
import { systemClock } from '../../src/security/time.js';
import { startServeAll } from '../helpers/serve-all.js';
import { bin, type Started } from './serve-flow-helpers.js';

const PASS = 'serve successor test: scms passphrase';
const DEVICE_PASS = 'serve successor test: device passphrase';
const OPERATOR = 'operator-token-serve-successor-test-01';
/**
 * ra-minWait of this test's global policy (the template placeholder raMinWait, default 60): the second run's
 * authorization request must come at least this long after the first run's, which the test waits out for real.
 */
const RA_MIN_WAIT = 3;
/** eca-minWait (placeholder ecaMinWait, default 10): `ee simulate --successor` waits it out after its enrollment. */
const ECA_MIN_WAIT = 3;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

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
const steps = (rep: { steps: Array<{ step: string; status: string }> }) => rep.steps.map((s) => `${s.step}:${s.status}`);

describe('successor enrollment: scms serve all + ee simulate --successor', () => {
  let base: string;
  let trustDir: string;
  let rootHash: string;
  let server: Started | undefined;
  const deviceEnv = { SCMS_KEYSTORE_PASSPHRASE: DEVICE_PASS, SCMS_OPERATOR_TOKEN: OPERATOR };

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'scms-successor-'));
    const running = await startServeAll({ base, passphrase: PASS, operatorToken: OPERATOR, init: { globalPolicyValues: { raMinWait: RA_MIN_WAIT, ecaMinWait: ECA_MIN_WAIT } } });
    trustDir = running.trustDir;
    rootHash = running.rootHash;
    server = running.started;
    const policy = loadTrustDir(trustDir).globalPolicy!.json;
    expect([policy['ra-minWait'], policy['eca-minWait']]).toEqual([RA_MIN_WAIT, ECA_MIN_WAIT]);
  }, 120_000);

  afterAll(() => {
    if (server && server.child.exitCode === null) server.child.kill('SIGKILL');
    rmSync(base, { recursive: true, force: true });
  });

  it('switches the device to a new enrollment certificate; the next run requests certificates with it', async () => {
    expect(server!.out.components).toEqual(['ra', 'eca']);
    const url = server!.out.url;
    const state = join(base, 'obu');
    const args = ['ee', 'simulate', '--ra', url, '--trust-root', rootHash, '--type', 'obu', '--cert', 'pseudonym', '--form', 'implicit', '--butterfly', 'unified', '--state', state];
    const r = await scms([...args, '--successor', '--json'], deviceEnv);
    const firstDone = Date.now(); // after the first run's authorization request
    expect(r.status, `${r.stdout}\n${r.stderr}\nserver:\n${server!.stderr()}`).toBe(0);
    const first = json(r);
    expect(steps(first)).toEqual(['bootstrap:done', 'register:done', 'enroll:done', 'request:done', 'download:done', 'use:done', 'successor:done']);
    const oldEnrollment = (first.steps as Array<{ step: string; detail: string }>).find((s) => s.step === 'enroll')!.detail.match(/[0-9a-f]{16}/)![0];
    const newEnrollment = first.enrollment.hashedId8 as string;
    expect(newEnrollment).toMatch(/^[0-9a-f]{16}$/);
    expect(newEnrollment).not.toBe(oldEnrollment);
    expect(first.enrollment.certificateType).toBe('implicit');

    // The state: the new certificate chains to the root and matches the new key in the device keystore.
    const sd = new EeStateDir(state, { passphrase: DEVICE_PASS });
    try {
      const st = sd.load();
      expect(st.enrollment!.hashedId8).toBe(newEnrollment);
      expect(st.authorization).toBeUndefined();
      expect(st.certificates).toEqual([]);
      const cert = decodeCertificate(readFileSync(join(state, st.enrollment!.file)));
      expect(toHex(certificateHashedId8(cert))).toBe(newEnrollment);
      const issuers = readdirSync(join(state, 'certs'))
        .filter((f) => /^enrollment-issuer-\d+\.oer$/.test(f))
        .sort()
        .map((f) => decodeCertificate(readFileSync(join(state, 'certs', f))));
      const root = loadTrustDir(trustDir).byName.get('root')!.certificate!;
      const v = verifyCertificateChain([cert, ...issuers], { trustAnchors: [root], clock: systemClock });
      expect(v.ok, v.ok ? '' : JSON.stringify(v.errors)).toBe(true);
      expect(certificateKeyPairMatches(cert, await sd.getScalar(st.enrollment!.keyUri), issuers)).toBe(true);
      const oldCert = decodeCertificate(readFileSync(join(state, 'certs', 'enrollment.oer')));
      expect(toHex(certificateHashedId8(oldCert))).toBe(oldEnrollment);
      expect(certificateKeyPairMatches(oldCert, await sd.getScalar(st.enrollment!.keyUri), issuers)).toBe(false);
    } finally {
      await sd.close();
    }

    // ee status prints the new enrollment certificate.
    const s = await scms(['ee', 'status', '--state', state, '--json']);
    expect(s.status, s.stderr).toBe(0);
    expect(json(s).enrollment.hashedId8).toBe(newEnrollment);

    // Second run: a new authorization request signed with the new enrollment certificate, downloaded and used.
    // The RA counts ra-minWait (RA_MIN_WAIT s in this policy) per device since the first run's request: wait it out.
    await new Promise((res) => setTimeout(res, Math.max(0, firstDone + (RA_MIN_WAIT + 1) * 1000 - Date.now())));
    const again = await scms(['ee', 'simulate', '--state', state, '--json', '--verbose'], deviceEnv);
    expect(again.status, `${again.stdout}\n${again.stderr}\nserver:\n${server!.stderr()}`).toBe(0);
    const second = json(again);
    expect(steps(second)).toEqual(['bootstrap:done', 'register:already done', 'enroll:already done', 'request:done', 'download:done', 'use:done']);
    expect(second.enrollment.hashedId8).toBe(newEnrollment);
    expect(second.certificates.length).toBeGreaterThan(0);
    expect(second.certificates.every((c: { verified: boolean; message: { verified: boolean } }) => c.verified && c.message.verified)).toBe(true);
    // The authorization request was signed with the new enrollment certificate (SignerSingleCert; the RA
    // accepted it, so the RA knows the new certificate as the device's).
    const sent = (second.events as Array<{ step: string; kind: string; message: string }>).find((e) => e.step === 'request' && e.kind === 'sent')!;
    expect(sent.message).toContain(`signed with enrollment certificate ${newEnrollment}`);
    expect(sent.message).not.toContain(oldEnrollment);
  }, 240_000);
});
