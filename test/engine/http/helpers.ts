// Test servers: a real ScmsServer on 127.0.0.1, port 0, logging into memory.
import { createLogger, createServer, type CreateServerOptions, type ScmsServer } from '../../../src/engine/http/index.js';

export interface LogCapture {
  lines: Record<string, any>[];
  destination: { write(s: string): void };
}

export function captureLogs(): LogCapture {
  const lines: Record<string, any>[] = [];
  return {
    lines,
    destination: {
      write(s: string) {
        for (const l of s.split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l));
      },
    },
  };
}

export interface TestServer {
  server: ScmsServer;
  url: string;
  logs: LogCapture;
  close(): Promise<void>;
}

/** Builds a server, lets `setup` add routes/components, listens on an ephemeral port. */
export async function startTestServer(
  setup: (server: ScmsServer) => Promise<void> | void,
  options: Partial<CreateServerOptions> = {},
): Promise<TestServer> {
  const logs = captureLogs();
  const server = createServer({ logger: createLogger({ level: 'info', destination: logs.destination }), ...options });
  await setup(server);
  const { url } = await server.listen({ host: '127.0.0.1', port: 0 });
  return { server, url, logs, close: () => server.close() };
}
