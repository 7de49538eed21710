// A small SCMS for the pseudonym pipeline tests: root -> ICA -> ACA (usesCubk), ACA2, RA, LA1, LA2, with the
// manager's certificate profiles, soft scalars, SQLite stores in temp dirs.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Certificate } from '../../../src/codec/index.js';
import { buildTbsCertificate, issueExplicitCertificate } from '../../../src/security/certificate.js';
import { ManualClock } from '../../../src/security/time.js';
import { certificateProfile, type Role } from '../../../src/engine/manager/profiles.js';
import { defaultGlobalPolicy, iPeriodParamsOf, type GlobalPolicy } from '../../../src/engine/policy/index.js';
import { openDatabase } from '../../../src/engine/store/index.js';
import { LaService, LaStore } from '../../../src/engine/la/la.js';
import { AcaService } from '../../../src/engine/aca/aca.js';
import { processAuthorizationResponse, type AuthorizationCertificate } from '../../../src/engine/ee/authorization.js';
import type { ButterflySecrets } from '../../../src/engine/ee/butterfly.js';
import type { LaClient } from '../../../src/engine/la/la.js';
import { PseudonymService, type PseudonymServiceOptions } from '../../../src/engine/ra/pseudonym.js';
import { testKey, type TestKey } from '../../security/cert-fixtures.js';

export interface Entity {
  key: TestKey;
  enc?: TestKey;
  cert: Certificate;
}

export const START = new Date('2025-01-01T00:00:00Z');

export function testPolicy(): GlobalPolicy {
  return {
    ...defaultGlobalPolicy({ policyId: 'test', issueTime: START.toISOString(), regions: [840], iPeriodEpoch: '2025-01-06T00:00:00Z' }),
    'time-baseCertNumber': 3,
    'time-overlapCertNumber': 1,
  };
}

async function issue(role: Role, policy: GlobalPolicy, issuer: Entity | 'self', opts: { laId?: number; name: string; flags?: string }): Promise<Entity> {
  const p = certificateProfile(role, { policy, ...(opts.laId !== undefined ? { laId: opts.laId } : {}) });
  const key = testKey('nistP256');
  const enc = p.encryptionKey ? testKey('nistP256') : undefined;
  const tbs = buildTbsCertificate({
    id: { name: opts.name },
    validity: { start: START, durationSeconds: p.validitySeconds },
    appPermissions: p.appPermissions,
    ...(p.certIssuePermissions ? { certIssuePermissions: p.certIssuePermissions } : {}),
    ...(p.certRequestPermissions ? { certRequestPermissions: p.certRequestPermissions } : {}),
    ...(enc ? { encryptionKey: enc.publicKey } : {}),
    verifyKey: key.publicKey,
  });
  if (opts.flags) tbs.flags = opts.flags;
  const cert = await issueExplicitCertificate({ tbs, issuer: issuer === 'self' ? 'self' : issuer.cert, signer: issuer === 'self' ? key.signer : issuer.key.signer });
  return { key, cert, ...(enc ? { enc } : {}) };
}

export interface Hierarchy {
  policy: GlobalPolicy;
  root: Entity;
  ica: Entity;
  aca: Entity;
  aca2: Entity;
  ra: Entity;
  la1: Entity;
  la2: Entity;
  /** [aca, ica, root] */
  acaChain: Certificate[];
}

export async function hierarchy(): Promise<Hierarchy> {
  const policy = testPolicy();
  const root = await issue('root', policy, 'self', { name: 'root' });
  const ica = await issue('ica', policy, root, { name: 'ica' });
  const aca = await issue('aca', policy, ica, { name: 'aca', flags: '10000000' }); // usesCubk
  const aca2 = await issue('aca', policy, ica, { name: 'aca2', flags: '10000000' });
  const ra = await issue('ra', policy, ica, { name: 'ra' });
  const la1 = await issue('la', policy, ica, { name: 'la1', laId: 1 });
  const la2 = await issue('la', policy, ica, { name: 'la2', laId: 2 });
  return { policy, root, ica, aca, aca2, ra, la1, la2, acaChain: [aca.cert, ica.cert, root.cert] };
}

