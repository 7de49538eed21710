import { randomBytes } from 'node:crypto';
import BetterSqlite3 from 'better-sqlite3';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bigintAsText,
  columnTypes,
  dialectOf,
  fromBytes,
  isRetryableError,
  openDatabase,
  toBigInt,
  toBytesParam,
  toSafeNumber,
  withTransaction,
} from '../../../src/engine/store/index.js';
import { pgBaseUrl, testDatabase, testPgSchema, testSqliteFile } from './helpers.js';

describe('SQLite connection settings', () => {
  it('opens a file in WAL mode with durable settings, creating the directory', async () => {
    const f = testSqliteFile();
    const db = await openDatabase(f.url);
    try {
      expect(dialectOf(db)).toBe('sqlite');
      const pragma = async (name: string) => (await sql.raw<Record<string, unknown>>(`pragma ${name}`).execute(db)).rows[0];
      expect(await pragma('journal_mode')).toEqual({ journal_mode: 'wal' });
      expect(await pragma('synchronous')).toEqual({ synchronous: 1 }); // NORMAL
      expect(await pragma('foreign_keys')).toEqual({ foreign_keys: 1 });
      expect(await pragma('busy_timeout')).toEqual({ timeout: 5000 });
    } finally {
      await db.destroy();
      f.remove();
    }
  });

  it('honours ?synchronous=full and a plain path', async () => {
    const f = testSqliteFile();
    const db = await openDatabase(`${f.path}?synchronous=full`, { busyTimeoutMs: 1234 });
    try {
      expect((await sql.raw('pragma synchronous').execute(db)).rows[0]).toEqual({ synchronous: 2 });
      expect((await sql.raw('pragma busy_timeout').execute(db)).rows[0]).toEqual({ timeout: 1234 });
    } finally {
      await db.destroy();
      f.remove();
    }
  });

  it('enforces foreign keys', async () => {
    const f = testSqliteFile();
    const db = await openDatabase<any>(f.url);
    try {
      await db.schema.createTable('parent').addColumn('id', 'integer', (c) => c.primaryKey()).execute();
      await db.schema
        .createTable('child')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('parent_id', 'integer', (c) => c.notNull().references('parent.id'))
        .execute();
      await expect(db.insertInto('child').values({ id: 1, parent_id: 42 }).execute()).rejects.toThrow(/FOREIGN KEY/);
    } finally {
      await db.destroy();
      f.remove();
    }
  });
});

describe('PostgreSQL schemas', () => {
  it('fails with a clear message when the server is unreachable', async () => {
    await expect(openDatabase('postgres://nobody@127.0.0.1:1/none?schema=x', { maxConnections: 1 })).rejects.toThrow();
    await expect(pgBaseUrl()).resolves.toMatch(/^postgres/);
  });

  it('gives each component its own schema in one database', async () => {
    const a = await testPgSchema('comp_a');
    const b = await testPgSchema('comp_b');
    const dbA = await openDatabase<any>(a.url);
    const dbB = await openDatabase<any>(b.url);
    try {
      expect(dialectOf(dbA)).toBe('postgres');
      for (const db of [dbA, dbB]) await db.schema.createTable('things').addColumn('name', 'text').execute();
      await dbA.insertInto('things').values({ name: 'from a' }).execute();
      expect(await dbB.selectFrom('things').selectAll().execute()).toEqual([]);
      expect(await dbA.selectFrom('things').selectAll().execute()).toEqual([{ name: 'from a' }]);
      const where = await sql<{ table_schema: string }>`select table_schema from information_schema.tables where table_name = 'things' and table_schema in (${a.schema}, ${b.schema}) order by table_schema`.execute(dbA);
      expect(where.rows.map((r) => r.table_schema).sort()).toEqual([a.schema, b.schema].sort());
      // The schema option overrides the URL's.
      const dbA2 = await openDatabase<any>(b.url, { schema: a.schema });
      try {
        expect(await dbA2.selectFrom('things').selectAll().execute()).toEqual([{ name: 'from a' }]);
      } finally {
        await dbA2.destroy();
      }
    } finally {
      await dbA.destroy();
      await dbB.destroy();
      await a.drop();
      await b.drop();
    }
  });

  it('creates the same schema from many concurrent openers without error', async () => {
    const s = await testPgSchema('race');
    const dbs = await Promise.all(Array.from({ length: 6 }, () => openDatabase<any>(s.url, { maxConnections: 1 })));
    try {
      const r = await sql<{ s: string }>`select current_schema() as s`.execute(dbs[0]!);
      expect(r.rows[0]!.s).toBe(s.schema);
    } finally {
      await Promise.all(dbs.map((d) => d.destroy()));
      await s.drop();
    }
  });
});

