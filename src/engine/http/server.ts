// The shared HTTP server for every component: fastify + pino, body parsers, request ids, errors, /healthz,
// component composition and graceful shutdown. `scms serve <component>|all` builds one of these, registers
// the components' plugins, listens, and installs the signal handlers.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { STATUS_CODES } from 'node:http';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import {
  ERROR_HEADER,
  Ieee1609Dot2Dot1ErrorCode,
  ScmsHttpError,
  type ErrorMode,
} from './errors.js';
import type { Logger } from './logger.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Error body format for this route: JSON (operator/internal APIs) or short text (EE-facing SPDU routes). */
    errorFormat?: 'json' | 'text';
    /** Always send fine-grained errors here, whatever `scmsV3-error` says (operator/internal APIs). */
    fineErrors?: boolean;
  }
}

/** Route config for operator and internal JSON APIs. */
export const JSON_API_ROUTE_CONFIG = Object.freeze({ errorFormat: 'json', fineErrors: true } as const);

export const DEFAULT_BODY_LIMIT = 1024 * 1024;
export const DEFAULT_JSON_BODY_LIMIT = 64 * 1024;
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;
/** Idle keep-alive time the server advertises (`Keep-Alive: timeout=30`). */
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 30_000;
/** How much longer than advertised an idle keep-alive connection is really kept open (see ScmsServer). */
export const DEFAULT_KEEP_ALIVE_GRACE_MS = 10_000;

export interface CreateServerOptions {
  logger: Logger;
  /** Reported by /healthz; default: this package's version. */
  version?: string;
  /** Maximum `application/octet-stream` (COER SPDU) body in bytes. */
  bodyLimit?: number;
  /** Maximum JSON body in bytes (operator APIs). */
  jsonBodyLimit?: number;
  /** `scmsV3-error` policy: fine (default) or coarse; a function is read per error (policy reloads). */
  errorMode?: ErrorMode | (() => ErrorMode);
  /** How long close() waits for in-flight requests before cutting connections. */
  shutdownTimeoutMs?: number;
  /** Per-health-check time limit in ms (default 2000). */
  healthCheckTimeoutMs?: number;
  /** Trust X-Forwarded-* (behind a reverse proxy). Default false. */
  trustProxy?: boolean;
  /** Idle keep-alive time advertised to clients, ms (at least 1000: the header counts whole seconds). */
  keepAliveTimeoutMs?: number;
  /** Extra idle time, ms, an idle connection is kept beyond the advertised one before the server closes it. */
  keepAliveGraceMs?: number;
}

/** A component's route plugin: `export async function registerRa(app, deps)`. */
export type ComponentRegistrar<D> = (app: FastifyInstance, deps: D) => Promise<void>;

/** One component to mount on a server (see ScmsServer.registerComponent / composeComponents). */
export interface ComponentMount<D = unknown> {
  /** 'ra', 'eca', 'aca', 'la1', 'la2', 'ma'. */
  name: string;
  register: ComponentRegistrar<D>;
  deps: D;
}

export type HealthCheck = () => Promise<void>;

export interface BoundAddress {
  host: string;
  port: number;
  /** http://host:port */
  url: string;
}

export interface SignalHandlerOptions {
  signals?: NodeJS.Signals[];
  /** Called after shutdown (default process.exit). */
  exit?: (code: number) => void;
}

