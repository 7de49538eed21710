// Batch state of `scms provision batch`, in DATA/provision.db (SQLite), keyed by (batch id, device index).
// A device's secrets (generated private keys, butterfly secrets) are kept between steps only encrypted:
// AES-256-GCM under scrypt(passphrase, per-batch salt); the passphrase comes from the environment.
import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto';
import type { Kysely } from 'kysely';
import { columnTypes, fromBytes, migrate, toBytesParam, type Migration } from '../store/index.js';
import { fromHex, toHex } from '../../crypto/bytes.js';

export const PROVISION_COMPONENT = 'provision';

export type DeviceStep = 'keys' | 'registered' | 'enrolled' | 'authorized' | 'done';

interface BatchesTable {
  batch_id: string;
  params: string;
  salt: Uint8Array;
  check_value: Uint8Array;
  created_at: number;
}
interface DevicesTable {
  batch_id: string;
  device_index: number;
  step: string;
  canonical_id: string;
  canonical_key: string;
  device_id: string | null;
  secrets: Uint8Array | null;
  /** Small public values between steps (enrollment request / response, authorization request). */
  data: string;
  updated_at: number;
}
interface Tables {
  provision_batches: BatchesTable;
  provision_devices: DevicesTable;
}

const migrations: Migration[] = [
  {
    name: '0001_batches',
    async up(db, dialect) {
      const t = columnTypes(dialect);
      await db.schema
        .createTable('provision_batches')
        .addColumn('batch_id', 'text', (c) => c.primaryKey())
        .addColumn('params', 'text', (c) => c.notNull())
        .addColumn('salt', t.bytes, (c) => c.notNull())
        .addColumn('check_value', t.bytes, (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('provision_devices')
        .addColumn('batch_id', 'text', (c) => c.notNull().references('provision_batches.batch_id'))
        .addColumn('device_index', 'integer', (c) => c.notNull())
        .addColumn('step', 'text', (c) => c.notNull())
        .addColumn('canonical_id', 'text', (c) => c.notNull())
        .addColumn('canonical_key', 'text', (c) => c.notNull())
        .addColumn('device_id', 'text')
        .addColumn('secrets', t.bytes)
        .addColumn('data', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('provision_devices_pk', ['batch_id', 'device_index'])
        .execute();
    },
  },
];

export interface DeviceRow {
  index: number;
  step: DeviceStep;
  canonicalId: string;
  canonicalKey: string;
  deviceId?: string;
  secrets?: Uint8Array;
  data: Record<string, string>;
}

const CHECK = new TextEncoder().encode('scms-provision-state');

/** Encrypts / decrypts the per-device secrets of one batch. */
export class StateCipher {
  readonly #key: Buffer;
  constructor(passphrase: string, salt: Uint8Array) {
    this.#key = scryptSync(passphrase, salt, 32, { N: 1 << 14, r: 8, p: 1 });
  }
  seal(plain: Uint8Array): Uint8Array {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.#key, iv);
    const body = Buffer.concat([c.update(plain), c.final()]);
    return new Uint8Array(Buffer.concat([iv, c.getAuthTag(), body]));
  }
  open(sealed: Uint8Array): Uint8Array {
    const b = Buffer.from(sealed);
    const d = createDecipheriv('aes-256-gcm', this.#key, b.subarray(0, 12));
    d.setAuthTag(b.subarray(12, 28));
    return new Uint8Array(Buffer.concat([d.update(b.subarray(28)), d.final()]));
  }
}

export class ProvisionStateError extends Error {
  override readonly name = 'ProvisionStateError';
}

export class ProvisionState {
  readonly db: Kysely<Tables>;
  constructor(db: Kysely<any>) {
    this.db = db as Kysely<Tables>;
  }

  async migrate(): Promise<void> {
    await migrate(this.db, { component: PROVISION_COMPONENT, migrations });
  }

  /** Opens (or creates) a batch; the same id with other parameters or another passphrase is refused. */
  async openBatch(batchId: string, params: unknown, passphrase: string, now: number): Promise<StateCipher> {
    const json = JSON.stringify(params);
    const row = await this.db.selectFrom('provision_batches').selectAll().where('batch_id', '=', batchId).executeTakeFirst();
    if (row) {
      if (row.params !== json) throw new ProvisionStateError(`batch ${batchId} exists with other parameters`);
      const cipher = new StateCipher(passphrase, fromBytes(row.salt));
      try {
        cipher.open(fromBytes(row.check_value));
      } catch {
        throw new ProvisionStateError(`batch ${batchId}: the state passphrase differs from the one the batch was started with`);
      }
      return cipher;
    }
    const salt = new Uint8Array(randomBytes(16));
    const cipher = new StateCipher(passphrase, salt);
    await this.db
      .insertInto('provision_batches')
      .values({ batch_id: batchId, params: json, salt: toBytesParam(salt), check_value: toBytesParam(cipher.seal(CHECK)), created_at: now })
      .execute();
    return cipher;
  }

  async devices(batchId: string): Promise<Map<number, DeviceRow>> {
    const rows = await this.db.selectFrom('provision_devices').selectAll().where('batch_id', '=', batchId).execute();
    return new Map(rows.map((r) => [Number(r.device_index), toRow(r)]));
  }

  async insert(batchId: string, d: DeviceRow, now: number): Promise<void> {
    await this.db
      .insertInto('provision_devices')
      .values({
        batch_id: batchId,
        device_index: d.index,
        step: d.step,
        canonical_id: d.canonicalId,
        canonical_key: d.canonicalKey,
        device_id: d.deviceId ?? null,
        secrets: d.secrets ? toBytesParam(d.secrets) : null,
        data: JSON.stringify(d.data),
        updated_at: now,
      })
      .execute();
  }

  /** Moves a device to `step`, merging `data` (secrets are dropped at 'done'). */
  async advance(batchId: string, d: DeviceRow, step: DeviceStep, patch: { deviceId?: string; data?: Record<string, string> }, now: number): Promise<void> {
    d.step = step;
    if (patch.deviceId) d.deviceId = patch.deviceId;
    if (patch.data) Object.assign(d.data, patch.data);
    if (step === 'done') delete d.secrets;
    await this.db
      .updateTable('provision_devices')
      .set({ step, device_id: d.deviceId ?? null, data: JSON.stringify(d.data), updated_at: now, ...(step === 'done' ? { secrets: null } : {}) })
      .where('batch_id', '=', batchId)
      .where('device_index', '=', d.index)
      .execute();
  }
}

function toRow(r: DevicesTable): DeviceRow {
  return {
    index: Number(r.device_index),
    step: r.step as DeviceStep,
    canonicalId: r.canonical_id,
    canonicalKey: r.canonical_key,
    ...(r.device_id ? { deviceId: r.device_id } : {}),
    ...(r.secrets ? { secrets: fromBytes(r.secrets) } : {}),
    data: JSON.parse(r.data) as Record<string, string>,
  };
}

/** JSON with bigint and Uint8Array values (for the sealed secrets). */
export function secretsToBytes(v: unknown): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? { $n: x.toString(16) } : x instanceof Uint8Array ? { $b: toHex(x) } : x)),
  );
}
export function secretsFromBytes<T>(b: Uint8Array): T {
  return JSON.parse(new TextDecoder().decode(b), (_k, x) =>
    x && typeof x === 'object' && '$n' in x ? BigInt(`0x${(x as { $n: string }).$n}`) : x && typeof x === 'object' && '$b' in x ? fromHex((x as { $b: string }).$b) : x,
  ) as T;
}
