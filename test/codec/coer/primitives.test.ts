/** Encodings worked out by hand from ITU-T X.696 (canonical OER); each decodes back to the value. */
import { describe, expect, it } from 'vitest';
import { codec } from '../../../src/codec/coer/codec.js';
import type { Schema } from '../../../src/codec/schema.js';
import * as S from './fixtures.js';

const h = (hex: string): Uint8Array => Uint8Array.from(Buffer.from(hex.replace(/\s+/g, ''), 'hex'));

function roundTrip(schema: Schema, value: unknown, hex: string): void {
  const c = codec<unknown>(schema);
  expect(Buffer.from(c.encode(value)).toString('hex')).toBe(hex.replace(/\s+/g, ''));
  expect(c.decode(h(hex))).toStrictEqual(value);
}

describe('INTEGER (X.696 10)', () => {
  it('fixed-size unsigned by upper bound', () => {
    roundTrip(S.Uint8, 5, '05');
    roundTrip(S.Uint8, 255, 'ff');
    roundTrip(S.Uint16, 300, '012c');
    roundTrip(S.Uint32, 70000, '00011170');
    roundTrip(S.Uint32, 4294967295, 'ffffffff');
    roundTrip(S.Uint64, 18446744073709551615n, 'ffffffffffffffff');
    roundTrip(S.Uint64, 1n, '0000000000000001');
  });
  it('fixed-size two\'s complement by range', () => {
    roundTrip(S.Int8, -1, 'ff');
    roundTrip(S.Int8, -128, '80');
    roundTrip(S.Int16, -300, 'fed4');
    roundTrip(S.Int32, -2, 'fffffffe');
    roundTrip(S.Int32, 2147483647, '7fffffff');
    roundTrip(S.Int64, -(2n ** 63n), '8000000000000000');
    roundTrip(S.Big53, 2 ** 53 - 1, '001fffffffffffff');
    roundTrip(S.Big53, -(2 ** 53 - 1), 'ffe0000000000001');
    roundTrip(S.Big53, -1, 'ffffffffffffffff');
  });
  it('length + minimal octets when unbounded', () => {
    roundTrip(S.Unconstrained, -1n, '01ff');
    roundTrip(S.Unconstrained, 0n, '0100');
    roundTrip(S.Unconstrained, 127n, '017f');
    roundTrip(S.Unconstrained, 128n, '020080');
    roundTrip(S.Unconstrained, -128n, '0180');
    roundTrip(S.Unconstrained, -129n, '02ff7f');
    roundTrip(S.NonNegative, 0n, '0100');
    roundTrip(S.NonNegative, 255n, '01ff');
    roundTrip(S.NonNegative, 256n, '020100');
    roundTrip(S.Huge, 2n ** 70n, '09400000000000000000');
  });
});

describe('length determinant (X.696 8.6)', () => {
  it('short form below 128, minimal long form above', () => {
    const c = codec<Uint8Array>(S.Opaque);
    expect(Buffer.from(c.encode(new Uint8Array(127))).subarray(0, 1).toString('hex')).toBe('7f');
    expect(Buffer.from(c.encode(new Uint8Array(128))).subarray(0, 2).toString('hex')).toBe('8180');
    expect(Buffer.from(c.encode(new Uint8Array(200))).subarray(0, 2).toString('hex')).toBe('81c8');
    expect(Buffer.from(c.encode(new Uint8Array(256))).subarray(0, 3).toString('hex')).toBe('820100');
    expect(Buffer.from(c.encode(new Uint8Array(70000))).subarray(0, 4).toString('hex')).toBe('83011170');
    const v = Uint8Array.from({ length: 200 }, (_, i) => i);
    expect(c.decode(Uint8Array.of(0x81, 0xc8, ...v))).toStrictEqual(v);
  });
  it('moves a long open type behind a long-form length', () => {
    // Extension id 3 -> UTF8String of 130 'a': open type length 132 = 81 84, string length 81 82.
    const text = 'a'.repeat(130);
    roundTrip(S.Extension, { id: 3, content: text }, '03 8184 8182' + '61'.repeat(130));
  });
});

