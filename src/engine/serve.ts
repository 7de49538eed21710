// What `scms serve ra|eca|all` runs: configuration (config.ts), the trust directory (manager/trust-dir.ts), the
// component keys from its keystore (passphrase SCMS_KEYSTORE_PASSPHRASE, PKCS#11 PIN SCMS_PKCS11_PIN), one
// database per component in the data directory, and the components' routes on one server (http/service.ts).
// `all` also runs LA1, LA2 and the ACA in-process behind the RA's authorization interface (buildAuthorization);
// timing from SCMS_RA_PROCESSING_DELAY_S, SCMS_RA_WORKER_POLL_MS, SCMS_RA_I_PERIODS (authorizationSettings).
import { hkdfSync } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import type { Kysely } from 'kysely';
import { type KeyStores } from '../hsm/index.js';
import { keyStoreSigner, type Signer } from '../security/signer.js';
import { systemClock, type Clock } from '../security/time.js';
import type { Certificate } from '../codec/index.js';
import { ConfigError, loadServiceConfig, requirePeer, type ComponentName, type ServiceConfig, type ServiceFlags } from './config.js';
import { AcaService } from './aca/aca.js';
import type { EcaDeps } from './eca/deps.js';
import { registerEca } from './eca/routes.js';
import { EcaStore } from './eca/store.js';
import type { Logger } from './http/logger.js';
import { startService, type RunningService, type StartServiceOptions } from './http/service.js';
import type { ScmsServer } from './http/server.js';
import { LaService, LaStore, laIdOctets } from './la/la.js';
import { openStores } from './manager/init.js';
import { iPeriodParamsOf } from './policy/format.js';
import { JobQueue } from './queue/index.js';
import { authorizationWorker, registrationEnrollmentLookup, type AuthorizationDeps } from './ra/authorization.js';
import { AuthorizationStore } from './ra/authorization-store.js';
import { PseudonymService, PseudonymStore } from './ra/pseudonym.js';
import { loadTrustDir, type TrustDir } from './manager/trust-dir.js';
import { registerRa } from './ra/index.js';
import { HttpDeviceRegistry, InProcessDeviceRegistry } from './ra/registration-registry.js';
import { RegistrationStore } from './ra/registration-store.js';
import type { DeviceRegistry } from './ra/registration.js';
import { openDatabase } from './store/index.js';

export const SERVE_TARGETS = ['ra', 'eca', 'all'] as const;
export type ServeTarget = (typeof SERVE_TARGETS)[number];

/** Components each target runs. */
export function componentsOf(target: ServeTarget): ComponentName[] {
  if (target === 'ra') return ['ra'];
  if (target === 'eca') return ['eca'];
  return ['ra', 'eca'];
}

/**
 * Components a target runs in-process behind another one's routes (no routes of their own, one database each):
 * under `all`, LA1, LA2 and the ACA serve the RA's authorization pipeline.
 */
export function backendsOf(target: ServeTarget): ComponentName[] {
  return target === 'all' ? ['aca', 'la1', 'la2'] : [];
}

export interface ServeOptions {
  flags?: ServiceFlags;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  clock?: Clock;
  logger?: Logger;
  signals?: StartServiceOptions['signals'];
}

export interface ServeResult extends RunningService {
  config: ServiceConfig;
  /** Notes for the operator (e.g. a key not available). */
  warnings: string[];
}

/** Starts `scms serve <target>`; resolves once listening. */
export async function serve(target: ServeTarget, options: ServeOptions = {}): Promise<ServeResult> {
  const env = options.env ?? process.env;
  const clock = options.clock ?? systemClock;
  // One configuration check over every component that gets a database; `components` lists the ones with routes.
  const loaded = loadServiceConfig([...componentsOf(target), ...backendsOf(target)], options.flags ?? {}, { env, cwd: options.cwd });
  const config: ServiceConfig = { ...loaded, components: componentsOf(target) };
  const authOptions = authorizationSettings(env);
  const backends = backendsOf(target);
  const trust = openTrust(config.trustDir);
  const warnings: string[] = [];
  const running = await startService(
    config,
    async (server) => {
      mkdirSync(config.dataDir, { recursive: true });
      const stores = openStores(config.trustDir, {
        ...(env.SCMS_KEYSTORE_PASSPHRASE ? { passphrase: env.SCMS_KEYSTORE_PASSPHRASE } : {}),
        ...(env.SCMS_PKCS11_PIN ? { pin: env.SCMS_PKCS11_PIN } : {}),
        ...(env.SCMS_PKCS11_MODULE ? { modulePath: env.SCMS_PKCS11_MODULE } : {}),
      });
      server.onShutdown('keystores', () => stores.close());
      const raStore = config.components.includes('ra')
        ? await mountRa(server, config, trust, stores, clock, warnings, backends.length ? authOptions : undefined)
        : undefined;
      if (config.components.includes('eca')) await mountEca(server, config, trust, stores, clock, raStore);
    },
    { ...(options.logger ? { logger: options.logger } : {}), ...(options.signals !== undefined ? { signals: options.signals } : {}) },
  );
  for (const w of warnings) running.server.logger.warn(w);
  return { ...running, config, warnings };
}

