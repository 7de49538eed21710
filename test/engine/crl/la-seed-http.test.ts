// The RA -> LA revocation-seed exchange over HTTP (la/routes.ts POST /internal/la/revocation-seed,
// crl/la-seed-client.ts) against a real LA server on 127.0.0.1: the seed is the LA's ls(i) for the chain; requests
// not signed by an RA, for another LA, an unknown chain or an i before the chain are refused.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../../src/crypto/bytes.js';
import { HttpLaSeedClient } from '../../../src/engine/crl/la-seed-client.js';
import { ScmsHttpError } from '../../../src/engine/http/errors.js';
import type { PeerTrustOptions } from '../../../src/engine/la/http-spdu.js';
import type { LaService } from '../../../src/engine/la/la.js';
import { registerLa } from '../../../src/engine/la/routes.js';
import { ManualClock } from '../../../src/security/time.js';
import { hierarchy, laService, tempSqlite, type Hierarchy, type TempDb } from '../aca/fixtures.js';
import { startTestServer, type TestServer } from '../http/helpers.js';

const clock = new ManualClock(new Date('2025-03-01T00:00:00Z'));

describe('LA revocation seeds over HTTP', () => {
  let h: Hierarchy;
  let trust: PeerTrustOptions;
  let db: TempDb;
  let la: LaService;
  let srv: TestServer;

  beforeAll(async () => {
    h = await hierarchy();
    trust = { trustAnchors: [h.root.cert], caCertificates: [h.ica.cert], clock };
    db = await tempSqlite('la-seed');
    la = await laService(h, 1, db.db);
    srv = await startTestServer((s) => s.registerComponent({ name: 'la1', register: registerLa, deps: { la, signer: h.la1.key.signer, trust } }));
  });
  afterAll(async () => {
    await srv?.close();
    await db?.close();
  });

  const client = (over: Partial<ConstructorParameters<typeof HttpLaSeedClient>[0]> = {}) =>
    new HttpLaSeedClient({ baseUrl: srv.url, laId: 1, raCertificate: h.ra.cert, raSigner: h.ra.key.signer, trust, ...over });

  it("answers the LA's ls(i) of the chain, signed by the LA", async () => {
    const { chainId } = await la.preLinkageValues({ newChain: true, iRange: { first: 40, last: 40 }, jMax: 2, acaCertificate: h.aca.cert });
    for (const i of [40, 41, 45]) {
      const got = await client().seedsForRevocation(chainId, i);
      const want = await la.seedsForRevocation(chainId, i);
      expect(got.laId).toBe(1);
      expect(toHex(got.linkageSeed)).toBe(toHex(want.linkageSeed));
    }
  });

  it('refuses a non-RA signer, another LA, an unknown chain and an i before the chain', async () => {
    const { chainId } = await la.preLinkageValues({ newChain: true, iRange: { first: 40, last: 40 }, jMax: 2, acaCertificate: h.aca.cert });
    const byAca = await client({ raCertificate: h.aca.cert, raSigner: h.aca.key.signer }).seedsForRevocation(chainId, 40).catch((e) => e);
    expect(byAca).toBeInstanceOf(ScmsHttpError);
    expect(byAca.status).toBeGreaterThanOrEqual(400);
    expect(byAca.status).toBeLessThan(500);
    const other = await client({ laId: 2 }).seedsForRevocation(chainId, 40).catch((e) => e);
    expect(other).toBeInstanceOf(ScmsHttpError);
    expect(other.message).toMatch(/addressed to LA 0002/);
    const unknown = await client().seedsForRevocation(new Uint8Array(16), 40).catch((e) => e);
    expect(unknown).toBeInstanceOf(ScmsHttpError);
    expect(unknown.message).toMatch(/unknown linkage chain/);
    const early = await client().seedsForRevocation(chainId, 39).catch((e) => e);
    expect(early).toBeInstanceOf(ScmsHttpError);
    expect(early.message).toMatch(/outside the chain/);
  });
});
