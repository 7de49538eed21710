// Fleet mode over connections that get lost: a real `scms serve all` child (node bin/run.js; the dist/ build from
// `npx tsc -p .`) behind a proxy (test/engine/ee/reset-proxy.ts) that resets the connection of the first request to
// each device endpoint before it reaches the server (as a server closing a kept-alive connection just as the client
// reuses it does). Every device still completes, and the server's records show each request exactly once.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFleet } from '../../src/engine/ee/fleet.js';
import { systemClock } from '../../src/security/time.js';
import { startResetProxy, type ResetProxy } from '../engine/ee/reset-proxy.js';
import { startServeAll, type ServeAll } from '../helpers/serve-all.js';

const PASS = 'ee fleet reset test: scms passphrase';
const OPERATOR = 'operator-token-ee-fleet-reset-0001';
const N = 6;
/** The device endpoints; the first request to each (and the 3rd enrollment, on a reused connection) is reset. */
const RESET = new Map([
  ['POST /v3/devices', [1]],
  ['POST /v3/enrollment-certificate', [1, 3]],
  ['POST /v3/authorization-certificate', [1]],
  ['GET /v3/authorization-certificate', [1]],
]);

describe('fleet mode: connections reset before the request reached the server', () => {
  let base: string;
  let rootHash: string;
  let serveAll: ServeAll | undefined;
  let target: { host: string; port: number };
  let proxy: ResetProxy | undefined;

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'scms-ee-fleet-reset-'));
    serveAll = await startServeAll({ base, passphrase: PASS, operatorToken: OPERATOR });
    rootHash = serveAll.rootHash;
    target = { host: '127.0.0.1', port: serveAll.port };
  }, 120_000);

  afterAll(async () => {
    await proxy?.close();
    serveAll?.kill();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it(`${N} devices complete; each reset request was sent again and recorded once by the server`, async () => {
    proxy = await startResetProxy(target, (method, path, n) => (RESET.get(`${method} ${path}`)?.includes(n) ? 'reset' : 'forward'));
    const report = await runFleet({ raUrl: proxy.url, trustedRootHashes: [rootHash], count: N, concurrency: 3, operatorToken: OPERATOR, clock: systemClock });
    expect(report.errors).toEqual([]);
    expect(report.devices).toEqual({ requested: N, completed: N, failed: 0, pending: 0 });
    const lag = report.eventLoopDelayMs;
    expect(lag.p50).toBeGreaterThan(0);
    expect(lag.p50).toBeLessThanOrEqual(lag.p99);
    expect(lag.p99).toBeLessThanOrEqual(lag.max);
    expect(proxy.seen.filter((s) => s.action === 'reset').map((s) => s.request).sort()).toEqual(
      [...RESET].flatMap(([k, ns]) => ns.map(() => k)).sort(),
    );

    // The fleet's own count: each reset is an exchange without an answer (status 0), then the resend's answer.
    const ep = new Map(report.endpoints.map((e) => [e.endpoint, e]));
    expect(ep.get('POST /v3/devices')).toMatchObject({ requests: N + 1, statuses: { '0': 1, '201': N } });
    expect(ep.get('POST /v3/enrollment-certificate')).toMatchObject({ requests: N + 2, statuses: { '0': 2, '200': N } });
    expect(ep.get('POST /v3/authorization-certificate')).toMatchObject({ requests: N + 1, statuses: { '0': 1, '200': N } });
    const dl = ep.get('GET /v3/authorization-certificate')!;
    expect(dl.statuses['0']).toBe(1);
    expect(dl.statuses['200']).toBe(N);

    // The server's records: every request once (none of the reset ones arrived), for exactly these devices.
    const r = await fetch(`http://${target.host}:${target.port}/v3/devices?limit=1000`, { headers: { authorization: `Bearer ${OPERATOR}` } });
    const devices = ((await r.json()) as { devices: Array<{ deviceId: string }> }).devices;
    expect(new Set(devices.map((d) => d.deviceId))).toEqual(new Set(report.deviceIds));
    expect(devices).toHaveLength(N);
    const ra = new Database(join(base, 'data', 'ra.db'), { readonly: true, fileMustExist: true });
    const eca = new Database(join(base, 'data', 'eca.db'), { readonly: true, fileMustExist: true });
    try {
      const requests = ra.prepare('select device_id as d from ra_authorization_requests').all() as Array<{ d: string }>;
      expect(requests).toHaveLength(N);
      expect(new Set(requests.map((x) => x.d))).toEqual(new Set(report.deviceIds));
      expect((eca.prepare('select count(*) as n from eca_requests').get() as { n: number }).n).toBe(N);
      expect((eca.prepare('select count(*) as n from eca_enrollment_certificates').get() as { n: number }).n).toBe(N);
    } finally {
      ra.close();
      eca.close();
    }
  }, 120_000);

  it('enrollment and authorization answers lost after the server acted: the device completes, no request is counted twice', async () => {
    await proxy?.close();
    const lost = new Set(['POST /v3/enrollment-certificate', 'POST /v3/authorization-certificate']);
    proxy = await startResetProxy(target, (method, path, n) => (lost.has(`${method} ${path}`) && n === 1 ? 'drop-answer' : 'forward'));
    const report = await runFleet({ raUrl: proxy.url, trustedRootHashes: [rootHash], count: 2, concurrency: 1, operatorToken: OPERATOR, clock: systemClock });
    expect(report.errors).toEqual([]);
    expect(report.devices).toEqual({ requested: 2, completed: 2, failed: 0, pending: 0 });
    const ep = new Map(report.endpoints.map((e) => [e.endpoint, e]));
    // Enrollment: lost answer (0), the resend refused as a replay (400), a new request after eca-minWait (200).
    expect(ep.get('POST /v3/enrollment-certificate')).toMatchObject({ statuses: { '0': 1, '400': 1, '200': 2 } });
    // Authorization: lost ack (0), the resend refused as a replay (400): the request stands, the batch downloads.
    expect(ep.get('POST /v3/authorization-certificate')).toMatchObject({ statuses: { '0': 1, '400': 1, '200': 1 } });
    const ra = new Database(join(base, 'data', 'ra.db'), { readonly: true, fileMustExist: true });
    const eca = new Database(join(base, 'data', 'eca.db'), { readonly: true, fileMustExist: true });
    try {
      for (const d of report.deviceIds) {
        expect((ra.prepare('select count(*) as n from ra_authorization_requests where device_id = ?').get(d) as { n: number }).n, d).toBe(1);
      }
      const certs = report.deviceIds.map((d) => (eca.prepare('select count(*) as n from eca_enrollment_certificates where device_id = ?').get(d) as { n: number }).n);
      expect(certs.sort()).toEqual([1, 2]); // the first device's lost certificate stays issued; it uses the second
    } finally {
      ra.close();
      eca.close();
    }
  }, 120_000);

  it('a registration whose answer was lost after the RA stored it: the resend gets 409, the device goes on with that id', async () => {
    await proxy?.close();
    proxy = await startResetProxy(target, (method, path, n) => (method === 'POST' && path === '/v3/devices' && n === 1 ? 'drop-answer' : 'forward'));
    const list = async () => {
      const r = await fetch(`http://${target.host}:${target.port}/v3/devices?limit=1000`, { headers: { authorization: `Bearer ${OPERATOR}` } });
      return ((await r.json()) as { devices: Array<{ deviceId: string }> }).devices.map((d) => d.deviceId);
    };
    const before = new Set(await list());
    const report = await runFleet({ raUrl: proxy.url, trustedRootHashes: [rootHash], count: 3, concurrency: 1, operatorToken: OPERATOR, clock: systemClock });
    expect(report.errors).toEqual([]);
    expect(report.devices).toEqual({ requested: 3, completed: 3, failed: 0, pending: 0 });
    expect(new Map(report.endpoints.map((e) => [e.endpoint, e])).get('POST /v3/devices')).toMatchObject({ requests: 4, statuses: { '0': 1, '201': 2, '409': 1 } });
    // Three new devices on the server, exactly the fleet's: the lost answer's registration was taken, not repeated.
    const added = (await list()).filter((d) => !before.has(d));
    expect(new Set(added)).toEqual(new Set(report.deviceIds));
    expect(added).toHaveLength(3);
  }, 120_000);
});
