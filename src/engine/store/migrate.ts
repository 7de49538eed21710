// Ordered, recorded, idempotent schema migrations that run on both dialects.
import { sql, type Kysely, type Transaction } from 'kysely';
import { dialectOf, type Dialect } from './database.js';
import { withTransaction } from './transaction.js';

export interface Migration {
  /** Unique within the component; recorded once applied. Never rename an applied migration. */
  name: string;
  /** Write it with Kysely's schema builder (and `columnTypes`) so it runs on both dialects. */
  up(db: Transaction<any>, dialect: Dialect): Promise<void>;
}

export interface MigrateOptions {
  /** Owner of the migrations (e.g. 'ra', 'queue'); several components can share one database. */
  component: string;
  /** Applied in this order. */
  migrations: readonly Migration[];
}

export interface MigrateResult {
  /** Names applied by this call (empty when already up to date). */
  applied: string[];
}

/** Where applied migrations are recorded: (component, name, position, applied_at). */
export const MIGRATIONS_TABLE = 'scms_migrations';

/**
 * Applies the component's pending migrations in one transaction, so a failure leaves nothing half
 * applied. Concurrent runners are serialised: on PostgreSQL by a transaction-scoped advisory lock
 * per schema, on SQLite by BEGIN IMMEDIATE. The loser of the race sees the migrations recorded and
 * does nothing. Fails if the database has migrations this code does not know (newer code ran) or in
 * another order.
 */
export async function migrate(db: Kysely<any>, options: MigrateOptions): Promise<MigrateResult> {
  const { component, migrations } = options;
  const names = migrations.map((m) => m.name);
  if (new Set(names).size !== names.length) throw new Error(`duplicate migration names for ${component}`);
  const dialect = dialectOf(db);
  return withTransaction(db, async (tx) => {
    if (dialect === 'postgres') {
      await sql`select pg_advisory_xact_lock(hashtext('scms.migrate:' || coalesce(current_schema(), '')))`.execute(tx);
    }
    await tx.schema
      .createTable(MIGRATIONS_TABLE)
      .ifNotExists()
      .addColumn('component', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('position', 'integer', (c) => c.notNull())
      .addColumn('applied_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint(`${MIGRATIONS_TABLE}_pk`, ['component', 'name'])
      .execute();
    const done = await tx
      .selectFrom(MIGRATIONS_TABLE)
      .select(['name', 'position'])
      .where('component', '=', component)
      .orderBy('position')
      .execute();
    done.forEach((row, i) => {
      if (names[i] !== row.name) {
        throw new Error(
          `migrations of ${component} do not match the database: position ${i} is ${JSON.stringify(row.name)} there, ` +
            `${JSON.stringify(names[i] ?? null)} here`,
        );
      }
    });
    const applied: string[] = [];
    for (let i = done.length; i < migrations.length; i++) {
      const m = migrations[i]!;
      await m.up(tx, dialect);
      await tx
        .insertInto(MIGRATIONS_TABLE)
        .values({ component, name: m.name, position: i, applied_at: new Date().toISOString() })
        .execute();
      applied.push(m.name);
    }
    return { applied };
  });
}
