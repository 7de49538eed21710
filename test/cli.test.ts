import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const bin = new URL('../bin/run.js', import.meta.url).pathname;

describe('scms CLI', () => {
  it('prints its version as JSON', () => {
    const out = execFileSync(process.execPath, [bin, 'version', '--json'], { encoding: 'utf8' });
    const info = JSON.parse(out) as { scms: string; node: string };
    expect(info.scms).toMatch(/^\d+\.\d+\.\d+$/);
    expect(info.node).toBe(process.version);
  });
});
