// Lost connections through the real thing: a real ScmsServer on 127.0.0.1 whose POST route refuses replays like the
// SCMS does (400-60), behind a proxy that resets chosen connections (reset-proxy.ts). eeRequest sends a request whose
// connection was lost again over a new connection; the server's record shows each request handled exactly once.
// And the server's keep-alive: an idle connection stays open beyond the advertised `Keep-Alive: timeout`.
import { connect, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadServiceConfig } from '../../../src/engine/config.js';
import { eeRequest, lostConnectionCause, ScmsResponseError } from '../../../src/engine/ee/http.js';
import { createLogger, createServer, Ieee1609Dot2Dot1ErrorCode, octetStreamBody, ScmsHttpError, type ScmsServer } from '../../../src/engine/http/index.js';
import { startResetProxy, type ProxyAction, type ResetProxy } from './reset-proxy.js';

describe('eeRequest: a request whose connection is lost before any answer is sent again', () => {
  let server: ScmsServer;
  let port: number;
  /** Accepted request bodies (hex), in order: the server's record. */
  const accepted: string[] = [];
  let gets = 0;
  let proxy: ResetProxy | undefined;

  beforeAll(async () => {
    server = createServer({ logger: createLogger({ level: 'silent' }) });
    server.app.post('/v3/submit', async (request, reply) => {
      const hex = Buffer.from(octetStreamBody(request)).toString('hex');
      // As the ECA and RA do (1609.2.1 replay check): the same request octets a second time -> 400-60.
      if (accepted.includes(hex)) throw new ScmsHttpError(400, Ieee1609Dot2Dot1ErrorCode.invalidContent, 'replayed request: accepted before');
      accepted.push(hex);
      return reply.type('application/octet-stream').send(Buffer.from(`ack ${hex}`));
    });
    server.app.get('/v3/file', async () => {
      gets++;
      return 'file';
    });
    port = (await server.listen({ host: '127.0.0.1', port: 0 })).port;
  });
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
  });
  afterAll(() => server.close());

  const through = async (decide: (method: string, path: string, n: number) => ProxyAction) => {
    proxy = await startResetProxy({ host: '127.0.0.1', port }, decide);
    return proxy;
  };
  const post = (url: string, body: string, lost: string[] = []) =>
    eeRequest(
      { method: 'POST', url: `${url}/v3/submit`, body: new TextEncoder().encode(body), headers: { 'content-type': 'application/octet-stream' } },
      { maxRetries: 0, onRetry: (r) => r.lost && lost.push(r.lost) },
    );

  it('POST reset before it reached the server: sent again, accepted once, the answer arrives', async () => {
    const p = await through((m, _p, n) => (m === 'POST' && n === 1 ? 'reset' : 'forward'));
    const lost: string[] = [];
    const res = await post(p.url, 'request-1', lost);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe(`ack ${Buffer.from('request-1').toString('hex')}`);
    expect(lost).toHaveLength(1);
    expect(lost[0]).toMatch(/ECONNRESET|UND_ERR_SOCKET/);
    expect(accepted.filter((h) => h === Buffer.from('request-1').toString('hex'))).toHaveLength(1);
    expect(p.seen.map((s) => s.action)).toEqual(['reset', 'forward']);
    expect(p.connections).toBe(2);
  });

  it('the reset hits a reused keep-alive connection: sent again on a new one', async () => {
    // First request forwarded (its connection stays open for reuse), the second reset on that same connection.
    const p = await through((m, _p, n) => (m === 'POST' && n === 2 ? 'reset' : 'forward'));
    expect((await post(p.url, 'request-2a')).status).toBe(200);
    const lost: string[] = [];
    expect((await post(p.url, 'request-2b', lost)).status).toBe(200);
    expect(lost).toHaveLength(1);
    expect(p.seen.map((s) => s.action)).toEqual(['forward', 'reset', 'forward']);
    expect(accepted.filter((h) => h.startsWith(Buffer.from('request-2').toString('hex')))).toHaveLength(2);
  });

  it('the answer is lost after the server accepted the POST: the resend is refused as a replay, and the error says so', async () => {
    const p = await through((m, _p, n) => (m === 'POST' && n === 1 ? 'drop-answer' : 'forward'));
    const err = await post(p.url, 'request-3').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ScmsResponseError);
    const e = err as ScmsResponseError;
    expect(e.status).toBe(400);
    expect(e.code).toBe(Ieee1609Dot2Dot1ErrorCode.invalidContent);
    expect(e.afterLostConnection).toMatch(/ECONNRESET|UND_ERR_SOCKET/);
    expect(e.message).toContain('replayed request');
    expect(e.message).toContain('the first attempt was accepted and its answer lost');
    // Processed exactly once: the replay refusal stored nothing.
    expect(accepted.filter((h) => h === Buffer.from('request-3').toString('hex'))).toHaveLength(1);
  });

  it('GET: resent up to maxResends times; past that a status-0 error naming the cause', async () => {
    let p = await through((m, _p, n) => (m === 'GET' && n <= 2 ? 'reset' : 'forward'));
    const before = gets;
    const res = await eeRequest({ method: 'GET', url: `${p.url}/v3/file` }, { maxResends: 2 });
    expect(await res.text()).toBe('file');
    expect(gets).toBe(before + 1);
    await p.close();
    p = await through(() => 'reset');
    proxy = p;
    const err = (await eeRequest({ method: 'GET', url: `${p.url}/v3/file` }, { maxResends: 2 }).catch((e: unknown) => e)) as ScmsResponseError;
    expect(err).toBeInstanceOf(ScmsResponseError);
    expect(err.status).toBe(0);
    expect(err.message).toMatch(/unreachable \((ECONNRESET|UND_ERR_SOCKET)/);
    expect(p.seen).toHaveLength(3);
    expect(gets).toBe(before + 1);
  });

  it('a refused connection is not a lost one: not resent', async () => {
    const p = await through(() => 'forward');
    const url = p.url;
    await p.close();
    proxy = undefined;
    let retries = 0;
    const err = (await eeRequest({ method: 'GET', url: `${url}/v3/file` }, { onRetry: () => retries++ }).catch((e: unknown) => e)) as ScmsResponseError;
    expect(err.status).toBe(0);
    expect(err.message).toContain('ECONNREFUSED');
    expect(retries).toBe(0);
    expect(lostConnectionCause(new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) }))).toBeUndefined();
  });
});

