// Job as seen by callers, converted from the stored row.
import { toSafeNumber } from '../store/columns.js';
import type { JobRow, JobState } from './schema.js';

export interface Job<P = unknown, R = unknown> {
  id: string;
  queue: string;
  kind: string;
  payload: P;
  idempotencyKey: string;
  state: JobState;
  /** Attempts started so far (a claim starts one). */
  attempts: number;
  maxAttempts: number;
  runAt: Date;
  leaseOwner: string | null;
  leaseExpiresAt: Date | null;
  lastError: string | null;
  /** The handler's result once done (undefined when none was stored). */
  result: R | undefined;
  createdAt: Date;
  updatedAt: Date;
  completedAt: Date | null;
}

const date = (v: number | string) => new Date(toSafeNumber(v));
const dateOrNull = (v: number | string | null) => (v === null ? null : date(v));

export function rowToJob<P, R>(row: JobRow): Job<P, R> {
  return {
    id: row.id,
    queue: row.queue,
    kind: row.kind,
    payload: JSON.parse(row.payload) as P,
    idempotencyKey: row.idempotency_key,
    state: row.state,
    attempts: toSafeNumber(row.attempts),
    maxAttempts: toSafeNumber(row.max_attempts),
    runAt: date(row.run_at),
    leaseOwner: row.lease_owner,
    leaseExpiresAt: dateOrNull(row.lease_expires_at),
    lastError: row.last_error,
    result: row.result === null ? undefined : (JSON.parse(row.result) as R),
    createdAt: date(row.created_at),
    updatedAt: date(row.updated_at),
    completedAt: dateOrNull(row.completed_at),
  };
}

/** JSON text for payload/result columns; undefined is stored as null. */
export function toJsonText(value: unknown): string {
  return JSON.stringify(value === undefined ? null : value);
}
