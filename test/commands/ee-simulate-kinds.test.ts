// `scms ee simulate` (the real CLI, node bin/run.js on the dist/ build) against ONE real `scms serve all` on
// 127.0.0.1 for every certificate kind, and for every class of local check an EE can fail: the trust files or a
// downloaded certificate altered on the way by a tampering HTTP proxy in front of the same server (its
// pass-through mode completes a device, so each failure comes from the one altered file). SCMS-reported errors
// (blocked device 403-20, unregistered 400-21, policy 400-32, bad operator token 401) are in ee-simulate.test.ts and
// ee-fleet.test.ts. The trust directory gets two operator changes first (operatorChanges): OBU identification
// certificates (PSID 32) in the global policy, and an ACA certificate with flags usesCubk for compact unified keys.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { unzipSync, zipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStores } from '../../src/engine/manager/init.js';
import { signPolicy } from '../../src/engine/manager/policy-sign.js';
import { loadTrustDir, readManifest, TrustDirWriter } from '../../src/engine/manager/trust-dir.js';
import { certificatePublicKey } from '../../src/security/certificate.js';
import { systemClock } from '../../src/security/time.js';
import { startServeAll, type ServeAll } from '../helpers/serve-all.js';
import { initTestTrustDir } from '../helpers/trust-dir.js';

const bin = new URL('../../bin/run.js', import.meta.url).pathname;
const PASS = 'ee simulate kinds test: scms passphrase';
const DEVICE_PASS = 'ee simulate kinds test: device passphrase';
const OPERATOR = 'operator-token-ee-kinds-test-000001';

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function scms(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const child = spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0', SCMS_OPERATOR_TOKEN: OPERATOR, SCMS_KEYSTORE_PASSPHRASE: DEVICE_PASS, ...env },
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

/**
 * One operator change to a fresh `manager init` trust directory (the default policy does not allow it): the global
 * policy allows OBU identification certificates for PSID 32 (re-signed by the PG). Compact unified butterfly needs
 * nothing more: `manager init` issues the ACA certificate with flags usesCubk.
 */
async function operatorChanges(dir: string): Promise<void> {
  const trust = loadTrustDir(dir);
  const cert = (name: string) => trust.byName.get(name)!;
  const stores = openStores(dir, { passphrase: PASS, scrypt: { N: 1024 } });
  const signerOf = (name: string) => ({ curve: 'nistP256' as const, publicKey: certificatePublicKey(cert(name).certificate!).publicKey, sign: (m: Uint8Array) => stores.sign(cert(name).keyUri, m) });
  try {
    const manifest = readManifest(dir);
    const w = new TrustDirWriter(dir, manifest);
    const policy = structuredClone(trust.globalPolicy!.json);
    policy.deviceTypes.OBU.identification = [{ psid: 32 }];
    const signed = await signPolicy({ policy, pgCertificate: cert('pg').certificate!, signer: signerOf('pg'), clock: systemClock });
    w.put('policy/global-policy.json', JSON.stringify(policy, null, 2) + '\n', { role: 'global-policy' });
    w.put('policy/global-policy.oer', signed, { role: 'global-policy-signed' });

    w.writeManifest(new Date());
  } finally {
    await stores.close();
  }
}

type Tamper = (request: string, status: number, body: Uint8Array) => Uint8Array;
const flipNear = (b: Uint8Array, fromEnd: number) => {
  const out = b.slice();
  out[out.length - fromEnd]! ^= 0x01;
  return out;
};
const rezip = (zip: Uint8Array, change: (name: string, bytes: Uint8Array) => Uint8Array) =>
  zipSync(Object.fromEntries(Object.entries(unzipSync(zip)).map(([name, bytes]) => [name, change(name, bytes)])));

/**
 * http://proxy/<mode>/v3/... -> upstream /v3/..., the answer altered by mode: 'pass' nothing; 'ctl' a signature
 * octet of each CTL in the zip; 'ra-eca' / 'ra-other' the RA certificate replaced by the ECA's of the same SCMS /
 * the RA certificate of another SCMS; 'cert-signature' the last octet (the certificate's signature) of every
 * response in a certificate download.
 */
function tamperingProxy(upstream: string, modes: Record<string, Tamper>): Promise<{ server: Server; url: string }> {
  let dropped = false;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      try {
        const m = /^\/([a-z-]+)(\/.*)$/.exec(req.url ?? '');
        const tamper = m ? modes[m[1]!] : undefined;
        if (!m || !tamper) {
          res.writeHead(404).end();
          return;
        }
        // 'drop-download': the first certificate download gets no answer at all (connection closed).
        if (m[1] === 'drop-download' && req.method === 'GET' && m[2]!.startsWith('/v3/authorization-certificate') && !dropped) {
          dropped = true;
          req.socket.destroy();
          return;
        }
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && k !== 'host' && k !== 'content-length' && k !== 'connection') headers[k] = v;
        const up = await fetch(`${upstream}${m[2]}`, { method: req.method!, headers, ...(chunks.length ? { body: Buffer.concat(chunks) } : {}) });
        const body = new Uint8Array(await up.arrayBuffer());
        const out = tamper(`${req.method} ${m[2]!.split('?')[0]!}`, up.status, body);
        const h: Record<string, string> = {};
        up.headers.forEach((v, k) => {
          if (k !== 'content-length' && k !== 'transfer-encoding' && k !== 'connection' && k !== 'content-encoding') h[k] = v;
        });
        res.writeHead(up.status, h).end(Buffer.from(out));
      } catch (e) {
        res.writeHead(502).end(String(e));
      }
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })));
}

