// `scms serve all` as a child process on a fresh test trust directory (test/helpers/trust-dir.ts), for the tests that
// drive the SCMS over HTTP: the trust directory, its root's HashedId8 and the running server.
import { join } from 'node:path';
import { toHex } from '../../src/crypto/bytes.js';
import type { InitOptions } from '../../src/engine/manager/init.js';
import { loadTrustDir } from '../../src/engine/manager/trust-dir.js';
import { serve, type ServeResult } from '../../src/engine/serve.js';
import { certificateHashedId8 } from '../../src/security/certificate.js';
import type { Clock } from '../../src/security/time.js';
import { startScms, type Started } from '../commands/serve-flow-helpers.js';
import { initTestTrustDir } from './trust-dir.js';

/** HashedId8 (hex) of the trust directory's root certificate: what a device is told to trust. */
export function rootHashOf(trustDir: string): string {
  return toHex(certificateHashedId8(loadTrustDir(trustDir).byName.get('root')!.certificate!));
}

export interface ServeAllOptions {
  /** Base directory: the trust directory goes to `<base>/scms`, the databases to `<base>/data`. */
  base: string;
  passphrase: string;
  operatorToken: string;
  /** More `manager init` options (e.g. globalPolicyValues). */
  init?: Partial<Omit<InitOptions, 'dir'>>;
  /** Operator changes to the trust directory before the server starts. */
  beforeStart?: (trustDir: string) => Promise<void>;
  /** Environment beside the defaults (worker poll 100 ms, processing delay 1 s, log level warn). */
  env?: Record<string, string>;
}

export interface ServeAll {
  trustDir: string;
  dataDir: string;
  rootHash: string;
  started: Started;
  url: string;
  port: number;
  /** Kills the server (SIGKILL) if it still runs. */
  kill(): void;
}

export async function startServeAll(o: ServeAllOptions): Promise<ServeAll> {
  const trustDir = join(o.base, 'scms');
  const dataDir = join(o.base, 'data');
  await initTestTrustDir(trustDir, o.passphrase, o.init);
  await o.beforeStart?.(trustDir);
  const started = await startScms(['all', '--trust', trustDir, '--data', dataDir, '--port', '0', '--host', '127.0.0.1'], {
    ...process.env,
    SCMS_KEYSTORE_PASSPHRASE: o.passphrase,
    SCMS_OPERATOR_TOKEN: o.operatorToken,
    SCMS_RA_WORKER_POLL_MS: '100',
    SCMS_RA_PROCESSING_DELAY_S: '1',
    SCMS_LOG_LEVEL: 'warn',
    ...o.env,
  });
  return {
    trustDir,
    dataDir,
    rootHash: rootHashOf(trustDir),
    started,
    url: started.out.url,
    port: started.out.port,
    kill: () => {
      if (started.child.exitCode === null && started.child.signalCode === null) started.child.kill('SIGKILL');
    },
  };
}

export interface InProcessServeAllOptions {
  trustDir: string;
  dataDir: string;
  passphrase: string;
  operatorToken: string;
  /** The services' clock (a ManualClock the test moves); default the system clock. */
  clock?: Clock;
  /** Environment beside the defaults (processing delay 0 s, worker poll 50 ms). */
  env?: Record<string, string>;
}

/** `serve all` in this process (engine serve()), on 127.0.0.1 with a free port, no signal handlers. */
export function serveAllInProcess(o: InProcessServeAllOptions): Promise<ServeResult> {
  return serve('all', {
    flags: { trustDir: o.trustDir, dataDir: o.dataDir, host: '127.0.0.1', port: 0, logLevel: 'warn' },
    env: { SCMS_KEYSTORE_PASSPHRASE: o.passphrase, SCMS_OPERATOR_TOKEN: o.operatorToken, SCMS_RA_PROCESSING_DELAY_S: '0', SCMS_RA_WORKER_POLL_MS: '50', ...o.env },
    ...(o.clock ? { clock: o.clock } : {}),
    signals: false,
  });
}
