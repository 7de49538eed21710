/**
 * SEQUENCE OF (X.696 20): quantity as length + minimal unsigned octets, then the items.
 * The items see the enclosing SEQUENCE value (`parent`): `extns SEQUENCE OF CLASS.&Extn({Set}{@.contributorId})`.
 */
import type { SequenceOfSchema } from '../schema.js';
import { unsignedOctets, writeLength } from './length.js';
import { decErr, describe, encErr, inPath, type Node } from './node.js';
import { sizeCheck } from './strings.js';

export function compileSequenceOf(s: SequenceOfSchema, item: Node): Node {
  const check = sizeCheck(s, 'items');
  return {
    enc(w, v, parent) {
      if (!Array.isArray(v)) throw encErr(`expected an array, got ${describe(v)}`);
      const n = v.length;
      const bad = check(n);
      if (bad !== undefined) throw encErr(bad);
      const k = unsignedOctets(n);
      writeLength(w, k);
      for (let i = k - 1; i >= 0; i--) w.u8(Math.floor(n / 2 ** (8 * i)) & 0xff);
      for (let i = 0; i < n; i++) {
        try {
          item.enc(w, v[i], parent);
        } catch (e) {
          throw inPath(e, `[${i}]`);
        }
      }
    },
    dec(r, parent) {
      const at = r.p;
      const k = r.u8();
      if (k === 0 || k > 4) throw decErr(`quantity of ${k} octets is ${k === 0 ? 'empty' : 'larger than any input'}`, at);
      const q = r.view(k);
      if (k > 1 && q[0] === 0) throw decErr(`quantity of ${k} octets is not minimal: leading zero octet`, at);
      let n = 0;
      for (let i = 0; i < k; i++) n = n * 256 + q[i]!;
      const bad = check(n);
      if (bad !== undefined) throw decErr(bad, at);
      // Items of any type here take at least one octet, except those that encode to nothing.
      if (n > r.end - r.p && n > 0xffff) throw decErr(`quantity ${n} exceeds the remaining input`, at);
      const out = new Array<unknown>(n);
      for (let i = 0; i < n; i++) {
        try {
          out[i] = item.dec(r, parent);
        } catch (e) {
          throw inPath(e, `[${i}]`);
        }
      }
      return out;
    },
    toJ(v, parent) {
      if (!Array.isArray(v)) return v;
      return v.map((x, i) => {
        try {
          return item.toJ(x, parent);
        } catch (e) {
          throw inPath(e, `[${i}]`);
        }
      });
    },
    fromJ(j, parent) {
      if (!Array.isArray(j)) throw encErr(`expected an array, got ${describe(j)}`);
      return j.map((x, i) => {
        try {
          return item.fromJ(x, parent);
        } catch (e) {
          throw inPath(e, `[${i}]`);
        }
      });
    },
  };
}
