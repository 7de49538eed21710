// Column types and value conversions that behave the same on SQLite and PostgreSQL.
import { sql, type ColumnDataType, type Expression, type Kysely, type RawBuilder } from 'kysely';
import { dialectOf, type Dialect } from './database.js';

export interface ColumnTypes {
  /** BLOB / BYTEA: bind Uint8Array, read back with `fromBytes`. */
  bytes: ColumnDataType;
  /** 64-bit integer (INTEGER affinity on SQLite, int8 on PostgreSQL). */
  bigint: ColumnDataType;
  /** JSON text (stored as text on both, parse yourself). */
  json: ColumnDataType;
  /** Milliseconds since the epoch, as 64-bit integer. */
  timestampMs: ColumnDataType;
  boolean: ColumnDataType;
}

/** Column types for migrations: `t.addColumn('key', columnTypes(db).bytes)`. */
export function columnTypes(dialectOrDb: Dialect | Kysely<any>): ColumnTypes {
  const dialect = typeof dialectOrDb === 'string' ? dialectOrDb : dialectOf(dialectOrDb);
  return dialect === 'sqlite'
    ? { bytes: 'blob', bigint: 'bigint', json: 'text', timestampMs: 'bigint', boolean: 'integer' }
    : { bytes: 'bytea', bigint: 'bigint', json: 'text', timestampMs: 'bigint', boolean: 'boolean' };
}

/** Value to bind for a bytes column. Both drivers take a Buffer view of the same memory (no copy). */
export function toBytesParam(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A bytes column as read by either driver (Buffer) -> a plain Uint8Array copy. */
export function fromBytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return new Uint8Array(value);
  throw new TypeError(`expected bytes from the database, got ${value === null ? 'null' : typeof value}`);
}

/**
 * A 64-bit integer column as read by either driver -> bigint. PostgreSQL returns int8 as a string
 * (exact); better-sqlite3 returns a JS number, which is exact only up to 2^53: for larger values
 * select the column through `bigintAsText(...)`.
 */
export function toBigInt(value: unknown): bigint {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'string' && /^-?\d+$/.test(value)) return BigInt(value);
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  throw new TypeError(`not an exact 64-bit integer: ${String(value)}`);
}

/** int8 / count(*) values -> number, refusing values a JS number cannot hold exactly. */
export function toSafeNumber(value: unknown): number {
  const n = typeof value === 'number' ? value : Number(toBigInt(value));
  if (!Number.isSafeInteger(n)) throw new RangeError(`integer out of safe range: ${String(value)}`);
  return n;
}

/** `cast(expr as text)`: reads a 64-bit integer exactly on both dialects; feed the result to `toBigInt`. */
export function bigintAsText(expr: Expression<unknown> | string): RawBuilder<string> {
  return typeof expr === 'string' ? sql<string>`cast(${sql.ref(expr)} as text)` : sql<string>`cast(${expr} as text)`;
}

/** Value to bind for a boolean column (SQLite has no boolean type). */
export function toBooleanParam(dialect: Dialect, v: boolean): boolean | number {
  return dialect === 'sqlite' ? (v ? 1 : 0) : v;
}

/** A boolean column as read by either driver -> boolean. */
export function fromBoolean(value: unknown): boolean {
  if (typeof value === 'boolean') return value;
  if (value === 0 || value === 1) return value === 1;
  throw new TypeError(`not a boolean from the database: ${String(value)}`);
}
