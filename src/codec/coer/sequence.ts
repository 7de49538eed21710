/**
 * SEQUENCE (X.696 16): preamble (extension bit, then one presence bit per OPTIONAL/DEFAULT root
 * component, zero-padded to an octet), root components, then, when the extension bit is 1, the
 * extension presence bitmap (X.696 16.4) and every present addition as an open type.
 *
 * Unknown extension additions (from a newer version of the type) are kept in `$unknownExtensions`:
 * one entry per bitmap bit after the known additions, the addition's raw encoding or null when absent.
 *
 * Bitmap length (X.696 16.4): the encoder writes one bit per extension addition of the type as it knows
 * it, i.e. all known additions (plus the `$unknownExtensions` entries). A sender with an older version of
 * the type writes fewer bits; the decoder then records that length in the non-enumerable property
 * EXTENSION_BITMAP_LENGTH so that re-encoding the decoded value reproduces the bitmap byte for byte.
 */
import type { ExtensionGroupSchema, FieldSchema, Schema, SequenceSchema } from '../schema.js';
import { deepEqual } from './equal.js';
import { fromHex, toHex } from './hex.js';
import { beginLength, endLength, enter, leave, readLength, writeLength } from './length.js';
import { decErr, describe, encErr, inPath, isPlainObject, type Node } from './node.js';
import { readsParent } from './open-type.js';
import type { Reader } from './reader.js';
import type { Writer } from './writer.js';

export const UNKNOWN_EXTENSIONS = '$unknownExtensions';

/**
 * Hidden (non-enumerable) property of a decoded SEQUENCE value: the number of bits of the received extension
 * presence bitmap when it is shorter than the number of known additions (a sender with an older version).
 */
export const EXTENSION_BITMAP_LENGTH: unique symbol = Symbol.for('scms.coer.extensionBitmapLength');

type Obj = Record<string, unknown>;

interface Field {
  name: string;
  node: Node;
  optional: boolean;
  hasDefault: boolean;
  def: unknown;
  presence: 'present' | 'absent' | undefined;
  /** Components holding an open type (also inside CHOICE / SEQUENCE OF) are converted from JSON after their siblings (they read the selector). */
  isOpen: boolean;
}

interface Group {
  fields: Field[];
  /** Octets of the group's own preamble (one bit per optional component, no extension bit). */
  preOctets: number;
}

type Addition = { field: Field } | { group: Group };

function field(f: FieldSchema, compile: (s: Schema) => Node): Field {
  const hasDefault = f.default !== undefined;
  return {
    name: f.name,
    node: compile(f.schema),
    optional: f.optional === true || hasDefault,
    hasDefault,
    def: f.default,
    presence: f.presence,
    isOpen: readsParent(f.schema),
  };
}

/** Whether a component counts as present: defined and (for DEFAULT) not equal to the default (X.696 16.3). */
function isPresent(f: Field, v: unknown): boolean {
  return v !== undefined && !(f.hasDefault && deepEqual(v, f.def));
}