interface Kind {
  type: 'obu' | 'rsu';
  cert: 'pseudonym' | 'identification';
  form: 'implicit' | 'explicit';
  butterfly: 'original' | 'unified' | 'compact-unified' | 'none';
  encrypted?: boolean;
}

const KINDS: Kind[] = [
  // OBU pseudonym: every butterfly type, explicit and implicit (compact unified: implicit only, 1609.2.1 9.3.3).
  ...(['original', 'unified'] as const).flatMap((butterfly) => (['implicit', 'explicit'] as const).map((form): Kind => ({ type: 'obu', cert: 'pseudonym', form, butterfly }))),
  { type: 'obu', cert: 'pseudonym', form: 'implicit', butterfly: 'compact-unified' },
  // OBU identification: butterfly (implicit unified, explicit original) and non-butterfly (plain explicit, encrypted implicit).
  { type: 'obu', cert: 'identification', form: 'implicit', butterfly: 'unified' },
  { type: 'obu', cert: 'identification', form: 'explicit', butterfly: 'original' },
  { type: 'obu', cert: 'identification', form: 'explicit', butterfly: 'none' },
  { type: 'obu', cert: 'identification', form: 'implicit', butterfly: 'none', encrypted: true },
  // RSU identification (application certificates): non-butterfly plain and encrypted, explicit and implicit.
  ...([false, true] as const).flatMap((encrypted) => (['implicit', 'explicit'] as const).map((form): Kind => ({ type: 'rsu', cert: 'identification', form, butterfly: 'none', encrypted }))),
];

const label = (k: Kind) => `${k.type} ${k.cert} ${k.form} ${k.butterfly}${k.butterfly === 'none' ? (k.encrypted ? ' --encrypted' : ' plain') : ''}`;
const kindArgs = (k: Kind) => ['--type', k.type, '--cert', k.cert, '--form', k.form, '--butterfly', k.butterfly, ...(k.encrypted ? ['--encrypted'] : [])];

