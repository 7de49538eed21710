/**
 * CHOICE (X.696 23): the tag of the chosen alternative (X.696 8.7), then its encoding; an extension
 * alternative's encoding is wrapped as an open type. An unknown extension alternative decodes to
 * { $unknown: { tagClass, tag, bytes } } and re-encodes byte-exact.
 * Alternatives see the enclosing SEQUENCE value (`parent`): `permissions CHOICE { specific CLASS.&Issue({Set}{@.id}) }`.
 */
import type { AlternativeSchema, ChoiceSchema, Schema, TagClass } from '../schema.js';
import { fromHex, toHex } from './hex.js';
import { beginLength, endLength, enter, leave, readLength, writeLength } from './length.js';
import { decErr, describe, encErr, inPath, isPlainObject, type Node } from './node.js';
import type { Reader } from './reader.js';
import type { Writer } from './writer.js';

export const UNKNOWN_ALTERNATIVE = '$unknown';

const CLASSES: TagClass[] = ['universal', 'application', 'context', 'private'];

interface Alt {
  name: string;
  /** Builds { [name]: v } as an object literal (one hidden class per alternative). */
  wrap: (v: unknown) => Record<string, unknown>;
  node: Node;
  extension: boolean;
  permitted: boolean;
  tagBytes: Uint8Array;
}

/** X.696 8.7: class in bits 8-7; tag number in bits 6-1 if < 63, else 0x3f then base-128 (minimal). */
export function tagOctets(tagClass: TagClass, tag: number): Uint8Array {
  const cls = CLASSES.indexOf(tagClass) << 6;
  if (tag < 63) return Uint8Array.of(cls | tag);
  const groups: number[] = [];
  for (let t = tag; t > 0; t = Math.floor(t / 128)) groups.unshift(t % 128);
  return Uint8Array.of(cls | 0x3f, ...groups.map((g, i) => (i < groups.length - 1 ? g | 0x80 : g)));
}

function tagKey(cls: number, tag: number): number {
  return tag * 4 + cls;
}

function tagText(cls: number, tag: number): string {
  return `[${CLASSES[cls]} ${tag}]`;
}

/** Reads a tag; returns its key (tag * 4 + class). */
function readTag(r: Reader): number {
  const at = r.p;
  const first = r.u8();
  const cls = first >> 6;
  let tag = first & 0x3f;
  if (tag < 63) return tagKey(cls, tag);
  tag = 0;
  for (let i = 0; ; i++) {
    const o = r.u8();
    if (i === 0 && o === 0x80) throw decErr('tag is not canonical: leading 0x80 octet in the tag number', at);
    if (i >= 4) throw decErr('tag number is too large', at);
    tag = tag * 128 + (o & 0x7f);
    if ((o & 0x80) === 0) break;
  }
  if (tag < 63) throw decErr(`tag ${tagText(cls, tag)} is not canonical: numbers < 63 must use the single-octet form`, at);
  return tagKey(cls, tag);
}

/** A specialised constructor of the single-key object { [name]: v }: faster than a computed key. */
function literalOf(name: string): (v: unknown) => Record<string, unknown> {
  return new Function('v', `return { ${JSON.stringify(name)}: v };`) as (v: unknown) => Record<string, unknown>;
}