describe('ScmsServer keep-alive: idle connections are kept beyond the advertised timeout', () => {
  /** Sends raw HTTP/1.1 requests on one socket and reads whole answers (Content-Length framed). */
  const rawClient = (port: number) => {
    const sock: Socket = connect(port, '127.0.0.1');
    let buf = '';
    let waiting: (() => void) | undefined;
    let closed = false;
    const closedP = new Promise<void>((r) => sock.on('close', () => ((closed = true), r(), waiting?.())));
    sock.on('error', () => undefined);
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      waiting?.();
    });
    const answer = async (): Promise<{ head: string; body: string }> => {
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end >= 0) {
          const head = buf.slice(0, end);
          const len = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
          if (buf.length >= end + 4 + len) {
            const body = buf.slice(end + 4, end + 4 + len);
            buf = buf.slice(end + 4 + len);
            return { head, body };
          }
        }
        if (closed) throw new Error('connection closed before a whole answer');
        await new Promise<void>((r) => (waiting = r));
      }
    };
    return {
      get: (path: string) => {
        sock.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
        return answer();
      },
      closed: () => closed,
      closedP,
      destroy: () => sock.destroy(),
    };
  };

  it('advertises keepAliveTimeoutMs, answers on the connection after it, closes it after the grace', async () => {
    const server = createServer({ logger: createLogger({ level: 'silent' }), keepAliveTimeoutMs: 1000, keepAliveGraceMs: 1500 });
    const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
    const c = rawClient(port);
    try {
      const a = await c.get('/healthz');
      expect(a.head).toMatch(/^HTTP\/1\.1 200/);
      expect(a.head).toMatch(/\r\nkeep-alive: timeout=1(\r\n|$)/i);
      // Idle past the advertised second (a client that noticed its idle timer late): still served on this connection.
      await new Promise((r) => setTimeout(r, 1600));
      expect(c.closed()).toBe(false);
      const b = await c.get('/healthz');
      expect(b.head).toMatch(/^HTTP\/1\.1 200/);
      // Then idle for good: the server closes it (advertised + grace + Node's own second after the last answer).
      await c.closedP;
      expect(c.closed()).toBe(true);
    } finally {
      c.destroy();
      await server.close();
    }
  }, 15_000);

  it('the default advertises 30 s; a keep-alive below 1 s is refused', async () => {
    const server = createServer({ logger: createLogger({ level: 'silent' }) });
    expect(server.keepAliveTimeoutMs).toBe(30_000);
    expect(server.app.server.keepAliveTimeout).toBe(30_000 + server.keepAliveGraceMs);
    const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
    const c = rawClient(port);
    try {
      expect((await c.get('/healthz')).head).toMatch(/\r\nkeep-alive: timeout=30(\r\n|$)/i);
    } finally {
      c.destroy();
      await server.close();
    }
    expect(() => createServer({ logger: createLogger({ level: 'silent' }), keepAliveTimeoutMs: 500 })).toThrow(/at least 1000/);
  });
});

describe('SCMS_KEEP_ALIVE_TIMEOUT_MS', () => {
  it('sets the advertised keep-alive of `scms serve` (default 30000, at least 1000)', () => {
    expect(loadServiceConfig(['ra'], {}, { env: {}, cwd: '/srv' }).keepAliveTimeoutMs).toBe(30_000);
    expect(loadServiceConfig(['ra'], {}, { env: { SCMS_KEEP_ALIVE_TIMEOUT_MS: '65000' }, cwd: '/srv' }).keepAliveTimeoutMs).toBe(65_000);
    expect(() => loadServiceConfig(['ra'], {}, { env: { SCMS_KEEP_ALIVE_TIMEOUT_MS: '999' }, cwd: '/srv' })).toThrow(ConfigError);
    expect(() => loadServiceConfig(['ra'], {}, { env: { SCMS_KEEP_ALIVE_TIMEOUT_MS: '999' }, cwd: '/srv' })).toThrow(/keepAliveTimeoutMs/);
  });
});