/** Loads the trust directory; any problem in it stops the start. */
export function openTrust(dir: string): TrustDir {
  let trust: TrustDir;
  try {
    trust = loadTrustDir(dir);
  } catch (e) {
    throw new ConfigError([(e as Error).message]);
  }
  if (trust.problems.length) throw new ConfigError(trust.problems.map((p) => `${dir}/${p.file}: ${p.reason}`));
  return trust;
}

/** A component's signer from the manifest's key URI, or undefined (with a warning) if the key cannot be opened. */
async function componentSigner(trust: TrustDir, stores: KeyStores, name: string, warnings: string[]): Promise<Signer | undefined> {
  const c = trust.byName.get(name);
  if (!c) return undefined;
  try {
    return keyStoreSigner(stores, await stores.open(c.keyUri));
  } catch (e) {
    warnings.push(
      `the ${name} key ${c.keyUri} cannot be opened (${(e as Error).message}); set SCMS_KEYSTORE_PASSPHRASE or SCMS_PKCS11_PIN. ` +
        `Routes that sign as ${name} answer 503.`,
    );
    return undefined;
  }
}

async function openComponentDb(server: ScmsServer, config: ServiceConfig, name: ComponentName): Promise<Kysely<any>> {
  const db = await openDatabase<any>(config.databases[name]!);
  server.onShutdown(`${name}.db`, () => db.destroy());
  return db;
}

async function mountRa(
  server: ScmsServer,
  config: ServiceConfig,
  trust: TrustDir,
  stores: KeyStores,
  clock: Clock,
  warnings: string[],
  authOptions?: AuthorizationSettings,
): Promise<RegistrationStore> {
  const db = await openComponentDb(server, config, 'ra');
  const store = new RegistrationStore(db, { clock });
  await store.migrate();
  server.addHealthCheck('ra.db', () => store.ping());
  const raSigner = await componentSigner(trust, stores, 'ra', warnings);
  let authorization: AuthorizationDeps | undefined;
  let worker: ReturnType<typeof authorizationWorker> | undefined;
  if (authOptions && raSigner) {
    const built = await buildAuthorization(server, config, trust, stores, clock, warnings, { db, store, raSigner, settings: authOptions });
    if (built) ({ deps: authorization, worker } = built);
  } else if (authOptions) warnings.push('the RA key cannot be opened: POST/GET /v3/authorization-certificate are not mounted');
  await server.registerComponent({
    name: 'ra',
    register: registerRa,
    deps: {
      store,
      operatorToken: config.operatorToken,
      componentToken: config.componentToken,
      trust,
      clock,
      ...(raSigner ? { raSigner } : {}),
      ...(authorization ? { authorization } : {}),
    },
  });
  if (worker) {
    // Hooks run last-registered-first: the worker stops before the databases (opened above) close.
    const w = worker;
    w.start();
    server.onShutdown('ra.authorization-worker', () => w.stop());
  }
  return store;
}

/** Authorization timing from the environment (tests shorten it); defaults are the production ones. */
export interface AuthorizationSettings {
  /** SCMS_RA_PROCESSING_DELAY_S: nextDlTime = now + this (default 60). */
  processingDelaySeconds: number;
  /** SCMS_RA_WORKER_POLL_MS: the authorization worker's idle poll interval (default 1000). */
  pollIntervalMs: number;
  /** SCMS_RA_I_PERIODS: i-periods issued per request (default 1). */
  iPeriodsPerRequest: number;
}

export function authorizationSettings(env: NodeJS.ProcessEnv): AuthorizationSettings {
  const issues: string[] = [];
  const int = (name: string, dflt: number, min: number, max: number): number => {
    const v = env[name];
    if (v === undefined || v === '') return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) issues.push(`${name}: ${JSON.stringify(v)} is not an integer in [${min}, ${max}]`);
    return n;
  };
  const settings = {
    processingDelaySeconds: int('SCMS_RA_PROCESSING_DELAY_S', 60, 0, 86_400),
    pollIntervalMs: int('SCMS_RA_WORKER_POLL_MS', 1000, 10, 600_000),
    iPeriodsPerRequest: int('SCMS_RA_I_PERIODS', 1, 1, 1024),
  };
  if (issues.length) throw new ConfigError(issues);
  return settings;
}

