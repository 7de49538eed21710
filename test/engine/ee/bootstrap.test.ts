// EE trust bootstrap against real RA servers (127.0.0.1, port 0) over trust directories made by `scms manager init`.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../../src/crypto/bytes.js';
import { bootstrapTrust, BootstrapError } from '../../../src/engine/ee/bootstrap.js';
import { buildCcf, parseCcf } from '../../../src/engine/manager/ccf.js';
import { initTrustDir, openStores } from '../../../src/engine/manager/init.js';
import { loadTrustDir } from '../../../src/engine/manager/trust-dir.js';
import { registerDistribution } from '../../../src/engine/ra/distribution.js';
import { certificateHashedId8 } from '../../../src/security/certificate.js';
import { keyStoreSigner } from '../../../src/security/signer.js';
import { ManualClock } from '../../../src/security/time.js';
import type { KeyStores } from '../../../src/hsm/index.js';
import { startTestServer, type TestServer } from '../http/helpers.js';

const PASS = 'bootstrap test passphrase';
const clock = new ManualClock('2025-03-01T12:00:00Z');
const later = new ManualClock('2025-03-02T12:00:00Z');

describe('bootstrapTrust', () => {
  let base: string;
  let dirA: string;
  let dirB: string;
  const servers: TestServer[] = [];
  const keyStores: KeyStores[] = [];

  /** An RA distribution server over `dir` (RA signer when its keys are there). */
  async function serveDir(dir: string, withSigner = true): Promise<string> {
    const trust = loadTrustDir(dir);
    let raSigner;
    if (withSigner) {
      const stores = openStores(dir, { passphrase: PASS });
      keyStores.push(stores);
      raSigner = keyStoreSigner(stores, await stores.open(trust.byName.get('ra')!.keyUri));
    }
    const srv = await startTestServer((server) =>
      server.registerComponent({ name: 'ra', register: registerDistribution, deps: { trust, clock, ...(raSigner ? { raSigner } : {}) } }),
    );
    servers.push(srv);
    return srv.url;
  }

  const rootId = (dir: string) => toHex(certificateHashedId8(loadTrustDir(dir).byName.get('root')!.certificate!));

  async function failure(p: Promise<unknown>): Promise<BootstrapError> {
    try {
      await p;
    } catch (e) {
      expect(e).toBeInstanceOf(BootstrapError);
      return e as BootstrapError;
    }
    throw new Error('bootstrapTrust succeeded');
  }

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'scms-boot-'));
    dirA = join(base, 'a');
    dirB = join(base, 'b');
    for (const dir of [dirA, dirB]) {
      await initTrustDir({ dir, keystore: 'file', keyStoreOptions: { passphrase: PASS, scrypt: { N: 1024 } }, electors: 3, quorum: 2, clock });
    }
  }, 120_000);
  afterAll(async () => {
    for (const s of servers) await s.close();
    for (const k of keyStores) await k.close();
    rmSync(base, { recursive: true, force: true });
  });

  it('downloads and verifies CTL, CCF, RA certificate, policies and info status (root hash anchor)', async () => {
    const url = await serveDir(dirA);
    const td = loadTrustDir(dirA);
    const store = await bootstrapTrust({ raUrl: url, trustedRootHashes: [rootId(dirA)], clock: later });
    expect(store.ctlSeriesId).toBe(td.manifest.ctlSeriesId);
    expect(store.ctl.sequenceNumber).toBe(1);
    expect(store.ctl.electors.length).toBe(3);
    expect(store.trustAnchors.map((r) => toHex(certificateHashedId8(r)))).toEqual([rootId(dirA)]);
    expect(Buffer.from(store.raCertificateBytes).equals(Buffer.from(td.byName.get('ra')!.bytes))).toBe(true);
    expect(Buffer.from(store.ccf).equals(Buffer.from(td.ccf!))).toBe(true);
    expect(store.certificates.length).toBe(parseCcf(td.ccf!).others.length);
    expect(store.globalPolicy.policy).toEqual(td.globalPolicy!.json);
    expect(store.localPolicy!.policy).toEqual(td.localPolicy!.json);
    expect(store.infoStatus!.ctl[0]!.sequenceNumber).toBe(1);
  });

  it('anchors in a local trust directory; works without the info status (no RA key in the server)', async () => {
    const url = await serveDir(dirA, false);
    const store = await bootstrapTrust({ raUrl: url, trustDir: dirA, clock: later });
    expect(store.infoStatus).toBeUndefined();
    expect(store.trustAnchors.length).toBe(1);
  });

  it('fails when no root of the CTL is trusted (another SCMS)', async () => {
    const url = await serveDir(dirA);
    const e = await failure(bootstrapTrust({ raUrl: url, trustedRootHashes: [rootId(dirB)], clock: later }));
    expect(e.check).toBe('ctl');
    expect(e.message).toMatch(/no root approved by CTL .* is one the EE trusts/);
  });

  it('fails on a tampered CTL file', async () => {
    const dir = join(base, 'tampered-ctl');
    cpSync(dirA, dir, { recursive: true });
    const td = loadTrustDir(dir);
    const path = join(dir, 'trust', ...td.ctls[0]!.path.split('/'));
    const b = readFileSync(path);
    b[b.length - 40] ^= 0x01; // inside the last elector signature
    writeFileSync(path, b);
    const url = await serveDir(dir);
    const e = await failure(bootstrapTrust({ raUrl: url, trustedRootHashes: [rootId(dirA)], clock: later }));
    expect(e.check).toBe('ctl');
    expect(e.message).toMatch(/does not verify/);
    // Anchored in the untampered directory, the difference is also named.
    const e2 = await failure(bootstrapTrust({ raUrl: url, trustDir: dirA, clock: later }));
    expect(e2.check).toBe('ctl');
  });

  it('fails when the RA certificate is from another SCMS', async () => {
    const dir = join(base, 'foreign-ra');
    cpSync(dirA, dir, { recursive: true });
    cpSync(join(dirB, 'trust', 'certs', 'ra.oer'), join(dir, 'trust', 'certs', 'ra.oer'));
    const url = await serveDir(dir);
    const e = await failure(bootstrapTrust({ raUrl: url, trustedRootHashes: [rootId(dirA)], clock: later }));
    expect(e.check).toBe('ra-certificate');
    expect(e.message).toMatch(/does not chain to a root of this SCMS/);
  });

  it('fails when the CCF certificates do not chain to a root of the CTL', async () => {
    const dir = join(base, 'foreign-ccf');
    cpSync(dirA, dir, { recursive: true });
    const a = loadTrustDir(dirA);
    const b = loadTrustDir(dirB);
    writeFileSync(join(dir, 'trust', 'ccf.oer'), buildCcf(a.ctls[0]!.bytes, parseCcf(b.ccf!).others));
    const url = await serveDir(dir);
    const e = await failure(bootstrapTrust({ raUrl: url, trustedRootHashes: [rootId(dirA)], clock: later }));
    expect(e.check).toBe('ccf');
    expect(e.message).toMatch(/does not chain to a trusted root/);
  });

  it('fails on a policy file not signed by the CCF\'s PG', async () => {
    const dir = join(base, 'foreign-policy');
    cpSync(dirA, dir, { recursive: true });
    cpSync(join(dirB, 'trust', 'policy', 'global-policy.oer'), join(dir, 'trust', 'policy', 'global-policy.oer'));
    const url = await serveDir(dir);
    const e = await failure(bootstrapTrust({ raUrl: url, trustedRootHashes: [rootId(dirA)], clock: later }));
    expect(e.check).toBe('policy');
    expect(e.message).toMatch(/global policy is not signed by a PG certificate of the CCF/);
  });

  it('fails with a download error when the RA is unreachable', async () => {
    const e = await failure(bootstrapTrust({ raUrl: 'http://127.0.0.1:1', trustedRootHashes: [rootId(dirA)], ctlSeriesId: '0011223344556677', clock: later }));
    expect(e.check).toBe('download');
  });
});
