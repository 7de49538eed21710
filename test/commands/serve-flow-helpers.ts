// Shared by the serve process tests: spawn `scms serve <target>` (node bin/run.js; the dist/ build from
// `npx tsc -p .`) and drive an EE over HTTP only: register, bootstrap, enroll, request pseudonym certificates,
// download, reconstruct, verify.
import { spawn, type ChildProcess } from 'node:child_process';
import { expect } from 'vitest';
import type { Certificate } from '../../src/codec/index.js';
import type { EeRaCertRequest } from '../../src/codec/gen/Ieee1609Dot2Dot1EeRaInterface.js';
import { toHex } from '../../src/crypto/bytes.js';
import { batchFilename, buildAuthorizationRequest, buildDownloadRequest, processAuthorizationAck, processAuthorizationBatch } from '../../src/engine/ee/authorization-client.js';
import type { AuthorizationCertificate } from '../../src/engine/ee/authorization.js';
import { bootstrapTrust, type TrustStore } from '../../src/engine/ee/bootstrap.js';
import { createButterflyRequest, type ButterflySecrets } from '../../src/engine/ee/butterfly.js';
import { buildEnrollmentRequest, processEnrollmentResponse } from '../../src/engine/ee/enroll.js';
import { compressedPublicKey, generateKeyPair, keyPairSigner } from '../../src/engine/ee/keys.js';
import { roleOfSsp, SECURITY_MGMT_PSID } from '../../src/engine/manager/profiles.js';
import { loadTrustDir } from '../../src/engine/manager/trust-dir.js';
import { certificateHashedId8, certificateKeyPairMatches, isIssuedBy } from '../../src/security/certificate.js';
import { chainOf, verifyCertificateChain } from '../../src/security/chain.js';
import { nowTime32, systemClock } from '../../src/security/time.js';

export const bin = new URL('../../bin/run.js', import.meta.url).pathname;
const clock = systemClock;

export interface Started {
  child: ChildProcess;
  out: { url: string; port: number; components: string[]; warnings: string[] };
  stderr: () => string;
}

/** Spawns `scms serve <args> --json`. */
export function spawnScms(args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, [bin, 'serve', ...args, '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Spawns `scms serve <args> --json` and resolves with the bound address once it is printed. */
export function startScms(args: string[], env: NodeJS.ProcessEnv): Promise<Started> {
  const child = spawnScms(args, env);
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve ${args[0]}: no address within 30 s; stderr:\n${stderr}`)), 30_000);
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
      reject(new Error(`serve ${args[0]} exited with ${code} before listening; stdout:\n${stdout}\nstderr:\n${stderr}`));
    });
  });
}

/** Exit code, or the signal name when killed by one. */
export function exitOf(child: ChildProcess): Promise<number | string | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode ?? child.signalCode);
    child.on('exit', (code, signal) => resolve(code ?? signal));
  });
}

const bytes = async (r: Response) => new Uint8Array(await r.arrayBuffer());
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The CCF's ACA certificates (security-management SSP role 'aca') with their issuer chains. */
export function acaChainsOf(trust: TrustStore): Certificate[][] {
  const pool = [...trust.certificates, ...trust.trustAnchors];
  const out: Certificate[][] = [];
  for (const c of trust.certificates) {
    const ssp = c.toBeSigned.appPermissions?.find((p) => BigInt(p.psid) === SECURITY_MGMT_PSID)?.ssp as { opaque?: Uint8Array } | undefined;
    if (!ssp?.opaque || roleOfSsp(ssp.opaque) !== 'aca') continue;
    out.push(chainOf(c, pool));
  }
  return out;
}

/** An enrolled EE. */
export interface Ee {
  trust: TrustStore;
  enrollment: { certificate: Certificate; signer: ReturnType<typeof keyPairSigner> };
}

/** Bootstrap against the RA (root from the trust dir), register with the operator token, enroll at the ECA. */
export async function onboardEe(raUrl: string, ecaUrl: string, trustDir: string, operatorToken: string): Promise<Ee> {
  const td = loadTrustDir(trustDir);
  const trust = await bootstrapTrust({ raUrl, trustedRootHashes: [toHex(certificateHashedId8(td.byName.get('root')!.certificate!))], clock });
  const policy = trust.globalPolicy.policy;
  const canonical = generateKeyPair('nistP256');
  const reg = await fetch(`${raUrl}/v3/devices`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${operatorToken}` },
    body: JSON.stringify({ deviceType: 'obu', canonicalPublicKey: toHex(compressedPublicKey('nistP256', canonical.publicKey)) }),
  });
  expect(reg.status, await reg.clone().text()).toBe(201);
  const enrollPsids = (policy.deviceTypes.OBU?.enrollment ?? []).map((a) => Number(a.psid));
  const er = await buildEnrollmentRequest({ canonicalKey: keyPairSigner(canonical), type: 'implicit', psids: enrollPsids, validity: { durationSeconds: 30 * 86_400 }, clock });
  const res = await fetch(`${ecaUrl}/v3/enrollment-certificate`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from(er.spdu) });
  expect(res.status, res.headers.get('ieee-1609.2.1-error') ?? '').toBe(200);
  const e = processEnrollmentResponse(await bytes(res), er.state, { trustAnchors: trust.trustAnchors, clock });
  return { trust, enrollment: { certificate: e.certificate, signer: e.signer } };
}

