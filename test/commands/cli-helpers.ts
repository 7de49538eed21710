// Runs the built CLI (bin/run.js -> dist/) as a real process; `npm test` compiles first.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const bin = new URL('../../bin/run.js', import.meta.url).pathname;

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function scms(...args: string[]): Run {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'scms-cli-'));
}

/** Writes `bytes` to dir/name as raw octets, or as hex split over lines with spaces when `hex`. */
export function writeEncoded(dir: string, name: string, bytes: Uint8Array, hex = false): string {
  const path = join(dir, name);
  if (hex) {
    const h = Buffer.from(bytes).toString('hex');
    writeFileSync(path, `${h.replace(/(.{64})/g, '$1\n').replace(/(\S{8})(?=\S)/g, '$1 ')}\n`);
  } else writeFileSync(path, bytes);
  return path;
}