function packageVersion(): string {
  try {
    // src/engine/http and dist/engine/http are both three levels below the package root.
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Fastify with the SCMS conventions. Call `registerComponent` for each component, then `listen`.
 * Shutdown (`close`, or a signal after `installSignalHandlers`): stop accepting connections, let in-flight
 * requests finish (cut after `shutdownTimeoutMs`), then run the `onShutdown` hooks last-registered-first
 * (stop workers before closing the databases they use: register the database first).
 *
 * Keep-alive (RFC 9112 9.3, the `Keep-Alive: timeout=N` hint): a client reuses an idle connection until the hint
 * (undici, Node's fetch: the hint less 2 s; its default without a hint is 4 s). Either side running late loses a
 * request before any answer ("other side closed" / ECONNRESET): a client whose event loop is busy notices its idle
 * timer late and sends on a connection the server has just closed; a server whose event loop was held up
 * (synchronous SQLite or signing, a process starved of CPU) runs its expired idle timers before it reads the request
 * that arrived meanwhile. So the server advertises `keepAliveTimeoutMs` but closes an idle connection only after
 * `keepAliveTimeoutMs + keepAliveGraceMs` (Node adds 1 s more): either side may be that late before the race can
 * happen at all. (1,000 devices at concurrency 64 / 128 on a CPU-starved 2-core machine: 64 / 122 lost before,
 * none after.)
 */
export class ScmsServer {
  readonly app: FastifyInstance;
  readonly logger: Logger;
  readonly version: string;
  /** Advertised idle keep-alive time, ms. */
  readonly keepAliveTimeoutMs: number;
  /** Extra idle time beyond the advertised one before the server closes a connection, ms. */
  readonly keepAliveGraceMs: number;
  readonly #components: string[] = [];
  readonly #health = new Map<string, HealthCheck>();
  readonly #shutdownHooks: { name: string; fn: () => Promise<void> | void }[] = [];
  readonly #errorMode: () => ErrorMode;
  readonly #shutdownTimeoutMs: number;
  readonly #healthTimeoutMs: number;
  #closing: Promise<void> | undefined;
  #uninstallSignals: (() => void) | undefined;

  constructor(options: CreateServerOptions) {
    this.logger = options.logger;
    this.version = options.version ?? packageVersion();
    const mode = options.errorMode ?? 'fine';
    this.#errorMode = typeof mode === 'function' ? mode : () => mode;
    this.#shutdownTimeoutMs = options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
    this.#healthTimeoutMs = options.healthCheckTimeoutMs ?? 2000;
    const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
    const jsonBodyLimit = options.jsonBodyLimit ?? DEFAULT_JSON_BODY_LIMIT;
    const keepAliveMs = options.keepAliveTimeoutMs ?? DEFAULT_KEEP_ALIVE_TIMEOUT_MS;
    const graceMs = options.keepAliveGraceMs ?? DEFAULT_KEEP_ALIVE_GRACE_MS;
    if (!Number.isInteger(keepAliveMs) || keepAliveMs < 1000) throw new RangeError(`keepAliveTimeoutMs ${keepAliveMs}: an integer of at least 1000`);
    if (!Number.isInteger(graceMs) || graceMs < 0) throw new RangeError(`keepAliveGraceMs ${graceMs}: a non-negative integer`);
    this.keepAliveTimeoutMs = keepAliveMs;
    this.keepAliveGraceMs = graceMs;

    this.app = Fastify({
      loggerInstance: options.logger,
      bodyLimit: Math.max(bodyLimit, jsonBodyLimit),
      trustProxy: options.trustProxy ?? false,
      requestIdHeader: false,
      genReqId: (req) => {
        const given = req.headers['x-request-id'];
        return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
      },
      return503OnClosing: true,
      forceCloseConnections: 'idle',
      // The idle time the socket is really kept (class comment); each response advertises keepAliveMs only.
      keepAliveTimeout: keepAliveMs + graceMs,
      // Hex keys and hashes travel in path parameters (an uncompressed P-384 point is 194 hex digits).
      routerOptions: { maxParamLength: 512 },
      // Router-level failures (bad URL encoding, over-long parameter) go through the same error path.
      frameworkErrors: (err, request, reply) => this.#sendError(toScmsError(err, request), request, reply),
    }) as unknown as FastifyInstance;
    const app = this.app;
    // Node writes `Keep-Alive: timeout=<floor(res._keepAliveTimeout / 1000)>` when (and only when) it keeps the
    // connection open, from the server's keepAliveTimeout copied into each response before 'request' is emitted:
    // this listener runs first (also for requests fastify refuses before routing) and sets the advertised value.
    app.server.prependListener('request', (_req, res) => {
      if ('_keepAliveTimeout' in res) (res as unknown as { _keepAliveTimeout: number })._keepAliveTimeout = keepAliveMs;
    });

    // Only the two body types the SCMS speaks: COER SPDUs and JSON (operator/internal APIs).
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit }, (_req, body, done) => done(null, body));
    app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: jsonBodyLimit }, (_req, body, done) => {
      const text = typeof body === 'string' ? body : body.toString('utf8');
      if (text.trim() === '') return done(new ScmsHttpError(400, Ieee1609Dot2Dot1ErrorCode.parsingFailure, 'empty JSON body'));
      try {
        done(null, JSON.parse(text));
      } catch {
        done(new ScmsHttpError(400, Ieee1609Dot2Dot1ErrorCode.parsingFailure, 'malformed JSON body'));
      }
    });

    app.addHook('onRequest', async (request, reply) => {
      reply.header('x-request-id', request.id);
    });

    app.setErrorHandler((err: FastifyError | ScmsHttpError | Error, request, reply) => this.#sendError(toScmsError(err, request), request, reply));
    app.setNotFoundHandler((request, reply) =>
      this.#sendError(new ScmsHttpError(404, Ieee1609Dot2Dot1ErrorCode.undefined, `no route ${request.method} ${request.url.split('?')[0]}`), request, reply),
    );

    app.get('/healthz', async (_request, reply) => {
      const checks: Record<string, { ok: boolean; error?: string }> = {};
      await Promise.all(
        [...this.#health].map(async ([name, check]) => {
          try {
            await withTimeout(check(), this.#healthTimeoutMs, `health check ${name} timed out`);
            checks[name] = { ok: true };
          } catch (e) {
            checks[name] = { ok: false, error: (e as Error)?.message ?? String(e) };
          }
        }),
      );
      const ok = Object.values(checks).every((c) => c.ok);
      return reply.code(ok ? 200 : 503).send({ status: ok ? 'ok' : 'unavailable', version: this.version, components: [...this.#components], checks });
    });

    function toScmsError(err: FastifyError | ScmsHttpError | Error, request: FastifyRequest): ScmsHttpError {
      if (err instanceof ScmsHttpError) return err;
      const status = (err as FastifyError).statusCode;
      if (typeof status === 'number' && status >= 400 && status < 500) {
        const code =
          (err as FastifyError).code === 'FST_ERR_CTP_INVALID_JSON_BODY' || (err as FastifyError).code === 'FST_ERR_CTP_EMPTY_JSON_BODY'
            ? Ieee1609Dot2Dot1ErrorCode.parsingFailure
            : (err as FastifyError).validation
              ? Ieee1609Dot2Dot1ErrorCode.invalidContent
              : Ieee1609Dot2Dot1ErrorCode.undefined;
        return new ScmsHttpError(status, code, err.message);
      }
      request.log.error({ err }, 'unhandled error in request');
      return new ScmsHttpError(500, Ieee1609Dot2Dot1ErrorCode.undefined, 'internal error');
    }
  }

  /** `scmsV3-error` mode in force now. */
  get errorMode(): ErrorMode {
    return this.#errorMode();
  }

  #sendError(e: ScmsHttpError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
    let config: { errorFormat?: 'json' | 'text'; fineErrors?: boolean } = {};
    try {
      config = request.routeOptions?.config ?? {};
    } catch {
      // no route context (framework errors before routing)
    }
    reply.header('x-request-id', request.id);
    const fine = config.fineErrors === true || this.#errorMode() === 'fine';
    const reason = fine ? e.reason : (STATUS_CODES[e.status] ?? 'error');
    for (const [k, v] of Object.entries(e.headers)) reply.header(k, v);
    if (fine) reply.header(ERROR_HEADER, e.headerValue);
    if (e.status >= 500) request.log.warn({ status: e.status, code: e.code }, reason);
    else request.log.info({ status: e.status, code: e.code, reason: e.reason }, 'request rejected');
    const accept = request.headers.accept ?? '';
    const json = config.errorFormat === 'json' || (config.errorFormat === undefined && /application\/json/i.test(accept));
    reply.code(e.status);
    if (json) {
      const body: Record<string, unknown> = { status: e.status, reason, requestId: request.id };
      if (fine) body.code = e.code;
      if (fine && e.details) Object.assign(body, e.details);
      return reply.type('application/json; charset=utf-8').send(body);
    }
    return reply.type('text/plain; charset=utf-8').send(reason);
  }

  /** Names of the mounted components. */
  get components(): readonly string[] {
    return this.#components;
  }

  /** Adds a check to /healthz (e.g. `ra.db` -> `select 1`): throw or reject when unhealthy. */
  addHealthCheck(name: string, check: HealthCheck): void {
    if (this.#health.has(name)) throw new Error(`duplicate health check ${name}`);
    this.#health.set(name, check);
  }

  /** Runs after the HTTP side drained, last registered first. */
  onShutdown(name: string, fn: () => Promise<void> | void): void {
    this.#shutdownHooks.push({ name, fn });
  }

  /** Mounts one component's routes (fastify plugin, own encapsulation context, shared error handling). */
  async registerComponent<D>(mount: ComponentMount<D>): Promise<void> {
    if (this.#components.includes(mount.name)) throw new Error(`component ${mount.name} registered twice`);
    this.#components.push(mount.name);
    await this.app.register(async (child) => mount.register(child, mount.deps));
  }

  /** Binds; port 0 picks a free port. Returns the bound address. */
  async listen(options: { host: string; port: number }): Promise<BoundAddress> {
    await this.app.listen({ host: options.host, port: options.port });
    const addr = this.app.server.address() as AddressInfo;
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    return { host: addr.address, port: addr.port, url: `http://${host}:${addr.port}` };
  }

  /**
   * Graceful shutdown, idempotent: stop accepting, finish in-flight requests (new requests on kept-alive
   * connections get 503), cut what remains after the timeout, then run the shutdown hooks.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.logger.info({ components: this.#components }, 'shutting down');
      const timer = setTimeout(() => {
        this.logger.warn({ timeoutMs: this.#shutdownTimeoutMs }, 'shutdown timeout: closing open connections');
        this.app.server.closeAllConnections?.();
      }, this.#shutdownTimeoutMs);
      timer.unref();
      try {
        await this.app.close();
      } finally {
        clearTimeout(timer);
      }
      for (const hook of [...this.#shutdownHooks].reverse()) {
        try {
          await hook.fn();
        } catch (err) {
          this.logger.error({ err, hook: hook.name }, 'shutdown hook failed');
        }
      }
      this.#uninstallSignals?.();
      this.logger.info('shut down');
    })();
    return this.#closing;
  }

  /** SIGTERM / SIGINT -> close() -> exit(0) (exit(1) if shutdown failed; a second signal exits at once). */
  installSignalHandlers(options: SignalHandlerOptions = {}): () => void {
    const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
    const exit = options.exit ?? ((code: number) => process.exit(code));
    let received = false;
    const handler = (signal: NodeJS.Signals) => {
      if (received) {
        this.logger.warn({ signal }, 'second signal: exiting now');
        exit(1);
        return;
      }
      received = true;
      this.logger.info({ signal }, 'signal received');
      this.close().then(
        () => exit(0),
        (err) => {
          this.logger.error({ err }, 'shutdown failed');
          exit(1);
        },
      );
    };
    for (const s of signals) process.on(s, handler);
    const uninstall = () => {
      for (const s of signals) process.off(s, handler);
    };
    this.#uninstallSignals = uninstall;
    return uninstall;
  }
}

export function createServer(options: CreateServerOptions): ScmsServer {
  return new ScmsServer(options);
}

/** `serve all`: mounts several components on one server, in order. */
export async function composeComponents(server: ScmsServer, mounts: readonly ComponentMount<any>[]): Promise<ScmsServer> {
  for (const m of mounts) await server.registerComponent(m);
  return server;
}

/** The body of an `application/octet-stream` request (a COER SPDU); anything else -> 415. */
export function octetStreamBody(request: FastifyRequest): Uint8Array {
  const body = request.body;
  if (!Buffer.isBuffer(body)) {
    throw new ScmsHttpError(415, Ieee1609Dot2Dot1ErrorCode.parsingFailure, 'expected Content-Type: application/octet-stream');
  }
  return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
}

/** The body of a JSON request as a plain object; anything else -> 400 / 415. */
export function jsonObjectBody(request: FastifyRequest): Record<string, unknown> {
  const ct = request.headers['content-type'];
  if (typeof ct !== 'string' || !/^application\/json\b/i.test(ct)) {
    throw new ScmsHttpError(415, Ieee1609Dot2Dot1ErrorCode.invalidContent, 'expected Content-Type: application/json');
  }
  const body = request.body;
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new ScmsHttpError(400, Ieee1609Dot2Dot1ErrorCode.invalidContent, 'expected a JSON object');
  }
  return body as Record<string, unknown>;
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(message)), ms);
      timer.unref();
    }),
  ]).finally(() => clearTimeout(timer));
}
