// Worker loop: claims jobs from one queue and runs a handler with up to N jobs in flight.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Transaction } from 'kysely';
import { LeaseLostError } from './errors.js';
import type { Job } from './job.js';
import type { JobQueue } from './queue.js';
import { realSleep, type Sleep } from './sleep.js';

export interface JobContext<DB = any> {
  readonly workerId: string;
  /** Aborted when the lease is lost (a heartbeat found another holder); stop work, nothing will commit. */
  readonly signal: AbortSignal;
  /** Extends the lease now (the worker also does this every `heartbeatMs`). */
  heartbeat(): Promise<void>;
  /**
   * Writes the handler's own rows in the same transaction that marks the job done; `fn`'s value
   * becomes the job's result. Call at most once, as the last step. May re-run on a retryable
   * database error; use only `tx` inside.
   */
  transaction<T>(fn: (tx: Transaction<DB>) => Promise<T>): Promise<T>;
}

/** The handler's return value is the job's result unless `ctx.transaction` completed the job. */
export type JobHandler<DB = any, P = any> = (job: Job<P>, ctx: JobContext<DB>) => Promise<unknown>;

export interface WorkerOptions<DB = any> {
  jobs: JobQueue;
  /** Name of the queue to take jobs from. */
  queue: string;
  handler: JobHandler<DB>;
  /** Default: host:pid:random. Must be unique among live workers. */
  workerId?: string;
  /** Jobs in flight at once (default 1). */
  concurrency?: number;
  /** Lease per claim (default 30000 ms). A job whose worker dies is retried after this. */
  leaseMs?: number;
  /** Wait between polls when idle (default 1000 ms). */
  pollIntervalMs?: number;
  /** Lease extension period while a handler runs (default leaseMs / 3; 0 disables). */
  heartbeatMs?: number;
  sleep?: Sleep;
  /** Reports errors that have no other place to go (claim failures, lost leases, handler errors after commit). */
  onError?: (error: unknown, job?: Job) => void;
}

/**
 * Delivery is at least once: a job whose worker dies is run again after its lease expires, so
 * handlers must be idempotent in their effects outside the database; effects written through
 * `ctx.transaction` commit exactly once together with the job's completion.
 */
export class Worker<DB = any> {
  readonly workerId: string;
  readonly #o: Required<Omit<WorkerOptions<DB>, 'workerId' | 'onError'>> & Pick<WorkerOptions<DB>, 'onError'>;
  readonly #inFlight = new Set<Promise<void>>();
  #loop: Promise<void> | undefined;
  #stopping = false;
  #wake = new AbortController();
  #kicked = false;

