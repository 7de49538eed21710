// A small real SCMS for enrollment tests: root -> ICA -> ECA (manager profiles, soft scalars), the RA's device
// registry and the ECA's tables in SQLite files in a temp dir.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import type { Certificate } from '../../../src/codec/index.js';
import { Eca } from '../../../src/engine/eca/eca.js';
import type { EcaOptions } from '../../../src/engine/eca/deps.js';
import { EcaStore } from '../../../src/engine/eca/store.js';
import { generateKeyPair, keyPairSigner, type EeKeyPair } from '../../../src/engine/ee/keys.js';
import { certificateProfile, type Role } from '../../../src/engine/manager/profiles.js';
import { defaultGlobalPolicy, type GlobalPolicy } from '../../../src/engine/policy/index.js';
import { InProcessDeviceRegistry } from '../../../src/engine/ra/registration-registry.js';
import { RegistrationStore } from '../../../src/engine/ra/registration-store.js';
import { canonicalKeyFromBytes, type DeviceType } from '../../../src/engine/ra/registration.js';
import { openDatabase } from '../../../src/engine/store/index.js';
import { buildTbsCertificate, issueExplicitCertificate } from '../../../src/security/certificate.js';
import { ManualClock } from '../../../src/security/time.js';

export const START = '2026-03-01T12:00:00Z';
export const YEAR = 31_556_952;

export interface Hierarchy {
  root: Certificate;
  ica: Certificate;
  eca: Certificate;
  ecaKey: EeKeyPair;
}

/** root and ICA in the policy regions, the ECA in `ecaRegion` only. */
export async function buildHierarchy(policy: GlobalPolicy, now: Date, ecaRegion: number[]): Promise<Hierarchy> {
  const start = new Date(now.getTime() - 86_400_000);
  const make = async (role: Role, name: string, region: number[], issuer: { cert: Certificate; key: EeKeyPair } | 'self', seconds: number) => {
    const key = generateKeyPair('nistP256');
    const profile = certificateProfile(role, { policy });
    const tbs = buildTbsCertificate({
      id: { name },
      validity: { start, durationSeconds: seconds },
      region: { countries: region },
      appPermissions: profile.appPermissions,
      certIssuePermissions: profile.certIssuePermissions,
      certRequestPermissions: profile.certRequestPermissions,
      verifyKey: { curve: 'nistP256', publicKey: key.publicKey },
    });
    const cert = await issueExplicitCertificate({
      tbs,
      issuer: issuer === 'self' ? 'self' : issuer.cert,
      signer: keyPairSigner(issuer === 'self' ? key : issuer.key),
    });
    return { cert, key };
  };
  const root = await make('root', 'root', policy.regions, 'self', 20 * YEAR);
  const ica = await make('ica', 'ica', policy.regions, root, 10 * YEAR);
  const eca = await make('eca', 'eca', ecaRegion, ica, 5 * YEAR);
  return { root: root.cert, ica: ica.cert, eca: eca.cert, ecaKey: eca.key };
}

export interface Env {
  clock: ManualClock;
  policy: GlobalPolicy;
  h: Hierarchy;
  ra: RegistrationStore;
  registry: InProcessDeviceRegistry;
  ecaStore: EcaStore;
  eca: Eca;
  dbs: Kysely<any>[];
  /** A registered device with a fresh canonical key. */
  register(type?: DeviceType, region?: number[]): Promise<{ deviceId: string; canonical: EeKeyPair }>;
  /** Every row of the RA device tables and the ECA tables. */
  snapshot(): Promise<unknown>;
  /** A second Eca over the same stores with other options / identity. */
  withOptions(options: EcaOptions, privateScalar?: bigint | null): Eca;
  close(): Promise<void>;
}

export async function makeEnv(overrides: Partial<GlobalPolicy> = {}): Promise<Env> {
  const dir = mkdtempSync(join(tmpdir(), 'scms-eca-'));
  const clock = new ManualClock(START);
  const policy: GlobalPolicy = {
    ...defaultGlobalPolicy({ policyId: 'test', issueTime: '2026-01-01T00:00:00Z', regions: [840, 124], iPeriodEpoch: '2026-01-05T00:00:00Z' }),
    ...overrides,
  };
  const h = await buildHierarchy(policy, clock.now(), [840]);
  const raDb = await openDatabase<any>(join(dir, 'ra.db'));
  const ecaDb = await openDatabase<any>(join(dir, 'eca.db'));
  const ra = new RegistrationStore(raDb, { clock });
  await ra.migrate();
  const registry = new InProcessDeviceRegistry(ra, { actor: 'eca' });
  const ecaStore = new EcaStore(ecaDb);
  await ecaStore.migrate();
  const identity = (privateScalar: bigint | undefined) => ({
    certificate: h.eca,
    chain: [h.ica, h.root],
    signer: keyPairSigner(h.ecaKey),
    ...(privateScalar === undefined ? {} : { privateScalar }),
  });
  const eca = new Eca({ eca: identity(h.ecaKey.privateKey), registry, policy, clock, store: ecaStore });
  const dump = async (db: Kysely<any>, tables: string[]) => {
    const out: Record<string, unknown[]> = {};
    for (const t of tables) {
      const rows = await db.selectFrom(t).selectAll().execute();
      out[t] = rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v])));
    }
    return out;
  };
  return {
    clock,
    policy,
    h,
    ra,
    registry,
    ecaStore,
    eca,
    dbs: [raDb, ecaDb],
    async register(type: DeviceType = 'obu', region?: number[]) {
      const canonical = generateKeyPair('nistP256');
      const r = await ra.register({ deviceType: type, key: canonicalKeyFromBytes(canonical.publicKey), ...(region ? { region } : {}) }, 'test');
      return { deviceId: r.device.deviceId, canonical };
    },
    async snapshot() {
      return {
        ra: await dump(raDb, ['ra_devices', 'ra_device_events', 'ra_device_certificates']),
        eca: await dump(ecaDb, ['eca_requests', 'eca_enrollment_certificates']),
      };
    },
    withOptions(options, privateScalar) {
      return new Eca({
        eca: identity(privateScalar === null ? undefined : (privateScalar ?? h.ecaKey.privateKey)),
        registry,
        policy,
        clock,
        store: ecaStore,
        options,
      });
    },
    async close() {
      await raDb.destroy();
      await ecaDb.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
