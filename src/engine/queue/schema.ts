// The queue's table, created through the store's migration runner (component 'queue').
import { sql } from 'kysely';
import type { Migration } from '../store/migrate.js';
import { columnTypes } from '../store/columns.js';

export const JOBS_TABLE = 'scms_jobs';

export type JobState = 'queued' | 'running' | 'done' | 'dead';
export const JOB_STATES: readonly JobState[] = ['queued', 'running', 'done', 'dead'];

/** Row shape as the drivers return it (int8 may come back as string from pg). */
export interface JobRow {
  id: string;
  queue: string;
  kind: string;
  payload: string;
  idempotency_key: string;
  state: JobState;
  attempts: number | string;
  max_attempts: number | string;
  run_at: number | string;
  lease_owner: string | null;
  lease_expires_at: number | string | null;
  last_error: string | null;
  result: string | null;
  created_at: number | string;
  updated_at: number | string;
  completed_at: number | string | null;
}

export interface QueueTables {
  [JOBS_TABLE]: JobRow;
}

export const queueMigrations: readonly Migration[] = [
  {
    name: '0001_jobs',
    async up(db, dialect) {
      const t = columnTypes(dialect);
      await db.schema
        .createTable(JOBS_TABLE)
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('queue', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('payload', t.json, (c) => c.notNull())
        .addColumn('idempotency_key', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull().check(sqlStateCheck()))
        .addColumn('attempts', 'integer', (c) => c.notNull())
        .addColumn('max_attempts', 'integer', (c) => c.notNull())
        .addColumn('run_at', t.timestampMs, (c) => c.notNull())
        .addColumn('lease_owner', 'text')
        .addColumn('lease_expires_at', t.timestampMs)
        .addColumn('last_error', 'text')
        .addColumn('result', t.json)
        .addColumn('created_at', t.timestampMs, (c) => c.notNull())
        .addColumn('updated_at', t.timestampMs, (c) => c.notNull())
        .addColumn('completed_at', t.timestampMs)
        .addUniqueConstraint(`${JOBS_TABLE}_idem`, ['queue', 'idempotency_key'])
        .execute();
      // Claim scans: queued jobs that are due, and running jobs whose lease ran out.
      await db.schema.createIndex(`${JOBS_TABLE}_due`).on(JOBS_TABLE).columns(['queue', 'state', 'run_at']).execute();
      await db.schema
        .createIndex(`${JOBS_TABLE}_lease`)
        .on(JOBS_TABLE)
        .columns(['queue', 'state', 'lease_expires_at'])
        .execute();
    },
  },
];

function sqlStateCheck() {
  return sql.raw<boolean>(`state in (${JOB_STATES.map((s) => `'${s}'`).join(', ')})`);
}
