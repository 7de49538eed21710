/**
 * The codec contract: one Codec<T> per ASN.1 type, built from its Schema (../schema.ts).
 * Generated modules (src/codec/gen/) export, for every type, a TypeScript type and a const
 * of the same name: `export type Certificate = ...; export const Certificate = codec<Certificate>(schema)`.
 */
import type { Schema } from '../schema.js';

/** A strict-decoding or encoding failure: names the type path and the byte offset. */
export class CoerError extends Error {
  constructor(
    readonly reason: string,
    /** Dotted type/component path, e.g. "Certificate.toBeSigned.validityPeriod.duration". */
    readonly path: string,
    /** Byte offset in the input (decoding) or -1 (encoding). */
    readonly offset: number,
  ) {
    super(offset >= 0 ? `${path} at byte ${offset}: ${reason}` : `${path}: ${reason}`);
    this.name = 'CoerError';
  }
}

export interface Codec<T> {
  readonly schema: Schema;
  /** Canonical OER encoding; throws CoerError when the value violates the type. */
  encode(value: T): Uint8Array;
  /** Strict canonical OER decoding of exactly `bytes` (trailing bytes are an error). */
  decode(bytes: Uint8Array): T;
  /** Decodes one value at `offset` and returns it with the offset just past it. */
  decodePrefix(bytes: Uint8Array, offset?: number): { value: T; end: number };
  /** JSON mapping (octets as hex, bigint as decimal string, choice as {alternative: value}). */
  toJson(value: T): unknown;
  /** Inverse of toJson; throws CoerError on malformed JSON. */
  fromJson(json: unknown): T;
}

export { codec } from './build.js';
