/** Lowercase hex <-> octets for the JSON mapping. */
import { describe, encErr } from './node.js';

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function toHex(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += HEX[b[i]!];
  return s;
}

/** Strict: even length, lowercase 0-9a-f only (exactly what toHex produces). */
export function fromHex(j: unknown): Uint8Array {
  if (typeof j !== 'string' || j.length % 2 !== 0 || !/^[0-9a-f]*$/.test(j)) {
    throw encErr(`expected a lowercase hex string of even length, got ${describe(j)}`);
  }
  const out = new Uint8Array(j.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(j.substr(i * 2, 2), 16);
  return out;
}
