// RA record of accepted successor enrollment requests (1609.2.1 6.3.5.4): the per-device history the RA holds the
// eca-maxReqs / eca-minWait limits against up front (successor.ts). Lives in the RA's database next to the job queue:
// a request's row and its job commit together, and the job marks the row when the ECA refused the request (nothing
// issued, so it counts no more, as the ECA does not count it either).
import type { Kysely, Transaction } from 'kysely';
import { columnTypes, toSafeNumber, type Migration } from '../store/index.js';
import { migrate } from '../store/migrate.js';
import type { RequestHistory } from './request-checks.js';

export const SUCCESSOR_REQUESTS_COMPONENT = 'ra-successor';

export interface RaSuccessorRequestsTable {
  /** HashedId8 of the EeRaSuccessorEnrollmentCertRequestSpdu, 16 hex (the job's idempotency key). */
  request_hash: string;
  device_id: string;
  /** generationTime (Time32) of the inner EeEcaCertRequest: the limits count on it, as the ECA does. */
  generation_time: number | string;
  received_at: number | string;
  /** 1 when the ECA refused the request (the job's result is the refusal): not counted. */
  refused: number;
}

export interface SuccessorRequestTables {
  ra_successor_requests: RaSuccessorRequestsTable;
}

export const successorRequestMigrations: Migration[] = [
  {
    name: '0001_successor_requests',
    async up(db, dialect) {
      const t = columnTypes(dialect);
      await db.schema
        .createTable('ra_successor_requests')
        .addColumn('request_hash', 'text', (c) => c.primaryKey())
        .addColumn('device_id', 'text', (c) => c.notNull())
        .addColumn('generation_time', t.bigint, (c) => c.notNull())
        .addColumn('received_at', t.timestampMs, (c) => c.notNull())
        .addColumn('refused', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema.createIndex('ra_successor_requests_device').on('ra_successor_requests').columns(['device_id', 'generation_time']).execute();
    },
  },
];

type Db = Kysely<SuccessorRequestTables> | Transaction<SuccessorRequestTables>;
const asDb = (tx: Kysely<any> | undefined, own: Kysely<SuccessorRequestTables>): Db => (tx as Db | undefined) ?? own;

export class SuccessorRequestStore {
  readonly db: Kysely<SuccessorRequestTables>;
  constructor(db: Kysely<any>) {
    this.db = db as Kysely<SuccessorRequestTables>;
  }

  async migrate(): Promise<void> {
    await migrate(this.db, { component: SUCCESSOR_REQUESTS_COMPONENT, migrations: successorRequestMigrations });
  }

  /** The device's requests that count (not refused by the ECA): in the window from `since`, and the latest of all. */
  async history(deviceId: string, since: number, tx?: Kysely<any>): Promise<RequestHistory> {
    const db = asDb(tx, this.db);
    const mine = () => db.selectFrom('ra_successor_requests').where('device_id', '=', deviceId).where('refused', '=', 0);
    const w = await mine()
      .select((eb) => [eb.fn.countAll().as('n'), eb.fn.min('generation_time').as('oldest')])
      .where('generation_time', '>=', since)
      .executeTakeFirst();
    const latest = await mine().select((eb) => eb.fn.max('generation_time').as('g')).executeTakeFirst();
    const num = (v: unknown) => (v === null || v === undefined ? undefined : toSafeNumber(v as number | string));
    return { countSince: num(w?.n) ?? 0, oldestSince: num(w?.oldest), latestGenerationTime: num(latest?.g) };
  }

  async record(row: { requestHash: string; deviceId: string; generationTime: number; receivedAt: number }, tx?: Kysely<any>): Promise<void> {
    await asDb(tx, this.db)
      .insertInto('ra_successor_requests')
      .values({ request_hash: row.requestHash, device_id: row.deviceId, generation_time: row.generationTime, received_at: row.receivedAt, refused: 0 })
      .execute();
  }

  /** The ECA refused the request: it no longer counts against the device's limits. */
  async markRefused(requestHash: string, tx?: Kysely<any>): Promise<void> {
    await asDb(tx, this.db).updateTable('ra_successor_requests').set({ refused: 1 }).where('request_hash', '=', requestHash).execute();
  }

  /** The device's rows (tests, status). */
  async requestsOf(deviceId: string): Promise<Array<{ requestHash: string; generationTime: number; refused: boolean }>> {
    const rows = await this.db.selectFrom('ra_successor_requests').selectAll().where('device_id', '=', deviceId).orderBy('generation_time').execute();
    return rows.map((r) => ({ requestHash: r.request_hash, generationTime: toSafeNumber(r.generation_time), refused: Number(r.refused) === 1 }));
  }
}
