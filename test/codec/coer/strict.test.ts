/** Every strictness rule of canonical OER decoding, and encoder validation, with path and offset. */
import { describe, expect, it } from 'vitest';
import { CoerError, codec } from '../../../src/codec/coer/codec.js';
import type { Schema } from '../../../src/codec/schema.js';
import * as S from './fixtures.js';

const h = (hex: string): Uint8Array => Uint8Array.from(Buffer.from(hex.replace(/\s+/g, ''), 'hex'));

function decodeError(schema: Schema, hex: string): CoerError {
  try {
    codec(schema).decode(h(hex));
  } catch (e) {
    expect(e).toBeInstanceOf(CoerError);
    return e as CoerError;
  }
  throw new Error(`decoding ${hex} did not fail`);
}

function encodeError(schema: Schema, value: unknown): CoerError {
  try {
    codec(schema).encode(value);
  } catch (e) {
    expect(e).toBeInstanceOf(CoerError);
    return e as CoerError;
  }
  throw new Error('encoding did not fail');
}

function jsonError(schema: Schema, json: unknown): CoerError {
  try {
    codec(schema).fromJson(json);
  } catch (e) {
    expect(e).toBeInstanceOf(CoerError);
    return e as CoerError;
  }
  throw new Error('fromJson did not fail');
}

function expectError(e: CoerError, path: string, offset: number, reason?: RegExp): void {
  expect(e.path).toBe(path);
  expect(e.offset).toBe(offset);
  if (reason) expect(e.reason).toMatch(reason);
}

/** Cert ::= SEQUENCE { version Uint8, toBeSigned SEQUENCE { id Uint8, region INTEGER (0..200) } } */
const Cert: Schema = {
  kind: 'sequence',
  name: 'Certificate',
  extensible: false,
  fields: [
    { name: 'version', schema: S.Uint8 },
    {
      name: 'toBeSigned',
      schema: {
        kind: 'sequence',
        name: 'ToBeSigned',
        extensible: false,
        fields: [
          { name: 'id', schema: S.Uint8 },
          { name: 'region', schema: { kind: 'integer', min: 0n, max: 200n } },
          { name: 'list', schema: S.List, optional: true },
        ],
      },
    },
  ],
};

