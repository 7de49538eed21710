/** OCTET STRING (X.696 15), BIT STRING (X.696 14) and the character string types (X.696 27). */
import type { BitStringSchema, CharStringSchema, OctetStringSchema } from '../schema.js';
import { fromHex, toHex } from './hex.js';
import { beginLength, endLength, enter, leave, readLength, writeLength } from './length.js';
import { decErr, describe, encErr, type Node } from './node.js';
import type { Reader } from './reader.js';

interface Sized {
  minSize?: number;
  maxSize?: number;
  sizeExtensible?: boolean;
}

/** X.696 14.1 / 15.1 / 27.1: fixed size (no length determinant) only for a non-extensible SIZE(n). */
export function fixedSizeOf(s: Sized): number | undefined {
  return s.minSize !== undefined && s.minSize === s.maxSize && !s.sizeExtensible ? s.minSize : undefined;
}

/** A size checker; an extensible SIZE constraint admits every size (X.680 49.8), so it checks nothing. */
export function sizeCheck(s: Sized, unit: string): (n: number) => string | undefined {
  const lo = s.sizeExtensible ? 0 : (s.minSize ?? 0);
  const hi = s.sizeExtensible ? Infinity : (s.maxSize ?? Infinity);
  return (n) => (n < lo || n > hi ? `size ${n} ${unit} is outside ${lo}..${hi === Infinity ? 'MAX' : hi}` : undefined);
}

/** The size of a fixed-size value, or the length determinant read and checked against the SIZE constraint (X.696 8.6). */
function readSize(r: Reader, fixed: number | undefined, check: (n: number) => string | undefined): number {
  if (fixed !== undefined) return fixed;
  const at = r.p;
  const n = readLength(r);
  const bad = check(n);
  if (bad !== undefined) throw decErr(bad, at);
  return n;
}

export function compileOctetString(s: OctetStringSchema, inner: Node | undefined): Node {
  const fixed = fixedSizeOf(s);
  const check = sizeCheck(s, 'octets');
  if (inner !== undefined) return containingNode(fixed, check, inner);
  const single = singleValues(s.permittedValues);
  return {
    enc(w, v) {
      if (!(v instanceof Uint8Array)) throw encErr(`expected a Uint8Array, got ${describe(v)}`);
      const bad = check(v.length) ?? single?.(v);
      if (bad !== undefined) throw encErr(bad);
      if (fixed === undefined) writeLength(w, v.length);
      w.bytes(v);
    },
    dec(r) {
      const at = r.p;
      const n = readSize(r, fixed, check);
      const v = r.copy(n);
      if (single !== undefined) {
        const bad = single(v);
        if (bad !== undefined) throw decErr(bad, at);
      }
      return v;
    },
    toJ: (v) => (v instanceof Uint8Array ? toHex(v) : v),
    fromJ: (j) => fromHex(j),
  };
}

/** Inner subtyping by single values, e.g. `cracaId ('000000'H)` (validation only): a checker, or undefined. */
function singleValues(values: Uint8Array[] | undefined): ((v: Uint8Array) => string | undefined) | undefined {
  if (values === undefined) return undefined;
  const hex = new Set(values.map(toHex));
  const list = [...hex].map((h) => `'${h}'H`).join(', ');
  return (v) => (hex.has(toHex(v)) ? undefined : `'${toHex(v)}'H is excluded by an inner subtype constraint (permitted: ${list})`);
}

/** OCTET STRING (CONTAINING T): the octets are the canonical encoding of T, decoded exactly. */
function containingNode(fixed: number | undefined, check: (n: number) => string | undefined, inner: Node): Node {
  return {
    enc(w, v) {
      const mark = fixed === undefined ? beginLength(w) : w.pos - 1;
      inner.enc(w, v, undefined);
      const n = w.pos - mark - 1;
      const bad = check(n);
      if (bad !== undefined) throw encErr(`contained encoding: ${bad}`);
      if (fixed === undefined) endLength(w, mark);
    },
    dec(r) {
      const at = r.p;
      const n = fixed ?? readLength(r);
      const bad = check(n);
      if (bad !== undefined) throw decErr(bad, at);
      const outer = enter(r, n);
      const v = inner.dec(r, undefined);
      leave(r, outer, 'the contained encoding');
      return v;
    },
    toJ: (v) => inner.toJ(v, undefined),
    fromJ: (j) => inner.fromJ(j, undefined),
  };
}

const BITS8: string[] = Array.from({ length: 256 }, (_, i) => i.toString(2).padStart(8, '0'));

