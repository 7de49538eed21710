/**
 * Validation-only inner-subtyping facts (schema.ts): EnumeratedSchema.permitted (`type (implicit)`) and
 * OctetStringSchema.permittedValues (`cracaId ('000000'H)`) never change the bytes but are checked on
 * encode, decode and fromJson, and respected by arbitraryFor.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CoerError, codec } from '../../../src/codec/coer/codec.js';
import { ImplicitCertificate } from '../../../src/codec/gen/Ieee1609Dot2.js';
import type { Schema } from '../../../src/codec/schema.js';
import { arbitraryFor } from '../../helpers/arbitrary.js';

const h = (hex: string): Uint8Array => Uint8Array.from(Buffer.from(hex, 'hex'));

function failure(f: () => unknown): CoerError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(CoerError);
    return e as CoerError;
  }
  throw new Error('did not fail');
}

const Kind: Schema = {
  kind: 'enumerated',
  name: 'Kind',
  values: [{ name: 'explicit', value: 0 }, { name: 'implicit', value: 1 }],
  extensible: true,
  permitted: ['implicit'],
};
const Craca: Schema = { kind: 'octetString', name: 'HashedId3', minSize: 3, maxSize: 3, permittedValues: [h('000000')] };
const Var: Schema = { kind: 'octetString', name: 'Var', permittedValues: [h('01'), h('0203')] };
const T: Schema = {
  kind: 'sequence',
  name: 'T',
  extensible: false,
  fields: [
    { name: 'flag', schema: { kind: 'boolean' } },
    { name: 'type', schema: Kind },
    { name: 'cracaId', schema: Craca },
    { name: 'v', schema: Var },
  ],
};
const ok = { flag: true, type: 'implicit', cracaId: h('000000'), v: h('0203') };

describe('EnumeratedSchema.permitted', () => {
  it('encodes and decodes the permitted identifier unchanged', () => {
    // ff = TRUE, 01 = implicit, 000000 fixed, 02 0203 = length + octets
    expect(Buffer.from(codec(T).encode(ok)).toString('hex')).toBe('ff0100000002' + '0203');
    expect(codec(T).decode(h('ff010000000202' + '03'))).toEqual(ok);
  });

  it('rejects an excluded identifier and unknown values on encode, naming the path', () => {
    const e = failure(() => codec(T).encode({ ...ok, type: 'explicit' }));
    expect(e.path).toBe('T.type');
    expect(e.offset).toBe(-1);
    expect(e.reason).toMatch(/"explicit" is excluded by an inner subtype constraint/);
    expect(failure(() => codec(Kind).encode(7)).reason).toMatch(/value 7 is excluded/);
  });

  it('rejects an excluded identifier and unknown values on decode, naming path and offset', () => {
    const e = failure(() => codec(T).decode(h('ff00000000020203')));
    expect(e.path).toBe('T.type');
    expect(e.offset).toBe(1);
    expect(failure(() => codec(Kind).decode(h('07'))).offset).toBe(0);
  });

  it('rejects an excluded identifier from JSON', () => {
    expect(failure(() => codec(T).fromJson({ flag: true, type: 'explicit', cracaId: '000000', v: '01' })).path).toBe('T.type');
  });

  it('ImplicitCertificate (type (implicit)) rejects a deployed explicit certificate at its type octet', () => {
    const vectors = JSON.parse(readFileSync(resolve(import.meta.dirname, '../../vectors/scms-verified-vectors.json'), 'utf8'));
    const root = h(vectors.vectors.hashedid.vectors[0].certificate_coer);
    // Preamble (80: the OPTIONAL signature is present), version 03, then CertificateType 00 = explicit.
    expect([...root.subarray(0, 3)]).toEqual([0x80, 3, 0]);
    const e = failure(() => ImplicitCertificate.decode(root));
    expect(e.path).toBe('ImplicitCertificate.type');
    expect(e.offset).toBe(2);
  });
});

describe('OctetStringSchema.permittedValues', () => {
  it('rejects other values on encode, decode and fromJson', () => {
    const e = failure(() => codec(T).encode({ ...ok, cracaId: h('000001') }));
    expect(e.path).toBe('T.cracaId');
    expect(e.reason).toMatch(/'000001'H is excluded by an inner subtype constraint \(permitted: '000000'H\)/);
    const d = failure(() => codec(T).decode(h('ff01000001020203')));
    expect([d.path, d.offset]).toEqual(['T.cracaId', 2]);
    const v = failure(() => codec(T).decode(h('ff0100000001' + '02')));
    expect([v.path, v.offset]).toEqual(['T.v', 5]);
    expect(failure(() => codec(T).fromJson({ flag: true, type: 'implicit', cracaId: '000000', v: '02' })).path).toBe('T.v');
  });
});

describe('arbitraryFor', () => {
  it('generates only permitted identifiers and octets', () => {
    const xs = fc.sample(arbitraryFor(T, 3), { numRuns: 200, seed: 3 }) as Array<typeof ok>;
    for (const x of xs) {
      expect(x.type).toBe('implicit');
      expect(Buffer.from(x.cracaId).toString('hex')).toBe('000000');
      expect(['01', '0203']).toContain(Buffer.from(x.v).toString('hex'));
      expect(codec(T).decode(codec(T).encode(x))).toEqual(x);
    }
  });
});
