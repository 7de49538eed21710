// A device that continues from its state directory (issue: "`scms ee simulate --state DIR` continues where it left
// off: next period's download, successor enrollment when the enrollment certificate nears expiry"), against
// `serve all` in-process (real HTTP on 127.0.0.1, real SQLite files, the trust directory of `manager init`), the
// server and the device on one ManualClock that the test moves through i-periods.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulate, type SimulateOptions, type SimulationReport } from '../../../src/engine/ee/simulate.js';
import { EeStateDir } from '../../../src/engine/ee/state.js';
import { loadTrustDir } from '../../../src/engine/manager/trust-dir.js';
import type { ServeResult } from '../../../src/engine/serve.js';
import { dateToTime32, iPeriodOf, iPeriodStart, ManualClock, time32ToDate, type IPeriodParams } from '../../../src/security/time.js';
import { iPeriodParamsOf } from '../../../src/engine/policy/index.js';
import { rootHashOf, serveAllInProcess } from '../../helpers/serve-all.js';
import { initTestTrustDir } from '../../helpers/trust-dir.js';

const PASS = 'continue test passphrase';
const OPERATOR = 'operator-token-continue-test-0001';

describe('ee simulate continues from its state: next batches and successor enrollment', () => {
  let base: string;
  let running: ServeResult;
  let url: string;
  let root: string;
  let ip: IPeriodParams;
  let overlap: number;
  // Server and device share this clock; a device wait moves it (and lets the RA's worker run in real time).
  const clock = new ManualClock(new Date(Date.now() - 60_000).toISOString());
  const sleep = async (ms: number) => {
    clock.advance(ms);
    await new Promise((r) => setTimeout(r, 60));
  };

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'scms-continue-'));
    const trustDir = join(base, 'scms');
    await initTestTrustDir(trustDir, PASS, { clock: new ManualClock(clock.now().getTime() - 60_000) });
    const td = loadTrustDir(trustDir);
    root = rootHashOf(trustDir);
    ip = iPeriodParamsOf(td.globalPolicy!.json);
    overlap = td.globalPolicy!.json['time-overlap'];
    running = await serveAllInProcess({ trustDir, dataDir: join(base, 'data'), passphrase: PASS, operatorToken: OPERATOR, clock });
    url = running.address.url;
  }, 120_000);
  afterAll(async () => {
    await running?.server.close();
    rmSync(base, { recursive: true, force: true });
  });

  const run = async (extra: Partial<SimulateOptions> = {}): Promise<SimulationReport> => {
    const state = new EeStateDir(join(base, 'obu'), { passphrase: 'device passphrase', scrypt: { N: 1024 } });
    try {
      return await simulate({
        state,
        raUrl: url,
        deviceType: 'obu',
        cert: 'pseudonym',
        form: 'implicit',
        butterfly: 'unified',
        encrypted: false,
        trustedRootHashes: [root],
        operatorToken: OPERATOR,
        clock,
        http: { sleep },
        ...extra,
      });
    } finally {
      await state.close();
    }
  };
  const steps = (r: SimulationReport) => r.steps.map((s) => `${s.step}:${s.status}`);
  const periods = (r: SimulationReport) => [...new Set(r.certificates.map((c) => c.i))].sort((a, b) => a! - b!);
  const devices = async () =>
    ((await (await fetch(`${url}/v3/devices?canonicalId=${first.canonicalId}`, { headers: { authorization: `Bearer ${OPERATOR}` } })).json()) as { devices: Array<{ deviceId: string }> }).devices;
  const batches = async () => {
    const r = await fetch(`${url}/v3/devices/${first.deviceId}`, { headers: { authorization: `Bearer ${OPERATOR}` } });
    return ((await r.json()) as { certificates: Array<{ kind: string }> }).certificates.filter((c) => c.kind === 'authorization-batch').length;
  };
  let first: SimulationReport;

  it('first run: 20 certificates of the current i-period; a second run at once asks for nothing', async () => {
    first = await run();
    expect(first.complete).toBe(true);
    const i0 = iPeriodOf(ip, dateToTime32(clock.now()));
    expect(periods(first)).toEqual([i0]);
    expect(first.certificates.every((c) => c.message?.verified)).toBe(true);
    expect(JSON.parse(readFileSync(join(base, 'obu', 'state.json'), 'utf8')).registration.state).toBe('enrolled');

    const again = await run();
    expect(steps(again)).toEqual(['bootstrap:done', 'register:already done', 'enroll:already done', 'request:already done', 'download:already done', 'use:done']);
    expect(again.certificates.map((c) => c.hashedId8).sort()).toEqual(first.certificates.map((c) => c.hashedId8).sort());
    expect(await devices()).toHaveLength(1);
  }, 120_000);

  it('in the next i-period (inside the overlap): a new request for it; the old batch is kept until it expires, then dropped', async () => {
    const i0 = first.certificates[0]!.i!;
    clock.set(time32ToDate(iPeriodStart(ip, i0 + 1) + 600));
    const next = await run();
    expect(steps(next)).toEqual(['bootstrap:done', 'register:already done', 'enroll:already done', 'request:done', 'download:done', 'use:done']);
    expect(periods(next)).toEqual([i0, i0 + 1]);
    expect(next.certificates.filter((c) => c.i === i0 + 1)).toHaveLength(20);
    expect(next.certificates.every((c) => c.verified && c.message?.verified)).toBe(true);
    // The RA recorded the device's second batch (as a batch: it never sees the certificates).
    expect(await batches()).toBe(2);

    // Past the overlap: batch i0 has expired and is dropped, batch i0 + 1 is held, nothing is asked.
    clock.set(time32ToDate(iPeriodStart(ip, i0 + 1) + overlap + 60));
    const later = await run();
    expect(steps(later)).toEqual(['bootstrap:done', 'register:already done', 'enroll:already done', 'request:already done', 'download:already done', 'use:done']);
    expect(periods(later)).toEqual([i0 + 1]);
  }, 120_000);

  it('a look-ahead of one i-period: the next batch is asked for ahead and held, not used to sign', async () => {
    const r = await run({ lookAheadSeconds: ip.iPeriodLength });
    expect(steps(r)).toContain('request:done');
    const i1 = periods(r)[0]!;
    expect(periods(r)).toEqual([i1, i1 + 1]);
    const held = r.certificates.filter((c) => c.i === i1 + 1);
    expect(held).toHaveLength(20);
    expect(held.every((c) => c.verified && c.message === undefined)).toBe(true);
    expect(await batches()).toBe(3);
    expect(r.certificates.filter((c) => c.i === i1).every((c) => c.message?.verified)).toBe(true);
  }, 120_000);

  it('the enrollment certificate nears expiry: a continued run enrolls its successor and asks the next batch with it', async () => {
    const before = first.enrollment!.hashedId8;
    // Renewal window longer than the certificate's remaining life: due now.
    const r = await run({ renewEnrollmentBeforeSeconds: 10 * 365 * 86_400 });
    expect(steps(r)).toContain('successor:done');
    expect(r.enrollment!.hashedId8).not.toBe(before);
    // Default window (30 days): not due for the new certificate; the next run uses it for a new request.
    const after = await run();
    expect(steps(after)).not.toContain('successor:done');
    expect(after.enrollment!.hashedId8).toBe(r.enrollment!.hashedId8);
    expect(after.complete).toBe(true);
    expect(after.certificates.length).toBeGreaterThan(0);
    expect(steps(after)).toContain('request:done');
    expect(await batches()).toBe(4);
  }, 120_000);
});
