// A TCP proxy on 127.0.0.1 in front of a real HTTP server that loses chosen requests' connections, the way a
// keep-alive race or a middlebox does: 'reset' resets the client's connection when the request arrives, before
// anything reaches the server; 'drop-answer' lets the request through and resets the client's connection as the
// server's answer comes back (the server processed it, the client never sees the answer). Every other request is
// forwarded unchanged. One upstream connection per client connection (keep-alive is kept on both sides).
import { connect, createServer, type Server, type Socket } from 'node:net';

export type ProxyAction = 'forward' | 'reset' | 'drop-answer';

export interface ResetProxy {
  url: string;
  /** Client connections accepted. */
  connections: number;
  /** `METHOD path` of each request seen, in order, with the action taken. */
  seen: Array<{ request: string; action: ProxyAction }>;
  close(): Promise<void>;
}

const REQUEST_LINE = /^(GET|POST|PUT|DELETE|HEAD|OPTIONS|PATCH) (\S+) HTTP\/1\.[01]\r\n/;

/** `decide(method, path, n)`: n counts the requests with this method and path (query left out), from 1. */
export async function startResetProxy(target: { host: string; port: number }, decide: (method: string, path: string, n: number) => ProxyAction): Promise<ResetProxy> {
  const counts = new Map<string, number>();
  const sockets = new Set<Socket>();
  const proxy: ResetProxy = { url: '', connections: 0, seen: [], close: async () => undefined };
  const server: Server = createServer((client) => {
    proxy.connections++;
    sockets.add(client);
    const upstream = connect(target.port, target.host);
    sockets.add(upstream);
    let dropNextAnswer = false;
    let dead = false;
    const kill = () => {
      if (dead) return;
      dead = true;
      client.resetAndDestroy();
      upstream.destroy();
    };
    client.on('data', (chunk: Buffer) => {
      if (dead) return;
      // Without pipelining a request starts a new write: a chunk that starts with a request line starts a request.
      const m = REQUEST_LINE.exec(chunk.subarray(0, 2048).toString('latin1'));
      if (m) {
        const path = m[2]!.split('?')[0]!;
        const key = `${m[1]} ${path}`;
        const n = (counts.get(key) ?? 0) + 1;
        counts.set(key, n);
        const action = decide(m[1]!, path, n);
        proxy.seen.push({ request: key, action });
        if (action === 'reset') return kill();
        if (action === 'drop-answer') dropNextAnswer = true;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (dead) return;
      if (dropNextAnswer) return kill();
      client.write(chunk);
    });
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => {
      sockets.delete(client);
      upstream.destroy();
    });
    upstream.on('close', () => sockets.delete(upstream));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  proxy.url = `http://127.0.0.1:${port}`;
  proxy.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return proxy;
}
