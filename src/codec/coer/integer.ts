/** INTEGER (X.696 10): fixed-size octets when both bounds are OER-visible, else length + minimal octets. */
import type { IntegerSchema } from '../schema.js';
import { readLength, unsignedOctets, writeLength } from './length.js';
import { decErr, describe, encErr, type Node } from './node.js';
import type { Reader } from './reader.js';
import type { Writer } from './writer.js';

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const TWO32 = 4294967296;

/** X.696 10.2 / 10.3: octets of the fixed-size form chosen from the bounds, or 0 for the length form. */
export function fixedSize(min: bigint | undefined, max: bigint | undefined): number {
  if (min === undefined || max === undefined) return 0;
  if (min >= 0n) {
    if (max <= 0xffn) return 1;
    if (max <= 0xffffn) return 2;
    if (max <= 0xffffffffn) return 4;
    if (max <= 0xffffffffffffffffn) return 8;
    return 0;
  }
  if (min >= -0x80n && max <= 0x7fn) return 1;
  if (min >= -0x8000n && max <= 0x7fffn) return 2;
  if (min >= -0x80000000n && max <= 0x7fffffffn) return 4;
  if (min >= -0x8000000000000000n && max <= 0x7fffffffffffffffn) return 8;
  return 0;
}

/** Runtime representation: number when both bounds exist and lie within +-(2^53-1). */
export function isNumberMode(s: IntegerSchema): boolean {
  return s.min !== undefined && s.max !== undefined && s.min >= -MAX_SAFE && s.max <= MAX_SAFE;
}

function rangeText(min: unknown, max: unknown): string {
  return `${min ?? 'MIN'}..${max ?? 'MAX'}`;
}

export function compileInteger(s: IntegerSchema): Node {
  const size = fixedSize(s.min, s.max);
  const signed = s.min === undefined || s.min < 0n;
  return isNumberMode(s) ? numberNode(s, size, signed) : bigintNode(s, size, signed);
}

