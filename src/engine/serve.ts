// What `scms serve ra|eca|aca|la1|la2|all` runs: configuration (config.ts), the trust directory
// (manager/trust-dir.ts), the component keys from its keystore (passphrase SCMS_KEYSTORE_PASSPHRASE, PKCS#11 PIN
// SCMS_PKCS11_PIN), one database per component (SQLite files in the data directory, or PostgreSQL schemas), and the
// components' routes on one server (http/service.ts).
// `all` runs LA1, LA2 and the ACA in-process behind the RA's authorization interface (buildAuthorization); `ra`
// alone reaches them over HTTP when given `--peer la1=... --peer la2=... --peer aca=...`; `aca` reaches the LAs'
// key deliveries with `--peer la1=... --peer la2=...`; `eca` asks the RA peer's registry. The component token
// (--component-token / SCMS_COMPONENT_TOKEN) guards the internal routes and is presented to the peers.
// Timing from SCMS_RA_PROCESSING_DELAY_S, SCMS_RA_WORKER_POLL_MS, SCMS_RA_WORKER_LEASE_MS, SCMS_RA_I_PERIODS.
import { mkdirSync } from 'node:fs';
import type { Kysely } from 'kysely';
import { type KeyStores } from '../hsm/index.js';
import { keyStoreSigner, type Signer } from '../security/signer.js';
import { systemClock, type Clock } from '../security/time.js';
import type { Certificate } from '../codec/index.js';
import { ConfigError, loadServiceConfig, requirePeer, type ComponentName, type ServiceConfig, type ServiceFlags } from './config.js';
import { AcaService, type AcaClient } from './aca/aca.js';
import { HttpAcaClient } from './aca/http-client.js';
import { registerAca, type AcaHttpDeps } from './aca/routes.js';
import type { EcaDeps } from './eca/deps.js';
import { Eca } from './eca/eca.js';
import { registerEca } from './eca/routes.js';
import { inProcessEcaClient, type EcaClient } from './eca/successor.js';
import { HttpEcaClient, registerEcaSuccessorRoute } from './eca/successor-http.js';
import { EcaStore } from './eca/store.js';
import type { Logger } from './http/logger.js';
import { startService, type RunningService, type StartServiceOptions } from './http/service.js';
import type { ScmsServer } from './http/server.js';
import { HttpLaClient, HttpLaKeyClient } from './la/http-client.js';
import { PeerTrust, type PeerTrustOptions } from './la/http-spdu.js';
import { LaService, LaStore, type LaClient, type LaKeyClient } from './la/la.js';
import { laMasterSecret } from './la/master-secret.js';
export { laMasterSecret };
import { registerLa, type LaHttpDeps } from './la/routes.js';
import { openStores } from './manager/init.js';
import { iPeriodParamsOf } from './policy/format.js';
import { JobQueue } from './queue/index.js';
import { authorizationWorker, registrationEnrollmentLookup, type AuthorizationDeps } from './ra/authorization.js';
import { AuthorizationStore } from './ra/authorization-store.js';
import { PseudonymService, PseudonymStore, type StoredResponse } from './ra/pseudonym.js';
import { loadTrustDir, type TrustDir } from './manager/trust-dir.js';
import { registerRa } from './ra/index.js';
import { HttpDeviceRegistry, InProcessDeviceRegistry } from './ra/registration-registry.js';
import { RegistrationStore } from './ra/registration-store.js';
import { registerSuccessorEnrollment, SUCCESSOR_ENROLLMENT_PATH, successorWorker, type SuccessorDeps } from './ra/successor.js';
import type { DeviceRegistry } from './ra/registration.js';
import { openDatabase } from './store/index.js';
import { CrlService, type ChainLookup, type RevocationSeedSource } from './crl/service.js';
import { CrlStore } from './crl/store.js';
import { HttpLaSeedClient } from './crl/la-seed-client.js';

export const SERVE_TARGETS = ['ra', 'eca', 'aca', 'la1', 'la2', 'all'] as const;
export type ServeTarget = (typeof SERVE_TARGETS)[number];

