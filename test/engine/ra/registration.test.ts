import { createECDH, createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_HEADER, createLogger, createServer, type ScmsServer } from '../../../src/engine/http/index.js';
import { openDatabase } from '../../../src/engine/store/index.js';
import { ManualClock } from '../../../src/security/time.js';
import { RegistrationStore } from '../../../src/engine/ra/registration-store.js';
import { registerRegistrationRoutes } from '../../../src/engine/ra/registration-routes.js';
import { HttpDeviceRegistry, InProcessDeviceRegistry, DeviceRegistryHttpError } from '../../../src/engine/ra/registration-registry.js';
import { UnknownDeviceError, parseCanonicalPublicKey, RegistrationInputError } from '../../../src/engine/ra/registration.js';
import { testDatabase, type DialectName } from '../store/helpers.js';
import { captureLogs, type LogCapture } from '../http/helpers.js';

const OPERATOR = 'op-token-registration-tests-0001';
const COMPONENT = 'component-token-registration-0002';

function newKey() {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  return { uncompressed: ecdh.getPublicKey(), compressed: ecdh.getPublicKey(undefined, 'compressed') };
}

/** HashedId8 computed independently: last 8 bytes of SHA-256 of the compressed point. */
function expectedCanonicalId(compressed: Buffer): string {
  return createHash('sha256').update(compressed).digest().subarray(24).toString('hex');
}

describe('canonical key parsing', () => {
  it('compressed and uncompressed forms give the same canonical id, the HashedId8 of the compressed point', () => {
    const k = newKey();
    const a = parseCanonicalPublicKey(k.compressed.toString('hex'));
    const b = parseCanonicalPublicKey('0x' + k.uncompressed.toString('hex').toUpperCase());
    expect(a.canonicalId).toBe(expectedCanonicalId(k.compressed));
    expect(b.canonicalId).toBe(a.canonicalId);
    expect(Buffer.from(b.compressed).equals(k.compressed)).toBe(true);
  });

  it('rejects bad hex, wrong length, wrong prefix, points off the curve and the identity', () => {
    const k = newKey();
    const offCurve = Buffer.from(k.uncompressed);
    offCurve[64] ^= 1;
    const cases: [unknown, RegExp][] = [
      ['zz' + k.compressed.toString('hex').slice(2), /not valid hex/],
      [k.compressed.toString('hex').slice(1), /not valid hex/],
      ['', /not valid hex/],
      [42, /expected a hex string/],
      [k.compressed.subarray(0, 32).toString('hex'), /got 32 octets/],
      ['05' + k.compressed.toString('hex').slice(2), /compressed .* or uncompressed/],
      [offCurve.toString('hex'), /not a point on nistP256/],
      ['02' + 'ff'.repeat(32), /not a point on nistP256/],
      ['00', /got 1 octets/],
    ];
    for (const [input, re] of cases) {
      expect(() => parseCanonicalPublicKey(input), String(input)).toThrow(re);
      expect(() => parseCanonicalPublicKey(input)).toThrow(RegistrationInputError);
    }
  });
});

interface Env {
  server: ScmsServer;
  url: string;
  store: RegistrationStore;
  clock: ManualClock;
  logs: LogCapture;
  db: Kysely<any>;
  cleanup(): Promise<void>;
}

async function startRa(dialect: DialectName): Promise<Env> {
  const database = await testDatabase(dialect, 'ra_registration');
  const db = await openDatabase<any>(database.url);
  const clock = new ManualClock('2026-03-01T12:00:00Z');
  const store = new RegistrationStore(db, { clock });
  await store.migrate();
  const logs = captureLogs();
  const server = createServer({ logger: createLogger({ destination: logs.destination }) });
  server.addHealthCheck('ra.db', () => store.ping());
  server.onShutdown('ra.db', () => db.destroy());
  await server.registerComponent({
    name: 'ra',
    deps: { store, operatorToken: OPERATOR, componentToken: COMPONENT },
    register: registerRegistrationRoutes,
  });
  const { url } = await server.listen({ host: '127.0.0.1', port: 0 });
  return {
    server,
    url,
    store,
    clock,
    logs,
    db,
    async cleanup() {
      await server.close();
      await database.cleanup();
    },
  };
}