describe('strict decoding', () => {
  it('rejects trailing bytes', () => {
    expectError(decodeError(S.Uint8, '05 00'), 'Uint8', 1, /1 trailing octet/);
    expectError(decodeError(Cert, '03 00 01 00 ff'), 'Certificate', 4, /trailing/);
  });
  it('rejects truncated input', () => {
    expectError(decodeError(S.Uint16, '01'), 'Uint16', 0, /needs 2 octets but only 1 remain/);
    expectError(decodeError(S.Simple, '00'), 'Simple.a', 1, /needs 1 octet/);
    expectError(decodeError(S.Opaque, '05 0102'), 'Opaque', 1, /needs 5 octets but only 2/);
    expectError(decodeError(S.HashedId8, '01020304050607'), 'HashedId8', 0, /needs 8 octets/);
    expectError(decodeError(S.Simple, ''), 'Simple', 0, /needs 1 octet/);
  });
  it('rejects a long-form length below 128', () => {
    expectError(decodeError(S.Opaque, '8105 0102030405'), 'Opaque', 0, /0x81 0x05 is not canonical: 5 < 128 must use the short form/);
  });
  it('rejects leading zero length octets and the indefinite form', () => {
    const body = '00'.repeat(200);
    expectError(decodeError(S.Opaque, '8200c8' + body), 'Opaque', 0, /leading zero length octet/);
    expectError(decodeError(S.Opaque, '80'), 'Opaque', 0, /indefinite/);
  });
  it('rejects non-minimal integers', () => {
    expectError(decodeError(S.Unconstrained, '020001'), 'Unconstrained', 0, /not minimal/);
    expectError(decodeError(S.Unconstrained, '02ff80'), 'Unconstrained', 0, /not minimal/);
    expectError(decodeError(S.NonNegative, '0200ff'), 'NonNegative', 0, /not minimal/);
    expectError(decodeError(S.Unconstrained, '00'), 'Unconstrained', 0, /length 0/);
    expect(codec(S.Unconstrained).decode(h('020080'))).toBe(128n); // the 00 is needed there
  });
  it('rejects values outside the bounds or the permitted ranges', () => {
    expectError(decodeError(Cert, '03 00 01 c9'), 'Certificate.toBeSigned.region', 3, /201 is outside 0..200/);
    expectError(decodeError(S.Permitted, '04'), 'Permitted', 0, /not permitted/);
    expectError(decodeError(S.Huge, '09 400000000000000001'), 'Huge', 0, /outside/);
  });
  it('rejects a BOOLEAN other than 00 / ff', () => {
    expectError(decodeError(S.Simple, '40 01 01'), 'Simple.b', 2, /0x01 is not canonical/);
  });
  it('rejects non-zero preamble padding bits', () => {
    expectError(decodeError(S.Simple, '01 01'), 'Simple', 0, /padding/);
    expectError(decodeError(S.NineOptional, '0040 00'), 'NineOptional', 1, /padding/);
  });
  it('rejects an extension bit with no addition present', () => {
    expectError(decodeError(S.WithExtensions, '80 01 02 04 00'), 'WithExtensions', 2, /no extension addition/);
  });
  it('rejects bad extension bitmaps and additions', () => {
    expectError(decodeError(S.WithExtensions, '80 01 02 04 41 00'), 'WithExtensions', 4, /unused trailing bits/);
    expectError(decodeError(S.WithExtensions, '80 01 02 08 80 00'), 'WithExtensions', 3, /greater than 7/);
    // group present with all components absent
    expectError(decodeError(S.WithExtensions, '80 01 02 04 10 01 00'), 'WithExtensions', 5, /group is present but all/);
    // an addition whose open type has a left-over octet
    expectError(decodeError(S.WithExtensions, '80 01 02 04 80 03 0161 ff'), 'WithExtensions', 8, /left over/);
  });
  it('rejects an encoded DEFAULT value', () => {
    expectError(decodeError(S.Simple, '20 01 0007'), 'Simple.c', 2, /DEFAULT/);
    expectError(decodeError(S.WithExtensions, '80 01 02 04 20 04 00000005'), 'WithExtensions.x3', 6, /DEFAULT/);
  });
  it('checks presence constraints', () => {
    expectError(decodeError(S.Presence, '20 02'), 'Presence.must', 0, /must be present/);
    expectError(decodeError(S.Presence, 'c0 01 02'), 'Presence.never', 0, /must be absent/);
  });
  it('rejects an unknown tag in a non-extensible CHOICE', () => {
    expectError(decodeError(S.Closed, '82 00'), 'Closed', 0, /unknown tag \[context 2\]/);
    expectError(decodeError(S.Choice, '82 ff'), 'Choice.excluded', 0, /excluded/);
  });
  it('rejects non-canonical tags', () => {
    expectError(decodeError(S.Choice, 'bf05 00'), 'Choice', 0, /< 63 must use the single-octet form/);
    expectError(decodeError(S.Choice, 'bf803f 00'), 'Choice', 0, /leading 0x80/);
  });
  it('rejects a wrong size of a fixed or bounded octet string', () => {
    expectError(decodeError(S.Small, '05 0102030405'), 'Small', 0, /size 5 octets is outside 1..4/);
    expectError(decodeError(S.Small, '00'), 'Small', 0, /size 0/);
  });
  it('rejects non-canonical ENUMERATED and unknown values of a closed one', () => {
    expectError(decodeError(S.Colour, '8101'), 'Colour', 0, /single-octet form/);
    expectError(decodeError(S.Colour, '82 0001'), 'Colour', 0, /not minimal/);
    expectError(decodeError(S.Fixed, '05'), 'Fixed', 0, /non-extensible/);
  });
  it('rejects bad BIT STRING encodings', () => {
    expectError(decodeError(S.Bits, '02 04 b1'), 'Bits', 2, /unused trailing bits/);
    expectError(decodeError(S.Bits, '02 08 00'), 'Bits', 1, /unused-bits octet 8/);
    expectError(decodeError(S.Bits, '01 03'), 'Bits', 1, /unused-bits octet 3/);
    expectError(decodeError(S.Bits12, 'aaa1'), 'Bits12', 1, /unused trailing bits/);
  });
  it('rejects characters outside the alphabet and malformed UTF-8', () => {
    expectError(decodeError(S.Ia5, '02 41 80'), 'Ia5', 2, /not a IA5String character/);
    expectError(decodeError(S.Printable, '01 2a'), 'Printable', 1, /PrintableString/);
    expectError(decodeError(S.Numeric, '01 41'), 'Numeric', 1, /NumericString/);
    expectError(decodeError(S.Visible, '01 7f'), 'Visible', 1, /VisibleString/);
    expectError(decodeError(S.Utf8, '02 c328'), 'Utf8', 1, /UTF-8/);
    expectError(decodeError(S.Utf8, '03 eda080'), 'Utf8', 1, /UTF-8/); // an encoded surrogate
    expectError(decodeError(S.Utf8, '02 c1bf'), 'Utf8', 1, /UTF-8/); // overlong
  });
  it('rejects a non-minimal SEQUENCE OF quantity and too many items', () => {
    expectError(decodeError(S.List, '02 0001 0001'), 'List', 0, /not minimal/);
    expectError(decodeError(Cert, '03 80 01 02 02012d' + '0000'.repeat(301)), 'Certificate.toBeSigned.list', 4, /301 items is outside 0..300/);
    expectError(decodeError(S.List, '0102 0001'), 'List[1]', 4, /needs 2 octets/);
  });
  it('rejects an open type or contained encoding that does not fill its length', () => {
    expectError(decodeError(S.Extension, '01 03 0001 ff'), 'Extension.content', 4, /left over/);
    expectError(decodeError(S.Containing, '03 0001 ff'), 'Containing', 3, /left over/);
    expectError(decodeError(S.Extension, '01 01 0001'), 'Extension.content', 2, /needs 2 octets but only 1 remain in the enclosing length/);
  });
  it('names the path through choices, arrays and refs', () => {
    expectError(decodeError(S.Data, '01 82 0101 02 81 03 80 01'), 'Data.content.list[0].content.nested.content.raw', 9, /needs 1 octet/);
  });
});

