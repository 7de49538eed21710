// RA record of accepted authorization requests (replay and the ra-maxReqs / ra-minWait limits, 1609.2.1 clause 4.3
// policy parameters). Lives in the RA's database next to the job queue: a request's row and its job commit together.
import { randomUUID } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import { columnTypes, toSafeNumber, type Migration } from '../store/index.js';
import { migrate } from '../store/migrate.js';
import { withTransaction } from '../store/transaction.js';

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
  /** The earliest generationTime among those (ra-maxReqs Retry-After: when it leaves the window). */
  oldestSince?: number;
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
      .select((eb) => [eb.fn.count('request_hash').as('n'), eb.fn.min('generation_time').as('oldest')])
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
    const oldest = r?.oldest === null || r?.oldest === undefined ? undefined : toSafeNumber(r.oldest);
    return { countSince: toSafeNumber(r?.n ?? 0), ...(oldest === undefined ? {} : { oldestSince: oldest }), latestGenerationTime: latest ? toSafeNumber(latest.generation_time) : undefined };
  }
  async record(row: { requestHash: string; deviceId: string; generationTime: number; receivedAt: number }, tx: Db = this.db): Promise<void> {
    await tx
      .insertInto('ra_authorization_requests')
      .values({ request_hash: row.requestHash, device_id: row.deviceId, generation_time: row.generationTime, received_at: row.receivedAt })
      .execute();
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Download requests (1609.2.1 clause 4.3 download parameters `download-maxReqs`, `download-minWait`) on
// GET /v3/authorization-certificate and GET /v3/successor-enrollment-certificate. One row per counted download request
// of a device on one endpoint; the rows are the counters the two rules need and nothing else (no file content).

export const DOWNLOAD_COMPONENT = 'ra-download';

/** Which download interface a row counts for: the rules are applied per device and per interface. */
export type DownloadEndpoint = 'authorization' | 'successor';

export interface RaDownloadRequestsTable {
  id: string;
  device_id: string;
  endpoint: string;
  /** EeRaDownloadRequest.filename. */
  filename: string;
  /** EeRaDownloadRequest.generationTime (Time32): download-maxReqs counts on it. */
  generation_time: number | string;
  /** RA clock at reception, ms: download-minWait counts on it. */
  received_at: number | string;
}

export interface DownloadTables {
  ra_download_requests: RaDownloadRequestsTable;
}

export const downloadMigrations: Migration[] = [
  {
    name: '0001_download_requests',
    async up(db, dialect) {
      const t = columnTypes(dialect);
      await db.schema
        .createTable('ra_download_requests')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('device_id', 'text', (c) => c.notNull())
        .addColumn('endpoint', 'text', (c) => c.notNull())
        .addColumn('filename', 'text', (c) => c.notNull())
        .addColumn('generation_time', t.bigint, (c) => c.notNull())
        .addColumn('received_at', t.timestampMs, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('ra_download_requests_device').on('ra_download_requests').columns(['device_id', 'endpoint', 'generation_time']).execute();
    },
  },
];

export interface DownloadLimits {
  /** download-maxReqs: counted requests per 7 x 24 h of generationTime. */
  maxReqs: number;
  /** download-minWait, seconds between two counted requests (RA clock). */
  minWait: number;
  /** download-maxAge, seconds: rows older than a week plus this can never count again and are pruned. */
  maxAge: number;
}

export interface DownloadRequestInput {
  deviceId: string;
  endpoint: DownloadEndpoint;
  filename: string;
  generationTime: number;
  receivedAtMs: number;
  /** RA clock at reception as Time32 (prunes rows no request can count any more). */
  now: number;
  /** A Range request continuing the file of the device's previous counted download (not held to minWait). */
  continuation: boolean;
}

export type DownloadAdmission =
  | { ok: true }
  | { ok: false; rule: 'maxReqs'; count: number; retryAfter: number }
  | { ok: false; rule: 'minWait'; elapsedSeconds: number; retryAfter: number };

const WEEK = 7 * 24 * 3600;

export class DownloadStore {
  readonly db: Kysely<DownloadTables>;
  constructor(db: Kysely<any>) {
    this.db = db as Kysely<DownloadTables>;
  }
  async migrate(): Promise<void> {
    await migrate(this.db, { component: DOWNLOAD_COMPONENT, migrations: downloadMigrations });
  }

  /**
   * Applies download-maxReqs and download-minWait to one request and, when admitted, counts it, in one transaction
   * (concurrent requests of a device are serialised). A refusal writes nothing.
   */
  async admit(r: DownloadRequestInput, limits: DownloadLimits): Promise<DownloadAdmission> {
    return withTransaction(this.db, async (tx) => {
      const mine = () => tx.selectFrom('ra_download_requests').where('device_id', '=', r.deviceId).where('endpoint', '=', r.endpoint);
      const w = await mine()
        .select((eb) => [eb.fn.countAll().as('n'), eb.fn.min('generation_time').as('oldest')])
        .where('generation_time', '>', r.generationTime - WEEK)
        .executeTakeFirst();
      const count = toSafeNumber(w?.n ?? 0);
      if (count >= limits.maxReqs) {
        // The oldest counted request leaves the window at its generationTime + 7 x 24 h.
        const oldest = w?.oldest === null || w?.oldest === undefined ? r.generationTime : toSafeNumber(w.oldest);
        return { ok: false, rule: 'maxReqs', count, retryAfter: Math.max(1, oldest + WEEK - r.generationTime + 1) };
      }
      const latest = await mine().select(['filename', 'received_at']).orderBy('received_at', 'desc').limit(1).executeTakeFirst();
      if (latest && limits.minWait > 0 && !(r.continuation && latest.filename === r.filename)) {
        const elapsedMs = r.receivedAtMs - toSafeNumber(latest.received_at);
        if (elapsedMs < limits.minWait * 1000) {
          return { ok: false, rule: 'minWait', elapsedSeconds: Math.max(0, Math.floor(elapsedMs / 1000)), retryAfter: Math.max(1, Math.ceil((limits.minWait * 1000 - elapsedMs) / 1000)) };
        }
      }
      await tx
        .insertInto('ra_download_requests')
        .values({ id: randomUUID(), device_id: r.deviceId, endpoint: r.endpoint, filename: r.filename, generation_time: r.generationTime, received_at: r.receivedAtMs })
        .execute();
      // Rows that no request can count any more (its generationTime is at least now - maxAge).
      const horizon = r.now - limits.maxAge - WEEK;
      await tx.deleteFrom('ra_download_requests').where('device_id', '=', r.deviceId).where('generation_time', '<', horizon).execute();
      return { ok: true };
      // SQLite: BEGIN IMMEDIATE serialises; PostgreSQL: serializable, so that two concurrent requests of a device cannot
      // both pass on the same counters (the loser is retried by withTransaction and then sees the winner's row).
    }, { isolation: 'serializable' });
  }

  /** The counted requests of a device (tests, status). */
  async requestsOf(deviceId: string): Promise<Array<{ endpoint: string; filename: string; generationTime: number; receivedAt: number }>> {
    const rows = await this.db.selectFrom('ra_download_requests').selectAll().where('device_id', '=', deviceId).orderBy('received_at').execute();
    return rows.map((x) => ({ endpoint: x.endpoint, filename: x.filename, generationTime: toSafeNumber(x.generation_time), receivedAt: toSafeNumber(x.received_at) }));
  }
}