describe('scms ee simulate: every certificate kind and every local check, against one scms serve all', () => {
  let base: string;
  let dir: string;
  let url: string;
  let rootHash: string;
  let serveAll: ServeAll | undefined;
  let proxy: { server: Server; url: string } | undefined;
  const results = new Map<string, Run>();

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'scms-ee-kinds-'));
    await initTestTrustDir(join(base, 'other-scms'), PASS);
    serveAll = await startServeAll({ base, passphrase: PASS, operatorToken: OPERATOR, beforeStart: operatorChanges });
    dir = serveAll.trustDir;
    rootHash = serveAll.rootHash;
    url = serveAll.url;

    const ecaCert = readFileSync(join(dir, 'trust', 'certs', 'eca.oer'));
    const otherRa = readFileSync(join(base, 'other-scms', 'trust', 'certs', 'ra.oer'));
    const only = (request: string, f: (b: Uint8Array) => Uint8Array): Tamper => (r, status, b) => (r === request && status === 200 ? f(b) : b);
    proxy = await tamperingProxy(url, {
      pass: (_p, _s, b) => b,
      'drop-download': (_p, _s, b) => b,
      ctl: only('GET /v3/ctl', (zip) => rezip(zip, (_n, ctl) => flipNear(ctl, 5))),
      'ra-eca': only('GET /v3/ra-certificate', () => ecaCert),
      'ra-other': only('GET /v3/ra-certificate', () => otherRa),
      'cert-signature': only('GET /v3/authorization-certificate', (zip) => rezip(zip, (name, r) => (name.endsWith('.info') ? r : flipNear(r, 1)))),
    });

    // Every kind as its own device, all at once (one process each).
    await Promise.all(
      KINDS.map(async (k) => {
        const state = join(base, label(k).replace(/[^a-z0-9]+/g, '-'));
        results.set(label(k), await scms(['ee', 'simulate', '--ra', url, '--trust-root', rootHash, ...kindArgs(k), '--state', state, '--json']));
      }),
    );
  }, 300_000);

  afterAll(async () => {
    serveAll?.kill();
    if (proxy) await new Promise((r) => proxy!.server.close(r));
    if (base) rmSync(base, { recursive: true, force: true });
  });

  const operator = async <T>(path: string): Promise<T> => {
    const r = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${OPERATOR}` } });
    expect(r.status).toBe(200);
    return (await r.json()) as T;
  };

  it.each(KINDS.map((k) => [label(k), k] as const))('%s: complete, every certificate verified and used, as the RA recorded it', async (name, k) => {
    const r = results.get(name)!;
    expect(r.status, r.stdout.slice(0, 3000) + r.stderr).toBe(0);
    const report = json(r);
    expect(report.complete).toBe(true);
    expect(report.steps.map((s: { step: string; status: string }) => `${s.step}:${s.status}`)).toEqual(['bootstrap:done', 'register:done', 'enroll:done', 'request:done', 'download:done', 'use:done']);
    const certs = report.certificates as Array<{ hashedId8: string; certificateType: string; id: string; psids: string[]; verified: boolean; i: number; j: number; message: { psid: number; verified: boolean } }>;
    // Pseudonyms: time-baseCertNumber (20) per i-period; identification: one certificate.
    expect(certs).toHaveLength(k.cert === 'pseudonym' ? 20 : 1);
    expect(new Set(certs.map((c) => c.hashedId8)).size).toBe(certs.length);
    for (const c of certs) {
      expect(c.certificateType).toBe(k.form);
      expect(c.verified).toBe(true);
      expect(c.message.verified).toBe(true);
      if (k.cert === 'pseudonym') {
        expect(c.id).toBe('linkageData');
        expect(c.psids).toEqual(['0x20', '0x26']);
        expect(c.message.psid).toBe(0x20);
      } else {
        // butterfly identification requests name the device; non-butterfly ones leave the id to the SCMS
        expect(c.id).toBe(k.butterfly === 'none' ? 'none' : 'name');
        expect(c.psids).toEqual(k.type === 'obu' ? ['0x20'] : ['0x82', '0x83']);
        expect(c.message.psid).toBe(k.type === 'obu' ? 0x20 : 0x82);
      }
    }
    // The RA's records: the registered device, its enrollment certificate and the delivered batch.
    const device = await operator<{ state: string; certificates: Array<{ kind: string; hashedId8: string }> }>(`/v3/devices/${report.deviceId}`);
    expect(device.certificates.filter((c) => c.kind === 'enrollment').map((c) => c.hashedId8)).toEqual([report.enrollment.hashedId8]);
    expect(device.certificates.filter((c) => c.kind === 'authorization-batch')).toHaveLength(1);
  });

  it('pseudonym and butterfly identification responses: one stored ACA response per certificate of the request', async () => {
    const db = new Database(join(base, 'data', 'ra.db'), { readonly: true, fileMustExist: true });
    try {
      for (const k of KINDS.filter((x) => x.butterfly !== 'none')) {
        const state = join(base, label(k).replace(/[^a-z0-9]+/g, '-'));
        const st = JSON.parse(readFileSync(join(state, 'state.json'), 'utf8')) as { authorization: { requestHash: string } };
        const n = db.prepare('select count(*) as n from ra_pseudonym_responses where request_hash = ?').get(Buffer.from(st.authorization.requestHash, 'hex')) as { n: number };
        expect(n.n, label(k)).toBe(json(results.get(label(k))!).certificates.length);
      }
    } finally {
      db.close();
    }
  });

  it('through the proxy without changes the device completes (the failures below come from the altered files)', async () => {
    const r = await scms(['ee', 'simulate', '--ra', `${proxy!.url}/pass`, '--trust-root', rootHash, ...kindArgs(KINDS.at(-2)!), '--state', join(base, 'proxy-pass'), '--json']);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(json(r).complete).toBe(true);
  }, 120_000);

  it('a certificate download that gets no answer (connection closed) is asked again, and the device completes', async () => {
    const r = await scms(['ee', 'simulate', '--ra', `${proxy!.url}/drop-download`, '--trust-root', rootHash, ...kindArgs(KINDS[0]!), '--state', join(base, 'proxy-drop')]);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\[download\] … no answer \(.+\): sending again over a new connection \(resend 1\)/);
    expect(r.stdout).toMatch(/\[download\] ✔ 20 certificates/);
    expect(r.stdout).toMatch(/device complete/);
  }, 120_000);

  const failing = async (mode: string, k: Kind, state: string) => {
    const r = await scms(['ee', 'simulate', '--ra', `${proxy!.url}/${mode}`, '--trust-root', rootHash, ...kindArgs(k), '--state', join(base, state), '--json']);
    expect(r.status, r.stdout + r.stderr).toBe(1);
    const human = await scms(['ee', 'simulate', '--ra', `${proxy!.url}/${mode}`, '--trust-root', rootHash, ...kindArgs(k), '--state', join(base, `${state}-human`)]);
    expect(human.status).toBe(1);
    const error = json(r).error as { step: string; check?: string; message: string; http?: unknown };
    expect(error.check, JSON.stringify(error)).toBeDefined();
    return { error, stderr: human.stderr };
  };

  it('a tampered CTL (one signature octet): bootstrap fails the ctl check, nothing is registered or kept', async () => {
    const before = (await operator<{ devices: unknown[] }>('/v3/devices?limit=1000')).devices.length;
    const { error, stderr } = await failing('ctl', KINDS[0]!, 'tampered-ctl');
    expect(error).toMatchObject({ step: 'bootstrap', check: 'ctl' });
    expect(error.message).toMatch(/CTL series [0-9a-f]{16} does not verify/);
    expect(error.http).toBeUndefined();
    expect(stderr).toMatch(/bootstrap: ctl: CTL series [0-9a-f]{16} does not verify/);
    expect(stderr).toMatch(/failed check: ctl/);
    expect(existsSync(join(base, 'tampered-ctl', 'state.json'))).toBe(false);
    expect((await operator<{ devices: unknown[] }>('/v3/devices?limit=1000')).devices.length).toBe(before);
  }, 120_000);

  it("the wrong RA certificate (the SCMS's ECA certificate: chains, but carries no RaSsp): ra-certificate check", async () => {
    const { error, stderr } = await failing('ra-eca', KINDS[0]!, 'wrong-ra');
    expect(error).toMatchObject({ step: 'bootstrap', check: 'ra-certificate' });
    expect(error.message).toMatch(/does not carry RaSsp/);
    expect(stderr).toMatch(/failed check: ra-certificate/);
  }, 120_000);

  it("an RA certificate of another SCMS: its chain does not reach a root of this SCMS's CTL", async () => {
    const { error } = await failing('ra-other', KINDS[0]!, 'other-ra');
    expect(error).toMatchObject({ step: 'bootstrap', check: 'ra-certificate' });
    expect(error.message).toMatch(/RA certificate [0-9a-f]{16} does not chain to a root of this SCMS/);
  }, 120_000);

  it("a bad signature in a downloaded certificate (RSU identification, explicit, plain response): the download's certificate check fails", async () => {
    const k: Kind = { type: 'rsu', cert: 'identification', form: 'explicit', butterfly: 'none' };
    const { error, stderr } = await failing('cert-signature', k, 'bad-cert-signature');
    expect(error).toMatchObject({ step: 'download', check: 'certificate-response' });
    expect(error.message).toMatch(/bad-signature at 0: leaf .*signature does not verify/);
    expect(stderr).toMatch(/failed check: certificate-response/);
    // The state keeps what checked (enrollment, request) and no certificate: the device can continue later.
    const status = json(await scms(['ee', 'status', '--state', join(base, 'bad-cert-signature'), '--json']));
    expect(status.enrollment.hashedId8).toMatch(/^[0-9a-f]{16}$/);
    expect(status.certificates).toEqual([]);
  }, 120_000);

  it('a bad signature on the ACA response of a pseudonym download: refused as well', async () => {
    const { error } = await failing('cert-signature', KINDS[0]!, 'bad-pseudonym-response');
    expect(error).toMatchObject({ step: 'download', check: 'certificate-response' });
    expect(error.message).toMatch(/the batch does not check/);
  }, 120_000);
});