describe('encoder validation', () => {
  it('checks ranges, sizes and types with the component path', () => {
    expectError(encodeError(S.Simple, { a: 300 }), 'Simple.a', -1, /300 is outside 0..255/);
    expectError(encodeError(S.Simple, { a: 1.5 }), 'Simple.a', -1, /integer number/);
    expectError(encodeError(S.Uint64, 5), 'Uint64', -1, /bigint/);
    expectError(encodeError(S.HashedId8, new Uint8Array(7)), 'HashedId8', -1, /size 7 octets is outside 8..8/);
    expectError(encodeError(S.Bits12, '1'), 'Bits12', -1, /size 1 bits/);
    expectError(encodeError(S.Ia5, 'é'), 'Ia5', -1, /not allowed in IA5String/);
    expectError(encodeError(S.Utf8, '\uD800'), 'Utf8', -1, /lone surrogate/);
    expectError(encodeError(S.Permitted, 5), 'Permitted', -1, /not permitted/);
  });
  it('checks the shape of SEQUENCE and CHOICE values', () => {
    expectError(encodeError(S.Simple, {}), 'Simple.a', -1, /mandatory/);
    expectError(encodeError(S.Simple, { a: 1, z: 2 }), 'Simple', -1, /unknown component "z"/);
    expectError(encodeError(S.Closed, { a: 1, b: true }), 'Closed', -1, /2 keys/);
    expectError(encodeError(S.Closed, { c: 1 }), 'Closed', -1, /unknown alternative "c"/);
    expectError(encodeError(S.Closed, { $unknown: { tagClass: 'context', tag: 5, bytes: new Uint8Array() } }), 'Closed', -1, /extensible/);
    expectError(encodeError(S.Choice, { $unknown: { tagClass: 'context', tag: 0, bytes: new Uint8Array() } }), 'Choice', -1, /known alternative "small"/);
    expectError(encodeError(S.Choice, { excluded: true }), 'Choice.excluded', -1, /excluded/);
    expectError(encodeError(S.Presence, { free: 1 }), 'Presence.must', -1, /must be present/);
    expectError(encodeError(S.Presence, { must: 1, never: 2 }), 'Presence.never', -1, /must be absent/);
    expectError(encodeError(S.WithExtensions, { id: 1, g2: true }), 'WithExtensions.g1', -1, /mandatory/);
    expectError(encodeError(S.Fixed, 3), 'Fixed', -1, /non-extensible/);
    expectError(encodeError(S.Colour, 1), 'Colour', -1, /use its name/);
  });
  it('checks open types against the selector', () => {
    expectError(encodeError(S.Extension, { id: 1, content: { $unknownOpenType: new Uint8Array() } }), 'Extension.content', -1, /in the table/);
    expectError(encodeError(S.Extension, { id: 9, content: 5 }), 'Extension.content', -1, /not in the table/);
    expectError(encodeError(S.Extension, { id: 1, content: 70000 }), 'Extension.content', -1, /outside 0..65535/);
  });
});

describe('fromJson strictness', () => {
  it('rejects anything toJson does not produce, naming the path', () => {
    expectError(jsonError(S.Simple, { a: '1' }), 'Simple.a', -1, /integer number/);
    expectError(jsonError(S.Uint64, 5), 'Uint64', -1, /decimal integer string/);
    expectError(jsonError(S.Uint64, '05'), 'Uint64', -1, /decimal integer string/);
    expectError(jsonError(S.HashedId8, '00FF00FF00FF00FF'), 'HashedId8', -1, /lowercase hex/);
    expectError(jsonError(S.HashedId8, '00ff'), 'HashedId8', -1, /size 2 octets/);
    expectError(jsonError(S.Opaque, 'abc'), 'Opaque', -1, /even length/);
    expectError(jsonError(S.Simple, { a: 1, extra: 1 }), 'Simple', -1, /unknown component "extra"/);
        expectError(jsonError(S.Choice, { nope: 1 }), 'Choice', -1, /unknown alternative/);
    expectError(jsonError(S.Choice, { $unknown: { tagClass: 'context', tag: 4, bytes: 'XX' } }), 'Choice.$unknown.bytes', -1, /hex/);
    expectError(jsonError(S.Extension, { id: 9, content: 5 }), 'Extension.content', -1, /\$unknownOpenType/);
    expectError(jsonError(S.Data, { version: 1, content: { list: [{ version: 1, content: { raw: 5 } }] } }), 'Data.content.list[0].content.raw', -1, /hex/);
  });
});
