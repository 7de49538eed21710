/**
 * COER codec throughput on a synthetic schema shaped like an IEEE 1609.2 implicit pseudonym
 * certificate (same kinds, nesting and sizes; not the generated types, so it runs on its own).
 */
import { codec } from '../codec/coer/codec.js';
import type { Schema } from '../codec/schema.js';

const u8: Schema = { kind: 'integer', min: 0n, max: 255n };
const u16: Schema = { kind: 'integer', min: 0n, max: 65535n };
const u32: Schema = { kind: 'integer', min: 0n, max: 4294967295n };
const octets = (n: number): Schema => ({ kind: 'octetString', minSize: n, maxSize: n });
const ctx = (name: string, tag: number, schema: Schema) => ({ name, tag, tagClass: 'context' as const, schema });

const EccP256CurvePoint: Schema = {
  kind: 'choice',
  name: 'EccP256CurvePoint',
  extensible: false,
  alternatives: [
    ctx('x-only', 0, octets(32)),
    ctx('fill', 1, { kind: 'null' }),
    ctx('compressed-y-0', 2, octets(32)),
    ctx('compressed-y-1', 3, octets(32)),
    ctx('uncompressedP256', 4, {
      kind: 'sequence',
      extensible: false,
      fields: [
        { name: 'x', schema: octets(32) },
        { name: 'y', schema: octets(32) },
      ],
    }),
  ],
};

const PsidSsp: Schema = {
  kind: 'sequence',
  name: 'PsidSsp',
  extensible: false,
  fields: [
    { name: 'psid', schema: { kind: 'integer', min: 0n } },
    {
      name: 'ssp',
      optional: true,
      schema: {
        kind: 'choice',
        extensible: true,
        alternatives: [ctx('opaque', 0, { kind: 'octetString' })],
        extensions: [ctx('bitmapSsp', 1, { kind: 'octetString', minSize: 1, maxSize: 31 })],
      },
    },
  ],
};

const ToBeSignedCertificate: Schema = {
  kind: 'sequence',
  name: 'ToBeSignedCertificate',
  extensible: true,
  fields: [
    {
      name: 'id',
      schema: {
        kind: 'choice',
        extensible: true,
        alternatives: [
          ctx('linkageData', 0, {
            kind: 'sequence',
            extensible: false,
            fields: [
              { name: 'iCert', schema: u16 },
              { name: 'linkage-value', schema: octets(9) },
              { name: 'group-linkage-value', schema: octets(13), optional: true },
            ],
          }),
          ctx('name', 1, { kind: 'charString', stringType: 'UTF8String', maxSize: 255 }),
          ctx('binaryId', 2, { kind: 'octetString', minSize: 1, maxSize: 64 }),
          ctx('none', 3, { kind: 'null' }),
        ],
      },
    },
    { name: 'cracaId', schema: octets(3) },
    { name: 'crlSeries', schema: u16 },
    {
      name: 'validityPeriod',
      schema: {
        kind: 'sequence',
        extensible: false,
        fields: [
          { name: 'start', schema: u32 },
          {
            name: 'duration',
            schema: {
              kind: 'choice',
              extensible: false,
              alternatives: ['microseconds', 'milliseconds', 'seconds', 'minutes', 'hours', 'sixtyHours', 'years'].map((n, i) =>
                ctx(n, i, u16),
              ),
            },
          },
        ],
      },
    },
    {
      name: 'region',
      optional: true,
      schema: {
        kind: 'choice',
        extensible: true,
        alternatives: [
          ctx('identifiedRegion', 3, {
            kind: 'sequenceOf',
            item: { kind: 'choice', extensible: true, alternatives: [ctx('countryOnly', 0, u16)] },
          }),
        ],
      },
    },
    { name: 'assuranceLevel', schema: octets(1), optional: true },
    { name: 'appPermissions', schema: { kind: 'sequenceOf', item: PsidSsp, minSize: 1 }, optional: true },
    { name: 'canRequestRollover', schema: { kind: 'null' }, optional: true },
    {
      name: 'verifyKeyIndicator',
      schema: {
        kind: 'choice',
        extensible: true,
        alternatives: [
          ctx('verificationKey', 0, { kind: 'choice', extensible: true, alternatives: [ctx('ecdsaNistP256', 0, EccP256CurvePoint)] }),
          ctx('reconstructionValue', 1, EccP256CurvePoint),
        ],
      },
    },
  ],
};

const Certificate: Schema = {
  kind: 'sequence',
  name: 'Certificate',
  extensible: false,
  fields: [
    { name: 'version', schema: u8 },
    { name: 'type', schema: { kind: 'enumerated', values: [{ name: 'explicit', value: 0 }, { name: 'implicit', value: 1 }], extensible: true } },
    {
      name: 'issuer',
      schema: {
        kind: 'choice',
        extensible: true,
        alternatives: [ctx('sha256AndDigest', 0, octets(8)), ctx('self', 1, u8), ctx('sha384AndDigest', 2, octets(8))],
      },
    },
    { name: 'toBeSigned', schema: ToBeSignedCertificate },
  ],
};

function sampleCertificate(): unknown {
  const bytes = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
  return {
    version: 3,
    type: 'implicit',
    issuer: { sha256AndDigest: bytes(8, 1) },
    toBeSigned: {
      id: { linkageData: { iCert: 17, 'linkage-value': bytes(9, 2) } },
      cracaId: bytes(3, 3),
      crlSeries: 1,
      validityPeriod: { start: 631152000, duration: { hours: 168 } },
      region: { identifiedRegion: [{ countryOnly: 840 }, { countryOnly: 124 }] },
      assuranceLevel: bytes(1, 4),
      appPermissions: [
        { psid: 32n, ssp: { opaque: bytes(3, 5) } },
        { psid: 38n },
        { psid: 0x20409bn, ssp: { bitmapSsp: bytes(4, 6) } },
        { psid: 135n, ssp: { opaque: bytes(12, 7) } },
      ],
      verifyKeyIndicator: { reconstructionValue: { 'compressed-y-0': bytes(32, 8) } },
    },
  };
}

function rate(ms: number, f: () => void): number {
  for (let i = 0; i < 2000; i++) f(); // warm-up
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    for (let i = 0; i < 500; i++) f();
    n += 500;
    t = performance.now();
  }
  return Math.round((n * 1000) / (t - t0));
}

export interface CoerBench {
  /** Size of the synthetic certificate in octets. */
  bytes: number;
  encodePerSec: number;
  decodePerSec: number;
  /** encode + decode of one certificate. */
  roundTripPerSec: number;
  toJsonPerSec: number;
}

/** Ops/s on one core for a certificate-like value (run for about `ms` per measurement). */
export function benchCoer(ms = 1000): CoerBench {
  const c = codec<unknown>(Certificate);
  const value = sampleCertificate();
  const encoded = c.encode(value);
  let sink = 0;
  const encodePerSec = rate(ms, () => {
    sink += c.encode(value).length;
  });
  const decodePerSec = rate(ms, () => {
    sink += c.decode(encoded) === null ? 1 : 0;
  });
  const roundTripPerSec = rate(ms, () => {
    sink += (c.decode(c.encode(value)) as { version: number }).version;
  });
  const toJsonPerSec = rate(ms, () => {
    sink += c.toJson(value) === null ? 1 : 0;
  });
  if (sink < 0) console.log(sink);
  return { bytes: encoded.length, encodePerSec, decodePerSec, roundTripPerSec, toJsonPerSec };
}
