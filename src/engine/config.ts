// Service configuration for `scms serve <component>|all`: defaults < JSON config file < environment < flags.
// Secrets (operator and component tokens) come only from flags, the environment or files named in the
// configuration, never from the JSON file itself, and are never logged (see `describeServiceConfig`).
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { ErrorMode } from './http/errors.js';
import { LOG_LEVELS, type LogLevel } from './http/logger.js';
import { parseDatabaseUrl } from './store/url.js';

export const COMPONENT_NAMES = ['ra', 'eca', 'aca', 'la1', 'la2', 'ma'] as const;
export type ComponentName = (typeof COMPONENT_NAMES)[number];

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 8080;
export const MIN_SECRET_LENGTH = 16;

export interface ServiceConfig {
  /** Components this process runs. */
  components: ComponentName[];
  /** Trust material from `scms manager` (absolute). */
  trustDir: string;
  /** Embedded databases and component state (absolute). */
  dataDir: string;
  host: string;
  /** 0 = any free port. */
  port: number;
  /** Database URL per component run here (`sqlite:<dataDir>/<component>.db` by default). */
  databases: Partial<Record<ComponentName, string>>;
  /** Bearer token of the operator APIs; undefined disables them. */
  operatorToken: string | undefined;
  /** Shared secret between components in separate processes (internal APIs); undefined disables them. */
  componentToken: string | undefined;
  /** Base URLs of components run by other processes. */
  peers: Partial<Record<ComponentName, string>>;
  logLevel: LogLevel;
  /** Maximum SPDU body in bytes. */
  bodyLimit: number;
  /** `scmsV3-error` default until a policy file says otherwise. */
  errorMode: ErrorMode;
  shutdownTimeoutMs: number;
  /** Idle keep-alive time advertised to clients (the server keeps idle connections a grace period longer). */
  keepAliveTimeoutMs: number;
}

/** What a serve command parsed from its flags (all optional; strings as typed by the user). */
export interface ServiceFlags {
  /** JSON config file. */
  config?: string;
  trustDir?: string;
  dataDir?: string;
  host?: string;
  port?: number | string;
  /** One database URL for the component(s) run (PostgreSQL: each gets `?schema=<component>` unless given). */
  db?: string;
  operatorToken?: string;
  operatorTokenFile?: string;
  componentToken?: string;
  componentTokenFile?: string;
  /** `name=url`, e.g. `eca=http://eca.internal:8080`. */
  peer?: string[];
  logLevel?: string;
  bodyLimit?: number | string;
  errorMode?: string;
  shutdownTimeoutMs?: number | string;
  keepAliveTimeoutMs?: number | string;
}

/** Keys accepted in the JSON config file. */
interface FileConfig {
  trustDir?: string;
  dataDir?: string;
  host?: string;
  port?: number;
  db?: string;
  databases?: Partial<Record<ComponentName, string>>;
  operatorTokenFile?: string;
  componentTokenFile?: string;
  peers?: Partial<Record<ComponentName, string>>;
  logLevel?: string;
  bodyLimit?: number;
  errorMode?: string;
  shutdownTimeoutMs?: number;
  keepAliveTimeoutMs?: number;
}
const FILE_KEYS = new Set([
  'trustDir', 'dataDir', 'host', 'port', 'db', 'databases', 'operatorTokenFile', 'componentTokenFile', 'peers',
  'logLevel', 'bodyLimit', 'errorMode', 'shutdownTimeoutMs', 'keepAliveTimeoutMs',
]);

