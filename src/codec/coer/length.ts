/** Length determinant (X.696 8.6) and open-type framing (X.696 30). */
import { decErr } from './node.js';
import type { Reader } from './reader.js';
import type { Writer } from './writer.js';

/** Number of octets of the minimal unsigned big-endian form of n (n >= 0), at least 1. */
export function unsignedOctets(n: number): number {
  let k = 1;
  while (n >= 256) {
    n = Math.floor(n / 256);
    k++;
  }
  return k;
}

/** X.696 8.6: short form for < 128, else 0x80|k followed by k octets (minimal k, canonical). */
export function writeLength(w: Writer, len: number): void {
  if (len < 128) {
    w.u8(len);
    return;
  }
  const k = unsignedOctets(len);
  w.ensure(k + 1);
  const b = w.buf;
  let p = w.pos;
  b[p++] = 0x80 | k;
  for (let i = k - 1; i >= 0; i--) {
    b[p + i] = len & 0xff;
    len = Math.floor(len / 256);
  }
  w.pos = p + k;
}

function hex(b: Uint8Array, from: number, to: number): string {
  let s = '';
  for (let i = from; i < to; i++) s += (i > from ? ' ' : '') + '0x' + b[i]!.toString(16).padStart(2, '0');
  return s;
}

/**
 * Reads a canonical length determinant and checks that many octets remain.
 * Rejects the long form for lengths < 128 and leading zero length octets.
 */
export function readLength(r: Reader): number {
  const at = r.p;
  const first = r.u8();
  if (first < 0x80) {
    if (first > r.end - r.p) r.need(first);
    return first;
  }
  const k = first & 0x7f;
  if (k === 0) throw decErr('length octet 0x80 (indefinite form) is not allowed in OER', at);
  r.need(k);
  const b = r.b;
  if (b[r.p] === 0) throw decErr(`length ${hex(b, at, at + 1 + k)} is not canonical: leading zero length octet`, at);
  if (k > 6) throw decErr(`length ${hex(b, at, at + 1 + k)} exceeds any possible input`, at);
  let len = 0;
  for (let i = 0; i < k; i++) len = len * 256 + b[r.p + i]!;
  if (len < 128) {
    throw decErr(`length ${hex(b, at, at + 1 + k)} is not canonical: ${len} < 128 must use the short form`, at);
  }
  r.p += k;
  if (len > r.end - r.p) r.need(len);
  return len;
}

/** Starts an open type / containing encoding: reserves one octet for the length; returns the mark. */
export function beginLength(w: Writer): number {
  const mark = w.pos;
  w.u8(0);
  return mark;
}

/** Ends what beginLength started: writes the length, moving the content when the long form is needed. */
export function endLength(w: Writer, mark: number): void {
  const len = w.pos - mark - 1;
  if (len < 128) {
    w.buf[mark] = len;
    return;
  }
  const k = unsignedOctets(len);
  w.ensure(k);
  const b = w.buf;
  b.copyWithin(mark + 1 + k, mark + 1, w.pos);
  b[mark] = 0x80 | k;
  let n = len;
  for (let i = k; i >= 1; i--) {
    b[mark + i] = n & 0xff;
    n = Math.floor(n / 256);
  }
  w.pos += k;
}

/**
 * Limits decoding to the next `len` octets (open type, CONTAINING); returns the outer limit for leave().
 * The Reader is per decode call, so an exception needs no restore.
 */
export function enter(r: Reader, len: number): number {
  const outer = r.end;
  r.end = r.p + len;
  return outer;
}

/** Checks the nested value filled its region exactly, then restores the outer limit. */
export function leave(r: Reader, outer: number, what: string): void {
  if (r.p !== r.end) {
    throw decErr(`${what} has ${r.end - r.p} octet(s) left over after its value`, r.p);
  }
  r.end = outer;
}
