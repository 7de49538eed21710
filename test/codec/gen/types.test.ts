/** The generated TypeScript types compile as intended (types-fixture/usage.ts, checked by tsc). */
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../../..');

describe('generated TypeScript types', () => {
  it('types-fixture/usage.ts type-checks ($unknownExtensions, restricted CHOICEs, nested open types)', () => {
    let out = '';
    try {
      execFileSync(resolve(root, 'node_modules/.bin/tsc'), ['-p', resolve(import.meta.dirname, 'types-fixture/tsconfig.json')], {
        cwd: root,
        encoding: 'utf8',
        stdio: 'pipe',
      });
    } catch (e) {
      out = String((e as { stdout?: string }).stdout ?? e);
    }
    // Errors of other layers (src/ outside src/codec, being edited concurrently) are `npx tsc -p .`'s business;
    // any other error line (the fixture, the codec, the configuration) fails the test.
    const errors = out.split('\n').filter((l) => /error/i.test(l) && !/^src\/(?!codec\/)/.test(l));
    expect(errors).toEqual([]);
  }, 60_000);
});
