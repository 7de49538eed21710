export { openDatabase, dialectOf, type Dialect, type OpenOptions } from './database.js';
export { parseDatabaseUrl, assertSchemaName, type DatabaseConfig, type SqliteConfig, type PostgresConfig, type SqliteSynchronous } from './url.js';
export { withTransaction, isRetryableError, type RetryOptions } from './transaction.js';
export { migrate, MIGRATIONS_TABLE, type Migration, type MigrateOptions, type MigrateResult } from './migrate.js';
export {
  columnTypes,
  toBytesParam,
  fromBytes,
  toBigInt,
  toSafeNumber,
  bigintAsText,
  toBooleanParam,
  fromBoolean,
  type ColumnTypes,
} from './columns.js';