/** Components each target runs. */
export function componentsOf(target: ServeTarget): ComponentName[] {
  return target === 'all' ? ['ra', 'eca'] : [target];
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
      const ctx: MountContext = { server, config, trust, stores, clock, warnings, env, ecaStore: undefined };
      for (const la of ['la1', 'la2'] as const) if (config.components.includes(la)) await mountLa(ctx, la);
      if (config.components.includes('aca')) await mountAca(ctx);
      const ra = config.components.includes('ra') ? await mountRa(ctx, authOptions, backends.length > 0) : undefined;
      const ecaEngine = config.components.includes('eca') ? await mountEca(server, config, trust, stores, clock, ra?.store, (s) => (ctx.ecaStore = s)) : undefined;
      // Successor enrollment (ra/successor.ts): the RA reaches the ECA in-process under `all`, over HTTP (the ECA
      // peer's component-token route, eca/successor-http.ts) under `serve ra --peer eca=URL`.
      if (ra && ecaEngine) await mountSuccessor(ctx, ra, inProcessEcaClient(ecaEngine), authOptions);
      else if (ra && config.peers.eca) {
        if (!config.componentToken) warnings.push(`no component token: POST/GET ${SUCCESSOR_ENROLLMENT_PATH} are not mounted (the ECA peer's route needs it)`);
        else await mountSuccessor(ctx, ra, new HttpEcaClient({ baseUrl: config.peers.eca, token: config.componentToken }), authOptions);
      }
      if (ecaEngine && !ra) await server.app.register(async (child) => registerEcaSuccessorRoute(child, { eca: ecaEngine, token: config.componentToken }));
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

/** What the mount functions share. */
interface MountContext {
  server: ScmsServer;
  config: ServiceConfig;
  trust: TrustDir;
  stores: KeyStores;
  clock: Clock;
  warnings: string[];
  env: NodeJS.ProcessEnv;
  /** The in-process ECA's store (set once mounted): enrollment certificates for hash-based revocation. */
  ecaStore: EcaStore | undefined;
}

/**
 * The RA. Its authorization interface runs with in-process LAs and ACA under `all` (`inProcess`), over HTTP to
 * the LA1, LA2 and ACA peers when all three are configured, and is not mounted otherwise.
 */
async function mountRa(ctx: MountContext, settings: AuthorizationSettings, inProcess: boolean): Promise<MountedRa> {
  const { server, config, trust, stores, clock, warnings } = ctx;
  const db = await openComponentDb(server, config, 'ra');
  const store = new RegistrationStore(db, { clock });
  await store.migrate();
  server.addHealthCheck('ra.db', () => store.ping());
  const raSigner = await componentSigner(trust, stores, 'ra', warnings);
  const peers = (['la1', 'la2', 'aca'] as const).filter((p) => config.peers[p] !== undefined);
  if (!inProcess && peers.length > 0 && peers.length < 3) {
    throw new ConfigError([`the RA's authorization interface needs all of --peer la1=URL, la2=URL and aca=URL (given: ${peers.join(', ')})`]);
  }
  const wanted = inProcess || peers.length === 3;
  let authorization: AuthorizationDeps | undefined;
  let worker: ReturnType<typeof authorizationWorker> | undefined;
  let links: RevocationLinks | undefined;
  if (wanted && raSigner) {
    const built = await buildAuthorization(ctx, { db, store, raSigner, settings, inProcess });
    if (built) ({ deps: authorization, worker, links } = built);
  } else if (wanted) warnings.push('the RA key cannot be opened: POST/GET /v3/authorization-certificate are not mounted');
  const revocation = await mountCrl(ctx, db, store, links);
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
      ...(revocation ? { revocation, crl: revocation.service } : {}),
    },
  });
  if (worker) {
    // Hooks run last-registered-first: the worker stops before the databases (opened above) close.
    const w = worker;
    w.start();
    server.onShutdown('ra.authorization-worker', () => w.stop());
  }
  return { store, db, ...(raSigner ? { raSigner } : {}) };
}

/** What CRL generation needs to revoke a device's pseudonym chains: the RA's chain ids and (in-process) the LAs. */
interface RevocationLinks {
  chains: ChainLookup;
  las?: readonly [RevocationSeedSource, RevocationSeedSource];
}

/**
 * CRL generation in the RA process (crl/service.ts): the CRL signer's key from the keystore, its tables in the RA
 * database, a refresh every SCMS_CRL_REFRESH_MS (default 60000). Not mounted (a warning) without the CRL signer's
 * certificate or key or a global policy. The LAs' seeds come from the in-process LAs under `serve all`, from the LA
 * peers' revocation-seed route under `serve ra --peer la1=... --peer la2=...` (crl/la-seed-client.ts).
 */
