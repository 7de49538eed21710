/**
 * Property test over every generated type: decode(encode(v)) deep-equals v, and re-encoding the decoded value
 * gives the same octets (canonical COER, X.696 clause 6 / IEEE 1609.2 clause 6.1).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { listTypes, typeRegistry } from '../../../src/codec/gen/index.js';
import { arbitraryFor } from '../../helpers/arbitrary.js';

const RUNS = Number(process.env.ROUNDTRIP_RUNS ?? 25);

describe('generated codecs round-trip', () => {
  it.each(listTypes())('%s', (name) => {
    const c = typeRegistry.get(name)!;
    fc.assert(
      fc.property(arbitraryFor(c.schema, 2), (v) => {
        const bytes = c.encode(v);
        const back = c.decode(bytes);
        expect(back).toEqual(v);
        expect(Buffer.from(c.encode(back)).toString('hex')).toBe(Buffer.from(bytes).toString('hex'));
      }),
      { numRuns: RUNS, seed: 1609 },
    );
  });
});
