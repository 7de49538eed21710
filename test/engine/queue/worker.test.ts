import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseLostError, Worker, type Job, type JobContext, type Sleep } from '../../../src/engine/queue/index.js';
import { eventually, fastSleep, gate, queueFixture, type QueueFixture } from './harness.js';

describe.each(['sqlite', 'postgres'] as const)('Worker on %s', (dialect) => {
  let f: QueueFixture;
  let n = 0;
  const q = () => `wq${++n}`;

  beforeAll(async () => {
    f = await queueFixture(dialect, 'worker');
  });
  afterAll(async () => {
    await f?.cleanup();
  });

  const allDone = (queue: string, total: number) => async () => (await f.jobs.counts(queue)).done === total;

  it('runs handlers, stores results, and writes handler rows with the completion', async () => {
    const queue = q();
    const out = `${queue}_out`;
    await f.db.schema.createTable(out).addColumn('key', 'text', (c) => c.primaryKey()).addColumn('v', 'integer').execute();
    for (let i = 0; i < 5; i++) await f.jobs.enqueue({ queue, kind: i % 2 ? 'store' : 'plain', payload: { i }, idempotencyKey: `r${i}` });
    const errors: unknown[] = [];
    const w = new Worker({
      jobs: f.jobs,
      queue,
      sleep: fastSleep, // heartbeats every few ms: they race with completions and must stay silent
      concurrency: 2,
      onError: (e) => errors.push(e),
      handler: async (job: Job<{ i: number }>, ctx: JobContext) => {
        if (job.kind === 'plain') return { doubled: job.payload.i * 2 };
        return ctx.transaction(async (tx) => {
          await tx.insertInto(out).values({ key: job.idempotencyKey, v: job.payload.i }).execute();
          return { stored: job.payload.i };
        });
      },
    });
    w.start();
    await eventually(allDone(queue, 5), 'all 5 jobs done');
    await w.stop();
    expect((await f.jobs.getByKey(queue, 'r0'))?.result).toEqual({ doubled: 0 });
    expect((await f.jobs.getByKey(queue, 'r3'))?.result).toEqual({ stored: 3 });
    const rows = await f.db.selectFrom(out).selectAll().orderBy('key').execute();
    expect(rows).toEqual([
      { key: 'r1', v: 1 },
      { key: 'r3', v: 3 },
    ]);
    expect(errors).toEqual([]);
  });

  it('a throwing handler is retried after back-off and its transaction rows are rolled back', async () => {
    const queue = q();
    const out = `${queue}_out`;
    await f.db.schema.createTable(out).addColumn('key', 'text').execute();
    const { id } = await f.jobs.enqueue({ queue, kind: 'k', payload: null, idempotencyKey: 'x', maxAttempts: 3 });
    let calls = 0;
    const errors: unknown[] = [];
    const w = new Worker({
      jobs: f.jobs,
      queue,
      sleep: fastSleep,
      onError: (e) => errors.push(e),
      handler: async (job, ctx) =>
        ctx.transaction(async (tx) => {
          await tx.insertInto(out).values({ key: `${job.id}:${job.attempts}` }).execute();
          if (++calls === 1) throw new Error('first try fails');
          return 'ok';
        }),
    });
    w.start();
    await eventually(async () => (await f.jobs.get(id))?.state === 'queued' && calls === 1, 'first failure recorded');
    expect((await f.jobs.get(id))?.lastError).toBe('Error: first try fails');
    f.clock.advance(100); // back-off of the first failure
    await eventually(allDone(queue, 1), 'retry done');
    await w.stop();
    expect(await f.db.selectFrom(out).selectAll().execute()).toEqual([{ key: `${id}:2` }]);
    expect(await f.jobs.get(id)).toMatchObject({ state: 'done', attempts: 2, result: 'ok' });
    expect(errors).toEqual([]);
  });

  it('keeps at most `concurrency` jobs in flight', async () => {
    const queue = q();
    for (let i = 0; i < 7; i++) await f.jobs.enqueue({ queue, kind: 'k', payload: i, idempotencyKey: `c${i}` });
    let current = 0;
    let max = 0;
    const w = new Worker({
      jobs: f.jobs,
      queue,
      concurrency: 3,
      sleep: fastSleep,
      heartbeatMs: 0,
      handler: async () => {
        max = Math.max(max, ++current);
        await new Promise((r) => setTimeout(r, 10));
        current--;
      },
    });
    w.start();
    await eventually(allDone(queue, 7), 'all done');
    await w.stop();
    expect(max).toBe(3);
  });

  it('two workers on two connections handle every job exactly once', async () => {
    const queue = q();
    const total = 40;
    for (let i = 0; i < total; i++) await f.jobs.enqueue({ queue, kind: 'k', payload: i, idempotencyKey: `e${i}` });
    const seen: string[] = [];
    const errors: unknown[] = [];
    const make = (jobs: typeof f.jobs, workerId: string) =>
      new Worker({
        jobs,
        queue,
        workerId,
        concurrency: 4,
        sleep: fastSleep,
        onError: (e) => errors.push(e),
        handler: async (job) => {
          seen.push(job.id);
          await new Promise((r) => setTimeout(r, 1));
          return workerId;
        },
      });
    const a = make(f.jobs, 'A');
    const b = make(f.otherJobs, 'B');
    a.start();
    b.start();
    await eventually(allDone(queue, total), 'all done');
    await Promise.all([a.stop(), b.stop()]);
    expect(seen).toHaveLength(total);
    expect(new Set(seen).size).toBe(total);
    expect(errors).toEqual([]);
  });

  it('heartbeats keep a long job leased to its worker', async () => {
    const queue = q();
    const { id } = await f.jobs.enqueue({ queue, kind: 'k', payload: null, idempotencyKey: 'x' });
    const finish = gate();
    const running = gate();
    const w = new Worker({
      jobs: f.jobs,
      queue,
      leaseMs: 1000,
      heartbeatMs: 300,
      sleep: fastSleep,
      handler: async () => {
        running.open();
        await finish.promise;
        return 'finished';
      },
    });
    w.start();
    await running.promise;
    // Move time well past the original lease, one step at a time, letting a heartbeat land each step.
    for (let i = 0; i < 5; i++) {
      f.clock.advance(600);
      const now = f.clock.now().getTime();
      await eventually(async () => ((await f.jobs.get(id))?.leaseExpiresAt?.getTime() ?? 0) > now, 'lease extended');
      expect(await f.otherJobs.claim(queue, 'thief', 1000, 1)).toEqual([]);
    }
    finish.open();
    await eventually(allDone(queue, 1), 'done');
    await w.stop();
    expect(await f.jobs.get(id)).toMatchObject({ attempts: 1, result: 'finished' });
  });

  it('a worker that lost its lease is told so and cannot complete the job', async () => {
    const queue = q();
    const out = `${queue}_out`;
    await f.db.schema.createTable(out).addColumn('who', 'text').execute();
    const { id } = await f.jobs.enqueue({ queue, kind: 'k', payload: null, idempotencyKey: 'x' });
    const running = gate();
    let aborted: unknown;
    let commitError: unknown;
    const errors: unknown[] = [];
    // Heartbeats wait for this gate, so none can land between the clock jump and the theft.
    const beats = gate();
    const sleep: Sleep = (ms, signal) =>
      ms === 300
        ? Promise.race([beats.promise, new Promise<void>((r) => signal?.addEventListener('abort', () => r()))]).then(() => fastSleep(ms, signal))
        : fastSleep(ms, signal);
    const w = new Worker({
      jobs: f.jobs,
      queue,
      workerId: 'stale',
      leaseMs: 1000,
      heartbeatMs: 300,
      sleep,
      onError: (e) => errors.push(e),
      handler: async (_job, ctx) => {
        running.open();
        await new Promise<void>((r) => ctx.signal.addEventListener('abort', () => r(), { once: true }));
        aborted = ctx.signal.reason;
        try {
          await ctx.transaction(async (tx) => void (await tx.insertInto(out).values({ who: 'stale' }).execute()));
        } catch (e) {
          commitError = e;
          throw e;
        }
      },
    });
    // Steal the job: its lease expires before any heartbeat lands (time jumps), another worker claims it.
    w.start();
    await running.promise;
    f.clock.advance(1000);
    const [stolen] = await f.otherJobs.claim(queue, 'thief', 60_000, 1);
    expect(stolen?.id).toBe(id);
    beats.open();
    await eventually(() => commitError !== undefined, 'stale worker gave up');
    await w.stop();
    expect(aborted).toBeInstanceOf(LeaseLostError);
    expect(commitError).toBeInstanceOf(LeaseLostError);
    expect(await f.db.selectFrom(out).selectAll().execute()).toEqual([]);
    expect(await f.jobs.get(id)).toMatchObject({ state: 'running', leaseOwner: 'thief', lastError: null });
    await f.otherJobs.complete(id, 'thief', 'mine');
    expect(errors.some((e) => e instanceof LeaseLostError)).toBe(true);
  });

  it('stop() lets jobs in flight finish and claims nothing more', async () => {
    const queue = q();
    for (let i = 0; i < 2; i++) await f.jobs.enqueue({ queue, kind: 'k', payload: i, idempotencyKey: `s${i}` });
    const release = gate();
    let started = 0;
    const w = new Worker({
      jobs: f.jobs,
      queue,
      concurrency: 2,
      sleep: fastSleep,
      handler: async (job) => {
        started++;
        await release.promise;
        return `done ${String(job.payload)}`;
      },
    });
    w.start();
    await eventually(() => started === 2, 'both started');
    let stopped = false;
    const stopping = w.stop().then(() => (stopped = true));
    for (let i = 2; i < 5; i++) await f.jobs.enqueue({ queue, kind: 'k', payload: i, idempotencyKey: `s${i}` });
    await new Promise((r) => setTimeout(r, 30));
    expect(stopped).toBe(false); // still waiting for the two in flight
    expect(w.inFlight).toBe(2);
    release.open();
    await stopping;
    expect(await f.jobs.counts(queue)).toEqual({ queued: 3, running: 0, done: 2, dead: 0 });
    expect(started).toBe(2);
  });
});
