// Scale-out: `scms serve la --name la1|la2`, `serve aca`, `serve ra`, `serve eca` as five real processes on
// 127.0.0.1 (port 0; dependants get their peers' URLs from the bound addresses), the internal routes guarded by
// the component token; the whole EE flow over HTTP against the RA and the ECA. Once with SQLite files, once with
// every component on its own schema of the local PostgreSQL (database `test`; schemas dropped afterwards).
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testPgSchema, type TestPg } from '../engine/store/helpers.js';
import { downloadBatch, exitOf, onboardEe, requestPseudonyms, startScms, verifyBatch, type Started } from './serve-flow-helpers.js';
import { initTestTrustDir } from '../helpers/trust-dir.js';

const PASS = 'serve processes test passphrase';
const OPERATOR = 'operator-token-serve-procs-00001';
const COMPONENT = 'component-token-serve-procs-0001';

let base: string;
let trustDir: string;
const children: ChildProcess[] = [];
const schemas: TestPg[] = [];

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), 'scms-serve-procs-'));
  trustDir = join(base, 'scms');
  await initTestTrustDir(trustDir, PASS);
}, 120_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const s of schemas) await s.drop().catch(() => {});
  rmSync(base, { recursive: true, force: true });
});

/** Starts la1, la2, aca, ra, eca (in dependency order); `db(name)` adds the database flags of a component. */
async function startAll(data: string, db: (name: string) => Promise<string[]>): Promise<Record<'la1' | 'la2' | 'aca' | 'ra' | 'eca', Started>> {
  const env = {
    ...process.env,
    SCMS_KEYSTORE_PASSPHRASE: PASS,
    SCMS_OPERATOR_TOKEN: OPERATOR,
    SCMS_COMPONENT_TOKEN: COMPONENT,
    SCMS_RA_PROCESSING_DELAY_S: '1',
    SCMS_RA_WORKER_POLL_MS: '100',
  };
  const common = ['--trust', trustDir, '--data', data, '--port', '0', '--host', '127.0.0.1'];
  const start = async (args: string[], name: string) => {
    const s = await startScms([...args, ...common, ...(await db(name))], env);
    children.push(s.child);
    return s;
  };
  const [la1, la2] = await Promise.all([start(['la', '--name', 'la1'], 'la1'), start(['la', '--name', 'la2'], 'la2')]);
  const aca = await start(['aca', '--peer', `la1=${la1.out.url}`, '--peer', `la2=${la2.out.url}`], 'aca');
  const ra = await start(['ra', '--peer', `la1=${la1.out.url}`, '--peer', `la2=${la2.out.url}`, '--peer', `aca=${aca.out.url}`], 'ra');
  const eca = await start(['eca', '--peer', `ra=${ra.out.url}`], 'eca');
  return { la1, la2, aca, ra, eca };
}

async function runFlow(procs: Record<'la1' | 'la2' | 'aca' | 'ra' | 'eca', Started>) {
  for (const [name, p] of Object.entries(procs)) {
    expect(p.out.components, name).toEqual([name]);
    expect(p.out.warnings, name).toEqual([]);
    const health = await fetch(`${p.out.url}/healthz`);
    expect(health.status, `${name} ${await health.clone().text()}`).toBe(200);
    await health.body?.cancel();
  }
  // The internal routes want the component token.
  const bare = await fetch(`${procs.aca.out.url}/internal/aca/cert-requests`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(4) });
  expect(bare.status).toBe(401);
  await bare.body?.cancel();

  const diagnostics = () => Object.entries(procs).map(([n, p]) => `--- ${n}:\n${p.stderr()}`).join('\n');
  const ee = await onboardEe(procs.ra.out.url, procs.eca.out.url, trustDir, OPERATOR);
  const req = await requestPseudonyms(procs.ra.out.url, ee);
  const zip = await downloadBatch(procs.ra.out.url, ee, req, diagnostics);
  const n = ee.trust.globalPolicy.policy['time-baseCertNumber'];
  expect(n).toBeGreaterThan(0);
  await verifyBatch(zip, ee, req, n);

  // SIGTERM: every process exits 0.
  for (const p of Object.values(procs)) p.child.kill('SIGTERM');
  for (const [name, p] of Object.entries(procs)) expect(await exitOf(p.child), name).toBe(0);
}

describe('scms serve ra | eca | aca | la as separate processes', () => {
  it('SQLite: register -> bootstrap -> enroll -> pseudonym batch -> download -> keys and chains verify', async () => {
    const data = join(base, 'data-sqlite');
    await runFlow(await startAll(data, async () => []));
    for (const f of ['ra.db', 'eca.db', 'aca.db', 'la1.db', 'la2.db']) expect(existsSync(join(data, f)), f).toBe(true);
  }, 120_000);

  it('PostgreSQL (one schema per component): the same flow', async () => {
    const data = join(base, 'data-pg');
    await runFlow(
      await startAll(data, async (name) => {
        const s = await testPgSchema(`procs_${name}`); // throws, naming SCMS_TEST_PG_URL, when PostgreSQL is unreachable
        schemas.push(s);
        return ['--db', s.url];
      }),
    );
    expect(existsSync(join(data, 'ra.db'))).toBe(false);
  }, 120_000);
});
