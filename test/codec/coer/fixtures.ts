/** Hand-built schemas covering every kind of the IR (used by the unit and property tests). */
import type { FieldSchema, Schema } from '../../../src/codec/schema.js';

export const Uint8: Schema = { kind: 'integer', name: 'Uint8', min: 0n, max: 255n };
export const Uint16: Schema = { kind: 'integer', name: 'Uint16', min: 0n, max: 65535n };
export const Uint32: Schema = { kind: 'integer', name: 'Uint32', min: 0n, max: 4294967295n };
export const Uint64: Schema = { kind: 'integer', name: 'Uint64', min: 0n, max: 18446744073709551615n };
export const Int8: Schema = { kind: 'integer', name: 'Int8', min: -128n, max: 127n };
export const Int16: Schema = { kind: 'integer', name: 'Int16', min: -32768n, max: 32767n };
export const Int32: Schema = { kind: 'integer', name: 'Int32', min: -2147483648n, max: 2147483647n };
export const Int64: Schema = { kind: 'integer', name: 'Int64', min: -(2n ** 63n), max: 2n ** 63n - 1n };
/** Both bounds, within +-2^53 but needing 8 octets: number representation, 8-octet encoding. */
export const Big53: Schema = { kind: 'integer', name: 'Big53', min: -(2n ** 53n - 1n), max: 2n ** 53n - 1n };
export const Unconstrained: Schema = { kind: 'integer', name: 'Unconstrained' };
export const NonNegative: Schema = { kind: 'integer', name: 'NonNegative', min: 0n };
export const Huge: Schema = { kind: 'integer', name: 'Huge', min: 0n, max: 2n ** 70n };
export const Permitted: Schema = { kind: 'integer', name: 'Permitted', min: 0n, max: 255n, permitted: [[1n, 3n], [10n, 10n]] };
export const Bool: Schema = { kind: 'boolean', name: 'Bool' };
export const Null: Schema = { kind: 'null', name: 'Null' };
export const Colour: Schema = {
  kind: 'enumerated',
  name: 'Colour',
  values: [
    { name: 'red', value: 0 },
    { name: 'green', value: 1 },
    { name: 'far', value: 1000 },
    { name: 'minus', value: -1 },
  ],
  extensible: true,
  extensionValues: [{ name: 'blue', value: 200 }],
};
export const Fixed: Schema = { kind: 'enumerated', name: 'Fixed', values: [{ name: 'a', value: 0 }, { name: 'b', value: 127 }], extensible: false };
export const HashedId8: Schema = { kind: 'octetString', name: 'HashedId8', minSize: 8, maxSize: 8 };
export const Opaque: Schema = { kind: 'octetString', name: 'Opaque' };
export const Small: Schema = { kind: 'octetString', name: 'Small', minSize: 1, maxSize: 4 };
export const ExtSized: Schema = { kind: 'octetString', name: 'ExtSized', minSize: 4, maxSize: 4, sizeExtensible: true };
export const Bits12: Schema = { kind: 'bitString', name: 'Bits12', minSize: 12, maxSize: 12 };
export const Bits: Schema = { kind: 'bitString', name: 'Bits' };
export const Ia5: Schema = { kind: 'charString', name: 'Ia5', stringType: 'IA5String' };
export const Ia5Fixed: Schema = { kind: 'charString', name: 'Ia5Fixed', stringType: 'IA5String', minSize: 3, maxSize: 3 };
export const Printable: Schema = { kind: 'charString', name: 'Printable', stringType: 'PrintableString', maxSize: 10 };
export const Visible: Schema = { kind: 'charString', name: 'Visible', stringType: 'VisibleString' };
export const Numeric: Schema = { kind: 'charString', name: 'Numeric', stringType: 'NumericString', minSize: 1 };
export const Utf8: Schema = { kind: 'charString', name: 'Utf8', stringType: 'UTF8String', maxSize: 255 };

