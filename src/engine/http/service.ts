// What `scms serve <component>|all` runs: config -> logger -> server -> components -> listen -> signals.
import { describeServiceConfig, type ServiceConfig } from '../config.js';
import { createLogger, type Logger } from './logger.js';
import { createServer, type BoundAddress, type ScmsServer, type SignalHandlerOptions } from './server.js';

export interface StartServiceOptions {
  /** Default: a JSON logger on stdout at config.logLevel. */
  logger?: Logger;
  /** Install SIGTERM/SIGINT handlers (default true); `exit` is injectable for tests. */
  signals?: boolean | SignalHandlerOptions;
}

export interface RunningService {
  server: ScmsServer;
  address: BoundAddress;
}

/**
 * Builds the server from the configuration, lets `mount` register components, health checks and shutdown
 * hooks (open databases there and register their close with `server.onShutdown`), then listens. If mounting
 * or listening fails, what was opened is closed again before the error propagates.
 */
export async function startService(
  config: ServiceConfig,
  mount: (server: ScmsServer) => Promise<void>,
  options: StartServiceOptions = {},
): Promise<RunningService> {
  const logger = options.logger ?? createLogger({ level: config.logLevel });
  const server = createServer({
    logger,
    bodyLimit: config.bodyLimit,
    errorMode: config.errorMode,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    ...(config.keepAliveTimeoutMs !== undefined ? { keepAliveTimeoutMs: config.keepAliveTimeoutMs } : {}),
  });
  try {
    await mount(server);
    const address = await server.listen({ host: config.host, port: config.port });
    if (options.signals !== false) server.installSignalHandlers(typeof options.signals === 'object' ? options.signals : {});
    logger.info({ address: address.url, config: describeServiceConfig(config) }, 'listening');
    return { server, address };
  } catch (e) {
    await server.close().catch(() => {});
    throw e;
  }
}