async function mountCrl(ctx: MountContext, db: Kysely<any>, registration: RegistrationStore, links: RevocationLinks | undefined) {
  const { server, trust, stores, clock, warnings, env } = ctx;
  const c = trust.byName.get('crl-signer');
  const policy = trust.globalPolicy?.json;
  if (!c?.certificate || !policy) {
    warnings.push('no CRL signer certificate or no global policy: no CRL is issued and POST /v3/devices/:id/revoke is not mounted');
    return undefined;
  }
  const signer = await componentSigner(trust, stores, 'crl-signer', warnings);
  if (!signer) return undefined;
  const issuer = c.issuer === 'self' ? undefined : trust.byName.get(c.issuer)?.certificate;
  const refreshMs = Number(env.SCMS_CRL_REFRESH_MS ?? 60_000);
  if (!Number.isInteger(refreshMs) || refreshMs < 100) throw new ConfigError([`SCMS_CRL_REFRESH_MS: ${JSON.stringify(env.SCMS_CRL_REFRESH_MS)} is not an integer >= 100`]);
  const store = new CrlStore(db);
  await store.migrate();
  const service = new CrlService({
    store,
    registration,
    certificate: c.certificate,
    signer,
    ...(issuer ? { issuer } : {}),
    iPeriod: iPeriodParamsOf(policy),
    nextUpdateSeconds: policy['crl-nextUpdate'],
    ...(links ? { chains: links.chains, ...(links.las ? { las: links.las } : {}) } : {}),
    enrollmentCertificates: async (deviceId) => (ctx.ecaStore ? (await ctx.ecaStore.certificatesOf(deviceId)).map((e) => e.certificate) : []),
    clock,
  });
  await service.init();
  service.start(refreshMs, (e) => server.logger.error({ err: e }, 'CRL refresh failed'));
  server.onShutdown('ra.crl', async () => {
    service.stop();
    await service.idle();
  });
  return { service, store };
}

/** What mountRa hands on to the successor enrollment mount. */
interface MountedRa {
  store: RegistrationStore;
  db: Kysely<any>;
  raSigner?: Signer;
}

/**
 * POST/GET /v3/successor-enrollment-certificate (ra/successor.ts) and its queue worker, with `eca` as the way to
 * the ECA. Not mounted (a warning) without the RA key, its encryption key or a global policy.
 */
async function mountSuccessor(ctx: MountContext, ra: MountedRa, eca: EcaClient, settings: AuthorizationSettings): Promise<void> {
  const { server, trust, stores, clock, warnings } = ctx;
  const skip = (why: string) => warnings.push(`${why}: POST/GET ${SUCCESSOR_ENROLLMENT_PATH} are not mounted`);
  const policy = trust.globalPolicy?.json;
  const raC = trust.byName.get('ra');
  if (!policy) return void skip('no global policy in the trust directory');
  if (!ra.raSigner || !raC?.certificate || !raC.encryptionKeyUri) return void skip('no RA certificate, key or encryption key');
  try {
    await stores.open(raC.encryptionKeyUri);
  } catch (e) {
    return void skip(`the RA encryption key cannot be opened (${(e as Error).message})`);
  }
  const jobs = new JobQueue(ra.db, { clock });
  await jobs.migrate();
  const certsOf = (...roles: string[]) => trust.certificates.filter((c) => roles.includes(c.role) && c.certificate).map((c) => c.certificate!);
  const deps: SuccessorDeps = {
    raCertificate: raC.certificate,
    raSigner: ra.raSigner,
    raDecryption: keystoreDecryption(stores, raC.encryptionKeyUri),
    trustAnchors: trust.roots.filter((c) => c.certificate).map((c) => c.certificate!),
    caCertificates: certsOf('eca', 'ica'),
    ecaCertificates: certsOf('eca'),
    devices: registrationEnrollmentLookup(ra.store),
    jobs,
    policy,
    clock,
    options: { processingDelaySeconds: settings.processingDelaySeconds },
  };
  // Mounted on the app directly (not a component of its own: the listed components stay ra + eca).
  await server.app.register(async (child) => registerSuccessorEnrollment(child, deps));
  const worker = successorWorker({
    jobs,
    eca,
    worker: {
      pollIntervalMs: settings.pollIntervalMs,
      ...(settings.leaseMs !== undefined ? { leaseMs: settings.leaseMs } : {}),
      onError: (e, job) => server.logger.error({ err: e, jobId: job?.id }, 'successor enrollment worker error'),
    },
  });
  worker.start();
  server.onShutdown('ra.successor-worker', () => worker.stop());
}

