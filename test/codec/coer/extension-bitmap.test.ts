/**
 * SEQUENCE extension presence bitmap length (X.696 16.4): an encoder writes one bit per extension addition
 * of the type as it knows it; a value decoded from a sender with an older version (fewer bits) or a newer one
 * (more bits) re-encodes byte for byte.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { codec } from '../../../src/codec/coer/codec.js';
import type { Schema } from '../../../src/codec/schema.js';

const Bool: Schema = { kind: 'boolean' };
/** SEQUENCE { a INTEGER (0..255), ..., x1 BOOLEAN OPTIONAL, x2 BOOLEAN OPTIONAL, x3 BOOLEAN OPTIONAL } */
const Ext3: Schema = {
  kind: 'sequence',
  name: 'Ext3',
  extensible: true,
  fields: [{ name: 'a', schema: { kind: 'integer', min: 0n, max: 255n } }],
  extensions: [
    { name: 'x1', schema: Bool, optional: true },
    { name: 'x2', schema: Bool, optional: true },
    { name: 'x3', schema: Bool, optional: true },
  ],
};
const C = codec<Record<string, unknown>>(Ext3);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const h = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

/**
 * Builds the encoding by hand: preamble 80 (extension bit), a, then the bitmap of `bits.length` bits as a
 * length-prefixed BIT STRING (X.696 14.3: length, unused-bits octet, bits) and each present addition as an
 * open type (length + its encoding).
 */
function encodingWith(a: number, bits: Array<Uint8Array | undefined>): Uint8Array {
  const octets = Math.ceil(bits.length / 8);
  const map = new Uint8Array(octets);
  bits.forEach((b, i) => {
    if (b) map[i >> 3]! |= 0x80 >> (i & 7);
  });
  const out = [0x80, a, octets + 1, octets * 8 - bits.length, ...map];
  for (const b of bits) if (b) out.push(b.length, ...b);
  return Uint8Array.from(out);
}

describe('extension presence bitmap length', () => {
  it('a value we build gets one bit per known addition (X.696 16.4)', () => {
    expect(hex(C.encode({ a: 5, x1: true }))).toBe('80' + '05' + '0205' + '80' + '01ff');
  });

  it('a shorter bitmap from an older sender re-encodes byte for byte', () => {
    const older = h('80 05 0207 80 01ff'); // one bit: only x1 known to the sender
    const v = C.decode(older);
    expect(v).toEqual({ a: 5, x1: true });
    expect(Object.keys(v)).toEqual(['a', 'x1']); // the kept length is not a component
    expect(hex(C.encode(v))).toBe(hex(older));
    const two = h('80 05 0206 40 0100'); // two bits, x2 = FALSE present
    expect(hex(C.encode(C.decode(two)))).toBe(hex(two));
  });

  it('the kept length grows when a later addition is set', () => {
    const v = C.decode(h('80 05 0207 80 01ff'));
    v.x3 = false;
    expect(hex(C.encode(v))).toBe('80' + '05' + '0205' + 'a0' + '01ff' + '0100');
  });

  it('a copy without the hidden length (JSON, spread) gets the full bitmap', () => {
    const v = C.decode(h('80 05 0207 80 01ff'));
    expect(hex(C.encode({ ...v }))).toBe('8005020580' + '01ff');
    expect(hex(C.encode(C.fromJson(C.toJson(v))))).toBe('8005020580' + '01ff');
  });

  it('decode -> encode is byte-identical for every bitmap length and presence pattern', () => {
    const addition = fc.oneof(fc.constant(h('00')), fc.constant(h('ff')));
    const unknown = fc.uint8Array({ minLength: 0, maxLength: 3 });
    const bitsArb = fc
      .integer({ min: 1, max: 12 })
      .chain((n) =>
        fc.tuple(
          ...Array.from({ length: n }, (_, i) => fc.option(i < 3 ? addition : unknown, { nil: undefined })),
        ),
      )
      .filter((bits) => bits.some((b) => b !== undefined));
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), bitsArb, (a, bits) => {
        const enc = encodingWith(a, bits);
        expect(hex(C.encode(C.decode(enc)))).toBe(hex(enc));
      }),
      { numRuns: 500, seed: 11 },
    );
  });
});