/** SEQUENCE { a Uint8, b Bool OPTIONAL, c Uint16 DEFAULT 7, ... } */
export const Simple: Schema = {
  kind: 'sequence',
  name: 'Simple',
  extensible: true,
  fields: [
    { name: 'a', schema: Uint8 },
    { name: 'b', schema: Bool, optional: true },
    { name: 'c', schema: Uint16, optional: true, default: 7 },
  ],
};

/** Non-extensible, nine optional components (preamble of two octets). */
export const NineOptional: Schema = {
  kind: 'sequence',
  name: 'NineOptional',
  extensible: false,
  fields: Array.from({ length: 9 }, (_, i): FieldSchema => ({ name: `f${i}`, schema: Uint8, optional: true })),
};

export const WithExtensions: Schema = {
  kind: 'sequence',
  name: 'WithExtensions',
  extensible: true,
  fields: [{ name: 'id', schema: Uint8 }],
  extensions: [
    { name: 'x1', schema: Utf8, optional: true },
    { group: [{ name: 'g1', schema: Uint16 }, { name: 'g2', schema: Bool, optional: true }] },
    { name: 'x3', schema: Uint32, optional: true, default: 5 },
    { group: [{ name: 'h1', schema: Bool, optional: true }, { name: 'h2', schema: Null, optional: true }] },
  ],
};

export const Presence: Schema = {
  kind: 'sequence',
  name: 'Presence',
  extensible: false,
  fields: [
    { name: 'must', schema: Uint8, optional: true, presence: 'present' },
    { name: 'never', schema: Uint8, optional: true, presence: 'absent' },
    { name: 'free', schema: Uint8, optional: true },
  ],
};

export const Choice: Schema = {
  kind: 'choice',
  name: 'Choice',
  extensible: true,
  alternatives: [
    { name: 'small', schema: Uint8, tag: 0, tagClass: 'context' },
    { name: 'text', schema: Ia5, tag: 1, tagClass: 'context' },
    { name: 'excluded', schema: Bool, tag: 2, tagClass: 'context', permitted: false },
    { name: 'app', schema: Null, tag: 5, tagClass: 'application' },
    { name: 'far', schema: Uint16, tag: 200, tagClass: 'private' },
  ],
  extensions: [
    { name: 'ext', schema: Simple, tag: 3, tagClass: 'context' },
    { name: 'extLong', schema: Bits, tag: 63, tagClass: 'context' },
  ],
};

export const Closed: Schema = {
  kind: 'choice',
  name: 'Closed',
  extensible: false,
  alternatives: [
    { name: 'a', schema: Uint8, tag: 0, tagClass: 'context' },
    { name: 'b', schema: Bool, tag: 1, tagClass: 'context' },
  ],
};

export const List: Schema = { kind: 'sequenceOf', name: 'List', item: Uint16, minSize: 0, maxSize: 300 };
export const NonEmpty: Schema = { kind: 'sequenceOf', name: 'NonEmpty', item: Choice, minSize: 1 };

/** OCTET STRING (CONTAINING Simple) */
export const Containing: Schema = { kind: 'octetString', name: 'Containing', containing: Simple };

/** Extension ::= SEQUENCE { id ExtId, content EXT.&Type({Set}{@.id}) } */
export const Extension: Schema = {
  kind: 'sequence',
  name: 'Extension',
  extensible: false,
  fields: [
    { name: 'id', schema: Uint8 },
    {
      name: 'content',
      schema: {
        kind: 'open',
        selector: 'id',
        table: [
          { id: 1, schema: Uint16 },
          { id: 2, schema: Simple },
          { id: 3, schema: Utf8 },
        ],
      },
    },
  ],
};

