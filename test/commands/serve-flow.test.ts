// `scms serve all` as a real child process (node bin/run.js; the dist/ build from `npx tsc -p .`), driven over HTTP
// only: register, bootstrap, enroll, request pseudonym certificates, download, reconstruct, verify, sign.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ieee1609Dot2Data as Ieee1609Dot2DataCodec, type Certificate } from '../../src/codec/index.js';
import type { EeRaCertRequest } from '../../src/codec/gen/Ieee1609Dot2Dot1EeRaInterface.js';
import { toHex } from '../../src/crypto/bytes.js';
import {
  batchFilename,
  buildAuthorizationRequest,
  buildDownloadRequest,
  processAuthorizationAck,
  processAuthorizationBatch,
} from '../../src/engine/ee/authorization-client.js';
import { bootstrapTrust, type TrustStore } from '../../src/engine/ee/bootstrap.js';
import { createButterflyRequest } from '../../src/engine/ee/butterfly.js';
import { buildEnrollmentRequest, processEnrollmentResponse } from '../../src/engine/ee/enroll.js';
import { compressedPublicKey, generateKeyPair, keyPairSigner } from '../../src/engine/ee/keys.js';
import { initTrustDir } from '../../src/engine/manager/init.js';
import { roleOfSsp, SECURITY_MGMT_PSID } from '../../src/engine/manager/profiles.js';
import { loadTrustDir } from '../../src/engine/manager/trust-dir.js';
import { certificateHashedId8, certificateKeyPairMatches, certificatePublicKey, isIssuedBy, isSelfSigned } from '../../src/security/certificate.js';
import { verifyCertificateChain } from '../../src/security/chain.js';
import { scalarSigner } from '../../src/security/signer.js';
import { signData, verifySignedData } from '../../src/security/spdu.js';
import { ManualClock, nowTime32, systemClock } from '../../src/security/time.js';

const bin = new URL('../../bin/run.js', import.meta.url).pathname;
const PASS = 'serve flow test passphrase';
const OPERATOR = 'operator-token-serve-flow-000001';
const BSM_PSID = 0x20;
const clock = systemClock;

