// The SCMS components a provisioning batch issues through, built in process from a trust directory, its keystore
// and the data directory (one SQLite database per component, the same files `scms serve` uses: ra.db, eca.db;
// plus la1.db, la2.db). The construction follows src/engine/serve.ts (mountRa / mountEca) and
// test/engine/pipeline.test.ts (LA / ACA / RA pseudonym service); copied here rather than shared because serve.ts
// is being extended elsewhere.
//
// LA master secrets: la/master-secret.ts, the same derivation `scms serve` uses, so the served LAs continue the
// linkage chains of provisioned devices. Never written.
// The ACA decrypts through the keystore (ECDH), its private scalar is needed only for implicit certificates.
//
// The batch's hot path (registration, factory enrollment, records of authorization batches) goes through
// RegistrationBatch (ra/registration-batch.ts) and EcaFactory (eca/factory.ts): prepared statements on their own
// connections to ra.db and eca.db, many devices per transaction. Every database is opened with synchronous=FULL:
// a recorded step survives power loss, so the batch state never runs ahead of the SCMS records.
import { mkdirSync } from 'node:fs';
import type BetterSqlite3 from 'better-sqlite3';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import type { Certificate } from '../../codec/index.js';
import type { KeyStores } from '../../hsm/index.js';
import { keyStoreSigner, type Signer } from '../../security/signer.js';
import type { Clock } from '../../security/time.js';
import { AcaService } from '../aca/aca.js';
import { Eca } from '../eca/eca.js';
import { EcaFactory } from '../eca/factory.js';
import { EcaStore } from '../eca/store.js';
import { LaService, LaStore } from '../la/la.js';
import { laMasterSecret } from '../la/master-secret.js';
export { laMasterSecret };
import type { TrustDir } from '../manager/trust-dir.js';
import { iPeriodParamsOf, type GlobalPolicy } from '../policy/index.js';
import { PseudonymService, PseudonymStore } from '../ra/pseudonym.js';
import { InProcessDeviceRegistry } from '../ra/registration-registry.js';
import { RegistrationBatch } from '../ra/registration-batch.js';
import { RegistrationStore } from '../ra/registration-store.js';
import { openDatabase } from '../store/index.js';
import { openRawSqlite } from './state.js';

export class ProvisionSetupError extends Error {
  override readonly name = 'ProvisionSetupError';
}

export interface ProvisionComponents {
  policy: GlobalPolicy;
  registration: RegistrationStore;
  /** Many-device registration and certificate records (prepared statements on ra.db). */
  registrationBatch: RegistrationBatch;
  eca: Eca;
  /** The ECA's factory enrollment path (eca/factory.ts). */
  ecaFactory: EcaFactory;
  ecaStore: EcaStore;
  /** [ECA, ICA..., root] as the ECA sends it. */
  ecaChain: Certificate[];
  /** Trust anchors (the roots of the trust directory). */
  roots: Certificate[];
  raCertificate: Certificate;
  /** Present when the trust directory has an ACA and two LAs. */
  pseudonyms?: { service: PseudonymService; store: PseudonymStore; la1: LaService; la2: LaService; acaChain: Certificate[] };
  close(): Promise<void>;
}

function cert(trust: TrustDir, name: string): Certificate {
  const c = trust.byName.get(name)?.certificate;
  if (!c) throw new ProvisionSetupError(`${trust.dir}: no '${name}' certificate in the trust directory`);
  return c;
}

/** The certificate of `name` then its issuers up to the root. */
export function chainOf(trust: TrustDir, name: string): Certificate[] {
  const out = [cert(trust, name)];
  for (let issuer = trust.byName.get(name)!.issuer; issuer !== 'self'; ) {
    const ic = trust.byName.get(issuer);
    if (!ic?.certificate || out.length > 8) throw new ProvisionSetupError(`${trust.dir}: the issuer '${issuer}' of '${name}' is missing`);
    out.push(ic.certificate);
    issuer = ic.issuer;
  }
  return out;
}

async function signerOf(trust: TrustDir, stores: KeyStores, name: string): Promise<Signer> {
  const c = trust.byName.get(name)!;
  try {
    return keyStoreSigner(stores, await stores.open(c.keyUri));
  } catch (e) {
    throw new ProvisionSetupError(`the ${name} key ${c.keyUri} cannot be opened: ${(e as Error).message} (set SCMS_KEYSTORE_PASSPHRASE or SCMS_PKCS11_PIN)`);
  }
}

async function laMaster(stores: KeyStores, trust: TrustDir, name: string, laId: number): Promise<Uint8Array> {
  try {
    return await laMasterSecret(stores, trust.byName.get(name)!.keyUri, laId);
  } catch (e) {
    throw new ProvisionSetupError(`the ${name} master secret cannot be derived: ${(e as Error).message}`);
  }
}

