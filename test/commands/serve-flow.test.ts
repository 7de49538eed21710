// `scms serve all` as a real child process (node bin/run.js; the dist/ build from `npx tsc -p .`), driven over HTTP
// only: register, bootstrap, enroll, request pseudonym certificates, download, reconstruct, verify, sign.
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ieee1609Dot2Data as Ieee1609Dot2DataCodec } from '../../src/codec/index.js';
import { toHex } from '../../src/crypto/bytes.js';
import { certificateHashedId8, certificatePublicKey } from '../../src/security/certificate.js';
import { scalarSigner } from '../../src/security/signer.js';
import { signData, verifySignedData } from '../../src/security/spdu.js';
import { nowTime32, systemClock } from '../../src/security/time.js';
import { initTestTrustDir } from '../helpers/trust-dir.js';
import { acaChainsOf, downloadBatch, exitOf, onboardEe, requestPseudonyms, startScms, verifyBatch } from './serve-flow-helpers.js';

const PASS = 'serve flow test passphrase';
const OPERATOR = 'operator-token-serve-flow-000001';
const BSM_PSID = 0x20;
const clock = systemClock;

describe('scms serve all: the whole EE flow over HTTP (child process)', () => {
  let base: string;
  let dir: string;
  let child: ChildProcess | undefined;

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'scms-serve-flow-'));
    dir = join(base, 'scms');
    await initTestTrustDir(dir, PASS);
  }, 120_000);
  afterAll(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    rmSync(base, { recursive: true, force: true });
  });

  it('register -> bootstrap -> enroll -> pseudonym request -> download -> keys match, chains verify, a BSM signs; SIGTERM exits 0', async () => {
    const env = {
      ...process.env,
      SCMS_KEYSTORE_PASSPHRASE: PASS,
      SCMS_OPERATOR_TOKEN: OPERATOR,
      SCMS_RA_PROCESSING_DELAY_S: '1',
      SCMS_RA_WORKER_POLL_MS: '100',
    };
    const data = join(base, 'data');
    const started = await startScms(['all', '--trust', dir, '--data', data, '--port', '0', '--host', '127.0.0.1'], env);
    child = started.child;
    const { url, warnings } = started.out;
    expect(warnings).toEqual([]);
    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.text()).toMatch(/la1\.db[\s\S]*la2\.db[\s\S]*aca\.db/);

    // Bootstrap against the root the device was provisioned with, register the canonical key with the operator
    // token, enroll (implicit enrollment certificate).
    const ee = await onboardEe(url, url, dir, OPERATOR);
    const policy = ee.trust.globalPolicy.policy;

    // Pseudonym request: original butterfly, implicit certificates, BSM among the PSIDs.
    expect((policy.deviceTypes.OBU?.pseudonym ?? []).map((p) => BigInt(p.psid))).toContain(BigInt(BSM_PSID));
    const req = await requestPseudonyms(url, ee);
    expect(req.nextDlTime - nowTime32(clock)).toBeLessThanOrEqual(2); // SCMS_RA_PROCESSING_DELAY_S

    // Download (503 + Retry-After until the worker has run), unzip, decrypt, reconstruct: every certificate chains to
    // the root and its key pair matches.
    const zip = await downloadBatch(url, ee, req, started.stderr);
    expect(policy['time-baseCertNumber']).toBeGreaterThan(0);
    const certificates = await verifyBatch(zip, ee, req, policy['time-baseCertNumber']);
    const acaChain = acaChainsOf(ee.trust)[0]!;

    // Sign a BSM-style message with one pseudonym certificate and verify it.
    const pc = certificates[0]!;
    const pk = certificatePublicKey(pc.certificate, acaChain);
    const payload = new TextEncoder().encode('BSM-style test message');
    const signed = Ieee1609Dot2DataCodec.encode(
      await signData({ payload, psid: BSM_PSID, signer: scalarSigner(pk.curve, pc.privateKey, pk.publicKey), signerId: { certificate: pc.certificate }, clock }),
    );
    const id = toHex(certificateHashedId8(pc.certificate));
    const check = verifySignedData(signed, {
      expectedPsid: BSM_PSID,
      clock,
      maxAgeSeconds: 30,
      resolveSigner: (sid) => ('certificate' in sid && sid.certificate.length === 1 && toHex(certificateHashedId8(sid.certificate[0]!)) === id ? { certificate: pc.certificate, publicKey: pk } : undefined),
    });
    expect(check.ok, check.ok ? '' : check.reason).toBe(true);
    if (check.ok) expect(Buffer.from(check.payload).equals(Buffer.from(payload))).toBe(true);

    child.kill('SIGTERM');
    expect(await exitOf(child)).toBe(0);
    for (const f of ['ra.db', 'eca.db', 'aca.db', 'la1.db', 'la2.db']) expect(existsSync(join(data, f)), f).toBe(true);
  }, 120_000);
});
