// The ECA's tables and their only gateway (1609.2.1 6.3.4.2 enrollment):
//   eca_requests                 one row per accepted EeEcaCertRequestSpdu: replay detection (SHA-256 of the SPDU
//                                octets as received) and the per-device history that eca-maxReqs / eca-minWait count;
//   eca_enrollment_certificates  every enrollment certificate issued (COER), by HashedId8.
// Refused requests are never written (a refusal changes no state). For a successor request (forwarded by the RA) the
// row also keeps the EcaEeCertResponseSpdu octets, so that the RA's retried job gets the same answer (eca.ts).
import type { Kysely, Transaction } from 'kysely';
import { columnTypes, fromBytes, toBytesParam, toSafeNumber, type Migration } from '../store/index.js';
import { migrate } from '../store/migrate.js';
import { withTransaction } from '../store/transaction.js';

export const ECA_COMPONENT = 'eca';

export interface EcaRequestsTable {
  /** SHA-256 of the request SPDU octets, hex (64). */
  request_digest: string;
  /** EcaEeCertResponse.requestHash (HashedId8 of the request SPDU), hex (16). */
  request_hash: string;
  device_id: string;
  canonical_id: string;
  /** EeEcaCertRequest.generationTime (Time32). */
  generation_time: number | string;
  received_at: number | string;
  /** HashedId8 of the certificate issued for it, hex. */
  certificate_hashed_id8: string;
  /** The EcaEeCertResponseSpdu sent, for successor requests only (migration 0002); null otherwise. */
  response: Uint8Array | null;
}

export interface EcaEnrollmentCertificatesTable {
  hashed_id8: string;
  device_id: string;
  canonical_id: string;
  /** 'explicit' | 'implicit'. */
  cert_type: string;
  certificate: Uint8Array;
  request_hash: string;
  /** Validity (Time32 start, TAI seconds end). */
  valid_from: number | string;
  valid_until: number | string;
  issued_at: number | string;
}

export interface EcaTables {
  eca_requests: EcaRequestsTable;
  eca_enrollment_certificates: EcaEnrollmentCertificatesTable;
}

