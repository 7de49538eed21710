// Batch state of `scms provision batch`, in DATA/provision.db (SQLite), keyed by (batch id, device index).
// A device's secrets (generated private keys, butterfly secrets) are kept between steps only encrypted:
// AES-256-GCM under scrypt(passphrase, per-batch salt); the passphrase comes from the environment. The batch's
// transport key (the AES-128 key the bundles' keys.oer are encrypted under) is sealed the same way.
//
// Progress is recorded per chunk of devices: one transaction per step of a chunk (prepared statements, better-
// sqlite3, synchronous=FULL so that a recorded step survives power loss as the component databases' records do).
import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto';
import BetterSqlite3 from 'better-sqlite3';
import { columnTypes, migrate, openDatabase, type Migration } from '../store/index.js';
import { fromHex, toHex } from '../../crypto/bytes.js';

export const PROVISION_COMPONENT = 'provision';

export type DeviceStep = 'keys' | 'registered' | 'enrolled' | 'authorized' | 'done';

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
  {
    name: '0002_transport_key',
    async up(db, dialect) {
      const t = columnTypes(dialect);
      // The batch transport key (sealed) and its ECIES wrap to the factory key (the bundles' transport-key.oer).
      await db.schema.alterTable('provision_batches').addColumn('transport_key', t.bytes).execute();
      await db.schema.alterTable('provision_batches').addColumn('transport_wrap', t.bytes).execute();
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

interface RawDevice {
  device_index: number;
  step: string;
  canonical_id: string;
  canonical_key: string;
  device_id: string | null;
  secrets: Buffer | null;
  data: string;
}

/** Opens a SQLite file for the batch hot path: WAL, synchronous=FULL (a commit is on disk), busy timeout. */
export function openRawSqlite(path: string): BetterSqlite3.Database {
  const db = new BetterSqlite3(path);
  try {
    db.pragma('busy_timeout = 5000');
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (String(mode).toLowerCase() !== 'wal') throw new Error(`could not enable WAL on ${path} (got ${String(mode)})`);
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
  } catch (e) {
    db.close();
    throw e;
  }
  return db;
}

export class ProvisionState {
  readonly #db: BetterSqlite3.Database;
  readonly #ins: BetterSqlite3.Statement;
  readonly #upd: BetterSqlite3.Statement;

  private constructor(db: BetterSqlite3.Database) {
    this.#db = db;
    this.#ins = db.prepare(
      'insert into provision_devices (batch_id, device_index, step, canonical_id, canonical_key, device_id, secrets, data, updated_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.#upd = db.prepare('update provision_devices set step = ?, device_id = ?, data = ?, secrets = ?, updated_at = ? where batch_id = ? and device_index = ?');
  }

  /** Opens DATA/provision.db (migrating it). */
  static async open(path: string): Promise<ProvisionState> {
    const k = await openDatabase<any>(`sqlite:${path}`);
    try {
      await migrate(k, { component: PROVISION_COMPONENT, migrations });
    } finally {
      await k.destroy();
    }
    return new ProvisionState(openRawSqlite(path));
  }

  close(): void {
    this.#db.close();
  }

  /**
   * Opens (or creates) a batch; the same id with other parameters or another passphrase is refused. `transport`
   * makes the batch transport key on creation (key + its wrap); it is returned (opened) on every call.
   */
  openBatch(
    batchId: string,
    params: unknown,
    passphrase: string,
    now: number,
    transport?: () => { key: Uint8Array; wrap: Uint8Array },
  ): { cipher: StateCipher; transport?: { key: Uint8Array; wrap: Uint8Array } } {
    const json = JSON.stringify(params);
    const row = this.#db.prepare('select params, salt, check_value, transport_key, transport_wrap from provision_batches where batch_id = ?').get(batchId) as
      | { params: string; salt: Buffer; check_value: Buffer; transport_key: Buffer | null; transport_wrap: Buffer | null }
      | undefined;
    if (row) {
      if (row.params !== json) throw new ProvisionStateError(`batch ${batchId} exists with other parameters`);
      const cipher = new StateCipher(passphrase, row.salt);
      try {
        cipher.open(row.check_value);
      } catch {
        throw new ProvisionStateError(`batch ${batchId}: the state passphrase differs from the one the batch was started with`);
      }
      return { cipher, ...(row.transport_key && row.transport_wrap ? { transport: { key: cipher.open(row.transport_key), wrap: new Uint8Array(row.transport_wrap) } } : {}) };
    }
    const salt = new Uint8Array(randomBytes(16));
    const cipher = new StateCipher(passphrase, salt);
    const t = transport?.();
    this.#db
      .prepare('insert into provision_batches (batch_id, params, salt, check_value, created_at, transport_key, transport_wrap) values (?, ?, ?, ?, ?, ?, ?)')
      .run(batchId, json, Buffer.from(salt), Buffer.from(cipher.seal(CHECK)), now, t ? Buffer.from(cipher.seal(t.key)) : null, t ? Buffer.from(t.wrap) : null);
    return { cipher, ...(t ? { transport: t } : {}) };
  }

  devices(batchId: string): Map<number, DeviceRow> {
    const rows = this.#db.prepare('select device_index, step, canonical_id, canonical_key, device_id, secrets, data from provision_devices where batch_id = ?').all(batchId) as RawDevice[];
    return new Map(rows.map((r) => [Number(r.device_index), toRow(r)]));
  }

  /** Inserts the devices in one transaction. */
  insert(batchId: string, rows: readonly DeviceRow[], now: number): void {
    this.#db
      .transaction(() => {
        for (const d of rows) {
          this.#ins.run(batchId, d.index, d.step, d.canonicalId, d.canonicalKey, d.deviceId ?? null, d.secrets ? Buffer.from(d.secrets) : null, JSON.stringify(d.data), now);
        }
      })
      .immediate();
  }

  /** Records the rows as they are now (step, device id, data; secrets dropped at 'done') in one transaction. */
  save(batchId: string, rows: readonly DeviceRow[], now: number): void {
    this.#db
      .transaction(() => {
        for (const d of rows) {
          if (d.step === 'done') delete d.secrets;
          this.#upd.run(d.step, d.deviceId ?? null, JSON.stringify(d.data), d.secrets ? Buffer.from(d.secrets) : null, now, batchId, d.index);
        }
      })
      .immediate();
  }
}

function toRow(r: RawDevice): DeviceRow {
  return {
    index: Number(r.device_index),
    step: r.step as DeviceStep,
    canonicalId: r.canonical_id,
    canonicalKey: r.canonical_key,
    ...(r.device_id ? { deviceId: r.device_id } : {}),
    ...(r.secrets ? { secrets: new Uint8Array(r.secrets) } : {}),
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
