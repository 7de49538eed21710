// What `scms serve ra|eca|all` runs: configuration (config.ts), the trust directory (manager/trust-dir.ts), the
// component keys from its keystore (passphrase SCMS_KEYSTORE_PASSPHRASE, PKCS#11 PIN SCMS_PKCS11_PIN), one
// database per component in the data directory, and the components' routes on one server (http/service.ts).
import { mkdirSync } from 'node:fs';
import type { Kysely } from 'kysely';
import { type KeyStores } from '../hsm/index.js';
import { keyStoreSigner, type Signer } from '../security/signer.js';
import { systemClock, type Clock } from '../security/time.js';
import { ConfigError, loadServiceConfig, type ComponentName, type ServiceConfig, type ServiceFlags } from './config.js';
import type { Logger } from './http/logger.js';
import { startService, type RunningService, type StartServiceOptions } from './http/service.js';
import type { ScmsServer } from './http/server.js';
import { openStores } from './manager/init.js';
import { loadTrustDir, type TrustDir } from './manager/trust-dir.js';
import { registerRa } from './ra/index.js';
import { RegistrationStore } from './ra/registration-store.js';
import { openDatabase } from './store/index.js';

export const SERVE_TARGETS = ['ra', 'eca', 'all'] as const;
export type ServeTarget = (typeof SERVE_TARGETS)[number];

/**
 * Components each target runs. The ECA's HTTP routes (src/engine/eca/routes.ts, `registerEca`) are not wired
 * yet: `all` runs the RA alone until they are (see ECA_AVAILABLE and mountEca below).
 */
export const ECA_AVAILABLE = false;

export function componentsOf(target: ServeTarget): ComponentName[] {
  if (target === 'ra') return ['ra'];
  if (target === 'eca') return ['eca'];
  return ECA_AVAILABLE ? ['ra', 'eca'] : ['ra'];
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
  if (target === 'eca' && !ECA_AVAILABLE) {
    throw new ConfigError(['the ECA HTTP routes are not available in this build yet (run `scms serve ra` or `scms serve all`)']);
  }
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
      if (config.components.includes('ra')) await mountRa(server, config, trust, stores, clock, warnings);
      if (config.components.includes('eca')) await mountEca(server, config, trust, stores, clock);
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

async function mountRa(server: ScmsServer, config: ServiceConfig, trust: TrustDir, stores: KeyStores, clock: Clock, warnings: string[]): Promise<void> {
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
}

/**
 * ECA mount point. TODO(ECA routes): when src/engine/eca/routes.ts exports `registerEca(app, deps)`, build its
 * EcaDeps here: the ECA certificate and chain from `trust`, its signer (and private scalar for implicit
 * issuance, soft keystore only) from the manifest key URI, the registry (InProcessDeviceRegistry over the RA's
 * RegistrationStore under `all`, HttpDeviceRegistry to the `ra` peer otherwise), the global policy, the clock
 * and an EcaStore on config.databases.eca; then set ECA_AVAILABLE.
 */
async function mountEca(_server: ScmsServer, _config: ServiceConfig, _trust: TrustDir, _stores: KeyStores, _clock: Clock): Promise<void> {
  throw new ConfigError(['the ECA HTTP routes are not available in this build yet']);
}