export const ecaMigrations: Migration[] = [
  {
    name: '0001_enrollment',
    async up(db, dialect) {
      const t = columnTypes(dialect);
      await db.schema
        .createTable('eca_requests')
        .addColumn('request_digest', 'text', (c) => c.primaryKey())
        .addColumn('request_hash', 'text', (c) => c.notNull())
        .addColumn('device_id', 'text', (c) => c.notNull())
        .addColumn('canonical_id', 'text', (c) => c.notNull())
        .addColumn('generation_time', t.bigint, (c) => c.notNull())
        .addColumn('received_at', t.timestampMs, (c) => c.notNull())
        .addColumn('certificate_hashed_id8', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('eca_requests_device').on('eca_requests').columns(['device_id', 'generation_time']).execute();
      await db.schema
        .createTable('eca_enrollment_certificates')
        .addColumn('hashed_id8', 'text', (c) => c.primaryKey())
        .addColumn('device_id', 'text', (c) => c.notNull())
        .addColumn('canonical_id', 'text', (c) => c.notNull())
        .addColumn('cert_type', 'text', (c) => c.notNull())
        .addColumn('certificate', t.bytes, (c) => c.notNull())
        .addColumn('request_hash', 'text', (c) => c.notNull())
        .addColumn('valid_from', t.bigint, (c) => c.notNull())
        .addColumn('valid_until', t.bigint, (c) => c.notNull())
        .addColumn('issued_at', t.timestampMs, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('eca_enrollment_certificates_device').on('eca_enrollment_certificates').column('device_id').execute();
    },
  },
  {
    // Successor replay (1609.2.1 6.3.5.4; eca.ts): the response of a successor request, answered again to the RA.
    name: '0002_successor_response',
    async up(db, dialect) {
      await db.schema.alterTable('eca_requests').addColumn('response', columnTypes(dialect).bytes).execute();
    },
  },
];

export interface EnrollmentRecord {
  requestDigest: string;
  requestHash: string;
  deviceId: string;
  canonicalId: string;
  generationTime: number;
  receivedAt: Date;
  /** The EcaEeCertResponseSpdu, kept for successor requests (replayed to the RA). */
  response?: Uint8Array;
  certificate: {
    hashedId8: string;
    type: 'explicit' | 'implicit';
    bytes: Uint8Array;
    validFrom: number;
    validUntil: number;
  };
}

export interface IssuedCertificate {
  hashedId8: string;
  deviceId: string;
  canonicalId: string;
  type: 'explicit' | 'implicit';
  certificate: Uint8Array;
  requestHash: string;
  validFrom: number;
  validUntil: number;
  issuedAt: Date;
}

/** An accepted request as stored (EcaStore.acceptedRequest). */
export interface AcceptedRequest {
  requestHash: string;
  deviceId: string;
  /** The EcaEeCertResponseSpdu, when kept (successor requests). */
  response: Uint8Array | undefined;
  /** The certificate issued for it (absent only if removed by a compensation). */
  certificate: IssuedCertificate | undefined;
}

/** Per-device history the rate limits need (generation times of accepted requests). */
export interface DeviceRequestHistory {
  /** Accepted requests with generationTime > since. */
  countSince: number;
  /** Latest generationTime of an accepted request, if any. */
  latestGenerationTime: number | undefined;
}

type Db = Kysely<EcaTables>;

export class EcaStore {
  readonly db: Db;

  constructor(db: Kysely<any>) {
    this.db = db as Db;
  }

  async migrate(): Promise<void> {
    await migrate(this.db, { component: ECA_COMPONENT, migrations: ecaMigrations });
  }

  /** Runs `fn` in one transaction (SQLite BEGIN IMMEDIATE: checks and inserts are serialised). */
  transaction<T>(fn: (tx: EcaStoreTx) => Promise<T>): Promise<T> {
    return withTransaction(this.db, (tx) => fn(new EcaStoreTx(tx)));
  }

  async hasRequest(requestDigest: string): Promise<boolean> {
    return new EcaStoreTx(this.db).hasRequest(requestDigest);
  }

  /** The accepted request with this digest, with its stored response and certificate (successor replay). */
  async acceptedRequest(requestDigest: string): Promise<AcceptedRequest | undefined> {
    const row = await this.db.selectFrom('eca_requests').selectAll().where('request_digest', '=', requestDigest).executeTakeFirst();
    if (!row) return undefined;
    const cert = await this.certificate(row.certificate_hashed_id8);
    return {
      requestHash: row.request_hash,
      deviceId: row.device_id,
      response: row.response === null || row.response === undefined ? undefined : fromBytes(row.response),
      certificate: cert,
    };
  }

  async certificatesOf(deviceId: string): Promise<IssuedCertificate[]> {
    const rows = await this.db.selectFrom('eca_enrollment_certificates').selectAll().where('device_id', '=', deviceId).orderBy('issued_at').execute();
    return rows.map(toIssued);
  }

  async certificate(hashedId8: string): Promise<IssuedCertificate | undefined> {
    const row = await this.db.selectFrom('eca_enrollment_certificates').selectAll().where('hashed_id8', '=', hashedId8).executeTakeFirst();
    return row && toIssued(row);
  }

  /** Row counts of the ECA tables (tests, status). */
  async counts(): Promise<{ requests: number; certificates: number }> {
    const r = await this.db.selectFrom('eca_requests').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
    const c = await this.db.selectFrom('eca_enrollment_certificates').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
    return { requests: toSafeNumber(r.n), certificates: toSafeNumber(c.n) };
  }

  /** Removes one enrollment (compensation when the registry could not be told). */
  async removeEnrollment(requestDigest: string, hashedId8: string): Promise<void> {
    await withTransaction(this.db, async (tx) => {
      await tx.deleteFrom('eca_requests').where('request_digest', '=', requestDigest).execute();
      await tx.deleteFrom('eca_enrollment_certificates').where('hashed_id8', '=', hashedId8).execute();
    });
  }
}

/** The store's operations inside a transaction. */
export class EcaStoreTx {
  readonly #db: Kysely<EcaTables> | Transaction<EcaTables>;

  constructor(db: Kysely<EcaTables> | Transaction<EcaTables>) {
    this.#db = db;
  }

  async hasRequest(requestDigest: string): Promise<boolean> {
    const row = await this.#db.selectFrom('eca_requests').select('request_digest').where('request_digest', '=', requestDigest).executeTakeFirst();
    return row !== undefined;
  }

  async history(deviceId: string, since: number): Promise<DeviceRequestHistory> {
    const c = await this.#db
      .selectFrom('eca_requests')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('device_id', '=', deviceId)
      .where('generation_time', '>', since)
      .executeTakeFirstOrThrow();
    const l = await this.#db
      .selectFrom('eca_requests')
      .select((eb) => eb.fn.max('generation_time').as('latest'))
      .where('device_id', '=', deviceId)
      .executeTakeFirst();
    const latest = l?.latest;
    return { countSince: toSafeNumber(c.n), latestGenerationTime: latest === null || latest === undefined ? undefined : toSafeNumber(latest) };
  }

  async recordEnrollment(r: EnrollmentRecord): Promise<void> {
    await this.#db
      .insertInto('eca_requests')
      .values({
        request_digest: r.requestDigest,
        request_hash: r.requestHash,
        device_id: r.deviceId,
        canonical_id: r.canonicalId,
        generation_time: r.generationTime,
        received_at: r.receivedAt.getTime(),
        certificate_hashed_id8: r.certificate.hashedId8,
        response: r.response ? toBytesParam(r.response) : null,
      })
      .execute();
    await this.#db
      .insertInto('eca_enrollment_certificates')
      .values({
        hashed_id8: r.certificate.hashedId8,
        device_id: r.deviceId,
        canonical_id: r.canonicalId,
        cert_type: r.certificate.type,
        certificate: toBytesParam(r.certificate.bytes),
        request_hash: r.requestHash,
        valid_from: r.certificate.validFrom,
        valid_until: r.certificate.validUntil,
        issued_at: r.receivedAt.getTime(),
      })
      .execute();
  }
}

function toIssued(r: EcaEnrollmentCertificatesTable): IssuedCertificate {
  return {
    hashedId8: r.hashed_id8,
    deviceId: r.device_id,
    canonicalId: r.canonical_id,
    type: r.cert_type as 'explicit' | 'implicit',
    certificate: fromBytes(r.certificate),
    requestHash: r.request_hash,
    validFrom: toSafeNumber(r.valid_from),
    validUntil: toSafeNumber(r.valid_until),
    issuedAt: new Date(toSafeNumber(r.issued_at)),
  };
}