/**
 * An LA's master secret (the seed of its linkage seeds, la.ts), never stored: HKDF-SHA256 over x(d * Q) where d
 * is the LA's signing key and Q its own public key. Only the key holder can compute it, it is stable for the life
 * of the key, and it works for soft and PKCS#11 keys alike (a plain ECDH derive; the scalar never leaves the token).
 * Info binds the laId, so LA1 and LA2 differ even if they were to share a key.
 */
export async function laMasterSecret(stores: KeyStores, keyUri: string, laId: number): Promise<Uint8Array> {
  const handle = await stores.open(keyUri);
  const z = await stores.ecdh(keyUri, handle.publicKey);
  try {
    const info = new Uint8Array([...new TextEncoder().encode('scms-la/master-secret/v1'), ...laIdOctets(laId)]);
    return new Uint8Array(hkdfSync('sha256', z, new Uint8Array(0), info, 32));
  } finally {
    z.fill(0);
  }
}

/** A keystore ECDH as an ECIES decryption callback (the private key stays in the keystore). */
function keystoreDecryption(stores: KeyStores, uri: string) {
  return { ecdh: (v: Uint8Array) => stores.ecdh(uri, v) };
}

/**
 * The RA's authorization pipeline with in-process LA1, LA2 and ACA (`serve all`): one database each (config),
 * keys from the keystore (the ACA's private scalar too when the keystore lets it out: implicit certificates need it).
 * Returns undefined, with a warning, when a certificate or key is missing: the RA then serves without it.
 */
async function buildAuthorization(
  server: ScmsServer,
  config: ServiceConfig,
  trust: TrustDir,
  stores: KeyStores,
  clock: Clock,
  warnings: string[],
  ra: { db: Kysely<any>; store: RegistrationStore; raSigner: Signer; settings: AuthorizationSettings },
): Promise<{ deps: AuthorizationDeps; worker: ReturnType<typeof authorizationWorker> } | undefined> {
  const skip = (why: string) => {
    warnings.push(`${why}: POST/GET /v3/authorization-certificate are not mounted`);
    return undefined;
  };
  const policy = trust.globalPolicy?.json;
  if (!policy) return skip('no global policy in the trust directory');
  const raC = trust.byName.get('ra');
  const acaC = trust.byName.get('aca');
  const laCs = [trust.byName.get('la1'), trust.byName.get('la2')];
  for (const [n, c] of [['ra', raC], ['aca', acaC], ['la1', laCs[0]], ['la2', laCs[1]]] as const) {
    if (!c?.certificate) return skip(`no ${n} certificate in the trust directory`);
  }
  if (!raC!.encryptionKeyUri || !acaC!.encryptionKeyUri) return skip('the RA or ACA has no encryption key in the trust directory');
  const laIds = laCs.map((c) => c!.laId);
  if (laIds[0] === undefined || laIds[1] === undefined) return skip('an LA has no laId in the trust directory');

  let keys;
  try {
    const acaHandle = await stores.open(acaC!.keyUri);
    await stores.open(acaC!.encryptionKeyUri);
    await stores.open(raC!.encryptionKeyUri);
    keys = {
      acaSigner: keyStoreSigner(stores, acaHandle),
      acaScalar: await stores.exportPrivateScalar(acaC!.keyUri).catch(() => undefined),
      la: await Promise.all(
        laCs.map(async (c, k) => ({ signer: keyStoreSigner(stores, await stores.open(c!.keyUri)), master: await laMasterSecret(stores, c!.keyUri, laIds[k]!) })),
      ),
    };
  } catch (e) {
    return skip(`an ACA, LA or RA encryption key cannot be opened (${(e as Error).message})`);
  }
  if (keys.acaScalar === undefined) warnings.push('the ACA key does not export its private scalar (PKCS#11): only explicit certificates can be issued');

  const las: LaService[] = [];
  for (const [k, name] of (['la1', 'la2'] as const).entries()) {
    const store = new LaStore(await openComponentDb(server, config, name));
    await store.migrate();
    server.addHealthCheck(`${name}.db`, async () => {
      await store.db.selectFrom('la_chains').select('la_id').limit(1).execute();
    });
    las.push(new LaService({ laId: laIds[k]!, store, masterSecret: keys.la[k]!.master, certificate: laCs[k]!.certificate!, signer: keys.la[k]!.signer, clock }));
  }
  // The ACA keeps no table yet; its database is opened so `all` has its file and health check in place.
  const acaDb = await openComponentDb(server, config, 'aca');
  server.addHealthCheck('aca.db', async () => {
    await acaDb.selectNoFrom((eb) => eb.lit(1).as('one')).execute();
  });
  const aca = new AcaService({
    certificate: acaC!.certificate!,
    signer: keys.acaSigner,
    ...(keys.acaScalar !== undefined ? { privateScalar: keys.acaScalar } : {}),
    encryptionKey: keystoreDecryption(stores, acaC!.encryptionKeyUri),
    raCertificates: [raC!.certificate!],
    laCertificates: laCs.map((c) => c!.certificate!),
    laKeys: las,
    clock,
  });

  const jobs = new JobQueue(ra.db, { clock });
  await jobs.migrate();
  const requests = new AuthorizationStore(ra.db);
  await requests.migrate();
  const pseudonyms = new PseudonymStore(ra.db);
  await pseudonyms.migrate();
  const service = new PseudonymService({
    store: pseudonyms,
    la1: las[0]!,
    la2: las[1]!,
    aca,
    acaCertificate: acaC!.certificate!,
    raCertificate: raC!.certificate!,
    raSigner: ra.raSigner,
    iPeriod: iPeriodParamsOf(policy),
    policy,
    clock,
  });
  const certsOf = (...roles: string[]) => trust.certificates.filter((c) => roles.includes(c.role) && c.certificate).map((c) => c.certificate!);
  const deps: AuthorizationDeps = {
    raCertificate: raC!.certificate!,
    raSigner: ra.raSigner,
    raDecryption: keystoreDecryption(stores, raC!.encryptionKeyUri),
    trustAnchors: trust.roots.filter((c) => c.certificate).map((c) => c.certificate!),
    caCertificates: certsOf('eca', 'ica'),
    ecaCertificates: certsOf('eca'),
    devices: registrationEnrollmentLookup(ra.store),
    jobs,
    requests,
    pseudonyms,
    policy,
    clock,
    options: { processingDelaySeconds: ra.settings.processingDelaySeconds, iPeriodsPerRequest: ra.settings.iPeriodsPerRequest },
  };
  const worker = authorizationWorker({
    jobs,
    service,
    registry: new InProcessDeviceRegistry(ra.store, { actor: 'ra' }),
    worker: {
      pollIntervalMs: ra.settings.pollIntervalMs,
      onError: (e, job) => server.logger.error({ err: e, jobId: job?.id }, 'authorization worker error'),
    },
  });
  return { deps, worker };
}