/** Authorization timing from the environment (tests shorten it); defaults are the production ones. */
export interface AuthorizationSettings {
  /** SCMS_RA_PROCESSING_DELAY_S: nextDlTime = now + this (default 60). */
  processingDelaySeconds: number;
  /** SCMS_RA_WORKER_POLL_MS: the authorization worker's idle poll interval (default 1000). */
  pollIntervalMs: number;
  /** SCMS_RA_WORKER_LEASE_MS: a job's lease; a job whose worker died is retried after it (unset: the Worker's 30000). */
  leaseMs?: number;
  /** SCMS_RA_I_PERIODS: i-periods issued per request (default 1). */
  iPeriodsPerRequest: number;
  /**
   * TEST ONLY (SCMS_TEST_RA_KILL_AFTER_RESPONSES, unset = off): the RA process SIGKILLs itself right after it has
   * stored this many pseudonym responses, to show that a worker killed mid-batch loses nothing.
   */
  testKillAfterResponses?: number;
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
  const kill = int('SCMS_TEST_RA_KILL_AFTER_RESPONSES', 0, 1, 1_000_000);
  const lease = int('SCMS_RA_WORKER_LEASE_MS', 0, 100, 3_600_000);
  const settings: AuthorizationSettings = {
    processingDelaySeconds: int('SCMS_RA_PROCESSING_DELAY_S', 60, 0, 86_400),
    pollIntervalMs: int('SCMS_RA_WORKER_POLL_MS', 1000, 10, 600_000),
    iPeriodsPerRequest: int('SCMS_RA_I_PERIODS', 1, 1, 1024),
    ...(lease > 0 ? { leaseMs: lease } : {}),
    ...(kill > 0 ? { testKillAfterResponses: kill } : {}),
  };
  if (issues.length) throw new ConfigError(issues);
  return settings;
}

/**
 * TEST ONLY: a PseudonymStore that stores the first `limit` responses it is given, then SIGKILLs its own process
 * (no shutdown hook runs, the job stays leased). Used only when SCMS_TEST_RA_KILL_AFTER_RESPONSES is set.
 */
