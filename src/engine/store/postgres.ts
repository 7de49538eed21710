// Kysely over a pg Pool, optionally confined to one schema per component.
import pg from 'pg';
import { Kysely, PostgresDialect, sql } from 'kysely';
import type { PostgresConfig } from './url.js';

export interface PostgresOptions {
  /** Pool size (default 10). */
  maxConnections?: number;
}

/**
 * Opens a pool. With `config.schema`, every connection starts with search_path set to that schema
 * (startup parameter, so no query can run before it), and the schema is created if missing, so
 * several components can share one database, each in its own schema.
 */
export async function openPostgres<DB>(config: PostgresConfig, options: PostgresOptions = {}): Promise<Kysely<DB>> {
  const pool = new pg.Pool({
    connectionString: config.connectionString,
    max: options.maxConnections ?? 10,
    ...(config.schema !== undefined ? { options: `-c search_path=${config.schema}` } : {}),
  });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', () => {});
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
  if (config.schema !== undefined) {
    try {
      await ensureSchema(db, config.schema);
    } catch (e) {
      await db.destroy();
      throw e;
    }
  }
  return db;
}

/** CREATE SCHEMA IF NOT EXISTS is not safe against concurrent callers; serialise it with an advisory lock. */
async function ensureSchema(db: Kysely<any>, schema: string): Promise<void> {
  await db.transaction().execute(async (tx) => {
    await sql`select pg_advisory_xact_lock(hashtext('scms.create_schema'))`.execute(tx);
    await sql`create schema if not exists ${sql.id(schema)}`.execute(tx);
  });
}