/** An accepted pseudonym request. */
export interface PseudonymRequest {
  requestHash: Uint8Array;
  secrets: ButterflySecrets;
  filename: string;
  firstI: number;
  /** The ack's nextDlTime (Time32): when the batch is expected to be ready. */
  nextDlTime: number;
}

/** POSTs an original-butterfly, implicit pseudonym request and checks the ack. */
export async function requestPseudonyms(raUrl: string, ee: Ee): Promise<PseudonymRequest> {
  const policy = ee.trust.globalPolicy.policy;
  const psids = (policy.deviceTypes.OBU?.pseudonym ?? []).map((p) => BigInt(p.psid));
  const hours = Math.max(1, Math.ceil(policy['time-iPeriodLength'] / 3600));
  const { request, secrets } = createButterflyRequest({
    variant: 'original',
    type: 'implicit',
    tbsCert: { validityPeriod: { start: nowTime32(clock), duration: { hours } }, appPermissions: psids.map((psid) => ({ psid })) },
    clock,
  });
  const { spdu, requestHash } = await buildAuthorizationRequest({ request: request as EeRaCertRequest, enrollment: ee.enrollment, raCertificate: ee.trust.raCertificate });
  const res = await fetch(`${raUrl}/v3/authorization-certificate`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from(spdu) });
  expect(res.status, `${res.headers.get('ieee-1609.2.1-error') ?? ''} ${res.status !== 200 ? await res.clone().text() : ''}`).toBe(200);
  const ack = processAuthorizationAck(await bytes(res), { raCertificate: ee.trust.raCertificate, requestHash });
  return { requestHash, secrets, filename: batchFilename(requestHash, ack.firstI ?? 0), firstI: ack.firstI ?? 0, nextDlTime: ack.nextDlTime };
}

/** Downloads the batch zip: 503 + Retry-After until the worker has run (bounded by timeoutMs). */
export async function downloadBatch(raUrl: string, ee: Ee, req: PseudonymRequest, diagnostics: () => string, timeoutMs = 30_000): Promise<Uint8Array> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const header = await buildDownloadRequest({ filename: req.filename, enrollment: ee.enrollment, raCertificate: ee.trust.raCertificate, clock });
    const r = await fetch(`${raUrl}/v3/authorization-certificate?filename=${encodeURIComponent(req.filename)}`, { headers: { 'ieee-1609.2.1-authorization': header } });
    if (r.status === 200) return bytes(r);
    expect([503, 429], `${r.status} ${r.headers.get('ieee-1609.2.1-error')} ${await r.text()}`).toContain(r.status);
    const retryAfter = Number(r.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(Date.now() + retryAfter * 1000, `not ready within ${timeoutMs} ms; diagnostics:\n${diagnostics()}`).toBeLessThan(deadline);
    await sleep(retryAfter * 1000);
  }
}

/**
 * Unzips, decrypts and reconstructs a batch: every certificate is implicit, issued by the CCF's ACA, chains to the
 * root, and its key pair matches; (i, j) and certificates are distinct; `expected` certificates in all.
 */
export async function verifyBatch(zip: Uint8Array, ee: Ee, req: PseudonymRequest, expected: number): Promise<AuthorizationCertificate[]> {
  const chains = acaChainsOf(ee.trust);
  expect(chains).toHaveLength(1);
  const acaChain = chains[0]!;
  const batch = await processAuthorizationBatch(zip, { secrets: req.secrets, requestHash: req.requestHash, acaChain, trustAnchors: ee.trust.trustAnchors, clock });
  expect(batch.certificates.length).toBe(expected);
  for (const c of batch.certificates) {
    expect(c.i).toBe(req.firstI);
    expect(c.certificate.type).toBe('implicit');
    expect(isIssuedBy(c.certificate, acaChain[0]!)).toBe(true);
    const v = verifyCertificateChain([c.certificate, ...acaChain], { trustAnchors: ee.trust.trustAnchors, clock, skipCurrentValidity: true });
    expect(v.ok, v.ok ? '' : JSON.stringify(v.errors)).toBe(true);
    expect(certificateKeyPairMatches(c.certificate, c.privateKey, acaChain)).toBe(true);
  }
  expect(new Set(batch.certificates.map((c) => `${c.i}/${c.j}`)).size).toBe(expected);
  expect(new Set(batch.certificates.map((c) => toHex(certificateHashedId8(c.certificate)))).size).toBe(expected);
  return batch.certificates;
}