describe('BOOLEAN, NULL, ENUMERATED (X.696 9, 17, 11)', () => {
  it('boolean and null', () => {
    roundTrip(S.Bool, true, 'ff');
    roundTrip(S.Bool, false, '00');
    roundTrip(S.Null, null, '');
  });
  it('enumerated short and long forms', () => {
    roundTrip(S.Colour, 'red', '00');
    roundTrip(S.Colour, 'green', '01');
    roundTrip(S.Colour, 'far', '8203e8');
    roundTrip(S.Colour, 'minus', '81ff');
    roundTrip(S.Colour, 'blue', '8200c8');
    roundTrip(S.Colour, 5, '05'); // unknown value of an extensible enumeration
    roundTrip(S.Fixed, 'b', '7f');
  });
});

describe('strings (X.696 14, 15, 27)', () => {
  it('octet strings', () => {
    roundTrip(S.HashedId8, h('0102030405060708'), '0102030405060708');
    roundTrip(S.Small, h('0102'), '020102');
    roundTrip(S.ExtSized, h('010203'), '03010203'); // extensible SIZE: length present, any size
    roundTrip(S.Opaque, new Uint8Array(0), '00');
  });
  it('bit strings', () => {
    roundTrip(S.Bits12, '101010101010', 'aaa0');
    roundTrip(S.Bits, '1011', '0204b0');
    roundTrip(S.Bits, '', '0100');
    roundTrip(S.Bits, '10000000', '020080');
    roundTrip(S.Bits, '000000001', '03070080');
  });
  it('character strings', () => {
    roundTrip(S.Ia5, 'hi', '026869');
    roundTrip(S.Ia5Fixed, 'abc', '616263');
    roundTrip(S.Utf8, 'é', '02c3a9');
    roundTrip(S.Utf8, '\u{1F600}', '04f09f9880');
    roundTrip(S.Utf8, '\uFEFFx', '04efbbbf78'); // a BOM is content, not stripped
    roundTrip(S.Printable, "A1 '()+", '07 4131202728292b');
    roundTrip(S.Printable, ',-./:=?', '07 2c2d2e2f3a3d3f');
    roundTrip(S.Numeric, '12 3', '0431322033');
  });
});

describe('SEQUENCE (X.696 16)', () => {
  it('preamble: extension bit, then one bit per OPTIONAL/DEFAULT', () => {
    roundTrip(S.Simple, { a: 1 }, '00 01');
    roundTrip(S.Simple, { a: 1, b: true, c: 8 }, '60 01 ff 0008');
    roundTrip(S.Simple, { a: 1, b: false }, '40 01 00');
    roundTrip(S.NineOptional, { f0: 1, f8: 2 }, '8080 01 02');
  });
  it('a DEFAULT value is encoded as absent and stays absent', () => {
    const c = codec<unknown>(S.Simple);
    expect(Buffer.from(c.encode({ a: 1, c: 7 })).toString('hex')).toBe('0001');
    expect(c.decode(h('0001'))).toStrictEqual({ a: 1 });
  });
  it('extension additions: bitmap and open types, groups as SEQUENCEs', () => {
    // bitmap of 4 additions: length 02, 4 unused bits, 0100; group {g1 2}: preamble 00, 0002
    roundTrip(S.WithExtensions, { id: 1, g1: 2 }, '80 01 02 04 40 03 00 0002');
    roundTrip(S.WithExtensions, { id: 1, x1: 'a', h2: null }, '80 01 02 04 90 02 0161 01 40');
    roundTrip(S.WithExtensions, { id: 1 }, '00 01');
  });
  it('keeps unknown extension additions of a newer version byte-exact', () => {
    // 6-bit bitmap (2 unused), only addition 5 (unknown here) present with content ee.
    roundTrip(S.WithExtensions, { id: 1, $unknownExtensions: [null, h('ee')] }, '80 01 02 02 04 01ee');
    roundTrip(S.WithExtensions, { id: 1, x3: 9, $unknownExtensions: [h('')] }, '80 01 02 03 28 04 00000009 00');
  });
  it('presence constraints', () => {
    roundTrip(S.Presence, { must: 1, free: 2 }, 'a0 01 02');
  });
});

