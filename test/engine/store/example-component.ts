// An example component's migrations, written once with the schema builder for both dialects.
import { sql } from 'kysely';
import { columnTypes, type Migration } from '../../../src/engine/store/index.js';

export const exampleMigrations: Migration[] = [
  {
    name: '0001_registry',
    async up(db, dialect) {
      const t = columnTypes(dialect);
      await db.schema
        .createTable('example_owner')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .execute();
      await db.schema
        .createTable('example_item')
        .addColumn('hash', t.bytes, (c) => c.primaryKey())
        .addColumn('owner_id', 'integer', (c) => c.notNull().references('example_owner.id'))
        .addColumn('serial', t.bigint, (c) => c.notNull())
        .addColumn('created_at', t.timestampMs, (c) => c.notNull())
        .execute();
    },
  },
  {
    name: '0002_item_state',
    async up(db) {
      await db.schema.alterTable('example_item').addColumn('state', 'text', (c) => c.notNull().defaultTo('active')).execute();
      await db.schema.createIndex('example_item_owner').on('example_item').columns(['owner_id', 'state']).execute();
      // Data migrations run in the same transaction.
      await sql`update example_item set state = 'active'`.execute(db);
    },
  },
];
