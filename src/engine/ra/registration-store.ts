// The RA's device tables (ra_devices, ra_device_events, ra_device_certificates) and their only gateway.
import { randomUUID } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import { systemClock, type Clock } from '../../security/time.js';
import { columnTypes, fromBytes, toBytesParam, toSafeNumber, type Migration } from '../store/index.js';
import { migrate } from '../store/migrate.js';
import { withTransaction } from '../store/transaction.js';
import { toHex } from '../../crypto/bytes.js';
import {
  validateCertificateInput,
  type CanonicalKeyCurve,
  type CertificateRecord,
  type CertificateRecordInput,
  type DeviceEvent,
  type DeviceRecord,
  type DeviceState,
  type DeviceType,
  type RegisterDeviceInput,
} from './registration.js';

export const REGISTRATION_COMPONENT = 'ra-registration';

export interface RaDevicesTable {
  device_id: string;
  canonical_id: string;
  canonical_key: Uint8Array;
  curve: string;
  device_type: string;
  name: string | null;
  region: string | null;
  psid_group: string | null;
  registered_at: number | string;
  updated_at: number | string;
  enrolled_at: number | string | null;
  blocked_at: number | string | null;
  block_reason: string | null;
  /** Last event sequence number of this device. */
  event_seq: number | string;
}

export interface RaDeviceEventsTable {
  device_id: string;
  seq: number | string;
  at: number | string;
  kind: string;
  actor: string;
  details: string;
}

export interface RaDeviceCertificatesTable {
  device_id: string;
  hashed_id8: string;
  kind: string;
  issuer: string | null;
  issued_at: number | string;
  valid_from: number | string | null;
  valid_until: number | string | null;
}

export interface RegistrationTables {
  ra_devices: RaDevicesTable;
  ra_device_events: RaDeviceEventsTable;
  ra_device_certificates: RaDeviceCertificatesTable;
}

