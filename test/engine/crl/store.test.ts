// CrlStore on SQLite and on PostgreSQL (a throw-away schema): revocations (one per device), latest CRL per
// (craca, series, kind) replaced in place, values read back with their types.
import { afterAll, describe, expect, it } from 'vitest';
import { CrlStore, type IssuedCrl } from '../../../src/engine/crl/store.js';
import { openDatabase } from '../../../src/engine/store/index.js';
import { testDatabase, type DialectName } from '../store/helpers.js';

for (const dialect of ['sqlite', 'postgres'] as DialectName[]) {
  describe(`CrlStore (${dialect})`, () => {
    const cleanups: Array<() => Promise<void>> = [];
    afterAll(async () => {
      for (const c of cleanups.reverse()) await c();
    });

    it('keeps one revocation per device and the latest CRL per craca / series / kind', async () => {
      const t = await testDatabase(dialect, 'crl_store');
      cleanups.push(t.cleanup);
      const db = await openDatabase<any>(t.url);
      cleanups.push(() => db.destroy());
      const store = new CrlStore(db);
      await store.migrate();
      await store.migrate(); // idempotent

      const r = {
        deviceId: '11111111-1111-4111-8111-111111111111',
        revokedAt: new Date('2025-06-01T00:00:00Z'),
        reason: 'key compromise',
        actor: 'operator',
        hashEntries: [{ id: '00112233445566778899', expiry: 700_000_000, kind: 'enrollment' }],
        linkage: { la1Id: 1, la2Id: 2, seed1: 'aa'.repeat(16), seed2: 'bb'.repeat(16), i: 100, jmax: 20, iMax: 65535 },
      };
      expect(await store.addRevocation(r)).toBe(true);
      expect(await store.addRevocation({ ...r, reason: 'again' })).toBe(false);
      expect(await store.revocation(r.deviceId)).toEqual(r);
      const { linkage: _l, ...noLinkage } = { ...r, deviceId: '22222222-2222-4222-8222-222222222222', hashEntries: [] };
      expect(await store.addRevocation(noLinkage)).toBe(true);
      expect((await store.revocations()).map((x) => x.deviceId)).toEqual([r.deviceId, noLinkage.deviceId]);
      expect((await store.revocations())[1]!.linkage).toBeUndefined();

      const crl = (kind: IssuedCrl['kind'], serial: number, issueDate: number): IssuedCrl => ({
        craca: '0011223344556677',
        series: 1,
        kind,
        serial,
        ...(kind === 'fullLinkedCrl' ? { iRev: 100 } : {}),
        issueDate,
        nextCrl: issueDate + 604_800,
        crl: Uint8Array.of(serial, 1, 2, 3),
      });
      await store.saveIssued([crl('fullHashCrl', 1, 4_000_000_000), crl('fullLinkedCrl', 0, 4_000_000_000)]);
      await store.saveIssued([crl('fullHashCrl', 2, 4_000_000_010), crl('fullLinkedCrl', 1, 4_000_000_010)]);
      const issued = await store.issued();
      expect(issued).toEqual([crl('fullHashCrl', 2, 4_000_000_010), crl('fullLinkedCrl', 1, 4_000_000_010)]);
      expect(typeof issued[0]!.issueDate).toBe('number');
      expect(issued[0]!.crl).toBeInstanceOf(Uint8Array);
    });
  });
}