/** Invalid configuration; `issues` lists every problem found (one per line in the message). */
export class ConfigError extends Error {
  readonly issues: string[];
  constructor(issues: string[]) {
    super(`invalid service configuration:\n  - ${issues.join('\n  - ')}`);
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** Base for relative paths given by flags/env (default process.cwd()). */
  cwd?: string;
}

export function isComponentName(s: string): s is ComponentName {
  return (COMPONENT_NAMES as readonly string[]).includes(s);
}

/**
 * Builds the configuration of a serve process. Environment variables: SCMS_CONFIG, SCMS_TRUST_DIR,
 * SCMS_DATA_DIR, SCMS_HOST, SCMS_PORT, SCMS_DB, SCMS_DB_<COMPONENT>, SCMS_PEER_<COMPONENT>,
 * SCMS_OPERATOR_TOKEN(_FILE), SCMS_COMPONENT_TOKEN(_FILE), SCMS_LOG_LEVEL, SCMS_BODY_LIMIT, SCMS_ERROR_MODE,
 * SCMS_SHUTDOWN_TIMEOUT_MS, SCMS_KEEP_ALIVE_TIMEOUT_MS (advertised idle keep-alive, default 30000). Throws ConfigError listing every problem.
 */
export function loadServiceConfig(components: readonly ComponentName[], flags: ServiceFlags = {}, options: LoadOptions = {}): ServiceConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const issues: string[] = [];
  const fromCwd = (p: string) => resolve(cwd, p);

  if (components.length === 0) issues.push('no component to run');
  for (const c of components) if (!isComponentName(c)) issues.push(`unknown component ${JSON.stringify(c)} (use ${COMPONENT_NAMES.join(', ')})`);

  // JSON config file (paths in it are relative to the file).
  const configPath = flags.config ?? env.SCMS_CONFIG;
  let file: FileConfig = {};
  let fromFile = (p: string) => p;
  if (configPath !== undefined && configPath !== '') {
    const abs = fromCwd(configPath);
    fromFile = (p: string) => resolve(dirname(abs), p);
    file = readConfigFile(abs, issues);
  }

  const pick = <T>(flag: T | undefined, envValue: T | undefined, fileValue: T | undefined): T | undefined =>
    flag !== undefined ? flag : envValue !== undefined && envValue !== '' ? envValue : fileValue;
  const pickPath = (flag: string | undefined, envValue: string | undefined, fileValue: string | undefined, dflt: string) =>
    flag !== undefined ? fromCwd(flag) : envValue ? fromCwd(envValue) : fileValue !== undefined ? fromFile(fileValue) : fromCwd(dflt);

  const trustDir = pickPath(flags.trustDir, env.SCMS_TRUST_DIR, file.trustDir, 'trust');
  const dataDir = pickPath(flags.dataDir, env.SCMS_DATA_DIR, file.dataDir, 'data');

  const host = pick(flags.host, env.SCMS_HOST, file.host) ?? DEFAULT_HOST;
  if (host.trim() === '' || /\s/.test(host)) issues.push(`invalid host ${JSON.stringify(host)}`);
  const port = intOption('port', pick(flags.port, env.SCMS_PORT, file.port), DEFAULT_PORT, 0, 65535, issues);
  const bodyLimit = intOption('bodyLimit', pick(flags.bodyLimit, env.SCMS_BODY_LIMIT, file.bodyLimit), 1024 * 1024, 1024, 256 * 1024 * 1024, issues);
  const shutdownTimeoutMs = intOption(
    'shutdownTimeoutMs', pick(flags.shutdownTimeoutMs, env.SCMS_SHUTDOWN_TIMEOUT_MS, file.shutdownTimeoutMs), 10_000, 0, 600_000, issues,
  );
  // Default = http/server.ts DEFAULT_KEEP_ALIVE_TIMEOUT_MS (not imported: this module stays free of fastify).
  const keepAliveTimeoutMs = intOption(
    'keepAliveTimeoutMs', pick(flags.keepAliveTimeoutMs, env.SCMS_KEEP_ALIVE_TIMEOUT_MS, file.keepAliveTimeoutMs), 30_000, 1000, 600_000, issues,
  );