export interface TempDb {
  db: Kysely<any>;
  file: string;
  close(): Promise<void>;
}

export async function tempSqlite(label: string): Promise<TempDb> {
  const dir = mkdtempSync(join(tmpdir(), `scms-${label}-`));
  const file = join(dir, `${label}.db`);
  const db = await openDatabase<any>(`sqlite:${file}`);
  const t: TempDb = {
    db,
    file,
    async close() {
      await t.db.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return t;
}

export async function laService(h: Hierarchy, which: 1 | 2, db: Kysely<any>, master = new Uint8Array(randomBytes(32)), clock = new ManualClock(new Date('2025-03-01T00:00:00Z'))): Promise<LaService> {
  const store = new LaStore(db);
  await store.migrate();
  const e = which === 1 ? h.la1 : h.la2;
  return new LaService({ laId: which, store, masterSecret: master, certificate: e.cert, signer: e.key.signer, clock });
}

/** The hierarchy's two LAs, each on a fresh SQLite database (added to `dbs`, which the test closes). */
export async function laPair(h: Hierarchy, dbs: TempDb[]): Promise<[LaService, LaService]> {
  const d1 = await tempSqlite('la1');
  const d2 = await tempSqlite('la2');
  dbs.push(d1, d2);
  return [await laService(h, 1, d1.db), await laService(h, 2, d2.db)];
}

export function acaService(h: Hierarchy, las: LaService[], clock: ManualClock, which: 'aca' | 'aca2' = 'aca'): AcaService {
  const e = h[which];
  return new AcaService({
    certificate: e.cert,
    signer: e.key.signer,
    privateScalar: e.key.d,
    encryptionKey: { privateKey: e.enc!.d },
    raCertificates: [h.ra.cert],
    laCertificates: [h.la1.cert, h.la2.cert],
    laKeys: las,
    clock,
  });
}

/** Seeded RNG (mulberry32) for reproducible shuffles. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The RA's PseudonymService with the hierarchy's RA certificate and key, its ACA certificate (`acaFor`, default
 * 'aca'), the policy and its i-periods, and a seeded RNG.
 */
export function pseudonymService(
  h: Hierarchy,
  o: Pick<PseudonymServiceOptions, 'store' | 'aca' | 'clock'> & { la1: LaClient; la2: LaClient; seed: number; acaFor?: 'aca' | 'aca2'; random?: () => number },
): PseudonymService {
  return new PseudonymService({
    store: o.store,
    la1: o.la1,
    la2: o.la2,
    aca: o.aca,
    acaCertificate: h[o.acaFor ?? 'aca'].cert,
    raCertificate: h.ra.cert,
    raSigner: h.ra.key.signer,
    iPeriod: iPeriodParamsOf(h.policy),
    policy: h.policy,
    ...(o.clock ? { clock: o.clock } : {}),
    random: o.random ?? seededRandom(o.seed),
  });
}

/** The EE's certificates from the RA's stored responses to `requestHash` (decrypted, reconstructed, chain checked). */
export async function downloadCertificates(ra: PseudonymService, h: Hierarchy, requestHash: Uint8Array, secrets: ButterflySecrets, clock: ManualClock): Promise<AuthorizationCertificate[]> {
  const out: AuthorizationCertificate[] = [];
  for (const r of await ra.download(requestHash)) {
    out.push(
      await processAuthorizationResponse({
        secrets,
        i: r.i,
        j: r.j,
        kind: r.kind as 'private' | 'cubk',
        response: r.response,
        acaChain: h.acaChain,
        trustAnchors: [h.root.cert],
        clock,
      }),
    );
  }
  return out;
}

export { iPeriodParamsOf };