export interface OpenComponentsOptions {
  trust: TrustDir;
  stores: KeyStores;
  dataDir: string;
  clock: Clock;
  env: NodeJS.ProcessEnv;
  /** Build the LA / ACA / RA pseudonym pipeline (needs aca, la1, la2 in the trust directory). */
  pseudonyms: boolean;
}

export async function openComponents(o: OpenComponentsOptions): Promise<ProvisionComponents> {
  const { trust, stores, clock } = o;
  const policy = trust.globalPolicy?.json;
  if (!policy) throw new ProvisionSetupError(`${trust.dir}: no global policy`);
  mkdirSync(o.dataDir, { recursive: true });
  const dbs: Kysely<any>[] = [];
  const raws: BetterSqlite3.Database[] = [];
  const db = async (name: string) => {
    const d = await openDatabase<any>(`sqlite:${join(o.dataDir, `${name}.db`)}?synchronous=full`);
    dbs.push(d);
    return d;
  };
  const raw = (name: string) => {
    const d = openRawSqlite(join(o.dataDir, `${name}.db`));
    raws.push(d);
    return d;
  };
  const close = async () => {
    for (const d of raws.splice(0)) d.close();
    for (const d of dbs.splice(0)) await d.destroy();
  };
  try {
    const raDb = await db('ra');
    const registration = new RegistrationStore(raDb, { clock });
    await registration.migrate();
    const ecaStore = new EcaStore(await db('eca'));
    await ecaStore.migrate();
    const ecaChain = chainOf(trust, 'eca');
    const ecaEntry = trust.byName.get('eca')!;
    const privateScalar = await stores.exportPrivateScalar(ecaEntry.keyUri).catch(() => undefined);
    const identity = { certificate: ecaChain[0]!, chain: ecaChain.slice(1), signer: await signerOf(trust, stores, 'eca'), ...(privateScalar !== undefined ? { privateScalar } : {}) };
    const eca = new Eca({
      eca: identity,
      registry: new InProcessDeviceRegistry(registration, { actor: 'eca' }),
      policy,
      clock,
      store: ecaStore,
    });
    const registrationBatch = new RegistrationBatch(raw('ra'), clock);
    const ecaFactory = new EcaFactory({
      eca,
      identity,
      db: raw('eca'),
      registry: { markEnrolledMany: (items) => registrationBatch.markEnrolledMany(items, 'eca') },
      policy,
      clock,
    });
    const roots = trust.roots.map((r) => r.certificate).filter((c): c is Certificate => c !== undefined);
    const raCertificate = cert(trust, 'ra');
    const out: ProvisionComponents = { policy, registration, registrationBatch, eca, ecaFactory, ecaStore, ecaChain, roots, raCertificate, close };
    if (!o.pseudonyms) return out;

    const las: LaService[] = [];
    for (const name of ['la1', 'la2'] as const) {
      const store = new LaStore(await db(name));
      await store.migrate();
      const laId = trust.byName.get(name)?.laId;
      if (laId === undefined) throw new ProvisionSetupError(`${trust.dir}: ${name} has no laId`);
      las.push(new LaService({ laId, store, masterSecret: await laMaster(stores, trust, name, laId), certificate: cert(trust, name), signer: await signerOf(trust, stores, name), clock }));
    }
    const acaChain = chainOf(trust, 'aca');
    const acaEntry = trust.byName.get('aca')!;
    if (!acaEntry.encryptionKeyUri) throw new ProvisionSetupError(`${trust.dir}: the ACA has no encryption key`);
    const encUri = acaEntry.encryptionKeyUri;
    await signerOf(trust, stores, 'aca'); // opens the keystore (passphrase / PIN problems reported here)
    const acaScalar = await stores.exportPrivateScalar(acaEntry.keyUri).catch(() => undefined);
    const aca = new AcaService({
      certificate: acaChain[0]!,
      signer: await signerOf(trust, stores, 'aca'),
      ...(acaScalar !== undefined ? { privateScalar: acaScalar } : {}),
      encryptionKey: { ecdh: (v: Uint8Array) => stores.ecdh(encUri, v) },
      raCertificates: [raCertificate],
      laCertificates: [cert(trust, 'la1'), cert(trust, 'la2')],
      laKeys: las,
      clock,
    });
    const store = new PseudonymStore(raDb);
    await store.migrate();
    const service = new PseudonymService({
      store,
      la1: las[0]!,
      la2: las[1]!,
      aca,
      acaCertificate: acaChain[0]!,
      raCertificate,
      raSigner: await signerOf(trust, stores, 'ra'),
      iPeriod: iPeriodParamsOf(policy),
      policy,
      clock,
    });
    out.pseudonyms = { service, store, la1: las[0]!, la2: las[1]!, acaChain };
    return out;
  } catch (e) {
    await close();
    throw e;
  }
}