export const registrationMigrations: Migration[] = [
  {
    name: '0001_devices',
    async up(db, dialect) {
      const t = columnTypes(dialect);
      await db.schema
        .createTable('ra_devices')
        .addColumn('device_id', 'text', (c) => c.primaryKey())
        .addColumn('canonical_id', 'text', (c) => c.notNull().unique())
        .addColumn('canonical_key', t.bytes, (c) => c.notNull().unique())
        .addColumn('curve', 'text', (c) => c.notNull())
        .addColumn('device_type', 'text', (c) => c.notNull())
        .addColumn('name', 'text')
        .addColumn('region', t.json)
        .addColumn('psid_group', 'text')
        .addColumn('registered_at', t.timestampMs, (c) => c.notNull())
        .addColumn('updated_at', t.timestampMs, (c) => c.notNull())
        .addColumn('enrolled_at', t.timestampMs)
        .addColumn('blocked_at', t.timestampMs)
        .addColumn('block_reason', 'text')
        .addColumn('event_seq', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema
        .createTable('ra_device_events')
        .addColumn('device_id', 'text', (c) => c.notNull().references('ra_devices.device_id'))
        .addColumn('seq', 'integer', (c) => c.notNull())
        .addColumn('at', t.timestampMs, (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('details', t.json, (c) => c.notNull())
        .addPrimaryKeyConstraint('ra_device_events_pk', ['device_id', 'seq'])
        .execute();
      await db.schema
        .createTable('ra_device_certificates')
        .addColumn('device_id', 'text', (c) => c.notNull().references('ra_devices.device_id'))
        .addColumn('hashed_id8', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('issuer', 'text')
        .addColumn('issued_at', t.timestampMs, (c) => c.notNull())
        .addColumn('valid_from', t.timestampMs)
        .addColumn('valid_until', t.timestampMs)
        .addPrimaryKeyConstraint('ra_device_certificates_pk', ['device_id', 'hashed_id8'])
        .execute();
      await db.schema.createIndex('ra_device_certificates_hash').on('ra_device_certificates').column('hashed_id8').execute();
    },
  },
];

export interface RegisterResult {
  /** False when the key was already registered: `device` is the existing one. */
  created: boolean;
  device: DeviceRecord;
}

export interface StateChangeResult {
  /** False when the device already was in the requested state (nothing recorded). */
  changed: boolean;
  device: DeviceRecord;
}

export interface RegistrationStoreOptions {
  clock?: Clock;
}

type Db = Kysely<RegistrationTables>;
type DeviceRow = RaDevicesTable;

const iso = (ms: number | string | null): string | null => (ms === null ? null : new Date(toSafeNumber(ms)).toISOString());

function isUniqueViolation(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === '23505' || (typeof code === 'string' && (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY'));
}

/** Devices, their events (append-only history) and the certificates issued to them. */
export class RegistrationStore {
  readonly db: Db;
  readonly clock: Clock;

  constructor(db: Kysely<any>, options: RegistrationStoreOptions = {}) {
    this.db = db as Db;
    this.clock = options.clock ?? systemClock;
  }

  async migrate(): Promise<void> {
    await migrate(this.db, { component: REGISTRATION_COMPONENT, migrations: registrationMigrations });
  }

  /** Database reachable (for /healthz). */
  async ping(): Promise<void> {
    await this.db.selectFrom('ra_devices').select('device_id').limit(1).execute();
  }

  /** Registers a device; the same canonical key twice returns the existing device with created=false. */
  async register(input: RegisterDeviceInput, actor: string): Promise<RegisterResult> {
    const now = this.clock.now().getTime();
    const deviceId = randomUUID();
    try {
      return await withTransaction(this.db, async (tx) => {
        const existing = await this.#byKey(tx, input.key.compressed);
        if (existing) return { created: false, device: toRecord(existing) };
        await tx
          .insertInto('ra_devices')
          .values({
            device_id: deviceId,
            canonical_id: input.key.canonicalId,
            canonical_key: toBytesParam(input.key.compressed),
            curve: input.key.curve,
            device_type: input.deviceType,
            name: input.name ?? null,
            region: input.region ? JSON.stringify(input.region) : null,
            psid_group: input.psidGroup ?? null,
            registered_at: now,
            updated_at: now,
            enrolled_at: null,
            blocked_at: null,
            block_reason: null,
            event_seq: 0,
          })
          .execute();
        await this.#event(tx, deviceId, now, 'registered', actor, { canonicalId: input.key.canonicalId, deviceType: input.deviceType });
        return { created: true, device: toRecord((await this.#byId(tx, deviceId))!) };
      });
    } catch (e) {
      // A concurrent registration of the same key won the race.
      if (!isUniqueViolation(e)) throw e;
      const existing = await this.#byKey(this.db, input.key.compressed);
      if (!existing) throw e;
      return { created: false, device: toRecord(existing) };
    }
  }

  async get(deviceId: string): Promise<DeviceRecord | undefined> {
    const row = await this.#byId(this.db, deviceId);
    return row && toRecord(row);
  }

  async findByCanonicalId(canonicalId: string): Promise<DeviceRecord | undefined> {
    const row = await this.db.selectFrom('ra_devices').selectAll().where('canonical_id', '=', canonicalId).executeTakeFirst();
    return row && toRecord(row);
  }

  /** By the compressed encoding of the canonical key. */
  async findByCanonicalKey(compressed: Uint8Array): Promise<DeviceRecord | undefined> {
    const row = await this.#byKey(this.db, compressed);
    return row && toRecord(row);
  }

  /** Devices ordered by device id; `after` is the last id of the previous page. */
  async list(options: { limit?: number; after?: string } = {}): Promise<DeviceRecord[]> {
    let q = this.db.selectFrom('ra_devices').selectAll().orderBy('device_id').limit(Math.min(Math.max(options.limit ?? 100, 1), 1000));
    if (options.after !== undefined) q = q.where('device_id', '>', options.after);
    return (await q.execute()).map(toRecord);
  }

  /** Blocks a device (any state); undefined when unknown. */
  async block(deviceId: string, reason: string, actor: string): Promise<StateChangeResult | undefined> {
    return this.#setBlocked(deviceId, true, reason, actor);
  }

  /** Lifts a block; the device returns to registered or enrolled. */
  async unblock(deviceId: string, reason: string, actor: string): Promise<StateChangeResult | undefined> {
    return this.#setBlocked(deviceId, false, reason, actor);
  }

  async #setBlocked(deviceId: string, blocked: boolean, reason: string, actor: string): Promise<StateChangeResult | undefined> {
    const now = this.clock.now().getTime();
    return withTransaction(this.db, async (tx) => {
      const row = await this.#byId(tx, deviceId);
      if (!row) return undefined;
      if ((row.blocked_at !== null) === blocked) return { changed: false, device: toRecord(row) };
      await tx
        .updateTable('ra_devices')
        .set(blocked ? { blocked_at: now, block_reason: reason, updated_at: now } : { blocked_at: null, block_reason: null, updated_at: now })
        .where('device_id', '=', deviceId)
        .execute();
      await this.#event(tx, deviceId, now, blocked ? 'blocked' : 'unblocked', actor, { reason });
      return { changed: true, device: toRecord((await this.#byId(tx, deviceId))!) };
    });
  }

  /**
   * Records an enrollment certificate and moves a registered device to enrolled (first time only; a blocked
   * device stays blocked). Idempotent per certificate. Returns false when the device is unknown.
   */
  async markEnrolled(deviceId: string, certificate: CertificateRecordInput, actor: string): Promise<boolean> {
    validateCertificateInput(certificate);
    const now = this.clock.now().getTime();
    return withTransaction(this.db, async (tx) => {
      const row = await this.#byId(tx, deviceId);
      if (!row) return false;
      const inserted = await this.#insertCertificate(tx, deviceId, certificate, now);
      if (!inserted) return true;
      const at = certificate.issuedAt?.getTime() ?? now;
      await tx
        .updateTable('ra_devices')
        .set({ enrolled_at: row.enrolled_at ?? at, updated_at: now })
        .where('device_id', '=', deviceId)
        .execute();
      await this.#event(tx, deviceId, now, 'enrolled', actor, { kind: certificate.kind, hashedId8: certificate.hashedId8 });
      return true;
    });
  }

  /**
   * Records a certificate issued to the device (called by the issuing component). Idempotent per
   * (device, hashedId8). Returns false when the device is unknown.
   */
  async recordCertificate(deviceId: string, certificate: CertificateRecordInput, actor: string = certificate.issuer ?? 'unknown'): Promise<boolean> {
    validateCertificateInput(certificate);
    const now = this.clock.now().getTime();
    return withTransaction(this.db, async (tx) => {
      if (!(await this.#byId(tx, deviceId))) return false;
      if (await this.#insertCertificate(tx, deviceId, certificate, now)) {
        await tx.updateTable('ra_devices').set({ updated_at: now }).where('device_id', '=', deviceId).execute();
        await this.#event(tx, deviceId, now, 'certificate', actor, { kind: certificate.kind, hashedId8: certificate.hashedId8 });
      }
      return true;
    });
  }

  async certificates(deviceId: string): Promise<CertificateRecord[]> {
    const rows = await this.db
      .selectFrom('ra_device_certificates')
      .selectAll()
      .where('device_id', '=', deviceId)
      .orderBy('issued_at')
      .orderBy('hashed_id8')
      .execute();
    return rows.map((r) => ({
      kind: r.kind,
      hashedId8: r.hashed_id8,
      issuer: r.issuer,
      issuedAt: iso(r.issued_at)!,
      validFrom: iso(r.valid_from),
      validUntil: iso(r.valid_until),
    }));
  }

  async events(deviceId: string): Promise<DeviceEvent[]> {
    const rows = await this.db.selectFrom('ra_device_events').selectAll().where('device_id', '=', deviceId).orderBy('seq').execute();
    return rows.map((r) => ({ seq: toSafeNumber(r.seq), at: iso(r.at)!, kind: r.kind, actor: r.actor, details: JSON.parse(r.details) as Record<string, unknown> }));
  }

  async #insertCertificate(tx: Transaction<RegistrationTables>, deviceId: string, c: CertificateRecordInput, now: number): Promise<boolean> {
    const res = await tx
      .insertInto('ra_device_certificates')
      .values({
        device_id: deviceId,
        hashed_id8: c.hashedId8,
        kind: c.kind,
        issuer: c.issuer ?? null,
        issued_at: c.issuedAt?.getTime() ?? now,
        valid_from: c.validFrom?.getTime() ?? null,
        valid_until: c.validUntil?.getTime() ?? null,
      })
      .onConflict((oc) => oc.columns(['device_id', 'hashed_id8']).doNothing())
      .executeTakeFirst();
    return Number(res.numInsertedOrUpdatedRows ?? 0n) > 0;
  }

  async #event(tx: Transaction<RegistrationTables>, deviceId: string, at: number, kind: string, actor: string, details: Record<string, unknown>) {
    const { event_seq } = await tx
      .updateTable('ra_devices')
      .set((eb) => ({ event_seq: eb('event_seq', '+', 1) }))
      .where('device_id', '=', deviceId)
      .returning('event_seq')
      .executeTakeFirstOrThrow();
    await tx
      .insertInto('ra_device_events')
      .values({ device_id: deviceId, seq: toSafeNumber(event_seq), at, kind, actor, details: JSON.stringify(details) })
      .execute();
  }

  #byId(db: Kysely<RegistrationTables>, deviceId: string): Promise<DeviceRow | undefined> {
    return db.selectFrom('ra_devices').selectAll().where('device_id', '=', deviceId).executeTakeFirst();
  }

  #byKey(db: Kysely<RegistrationTables>, compressed: Uint8Array): Promise<DeviceRow | undefined> {
    return db.selectFrom('ra_devices').selectAll().where('canonical_key', '=', toBytesParam(compressed)).executeTakeFirst();
  }
}

function toRecord(r: DeviceRow): DeviceRecord {
  const state: DeviceState = r.blocked_at !== null ? 'blocked' : r.enrolled_at !== null ? 'enrolled' : 'registered';
  return {
    deviceId: r.device_id,
    canonicalId: r.canonical_id,
    canonicalPublicKey: toHex(fromBytes(r.canonical_key)),
    curve: r.curve as CanonicalKeyCurve,
    deviceType: r.device_type as DeviceType,
    name: r.name,
    region: r.region === null ? null : (JSON.parse(r.region) as number[]),
    psidGroup: r.psid_group,
    state,
    registeredAt: iso(r.registered_at)!,
    updatedAt: iso(r.updated_at)!,
    enrolledAt: iso(r.enrolled_at),
    blockedAt: iso(r.blocked_at),
    blockReason: r.block_reason,
  };
}
