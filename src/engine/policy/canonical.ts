/**
 * Canonical JSON: a deterministic serialization so that a signature (policy files) or a hash
 * (audit log) over a JSON value is reproducible. Object keys are sorted by UTF-16 code units
 * (the order of RFC 8785), no whitespace, strings and numbers as ECMAScript JSON.stringify
 * writes them. Only JSON values are accepted: no undefined, bigint, function, NaN or Infinity.
 */

export function canonicalJson(value: unknown): string {
  return write(value, '$');
}

/** UTF-8 bytes of canonicalJson(value). */
export function canonicalJsonBytes(value: unknown): Uint8Array {
  return new TextEncoder().encode(canonicalJson(value));
}

function write(v: unknown, path: string): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'boolean':
      return v ? 'true' : 'false';
    case 'string':
      return JSON.stringify(v);
    case 'number':
      if (!Number.isFinite(v)) throw new TypeError(`${path}: non-finite number is not JSON`);
      return JSON.stringify(Object.is(v, -0) ? 0 : v);
    case 'object': {
      if (Array.isArray(v)) return `[${v.map((e, i) => write(e, `${path}[${i}]`)).join(',')}]`;
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) throw new TypeError(`${path}: not a plain object`);
      const obj = v as Record<string, unknown>;
      const keys = Object.keys(obj).sort();
      const parts: string[] = [];
      for (const k of keys) {
        if (obj[k] === undefined) throw new TypeError(`${path}.${k}: undefined is not JSON`);
        parts.push(`${JSON.stringify(k)}:${write(obj[k], `${path}.${k}`)}`);
      }
      return `{${parts.join(',')}}`;
    }
    default:
      throw new TypeError(`${path}: ${typeof v} is not JSON`);
  }
}
