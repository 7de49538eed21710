// `scms ee simulate --count N --concurrency C` (fleet mode) as a real process against a real `scms serve all`
// child (node bin/run.js; the dist/ build from `npx tsc -p .`): 300 devices, each registered, enrolled, given its
// 20 pseudonym certificates (the default policy), every certificate verified and used. The report's numbers are
// checked against the server's own records: the operator API (GET /v3/devices, /v3/devices/:id) and the RA's and
// ECA's SQLite stores (authorization requests, stored ACA responses, enrollment requests and certificates).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FleetReport } from '../../src/engine/ee/fleet.js';
import { startServeAll, type ServeAll } from '../helpers/serve-all.js';

const bin = new URL('../../bin/run.js', import.meta.url).pathname;
const PASS = 'ee fleet test: scms passphrase';
const OPERATOR = 'operator-token-ee-fleet-test-0001';
const N = 300;
const C = 24;

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

describe('scms ee simulate --count (fleet) against scms serve all', () => {
  let base: string;
  let url: string;
  let rootHash: string;
  let serveAll: ServeAll | undefined;

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'scms-ee-fleet-'));
    serveAll = await startServeAll({ base, passphrase: PASS, operatorToken: OPERATOR });
    rootHash = serveAll.rootHash;
    url = serveAll.url;
  }, 120_000);

  afterAll(() => {
    serveAll?.kill();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  const operator = async <T>(path: string): Promise<T> => {
    const r = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${OPERATOR}` } });
    expect(r.status, await r.clone().text()).toBe(200);
    return (await r.json()) as T;
  };

  /** Every device the RA has registered, through the paged operator list. */
  const allDevices = async () => {
    const out: Array<{ deviceId: string; state: string }> = [];
    for (let after: string | null = null; ; ) {
      const page: { devices: Array<{ deviceId: string; state: string }>; next: string | null } = await operator(`/v3/devices?limit=1000${after ? `&after=${after}` : ''}`);
      out.push(...page.devices);
      if (!page.next) return out;
      after = page.next;
    }
  };

  it(`${N} devices, concurrency ${C}: the report matches the server's records (operator API, RA and ECA stores)`, async () => {
    const reportFile = join(base, 'fleet.json');
    const args = ['ee', 'simulate', '--ra', url, '--trust-root', rootHash, '--count', String(N), '--concurrency', String(C), '--report', reportFile];
    const r = await scms([...args, '--json'], { SCMS_OPERATOR_TOKEN: OPERATOR });
    expect(r.status, r.stdout.slice(0, 2000) + r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as FleetReport;
    expect(JSON.parse(readFileSync(reportFile, 'utf8'))).toEqual(report);
    expect(report.devices).toEqual({ requested: N, completed: N, failed: 0, pending: 0 });
    expect(report.errors).toEqual([]);
    expect(report.concurrency).toBe(C);
    expect(report.peakRssBytes).toBeGreaterThan(0);
    // No state directory: the fleet ran in memory.
    expect(report.config.stateDir).toBeUndefined();

    // The server's records: N registered devices, exactly the report's, each with its certificates.
    const devices = await allDevices();
    expect(devices).toHaveLength(N);
    expect(new Set(devices.map((d) => d.deviceId))).toEqual(new Set(report.deviceIds));
    // The RA records per device its enrollment certificate and each authorization batch it delivered.
    const kinds = new Map<string, number>();
    for (const d of devices) {
      const one = await operator<{ state: string; certificates: Array<{ kind: string; hashedId8: string }> }>(`/v3/devices/${d.deviceId}`);
      expect(one.state).not.toBe('blocked');
      for (const c of one.certificates) kinds.set(c.kind, (kinds.get(c.kind) ?? 0) + 1);
    }
    expect(Object.fromEntries(kinds)).toEqual({ enrollment: N, 'authorization-batch': N });
    // One batch per device, all of the same size: certificates = batches x batch size.
    const per = report.certificatesPerDevice;
    expect(per.min).toBeGreaterThan(0);
    expect(per.max).toBe(per.min);
    expect(report.certificates).toBe(kinds.get('authorization-batch')! * per.min);

    // Requests per endpoint: one registration, enrollment, request per device; the trust files fetched once.
    const ep = new Map(report.endpoints.map((e) => [e.endpoint, e]));
    expect(ep.get('POST /v3/devices')).toMatchObject({ requests: N, statuses: { '201': N } });
    expect(ep.get('POST /v3/enrollment-certificate')).toMatchObject({ requests: N, statuses: { '200': N } });
    expect(ep.get('POST /v3/authorization-certificate')).toMatchObject({ requests: N, statuses: { '200': N } });
    expect(ep.get('GET /v3/authorization-certificate')!.statuses['200']).toBe(N);
    for (const e of report.endpoints) {
      if (!e.endpoint.includes('/v3/devices') && !e.endpoint.includes('authorization-certificate') && !e.endpoint.includes('enrollment-certificate')) expect(e.requests, e.endpoint).toBe(1);
      expect(e.p50Ms).toBeLessThanOrEqual(e.p95Ms);
      expect(e.p95Ms).toBeLessThanOrEqual(e.p99Ms);
      expect(e.p99Ms).toBeLessThanOrEqual(e.maxMs);
    }
    expect(report.requests).toBe(report.endpoints.reduce((s, e) => s + e.requests, 0));

    // The stores behind the services (read-only, while the server runs).
    const ids = new Set(report.deviceIds);
    const ra = new Database(join(base, 'data', 'ra.db'), { readonly: true, fileMustExist: true });
    const eca = new Database(join(base, 'data', 'eca.db'), { readonly: true, fileMustExist: true });
    try {
      // One authorization request per device (POST /v3/authorization-certificate), from exactly these devices.
      const requests = ra.prepare('select device_id as d, request_hash as h from ra_authorization_requests').all() as Array<{ d: string; h: string }>;
      expect(requests).toHaveLength(ep.get('POST /v3/authorization-certificate')!.requests);
      expect(new Set(requests.map((x) => x.d))).toEqual(ids);
      // Every stored ACA response of those requests reached a device and was counted: certificates = responses.
      const responses = ra.prepare('select lower(hex(request_hash)) as h, count(*) as n from ra_pseudonym_responses group by request_hash').all() as Array<{ h: string; n: number }>;
      expect(new Set(responses.map((x) => x.h))).toEqual(new Set(requests.map((x) => x.h.toLowerCase())));
      expect(responses.reduce((s, x) => s + x.n, 0)).toBe(report.certificates);
      expect(responses.every((x) => x.n === per.min)).toBe(true);
      // Enrollment: one request and one enrollment certificate per device (POST /v3/enrollment-certificate).
      const enrolled = eca.prepare('select device_id as d from eca_enrollment_certificates').all() as Array<{ d: string }>;
      expect(enrolled).toHaveLength(ep.get('POST /v3/enrollment-certificate')!.statuses['200']!);
      expect(new Set(enrolled.map((x) => x.d))).toEqual(ids);
      expect((eca.prepare('select count(*) as n from eca_requests').get() as { n: number }).n).toBe(N);
    } finally {
      ra.close();
      eca.close();
    }
  }, 300_000);

  it('a wrong operator token: every device fails at register, grouped as one cause; exit 1; summary on stdout', async () => {
    const before = (await allDevices()).length;
    const reportFile = join(base, 'bad-token.json');
    const args = ['ee', 'simulate', '--ra', url, '--trust-root', rootHash, '--count', '12', '--concurrency', '4', '--report', reportFile];
    const r = await scms(args, { SCMS_OPERATOR_TOKEN: 'not-the-operator-token-000000000' });
    expect(r.status, r.stdout + r.stderr).toBe(1);
    const report = JSON.parse(readFileSync(reportFile, 'utf8')) as FleetReport;
    expect(report.devices).toEqual({ requested: 12, completed: 0, failed: 12, pending: 0 });
    expect(report.certificates).toBe(0);
    expect(report.errors).toHaveLength(1);
    expect(report.errors[0]).toMatchObject({ step: 'register', status: 401, count: 12 });
    expect(report.errors[0]!.cause).toMatch(/^register: HTTP 401(-\d+)?$/);
    expect(r.stdout).toContain('fleet summary');
    expect(r.stdout).toContain('register: HTTP 401');
    expect(r.stdout).toMatch(/POST \/v3\/devices\s+12/);
    expect((await allDevices()).length).toBe(before);
  }, 60_000);

  it('no operator token: the RA refuses unknown devices at enrollment, grouped by 1609.2.1 code', async () => {
    const reportFile = join(base, 'unregistered.json');
    const r = await scms(['ee', 'simulate', '--ra', url, '--trust-root', rootHash, '--count', '6', '--concurrency', '3', '--report', reportFile, '--json']);
    expect(r.status, r.stdout + r.stderr).toBe(1);
    const report = JSON.parse(r.stdout) as FleetReport;
    expect(report.devices.failed).toBe(6);
    expect(report.errors).toHaveLength(1);
    const e = report.errors[0]!;
    expect(e.step).toBe('enroll');
    expect(e.count).toBe(6);
    expect(e.code).toBeDefined();
    expect(e.cause).toBe(`enroll: HTTP ${e.status}-${e.code}`);
    expect(report.certificatesPerDevice).toEqual({ min: 0, max: 0 });
    expect(e.meaning).toMatch(/unknown|not registered/);
    expect(existsSync(reportFile)).toBe(true);
  }, 60_000);
});