function startServe(args: string[], env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; out: { url: string; warnings: string[] }; stderr: () => string }> {
  const child = spawn(process.execPath, [bin, 'serve', 'all', ...args, '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no address within 30 s; stderr:\n${stderr}`)), 30_000);
    child.stdout!.on('data', (d) => {
      stdout += d;
      try {
        const out = JSON.parse(stdout);
        clearTimeout(timer);
        resolve({ child, out, stderr: () => stderr });
      } catch {
        // not complete yet
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before listening; stdout:\n${stdout}\nstderr:\n${stderr}`));
    });
  });
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    child.on('exit', (code) => resolve(code));
  });
}

const bytes = async (r: Response) => new Uint8Array(await r.arrayBuffer());
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The CCF's ACA certificates (security-management SSP role 'aca') with their issuer chains. */
function acaChainsOf(trust: TrustStore): Certificate[][] {
  const pool = [...trust.certificates, ...trust.trustAnchors];
  const out: Certificate[][] = [];
  for (const c of trust.certificates) {
    const ssp = c.toBeSigned.appPermissions?.find((p) => BigInt(p.psid) === SECURITY_MGMT_PSID)?.ssp as { opaque?: Uint8Array } | undefined;
    if (!ssp?.opaque || roleOfSsp(ssp.opaque) !== 'aca') continue;
    const chain = [c];
    for (let cur = c; !isSelfSigned(cur) && chain.length < 8; ) {
      const issuer = pool.find((p) => p !== cur && isIssuedBy(cur, p));
      if (!issuer) break;
      chain.push(issuer);
      cur = issuer;
    }
    out.push(chain);
  }
  return out;
}

describe('scms serve all: the whole EE flow over HTTP (child process)', () => {
  let base: string;
  let dir: string;
  let child: ChildProcess | undefined;

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'scms-serve-flow-'));
    dir = join(base, 'scms');
    await initTrustDir({
      dir,
      keystore: 'file',
      keyStoreOptions: { passphrase: PASS, scrypt: { N: 1024 } },
      electors: 1,
      quorum: 1,
      clock: new ManualClock(new Date(Date.now() - 60_000).toISOString()),
    });
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
    const started = await startServe(['--trust', dir, '--data', data, '--port', '0', '--host', '127.0.0.1'], env);
    child = started.child;
    const { url, warnings } = started.out;
    expect(warnings).toEqual([]);
    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.text()).toMatch(/la1\.db[\s\S]*la2\.db[\s\S]*aca\.db/);

    // Bootstrap against the root the device was provisioned with.
    const td = loadTrustDir(dir);
    const trust = await bootstrapTrust({ raUrl: url, trustedRootHashes: [toHex(certificateHashedId8(td.byName.get('root')!.certificate!))], clock });
    const policy = trust.globalPolicy.policy;

    // Register the canonical key with the operator token.
    const canonical = generateKeyPair('nistP256');
    const reg = await fetch(`${url}/v3/devices`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${OPERATOR}` },
      body: JSON.stringify({ deviceType: 'obu', canonicalPublicKey: toHex(compressedPublicKey('nistP256', canonical.publicKey)) }),
    });
    expect(reg.status, await reg.clone().text()).toBe(201);

    // Enroll (implicit enrollment certificate).
    const enrollPsids = (policy.deviceTypes.OBU?.enrollment ?? []).map((a) => Number(a.psid));
    expect(enrollPsids.length).toBeGreaterThan(0);
    const er = await buildEnrollmentRequest({ canonicalKey: keyPairSigner(canonical), type: 'implicit', psids: enrollPsids, validity: { durationSeconds: 30 * 86_400 }, clock });
    const enrollRes = await fetch(`${url}/v3/enrollment-certificate`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from(er.spdu) });
    expect(enrollRes.status, enrollRes.headers.get('ieee-1609.2.1-error') ?? '').toBe(200);
    const e = processEnrollmentResponse(await bytes(enrollRes), er.state, { trustAnchors: trust.trustAnchors, clock });
    const enrollment = { certificate: e.certificate, signer: e.signer };

    // Pseudonym request: original butterfly, implicit certificates.
    const psids = (policy.deviceTypes.OBU?.pseudonym ?? []).map((p) => BigInt(p.psid));
    expect(psids).toContain(BigInt(BSM_PSID));
    const hours = Math.max(1, Math.ceil(policy['time-iPeriodLength'] / 3600));
    const { request, secrets } = createButterflyRequest({
      variant: 'original',
      type: 'implicit',
      tbsCert: { validityPeriod: { start: nowTime32(clock), duration: { hours } }, appPermissions: psids.map((psid) => ({ psid })) },
      clock,
    });
    const { spdu, requestHash } = await buildAuthorizationRequest({ request: request as EeRaCertRequest, enrollment, raCertificate: trust.raCertificate });
    const ackRes = await fetch(`${url}/v3/authorization-certificate`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from(spdu) });
    expect(ackRes.status, ackRes.headers.get('ieee-1609.2.1-error') ?? '').toBe(200);
    const ack = processAuthorizationAck(await bytes(ackRes), { raCertificate: trust.raCertificate, requestHash });
    expect(ack.nextDlTime - nowTime32(clock)).toBeLessThanOrEqual(2); // SCMS_RA_PROCESSING_DELAY_S

    // Download: 503 + Retry-After until the worker has run (bounded).
    const filename = batchFilename(requestHash, ack.firstI ?? 0);
    let zip: Uint8Array | undefined;
    const deadline = Date.now() + 30_000;
    while (!zip) {
      const header = await buildDownloadRequest({ filename, enrollment, raCertificate: trust.raCertificate, clock });
      const r = await fetch(`${url}/v3/authorization-certificate?filename=${encodeURIComponent(filename)}`, { headers: { 'ieee-1609.2.1-authorization': header } });
      if (r.status === 200) {
        zip = await bytes(r);
        break;
      }
      expect([503, 429], `${r.status} ${r.headers.get('ieee-1609.2.1-error')} ${await r.text()}`).toContain(r.status);
      const retryAfter = Number(r.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(Date.now() + retryAfter * 1000, `not ready within 30 s; stderr:\n${started.stderr()}`).toBeLessThan(deadline);
      await sleep(retryAfter * 1000);
    }

    // Unzip, decrypt, reconstruct: every certificate chains to the root and its key pair matches.
    const chains = acaChainsOf(trust);
    expect(chains).toHaveLength(1);
    const acaChain = chains[0]!;
    const batch = await processAuthorizationBatch(zip, { secrets, requestHash, acaChain, trustAnchors: trust.trustAnchors, clock });
    expect(batch.certificates.length).toBe(policy['time-baseCertNumber']);
    expect(batch.certificates.length).toBeGreaterThan(0);
    for (const c of batch.certificates) {
      expect(c.i).toBe(ack.firstI);
      expect(c.certificate.type).toBe('implicit');
      expect(isIssuedBy(c.certificate, acaChain[0]!)).toBe(true);
      const v = verifyCertificateChain([c.certificate, ...acaChain], { trustAnchors: trust.trustAnchors, clock, skipCurrentValidity: true });
      expect(v.ok, v.ok ? '' : JSON.stringify(v.errors)).toBe(true);
      expect(certificateKeyPairMatches(c.certificate, c.privateKey, acaChain)).toBe(true);
    }
    expect(new Set(batch.certificates.map((c) => toHex(certificateHashedId8(c.certificate)))).size).toBe(batch.certificates.length);

    // Sign a BSM-style message with one pseudonym certificate and verify it.
    const pc = batch.certificates[0]!;
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