  const logLevel = pick(flags.logLevel, env.SCMS_LOG_LEVEL, file.logLevel) ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) issues.push(`invalid log level ${JSON.stringify(logLevel)} (use ${LOG_LEVELS.join(', ')})`);
  const errorMode = pick(flags.errorMode, env.SCMS_ERROR_MODE, file.errorMode) ?? 'fine';
  if (errorMode !== 'fine' && errorMode !== 'coarse') issues.push(`invalid error mode ${JSON.stringify(errorMode)} (use fine or coarse)`);

  // Databases: per-component URL > shared URL (flag/env/file) > SQLite file in the data directory.
  const shared = pick(flags.db, env.SCMS_DB, file.db);
  const databases: Partial<Record<ComponentName, string>> = {};
  for (const c of components) {
    const own = env[`SCMS_DB_${c.toUpperCase()}`] || file.databases?.[c];
    let url: string;
    if (own) url = own;
    else if (shared) url = sharedDbUrl(shared, c, components.length, issues);
    else url = `sqlite:${join(dataDir, `${c}.db`)}`;
    try {
      const parsed = parseDatabaseUrl(url);
      if (parsed.dialect === 'sqlite' && parsed.path !== ':memory:' && !isAbsolute(parsed.path)) {
        url = `sqlite:${own && file.databases?.[c] === own ? fromFile(parsed.path) : fromCwd(parsed.path)}`;
      }
    } catch (e) {
      issues.push(`database for ${c}: ${(e as Error).message}`);
    }
    databases[c] = url;
  }
  const seen = new Map<string, ComponentName>();
  for (const [c, url] of Object.entries(databases) as [ComponentName, string][]) {
    const other = seen.get(url);
    if (other) issues.push(`components ${other} and ${c} would share the database ${redactUrl(url)}: give each its own file or schema`);
    seen.set(url, c);
  }

  // Peers: file < env < flags.
  const peers: Partial<Record<ComponentName, string>> = {};
  const addPeer = (name: string, url: string, where: string) => {
    if (!isComponentName(name)) return issues.push(`${where}: unknown component ${JSON.stringify(name)}`);
    try {
      const u = new URL(url);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
      peers[name] = url.replace(/\/+$/, '');
    } catch {
      issues.push(`${where}: invalid URL for ${name}: ${JSON.stringify(url)}`);
    }
  };
  for (const [name, url] of Object.entries(file.peers ?? {})) if (typeof url === 'string') addPeer(name, url, 'config file peers');
  for (const c of COMPONENT_NAMES) {
    const v = env[`SCMS_PEER_${c.toUpperCase()}`];
    if (v) addPeer(c, v, `SCMS_PEER_${c.toUpperCase()}`);
  }
  for (const p of flags.peer ?? []) {
    const eq = p.indexOf('=');
    if (eq <= 0) issues.push(`--peer ${JSON.stringify(p)}: use name=url`);
    else addPeer(p.slice(0, eq), p.slice(eq + 1), '--peer');
  }

  const operatorToken = secret('operator token', flags.operatorToken, flags.operatorTokenFile, env.SCMS_OPERATOR_TOKEN, env.SCMS_OPERATOR_TOKEN_FILE, file.operatorTokenFile, fromCwd, fromFile, issues);
  const componentToken = secret('component token', flags.componentToken, flags.componentTokenFile, env.SCMS_COMPONENT_TOKEN, env.SCMS_COMPONENT_TOKEN_FILE, file.componentTokenFile, fromCwd, fromFile, issues);

  if (issues.length > 0) throw new ConfigError(issues);
  return {
    components: [...components],
    trustDir,
    dataDir,
    host,
    port,
    databases,
    operatorToken,
    componentToken,
    peers,
    logLevel: logLevel as LogLevel,
    bodyLimit,
    errorMode: errorMode as ErrorMode,
    shutdownTimeoutMs,
    keepAliveTimeoutMs,
  };
}

/** The peer's base URL, or a ConfigError naming the flag/env to set. */
export function requirePeer(config: ServiceConfig, name: ComponentName): string {
  const url = config.peers[name];
  if (!url) throw new ConfigError([`component ${name} is not run here: give its URL with --peer ${name}=URL or SCMS_PEER_${name.toUpperCase()}`]);
  return url;
}

/** The configuration with secrets and database passwords masked, for logs and `--json` output. */
export function describeServiceConfig(config: ServiceConfig): Record<string, unknown> {
  return {
    ...config,
    operatorToken: config.operatorToken === undefined ? 'unset' : 'set',
    componentToken: config.componentToken === undefined ? 'unset' : 'set',
    databases: Object.fromEntries(Object.entries(config.databases).map(([c, u]) => [c, redactUrl(u!)])),
  };
}