export function compileChoice(s: ChoiceSchema, compile: (s: Schema) => Node): Node {
  const mk = (a: AlternativeSchema, extension: boolean): Alt => ({
    name: a.name,
    wrap: literalOf(a.name),
    node: compile(a.schema),
    extension,
    permitted: a.permitted !== false,
    tagBytes: tagOctets(a.tagClass, a.tag),
  });
  const alts = [...s.alternatives.map((a) => mk(a, false)), ...(s.extensions ?? []).map((a) => mk(a, true))];
  const byName = new Map(alts.map((a) => [a.name, a]));
  const byKey = new Map<number, Alt>();
  const byOctet: Array<Alt | undefined> = new Array(256).fill(undefined);
  for (const a of [...s.alternatives, ...(s.extensions ?? [])]) {
    const alt = byName.get(a.name)!;
    const cls = CLASSES.indexOf(a.tagClass);
    byKey.set(tagKey(cls, a.tag), alt);
    if (a.tag < 63) byOctet[(cls << 6) | a.tag] = alt;
  }
  const extensible = s.extensible;

  /** The single key of a CHOICE value. */
  const keyOf = (v: unknown): string => {
    if (!isPlainObject(v)) throw encErr(`expected a single-key object {alternative: value}, got ${describe(v)}`);
    let key: string | undefined;
    let n = 0;
    for (const k in v) {
      key = k;
      n++;
    }
    if (n !== 1) throw encErr(`expected a single-key object {alternative: value}, got ${n} keys`);
    return key!;
  };

  const unknownOf = (u: unknown): { cls: number; tag: number; bytes: unknown } => {
    if (!extensible) throw encErr(`${UNKNOWN_ALTERNATIVE} is only allowed in an extensible CHOICE`);
    if (!isPlainObject(u)) throw encErr(`expected {tagClass, tag, bytes}, got ${describe(u)}`);
    const cls = CLASSES.indexOf(u.tagClass as TagClass);
    const tag = u.tag;
    if (cls < 0) throw encErr(`unknown tagClass ${describe(u.tagClass)}`);
    if (typeof tag !== 'number' || !Number.isInteger(tag) || tag < 0 || tag >= 2 ** 28) throw encErr(`invalid tag ${describe(tag)}`);
    if (byKey.has(tagKey(cls, tag))) throw encErr(`tag ${tagText(cls, tag)} belongs to the known alternative "${byKey.get(tagKey(cls, tag))!.name}"`);
    for (const k of Object.keys(u)) if (k !== 'tagClass' && k !== 'tag' && k !== 'bytes') throw encErr(`unexpected property "${k}"`);
    return { cls, tag, bytes: u.bytes };
  };

  const enc = (w: Writer, v: unknown, parent: Record<string, unknown> | undefined): void => {
    const key = keyOf(v);
    const inner = (v as Record<string, unknown>)[key];
    const a = byName.get(key);
    if (a === undefined) {
      if (key !== UNKNOWN_ALTERNATIVE) throw encErr(`unknown alternative "${key}"`);
      const u = unknownOf(inner);
      if (!(u.bytes instanceof Uint8Array)) throw inPath(encErr(`expected bytes as a Uint8Array, got ${describe(u.bytes)}`), key);
      w.bytes(tagOctets(CLASSES[u.cls]!, u.tag));
      writeLength(w, u.bytes.length);
      w.bytes(u.bytes);
      return;
    }
    if (!a.permitted) throw inPath(encErr('alternative is excluded by an inner subtype constraint'), key);
    const t = a.tagBytes;
    if (t.length === 1) w.u8(t[0]!);
    else w.bytes(t);
    try {
      if (a.extension) {
        const mark = beginLength(w);
        a.node.enc(w, inner, parent);
        endLength(w, mark);
      } else {
        a.node.enc(w, inner, parent);
      }
    } catch (e) {
      throw inPath(e, key);
    }
  };

  const dec = (r: Reader, parent: Record<string, unknown> | undefined): unknown => {
    const at = r.p;
    const first = r.b[at];
    let a = first === undefined || at >= r.end ? undefined : byOctet[first];
    let key = 0;
    if (a !== undefined) r.p++;
    else {
      key = readTag(r);
      a = byKey.get(key);
    }
    if (a === undefined) {
      const cls = key & 3;
      const tag = (key - cls) / 4;
      if (!extensible) throw decErr(`unknown tag ${tagText(cls, tag)} in a non-extensible CHOICE`, at);
      const bytes = r.copy(readLength(r));
      return { [UNKNOWN_ALTERNATIVE]: { tagClass: CLASSES[cls]!, tag, bytes } };
    }
    if (!a.permitted) throw inPath(decErr('alternative is excluded by an inner subtype constraint', at), a.name);
    let v: unknown;
    try {
      if (a.extension) {
        const n = readLength(r);
        const outer = enter(r, n);
        v = a.node.dec(r, parent);
        leave(r, outer, 'extension alternative');
      } else {
        v = a.node.dec(r, parent);
      }
    } catch (e) {
      throw inPath(e, a.name);
    }
    return a.wrap(v);
  };

  const toJ = (v: unknown, parent: Record<string, unknown> | undefined): unknown => {
    const key = keyOf(v);
    const inner = (v as Record<string, unknown>)[key];
    const a = byName.get(key);
    if (a === undefined) {
      const u = inner as { tagClass: TagClass; tag: number; bytes: Uint8Array };
      return { [key]: { tagClass: u.tagClass, tag: u.tag, bytes: u.bytes instanceof Uint8Array ? toHex(u.bytes) : u.bytes } };
    }
    try {
      return { [key]: a.node.toJ(inner, parent) };
    } catch (e) {
      throw inPath(e, key);
    }
  };

  const fromJ = (j: unknown, parent: Record<string, unknown> | undefined): unknown => {
    const key = keyOf(j);
    const inner = (j as Record<string, unknown>)[key];
    const a = byName.get(key);
    try {
      if (a !== undefined) return { [key]: a.node.fromJ(inner, parent) };
      if (key !== UNKNOWN_ALTERNATIVE) throw encErr(`unknown alternative "${key}"`);
      const u = unknownOf(inner);
      let bytes: Uint8Array;
      try {
        bytes = fromHex(u.bytes);
      } catch (e) {
        throw inPath(e, 'bytes');
      }
      return { [key]: { tagClass: CLASSES[u.cls]!, tag: u.tag, bytes } };
    } catch (e) {
      if (key !== UNKNOWN_ALTERNATIVE && a === undefined) throw e;
      throw inPath(e, key);
    }
  };

  return { enc, dec, toJ, fromJ };
}
