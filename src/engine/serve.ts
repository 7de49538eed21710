// What `scms serve ra|eca|all` runs: configuration (config.ts), the trust directory (manager/trust-dir.ts), the
// component keys from its keystore (passphrase SCMS_KEYSTORE_PASSPHRASE, PKCS#11 PIN SCMS_PKCS11_PIN), one
// database per component in the data directory, and the components' routes on one server (http/service.ts).
import { mkdirSync } from 'node:fs';
import type { Kysely } from 'kysely';
import { type KeyStores } from '../hsm/index.js';
import { keyStoreSigner, type Signer } from '../security/signer.js';
import { systemClock, type Clock } from '../security/time.js';
import type { Certificate } from '../codec/index.js';
import { ConfigError, loadServiceConfig, requirePeer, type ComponentName, type ServiceConfig, type ServiceFlags } from './config.js';
import type { EcaDeps } from './eca/deps.js';
import { registerEca } from './eca/routes.js';
import { EcaStore } from './eca/store.js';
import type { Logger } from './http/logger.js';
import { startService, type RunningService, type StartServiceOptions } from './http/service.js';
import type { ScmsServer } from './http/server.js';
import { openStores } from './manager/init.js';
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
  const config = loadServiceConfig(componentsOf(target), options.flags ?? {}, { env, cwd: options.cwd });
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
      const raStore = config.components.includes('ra') ? await mountRa(server, config, trust, stores, clock, warnings) : undefined;
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
): Promise<RegistrationStore> {
  const db = await openComponentDb(server, config, 'ra');
  const store = new RegistrationStore(db, { clock });
  await store.migrate();
  server.addHealthCheck('ra.db', () => store.ping());
  const raSigner = await componentSigner(trust, stores, 'ra', warnings);
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
    },
  });
  return store;
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
