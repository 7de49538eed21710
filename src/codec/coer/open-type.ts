/**
 * Open type constrained by a table constraint (X.696 30; X.681 / X.682 component relation):
 * length + the encoding of the type selected by the component `selector` of the innermost textually
 * enclosing SEQUENCE (`parent`, also across CHOICE and SEQUENCE OF levels; see node.ts).
 * A selector value outside the table keeps the raw octets: { $unknownOpenType: Uint8Array }.
 */
import type { OpenTypeSchema, Schema } from '../schema.js';
import { deepEqual } from './equal.js';
import { fromHex, toHex } from './hex.js';
import { beginLength, endLength, enter, leave, readLength, writeLength } from './length.js';
import { describe, encErr, inPath, isPlainObject, type Node } from './node.js';

export const UNKNOWN_OPEN_TYPE = '$unknownOpenType';

/**
 * Whether a value of `s` depends on the enclosing SEQUENCE value: an open type reached through CHOICE
 * alternatives and SEQUENCE OF items only (a nested SEQUENCE, a named type or CONTAINING is its own scope).
 */
export function readsParent(s: Schema): boolean {
  switch (s.kind) {
    case 'open':
      return true;
    case 'choice':
      return [...s.alternatives, ...(s.extensions ?? [])].some((a) => readsParent(a.schema));
    case 'sequenceOf':
      return readsParent(s.item);
    default:
      return false;
  }
}

export function compileOpenType(s: OpenTypeSchema, compile: (s: Schema) => Node): Node {
  const selector = s.selector;
  const rows = s.table.map((row) => ({ id: row.id, node: compile(row.schema) }));
  const primitive = rows.every((row) => typeof row.id !== 'object' || row.id === null);
  const map = primitive ? new Map(rows.map((row) => [row.id, row.node])) : undefined;
  const find = (parent: Record<string, unknown> | undefined): Node | undefined => {
    const id = parent?.[selector];
    if (map !== undefined) return map.get(id);
    for (const row of rows) if (deepEqual(row.id, id)) return row.node;
    return undefined;
  };
  const unknownBytes = (v: unknown, parent: Record<string, unknown> | undefined): Uint8Array => {
    if (!isPlainObject(v) || !(v[UNKNOWN_OPEN_TYPE] instanceof Uint8Array) || Object.keys(v).length !== 1) {
      throw encErr(`selector ${selector} = ${describe(parent?.[selector])} is not in the table: expected { ${UNKNOWN_OPEN_TYPE}: Uint8Array }, got ${describe(v)}`);
    }
    return v[UNKNOWN_OPEN_TYPE] as Uint8Array;
  };
  const isUnknown = (v: unknown): boolean => isPlainObject(v) && UNKNOWN_OPEN_TYPE in v;
  const known = (parent: Record<string, unknown> | undefined, v: unknown): Node | undefined => {
    const node = find(parent);
    if (node !== undefined && isUnknown(v)) {
      throw encErr(`${UNKNOWN_OPEN_TYPE} given but selector ${selector} = ${describe(parent?.[selector])} is in the table`);
    }
    return node;
  };
  return {
    enc(w, v, parent) {
      const node = known(parent, v);
      if (node === undefined) {
        const bytes = unknownBytes(v, parent);
        writeLength(w, bytes.length);
        w.bytes(bytes);
        return;
      }
      const mark = beginLength(w);
      node.enc(w, v, undefined);
      endLength(w, mark);
    },
    dec(r, parent) {
      const n = readLength(r);
      const node = find(parent);
      if (node === undefined) return { [UNKNOWN_OPEN_TYPE]: r.copy(n) };
      const outer = enter(r, n);
      const v = node.dec(r, undefined);
      leave(r, outer, 'open type');
      return v;
    },
    toJ(v, parent) {
      const node = find(parent);
      if (node === undefined) return { [UNKNOWN_OPEN_TYPE]: toHex(unknownBytes(v, parent)) };
      return node.toJ(v, undefined);
    },
    fromJ(j, parent) {
      const node = known(parent, j);
      if (node !== undefined) return node.fromJ(j, undefined);
      if (!isPlainObject(j) || Object.keys(j).length !== 1 || !(UNKNOWN_OPEN_TYPE in j)) {
        throw encErr(`selector ${selector} is not in the table: expected {"${UNKNOWN_OPEN_TYPE}": hex}, got ${describe(j)}`);
      }
      try {
        return { [UNKNOWN_OPEN_TYPE]: fromHex(j[UNKNOWN_OPEN_TYPE]) };
      } catch (e) {
        throw inPath(e, UNKNOWN_OPEN_TYPE);
      }
    },
  };
}
