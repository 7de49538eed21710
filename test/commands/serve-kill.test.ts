// A killed worker loses nothing: `scms serve all` is SIGKILLed in the middle of a pseudonym batch (after storing
// k responses, by the test-only hook SCMS_TEST_RA_KILL_AFTER_RESPONSES), restarted on the same --data, the job is
// retried after its lease and completes; every requested certificate is then downloadable exactly once and the
// RA's stored responses have no duplicates (the responses stored before the kill are kept as they were).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../src/crypto/bytes.js';
import { certificateHashedId8 } from '../../src/security/certificate.js';
import { downloadBatch, exitOf, onboardEe, requestPseudonyms, spawnScms, startScms, verifyBatch, type Ee, type PseudonymRequest, type Started } from './serve-flow-helpers.js';
import { initTestTrustDir } from '../helpers/trust-dir.js';

const PASS = 'serve kill test passphrase';
const OPERATOR = 'operator-token-serve-kill-000001';
const EES = 3;

interface Row {
  request_hash: string;
  i: number;
  j: number;
  response: string;
}

/** The RA's stored pseudonym responses and its authorization jobs, read from ra.db. */
function raState(data: string): { rows: Row[]; jobs: { state: string; attempts: number }[] } {
  const db = new Database(join(data, 'ra.db'), { readonly: true });
  try {
    const rows = db.prepare('select hex(request_hash) as request_hash, i, j, hex(response) as response from ra_pseudonym_responses').all() as Row[];
    const jobs = db.prepare("select state, attempts from scms_jobs where queue = 'ra-authorization' order by created_at").all() as { state: string; attempts: number }[];
    return { rows, jobs };
  } finally {
    db.close();
  }
}

describe('scms serve all: SIGKILL during a pseudonym batch', () => {
  let base: string;
  let dir: string;
  const running: Started[] = [];

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'scms-serve-kill-'));
    dir = join(base, 'scms');
    await initTestTrustDir(dir, PASS);
  }, 120_000);
  afterAll(() => {
    for (const s of running) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
    rmSync(base, { recursive: true, force: true });
  });

  it('after restart the job is retried and every requested certificate is downloadable exactly once', async () => {
    const data = join(base, 'data');
    const env = { ...process.env, SCMS_KEYSTORE_PASSPHRASE: PASS, SCMS_OPERATOR_TOKEN: OPERATOR, SCMS_RA_PROCESSING_DELAY_S: '1' };
    const args = ['all', '--trust', dir, '--data', data, '--port', '0', '--host', '127.0.0.1'];
    const start = async (extra: NodeJS.ProcessEnv) => {
      const s = await startScms(args, { ...env, ...extra });
      running.push(s);
      return s;
    };

    // 1. The requests are accepted while the worker idles (first poll at start, the next in 10 min): all queued.
    const first = await start({ SCMS_RA_WORKER_POLL_MS: '600000' });
    const ees: Ee[] = [];
    const reqs: PseudonymRequest[] = [];
    for (let n = 0; n < EES; n++) {
      const ee = await onboardEe(first.out.url, first.out.url, dir, OPERATOR);
      ees.push(ee);
      reqs.push(await requestPseudonyms(first.out.url, ee));
    }
    first.child.kill('SIGTERM');
    expect(await exitOf(first.child)).toBe(0);
    expect(raState(data).rows).toHaveLength(0);
    expect(raState(data).jobs.map((j) => j.state)).toEqual(Array(EES).fill('queued'));

    // 2. With the kill hook: the first job completes, the second is cut after half of its responses are stored.
    const perEe = ees[0]!.trust.globalPolicy.policy['time-baseCertNumber'];
    expect(perEe).toBeGreaterThan(1);
    const k = perEe + Math.floor(perEe / 2);
    // (The worker starts before the server listens: the process may die before it prints its address.)
    const killed = spawnScms(args, { ...env, SCMS_RA_WORKER_POLL_MS: '100', SCMS_RA_WORKER_LEASE_MS: '1500', SCMS_TEST_RA_KILL_AFTER_RESPONSES: String(k) });
    let killedErr = '';
    killed.stderr!.on('data', (d) => (killedErr += d));
    const timer = setTimeout(() => killed.kill('SIGTERM'), 60_000);
    const code = await exitOf(killed);
    clearTimeout(timer);
    expect(code, killedErr).toBe('SIGKILL');
    const cut = raState(data);
    expect(cut.rows).toHaveLength(k);
    expect(cut.jobs.map((j) => j.state)).toEqual(['done', 'running', 'queued']);

    // 3. Restart without the hook: the second job's lease runs out, it is retried; the third runs.
    const again = await start({ SCMS_RA_WORKER_POLL_MS: '100' });
    expect(again.out.warnings).toEqual([]);
    const certs = new Set<string>();
    for (let n = 0; n < EES; n++) {
      const zip = await downloadBatch(again.out.url, ees[n]!, reqs[n]!, again.stderr, 60_000);
      const batch = await verifyBatch(zip, ees[n]!, reqs[n]!, perEe);
      for (const c of batch) certs.add(toHex(certificateHashedId8(c.certificate)));
      // Downloading again gives the same batch.
      const zip2 = await downloadBatch(again.out.url, ees[n]!, reqs[n]!, again.stderr);
      expect(Buffer.from(zip2).equals(Buffer.from(zip))).toBe(true);
    }
    expect(certs.size).toBe(EES * perEe); // distinct certificates across the EEs too

    again.child.kill('SIGTERM');
    expect(await exitOf(again.child)).toBe(0);
    const final = raState(data);
    expect(final.jobs.map((j) => j.state)).toEqual(Array(EES).fill('done'));
    expect(final.jobs.map((j) => j.attempts)).toEqual([1, 2, 1]);
    // No duplicates: EES * perEe rows, one per (request, i, j), for exactly the requested hashes.
    expect(final.rows).toHaveLength(EES * perEe);
    expect(new Set(final.rows.map((r) => `${r.request_hash}/${r.i}/${r.j}`)).size).toBe(EES * perEe);
    expect(new Set(final.rows.map((r) => r.request_hash.toLowerCase()))).toEqual(new Set(reqs.map((r) => toHex(r.requestHash))));
    // The responses stored before the kill are kept unchanged.
    const after = new Map(final.rows.map((r) => [`${r.request_hash}/${r.i}/${r.j}`, r.response]));
    for (const r of cut.rows) expect(after.get(`${r.request_hash}/${r.i}/${r.j}`)).toBe(r.response);
  }, 180_000);
});
