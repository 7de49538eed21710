// Transactions that retry on lock contention / serialization failures.
import type { Kysely, Transaction } from 'kysely';
import { dialectOf } from './database.js';

export interface RetryOptions {
  /** Extra attempts after the first one (default 5). */
  retries?: number;
  /** First back-off delay; doubles each retry, with jitter (default 20 ms). */
  baseDelayMs?: number;
  /** PostgreSQL isolation level (default: the server's, normally read committed). Ignored on SQLite. */
  isolation?: 'read committed' | 'repeatable read' | 'serializable';
  /** Injectable for tests. */
  sleep?: (ms: number) => Promise<void>;
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * True for errors where re-running the whole transaction is the fix:
 * SQLite SQLITE_BUSY* (write lock held past busy_timeout), PostgreSQL 40001 (serialization failure)
 * and 40P01 (deadlock detected).
 */
export function isRetryableError(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return false;
  return code.startsWith('SQLITE_BUSY') || code === '40001' || code === '40P01';
}

/**
 * Runs `fn` in a transaction (BEGIN IMMEDIATE on SQLite) and commits; on a retryable error rolls back
 * and runs `fn` again, so `fn` must have no effects outside the transaction. Inside an existing
 * transaction `fn` just joins it (no retry: the outermost caller owns that).
 */
export async function withTransaction<DB, T>(
  db: Kysely<DB>,
  fn: (tx: Transaction<DB>) => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  if (db.isTransaction) return fn(db as Transaction<DB>);
  const retries = options.retries ?? 5;
  const base = options.baseDelayMs ?? 20;
  const sleep = options.sleep ?? defaultSleep;
  const isolation = dialectOf(db) === 'postgres' ? options.isolation : undefined;
  for (let attempt = 0; ; attempt++) {
    try {
      const builder = db.transaction();
      return await (isolation ? builder.setIsolationLevel(isolation) : builder).execute(fn);
    } catch (e) {
      if (attempt >= retries || !isRetryableError(e)) throw e;
      await sleep(base * 2 ** attempt * (0.5 + Math.random()));
    }
  }
}
