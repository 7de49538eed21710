// Throwaway SoftHSM2 token for tests: own softhsm2.conf + token directory in a temp dir.
// SOFTHSM2_CONF is read by libsofthsm2 at C_Initialize, so call this before opening a PKCS#11 store.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SOFTHSM_MODULE = process.env.SOFTHSM2_MODULE ?? '/usr/lib/softhsm/libsofthsm2.so';
const UTIL = process.env.SOFTHSM2_UTIL ?? 'softhsm2-util';

export interface SoftHsmToken {
  modulePath: string;
  label: string;
  pin: string;
  soPin: string;
  dir: string;
  cleanup(): void;
}

/** Throws (never skips) when SoftHSM2 is missing: CI installs it. */
export function assertSoftHsmInstalled(): void {
  let utilOk = true;
  try {
    execFileSync(UTIL, ['--version'], { stdio: 'pipe' });
  } catch {
    utilOk = false;
  }
  if (!existsSync(SOFTHSM_MODULE) || !utilOk) {
    throw new Error(
      `SoftHSM2 is not installed (module ${SOFTHSM_MODULE} / ${UTIL}). ` +
        'Install it: `apt-get install softhsm2` (CI installs it); the PKCS#11 tests need a real token.',
    );
  }
}

export function createSoftHsmToken(opts: { label?: string; pin?: string; soPin?: string } = {}): SoftHsmToken {
  assertSoftHsmInstalled();
  const dir = mkdtempSync(join(tmpdir(), 'scms-softhsm-'));
  const tokendir = join(dir, 'tokens');
  mkdirSync(tokendir, { mode: 0o700 });
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(
    conf,
    `directories.tokendir = ${tokendir}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`,
    { mode: 0o600 },
  );
  const previous = process.env.SOFTHSM2_CONF;
  process.env.SOFTHSM2_CONF = conf;
  const label = opts.label ?? 'scms-test';
  const pin = opts.pin ?? '1234-test';
  const soPin = opts.soPin ?? '5678-so';
  execFileSync(UTIL, ['--init-token', '--free', '--label', label, '--pin', pin, '--so-pin', soPin], {
    stdio: 'pipe',
    env: process.env,
  });
  return {
    modulePath: SOFTHSM_MODULE,
    label,
    pin,
    soPin,
    dir,
    cleanup() {
      if (previous === undefined) delete process.env.SOFTHSM2_CONF;
      else process.env.SOFTHSM2_CONF = previous;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