describe.each(['sqlite', 'postgres'] as const)('column helpers and transactions on %s', (dialect) => {
  let db: Kysely<any>;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    const t = await testDatabase(dialect, 'cols');
    cleanup = t.cleanup;
    db = await openDatabase<any>(t.url);
    const types = columnTypes(db);
    await db.schema
      .createTable('vals')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('b', types.bytes)
      .addColumn('n', types.bigint)
      .execute();
    await db.schema.createTable('counter').addColumn('id', 'integer', (c) => c.primaryKey()).addColumn('n', 'integer').execute();
    await db.insertInto('counter').values({ id: 1, n: 0 }).execute();
  });

  afterAll(async () => {
    await db?.destroy();
    await cleanup?.();
  });

  it('round-trips bytes as Uint8Array', async () => {
    const samples = [new Uint8Array(0), new Uint8Array([0, 0, 255, 0]), new Uint8Array(randomBytes(300))];
    // A view into a larger buffer: only the viewed bytes must be stored.
    const big = new Uint8Array(randomBytes(64));
    samples.push(big.subarray(10, 42));
    for (const [i, s] of samples.entries()) await db.insertInto('vals').values({ id: 100 + i, b: toBytesParam(s) }).execute();
    const rows = await db.selectFrom('vals').select(['id', 'b']).where('id', '>=', 100).orderBy('id').execute();
    expect(rows).toHaveLength(samples.length);
    rows.forEach((r, i) => {
      const got = fromBytes(r.b);
      expect(Object.getPrototypeOf(got)).toBe(Uint8Array.prototype);
      expect(got).toEqual(new Uint8Array(samples[i]!));
    });
  });

  it('round-trips 64-bit integers exactly', async () => {
    const values = [0n, -1n, 2n ** 53n + 1n, 2n ** 63n - 1n, -(2n ** 63n)];
    for (const [i, v] of values.entries()) await db.insertInto('vals').values({ id: 200 + i, n: v }).execute();
    const rows = await db
      .selectFrom('vals')
      .select(['id', bigintAsText('n').as('n')])
      .where('id', '>=', 200)
      .orderBy('id')
      .execute();
    expect(rows.map((r) => toBigInt(r.n))).toEqual(values);
    // Reading without the cast either is exact (pg: string) or is refused by toBigInt (sqlite: lossy number).
    const raw = await db.selectFrom('vals').select('n').where('id', '=', 202).executeTakeFirstOrThrow();
    if (dialect === 'postgres') expect(toBigInt(raw.n)).toBe(2n ** 53n + 1n);
    else expect(() => toBigInt(raw.n)).toThrow(/exact/);
    expect(toSafeNumber('42')).toBe(42);
    expect(() => toSafeNumber('9007199254740993')).toThrow(RangeError);
  });

  it('commits, rolls back on error and joins an outer transaction', async () => {
    await withTransaction(db, async (tx) => {
      await tx.insertInto('vals').values({ id: 1 }).execute();
      await withTransaction(tx, async (inner) => {
        expect(inner).toBe(tx);
        await inner.insertInto('vals').values({ id: 2 }).execute();
      });
    });
    await expect(
      withTransaction(db, async (tx) => {
        await tx.insertInto('vals').values({ id: 3 }).execute();
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    const ids = (await db.selectFrom('vals').select('id').where('id', '<', 10).orderBy('id').execute()).map((r) => r.id);
    expect(ids).toEqual([1, 2]);
  });

  it('does not retry errors that are not contention', async () => {
    let runs = 0;
    await expect(
      withTransaction(db, async (tx) => {
        runs++;
        await tx.insertInto('vals').values({ id: 1 }).execute(); // duplicate key
      }),
    ).rejects.toThrow();
    expect(runs).toBe(1);
  });

  if (dialect === 'postgres') {
    it('retries a serialization failure until both concurrent increments land', async () => {
      let runs = 0;
      let arrived = 0;
      let release!: () => void;
      const barrier = new Promise<void>((r) => (release = r));
      const increment = () =>
        withTransaction(
          db,
          async (tx) => {
            const first = ++runs <= 2;
            const { n } = await tx.selectFrom('counter').select('n').where('id', '=', 1).executeTakeFirstOrThrow();
            if (first) {
              // Both read the same value before either writes: one must fail to serialize.
              if (++arrived === 2) release();
              await barrier;
            }
            await tx.updateTable('counter').set({ n: n + 1 }).where('id', '=', 1).execute();
          },
          { isolation: 'repeatable read', sleep: async () => {} },
        );
      await Promise.all([increment(), increment()]);
      const { n } = await db.selectFrom('counter').select('n').where('id', '=', 1).executeTakeFirstOrThrow();
      expect(n).toBe(2);
      expect(runs).toBe(3);
    });
  } else {
    it('retries when another connection holds the write lock past busy_timeout', async () => {
      const t = testSqliteFile('busy.db');
      const mine = await openDatabase<any>(t.url, { busyTimeoutMs: 20 });
      const other = new BetterSqlite3(t.path);
      try {
        await mine.schema.createTable('x').addColumn('v', 'integer').execute();
        other.exec('begin immediate');
        let runs = 0;
        const sleeps: number[] = [];
        await withTransaction(
          mine,
          async (tx) => {
            runs++;
            await tx.insertInto('x').values({ v: 1 }).execute();
          },
          {
            sleep: async (ms) => {
              sleeps.push(ms);
              if (sleeps.length === 2) other.exec('commit'); // the lock goes away after two failed attempts
            },
          },
        );
        expect(sleeps).toHaveLength(2);
        expect(runs).toBe(1); // BEGIN IMMEDIATE failed before fn ran the first two times
        expect(await mine.selectFrom('x').selectAll().execute()).toEqual([{ v: 1 }]);
      } finally {
        if (other.inTransaction) other.exec('rollback');
        other.close();
        await mine.destroy();
        t.remove();
      }
    });
  }
});

describe('isRetryableError', () => {
  it('recognises contention codes only', () => {
    expect(isRetryableError({ code: 'SQLITE_BUSY' })).toBe(true);
    expect(isRetryableError({ code: 'SQLITE_BUSY_SNAPSHOT' })).toBe(true);
    expect(isRetryableError({ code: '40001' })).toBe(true);
    expect(isRetryableError({ code: '40P01' })).toBe(true);
    expect(isRetryableError({ code: '23505' })).toBe(false);
    expect(isRetryableError({ code: 'SQLITE_CONSTRAINT_PRIMARYKEY' })).toBe(false);
    expect(isRetryableError(new Error('x'))).toBe(false);
    expect(isRetryableError(null)).toBe(false);
  });
});
