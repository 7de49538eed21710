import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobQueue, Worker } from '../../../src/engine/queue/index.js';
import { ManualClock } from '../../../src/security/time.js';
import { ATTEMPT_LOG, createCrashTables, EXTERNAL, RESULTS, runHandler } from './fixtures/crash-handler.js';
import { eventually, fastSleep, queueFixture, type QueueFixture } from './harness.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/crash-worker.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../../../', import.meta.url));

/** Starts the child, waits until it reports being at `mode`, kills it with SIGKILL, waits for its death. */
async function runAndKill(url: string, queue: string, clockMs: number, leaseMs: number, mode: string): Promise<{ pid: number; jobId: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, url, queue, String(clockMs), String(leaseMs), mode], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? code)));
  const jobId = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`child did not reach ${mode} in time; stderr: ${err}`)), 30_000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(new RegExp(`^${mode} (\\S+)$`, 'm'));
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    void exited.then((how) => {
      clearTimeout(timer);
      reject(new Error(`child exited (${String(how)}) before reaching ${mode}; stderr: ${err}`));
    });
  });
  child.kill('SIGKILL');
  expect(await exited).toBe('SIGKILL');
  return { pid: child.pid!, jobId };
}

describe.each(['sqlite', 'postgres'] as const)('a worker killed with SIGKILL on %s', (dialect) => {
  let f: QueueFixture;
  let n = 0;
  const LEASE = 5000;

  beforeAll(async () => {
    f = await queueFixture(dialect, 'crash');
    await createCrashTables(f.db);
  });
  afterAll(async () => {
    await f?.cleanup();
  });

  it.each(['in-handler', 'in-transaction'] as const)('%s: the job is finished by another worker, effects exactly once', async (mode) => {
    const queue = `crash${++n}`;
    const key = `request-hash-${queue}`;
    const { id } = await f.jobs.enqueue({ queue, kind: 'authorization', payload: { n }, idempotencyKey: key });
    const t0 = f.clock.now().getTime();

    const { pid, jobId } = await runAndKill(f.url, queue, t0, LEASE, mode);
    expect(jobId).toBe(id);
    const child = `child-${pid}`;
    // The child's attempt is visible: job still leased to the dead child, its external effect done,
    // but no result row (the kill came before the commit, or in the middle of its transaction).
    expect(await f.jobs.get(id)).toMatchObject({ state: 'running', leaseOwner: child, attempts: 1 });
    expect(await f.db.selectFrom(ATTEMPT_LOG).select('worker').where('job_id', '=', id).execute()).toEqual([{ worker: child }]);
    expect(await f.db.selectFrom(RESULTS).selectAll().where('idempotency_key', '=', key).execute()).toEqual([]);

    // A new worker (this process) sees nothing until the dead child's lease has run out.
    const clock = new ManualClock(t0 + LEASE - 1);
    const jobs = new JobQueue(f.db, { clock });
    expect(await jobs.claim(queue, 'probe', 1000, 1)).toEqual([]);
    clock.set(t0 + LEASE);
    const w = new Worker({
      jobs,
      queue,
      workerId: 'survivor',
      sleep: fastSleep,
      handler: (job, ctx) => runHandler(f.db, job, ctx, 'survivor', async () => {}),
    });
    w.start();
    await eventually(async () => (await jobs.get(id))?.state === 'done', 'job done by the survivor');
    await w.stop();

    expect(await jobs.get(id)).toMatchObject({ state: 'done', attempts: 2, result: { worker: 'survivor' } });
    // The handler ran twice (at least once delivery) ...
    const attempts = await f.db.selectFrom(ATTEMPT_LOG).select('worker').where('job_id', '=', id).execute();
    expect(attempts.map((a) => a.worker)).toEqual([child, 'survivor']);
    // ... and every effect exists exactly once.
    expect(await f.db.selectFrom(EXTERNAL).selectAll().where('idempotency_key', '=', key).execute()).toEqual([
      { idempotency_key: key, worker: child },
    ]);
    expect(await f.db.selectFrom(RESULTS).selectAll().where('idempotency_key', '=', key).execute()).toEqual([
      { idempotency_key: key, value: 'by survivor' },
    ]);
    expect(await jobs.counts(queue)).toEqual({ queued: 0, running: 0, done: 1, dead: 0 });
  });
});
