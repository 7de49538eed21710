import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ERROR_HEADER,
  Ieee1609Dot2Dot1ErrorCode,
  JSON_API_ROUTE_CONFIG,
  ScmsHttpError,
  audit,
  bearerAuth,
  composeComponents,
  createLogger,
  createServer,
  jsonObjectBody,
  octetStreamBody,
  type ErrorMode,
  type ScmsServer,
} from '../../../src/engine/http/index.js';
import { captureLogs, startTestServer, type TestServer } from './helpers.js';

const TOKEN = 'operator-token-for-tests-0123456789';

describe('ScmsServer: routes, errors, robustness', () => {
  let t: TestServer;
  let mode: ErrorMode = 'fine';
  let dbUp = true;

  beforeAll(async () => {
    t = await startTestServer(
      async (server) => {
        server.addHealthCheck('demo.db', async () => {
          if (!dbUp) throw new Error('database unreachable');
        });
        await server.registerComponent({
          name: 'demo',
          deps: { greeting: 'hi' },
          register: async (app, deps) => {
            app.post('/v3/spdu', async (request, reply) => {
              const bytes = octetStreamBody(request);
              return reply.type('application/octet-stream').send(Buffer.from(bytes).reverse());
            });
            app.post('/ops/echo', { config: JSON_API_ROUTE_CONFIG }, async (request) => ({ got: jsonObjectBody(request), greeting: deps.greeting }));
            app.get('/v3/refuse', async () => {
              throw new ScmsHttpError(400, Ieee1609Dot2Dot1ErrorCode.enrollmentCertificateUnknown, 'unknown enrollment certificate');
            });
            app.get('/ops/refuse', { config: JSON_API_ROUTE_CONFIG }, async () => {
              throw new ScmsHttpError(409, Ieee1609Dot2Dot1ErrorCode.undefined, 'already there', { details: { deviceId: 'x1' } });
            });
            app.get('/v3/item/:id', async (request) => ({ id: (request.params as { id: string }).id }));
            app.get('/v3/boom', async () => {
              throw new Error('handler exploded');
            });
            app.get('/v3/boom-sync', () => {
              throw new TypeError('sync explosion');
            });
            app.get('/ops/secret', { preHandler: bearerAuth({ realm: 'scms-operator', token: TOKEN, actor: 'operator' }), config: JSON_API_ROUTE_CONFIG }, async (request) => {
              audit(request.log, 'secret.read', { actor: request.scmsActor!, requestId: request.id });
              return { actor: request.scmsActor };
            });
            app.get('/ops/disabled', { preHandler: bearerAuth({ realm: 'scms-operator', token: undefined, actor: 'operator' }) }, async () => 'never');
          },
        });
      },
      { errorMode: () => mode, bodyLimit: 4096, jsonBodyLimit: 1024 },
    );
  });
  afterAll(() => t.close());

  const healthy = async () => {
    const res = await fetch(`${t.url}/healthz`);
    expect(res.status).toBe(200);
    return res.json();
  };

  it('GET /healthz reports version, components and checks; 503 when a check fails', async () => {
    const body = (await healthy()) as any;
    expect(body).toMatchObject({ status: 'ok', components: ['demo'], checks: { 'demo.db': { ok: true } } });
    expect(body.version).toMatch(/^\d+\.\d+\.\d+/);
    dbUp = false;
    try {
      const res = await fetch(`${t.url}/healthz`);
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ status: 'unavailable', checks: { 'demo.db': { ok: false, error: 'database unreachable' } } });
    } finally {
      dbUp = true;
    }
  });

  it('assigns request ids, keeps a sane client-supplied one, replaces a hostile one', async () => {
    const a = await fetch(`${t.url}/healthz`);
    const b = await fetch(`${t.url}/healthz`);
    expect(a.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(a.headers.get('x-request-id')).not.toBe(b.headers.get('x-request-id'));
    const c = await fetch(`${t.url}/healthz`, { headers: { 'x-request-id': 'trace-42.a' } });
    expect(c.headers.get('x-request-id')).toBe('trace-42.a');
    const d = await fetch(`${t.url}/healthz`, { headers: { 'x-request-id': 'bad id {"x":1}' } });
    expect(d.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('parses application/octet-stream bodies as bytes', async () => {
    const res = await fetch(`${t.url}/v3/spdu`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array([1, 2, 3]) });
    expect(res.status).toBe(200);
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(new Uint8Array([3, 2, 1]));
  });

  it('fine errors: status, Ieee-1609.2.1-Error header, text reason', async () => {
    const res = await fetch(`${t.url}/v3/refuse`);
    expect(res.status).toBe(400);
    expect(res.headers.get(ERROR_HEADER)).toBe('400-21');
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await res.text()).toBe('unknown enrollment certificate');
  });

  it('coarse errors: status only, generic reason, no code header', async () => {
    mode = 'coarse';
    try {
      const res = await fetch(`${t.url}/v3/refuse`);
      expect(res.status).toBe(400);
      expect(res.headers.get(ERROR_HEADER)).toBeNull();
      expect(await res.text()).toBe('Bad Request');
      // JSON APIs keep their detail whatever the policy.
      const ops = await fetch(`${t.url}/ops/refuse`);
      expect(ops.status).toBe(409);
      expect(ops.headers.get(ERROR_HEADER)).toBe('409-99');
    } finally {
      mode = 'fine';
    }
  });

  it('JSON error bodies on JSON API routes carry code, reason, request id and details', async () => {
    const res = await fetch(`${t.url}/ops/refuse`);
    expect(res.status).toBe(409);
    const body = (await res.json()) as any;
    expect(body).toEqual({ status: 409, code: 99, reason: 'already there', requestId: res.headers.get('x-request-id'), deviceId: 'x1' });
  });

  it('an exception in a handler -> 500, stack logged, server keeps serving', async () => {
    for (const path of ['/v3/boom', '/v3/boom-sync']) {
      const res = await fetch(`${t.url}${path}`);
      expect(res.status).toBe(500);
      expect(res.headers.get(ERROR_HEADER)).toBe('500-99');
      const text = await res.text();
      expect(text).toBe('internal error');
      expect(text).not.toMatch(/explo/);
    }
    const logged = t.logs.lines.filter((l) => l.msg === 'unhandled error in request');
    expect(logged.map((l) => l.err.message)).toEqual(expect.arrayContaining(['handler exploded', 'sync explosion']));
    expect(logged[0].err.stack).toMatch(/server\.test\.ts/);
    await healthy();
  });

  it('malformed JSON, empty JSON, oversize bodies and wrong content types -> 4xx; server still healthy', async () => {
    const post = (path: string, contentType: string | undefined, body: string | Uint8Array) =>
      fetch(`${t.url}${path}`, { method: 'POST', headers: contentType ? { 'content-type': contentType } : {}, body });
    const bad = await post('/ops/echo', 'application/json', '{"a": 1,');
    expect(bad.status).toBe(400);
    expect(bad.headers.get(ERROR_HEADER)).toBe('400-42');
    expect(((await bad.json()) as any).reason).toBe('malformed JSON body');
    expect((await post('/ops/echo', 'application/json', '   ')).status).toBe(400);
    expect((await post('/ops/echo', 'application/json', '[1,2]')).status).toBe(400);
    expect((await post('/ops/echo', 'application/json', JSON.stringify({ big: 'x'.repeat(2000) }))).status).toBe(413);
    expect((await post('/v3/spdu', 'application/octet-stream', new Uint8Array(5000))).status).toBe(413);
    expect((await post('/v3/spdu', 'text/plain', 'hello')).status).toBe(415);
    expect((await post('/v3/spdu', 'application/json', '{}')).status).toBe(415); // route wants an SPDU
    expect((await post('/ops/echo', 'application/octet-stream', new Uint8Array([1]))).status).toBe(415);
    expect((await post('/ops/echo', 'application/x-www-form-urlencoded', 'a=1')).status).toBe(415);
    const ok = await post('/ops/echo', 'application/json; charset=utf-8', '{"a":1}');
    expect(await ok.json()).toEqual({ got: { a: 1 }, greeting: 'hi' });
    await healthy();
  });

  it('garbage on the socket does not take the server down', async () => {
    const { connect } = await import('node:net');
    const port = Number(new URL(t.url).port);
    const reply = await new Promise<string>((resolve) => {
      const s = connect(port, '127.0.0.1', () => s.write('\x00\x01GARBAGE / NOT-HTTP\r\n\r\n'));
      let data = '';
      s.on('data', (d) => (data += d.toString()));
      s.on('close', () => resolve(data));
      s.on('error', () => resolve(data));
    });
    expect(reply).toMatch(/^HTTP\/1\.1 400/);
    await healthy();
  });

  it('router-level failures (over-long or badly encoded path parameters) use the same error path', async () => {
    const ok = await fetch(`${t.url}/v3/item/${'a'.repeat(300)}`);
    expect(((await ok.json()) as any).id).toHaveLength(300);
    const long = await fetch(`${t.url}/v3/item/${'a'.repeat(600)}`);
    expect(long.status).toBe(414);
    expect(long.headers.get(ERROR_HEADER)).toBe('414-99');
    expect(long.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const badEnc = await fetch(`${t.url}/v3/item/%E0%A4%A`);
    expect(badEnc.status).toBe(400);
    expect(badEnc.headers.get(ERROR_HEADER)).toBe('400-99');
    await healthy();
  });

  it('unknown routes -> 404 with the error header', async () => {
    const res = await fetch(`${t.url}/v3/nothing-here?x=1`);
    expect(res.status).toBe(404);
    expect(res.headers.get(ERROR_HEADER)).toBe('404-99');
    expect(await res.text()).toBe('no route GET /v3/nothing-here');
  });

  it('bearer auth: missing -> 401 + WWW-Authenticate, wrong -> 401 invalid_token, right -> 200 and audit line', async () => {
    const none = await fetch(`${t.url}/ops/secret`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="scms-operator"');
    const wrong = await fetch(`${t.url}/ops/secret`, { headers: { authorization: `Bearer ${TOKEN}x` } });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toBe('Bearer realm="scms-operator", error="invalid_token"');
    const basic = await fetch(`${t.url}/ops/secret`, { headers: { authorization: `Basic ${Buffer.from(`u:${TOKEN}`).toString('base64')}` } });
    expect(basic.status).toBe(401);
    const right = await fetch(`${t.url}/ops/secret`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(right.status).toBe(200);
    expect(await right.json()).toEqual({ actor: 'operator' });
    const line = t.logs.lines.find((l) => l.event === 'secret.read');
    expect(line).toMatchObject({ audit: true, actor: 'operator', requestId: right.headers.get('x-request-id') });
    expect(JSON.stringify(t.logs.lines)).not.toContain(TOKEN);
  });

  it('an API without a configured token is disabled (403)', async () => {
    const res = await fetch(`${t.url}/ops/disabled`, { headers: { authorization: 'Bearer anything-at-all-here' } });
    expect(res.status).toBe(403);
  });
});

describe('composition', () => {
  it('mounts several components on one server and refuses a duplicate', async () => {
    const logs = captureLogs();
    const server = createServer({ logger: createLogger({ destination: logs.destination }) });
    await composeComponents(server, [
      { name: 'ra', deps: { n: 1 }, register: async (app, d: { n: number }) => void app.get('/v3/ra-thing', async () => ({ ra: d.n })) },
      { name: 'eca', deps: { n: 2 }, register: async (app, d: { n: number }) => void app.get('/v3/eca-thing', async () => ({ eca: d.n })) },
    ]);
    await expect(server.registerComponent({ name: 'ra', deps: {}, register: async () => {} })).rejects.toThrow(/twice/);
    const { url } = await server.listen({ host: '127.0.0.1', port: 0 });
    try {
      expect(await (await fetch(`${url}/v3/ra-thing`)).json()).toEqual({ ra: 1 });
      expect(await (await fetch(`${url}/v3/eca-thing`)).json()).toEqual({ eca: 2 });
      expect(((await (await fetch(`${url}/healthz`)).json()) as any).components).toEqual(['ra', 'eca']);
    } finally {
      await server.close();
    }
  });
});

describe('graceful shutdown', () => {
  function slowServer() {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let entered!: () => void;
    const inHandler = new Promise<void>((r) => (entered = r));
    const order: string[] = [];
    return {
      gate,
      release: () => release(),
      inHandler,
      order,
      setup: (server: ScmsServer) => {
        server.app.get('/v3/slow', async () => {
          entered();
          await gate;
          order.push('response');
          return { done: true };
        });
        server.onShutdown('db', () => void order.push('db closed'));
        server.onShutdown('worker', async () => void order.push('worker stopped'));
      },
    };
  }

  function get(url: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(url, { agent: false }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('stops accepting, lets the in-flight request finish, then runs shutdown hooks (last first)', async () => {
    const s = slowServer();
    const t = await startTestServer(s.setup);
    const inflight = get(`${t.url}/v3/slow`);
    await s.inHandler;
    const closed = t.close().then(() => s.order.push('closed'));
    // New connections are refused once close() has begun.
    await new Promise((r) => setTimeout(r, 50));
    await expect(get(`${t.url}/healthz`)).rejects.toThrow(/ECONNREFUSED/);
    expect(s.order).toEqual([]);
    s.release();
    const res = await inflight;
    expect(res).toEqual({ status: 200, body: '{"done":true}' });
    await closed;
    expect(s.order).toEqual(['response', 'worker stopped', 'db closed', 'closed']);
    await t.close(); // idempotent
  });

  it('SIGTERM triggers the same shutdown and then exit(0)', async () => {
    const s = slowServer();
    const t = await startTestServer(s.setup);
    let exitCode: number | undefined;
    const exited = new Promise<void>((resolve) => {
      t.server.installSignalHandlers({ signals: ['SIGTERM'], exit: (code) => ((exitCode = code), resolve()) });
    });
    const inflight = get(`${t.url}/v3/slow`);
    await s.inHandler;
    process.emit('SIGTERM', 'SIGTERM');
    setTimeout(() => s.release(), 50);
    expect((await inflight).status).toBe(200);
    await exited;
    expect(exitCode).toBe(0);
    expect(s.order).toEqual(['response', 'worker stopped', 'db closed']);
    expect(process.listenerCount('SIGTERM')).toBe(0);
    expect(t.logs.lines.some((l) => l.msg === 'signal received' && l.signal === 'SIGTERM')).toBe(true);
  });

  it('cuts connections that outlive the shutdown timeout', async () => {
    const s = slowServer();
    const t = await startTestServer(s.setup, { shutdownTimeoutMs: 100 });
    const inflight = get(`${t.url}/v3/slow`);
    await s.inHandler;
    const started = Date.now();
    await t.close();
    expect(Date.now() - started).toBeLessThan(5000);
    await expect(inflight).rejects.toThrow();
    s.release();
  });
});