describe('SEQUENCE OF (X.696 20)', () => {
  it('quantity in minimal octets', () => {
    roundTrip(S.List, [], '0100');
    roundTrip(S.List, [1, 2], '0102 0001 0002');
    const many = Array.from({ length: 300 }, (_, i) => i);
    const b = codec<number[]>(S.List).encode(many);
    expect(Buffer.from(b.subarray(0, 5)).toString('hex')).toBe('02012c0000');
    expect(codec(S.List).decode(b)).toStrictEqual(many);
  });
});

describe('CHOICE (X.696 23) and tags (X.696 8.7)', () => {
  it('root alternatives follow their tag', () => {
    roundTrip(S.Choice, { small: 5 }, '80 05');
    roundTrip(S.Choice, { text: 'a' }, '81 01 61');
    roundTrip(S.Choice, { app: null }, '45');
    roundTrip(S.Choice, { far: 1 }, 'ff 8148 0001'); // private 200 = 1*128 + 72
  });
  it('extension alternatives are open types', () => {
    roundTrip(S.Choice, { ext: { a: 1 } }, '83 02 0001');
    roundTrip(S.Choice, { extLong: '1' }, 'bf3f 03 020780');
  });
  it('an unknown extension alternative is kept', () => {
    roundTrip(S.Choice, { $unknown: { tagClass: 'context', tag: 4, bytes: h('aa') } }, '84 01 aa');
    roundTrip(S.Choice, { $unknown: { tagClass: 'universal', tag: 100, bytes: h('') } }, '3f64 00');
  });
});

describe('open types and CONTAINING (X.696 30, 15)', () => {
  it('table-constrained open type', () => {
    roundTrip(S.Extension, { id: 1, content: 300 }, '01 02 012c');
    roundTrip(S.Extension, { id: 2, content: { a: 9 } }, '02 02 0009');
    roundTrip(S.Extension, { id: 9, content: { $unknownOpenType: h('aa') } }, '09 01 aa');
    roundTrip(S.ByBytes, { oid: h('0102'), value: true }, '40 0102 01ff');
    roundTrip(S.ByBytes, { oid: h('0103'), value: { $unknownOpenType: h('ff') } }, '40 0103 01ff');
  });
  it('OCTET STRING (CONTAINING T)', () => {
    roundTrip(S.Containing, { a: 1 }, '02 0001');
  });
  it('recursive types through refs', () => {
    roundTrip(S.Data, { version: 3, content: { nested: { version: 3, content: { raw: h('') } } } }, '03 81 03 80 00');
    roundTrip(S.Data, { version: 1, content: { list: [{ version: 2, content: { raw: h('ab') } }] } }, '01 82 0101 02 80 01ab');
  });
});

describe('JSON mapping', () => {
  it('maps octets to hex, bigint to decimal, choice to {alt}', () => {
    const c = codec<unknown>(S.Everything);
    const value = {
      u8: 1,
      u64: 18446744073709551615n,
      big: -5n,
      fixed: 'b',
      hash: h('00ff00ff00ff00ff'),
      bits: '101',
      choice: { $unknown: { tagClass: 'context', tag: 4, bytes: h('aa') } },
      extension: { id: 9, content: { $unknownOpenType: h('0a') } },
      data: { version: 0, content: { list: [] } },
      later: { id: 1, $unknownExtensions: [null, h('ee')] },
    };
    const json = {
      u8: 1,
      u64: '18446744073709551615',
      big: '-5',
      fixed: 'b',
      hash: '00ff00ff00ff00ff',
      bits: '101',
      choice: { $unknown: { tagClass: 'context', tag: 4, bytes: 'aa' } },
      extension: { id: 9, content: { $unknownOpenType: '0a' } },
      data: { version: 0, content: { list: [] } },
      later: { id: 1, $unknownExtensions: [null, 'ee'] },
    };
    expect(c.toJson(value)).toStrictEqual(json);
    expect(c.fromJson(json)).toStrictEqual(value);
  });
});
