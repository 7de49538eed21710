// Durable, table-backed job queue in the component's own database.
import { randomUUID } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import { systemClock, type Clock } from '../../security/time.js';
import { toSafeNumber } from '../store/columns.js';
import { dialectOf } from '../store/database.js';
import { migrate } from '../store/migrate.js';
import { withTransaction } from '../store/transaction.js';
import { backoffDelayMs, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
import { describeError, LeaseLostError } from './errors.js';
import { rowToJob, toJsonText, type Job } from './job.js';
import { JOB_STATES, JOBS_TABLE, queueMigrations, type JobState, type QueueTables } from './schema.js';

export interface EnqueueSpec {
  queue: string;
  kind: string;
  /** Any JSON-serialisable value. */
  payload: unknown;
  /** Unique per queue; enqueueing the same key again returns the existing job. */
  idempotencyKey: string;
  /** Not before this time (default: now). */
  runAt?: Date;
  /** Attempts before the job is dead (default: the queue's default, 5). */
  maxAttempts?: number;
}

export interface EnqueueResult {
  id: string;
  /** False when a job with this idempotency key already existed (nothing was created). */
  created: boolean;
}

export interface FailOptions {
  /** Dead at once, no further attempts (e.g. a malformed request). */
  permanent?: boolean;
}

export interface FailResult {
  state: 'queued' | 'dead';
  /** When the next attempt may start (state 'queued'). */
  runAt?: Date;
}

export interface JobQueueOptions {
  clock?: Clock;
  backoff?: Partial<BackoffOptions>;
  defaultMaxAttempts?: number;
}

type QDb = Kysely<QueueTables>;

/**
 * Jobs live in table `scms_jobs`. States: queued -> running (leased to one worker until
 * lease_expires_at) -> done | queued again (after a failure, with back-off) | dead.
 * A running job whose lease ran out can be claimed by any worker; completion and failure are
 * accepted only from the current lease holder, so a job's completion commits exactly once.
 * Times come from the injected clock (workers on several hosts need roughly synchronised clocks).
 */
export class JobQueue {
  readonly db: Kysely<any>;
  readonly clock: Clock;
  readonly #backoff: BackoffOptions;
  readonly #defaultMaxAttempts: number;

  constructor(db: Kysely<any>, options: JobQueueOptions = {}) {
    this.db = db;
    this.clock = options.clock ?? systemClock;
    this.#backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.#defaultMaxAttempts = options.defaultMaxAttempts ?? 5;
  }

  /** Creates or upgrades the queue's table (component 'queue' in the migrations table). */
  async migrate(): Promise<void> {
    await migrate(this.db, { component: 'queue', migrations: queueMigrations });
  }

  #now(): number {
    return this.clock.now().getTime();
  }

  #q(tx?: Kysely<any>): QDb {
    return (tx ?? this.db) as QDb;
  }

  /**
   * Adds a job, inside `tx` when given (so the job commits with the caller's own rows).
   * With an existing (queue, idempotencyKey) it returns that job's id and creates nothing.
   */
  async enqueue(spec: EnqueueSpec, tx?: Kysely<any>): Promise<EnqueueResult> {
    const maxAttempts = spec.maxAttempts ?? this.#defaultMaxAttempts;
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw new RangeError(`maxAttempts must be >= 1: ${maxAttempts}`);
    const now = this.#now();
    const id = randomUUID();
    const db = this.#q(tx);
    const inserted = await db
      .insertInto(JOBS_TABLE)
      .values({
        id,
        queue: spec.queue,
        kind: spec.kind,
        payload: toJsonText(spec.payload),
        idempotency_key: spec.idempotencyKey,
        state: 'queued',
        attempts: 0,
        max_attempts: maxAttempts,
        run_at: spec.runAt?.getTime() ?? now,
        lease_owner: null,
        lease_expires_at: null,
        last_error: null,
        result: null,
        created_at: now,
        updated_at: now,
        completed_at: null,
      })
      .onConflict((oc) => oc.columns(['queue', 'idempotency_key']).doNothing())
      .executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 1) return { id, created: true };
    const existing = await db
      .selectFrom(JOBS_TABLE)
      .select('id')
      .where('queue', '=', spec.queue)
      .where('idempotency_key', '=', spec.idempotencyKey)
      .executeTakeFirstOrThrow();
    return { id: existing.id, created: false };
  }

  /**
   * Leases up to `limit` due jobs of `queue` to `workerId` for `leaseMs`: queued jobs whose run_at
   * has come, and running jobs whose lease expired (their worker died). Each claim starts an
   * attempt; an expired job that already used its last attempt becomes dead instead.
   * PostgreSQL: FOR UPDATE SKIP LOCKED, so concurrent claimers never wait on or share a job.
   * SQLite: one IMMEDIATE transaction, which excludes other writers for its duration.
   */
  async claim<P = unknown>(queue: string, workerId: string, leaseMs: number, limit = 1): Promise<Job<P>[]> {
    if (!(leaseMs > 0)) throw new RangeError(`leaseMs must be > 0: ${leaseMs}`);
    if (!Number.isInteger(limit) || limit < 1) return [];
    const pg = dialectOf(this.db) === 'postgres';
    return withTransaction(this.#q(), async (tx) => {
      const now = this.#now();
      let exhausted = tx
        .selectFrom(JOBS_TABLE)
        .select('id')
        .where('queue', '=', queue)
        .where('state', '=', 'running')
        .where('lease_expires_at', '<=', now)
        .whereRef('attempts', '>=', 'max_attempts');
      if (pg) exhausted = exhausted.forUpdate().skipLocked();
      const deadIds = (await exhausted.execute()).map((r) => r.id);
      if (deadIds.length > 0) {
        await tx
          .updateTable(JOBS_TABLE)
          .set({
            state: 'dead',
            last_error: 'lease expired during the final attempt (worker lost)',
            lease_owner: null,
            lease_expires_at: null,
            updated_at: now,
            completed_at: now,
          })
          .where('id', 'in', deadIds)
          .execute();
      }

      let due = tx
        .selectFrom(JOBS_TABLE)
        .select('id')
        .where('queue', '=', queue)
        .where((eb) =>
          eb.or([
            eb.and([eb('state', '=', 'queued'), eb('run_at', '<=', now)]),
            eb.and([eb('state', '=', 'running'), eb('lease_expires_at', '<=', now)]),
          ]),
        )
        .orderBy('run_at')
        .orderBy('created_at')
        .orderBy('id')
        .limit(limit);
      if (pg) due = due.forUpdate().skipLocked();
      // Two statements, not UPDATE … WHERE id IN (subquery): the planner may re-run a LIMIT subquery.
      const ids = (await due.execute()).map((r) => r.id);
      if (ids.length === 0) return [];
      const rows = await tx
        .updateTable(JOBS_TABLE)
        .set((eb) => ({
          state: 'running',
          lease_owner: workerId,
          lease_expires_at: now + leaseMs,
          attempts: eb('attempts', '+', 1),
          updated_at: now,
        }))
        .where('id', 'in', ids)
        .returningAll()
        .execute();
      return rows.map((r) => rowToJob<P, unknown>(r)).sort(byDue);
    });
  }

  /** Extends the lease to now + leaseMs; returns the new expiry. LeaseLostError if no longer the holder. */
  async heartbeat(jobId: string, workerId: string, leaseMs: number): Promise<Date> {
    const now = this.#now();
    const r = await this.#q()
      .updateTable(JOBS_TABLE)
      .set({ lease_expires_at: now + leaseMs, updated_at: now })
      .where('id', '=', jobId)
      .where('state', '=', 'running')
      .where('lease_owner', '=', workerId)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) throw new LeaseLostError(jobId, workerId);
    return new Date(now + leaseMs);
  }

  /**
   * Marks the job done with an optional JSON result, inside `tx` when given.
   * LeaseLostError when `workerId` no longer holds the lease (then nothing is written).
   */
  async complete(jobId: string, workerId: string, result?: unknown, tx?: Kysely<any>): Promise<void> {
    const now = this.#now();
    const r = await this.#q(tx)
      .updateTable(JOBS_TABLE)
      .set({
        state: 'done',
        result: result === undefined ? null : toJsonText(result),
        lease_owner: null,
        lease_expires_at: null,
        last_error: null,
        updated_at: now,
        completed_at: now,
      })
      .where('id', '=', jobId)
      .where('state', '=', 'running')
      .where('lease_owner', '=', workerId)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) throw new LeaseLostError(jobId, workerId);
  }

  /**
   * Runs `fn` in one transaction with the job's completion: the handler's rows and "done" commit
   * together or not at all. The job row is updated first, so the lease check (and, on PostgreSQL,
   * the row lock) happens before `fn` runs. `fn`'s value is stored as the result. `fn` may be re-run
   * on a retryable database error, and must use only `tx` (on SQLite, using the outer Kysely
   * instance inside would wait forever for the single connection).
   */
  async completeWith<DB, R>(jobId: string, workerId: string, fn: (tx: Transaction<DB>) => Promise<R>): Promise<R> {
    return withTransaction(this.db as Kysely<DB>, async (tx) => {
      await this.complete(jobId, workerId, undefined, tx);
      const result = await fn(tx);
      if (result !== undefined) {
        await this.#q(tx).updateTable(JOBS_TABLE).set({ result: toJsonText(result) }).where('id', '=', jobId).execute();
      }
      return result;
    });
  }

  /**
   * Records a failed attempt. With attempts left (and not `permanent`) the job is queued again
   * after exponential back-off; otherwise it is dead. LeaseLostError if not the lease holder.
   */
  async fail(jobId: string, workerId: string, error: unknown, options: FailOptions = {}): Promise<FailResult> {
    return withTransaction(this.#q(), async (tx) => {
      const now = this.#now();
      const row = await tx
        .selectFrom(JOBS_TABLE)
        .select(['attempts', 'max_attempts'])
        .where('id', '=', jobId)
        .where('state', '=', 'running')
        .where('lease_owner', '=', workerId)
        .executeTakeFirst();
      if (!row) throw new LeaseLostError(jobId, workerId);
      const attempts = toSafeNumber(row.attempts);
      const dead = options.permanent === true || attempts >= toSafeNumber(row.max_attempts);
      const runAt = now + backoffDelayMs(attempts, this.#backoff);
      const r = await tx
        .updateTable(JOBS_TABLE)
        .set({
          state: dead ? 'dead' : 'queued',
          run_at: dead ? now : runAt,
          last_error: describeError(error),
          lease_owner: null,
          lease_expires_at: null,
          updated_at: now,
          completed_at: dead ? now : null,
        })
        .where('id', '=', jobId)
        .where('state', '=', 'running')
        .where('lease_owner', '=', workerId)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) throw new LeaseLostError(jobId, workerId);
      return dead ? { state: 'dead' } : { state: 'queued', runAt: new Date(runAt) };
    });
  }

  async get<P = unknown, R = unknown>(jobId: string, tx?: Kysely<any>): Promise<Job<P, R> | undefined> {
    const row = await this.#q(tx).selectFrom(JOBS_TABLE).selectAll().where('id', '=', jobId).executeTakeFirst();
    return row && rowToJob<P, R>(row);
  }

  async getByKey<P = unknown, R = unknown>(queue: string, idempotencyKey: string, tx?: Kysely<any>): Promise<Job<P, R> | undefined> {
    const row = await this.#q(tx)
      .selectFrom(JOBS_TABLE)
      .selectAll()
      .where('queue', '=', queue)
      .where('idempotency_key', '=', idempotencyKey)
      .executeTakeFirst();
    return row && rowToJob<P, R>(row);
  }

  /** Number of jobs per state, for one queue or all. */
  async counts(queue?: string): Promise<Record<JobState, number>> {
    let q = this.#q().selectFrom(JOBS_TABLE).select((eb) => ['state', eb.fn.countAll().as('n')]).groupBy('state');
    if (queue !== undefined) q = q.where('queue', '=', queue);
    const out = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    for (const row of await q.execute()) out[row.state] = toSafeNumber(row.n);
    return out;
  }
}

function byDue(a: Job, b: Job): number {
  return a.runAt.getTime() - b.runAt.getTime() || a.createdAt.getTime() - b.createdAt.getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}
