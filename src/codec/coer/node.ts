/**
 * A compiled schema: specialised encoder/decoder/JSON closures built once per Schema object.
 * `parent` is the value of the innermost textually enclosing SEQUENCE (X.682 10, component relation
 * constraint `@.id`): a SEQUENCE passes its own value to its components, CHOICE and SEQUENCE OF pass
 * theirs through unchanged, and a reference to a named type, an open type's row and a CONTAINING
 * encoding start afresh (undefined). Only open types (table constraints) read it.
 */
import { CoerError } from './codec.js';
import type { Reader } from './reader.js';
import type { Writer } from './writer.js';

export interface Node {
  enc(w: Writer, v: unknown, parent: Record<string, unknown> | undefined): void;
  dec(r: Reader, parent: Record<string, unknown> | undefined): unknown;
  toJ(v: unknown, parent: Record<string, unknown> | undefined): unknown;
  fromJ(j: unknown, parent: Record<string, unknown> | undefined): unknown;
}

/** An encoding / validation error (no byte offset). */
export function encErr(reason: string): CoerError {
  return new CoerError(reason, '', -1);
}

/** A decoding error at `offset`. */
export function decErr(reason: string, offset: number): CoerError {
  return new CoerError(reason, '', offset);
}

/**
 * Prefixes the error path with a component / alternative name (or "[i]" for an array item).
 * Non-CoerError exceptions (wrong JS types reaching the encoder) are turned into CoerErrors.
 */
export function inPath(e: unknown, segment: string): CoerError {
  if (e instanceof CoerError) {
    const sep = e.path === '' || e.path.startsWith('[') ? '' : '.';
    return new CoerError(e.reason, segment + sep + e.path, e.offset);
  }
  return new CoerError(e instanceof Error ? e.message : String(e), segment, -1);
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (v instanceof Uint8Array) return `Uint8Array(${v.length})`;
  if (Array.isArray(v)) return `array(${v.length})`;
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '...' : v);
  if (typeof v === 'object') return 'object';
  return `${typeof v} ${String(v)}`;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}
