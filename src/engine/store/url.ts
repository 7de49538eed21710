// Parses a database URL into a dialect-specific configuration.

export type SqliteSynchronous = 'NORMAL' | 'FULL' | 'EXTRA';

export interface SqliteConfig {
  dialect: 'sqlite';
  /** File path, or ':memory:'. */
  path: string;
  synchronous?: SqliteSynchronous;
}

export interface PostgresConfig {
  dialect: 'postgres';
  /** Connection string without our own query parameters. */
  connectionString: string;
  /** Schema put first on search_path (created when missing); undefined keeps the server default. */
  schema?: string;
}

export type DatabaseConfig = SqliteConfig | PostgresConfig;

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Schema names go into search_path unquoted, so only plain lower-case identifiers are allowed. */
export function assertSchemaName(name: string): string {
  if (!SCHEMA_NAME.test(name)) throw new Error(`invalid schema name ${JSON.stringify(name)}: use [a-z_][a-z0-9_]*`);
  return name;
}

/**
 * Accepted forms:
 * - `sqlite:/abs/file.db`, `sqlite:rel/file.db`, `sqlite://…`, `sqlite::memory:`, or a plain path;
 *   optional `?synchronous=full`.
 * - `postgres://…` / `postgresql://…`; optional `?schema=ra` (stripped before reaching pg).
 */
export function parseDatabaseUrl(url: string): DatabaseConfig {
  if (/^postgres(ql)?:\/\//i.test(url)) {
    const u = new URL(url);
    const schema = u.searchParams.get('schema') ?? undefined;
    u.searchParams.delete('schema');
    return { dialect: 'postgres', connectionString: u.toString(), schema: schema === undefined ? undefined : assertSchemaName(schema) };
  }
  let rest = url.startsWith('sqlite:') ? url.slice('sqlite:'.length) : url;
  if (rest.startsWith('//')) rest = rest.slice(2);
  let synchronous: SqliteSynchronous | undefined;
  const q = rest.indexOf('?');
  if (q >= 0) {
    const params = new URLSearchParams(rest.slice(q + 1));
    rest = rest.slice(0, q);
    const s = params.get('synchronous');
    if (s !== null) synchronous = parseSynchronous(s);
  }
  if (rest === '') throw new Error(`no SQLite file in database URL ${JSON.stringify(url)}`);
  return { dialect: 'sqlite', path: rest, synchronous };
}

function parseSynchronous(s: string): SqliteSynchronous {
  const v = s.toUpperCase();
  if (v === 'NORMAL' || v === 'FULL' || v === 'EXTRA') return v;
  throw new Error(`invalid synchronous=${s}: use normal, full or extra`);
}