export function compileSequence(s: SequenceSchema, compile: (s: Schema) => Node): Node {
  const fields = s.fields.map((f) => field(f, compile));
  const extensible = s.extensible;
  const additions: Addition[] = (s.extensions ?? []).map((e) =>
    'group' in e
      ? { group: groupOf(e, compile) }
      : { field: field(e as FieldSchema, compile) },
  );
  const allFields: Field[] = [...fields];
  for (const a of additions) {
    if ('field' in a) allFields.push(a.field);
    else allFields.push(...a.group.fields);
  }
  const known = new Set(allFields.map((f) => f.name));
  const bits = (extensible ? 1 : 0) + fields.filter((f) => f.optional).length;
  const preOctets = (bits + 7) >> 3;
  const nExt = additions.length;

  const encodeFields = (w: Writer, obj: Obj, list: Field[], pre: number, firstBit: number): number => {
    let bit = firstBit;
    let seen = 0;
    for (let i = 0; i < list.length; i++) {
      const f = list[i]!;
      const v = obj[f.name];
      if (v !== undefined) seen++;
      if (f.optional) {
        const b = bit++;
        if (!isPresent(f, v)) {
          if (v === undefined && f.presence === 'present' && !f.hasDefault) {
            throw inPath(encErr('component must be present (inner subtype constraint)'), f.name);
          }
          continue;
        }
        if (f.presence === 'absent') throw inPath(encErr('component must be absent (inner subtype constraint)'), f.name);
        w.buf[pre + (b >> 3)]! |= 0x80 >> (b & 7);
      } else if (v === undefined) {
        throw inPath(encErr('mandatory component is missing'), f.name);
      }
      try {
        f.node.enc(w, v, obj);
      } catch (e) {
        throw inPath(e, f.name);
      }
    }
    return seen;
  };

  const enc = (w: Writer, v: unknown): void => {
    if (!isPlainObject(v)) throw encErr(`expected an object, got ${describe(v)}`);
    const pre = preOctets === 0 ? 0 : w.zeros(preOctets);
    let seen = encodeFields(w, v, fields, pre, extensible ? 1 : 0);
    if (extensible) {
      const unknown = v[UNKNOWN_EXTENSIONS];
      if (unknown !== undefined) seen++;
      seen += encodeExtensions(w, v, pre, unknown);
    }
    // Every own defined property must be a component: catches misspelt names.
    let count = 0;
    for (const k in v) if (v[k] !== undefined) count++;
    if (count !== seen) {
      for (const k in v) {
        if (v[k] !== undefined && !known.has(k) && !(extensible && k === UNKNOWN_EXTENSIONS)) {
          throw encErr(`unknown component "${k}"`);
        }
      }
    }
  };

  /** X.696 16.4: bitmap of present additions, then each one as an open type. Returns properties consumed. */
  const encodeExtensions = (w: Writer, obj: Obj, pre: number, unknown: unknown): number => {
    let seen = 0;
    let any = false;
    /** One past the last present known addition. */
    let last = 0;
    for (let i = 0; i < nExt; i++) {
      const a = additions[i]!;
      if ('field' in a) {
        const v = obj[a.field.name];
        if (v !== undefined) seen++;
        if (isPresent(a.field, v)) {
          any = true;
          last = i + 1;
        }
      } else {
        for (const f of a.group.fields) {
          const v = obj[f.name];
          if (v !== undefined) seen++;
          if (isPresent(f, v)) {
            any = true;
            last = i + 1;
          }
        }
      }
    }
    let extra: Array<Uint8Array | null> = [];
    if (unknown !== undefined) {
      if (!Array.isArray(unknown) || !unknown.every((u) => u === null || u instanceof Uint8Array)) {
        throw inPath(encErr('expected an array of Uint8Array or null'), UNKNOWN_EXTENSIONS);
      }
      extra = unknown as Array<Uint8Array | null>;
      if (extra.some((u) => u !== null)) any = true;
    }
    if (!any) {
      if (extra.length > 0) throw inPath(encErr('unknown extension entries without any present addition'), UNKNOWN_EXTENSIONS);
      return seen;
    }
    w.buf[pre]! |= 0x80;
    let nbits = nExt + extra.length;
    // A value decoded from an older sender keeps that sender's (shorter) bitmap, grown if needed.
    const received = obj[EXTENSION_BITMAP_LENGTH as unknown as string];
    if (extra.length === 0 && typeof received === 'number' && received < nExt) nbits = Math.max(received, last);
    const octets = (nbits + 7) >> 3;
    writeLength(w, octets + 1);
    w.u8((8 - (nbits & 7)) & 7);
    const map = w.zeros(octets);
    const nKnown = Math.min(nExt, nbits);
    for (let i = 0; i < nKnown; i++) {
      const a = additions[i]!;
      if ('field' in a) {
        const f = a.field;
        const v = obj[f.name];
        if (!isPresent(f, v)) continue;
        w.buf[map + (i >> 3)]! |= 0x80 >> (i & 7);
        const mark = beginLength(w);
        try {
          f.node.enc(w, v, obj);
        } catch (e) {
          throw inPath(e, f.name);
        }
        endLength(w, mark);
      } else {
        const g = a.group;
        if (!g.fields.some((f) => isPresent(f, obj[f.name]))) continue;
        w.buf[map + (i >> 3)]! |= 0x80 >> (i & 7);
        const mark = beginLength(w);
        const gpre = g.preOctets === 0 ? 0 : w.zeros(g.preOctets);
        encodeFields(w, obj, g.fields, gpre, 0);
        endLength(w, mark);
      }
    }
    for (let j = 0; j < extra.length; j++) {
      const u = extra[j]!;
      if (u === null) continue;
      const i = nExt + j;
      w.buf[map + (i >> 3)]! |= 0x80 >> (i & 7);
      writeLength(w, u.length);
      w.bytes(u);
    }
    return seen;
  };

  /** Decodes component f into obj; a value equal to its DEFAULT must have been absent (X.696 16.3, canonical). */
  const decodeField = (r: Reader, obj: Obj, f: Field): void => {
    const at = r.p;
    let v: unknown;
    try {
      v = f.node.dec(r, obj);
    } catch (e) {
      throw inPath(e, f.name);
    }
    if (f.hasDefault && deepEqual(v, f.def)) {
      throw inPath(decErr('is not canonical: a value equal to the DEFAULT must be absent', at), f.name);
    }
    obj[f.name] = v;
  };

  /** Decodes components `list` into obj, reading presence bits from the preamble at `pre`. */
  const decodeFields = (r: Reader, obj: Obj, list: Field[], pre: number, firstBit: number): void => {
    const b = r.b;
    let bit = firstBit;
    for (let i = 0; i < list.length; i++) {
      const f = list[i]!;
      if (f.optional) {
        const k = bit++;
        if ((b[pre + (k >> 3)]! & (0x80 >> (k & 7))) === 0) {
          if (f.presence === 'present' && !f.hasDefault) {
            throw inPath(decErr('component must be present (inner subtype constraint) but is absent', pre), f.name);
          }
          continue;
        }
        if (f.presence === 'absent') {
          throw inPath(decErr('component must be absent (inner subtype constraint) but is present', pre), f.name);
        }
      }
      decodeField(r, obj, f);
    }
  };

  /** Reads a preamble of `octets` and checks its padding bits after `used` bits are zero (X.696 16.2.2). */
  const readPreamble = (r: Reader, octets: number, used: number): number => {
    const pre = r.need(octets);
    if (octets !== 0) {
      const spare = octets * 8 - used;
      if ((r.b[pre + octets - 1]! & ((1 << spare) - 1)) !== 0) {
        throw decErr('preamble padding bits are not zero', pre + octets - 1);
      }
    }
    r.p = pre + octets;
    return pre;
  };

  const dec = (r: Reader): Obj => {
    const pre = readPreamble(r, preOctets, bits);
    const obj: Obj = {};
    decodeFields(r, obj, fields, pre, extensible ? 1 : 0);
    if (extensible && (r.b[pre]! & 0x80) !== 0) decodeExtensions(r, obj);
    return obj;
  };

  const decodeExtensions = (r: Reader, obj: Obj): void => {
    const at = r.p;
    const len = readLength(r);
    if (len < 2) throw decErr(`extension presence bitmap of length ${len} has no bits`, at);
    const unused = r.u8();
    if (unused > 7) throw decErr(`extension bitmap unused-bits octet ${unused} is greater than 7`, r.p - 1);
    const octets = len - 1;
    const nbits = octets * 8 - unused;
    const map = r.p;
    const b = r.b;
    r.p += octets;
    if (unused !== 0 && (b[map + octets - 1]! & ((1 << unused) - 1)) !== 0) {
      throw decErr('extension bitmap unused trailing bits are not zero', map + octets - 1);
    }
    let any = false;
    for (let i = 0; i < octets; i++) if (b[map + i] !== 0) any = true;
    if (!any) throw decErr('extension bit is set but no extension addition is present (not canonical)', at);
    const extra: Array<Uint8Array | null> | undefined = nbits > nExt ? [] : undefined;
    for (let i = 0; i < nbits; i++) {
      const present = (b[map + (i >> 3)]! & (0x80 >> (i & 7))) !== 0;
      if (i >= nExt) {
        extra!.push(present ? r.copy(readLength(r)) : null);
        continue;
      }
      if (!present) continue;
      const a = additions[i]!;
      const lenAt = r.p;
      const n = readLength(r);
      const outer = enter(r, n);
      if ('field' in a) {
        decodeField(r, obj, a.field);
      } else {
        const g = a.group;
        const gbits = g.fields.filter((f) => f.optional).length;
        const gpre = readPreamble(r, g.preOctets, gbits);
        decodeFields(r, obj, g.fields, gpre, 0);
        if (!g.fields.some((f) => obj[f.name] !== undefined)) {
          throw decErr('extension addition group is present but all its components are absent (not canonical)', lenAt);
        }
      }
      leave(r, outer, 'extension addition');
    }
    if (extra !== undefined) obj[UNKNOWN_EXTENSIONS] = extra;
    else if (nbits < nExt) Object.defineProperty(obj, EXTENSION_BITMAP_LENGTH, { value: nbits, writable: true, configurable: true });
  };

  const toJ = (v: unknown): unknown => {
    if (!isPlainObject(v)) return v;
    const out: Obj = {};
    for (const f of allFields) {
      const fv = v[f.name];
      if (fv !== undefined) {
        try {
          out[f.name] = f.node.toJ(fv, v);
        } catch (e) {
          throw inPath(e, f.name);
        }
      }
    }
    const u = v[UNKNOWN_EXTENSIONS];
    if (Array.isArray(u)) out[UNKNOWN_EXTENSIONS] = u.map((x) => (x instanceof Uint8Array ? toHex(x) : null));
    return out;
  };

  const fromJ = (j: unknown): unknown => {
    if (!isPlainObject(j)) throw encErr(`expected an object, got ${describe(j)}`);
    for (const k of Object.keys(j)) {
      if (!known.has(k) && !(extensible && k === UNKNOWN_EXTENSIONS)) throw encErr(`unknown component "${k}"`);
    }
    const out: Obj = {};
    for (const pass of [false, true]) {
      for (const f of allFields) {
        if (f.isOpen !== pass) continue;
        const fj = j[f.name];
        if (fj === undefined) continue;
        try {
          out[f.name] = f.node.fromJ(fj, out);
        } catch (e) {
          throw inPath(e, f.name);
        }
      }
    }
    const u = j[UNKNOWN_EXTENSIONS];
    if (u !== undefined) {
      if (!Array.isArray(u)) throw inPath(encErr('expected an array of hex strings or null'), UNKNOWN_EXTENSIONS);
      out[UNKNOWN_EXTENSIONS] = u.map((x, i) => {
        try {
          return x === null ? null : fromHex(x);
        } catch (e) {
          throw inPath(e, `${UNKNOWN_EXTENSIONS}[${i}]`);
        }
      });
    }
    // Restore the component order of the type (open types were converted last).
    const ordered: Obj = {};
    for (const f of allFields) if (out[f.name] !== undefined) ordered[f.name] = out[f.name];
    if (out[UNKNOWN_EXTENSIONS] !== undefined) ordered[UNKNOWN_EXTENSIONS] = out[UNKNOWN_EXTENSIONS];
    return ordered;
  };

  return { enc, dec, toJ, fromJ };
}

function groupOf(g: ExtensionGroupSchema, compile: (s: Schema) => Node): Group {
  const fields = g.group.map((f) => field(f, compile));
  return { fields, preOctets: (fields.filter((f) => f.optional).length + 7) >> 3 };
}
