// Kysely over better-sqlite3, tuned for a crash-safe embedded store.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { CompiledQuery, Kysely, SqliteDialect, SqliteDriver, type DatabaseConnection, type Driver } from 'kysely';
import type { SqliteConfig } from './url.js';

export interface SqliteOptions {
  /** How long a statement waits for another process's write lock before SQLITE_BUSY (default 5000). */
  busyTimeoutMs?: number;
}

/**
 * Every transaction starts with BEGIN IMMEDIATE: the write lock is taken up front, so a transaction
 * that reads and then writes never fails half-way with SQLITE_BUSY when another process (or another
 * worker process on the same file) wrote in between. busy_timeout makes the BEGIN wait instead.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

class ImmediateSqliteDialect extends SqliteDialect {
  readonly #config: ConstructorParameters<typeof SqliteDialect>[0];
  constructor(config: ConstructorParameters<typeof SqliteDialect>[0]) {
    super(config);
    this.#config = config;
  }
  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config);
  }
}

/**
 * Opens (creating the directory and file if needed) a SQLite database.
 *
 * Durability: journal_mode=WAL with synchronous=NORMAL (the default here) loses nothing when the
 * process is killed (kill -9, crash, OOM): a commit is complete once its frames are written to the
 * WAL file, and those writes live in the OS page cache, which outlives the process; the next opener
 * replays the WAL. Only an OS crash or power cut can drop the last few commits (never corrupting the
 * file). Use `?synchronous=full` to fsync the WAL on every commit and survive power loss as well.
 */
export function openSqlite<DB>(config: SqliteConfig, options: SqliteOptions = {}): Kysely<DB> {
  if (config.path !== ':memory:') mkdirSync(dirname(config.path), { recursive: true });
  const raw = new BetterSqlite3(config.path);
  try {
    raw.pragma(`busy_timeout = ${Math.max(0, Math.trunc(options.busyTimeoutMs ?? 5000))}`);
    if (config.path !== ':memory:') {
      const mode = raw.pragma('journal_mode = WAL', { simple: true });
      if (String(mode).toLowerCase() !== 'wal') throw new Error(`could not enable WAL on ${config.path} (got ${String(mode)})`);
    }
    raw.pragma(`synchronous = ${config.synchronous ?? 'NORMAL'}`);
    raw.pragma('foreign_keys = ON');
  } catch (e) {
    raw.close();
    throw e;
  }
  return new Kysely<DB>({ dialect: new ImmediateSqliteDialect({ database: raw }) });
}
