// Many-device operations on the RA's device tables (registration-store.ts) for the factory line (`scms provision
// batch`): the same rows and events RegistrationStore.register / markEnrolled / recordCertificate write, with
// prepared statements on the RA's SQLite database (better-sqlite3) and one BEGIN IMMEDIATE transaction per call.
// Idempotent like the single-device operations: a registered key returns its device, a known certificate is
// not recorded twice.
import { randomUUID } from 'node:crypto';
import type BetterSqlite3 from 'better-sqlite3';
import type { Clock } from '../../security/time.js';
import { validateCertificateInput, type CanonicalKeyCurve, type CertificateRecordInput, type DeviceType, type RegisterDeviceInput, type RegisteredDevice } from './registration.js';

interface DeviceRow {
  device_id: string;
  canonical_id: string;
  curve: string;
  device_type: string;
  region: string | null;
  psid_group: string | null;
  enrolled_at: number | null;
  blocked_at: number | null;
}

const toDevice = (r: DeviceRow): RegisteredDevice & { curve: CanonicalKeyCurve } => ({
  deviceId: r.device_id,
  canonicalId: r.canonical_id,
  curve: r.curve as CanonicalKeyCurve,
  deviceType: r.device_type as DeviceType,
  state: r.blocked_at !== null ? 'blocked' : r.enrolled_at !== null ? 'enrolled' : 'registered',
  region: r.region === null ? null : (JSON.parse(r.region) as number[]),
  psidGroup: r.psid_group,
});

export class RegistrationBatch {
  readonly #db: BetterSqlite3.Database;
  readonly #clock: Clock;
  readonly #byKey: BetterSqlite3.Statement<[Buffer], DeviceRow>;
  readonly #insDevice: BetterSqlite3.Statement;
  readonly #insEvent: BetterSqlite3.Statement;
  readonly #insCert: BetterSqlite3.Statement;
  readonly #enrolled: BetterSqlite3.Statement<[number, number, string], { event_seq: number }>;
  readonly #touched: BetterSqlite3.Statement<[number, string], { event_seq: number }>;

  /** `db`: the RA database with the registration tables migrated. */
  constructor(db: BetterSqlite3.Database, clock: Clock) {
    this.#db = db;
    this.#clock = clock;
    this.#byKey = db.prepare('select device_id, canonical_id, curve, device_type, region, psid_group, enrolled_at, blocked_at from ra_devices where canonical_key = ?');
    this.#insDevice = db.prepare(
      'insert into ra_devices (device_id, canonical_id, canonical_key, curve, device_type, name, region, psid_group, registered_at, updated_at, enrolled_at, blocked_at, block_reason, event_seq) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, null, null, null, 1)',
    );
    this.#insEvent = db.prepare('insert into ra_device_events (device_id, seq, at, kind, actor, details) values (?, ?, ?, ?, ?, ?)');
    this.#insCert = db.prepare(
      'insert into ra_device_certificates (device_id, hashed_id8, kind, issuer, issued_at, valid_from, valid_until) values (?, ?, ?, ?, ?, ?, ?) on conflict (device_id, hashed_id8) do nothing',
    );
    this.#enrolled = db.prepare('update ra_devices set enrolled_at = coalesce(enrolled_at, ?), updated_at = ?, event_seq = event_seq + 1 where device_id = ? returning event_seq');
    this.#touched = db.prepare('update ra_devices set updated_at = ?, event_seq = event_seq + 1 where device_id = ? returning event_seq');
  }

  /** Registers the devices (RegistrationStore.register for each); an already registered key returns its device. */
  registerMany(inputs: readonly RegisterDeviceInput[], actor: string): Array<{ created: boolean; device: RegisteredDevice & { curve: CanonicalKeyCurve } }> {
    const now = this.#clock.now().getTime();
    return this.#db
      .transaction(() =>
        inputs.map((input) => {
          const key = Buffer.from(input.key.compressed);
          const existing = this.#byKey.get(key);
          if (existing) return { created: false, device: toDevice(existing) };
          const deviceId = randomUUID();
          const region = input.region ? JSON.stringify(input.region) : null;
          this.#insDevice.run(deviceId, input.key.canonicalId, key, input.key.curve, input.deviceType, input.name ?? null, region, input.psidGroup ?? null, now, now);
          this.#insEvent.run(deviceId, 1, now, 'registered', actor, JSON.stringify({ canonicalId: input.key.canonicalId, deviceType: input.deviceType }));
          return {
            created: true,
            device: { deviceId, canonicalId: input.key.canonicalId, curve: input.key.curve, deviceType: input.deviceType, state: 'registered' as const, region: input.region ?? null, psidGroup: input.psidGroup ?? null },
          };
        }),
      )
      .immediate();
  }

  /** RegistrationStore.markEnrolled for each (unknown devices throw: the caller registered them). */
  markEnrolledMany(items: ReadonlyArray<{ deviceId: string; certificate: CertificateRecordInput }>, actor: string): void {
    this.#records(items, actor, true);
  }

  /** RegistrationStore.recordCertificate for each. */
  recordCertificateMany(items: ReadonlyArray<{ deviceId: string; certificate: CertificateRecordInput }>, actor: string): void {
    this.#records(items, actor, false);
  }

  #records(items: ReadonlyArray<{ deviceId: string; certificate: CertificateRecordInput }>, actor: string, enrolled: boolean): void {
    for (const i of items) validateCertificateInput(i.certificate);
    const now = this.#clock.now().getTime();
    this.#db
      .transaction(() => {
        for (const { deviceId, certificate: c } of items) {
          const at = c.issuedAt?.getTime() ?? now;
          const inserted = this.#insCert.run(deviceId, c.hashedId8, c.kind, c.issuer ?? null, at, c.validFrom?.getTime() ?? null, c.validUntil?.getTime() ?? null).changes > 0;
          if (!inserted) continue;
          const row = enrolled ? this.#enrolled.get(at, now, deviceId) : this.#touched.get(now, deviceId);
          if (!row) throw new Error(`unknown device ${deviceId}`);
          const who = c.issuer ?? actor;
          this.#insEvent.run(deviceId, row.event_seq, now, enrolled ? 'enrolled' : 'certificate', who, JSON.stringify({ kind: c.kind, hashedId8: c.hashedId8 }));
        }
      })
      .immediate();
  }
}

