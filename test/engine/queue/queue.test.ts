import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOBS_TABLE, LeaseLostError } from '../../../src/engine/queue/index.js';
import { withTransaction as withTransactionTest } from '../../../src/engine/store/index.js';
import { queueFixture, type QueueFixture } from './harness.js';

describe.each(['sqlite', 'postgres'] as const)('JobQueue on %s', (dialect) => {
  let f: QueueFixture;
  let n = 0;
  /** A queue name of its own for each test, so tests share the database but not jobs. */
  const q = () => `q${++n}`;

  beforeAll(async () => {
    f = await queueFixture(dialect, 'queue');
  });
  afterAll(async () => {
    await f?.cleanup();
  });

  it('enqueue with an existing idempotency key returns the existing job and creates nothing', async () => {
    const queue = q();
    const a = await f.jobs.enqueue({ queue, kind: 'auth', payload: { v: 1 }, idempotencyKey: 'req-1' });
    const b = await f.jobs.enqueue({ queue, kind: 'auth', payload: { v: 2 }, idempotencyKey: 'req-1' });
    expect(a.created).toBe(true);
    expect(b).toEqual({ id: a.id, created: false });
    expect((await f.jobs.get(a.id))?.payload).toEqual({ v: 1 });
    expect((await f.jobs.counts(queue)).queued).toBe(1);
    // The key is per queue.
    const c = await f.jobs.enqueue({ queue: `${queue}-other`, kind: 'auth', payload: null, idempotencyKey: 'req-1' });
    expect(c.created).toBe(true);
    expect(c.id).not.toBe(a.id);
    expect((await f.jobs.getByKey(queue, 'req-1'))?.id).toBe(a.id);
  });

  it('concurrent enqueues of one key from two connections create one job', async () => {
    const queue = q();
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => (i % 2 ? f.jobs : f.otherJobs).enqueue({ queue, kind: 'k', payload: i, idempotencyKey: 'same' })),
    );
    expect(new Set(results.map((r) => r.id)).size).toBe(1);
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect((await f.jobs.counts(queue)).queued).toBe(1);
  });

  it('enqueue inside the caller transaction commits or rolls back with it', async () => {
    const queue = q();
    await expect(
      withTransactionTest(f.db, async (tx) => {
        await f.jobs.enqueue({ queue, kind: 'k', payload: 1, idempotencyKey: 'rolled-back' }, tx);
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    expect(await f.jobs.getByKey(queue, 'rolled-back')).toBeUndefined();
    await withTransactionTest(f.db, (tx) => f.jobs.enqueue({ queue, kind: 'k', payload: 1, idempotencyKey: 'kept' }, tx));
    expect((await f.jobs.getByKey(queue, 'kept'))?.state).toBe('queued');
  });

  it('claims due jobs in order, leases them, and hides them from other workers', async () => {
    const queue = q();
    const t0 = f.clock.now().getTime();
    await f.jobs.enqueue({ queue, kind: 'k', payload: 'later', idempotencyKey: 'later', runAt: new Date(t0 + 5000) });
    await f.jobs.enqueue({ queue, kind: 'k', payload: 'first', idempotencyKey: 'first', runAt: new Date(t0 - 10) });
    await f.jobs.enqueue({ queue, kind: 'k', payload: 'second', idempotencyKey: 'second' });

    const got = await f.jobs.claim(queue, 'w1', 1000, 10);
    expect(got.map((j) => j.payload)).toEqual(['first', 'second']);
    for (const j of got) {
      expect(j).toMatchObject({ state: 'running', leaseOwner: 'w1', attempts: 1 });
      expect(j.leaseExpiresAt?.getTime()).toBe(t0 + 1000);
    }
    expect(await f.otherJobs.claim(queue, 'w2', 1000, 10)).toEqual([]);
    f.clock.advance(5000); // the 'later' job is now due; the others' leases expired too
    const next = await f.otherJobs.claim(queue, 'w2', 60_000, 1);
    expect(next.map((j) => j.payload)).toEqual(['first']); // oldest run_at first
    expect(await f.jobs.counts(queue)).toEqual({ queued: 1, running: 2, done: 0, dead: 0 });
  });

  it('concurrent claims from two connections never hand out a job twice', async () => {
    const queue = q();
    for (let i = 0; i < 30; i++) await f.jobs.enqueue({ queue, kind: 'k', payload: i, idempotencyKey: `k${i}` });
    const batches = await Promise.all(
      Array.from({ length: 12 }, (_, i) => (i % 2 ? f.jobs : f.otherJobs).claim(queue, `w${i}`, 60_000, 3)),
    );
    const ids = batches.flat().map((j) => j.id);
    expect(ids).toHaveLength(30);
    expect(new Set(ids).size).toBe(30);
    // Every job's lease owner is the one claim that returned it.
    for (const [i, batch] of batches.entries()) {
      for (const j of batch) expect((await f.jobs.get(j.id))?.leaseOwner).toBe(`w${i}`);
    }
  });

  it('an expired lease is reclaimed by another worker; the old holder can no longer act', async () => {
    const queue = q();
    const { id } = await f.jobs.enqueue({ queue, kind: 'k', payload: null, idempotencyKey: 'x' });
    const [mine] = await f.jobs.claim(queue, 'slow', 1000, 1);
    expect(mine?.id).toBe(id);
    f.clock.advance(999);
    expect(await f.otherJobs.claim(queue, 'fast', 1000, 1)).toEqual([]);
    f.clock.advance(1);
    const [theirs] = await f.otherJobs.claim(queue, 'fast', 1000, 1);
    expect(theirs).toMatchObject({ id, leaseOwner: 'fast', attempts: 2 });

    await expect(f.jobs.complete(id, 'slow', 'late')).rejects.toBeInstanceOf(LeaseLostError);
    await expect(f.jobs.heartbeat(id, 'slow', 1000)).rejects.toBeInstanceOf(LeaseLostError);
    await expect(f.jobs.fail(id, 'slow', new Error('x'))).rejects.toBeInstanceOf(LeaseLostError);
    await expect(f.jobs.completeWith(id, 'slow', async () => 'nope')).rejects.toBeInstanceOf(LeaseLostError);

    await f.otherJobs.complete(id, 'fast', { ok: true });
    expect(await f.jobs.get(id)).toMatchObject({ state: 'done', result: { ok: true }, leaseOwner: null, attempts: 2 });
    await expect(f.otherJobs.complete(id, 'fast', 'again')).rejects.toBeInstanceOf(LeaseLostError);
    // A done job is never claimed again, however late.
    f.clock.advance(10 * 60_000);
    expect(await f.jobs.claim(queue, 'any', 1000, 5)).toEqual([]);
  });

  it('failures back off exponentially, then the job is dead', async () => {
    const queue = q();
    const { id } = await f.jobs.enqueue({ queue, kind: 'k', payload: null, idempotencyKey: 'x', maxAttempts: 3 });
    const delays: number[] = [];
    for (let attempt = 1; attempt <= 3; attempt++) {
      const [job] = await f.jobs.claim(queue, 'w', 1000, 1);
      expect(job).toMatchObject({ id, attempts: attempt });
      const now = f.clock.now().getTime();
      const r = await f.jobs.fail(id, 'w', new Error(`attempt ${attempt} broke`));
      if (attempt < 3) {
        expect(r.state).toBe('queued');
        const delay = r.runAt!.getTime() - now;
        delays.push(delay);
        f.clock.advance(delay - 1);
        expect(await f.jobs.claim(queue, 'w', 1000, 1)).toEqual([]); // not yet
        f.clock.advance(1);
      } else {
        expect(r).toEqual({ state: 'dead' });
      }
    }
    expect(delays).toEqual([100, 200]); // base 100, doubling
    const dead = await f.jobs.get(id);
    expect(dead).toMatchObject({ state: 'dead', attempts: 3, lastError: 'Error: attempt 3 broke' });
    f.clock.advance(60_000);
    expect(await f.jobs.claim(queue, 'w', 1000, 1)).toEqual([]);
    expect(await f.jobs.counts(queue)).toEqual({ queued: 0, running: 0, done: 0, dead: 1 });
  });

  it('back-off is capped, and a permanent failure is dead at once', async () => {
    const queue = q();
    const { id } = await f.jobs.enqueue({ queue, kind: 'k', payload: null, idempotencyKey: 'cap', maxAttempts: 10 });
    let last = 0;
    for (let i = 0; i < 4; i++) {
      await f.jobs.claim(queue, 'w', 1000, 1);
      const now = f.clock.now().getTime();
      const r = await f.jobs.fail(id, 'w', 'string error');
      last = r.runAt!.getTime() - now;
      f.clock.advance(last);
    }
    expect(last).toBe(250);
    const { id: id2 } = await f.jobs.enqueue({ queue, kind: 'k', payload: null, idempotencyKey: 'perm', maxAttempts: 10 });
    await f.jobs.claim(queue, 'w', 1000, 5);
    expect(await f.jobs.fail(id2, 'w', new TypeError('malformed'), { permanent: true })).toEqual({ state: 'dead' });
    expect((await f.jobs.get(id2))?.lastError).toBe('TypeError: malformed');
  });

  it('a job whose worker died on the last attempt becomes dead instead of running again', async () => {
    const queue = q();
    const { id } = await f.jobs.enqueue({ queue, kind: 'k', payload: null, idempotencyKey: 'x', maxAttempts: 1 });
    await f.jobs.claim(queue, 'dies', 1000, 1);
    f.clock.advance(1000);
    expect(await f.otherJobs.claim(queue, 'w', 1000, 1)).toEqual([]);
    expect(await f.jobs.get(id)).toMatchObject({ state: 'dead', lastError: expect.stringMatching(/lease expired/) });
  });

  it('heartbeats extend the lease, only for the holder', async () => {
    const queue = q();
    const { id } = await f.jobs.enqueue({ queue, kind: 'k', payload: null, idempotencyKey: 'x' });
    await f.jobs.claim(queue, 'w1', 1000, 1);
    for (let i = 0; i < 5; i++) {
      f.clock.advance(800);
      const until = await f.jobs.heartbeat(id, 'w1', 1000);
      expect(until.getTime()).toBe(f.clock.now().getTime() + 1000);
      expect((await f.jobs.get(id))?.leaseExpiresAt).toEqual(until);
      expect(await f.otherJobs.claim(queue, 'w2', 1000, 1)).toEqual([]);
    }
    await expect(f.jobs.heartbeat(id, 'w2', 1000)).rejects.toBeInstanceOf(LeaseLostError);
    f.clock.advance(1000);
    expect((await f.otherJobs.claim(queue, 'w2', 1000, 1)).map((j) => j.id)).toEqual([id]);
  });

  it('completeWith commits the caller rows and the completion together, or neither', async () => {
    const queue = q();
    await f.db.schema.createTable(`${queue}_out`).addColumn('job', 'text', (c) => c.primaryKey()).execute();
    const { id } = await f.jobs.enqueue({ queue, kind: 'k', payload: null, idempotencyKey: 'x' });
    await f.jobs.claim(queue, 'w', 1000, 1);
    await expect(
      f.jobs.completeWith(id, 'w', async (tx) => {
        await tx.insertInto(`${queue}_out`).values({ job: id }).execute();
        throw new Error('store failed');
      }),
    ).rejects.toThrow('store failed');
    expect(await f.db.selectFrom(`${queue}_out`).selectAll().execute()).toEqual([]);
    expect((await f.jobs.get(id))?.state).toBe('running');
    const r = await f.jobs.completeWith(id, 'w', async (tx) => {
      await tx.insertInto(`${queue}_out`).values({ job: id }).execute();
      return { stored: 1 };
    });
    expect(r).toEqual({ stored: 1 });
    expect(await f.db.selectFrom(`${queue}_out`).selectAll().execute()).toEqual([{ job: id }]);
    expect(await f.jobs.get(id)).toMatchObject({ state: 'done', result: { stored: 1 } });
    expect(JOBS_TABLE).toBe('scms_jobs');
  });
});
