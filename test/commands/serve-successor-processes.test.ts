// Successor enrollment across processes: `scms serve ra --peer eca=URL` and `scms serve eca --peer ra=URL` as
// separate children (the dist/ build), the RA's worker reaching the ECA's component-token route
// /internal/eca/successor-enrollment. The EE speaks HTTP only: onboard, then the successor request at the RA.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { toHex } from '../../src/crypto/bytes.js';
import { buildDownloadRequest } from '../../src/engine/ee/authorization-client.js';
import { buildSuccessorEnrollmentRequest, processSuccessorAck, processSuccessorResponse, successorDownloadFilename } from '../../src/engine/ee/successor.js';
import { initTrustDir } from '../../src/engine/manager/init.js';
import { certificateHashedId8, certificateKeyPairMatches } from '../../src/security/certificate.js';
import { verifyCertificateChain } from '../../src/security/chain.js';
import { ManualClock, systemClock } from '../../src/security/time.js';
import { onboardEe, sleep, startScms } from './serve-flow-helpers.js';

const PASS = 'serve successor procs test passphrase';
const OPERATOR = 'operator-token-successor-procs-01';
const COMPONENT = 'component-token-successor-procs-1';
const PATH = '/v3/successor-enrollment-certificate';

let base: string;
let trustDir: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), 'scms-successor-procs-'));
  trustDir = join(base, 'scms');
  await initTrustDir({
    dir: trustDir,
    keystore: 'file',
    keyStoreOptions: { passphrase: PASS, scrypt: { N: 1024 } },
    electors: 1,
    quorum: 1,
    // eca-minWait 2 s (template default 10): the test waits it out between the enrollment and the successor request.
    globalPolicyValues: { ecaMinWait: 2 },
    clock: new ManualClock(new Date(Date.now() - 60_000).toISOString()),
  });
}, 120_000);

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(base, { recursive: true, force: true });
});

/** A free local port (the ECA's, so the RA can be told it before the ECA starts). */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

it('serve ra + serve eca: the RA forwards the successor request to the ECA peer over HTTP', async () => {
  const env = {
    ...process.env,
    SCMS_KEYSTORE_PASSPHRASE: PASS,
    SCMS_OPERATOR_TOKEN: OPERATOR,
    SCMS_COMPONENT_TOKEN: COMPONENT,
    SCMS_RA_PROCESSING_DELAY_S: '1',
    SCMS_RA_WORKER_POLL_MS: '100',
    SCMS_LOG_LEVEL: 'warn',
  };
  const data = join(base, 'data');
  const ecaPort = await freePort();
  const ecaUrl = `http://127.0.0.1:${ecaPort}`;
  const ra = await startScms(['ra', '--peer', `eca=${ecaUrl}`, '--trust', trustDir, '--data', data, '--port', '0', '--host', '127.0.0.1'], env);
  children.push(ra.child);
  const eca = await startScms(['eca', '--peer', `ra=${ra.out.url}`, '--trust', trustDir, '--data', data, '--port', String(ecaPort), '--host', '127.0.0.1'], env);
  children.push(eca.child);
  expect(eca.out.url).toBe(ecaUrl);
  const diagnostics = () => `ra:\n${ra.stderr()}\neca:\n${eca.stderr()}`;

  // The ECA's internal route wants the component token.
  for (const auth of [undefined, 'Bearer not-the-token']) {
    const r = await fetch(`${ecaUrl}/internal/eca/successor-enrollment`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) },
      body: '{}',
    });
    expect(r.status).toBe(401);
    await r.body?.cancel();
  }

  const ee = await onboardEe(ra.out.url, ecaUrl, trustDir, OPERATOR);
  await sleep((ee.trust.globalPolicy.policy['eca-minWait'] + 1) * 1000); // the ECA counts the successor like an enrollment
  const policy = ee.trust.globalPolicy.policy;
  const { spdu, state } = await buildSuccessorEnrollmentRequest({
    current: ee.enrollment,
    raCertificate: ee.trust.raCertificate,
    type: 'implicit',
    psids: (policy.deviceTypes.OBU?.enrollment ?? []).map((a) => Number(a.psid)),
    validity: { durationSeconds: 30 * 86_400 },
    clock: systemClock,
  });
  const post = await fetch(`${ra.out.url}${PATH}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from(spdu) });
  expect(post.status, `${post.headers.get('ieee-1609.2.1-error')} ${diagnostics()}`).toBe(200);
  processSuccessorAck(new Uint8Array(await post.arrayBuffer()), { raCertificate: ee.trust.raCertificate, requestHash: state.requestHash });

  const filename = successorDownloadFilename(state.requestHash);
  let file: Uint8Array | undefined;
  const deadline = Date.now() + 30_000;
  while (!file) {
    const header = await buildDownloadRequest({ filename, enrollment: ee.enrollment, raCertificate: ee.trust.raCertificate, clock: systemClock });
    const r = await fetch(`${ra.out.url}${PATH}?filename=${filename}`, { headers: { 'ieee-1609.2.1-authorization': header } });
    if (r.status === 200) file = new Uint8Array(await r.arrayBuffer());
    else {
      // Not ready (503) or too soon after the previous download request (429-76, download-minWait): Retry-After.
      expect([503, 429], `${r.headers.get('ieee-1609.2.1-error')} ${await r.text()}\n${diagnostics()}`).toContain(r.status);
      const retryAfter = Number(r.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(Date.now() + retryAfter * 1000, diagnostics()).toBeLessThan(deadline);
      await sleep(retryAfter * 1000);
    }
  }
  const next = processSuccessorResponse(file, state, { trustAnchors: ee.trust.trustAnchors, clock: systemClock });
  expect(toHex(certificateHashedId8(next.certificate))).not.toBe(toHex(certificateHashedId8(ee.enrollment.certificate)));
  const v = verifyCertificateChain([next.certificate, ...next.chain], { trustAnchors: ee.trust.trustAnchors, clock: systemClock });
  expect(v.ok).toBe(true);
  expect(certificateKeyPairMatches(next.certificate, next.privateKey, next.chain)).toBe(true);
}, 120_000);
