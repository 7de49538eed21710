// RA record of accepted authorization requests (replay and the ra-maxReqs / ra-minWait limits, 1609.2.1 clause 4.3
// policy parameters). Lives in the RA's database next to the job queue: a request's row and its job commit together.
import type { Kysely, Transaction } from 'kysely';
import { columnTypes, toSafeNumber, type Migration } from '../store/index.js';
import { migrate } from '../store/migrate.js';

export const AUTHORIZATION_COMPONENT = 'ra-authorization';

export interface RaAuthorizationRequestsTable {
  /** HashedId8 of the EeRaCertRequestSpdu, 16 hex. */
  request_hash: string;
  device_id: string;
  /** EeRaCertRequest.generationTime (Time32). */
  generation_time: number;
  received_at: number | string;
}

export interface AuthorizationTables {
  ra_authorization_requests: RaAuthorizationRequestsTable;
}

export const authorizationMigrations: Migration[] = [
  {
    name: '0001_authorization_requests',
    async up(db, dialect) {
      const t = columnTypes(dialect);
      await db.schema
        .createTable('ra_authorization_requests')
        .addColumn('request_hash', 'text', (c) => c.primaryKey())
        .addColumn('device_id', 'text', (c) => c.notNull())
        .addColumn('generation_time', 'bigint', (c) => c.notNull())
        .addColumn('received_at', t.timestampMs, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('ra_authorization_requests_device').on('ra_authorization_requests').columns(['device_id', 'generation_time']).execute();
    },
  },
];

export interface AuthorizationHistory {
  /** Requests with generationTime >= since. */
  countSince: number;
  latestGenerationTime: number | undefined;
}

type Db = Kysely<AuthorizationTables> | Transaction<AuthorizationTables>;

export class AuthorizationStore {
  readonly db: Kysely<AuthorizationTables>;
  constructor(db: Kysely<any>) {
    this.db = db as Kysely<AuthorizationTables>;
  }
  async migrate(): Promise<void> {
    await migrate(this.db, { component: AUTHORIZATION_COMPONENT, migrations: authorizationMigrations });
  }
  async seen(requestHash: string, tx: Db = this.db): Promise<boolean> {
    return (await tx.selectFrom('ra_authorization_requests').select('request_hash').where('request_hash', '=', requestHash).executeTakeFirst()) !== undefined;
  }
  async history(deviceId: string, since: number, tx: Db = this.db): Promise<AuthorizationHistory> {
    const r = await tx
      .selectFrom('ra_authorization_requests')
      .select((eb) => [eb.fn.count('request_hash').as('n')])
      .where('device_id', '=', deviceId)
      .where('generation_time', '>=', since)
      .executeTakeFirst();
    const latest = await tx
      .selectFrom('ra_authorization_requests')
      .select('generation_time')
      .where('device_id', '=', deviceId)
      .orderBy('generation_time', 'desc')
      .limit(1)
      .executeTakeFirst();
    return { countSince: toSafeNumber(r?.n ?? 0), latestGenerationTime: latest ? toSafeNumber(latest.generation_time) : undefined };
  }
  async record(row: { requestHash: string; deviceId: string; generationTime: number; receivedAt: number }, tx: Db = this.db): Promise<void> {
    await tx
      .insertInto('ra_authorization_requests')
      .values({ request_hash: row.requestHash, device_id: row.deviceId, generation_time: row.generationTime, received_at: row.receivedAt })
      .execute();
  }
}