/** An open type selected by an OCTET STRING id (deep-equality lookup). */
export const ByBytes: Schema = {
  kind: 'sequence',
  name: 'ByBytes',
  extensible: true,
  fields: [
    { name: 'oid', schema: { kind: 'octetString', minSize: 2, maxSize: 2 } },
    { name: 'value', schema: { kind: 'open', selector: 'oid', table: [{ id: Uint8Array.of(1, 2), schema: Bool }] }, optional: true },
  ],
};

/** Recursive: Data ::= SEQUENCE { version Uint8, content CHOICE { raw Opaque, nested Data, list SEQUENCE OF Data } } */
export const Data: Schema = {
  kind: 'sequence',
  name: 'Data',
  extensible: false,
  fields: [
    { name: 'version', schema: Uint8 },
    {
      name: 'content',
      schema: {
        kind: 'choice',
        name: 'Content',
        extensible: true,
        alternatives: [
          { name: 'raw', schema: Opaque, tag: 0, tagClass: 'context' },
          { name: 'nested', schema: { kind: 'ref', name: 'Data', target: () => Data }, tag: 1, tagClass: 'context' },
          {
            name: 'list',
            schema: { kind: 'sequenceOf', item: { kind: 'ref', name: 'Data', target: () => Data } },
            tag: 2,
            tagClass: 'context',
          },
        ],
      },
    },
  ],
};

/** One of everything, for the property tests. */
export const Everything: Schema = {
  kind: 'sequence',
  name: 'Everything',
  extensible: true,
  fields: [
    { name: 'u8', schema: Uint8 },
    { name: 'i16', schema: Int16, optional: true },
    { name: 'u64', schema: Uint64 },
    { name: 'i64', schema: Int64, optional: true },
    { name: 'big', schema: Unconstrained, optional: true },
    { name: 'nat', schema: NonNegative, optional: true },
    { name: 'huge', schema: Huge, optional: true },
    { name: 'b53', schema: Big53, optional: true },
    { name: 'perm', schema: Permitted, optional: true },
    { name: 'colour', schema: Colour, optional: true, default: 'red' },
    { name: 'fixed', schema: Fixed },
    { name: 'hash', schema: HashedId8 },
    { name: 'opaque', schema: Opaque, optional: true },
    { name: 'small', schema: Small, optional: true },
    { name: 'extSized', schema: ExtSized, optional: true },
    { name: 'bits12', schema: Bits12, optional: true },
    { name: 'bits', schema: Bits, optional: true },
    { name: 'ia5', schema: Ia5, optional: true },
    { name: 'ia5f', schema: Ia5Fixed, optional: true },
    { name: 'printable', schema: Printable, optional: true },
    { name: 'visible', schema: Visible, optional: true },
    { name: 'numeric', schema: Numeric, optional: true },
    { name: 'utf8', schema: Utf8, optional: true },
    { name: 'null', schema: Null, optional: true },
    { name: 'choice', schema: Choice },
    { name: 'list', schema: List, optional: true },
    { name: 'containing', schema: Containing, optional: true },
    { name: 'extension', schema: Extension, optional: true },
    { name: 'byBytes', schema: ByBytes, optional: true },
    { name: 'data', schema: { kind: 'ref', name: 'Data', target: () => Data }, optional: true },
  ],
  extensions: [
    { name: 'later', schema: WithExtensions, optional: true },
    { group: [{ name: 'nine', schema: NineOptional }, { name: 'presence', schema: Presence, optional: true }] },
  ],
};

export const ALL: Record<string, Schema> = {
  Uint8, Uint16, Uint32, Uint64, Int8, Int16, Int32, Int64, Big53, Unconstrained, NonNegative, Huge, Permitted, Bool, Null,
  Colour, Fixed, HashedId8, Opaque, Small, ExtSized, Bits12, Bits, Ia5, Ia5Fixed, Printable, Visible, Numeric, Utf8, Simple,
  NineOptional, WithExtensions, Presence, Choice, Closed, List, NonEmpty, Containing, Extension, ByBytes, Data, Everything,
};
