// The download counters (ra/authorization-store.ts DownloadStore: download-maxReqs / download-minWait) and the ECA's
// successor-response column (eca/store.ts migration 0002) on both SQLite and PostgreSQL: the rules through the store,
// the refusal writes nothing, concurrent requests of one device are serialised. The HTTP behaviour is in
// authorization.test.ts / successor.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Kysely } from 'kysely';
import { EcaStore } from '../../../src/engine/eca/store.js';
import { isRangeContinuation } from '../../../src/engine/ra/authorization.js';
import { DownloadStore, type DownloadLimits, type DownloadRequestInput } from '../../../src/engine/ra/authorization-store.js';
import { openDatabase } from '../../../src/engine/store/index.js';
import { testDatabase } from '../store/helpers.js';

const WEEK = 7 * 86_400;
const LIMITS: DownloadLimits = { maxReqs: 3, minWait: 5, maxAge: 300 };
const T0 = 700_000_000; // a Time32
const MS0 = 1_772_000_000_000;

describe.each(['sqlite', 'postgres'] as const)('DownloadStore on %s', (dialect) => {
  let db: Kysely<any>;
  let cleanup: () => Promise<void>;
  let store: DownloadStore;
  let n = 0;
  const device = () => `device-${++n}`;
  /** A request `s` seconds after T0 (generationTime and reception alike). */
  const req = (deviceId: string, s: number, o: Partial<DownloadRequestInput> = {}): DownloadRequestInput => ({
    deviceId,
    endpoint: 'authorization',
    filename: '0123456789abcdef_1.zip',
    generationTime: T0 + s,
    receivedAtMs: MS0 + s * 1000,
    now: T0 + s,
    continuation: false,
    ...o,
  });
  const rows = async (deviceId: string) => (await db.selectFrom('ra_download_requests').selectAll().where('device_id', '=', deviceId).execute()).length;

  beforeAll(async () => {
    const t = await testDatabase(dialect, 'download_store');
    cleanup = t.cleanup;
    db = await openDatabase<any>(t.url);
    store = new DownloadStore(db);
    await store.migrate();
    await store.migrate(); // idempotent
  });
  afterAll(async () => {
    await db?.destroy();
    await cleanup?.();
  });

  it('minWait on reception time; a continuation of the same file is exempt; refusals write nothing', async () => {
    const LIMITS = { maxReqs: 100, minWait: 5, maxAge: 300 };
    const d = device();
    expect(await store.admit(req(d, 0), LIMITS)).toEqual({ ok: true });
    expect(await store.admit(req(d, 2), LIMITS)).toEqual({ ok: false, rule: 'minWait', elapsedSeconds: 2, retryAfter: 3 });
    expect(await rows(d)).toBe(1);
    // Same generationTime re-sent later (the EE retries with the same SPDU): reception time counts.
    expect(await store.admit(req(d, 5, { generationTime: T0 }), LIMITS)).toEqual({ ok: true });
    expect(await store.admit(req(d, 6, { continuation: true }), LIMITS)).toEqual({ ok: true });
    expect(await store.admit(req(d, 6, { continuation: true, filename: 'fedcba9876543210_1.zip' }), LIMITS)).toMatchObject({ ok: false, rule: 'minWait' });
    expect(await rows(d)).toBe(3);
    // Another interface of the same device, another device: their own counters.
    expect(await store.admit(req(d, 6, { endpoint: 'successor' }), LIMITS)).toEqual({ ok: true });
    expect(await store.admit(req(device(), 6), LIMITS)).toEqual({ ok: true });
  });

  it('maxReqs per 7 x 24 h of generationTime, Retry-After until the oldest leaves the window; old rows are pruned', async () => {
    const d = device();
    for (const s of [0, 10, 20]) expect(await store.admit(req(d, s), LIMITS)).toEqual({ ok: true });
    expect(await store.admit(req(d, 30), LIMITS)).toEqual({ ok: false, rule: 'maxReqs', count: 3, retryAfter: WEEK - 30 + 1 });
    expect(await rows(d)).toBe(3);
    expect(await store.admit(req(d, WEEK + 1), LIMITS)).toEqual({ ok: true });
    // Far later: the rows no request can count any more are gone.
    expect(await store.admit(req(d, 3 * WEEK), LIMITS)).toEqual({ ok: true });
    expect(await rows(d)).toBe(1);
  });

  it('concurrent requests of one device: exactly one is admitted within minWait', async () => {
    const d = device();
    const results = await Promise.all(Array.from({ length: 6 }, () => store.admit(req(d, 0), LIMITS)));
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(await rows(d)).toBe(1);
  });
});

describe.each(['sqlite', 'postgres'] as const)('EcaStore migration 0002 (successor response) on %s', (dialect) => {
  it('keeps the response octets of a successor request, none for an initial enrollment', async () => {
    const t = await testDatabase(dialect, 'eca_successor_response');
    const db = await openDatabase<any>(t.url);
    try {
      const s = new EcaStore(db);
      await s.migrate();
      const base = { requestHash: '0102030405060708', deviceId: 'd1', canonicalId: 'c1', generationTime: T0, receivedAt: new Date(MS0) };
      const cert = (h: string) => ({ hashedId8: h, type: 'explicit' as const, bytes: Uint8Array.of(1, 2, 3), validFrom: T0, validUntil: T0 + 100 });
      await s.transaction((tx) => tx.recordEnrollment({ ...base, requestDigest: 'a'.repeat(64), certificate: cert('1111111111111111') }));
      await s.transaction((tx) => tx.recordEnrollment({ ...base, requestDigest: 'b'.repeat(64), response: Uint8Array.of(9, 8, 7), certificate: cert('2222222222222222') }));
      expect((await s.acceptedRequest('a'.repeat(64)))?.response).toBeUndefined();
      const b = await s.acceptedRequest('b'.repeat(64));
      expect(b?.response).toEqual(Uint8Array.of(9, 8, 7));
      expect(b?.certificate?.hashedId8).toBe('2222222222222222');
      expect(await s.acceptedRequest('c'.repeat(64))).toBeUndefined();
    } finally {
      await db.destroy();
      await t.cleanup();
    }
  });
});

describe('isRangeContinuation', () => {
  it('first-byte-pos above 0 or a suffix range continues; bytes=0-, no Range or garbage does not', () => {
    expect(isRangeContinuation('bytes=100-')).toBe(true);
    expect(isRangeContinuation('bytes=100-199')).toBe(true);
    expect(isRangeContinuation('bytes=-500')).toBe(true);
    expect(isRangeContinuation('bytes=0-99')).toBe(false);
    expect(isRangeContinuation('bytes=0-')).toBe(false);
    expect(isRangeContinuation(undefined)).toBe(false);
    expect(isRangeContinuation('items=5-')).toBe(false);
  });
});
