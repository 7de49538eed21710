// Entry point: one URL -> one Kysely instance, SQLite or PostgreSQL.
import { Kysely, PostgresAdapter, SqliteAdapter } from 'kysely';
import { openPostgres, type PostgresOptions } from './postgres.js';
import { openSqlite, type SqliteOptions } from './sqlite.js';
import { assertSchemaName, parseDatabaseUrl } from './url.js';

export type Dialect = 'sqlite' | 'postgres';

export interface OpenOptions extends SqliteOptions, PostgresOptions {
  /** PostgreSQL schema for this component (overrides `?schema=` in the URL). Ignored for SQLite. */
  schema?: string;
}

/**
 * `sqlite:/path/file.db` (or a plain path) or `postgres://…[?schema=name]`.
 * Close with `db.destroy()`.
 */
export async function openDatabase<DB>(url: string, options: OpenOptions = {}): Promise<Kysely<DB>> {
  const config = parseDatabaseUrl(url);
  if (config.dialect === 'sqlite') return openSqlite<DB>(config, options);
  const schema = options.schema !== undefined ? assertSchemaName(options.schema) : config.schema;
  return openPostgres<DB>({ ...config, schema }, options);
}

/** Which dialect a Kysely instance (or transaction) talks to. */
export function dialectOf(db: Kysely<any>): Dialect {
  const adapter = db.getExecutor().adapter;
  if (adapter instanceof SqliteAdapter) return 'sqlite';
  if (adapter instanceof PostgresAdapter) return 'postgres';
  throw new Error(`unsupported Kysely dialect adapter ${adapter.constructor.name}`);
}