class KillingPseudonymStore extends PseudonymStore {
  #left: number;
  constructor(db: Kysely<any>, limit: number) {
    super(db);
    this.#left = limit;
  }
  override async saveResponses(rows: readonly StoredResponse[], at: number): Promise<void> {
    const take = rows.slice(0, this.#left);
    await super.saveResponses(take, at);
    this.#left -= take.length;
    if (this.#left <= 0) process.kill(process.pid, 'SIGKILL');
  }
}

/** A keystore ECDH as an ECIES decryption callback (the private key stays in the keystore). */
function keystoreDecryption(stores: KeyStores, uri: string) {
  return { ecdh: (v: Uint8Array) => stores.ecdh(uri, v) };
}

/** Which RA / ACA / LA certificates a component accepts signed messages from: the trust directory's roots and CAs. */
function peerTrustOf(trust: TrustDir, clock: Clock): PeerTrustOptions {
  return {
    trustAnchors: trust.roots.filter((c) => c.certificate).map((c) => c.certificate!),
    caCertificates: trust.certificates.filter((c) => c.certificate && c.role !== 'root').map((c) => c.certificate!),
    clock,
  };
}

/** An LA's LaService: certificate, laId and key from the trust directory, its master secret, its own database. */
async function openLa(ctx: MountContext, name: 'la1' | 'la2'): Promise<{ la: LaService; signer: Signer }> {
  const { server, config, trust, stores, clock } = ctx;
  const c = trust.byName.get(name);
  if (!c?.certificate) throw new ConfigError([`${config.trustDir}: no ${name} certificate in the trust directory`]);
  if (c.laId === undefined) throw new ConfigError([`${config.trustDir}: ${name} has no laId`]);
  let signer: Signer;
  let master: Uint8Array;
  try {
    signer = keyStoreSigner(stores, await stores.open(c.keyUri));
    master = await laMasterSecret(stores, c.keyUri, c.laId);
  } catch (e) {
    throw new ConfigError([`the ${name} key ${c.keyUri} cannot be opened: ${(e as Error).message} (set SCMS_KEYSTORE_PASSPHRASE or SCMS_PKCS11_PIN)`]);
  }
  const store = new LaStore(await openComponentDb(server, config, name));
  await store.migrate();
  server.addHealthCheck(`${name}.db`, async () => {
    await store.db.selectFrom('la_chains').select('la_id').limit(1).execute();
  });
  return { la: new LaService({ laId: c.laId, store, masterSecret: master, certificate: c.certificate, signer, clock }), signer };
}

/** `serve la1|la2`: the LA's internal routes (pre-linkage values for the RA, PLV key deliveries for the ACA). */
async function mountLa(ctx: MountContext, name: 'la1' | 'la2'): Promise<void> {
  const { la, signer } = await openLa(ctx, name);
  const token = ctx.config.componentToken;
  await ctx.server.registerComponent({
    name,
    register: registerLa,
    deps: { la, signer, trust: peerTrustOf(ctx.trust, ctx.clock), ...(token ? { token } : {}) } satisfies LaHttpDeps,
  });
}

/** The ACA's certificate, keys (the private scalar when the keystore lets it out) and RA / LA certificates. */
async function openAca(ctx: MountContext, laKeys: LaKeyClient[]): Promise<AcaService> {
  const { server, config, trust, stores, clock, warnings } = ctx;
  const acaC = trust.byName.get('aca');
  const raC = trust.byName.get('ra');
  const laCs = [trust.byName.get('la1'), trust.byName.get('la2')];
  if (!acaC?.certificate || !acaC.encryptionKeyUri) throw new ConfigError([`${config.trustDir}: no ACA certificate or encryption key in the trust directory`]);
  if (!raC?.certificate || !laCs[0]?.certificate || !laCs[1]?.certificate) throw new ConfigError([`${config.trustDir}: the RA or an LA certificate is missing`]);
  let signer: Signer;
  try {
    signer = keyStoreSigner(stores, await stores.open(acaC.keyUri));
    await stores.open(acaC.encryptionKeyUri);
  } catch (e) {
    throw new ConfigError([`the ACA key ${acaC.keyUri} cannot be opened: ${(e as Error).message} (set SCMS_KEYSTORE_PASSPHRASE or SCMS_PKCS11_PIN)`]);
  }
  const scalar = await stores.exportPrivateScalar(acaC.keyUri).catch(() => undefined);
  if (scalar === undefined) warnings.push('the ACA key does not export its private scalar (PKCS#11): only explicit certificates can be issued');
  // The ACA keeps no table yet; its database is opened so it has its file / schema and health check in place.
  const acaDb = await openComponentDb(server, config, 'aca');
  server.addHealthCheck('aca.db', async () => {
    await acaDb.selectNoFrom((eb) => eb.lit(1).as('one')).execute();
  });
  return new AcaService({
    certificate: acaC.certificate,
    signer,
    ...(scalar !== undefined ? { privateScalar: scalar } : {}),
    encryptionKey: keystoreDecryption(stores, acaC.encryptionKeyUri),
    raCertificates: [raC.certificate],
    laCertificates: laCs.map((c) => c!.certificate!),
    laKeys,
    clock,
  });
}

/** `serve aca`: POST /internal/aca/cert-requests; the LAs' PLV keys come from the la1 / la2 peers over HTTP. */
async function mountAca(ctx: MountContext): Promise<void> {
  const { config, trust, stores, clock } = ctx;
  const acaC = trust.byName.get('aca');
  const token = config.componentToken;
  const laKeys: LaKeyClient[] = [];
  if (acaC?.certificate) {
    const signer = keyStoreSigner(stores, await stores.open(acaC.keyUri).catch((e: Error) => {
      throw new ConfigError([`the ACA key ${acaC.keyUri} cannot be opened: ${e.message} (set SCMS_KEYSTORE_PASSPHRASE or SCMS_PKCS11_PIN)`]);
    }));
    for (const name of ['la1', 'la2'] as const) {
      const laId = trust.byName.get(name)?.laId;
      if (laId === undefined) throw new ConfigError([`${config.trustDir}: ${name} has no laId`]);
      laKeys.push(new HttpLaKeyClient({ baseUrl: requirePeer(config, name), laId, acaCertificate: acaC.certificate, acaSigner: signer, clock, ...(token ? { token } : {}) }));
    }
  }
  const aca = await openAca(ctx, laKeys);
  await ctx.server.registerComponent({ name: 'aca', register: registerAca, deps: { aca, ...(token ? { token } : {}) } satisfies AcaHttpDeps });
}

/**
 * The RA's authorization pipeline: LA1, LA2 and the ACA in-process (`serve all`: one database each, keys from the
 * keystore) or over HTTP to the peers (`serve ra --peer la1=... --peer la2=... --peer aca=...`).
 * Returns undefined, with a warning, when a certificate or key is missing: the RA then serves without it.
 */
async function buildAuthorization(
  ctx: MountContext,
  ra: { db: Kysely<any>; store: RegistrationStore; raSigner: Signer; settings: AuthorizationSettings; inProcess: boolean },
): Promise<{ deps: AuthorizationDeps; worker: ReturnType<typeof authorizationWorker>; links: RevocationLinks } | undefined> {
  const { server, config, trust, stores, clock, warnings } = ctx;
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
  try {
    await stores.open(raC!.encryptionKeyUri);
  } catch (e) {
    return skip(`the RA encryption key cannot be opened (${(e as Error).message})`);
  }

  let la1: LaClient;
  let la2: LaClient;
  let aca: AcaClient;
  let seedSources: RevocationLinks['las'];
  const token = config.componentToken;
  if (ra.inProcess) {
    let las;
    try {
      las = [await openLa(ctx, 'la1'), await openLa(ctx, 'la2')];
      aca = await openAca(ctx, las.map((l) => l.la));
    } catch (e) {
      if (e instanceof ConfigError) return skip(`an ACA or LA key cannot be opened (${e.issues.join('; ')})`);
      throw e;
    }
    [la1, la2] = [las[0]!.la, las[1]!.la];
    seedSources = [las[0]!.la, las[1]!.la];
  } else {
    const peerTrust = new PeerTrust(peerTrustOf(trust, clock));
    const laClient = (name: 'la1' | 'la2', laId: number) =>
      new HttpLaClient({ baseUrl: requirePeer(config, name), laId, raCertificate: raC!.certificate!, raSigner: ra.raSigner, trust: peerTrust, ...(token ? { token } : {}) });
    la1 = laClient('la1', laIds[0]);
    la2 = laClient('la2', laIds[1]);
    const seedClient = (name: 'la1' | 'la2', laId: number) =>
      new HttpLaSeedClient({ baseUrl: requirePeer(config, name), laId, raCertificate: raC!.certificate!, raSigner: ra.raSigner, trust: peerTrust, ...(token ? { token } : {}) });
    seedSources = [seedClient('la1', laIds[0]), seedClient('la2', laIds[1])];
    aca = new HttpAcaClient({ baseUrl: requirePeer(config, 'aca'), ...(token ? { token } : {}) });
  }

  const jobs = new JobQueue(ra.db, { clock });
  await jobs.migrate();
  const requests = new AuthorizationStore(ra.db);
  await requests.migrate();
  const kill = ra.settings.testKillAfterResponses;
  if (kill !== undefined) warnings.push(`TEST HOOK SCMS_TEST_RA_KILL_AFTER_RESPONSES=${kill}: this process kills itself after storing ${kill} pseudonym responses`);
  const pseudonyms = kill !== undefined ? new KillingPseudonymStore(ra.db, kill) : new PseudonymStore(ra.db);
  await pseudonyms.migrate();
  const service = new PseudonymService({
    store: pseudonyms,
    la1,
    la2,
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
    acaCertificate: acaC!.certificate!,
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
      ...(ra.settings.leaseMs !== undefined ? { leaseMs: ra.settings.leaseMs } : {}),
      onError: (e, job) => server.logger.error({ err: e, jobId: job?.id }, 'authorization worker error'),
    },
  });
  return { deps, worker, links: { chains: pseudonyms, ...(seedSources ? { las: seedSources } : {}) } };
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
  exposeStore?: (store: EcaStore) => void,
): Promise<Eca> {
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
  exposeStore?.(store);
  server.addHealthCheck('eca.db', async () => {
    await store.counts();
  });
  const deps: EcaDeps = {
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
  };
  await server.registerComponent({ name: 'eca', register: registerEca, deps });
  // The Eca keeps no state of its own (all in its store): this instance serves the RA's successor requests.
  return new Eca(deps);
}
