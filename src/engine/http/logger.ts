// Structured JSON logs (pino). Audit events are ordinary log lines with `audit: true`.
import pino from 'pino';

type DestinationStream = pino.DestinationStream;
export type Logger = pino.Logger;

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export interface LoggerOptions {
  level?: LogLevel;
  /** Default: stdout. Tests pass a stream to read the lines. */
  destination?: DestinationStream;
  /** Bound fields on every line (e.g. { service: 'scms' }). */
  base?: Record<string, unknown>;
}

/** A pino logger writing one JSON object per line, ISO timestamps, request-safe serializers. */
export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: options.base ?? { service: 'scms' },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Never log credentials if a request object or headers end up in a line.
      redact: { paths: ['req.headers.authorization', 'headers.authorization', '*.authorization'], censor: '[redacted]' },
    },
    options.destination ?? pino.destination(1),
  );
}

export interface AuditFields {
  /** Who did it: 'operator', 'component:eca', ... */
  actor: string;
  requestId?: string;
  [field: string]: unknown;
}

/** Writes an audit event: `{ audit: true, event, actor, ... }` at info level (always emitted unless silent). */
export function audit(log: Pick<Logger, 'info'>, event: string, fields: AuditFields): void {
  log.info({ ...fields, audit: true, event }, `audit ${event}`);
}
