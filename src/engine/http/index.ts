export {
  createServer,
  composeComponents,
  octetStreamBody,
  jsonObjectBody,
  ScmsServer,
  JSON_API_ROUTE_CONFIG,
  DEFAULT_BODY_LIMIT,
  DEFAULT_JSON_BODY_LIMIT,
  DEFAULT_SHUTDOWN_TIMEOUT_MS,
  DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
  DEFAULT_KEEP_ALIVE_GRACE_MS,
  type CreateServerOptions,
  type ComponentRegistrar,
  type ComponentMount,
  type HealthCheck,
  type BoundAddress,
  type SignalHandlerOptions,
} from './server.js';
export {
  ScmsHttpError,
  Ieee1609Dot2Dot1ErrorCode,
  ERROR_HEADER,
  IEEE_1609DOT2DOT1_STATUSES,
  isPolicyLimitCode,
  httpErrors,
  type ErrorMode,
  type Ieee1609Dot2Dot1ErrorCodeName,
  type ScmsHttpErrorOptions,
} from './errors.js';
export { bearerAuth, bearerToken, tokensEqual, MIN_TOKEN_LENGTH, type BearerAuthOptions, type TokenSource } from './auth.js';
export { sendFile, strongEtag, contentDisposition, ifNoneMatchMatches, parseRange, type FileResponse, type RangeResult } from './files.js';
export { createLogger, audit, LOG_LEVELS, type Logger, type LogLevel, type LoggerOptions, type AuditFields } from './logger.js';
export { startService, type StartServiceOptions, type RunningService } from './service.js';
