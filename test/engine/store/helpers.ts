// Test databases: SQLite files in temp dirs, and one throw-away schema per test file on the local PostgreSQL.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';

const DEFAULT_PG_URLS = ['postgres://postgres@127.0.0.1:5432/test', 'postgres://root@127.0.0.1:5432/test'];

let resolvedPgUrl: Promise<string> | undefined;

/** SCMS_TEST_PG_URL, or the first local default that answers. Throws (never skips) when none does. */
export function pgBaseUrl(): Promise<string> {
  resolvedPgUrl ??= (async () => {
    const candidates = process.env.SCMS_TEST_PG_URL ? [process.env.SCMS_TEST_PG_URL] : DEFAULT_PG_URLS;
    const errors: string[] = [];
    for (const url of candidates) {
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
      try {
        await client.connect();
        await client.query('select 1');
        return url;
      } catch (e) {
        errors.push(`${url}: ${(e as Error).message}`);
      } finally {
        await client.end().catch(() => {});
      }
    }
    throw new Error(
      `PostgreSQL tests need a server (set SCMS_TEST_PG_URL, default database 'test' on 127.0.0.1:5432). ` +
        `Could not connect: ${errors.join('; ')}`,
    );
  })();
  return resolvedPgUrl;
}

export interface TestPg {
  /** Base URL plus ?schema=<unique schema>. */
  url: string;
  schema: string;
  /** Drops the schema and everything in it. */
  drop(): Promise<void>;
}

export async function testPgSchema(label: string): Promise<TestPg> {
  const base = await pgBaseUrl();
  const schema = `t_${label.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`;
  const u = new URL(base);
  u.searchParams.set('schema', schema);
  return {
    url: u.toString(),
    schema,
    async drop() {
      const client = new pg.Client({ connectionString: base });
      await client.connect();
      try {
        await client.query(`drop schema if exists "${schema}" cascade`);
      } finally {
        await client.end();
      }
    },
  };
}

export interface TestSqlite {
  dir: string;
  url: string;
  path: string;
  remove(): void;
}

export function testSqliteFile(name = 'test.db'): TestSqlite {
  const dir = mkdtempSync(join(tmpdir(), 'scms-store-'));
  const path = join(dir, 'data', name);
  return { dir, path, url: `sqlite:${path}`, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export type DialectName = 'sqlite' | 'postgres';

/** A fresh database URL of the given dialect and its cleanup. */
export async function testDatabase(dialect: DialectName, label: string): Promise<{ url: string; cleanup(): Promise<void> }> {
  if (dialect === 'sqlite') {
    const f = testSqliteFile(`${label}.db`);
    return { url: f.url, cleanup: async () => f.remove() };
  }
  const p = await testPgSchema(label);
  return { url: p.url, cleanup: () => p.drop() };
}