  constructor(options: WorkerOptions<DB>) {
    const leaseMs = options.leaseMs ?? 30_000;
    this.workerId = options.workerId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.#o = {
      jobs: options.jobs,
      queue: options.queue,
      handler: options.handler,
      concurrency: Math.max(1, Math.trunc(options.concurrency ?? 1)),
      leaseMs,
      pollIntervalMs: options.pollIntervalMs ?? 1000,
      heartbeatMs: options.heartbeatMs ?? Math.floor(leaseMs / 3),
      sleep: options.sleep ?? realSleep,
      onError: options.onError,
    };
  }

  get running(): boolean {
    return this.#loop !== undefined && !this.#stopping;
  }

  /** Number of jobs being handled right now. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Starts polling in the background. */
  start(): void {
    if (this.#loop) throw new Error('worker already started');
    this.#loop = this.#run();
  }

  /** Stops claiming, waits for the jobs in flight to finish. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#kick();
    await this.#loop;
    await this.drain();
  }

  /** Waits until no job is in flight. */
  async drain(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  /** One poll: claims jobs for the free slots and starts them; returns how many were claimed. */
  async pollOnce(): Promise<number> {
    const free = this.#o.concurrency - this.#inFlight.size;
    if (free <= 0 || this.#stopping) return 0;
    const jobs = await this.#o.jobs.claim(this.#o.queue, this.workerId, this.#o.leaseMs, free);
    for (const job of jobs) {
      const p: Promise<void> = this.#handle(job).finally(() => {
        this.#inFlight.delete(p);
        this.#kick();
      });
      this.#inFlight.add(p);
    }
    return jobs.length;
  }

  async #run(): Promise<void> {
    while (!this.#stopping) {
      this.#kicked = false;
      let claimed = 0;
      try {
        claimed = await this.pollOnce();
      } catch (e) {
        this.#report(e);
      }
      if (this.#stopping) break;
      // Poll again at once if there may be more work and room for it, or a slot freed meanwhile.
      if ((claimed > 0 && this.#inFlight.size < this.#o.concurrency) || this.#kicked) continue;
      this.#wake = new AbortController();
      await this.#o.sleep(this.#o.pollIntervalMs, this.#wake.signal);
    }
  }

  /** Wakes the idle loop (a slot freed, or stop). */
  #kick(): void {
    this.#kicked = true;
    this.#wake.abort();
  }

  async #handle(job: Job): Promise<void> {
    const { jobs, leaseMs, heartbeatMs, sleep } = this.#o;
    const workerId = this.workerId;
    const lease = new AbortController();
    const stopBeats = new AbortController();
    let completed = false;
    // While the job is being completed, a heartbeat may find it no longer running: not a lost lease.
    let finishing = false;
    const heartbeat = async () => {
      try {
        await jobs.heartbeat(job.id, workerId, leaseMs);
      } catch (e) {
        if (e instanceof LeaseLostError && !finishing) lease.abort(e);
        throw e;
      }
    };
    // Heartbeat loops: each runs until its generation is superseded (pause) or the job ends.
    let generation = 0;
    const loops: Promise<void>[] = [];
    const startBeats = () => {
      if (heartbeatMs <= 0) return;
      const mine = ++generation;
      loops.push(this.#beat(heartbeat, heartbeatMs, sleep, stopBeats.signal, () => generation !== mine));
    };
    const pauseBeats = () => {
      generation++;
      finishing = true;
    };
    const ctx: JobContext<DB> = {
      workerId,
      signal: lease.signal,
      heartbeat,
      transaction: async <T>(fn: (tx: Transaction<DB>) => Promise<T>): Promise<T> => {
        if (completed) throw new Error(`job ${job.id} is already completed`);
        pauseBeats();
        try {
          const r = await jobs.completeWith<DB, T>(job.id, workerId, fn);
          completed = true;
          return r;
        } catch (e) {
          if (!(e instanceof LeaseLostError)) {
            finishing = false;
            startBeats(); // the handler may go on (and retry) after a failed transaction
          }
          throw e;
        }
      },
    };
    startBeats();
    let outcome: { ok: true; result: unknown } | { ok: false; error: unknown };
    try {
      outcome = { ok: true, result: await this.#o.handler(job, ctx) };
    } catch (error) {
      outcome = { ok: false, error };
    }
    // Heartbeats end before the job is completed or failed.
    pauseBeats();
    stopBeats.abort();
    await Promise.all(loops);
    try {
      if (outcome.ok) {
        if (!completed) await jobs.complete(job.id, workerId, outcome.result);
      } else if (completed || outcome.error instanceof LeaseLostError) {
        this.#report(outcome.error, job);
      } else {
        await jobs.fail(job.id, workerId, outcome.error);
      }
    } catch (e) {
      this.#report(e, job);
    }
  }

  async #beat(
    heartbeat: () => Promise<void>,
    everyMs: number,
    sleep: Sleep,
    stop: AbortSignal,
    superseded: () => boolean,
  ): Promise<void> {
    for (;;) {
      await sleep(everyMs, stop);
      if (stop.aborted || superseded()) return;
      try {
        await heartbeat();
      } catch (e) {
        if (superseded()) return;
        this.#report(e);
        if (e instanceof LeaseLostError) return;
      }
    }
  }

  #report(e: unknown, job?: Job): void {
    try {
      this.#o.onError?.(e, job);
    } catch {
      // A failing reporter must not kill the loop.
    }
  }
}
