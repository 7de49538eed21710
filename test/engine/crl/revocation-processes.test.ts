// Revocation across processes: `scms serve la1 | la2 | aca | ra | eca` as five children (node bin/run.js; the dist/
// build from `npx tsc -p .`), SQLite. The RA gets the linkage seeds from the LA peers over HTTP
// (POST /internal/la/revocation-seed); the enrollment certificate is named by the operator (the ECA is another
// process). The EE check then matches the revoked device's certificates and none of the other's.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Certificate } from '../../../src/codec/index.js';
import { toHex } from '../../../src/crypto/bytes.js';
import { fetchCompositeCrls } from '../../../src/engine/ee/crl.js';
import { certificateHashedId8, encodeCertificate } from '../../../src/security/certificate.js';
import { systemClock } from '../../../src/security/time.js';
import { downloadBatch, exitOf, onboardEe, requestPseudonyms, startScms, verifyBatch, type Ee, type Started } from '../../commands/serve-flow-helpers.js';
import { initTestTrustDir } from '../../helpers/trust-dir.js';

const PASS = 'revocation processes test passphrase';
const OPERATOR = 'operator-token-revocation-procs-1';
const COMPONENT = 'component-token-revocation-procs-1';

describe('revocation with serve ra and the LAs as separate processes', () => {
  let base: string;
  let trustDir: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'scms-revocation-procs-'));
    trustDir = join(base, 'scms');
    await initTestTrustDir(trustDir, PASS);
  }, 120_000);
  afterAll(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    rmSync(base, { recursive: true, force: true });
  });

  it('revokes a device: seeds from the LA peers, the operator names the enrollment certificate', async () => {
    const env = {
      ...process.env,
      SCMS_KEYSTORE_PASSPHRASE: PASS,
      SCMS_OPERATOR_TOKEN: OPERATOR,
      SCMS_COMPONENT_TOKEN: COMPONENT,
      SCMS_RA_PROCESSING_DELAY_S: '1',
      SCMS_RA_WORKER_POLL_MS: '100',
    };
    const common = ['--trust', trustDir, '--data', join(base, 'data'), '--port', '0', '--host', '127.0.0.1'];
    const start = async (args: string[]): Promise<Started> => {
      const s = await startScms([...args, ...common], env);
      children.push(s.child);
      return s;
    };
    const [la1, la2] = await Promise.all([start(['la', '--name', 'la1']), start(['la', '--name', 'la2'])]);
    const aca = await start(['aca', '--peer', `la1=${la1.out.url}`, '--peer', `la2=${la2.out.url}`]);
    const ra = await start(['ra', '--peer', `la1=${la1.out.url}`, '--peer', `la2=${la2.out.url}`, '--peer', `aca=${aca.out.url}`]);
    const eca = await start(['eca', '--peer', `ra=${ra.out.url}`]);
    for (const p of [la1, la2, aca, ra, eca]) expect(p.out.warnings).toEqual([]);
    const diagnostics = () => [la1, la2, aca, ra, eca].map((p) => p.stderr()).join('\n---\n');

    const device = async (): Promise<{ ee: Ee; pseudonyms: Certificate[] }> => {
      const ee = await onboardEe(ra.out.url, eca.out.url, trustDir, OPERATOR);
      const req = await requestPseudonyms(ra.out.url, ee);
      const zip = await downloadBatch(ra.out.url, ee, req, diagnostics);
      const certs = await verifyBatch(zip, ee, req, ee.trust.globalPolicy.policy['time-baseCertNumber']);
      return { ee, pseudonyms: certs.map((c) => c.certificate) };
    };
    const a = await device();
    const b = await device();

    const auth = { authorization: `Bearer ${OPERATOR}` };
    const list = (await (await fetch(`${ra.out.url}/v3/devices?limit=100`, { headers: auth })).json()) as { devices: Array<{ deviceId: string }> };
    const aId = toHex(certificateHashedId8(a.ee.enrollment.certificate));
    let deviceId: string | undefined;
    for (const d of list.devices) {
      const full = (await (await fetch(`${ra.out.url}/v3/devices/${d.deviceId}`, { headers: auth })).json()) as { certificates: Array<{ hashedId8: string }> };
      if (full.certificates.some((c) => c.hashedId8 === aId)) deviceId = d.deviceId;
    }
    expect(deviceId).toBeDefined();
    const res = await fetch(`${ra.out.url}/v3/devices/${deviceId}/revoke`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'misbehaviour', certificates: [toHex(encodeCertificate(a.ee.enrollment.certificate))] }),
    });
    expect(res.status, `${await res.clone().text()}\n${diagnostics()}`).toBe(200);
    const body = (await res.json()) as { hashEntries: Array<{ kind: string }>; linkage?: { la1Id: number; la2Id: number } };
    expect(body.hashEntries.map((e) => e.kind)).toEqual(['enrollment']);
    expect(body.linkage).toMatchObject({ la1Id: 1, la2Id: 2 });

    const check = await fetchCompositeCrls({ raUrl: ra.out.url, trust: a.ee.trust, clock: systemClock });
    for (const c of a.pseudonyms) expect(check.isRevoked(c)).toMatchObject({ revoked: true, by: 'linkage' });
    for (const c of b.pseudonyms) expect(check.isRevoked(c)).toEqual({ revoked: false });
    expect(check.isRevoked(a.ee.enrollment.certificate)).toMatchObject({ revoked: true, by: 'hash' });
    expect(check.isRevoked(b.ee.enrollment.certificate)).toEqual({ revoked: false });

    for (const p of [la1, la2, aca, ra, eca]) p.child.kill('SIGTERM');
    for (const p of [la1, la2, aca, ra, eca]) expect(await exitOf(p.child)).toBe(0);
  }, 180_000);
});
