import { sql, type Kysely } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MIGRATIONS_TABLE, migrate, openDatabase, toBytesParam, fromBytes, type Migration } from '../../../src/engine/store/index.js';
import { exampleMigrations } from './example-component.js';
import { testDatabase } from './helpers.js';

describe.each(['sqlite', 'postgres'] as const)('migrations on %s', (dialect) => {
  let url: string;
  let cleanup: () => Promise<void>;
  let db: Kysely<any>;

  beforeEach(async () => {
    const t = await testDatabase(dialect, 'migrate');
    url = t.url;
    cleanup = t.cleanup;
    db = await openDatabase<any>(url);
  });
  afterEach(async () => {
    await db?.destroy();
    await cleanup?.();
  });

  const recorded = async () =>
    (await db.selectFrom(MIGRATIONS_TABLE).select(['component', 'name']).orderBy('component').orderBy('position').execute()).map(
      (r) => `${r.component}/${r.name}`,
    );

  it('applies once in order; a re-run is a no-op', async () => {
    expect(await migrate(db, { component: 'example', migrations: exampleMigrations })).toEqual({
      applied: ['0001_registry', '0002_item_state'],
    });
    expect(await migrate(db, { component: 'example', migrations: exampleMigrations })).toEqual({ applied: [] });
    expect(await recorded()).toEqual(['example/0001_registry', 'example/0002_item_state']);

    // The tables work on this dialect, bytes key and bigint included.
    await db.insertInto('example_owner').values({ id: 1, name: 'ra' }).execute();
    await db
      .insertInto('example_item')
      .values({ hash: toBytesParam(new Uint8Array([9, 8, 7])), owner_id: 1, serial: 2n ** 40n, created_at: 1_700_000_000_000 })
      .execute();
    const item = await db.selectFrom('example_item').selectAll().executeTakeFirstOrThrow();
    expect(fromBytes(item.hash)).toEqual(new Uint8Array([9, 8, 7]));
    expect(item.state).toBe('active');
    await expect(db.insertInto('example_item').values({ hash: toBytesParam(new Uint8Array([1])), owner_id: 99, serial: 1, created_at: 0 }).execute()).rejects.toThrow();
  });

  it('applies only what is new, per component', async () => {
    await migrate(db, { component: 'example', migrations: exampleMigrations.slice(0, 1) });
    expect(await migrate(db, { component: 'example', migrations: exampleMigrations })).toEqual({ applied: ['0002_item_state'] });
    const other: Migration[] = [{ name: '0001_registry', up: async (tx) => void (await tx.schema.createTable('other_t').addColumn('x', 'text').execute()) }];
    expect(await migrate(db, { component: 'other', migrations: other })).toEqual({ applied: ['0001_registry'] });
    expect(await recorded()).toEqual(['example/0001_registry', 'example/0002_item_state', 'other/0001_registry']);
  });

  it('rolls back a failing run completely', async () => {
    const broken: Migration[] = [
      ...exampleMigrations,
      { name: '0003_broken', up: async (tx) => void (await sql`select * from no_such_table`.execute(tx)) },
    ];
    await expect(migrate(db, { component: 'example', migrations: broken })).rejects.toThrow();
    const tables = await db.introspection.getTables();
    expect(tables.map((t) => t.name).filter((n) => n.startsWith('example_'))).toEqual([]);
    expect(await migrate(db, { component: 'example', migrations: exampleMigrations })).toEqual({
      applied: ['0001_registry', '0002_item_state'],
    });
  });

  it('refuses a database whose applied migrations differ from the code', async () => {
    await migrate(db, { component: 'example', migrations: exampleMigrations });
    const renamed = [{ ...exampleMigrations[0]!, name: '0001_other' }, exampleMigrations[1]!];
    await expect(migrate(db, { component: 'example', migrations: renamed })).rejects.toThrow(/do not match/);
    await expect(migrate(db, { component: 'example', migrations: exampleMigrations.slice(0, 1) })).rejects.toThrow(/do not match/);
    await expect(migrate(db, { component: 'example', migrations: [exampleMigrations[0]!, exampleMigrations[0]!] })).rejects.toThrow(/duplicate/);
  });

  if (dialect === 'postgres') {
    it('serialises concurrent runners from separate pools: one applies, the others see it done', async () => {
      let ups = 0;
      const slow: Migration[] = [
        {
          name: '0001_slow',
          async up(tx) {
            ups++;
            await sql`select pg_sleep(0.2)`.execute(tx);
            await tx.schema.createTable('slow_t').addColumn('x', 'text').execute();
          },
        },
      ];
      const runners = await Promise.all(Array.from({ length: 4 }, () => openDatabase<any>(url, { maxConnections: 1 })));
      try {
        const results = await Promise.all(runners.map((r) => migrate(r, { component: 'slow', migrations: slow })));
        expect(results.map((r) => r.applied.length).sort()).toEqual([0, 0, 0, 1]);
        expect(ups).toBe(1);
        expect(await recorded()).toEqual(['slow/0001_slow']);
      } finally {
        await Promise.all(runners.map((r) => r.destroy()));
      }
    });
  }
});
