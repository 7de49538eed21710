// Shared set-up for the queue tests: one database per test file, a manual clock, fast sleeps.
import type { Kysely } from 'kysely';
import { JobQueue, realSleep, type Sleep } from '../../../src/engine/queue/index.js';
import { ManualClock } from '../../../src/security/time.js';
import { openDatabase } from '../../../src/engine/store/index.js';
import { testDatabase, type DialectName } from '../store/helpers.js';

export interface QueueFixture {
  dialect: DialectName;
  url: string;
  db: Kysely<any>;
  clock: ManualClock;
  jobs: JobQueue;
  /**
   * A second queue handle as another worker would have it: on PostgreSQL its own pool; on SQLite the
   * same connection (in one process a second SQLite connection would block the event loop in
   * busy_timeout; separate worker processes are tested with child processes).
   */
  otherJobs: JobQueue;
  cleanup(): Promise<void>;
}

export async function queueFixture(dialect: DialectName, label: string): Promise<QueueFixture> {
  const t = await testDatabase(dialect, label);
  const clock = new ManualClock('2030-01-01T00:00:00Z');
  const db = await openDatabase<any>(t.url);
  const jobs = new JobQueue(db, { clock, backoff: { baseMs: 100, maxMs: 250 } });
  await jobs.migrate();
  const otherDb = dialect === 'postgres' ? await openDatabase<any>(t.url) : db;
  const otherJobs = new JobQueue(otherDb, { clock, backoff: { baseMs: 100, maxMs: 250 } });
  return {
    dialect,
    url: t.url,
    db,
    clock,
    jobs,
    otherJobs,
    async cleanup() {
      if (otherDb !== db) await otherDb.destroy();
      await db.destroy();
      await t.cleanup();
    },
  };
}

/** Polls and idles quickly in real time while the manual clock stands still. */
export const fastSleep: Sleep = (ms, signal) => realSleep(Math.min(ms, 2), signal);

/** Waits (in real time) until `check` holds. */
export async function eventually(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A promise with its resolver, for holding handlers at a point. */
export function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}