export function compileBitString(s: BitStringSchema): Node {
  const fixed = fixedSizeOf(s);
  const check = sizeCheck(s, 'bits');
  const validate = (v: unknown): string => {
    if (typeof v !== 'string' || !/^[01]*$/.test(v)) throw encErr(`expected a string of '0'/'1' bits, got ${describe(v)}`);
    const bad = check(v.length);
    if (bad !== undefined) throw encErr(bad);
    return v;
  };
  return {
    enc(w, v) {
      const bits = validate(v);
      const n = bits.length;
      const octets = (n + 7) >> 3;
      if (fixed === undefined) {
        // X.696 14.3: length, then the number of unused bits in the last octet, then the bits.
        writeLength(w, octets + 1);
        w.u8((8 - (n & 7)) & 7);
      }
      const at = w.zeros(octets);
      const b = w.buf;
      for (let i = 0; i < n; i++) if (bits.charCodeAt(i) === 49) b[at + (i >> 3)]! |= 0x80 >> (i & 7);
    },
    dec(r) {
      const at = r.p;
      let n: number;
      let octets: number;
      if (fixed !== undefined) {
        n = fixed;
        octets = (n + 7) >> 3;
      } else {
        const len = readLength(r);
        if (len === 0) throw decErr('BIT STRING length 0 lacks the unused-bits octet', at);
        const unused = r.u8();
        octets = len - 1;
        if (unused > 7 || (octets === 0 && unused !== 0)) {
          throw decErr(`BIT STRING unused-bits octet ${unused} is invalid for ${octets} octet(s)`, r.p - 1);
        }
        n = octets * 8 - unused;
        const bad = check(n);
        if (bad !== undefined) throw decErr(bad, at);
      }
      const v = r.view(octets);
      const spare = octets * 8 - n;
      if (spare !== 0 && (v[octets - 1]! & ((1 << spare) - 1)) !== 0) {
        throw decErr(`BIT STRING unused trailing bits are not zero`, r.p - 1);
      }
      let out = '';
      for (let i = 0; i < octets; i++) out += BITS8[v[i]!];
      return spare === 0 ? out : out.slice(0, n);
    },
    toJ: (v) => v,
    fromJ: (j) => validate(j),
  };
}

/** Permitted alphabets (X.680 41): IA5 0..127, Visible 32..126, Printable and Numeric per Table 8/9. */
function alphabet(type: CharStringSchema['stringType']): Uint8Array | undefined {
  if (type === 'UTF8String') return undefined;
  const t = new Uint8Array(256);
  const allow = (chars: string): void => {
    for (const c of chars) t[c.charCodeAt(0)] = 1;
  };
  switch (type) {
    case 'IA5String':
      t.fill(1, 0, 128);
      break;
    case 'VisibleString':
      t.fill(1, 32, 127);
      break;
    case 'PrintableString':
      allow("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?");
      break;
    case 'NumericString':
      allow('0123456789 ');
      break;
  }
  return t;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();

function codePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdbff) n++;
  }
  return n;
}

export function compileCharString(s: CharStringSchema): Node {
  const chars = alphabet(s.stringType);
  const fixed = chars === undefined ? undefined : fixedSizeOf(s);
  const check = sizeCheck(s, 'characters');
  const type = s.stringType;
  const validate = (v: unknown): string => {
    if (typeof v !== 'string') throw encErr(`expected a string, got ${describe(v)}`);
    if (chars !== undefined) {
      for (let i = 0; i < v.length; i++) {
        const c = v.charCodeAt(i);
        if (c > 255 || chars[c] !== 1) throw encErr(`character ${JSON.stringify(v[i])} at index ${i} is not allowed in ${type}`);
      }
    } else if (LONE_SURROGATE.test(v)) {
      throw encErr('string contains a lone surrogate, which UTF-8 cannot encode');
    }
    const bad = check(chars === undefined ? codePoints(v) : v.length);
    if (bad !== undefined) throw encErr(bad);
    return v;
  };
  if (chars === undefined) {
    return {
      enc(w, v) {
        const str = validate(v);
        const mark = beginLength(w);
        w.ensure(str.length * 3);
        w.pos += utf8Encoder.encodeInto(str, w.buf.subarray(w.pos)).written;
        endLength(w, mark);
      },
      dec(r) {
        const at = r.p;
        const n = readLength(r);
        const body = r.p;
        let str: string;
        try {
          str = utf8Decoder.decode(r.view(n));
        } catch {
          throw decErr('UTF8String is not well-formed UTF-8', body);
        }
        const bad = check(codePoints(str));
        if (bad !== undefined) throw decErr(bad, at);
        return str;
      },
      toJ: (v) => v,
      fromJ: (j) => validate(j),
    };
  }
  return {
    enc(w, v) {
      const str = validate(v);
      const n = str.length;
      if (fixed === undefined) writeLength(w, n);
      w.ensure(n);
      const b = w.buf;
      const p = w.pos;
      for (let i = 0; i < n; i++) b[p + i] = str.charCodeAt(i);
      w.pos = p + n;
    },
    dec(r) {
      const at = r.p;
      const n = readSize(r, fixed, check);
      const p = r.need(n);
      const b = r.b;
      let str = '';
      for (let i = 0; i < n; i++) {
        const c = b[p + i]!;
        if (chars[c] !== 1) throw decErr(`octet 0x${c.toString(16).padStart(2, '0')} is not a ${type} character`, p + i);
        str += String.fromCharCode(c);
      }
      r.p = p + n;
      return str;
    },
    toJ: (v) => v,
    fromJ: (j) => validate(j),
  };
}
