/**
 * Canonical uniqueness: whatever bytes the strict decoder accepts must be exactly the canonical
 * encoding of the value it returns. Mutating valid encodings (flip, insert, delete, truncate)
 * therefore either fails with a CoerError or re-encodes to the mutated bytes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CoerError, codec } from '../../../src/codec/coer/codec.js';
import { arbitraryFor } from '../../helpers/arbitrary.js';
import { ALL } from './fixtures.js';

type Mutation = { kind: 'set'; at: number; byte: number } | { kind: 'insert'; at: number; byte: number } | { kind: 'delete'; at: number };

function mutate(b: Uint8Array, m: Mutation): Uint8Array {
  if (b.length === 0) return Uint8Array.of(m.kind === 'delete' ? 0 : m.byte);
  const at = m.at % (b.length + (m.kind === 'insert' ? 1 : 0));
  if (m.kind === 'set') {
    const out = b.slice();
    out[at] = m.byte;
    return out;
  }
  if (m.kind === 'insert') return Uint8Array.of(...b.subarray(0, at), m.byte, ...b.subarray(at));
  return Uint8Array.of(...b.subarray(0, at), ...b.subarray(at + 1));
}

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0, 0x7f, 0x80, 0x81, 0xff)) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
);

describe('strict decoder accepts only canonical encodings', () => {
  for (const [name, schema] of Object.entries(ALL)) {
    const c = codec<unknown>(schema);
    it(`${name}: a mutated encoding is rejected or is the canonical encoding of its value`, () => {
      fc.assert(
        fc.property(arbitraryFor(schema, 2), fc.array(mutation, { minLength: 1, maxLength: 3 }), (v, ms) => {
          let b = c.encode(v);
          for (const m of ms) b = mutate(b, m);
          let value: unknown;
          try {
            value = c.decode(b);
          } catch (e) {
            expect(e).toBeInstanceOf(CoerError);
            const err = e as CoerError;
            expect(err.offset).toBeGreaterThanOrEqual(0);
            expect(err.offset).toBeLessThanOrEqual(b.length);
            expect(err.path.startsWith(name)).toBe(true);
            return;
          }
          expect(Buffer.from(c.encode(value)).toString('hex')).toBe(Buffer.from(b).toString('hex'));
        }),
        { numRuns: 300 },
      );
    });
  }
});