describe.each(['sqlite', 'postgres'] as const)('RA registration over HTTP (%s)', (dialect) => {
  let env: Env;
  beforeAll(async () => {
    env = await startRa(dialect);
  });
  afterAll(() => env?.cleanup());

  const call = (method: string, path: string, body?: unknown, token: string | null = OPERATOR) =>
    fetch(`${env.url}${path}`, {
      method,
      headers: {
        ...(token === null ? {} : { authorization: `Bearer ${token}` }),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });

  it('registers a device, reports it, and finds it by canonical id and key', async () => {
    const k = newKey();
    const res = await call('POST', '/v3/devices', {
      deviceType: 'obu',
      canonicalPublicKey: k.uncompressed.toString('hex'),
      name: 'bench unit 7',
      region: [840, 124],
      psidGroup: 'obu-default',
    });
    expect(res.status).toBe(201);
    const created = (await res.json()) as any;
    expect(created.deviceId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(created.canonicalId).toBe(expectedCanonicalId(k.compressed));
    expect(created.state).toBe('registered');
    expect(res.headers.get('location')).toBe(`/v3/devices/${created.deviceId}`);

    const status = (await (await call('GET', `/v3/devices/${created.deviceId}`)).json()) as any;
    expect(status).toEqual({
      deviceId: created.deviceId,
      canonicalId: created.canonicalId,
      canonicalPublicKey: k.compressed.toString('hex'),
      curve: 'nistP256',
      deviceType: 'obu',
      name: 'bench unit 7',
      region: [840, 124],
      psidGroup: 'obu-default',
      state: 'registered',
      registeredAt: '2026-03-01T12:00:00.000Z',
      updatedAt: '2026-03-01T12:00:00.000Z',
      enrolledAt: null,
      blockedAt: null,
      blockReason: null,
      certificates: [],
    });

    const byId = (await (await call('GET', `/v3/devices?canonicalId=${created.canonicalId}`)).json()) as any;
    expect(byId.devices.map((d: any) => d.deviceId)).toEqual([created.deviceId]);
    const byKey = (await (await call('GET', `/v3/devices?canonicalPublicKey=${k.compressed.toString('hex')}`)).json()) as any;
    expect(byKey.devices.map((d: any) => d.deviceId)).toEqual([created.deviceId]);
    const none = (await (await call('GET', `/v3/devices?canonicalId=${'0'.repeat(16)}`)).json()) as any;
    expect(none.devices).toEqual([]);

    const audit = env.logs.lines.find((l) => l.event === 'device.registered' && l.deviceId === created.deviceId);
    expect(audit).toMatchObject({ audit: true, actor: 'operator', canonicalId: created.canonicalId, deviceType: 'obu' });
  });

  it('the same key twice (any encoding) -> 409 with the existing device id', async () => {
    const k = newKey();
    const first = (await (await call('POST', '/v3/devices', { deviceType: 'rsu', canonicalPublicKey: k.compressed.toString('hex') })).json()) as any;
    const again = await call('POST', '/v3/devices', { deviceType: 'obu', canonicalPublicKey: k.uncompressed.toString('hex') });
    expect(again.status).toBe(409);
    const body = (await again.json()) as any;
    expect(body.deviceId).toBe(first.deviceId);
    expect(body.canonicalId).toBe(first.canonicalId);
    expect(body.reason).toContain(first.deviceId);
  });

  it('concurrent registrations of one key create exactly one device', async () => {
    const k = newKey();
    const results = await Promise.all(
      Array.from({ length: 6 }, () => call('POST', '/v3/devices', { deviceType: 'obu', canonicalPublicKey: k.compressed.toString('hex') })),
    );
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([201, 409, 409, 409, 409, 409]);
    const ids = new Set(await Promise.all(results.map(async (r) => ((await r.json()) as any).deviceId)));
    expect(ids.size).toBe(1);
  });

  it('invalid input -> 400 with a reason naming the field', async () => {
    const k = newKey();
    const off = Buffer.from(k.uncompressed);
    off[64] ^= 1;
    const cases: [unknown, RegExp][] = [
      [{ deviceType: 'obu', canonicalPublicKey: off.toString('hex') }, /canonicalPublicKey: not a point on nistP256/],
      [{ deviceType: 'obu', canonicalPublicKey: 'xyz' }, /canonicalPublicKey: not valid hex/],
      [{ deviceType: 'obu', canonicalPublicKey: k.compressed.subarray(1).toString('hex') }, /canonicalPublicKey: .*got 32 octets/],
      [{ deviceType: 'car', canonicalPublicKey: k.compressed.toString('hex') }, /deviceType: expected "obu" or "rsu"/],
      [{ deviceType: 'obu' }, /canonicalPublicKey: expected a hex string/],
      [{ deviceType: 'obu', canonicalPublicKey: k.compressed.toString('hex'), region: ['US'] }, /region: .*numeric/],
      [{ deviceType: 'obu', canonicalPublicKey: k.compressed.toString('hex'), psidGroup: 'a b' }, /psidGroup/],
      [{ deviceType: 'obu', canonicalPublicKey: k.compressed.toString('hex'), colour: 'red' }, /colour: unknown field/],
    ];
    for (const [body, re] of cases) {
      const res = await call('POST', '/v3/devices', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.headers.get(ERROR_HEADER)).toBe('400-60');
      expect(((await res.json()) as any).reason).toMatch(re);
    }
    const list = (await (await call('GET', `/v3/devices?canonicalPublicKey=${k.compressed.toString('hex')}`)).json()) as any;
    expect(list.devices).toEqual([]); // nothing was registered by the rejected bodies
    expect((await call('POST', '/v3/devices', '{"deviceType": ')).status).toBe(400);
    expect((await call('GET', '/v3/devices?canonicalId=XYZ')).status).toBe(400);
  });

  it('missing or wrong operator token -> 401 with WWW-Authenticate; the component token is not an operator token', async () => {
    const k = newKey();
    const body = { deviceType: 'obu', canonicalPublicKey: k.compressed.toString('hex') };
    for (const token of [null, 'wrong-token-wrong-token', COMPONENT]) {
      const res = await call('POST', '/v3/devices', body, token);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="scms-operator"/);
    }
    expect((await call('GET', '/v3/devices', undefined, null)).status).toBe(401);
    expect((await call('GET', `/internal/devices/by-key/${k.compressed.toString('hex')}`, undefined, OPERATOR)).status).toBe(401);
    const list = (await (await call('GET', `/v3/devices?canonicalPublicKey=${k.compressed.toString('hex')}`)).json()) as any;
    expect(list.devices).toEqual([]);
  });

  it('block / unblock with reasons: state, timestamps, events and audit lines', async () => {
    const k = newKey();
    const { deviceId } = (await (await call('POST', '/v3/devices', { deviceType: 'obu', canonicalPublicKey: k.compressed.toString('hex') })).json()) as any;
    env.clock.advance(60_000);
    const blocked = await call('POST', `/v3/devices/${deviceId}/block`, { reason: 'stolen vehicle' });
    expect(blocked.status).toBe(200);
    expect(await blocked.json()).toEqual({ deviceId, state: 'blocked', changed: true, blockedAt: '2026-03-01T12:01:00.000Z', blockReason: 'stolen vehicle' });
    const again = (await (await call('POST', `/v3/devices/${deviceId}/block`, { reason: 'twice' })).json()) as any;
    expect(again).toMatchObject({ state: 'blocked', changed: false, blockReason: 'stolen vehicle' });
    expect((await call('POST', `/v3/devices/${deviceId}/block`, {})).status).toBe(400);
    expect((await call('POST', `/v3/devices/${deviceId}/block`, { reason: '   ' })).status).toBe(400);

    env.clock.advance(60_000);
    const unblocked = (await (await call('POST', `/v3/devices/${deviceId}/unblock`, { reason: 'recovered' })).json()) as any;
    expect(unblocked).toEqual({ deviceId, state: 'registered', changed: true, blockedAt: null, blockReason: null });

    const events = (await (await call('GET', `/v3/devices/${deviceId}/events`)).json()) as any;
    expect(events.events.map((e: any) => [e.seq, e.kind, e.actor, e.details.reason ?? null])).toEqual([
      [1, 'registered', 'operator', null],
      [2, 'blocked', 'operator', 'stolen vehicle'],
      [3, 'unblocked', 'operator', 'recovered'],
    ]);
    expect(events.events[1].at).toBe('2026-03-01T12:01:00.000Z');
    const audits = env.logs.lines.filter((l) => l.audit && l.deviceId === deviceId).map((l) => [l.event, l.reason ?? null]);
    expect(audits).toEqual([
      ['device.registered', null],
      ['device.blocked', 'stolen vehicle'],
      ['device.unblocked', 'recovered'],
    ]);
  });

  it('unknown devices -> 404', async () => {
    const unknown = '00000000-0000-4000-8000-000000000000';
    expect((await call('GET', `/v3/devices/${unknown}`)).status).toBe(404);
    expect((await call('GET', '/v3/devices/not-a-uuid')).status).toBe(404);
    expect((await call('GET', `/v3/devices/${unknown}/events`)).status).toBe(404);
    expect((await call('POST', `/v3/devices/${unknown}/block`, { reason: 'x' })).status).toBe(404);
    expect((await call('POST', `/v3/devices/${unknown}/unblock`, { reason: 'x' })).status).toBe(404);
  });

  it('lists devices page by page', async () => {
    const all: string[] = [];
    let after: string | null = null;
    do {
      const page: any = await (await call('GET', `/v3/devices?limit=2${after ? `&after=${after}` : ''}`)).json();
      expect(page.devices.length).toBeLessThanOrEqual(2);
      all.push(...page.devices.map((d: any) => d.deviceId));
      after = page.next;
    } while (after);
    expect(all.length).toBeGreaterThanOrEqual(4);
    expect([...all].sort()).toEqual(all);
    expect(new Set(all).size).toBe(all.length);
    expect((await call('GET', '/v3/devices?limit=0')).status).toBe(400);
  });

  it('the HTTP DeviceRegistry gives the same answers as the in-process one', async () => {
    const local = new InProcessDeviceRegistry(env.store, { actor: 'eca' });
    const remote = new HttpDeviceRegistry({ baseUrl: env.url, token: COMPONENT });
    const a = newKey();
    const b = newKey();
    const unregistered = newKey();
    const { deviceId: idA } = (await (await call('POST', '/v3/devices', { deviceType: 'obu', canonicalPublicKey: a.compressed.toString('hex'), region: [840], psidGroup: 'g1' })).json()) as any;
    const { deviceId: idB } = (await (await call('POST', '/v3/devices', { deviceType: 'rsu', canonicalPublicKey: b.uncompressed.toString('hex') })).json()) as any;
    await call('POST', `/v3/devices/${idB}/block`, { reason: 'test' });

    for (const key of [a.compressed, a.uncompressed, b.compressed, b.uncompressed, unregistered.compressed]) {
      expect(await remote.lookupByCanonicalKey(key)).toEqual(await local.lookupByCanonicalKey(key));
    }
    expect(await remote.lookupByCanonicalKey(a.uncompressed)).toEqual({
      deviceId: idA, canonicalId: expectedCanonicalId(a.compressed), deviceType: 'obu', state: 'registered', region: [840], psidGroup: 'g1',
    });
    expect((await remote.lookupByCanonicalKey(b.compressed))?.state).toBe('blocked');
    expect(await remote.lookupByCanonicalKey(unregistered.compressed)).toBeUndefined();
    for (const id of [expectedCanonicalId(a.compressed), expectedCanonicalId(unregistered.compressed), 'nothex']) {
      expect(await remote.lookupByCanonicalId(id)).toEqual(await local.lookupByCanonicalId(id));
    }
    // The internal route also takes the uncompressed encoding directly.
    const direct = await call('GET', `/internal/devices/by-key/${a.uncompressed.toString('hex')}`, undefined, COMPONENT);
    expect(((await direct.json()) as any).deviceId).toBe(idA);
    const missing = await call('GET', `/internal/devices/by-key/${unregistered.compressed.toString('hex')}`, undefined, COMPONENT);
    expect(missing.status).toBe(404);
    expect(missing.headers.get(ERROR_HEADER)).toBe('404-21');
    // Same input errors.
    const bad = Buffer.from(a.uncompressed);
    bad[64] ^= 1;
    await expect(local.lookupByCanonicalKey(bad)).rejects.toThrow(/not a point/);
    await expect(remote.lookupByCanonicalKey(bad)).rejects.toThrow(/not a point/);

    // markEnrolled over HTTP, visible through both and in the operator status.
    env.clock.advance(1000);
    const cert = { kind: 'enrollment' as const, hashedId8: '0011223344556677', issuer: 'eca', validFrom: new Date('2026-03-01T00:00:00Z'), validUntil: new Date('2029-03-01T00:00:00Z') };
    await remote.markEnrolled(idA, cert);
    await remote.markEnrolled(idA, cert); // idempotent
    expect((await local.lookupByCanonicalKey(a.compressed))?.state).toBe('enrolled');
    await local.recordCertificate(idA, { kind: 'authorization-batch', hashedId8: '8899aabbccddeeff', issuer: 'ra' });
    await remote.recordCertificate(idA, { kind: 'application', hashedId8: 'a0a1a2a3a4a5a6a7', issuer: 'aca' });
    const status = (await (await call('GET', `/v3/devices/${idA}`)).json()) as any;
    expect(status.state).toBe('enrolled');
    expect(status.enrolledAt).toBe(env.clock.now().toISOString());
    // Ordered by issue time, then HashedId8.
    expect(status.certificates).toEqual([
      { kind: 'enrollment', hashedId8: '0011223344556677', issuer: 'eca', issuedAt: env.clock.now().toISOString(), validFrom: '2026-03-01T00:00:00.000Z', validUntil: '2029-03-01T00:00:00.000Z' },
      { kind: 'authorization-batch', hashedId8: '8899aabbccddeeff', issuer: 'ra', issuedAt: env.clock.now().toISOString(), validFrom: null, validUntil: null },
      { kind: 'application', hashedId8: 'a0a1a2a3a4a5a6a7', issuer: 'aca', issuedAt: env.clock.now().toISOString(), validFrom: null, validUntil: null },
    ]);
    const kinds = ((await (await call('GET', `/v3/devices/${idA}/events`)).json()) as any).events.map((e: any) => `${e.kind}:${e.actor}`);
    expect(kinds).toEqual(['registered:operator', 'enrolled:eca', 'certificate:ra', 'certificate:aca']);

    // Unknown device and bad input, same on both transports.
    const ghost = '00000000-0000-4000-8000-000000000001';
    await expect(remote.markEnrolled(ghost, cert)).rejects.toBeInstanceOf(UnknownDeviceError);
    await expect(local.markEnrolled(ghost, cert)).rejects.toBeInstanceOf(UnknownDeviceError);
    await expect(remote.recordCertificate(idA, { kind: 'Bad Kind', hashedId8: '00' })).rejects.toBeInstanceOf(DeviceRegistryHttpError);
    await expect(local.recordCertificate(idA, { kind: 'Bad Kind', hashedId8: '00' })).rejects.toBeInstanceOf(RegistrationInputError);

    // A wrong component token is an error, never "not registered".
    const intruder = new HttpDeviceRegistry({ baseUrl: env.url, token: 'not-the-component-token' });
    await expect(intruder.lookupByCanonicalKey(a.compressed)).rejects.toMatchObject({ status: 401 });
  });

  it('health reports the database', async () => {
    const res = await fetch(`${env.url}/healthz`);
    expect(await res.json()).toMatchObject({ status: 'ok', components: ['ra'], checks: { 'ra.db': { ok: true } } });
  });
});

describe('RegistrationStore restart', () => {
  it('data survives closing and reopening the SQLite file; migrations are idempotent', async () => {
    const database = await testDatabase('sqlite', 'ra_restart');
    try {
      const k = newKey();
      let db = await openDatabase<any>(database.url);
      let store = new RegistrationStore(db);
      await store.migrate();
      const key = parseCanonicalPublicKey(k.compressed.toString('hex'));
      const { device } = await store.register({ deviceType: 'obu', key }, 'operator');
      await db.destroy();
      db = await openDatabase<any>(database.url);
      store = new RegistrationStore(db);
      await store.migrate();
      expect((await store.findByCanonicalKey(key.compressed))?.deviceId).toBe(device.deviceId);
      expect((await store.register({ deviceType: 'obu', key }, 'operator')).created).toBe(false);
      await db.destroy();
    } finally {
      await database.cleanup();
    }
  });
});
