/** BOOLEAN (X.696 9), NULL (X.696 17) and ENUMERATED (X.696 11). */
import type { EnumeratedSchema } from '../schema.js';
import { decErr, describe, encErr, type Node } from './node.js';
import type { Reader } from './reader.js';
import type { Writer } from './writer.js';

export const booleanNode: Node = {
  enc(w: Writer, v: unknown) {
    if (typeof v !== 'boolean') throw encErr(`expected a boolean, got ${describe(v)}`);
    w.u8(v ? 0xff : 0x00);
  },
  dec(r: Reader) {
    const at = r.p;
    const b = r.u8();
    if (b === 0xff) return true;
    if (b === 0x00) return false;
    throw decErr(`BOOLEAN octet 0x${b.toString(16).padStart(2, '0')} is not canonical: only 0x00 (FALSE) and 0xff (TRUE)`, at);
  },
  toJ: (v) => v,
  fromJ(j) {
    if (typeof j !== 'boolean') throw encErr(`expected a boolean, got ${describe(j)}`);
    return j;
  },
};

export const nullNode: Node = {
  enc(_w: Writer, v: unknown) {
    if (v !== null) throw encErr(`expected null, got ${describe(v)}`);
  },
  dec: () => null,
  toJ: () => null,
  fromJ(j) {
    if (j !== null) throw encErr(`expected null, got ${describe(j)}`);
    return null;
  },
};

export function compileEnumerated(s: EnumeratedSchema): Node {
  const all = [...s.values, ...(s.extensionValues ?? [])];
  const byName = new Map<string, number>();
  const byValue = new Map<number, string>();
  for (const { name, value } of all) {
    byName.set(name, value);
    byValue.set(value, name);
  }
  const extensible = s.extensible;
  // Inner subtyping, e.g. `type (implicit)` (validation only): only these identifiers, no unknown values.
  const permitted = s.permitted === undefined ? undefined : new Set(s.permitted);
  const notPermitted = (v: string | number): string =>
    `${typeof v === 'string' ? JSON.stringify(v) : `value ${v}`} is excluded by an inner subtype constraint (permitted: ${s.permitted!.join(', ')})`;
  const check = (v: unknown): number => {
    if (typeof v === 'string') {
      const n = byName.get(v);
      if (n === undefined) throw encErr(`${JSON.stringify(v)} is not an enumeration of ${s.name ?? 'this type'}`);
      if (permitted !== undefined && !permitted.has(v)) throw encErr(notPermitted(v));
      return n;
    }
    if (typeof v === 'number' && Number.isSafeInteger(v)) {
      if (!extensible) throw encErr(`unknown enumeration value ${v} in a non-extensible ENUMERATED`);
      if (permitted !== undefined) throw encErr(notPermitted(v));
      if (byValue.has(v)) throw encErr(`value ${v} is the known enumeration "${byValue.get(v)}": use its name`);
      return v;
    }
    throw encErr(`expected an enumeration name, got ${describe(v)}`);
  };
  return {
    enc(w, v) {
      const n = check(v);
      // X.696 11.3: 0..127 in one octet; otherwise 0x80|k then k octets two's complement (11.4).
      if (n >= 0 && n < 128) {
        w.u8(n);
        return;
      }
      let k = 1;
      while (n < -(2 ** (8 * k - 1)) || n >= 2 ** (8 * k - 1)) k++;
      w.u8(0x80 | k);
      let u = BigInt.asUintN(8 * k, BigInt(n));
      const bytes = new Array<number>(k);
      for (let i = k - 1; i >= 0; i--) {
        bytes[i] = Number(u & 0xffn);
        u >>= 8n;
      }
      for (const b of bytes) w.u8(b);
    },
    dec(r) {
      const at = r.p;
      const first = r.u8();
      let n: number;
      if (first < 0x80) {
        n = first;
      } else {
        const k = first & 0x7f;
        if (k === 0 || k > 6) throw decErr(`ENUMERATED length octet 0x${first.toString(16)} is invalid`, at);
        const v = r.view(k);
        if (k > 1 && ((v[0] === 0 && v[1]! < 0x80) || (v[0] === 0xff && v[1]! >= 0x80))) {
          throw decErr(`ENUMERATED value of ${k} octets is not minimal`, at);
        }
        let u = 0;
        for (let i = 0; i < k; i++) u = u * 256 + v[i]!;
        n = u >= 2 ** (8 * k - 1) ? u - 2 ** (8 * k) : u;
        if (n >= 0 && n < 128) throw decErr(`ENUMERATED value ${n} is not canonical: 0..127 must use the single-octet form`, at);
      }
      const name = byValue.get(n);
      if (name !== undefined) {
        if (permitted !== undefined && !permitted.has(name)) throw decErr(notPermitted(name), at);
        return name;
      }
      if (!extensible) throw decErr(`unknown enumeration value ${n} in a non-extensible ENUMERATED`, at);
      if (permitted !== undefined) throw decErr(notPermitted(n), at);
      return n;
    },
    toJ: (v) => v,
    fromJ(j) {
      check(j);
      return j;
    },
  };
}
