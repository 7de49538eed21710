/** codec(schema): the public Codec<T> over a compiled Node. */
import type { Schema } from '../schema.js';
import { CoerError, type Codec } from './codec.js';
import { compile } from './compile.js';
import { decErr, inPath } from './node.js';
import { Reader } from './reader.js';
import { Writer } from './writer.js';

/** One writer reused by every encode call (encode is synchronous; a nested call gets its own). */
let spare: Writer | undefined = new Writer();

const codecs = new WeakMap<Schema, Codec<unknown>>();

export function codec<T>(schema: Schema): Codec<T> {
  let c = codecs.get(schema);
  if (c === undefined) {
    c = make(schema);
    codecs.set(schema, c);
  }
  return c as Codec<T>;
}

function make(schema: Schema): Codec<unknown> {
  const node = compile(schema);
  const name = schema.name ?? schema.kind;
  const wrap = (e: unknown): CoerError => inPath(e, name);
  const encode = (value: unknown): Uint8Array => {
    const w = spare ?? new Writer(256);
    spare = undefined;
    w.pos = 0;
    try {
      node.enc(w, value, undefined);
      return w.result();
    } catch (e) {
      throw wrap(e);
    } finally {
      // Keep the buffer for the next call unless one huge value made it large.
      spare = w.buf.length > 1 << 20 ? new Writer() : w;
    }
  };
  const decodePrefix = (bytes: Uint8Array, offset = 0): { value: unknown; end: number } => {
    if (!(bytes instanceof Uint8Array)) throw new CoerError('expected a Uint8Array', name, 0);
    const r = new Reader(bytes, offset);
    try {
      const value = node.dec(r, undefined);
      return { value, end: r.p };
    } catch (e) {
      throw wrap(e);
    }
  };
  return {
    schema,
    encode,
    decode(bytes) {
      const { value, end } = decodePrefix(bytes, 0);
      if (end !== bytes.length) throw wrap(decErr(`${bytes.length - end} trailing octet(s) after the value`, end));
      return value;
    },
    decodePrefix,
    toJson(value) {
      try {
        return node.toJ(value, undefined);
      } catch (e) {
        throw wrap(e);
      }
    },
    fromJson(json) {
      let value: unknown;
      try {
        value = node.fromJ(json, undefined);
      } catch (e) {
        throw wrap(e);
      }
      // Constraints (ranges, sizes, DEFAULT, presence) are those of the encoder: validate by encoding.
      encode(value);
      return value;
    },
  };
}
