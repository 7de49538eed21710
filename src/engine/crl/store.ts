// The CRL tables of the component that signs CRLs (the RA process under `serve ra|all`) and their only gateway:
//   crl_revocations  one row per revoked device: its hash-based entries (HashedId10, expiry) and, for its pseudonym
//                    chains, the linkage seeds of LA1 and LA2 at i-period `i` (public once on a CRL, so stored as is).
//   crl_issued       the latest SecuredCrl per (crlCraca, crlSeries, kind) with its counter (crlSerial, or iRev and
//                    indexWithinI), issueDate and nextCrl: what GET /v3/crl serves, and what a restart resumes from.
import type { Kysely } from 'kysely';
import { columnTypes, fromBytes, toBytesParam, toSafeNumber, type Migration } from '../store/index.js';
import { migrate } from '../store/migrate.js';
import { withTransaction } from '../store/transaction.js';

export const CRL_COMPONENT = 'crl';

export interface CrlRevocationsTable {
  device_id: string;
  revoked_at: number | string;
  reason: string;
  actor: string;
  /** JSON HashEntry[]. */
  hash_entries: string;
  /** JSON LinkageEntry, or null (the device has no pseudonym chains). */
  linkage: string | null;
}

export interface CrlIssuedTable {
  craca: string;
  series: number;
  kind: string;
  /** crlSerial (hash, Uint32) or indexWithinI (linked). */
  serial: number | string;
  i_rev: number | null;
  issue_date: number | string;
  next_crl: number | string;
  crl: Uint8Array;
}

export interface CrlTables {
  crl_revocations: CrlRevocationsTable;
  crl_issued: CrlIssuedTable;
}

export const crlMigrations: Migration[] = [
  {
    name: '0001_crl',
    async up(db, dialect) {
      const t = columnTypes(dialect);
      await db.schema
        .createTable('crl_revocations')
        .addColumn('device_id', 'text', (c) => c.primaryKey())
        .addColumn('revoked_at', t.timestampMs, (c) => c.notNull())
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('hash_entries', 'text', (c) => c.notNull())
        .addColumn('linkage', 'text')
        .execute();
      await db.schema
        .createTable('crl_issued')
        .addColumn('craca', 'text', (c) => c.notNull())
        .addColumn('series', 'integer', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('serial', 'bigint', (c) => c.notNull())
        .addColumn('i_rev', 'integer')
        .addColumn('issue_date', 'bigint', (c) => c.notNull())
        .addColumn('next_crl', 'bigint', (c) => c.notNull())
        .addColumn('crl', t.bytes, (c) => c.notNull())
        .addPrimaryKeyConstraint('crl_issued_pk', ['craca', 'series', 'kind'])
        .execute();
    },
  },
];

/** A hash-based revocation: HashedId10 (hex) and the certificate's expiry (Time32). */
export interface HashEntry {
  id: string;
  expiry: number;
  /** What the certificate was (enrollment, identification, ...), for the operator. */
  kind: string;
}

/** Linkage seeds (hex) of a device's chain pair at i-period `i`. */
export interface LinkageEntry {
  la1Id: number;
  la2Id: number;
  seed1: string;
  seed2: string;
  i: number;
  jmax: number;
  iMax: number;
}

export interface Revocation {
  deviceId: string;
  revokedAt: Date;
  reason: string;
  actor: string;
  hashEntries: HashEntry[];
  linkage?: LinkageEntry;
}

export interface IssuedCrl {
  craca: string;
  series: number;
  kind: 'fullHashCrl' | 'fullLinkedCrl';
  serial: number;
  iRev?: number;
  issueDate: number;
  nextCrl: number;
  crl: Uint8Array;
}

export class CrlStore {
  readonly db: Kysely<CrlTables>;
  constructor(db: Kysely<any>) {
    this.db = db as Kysely<CrlTables>;
  }

  async migrate(): Promise<void> {
    await migrate(this.db, { component: CRL_COMPONENT, migrations: crlMigrations });
  }

  /** Inserts a revocation; false (nothing written) when the device is already revoked. */
  async addRevocation(r: Revocation): Promise<boolean> {
    return withTransaction(this.db, async (tx) => {
      const existing = await tx.selectFrom('crl_revocations').select('device_id').where('device_id', '=', r.deviceId).executeTakeFirst();
      if (existing) return false;
      await tx
        .insertInto('crl_revocations')
        .values({
          device_id: r.deviceId,
          revoked_at: r.revokedAt.getTime(),
          reason: r.reason,
          actor: r.actor,
          hash_entries: JSON.stringify(r.hashEntries),
          linkage: r.linkage ? JSON.stringify(r.linkage) : null,
        })
        .execute();
      return true;
    });
  }

  async revocation(deviceId: string): Promise<Revocation | undefined> {
    const row = await this.db.selectFrom('crl_revocations').selectAll().where('device_id', '=', deviceId).executeTakeFirst();
    return row && toRevocation(row);
  }

  async revocations(): Promise<Revocation[]> {
    const rows = await this.db.selectFrom('crl_revocations').selectAll().orderBy('revoked_at').orderBy('device_id').execute();
    return rows.map(toRevocation);
  }

  async issued(): Promise<IssuedCrl[]> {
    const rows = await this.db.selectFrom('crl_issued').selectAll().orderBy('craca').orderBy('series').orderBy('kind').execute();
    return rows.map((r) => ({
      craca: r.craca,
      series: toSafeNumber(r.series),
      kind: r.kind as IssuedCrl['kind'],
      serial: toSafeNumber(r.serial),
      ...(r.i_rev !== null ? { iRev: toSafeNumber(r.i_rev) } : {}),
      issueDate: toSafeNumber(r.issue_date),
      nextCrl: toSafeNumber(r.next_crl),
      crl: fromBytes(r.crl),
    }));
  }

  /** Stores the CRLs of one issuance (replacing the previous ones of the same craca / series / kind) atomically. */
  async saveIssued(crls: readonly IssuedCrl[]): Promise<void> {
    await withTransaction(this.db, async (tx) => {
      for (const c of crls) {
        const values = {
          craca: c.craca,
          series: c.series,
          kind: c.kind,
          serial: c.serial,
          i_rev: c.iRev ?? null,
          issue_date: c.issueDate,
          next_crl: c.nextCrl,
          crl: toBytesParam(c.crl),
        };
        await tx
          .insertInto('crl_issued')
          .values(values)
          .onConflict((oc) => oc.columns(['craca', 'series', 'kind']).doUpdateSet({ serial: c.serial, i_rev: values.i_rev, issue_date: c.issueDate, next_crl: c.nextCrl, crl: values.crl }))
          .execute();
      }
    });
  }
}

function toRevocation(row: CrlRevocationsTable): Revocation {
  return {
    deviceId: row.device_id,
    revokedAt: new Date(toSafeNumber(row.revoked_at)),
    reason: row.reason,
    actor: row.actor,
    hashEntries: JSON.parse(row.hash_entries) as HashEntry[],
    ...(row.linkage ? { linkage: JSON.parse(row.linkage) as LinkageEntry } : {}),
  };
}