/**
 * The ECA: its certificate and issuer chain from the trust directory, its key from the keystore (the private
 * scalar too when the keystore lets it out: implicit certificates need it), the RA's device registry (in-process
 * under `all`, the RA peer's internal API with the component token otherwise), the global policy.
 */
async function mountEca(
  server: ScmsServer,
  config: ServiceConfig,
  trust: TrustDir,
  stores: KeyStores,
  clock: Clock,
  raStore: RegistrationStore | undefined,
): Promise<void> {
  const name = 'eca';
  const c = trust.byName.get(name);
  if (!c?.certificate) throw new ConfigError([`${config.trustDir}: no ECA certificate '${name}' in the trust directory`]);
  const chain: Certificate[] = [];
  for (let issuer = c.issuer; issuer !== 'self'; ) {
    const ic = trust.byName.get(issuer);
    if (!ic?.certificate || chain.length > 8) throw new ConfigError([`${config.trustDir}: the ECA's issuer '${issuer}' is missing`]);
    chain.push(ic.certificate);
    issuer = ic.issuer;
  }
  const policy = trust.globalPolicy?.json;
  if (!policy) throw new ConfigError([`${config.trustDir}: no global policy`]);
  let handle;
  try {
    handle = await stores.open(c.keyUri);
  } catch (e) {
    throw new ConfigError([`the ECA key ${c.keyUri} cannot be opened: ${(e as Error).message} (set SCMS_KEYSTORE_PASSPHRASE or SCMS_PKCS11_PIN)`]);
  }
  const privateScalar = await stores.exportPrivateScalar(c.keyUri).catch(() => undefined);

  let registry: DeviceRegistry;
  if (raStore) registry = new InProcessDeviceRegistry(raStore, { actor: 'eca' });
  else {
    const baseUrl = requirePeer(config, 'ra');
    if (!config.componentToken) throw new ConfigError(['the ECA needs the component token to ask the RA (--component-token or SCMS_COMPONENT_TOKEN)']);
    registry = new HttpDeviceRegistry({ baseUrl, token: config.componentToken });
  }

  const db = await openComponentDb(server, config, 'eca');
  const store = new EcaStore(db);
  await store.migrate();
  server.addHealthCheck('eca.db', async () => {
    await store.counts();
  });
  await server.registerComponent({
    name: 'eca',
    register: registerEca,
    deps: {
      eca: {
        certificate: c.certificate,
        chain,
        signer: keyStoreSigner(stores, handle),
        ...(privateScalar !== undefined ? { privateScalar } : {}),
      },
      registry,
      policy,
      clock,
      store,
    } satisfies EcaDeps,
  });
}