/** Masks the password of a postgres:// URL. */
export function redactUrl(url: string): string {
  if (!/^postgres(ql)?:\/\//i.test(url)) return url;
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparseable)';
  }
}

function readConfigFile(path: string, issues: string[]): FileConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    issues.push(`config file ${path}: ${(e as Error).message}`);
    return {};
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    issues.push(`config file ${path}: expected a JSON object`);
    return {};
  }
  const obj = raw as Record<string, unknown>;
  for (const k of Object.keys(obj)) {
    if (k === 'operatorToken' || k === 'componentToken') {
      issues.push(`config file ${path}: ${k} must not be in the file; use ${k}File, the environment or the flag`);
    } else if (!FILE_KEYS.has(k)) {
      issues.push(`config file ${path}: unknown key ${JSON.stringify(k)}`);
    }
  }
  const str = (k: string) => {
    if (obj[k] !== undefined && typeof obj[k] !== 'string') issues.push(`config file ${path}: ${k} must be a string`);
  };
  for (const k of ['trustDir', 'dataDir', 'host', 'db', 'operatorTokenFile', 'componentTokenFile', 'logLevel', 'errorMode']) str(k);
  for (const k of ['port', 'bodyLimit', 'shutdownTimeoutMs', 'keepAliveTimeoutMs']) {
    if (obj[k] !== undefined && typeof obj[k] !== 'number') issues.push(`config file ${path}: ${k} must be a number`);
  }
  for (const k of ['databases', 'peers']) {
    const v = obj[k];
    if (v === undefined) continue;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) {
      issues.push(`config file ${path}: ${k} must be an object of component -> URL`);
      continue;
    }
    for (const [c, u] of Object.entries(v)) {
      if (!isComponentName(c)) issues.push(`config file ${path}: ${k}: unknown component ${JSON.stringify(c)}`);
      if (typeof u !== 'string') issues.push(`config file ${path}: ${k}.${c} must be a string`);
    }
  }
  return obj as FileConfig;
}

function intOption(name: string, v: number | string | undefined, dflt: number, min: number, max: number, issues: string[]): number {
  if (v === undefined) return dflt;
  const n = typeof v === 'number' ? v : /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    issues.push(`invalid ${name} ${JSON.stringify(v)} (an integer ${min}..${max})`);
    return dflt;
  }
  return n;
}

function sharedDbUrl(shared: string, c: ComponentName, count: number, issues: string[]): string {
  if (/^postgres(ql)?:\/\//i.test(shared)) {
    try {
      const u = new URL(shared);
      if (u.searchParams.has('schema')) return shared; // several components on one schema is caught below
      u.searchParams.set('schema', c);
      return u.toString();
    } catch {
      issues.push(`invalid database URL ${JSON.stringify(redactUrl(shared))}`);
      return shared;
    }
  }
  if (count > 1) {
    issues.push(`one SQLite database cannot hold several components (${JSON.stringify(shared)}): use --data-dir or SCMS_DB_<COMPONENT>`);
  }
  return shared;
}

function secret(
  what: string,
  flag: string | undefined,
  flagFile: string | undefined,
  envValue: string | undefined,
  envFile: string | undefined,
  fileFile: string | undefined,
  fromCwd: (p: string) => string,
  fromFile: (p: string) => string,
  issues: string[],
): string | undefined {
  let value: string | undefined;
  let path: string | undefined;
  if (flag !== undefined) value = flag;
  else if (flagFile !== undefined) path = fromCwd(flagFile);
  else if (envValue) value = envValue;
  else if (envFile) path = fromCwd(envFile);
  else if (fileFile !== undefined) path = fromFile(fileFile);
  if (path !== undefined) {
    try {
      value = readFileSync(path, 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      issues.push(`${what} file: ${(e as Error).message}`);
      return undefined;
    }
  }
  if (value === undefined) return undefined;
  if (value.length < MIN_SECRET_LENGTH) issues.push(`${what} too short (at least ${MIN_SECRET_LENGTH} characters)`);
  if (!/^[\x21-\x7e]+$/.test(value)) issues.push(`${what} must be printable ASCII without spaces`);
  return value;
}
