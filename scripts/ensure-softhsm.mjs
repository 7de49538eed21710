#!/usr/bin/env node
// Makes sure SoftHSM2 (the PKCS#11 token the tests use) is installed: on a fresh Debian machine as root it
// installs the Debian package; otherwise it says what to run. Used by `npm test` and `.ci/run`.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const module = process.env.SOFTHSM2_MODULE ?? '/usr/lib/softhsm/libsofthsm2.so';
const haveUtil = () => {
  try {
    execFileSync('softhsm2-util', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

if (existsSync(module) && haveUtil()) process.exit(0);
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
if (!isRoot) {
  console.error('SoftHSM2 is needed by the PKCS#11 tests: run `sudo apt-get install softhsm2` first.');
  process.exit(1);
}
console.log('installing softhsm2 (Debian package) for the PKCS#11 tests ...');
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
execFileSync('apt-get', ['install', '-y', '-qq', 'softhsm2'], { stdio: 'inherit', env });
