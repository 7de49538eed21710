import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { codec } from '../../../src/codec/coer/codec.js';
import { arbitraryFor } from '../../helpers/arbitrary.js';
import { ALL } from './fixtures.js';

describe('COER property tests over hand-built schemas of every kind', () => {
  for (const [name, schema] of Object.entries(ALL)) {
    const c = codec<unknown>(schema);
    const arb = arbitraryFor(schema, 3);
    const runs = name === 'Everything' || name === 'Data' ? 300 : 150;

    it(`${name}: decode(encode(v)) = v and encode(decode(b)) = b`, () => {
      fc.assert(
        fc.property(arb, (v) => {
          const b = c.encode(v);
          const back = c.decode(b);
          expect(back).toStrictEqual(v);
          expect(c.encode(back)).toStrictEqual(b);
          const { value, end } = c.decodePrefix(Uint8Array.of(0xaa, ...b, 0xbb), 1);
          expect(end).toBe(b.length + 1);
          expect(value).toStrictEqual(v);
        }),
        { numRuns: runs },
      );
    });

    it(`${name}: fromJson(toJson(v)) = v, and the JSON survives JSON.stringify`, () => {
      fc.assert(
        fc.property(arb, (v) => {
          const j = c.toJson(v);
          const text = JSON.stringify(j);
          expect(c.fromJson(JSON.parse(text))).toStrictEqual(v);
        }),
        { numRuns: runs },
      );
    });
  }
});