function numberNode(s: IntegerSchema, size: number, signed: boolean): Node {
  const lo = Number(s.min);
  const hi = Number(s.max);
  const permitted = s.permitted?.map(([a, b]) => [Number(a), Number(b)] as const);
  const check = (v: number): string | undefined => {
    if (v < lo || v > hi) return `value ${v} is outside ${lo}..${hi}`;
    if (permitted !== undefined && !permitted.some(([a, b]) => v >= a && v <= b)) {
      return `value ${v} is not permitted (allowed: ${permitted.map(([a, b]) => (a === b ? `${a}` : `${a}..${b}`)).join(', ')})`;
    }
    return undefined;
  };
  const enc = (w: Writer, v: unknown): void => {
    if (typeof v !== 'number' || !Number.isInteger(v)) throw encErr(`expected an integer number, got ${describe(v)}`);
    const bad = check(v);
    if (bad !== undefined) throw encErr(bad);
    w.ensure(size);
    const b = w.buf;
    const p = w.pos;
    switch (size) {
      case 1:
        b[p] = v & 0xff;
        break;
      case 2:
        b[p] = (v >>> 8) & 0xff;
        b[p + 1] = v & 0xff;
        break;
      case 4:
        b[p] = (v >>> 24) & 0xff;
        b[p + 1] = (v >>> 16) & 0xff;
        b[p + 2] = (v >>> 8) & 0xff;
        b[p + 3] = v & 0xff;
        break;
      default: {
        const h = Math.floor(v / TWO32);
        const l = v - h * TWO32;
        b[p] = (h >>> 24) & 0xff;
        b[p + 1] = (h >>> 16) & 0xff;
        b[p + 2] = (h >>> 8) & 0xff;
        b[p + 3] = h & 0xff;
        b[p + 4] = (l >>> 24) & 0xff;
        b[p + 5] = (l >>> 16) & 0xff;
        b[p + 6] = (l >>> 8) & 0xff;
        b[p + 7] = l & 0xff;
      }
    }
    w.pos = p + size;
  };
  const dec = (r: Reader): number => {
    const p = r.p;
    if (size > r.end - p) r.need(size);
    const b = r.b;
    let v: number;
    switch (size) {
      case 1:
        v = signed ? (b[p]! << 24) >> 24 : b[p]!;
        break;
      case 2:
        v = (b[p]! << 8) | b[p + 1]!;
        if (signed) v = (v << 16) >> 16;
        break;
      case 4:
        v = (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
        if (!signed) v >>>= 0;
        break;
      default: {
        let h = (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
        if (!signed) h >>>= 0;
        const l = ((b[p + 4]! << 24) | (b[p + 5]! << 16) | (b[p + 6]! << 8) | b[p + 7]!) >>> 0;
        v = h * TWO32 + l;
      }
    }
    if (v < lo || v > hi || permitted !== undefined) {
      const bad = check(v);
      if (bad !== undefined) throw decErr(bad, p);
    }
    r.p = p + size;
    return v;
  };
  return {
    enc,
    dec,
    toJ: (v) => v,
    fromJ: (j) => {
      if (typeof j !== 'number' || !Number.isSafeInteger(j)) throw encErr(`expected an integer number, got ${describe(j)}`);
      return j;
    },
  };
}

/** Minimal two's-complement octet count of v (X.696 10.4 c). */
function signedOctets(v: bigint): number {
  const m = v < 0n ? ~v : v;
  if (m <= MAX_SAFE) {
    let n = Number(m);
    let k = 1;
    while (n >= 128) {
      n = Math.floor(n / 256);
      k++;
    }
    return k;
  }
  const bits = m === 0n ? 0 : m.toString(2).length;
  return (bits >> 3) + 1;
}

/** Minimal unsigned octet count of v >= 0 (X.696 10.3 c), at least 1. */
function unsignedBigOctets(v: bigint): number {
  if (v <= MAX_SAFE) return unsignedOctets(Number(v));
  return (v.toString(16).length + 1) >> 1;
}

function writeBig(w: Writer, u: bigint, k: number): void {
  w.ensure(k);
  const b = w.buf;
  const p = w.pos;
  if (k <= 6) {
    let n = Number(u);
    for (let i = k - 1; i >= 0; i--) {
      b[p + i] = n & 0xff;
      n = Math.floor(n / 256);
    }
    w.pos = p + k;
    return;
  }
  for (let i = k - 1; i >= 0; i--) {
    b[p + i] = Number(u & 0xffn);
    u >>= 8n;
  }
  w.pos = p + k;
}

function readBig(b: Uint8Array, p: number, k: number): bigint {
  if (k <= 6) {
    let n = 0;
    for (let i = 0; i < k; i++) n = n * 256 + b[p + i]!;
    return BigInt(n);
  }
  let h = '0x';
  for (let i = 0; i < k; i++) h += (b[p + i]! < 16 ? '0' : '') + b[p + i]!.toString(16);
  return BigInt(h);
}

function bigintNode(s: IntegerSchema, size: number, signed: boolean): Node {
  const { min, max, permitted } = s;
  const check = (v: bigint): string | undefined => {
    if ((min !== undefined && v < min) || (max !== undefined && v > max)) return `value ${v} is outside ${rangeText(min, max)}`;
    if (permitted !== undefined && !permitted.some(([a, b]) => v >= a && v <= b)) {
      return `value ${v} is not permitted (allowed: ${permitted.map(([a, b]) => (a === b ? `${a}` : `${a}..${b}`)).join(', ')})`;
    }
    return undefined;
  };
  const enc = (w: Writer, v: unknown): void => {
    if (typeof v !== 'bigint') throw encErr(`expected a bigint, got ${describe(v)}`);
    const bad = check(v);
    if (bad !== undefined) throw encErr(bad);
    if (size !== 0) {
      writeBig(w, BigInt.asUintN(size * 8, v), size);
    } else if (signed) {
      const k = signedOctets(v);
      writeLength(w, k);
      writeBig(w, BigInt.asUintN(k * 8, v), k);
    } else {
      const k = unsignedBigOctets(v);
      writeLength(w, k);
      writeBig(w, v, k);
    }
  };
  const dec = (r: Reader): bigint => {
    const at = r.p;
    let k = size;
    if (k === 0) {
      k = readLength(r);
      if (k === 0) throw decErr('integer of length 0 is not allowed', at);
      const b = r.b;
      const p = r.p;
      if (k > 1) {
        const b0 = b[p]!;
        const b1 = b[p + 1]!;
        if (signed ? (b0 === 0 && b1 < 0x80) || (b0 === 0xff && b1 >= 0x80) : b0 === 0) {
          throw decErr(`integer of ${k} octets is not minimal: leading octet 0x${b0.toString(16).padStart(2, '0')} is redundant`, at);
        }
      }
    } else {
      r.need(k);
    }
    let v = readBig(r.b, r.p, k);
    if (signed) v = BigInt.asIntN(k * 8, v);
    const bad = check(v);
    if (bad !== undefined) throw decErr(bad, at);
    r.p += k;
    return v;
  };
  return {
    enc,
    dec,
    toJ: (v) => (typeof v === 'bigint' ? v.toString() : v),
    fromJ: (j) => {
      if (typeof j !== 'string' || !/^-?(0|[1-9][0-9]*)$/.test(j) || j === '-0') {
        throw encErr(`expected a decimal integer string, got ${describe(j)}`);
      }
      return BigInt(j);
    },
  };
}
