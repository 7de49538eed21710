/** Type lookup and decoding with automatic type detection, shared by `scms cert` and `scms codec`. */
import { CoerError, type Codec } from '../codec/coer/codec.js';
import { findType, listTypes, typeRegistry } from '../codec/gen/index.js';

export class TypeNotFoundError extends Error {
  override readonly name = 'TypeNotFoundError';
}

let byCodec: Map<Codec<unknown>, string> | undefined;

/** "Module.Type" of a registered codec. */
export function qualifiedName(codec: Codec<unknown>): string {
  if (!byCodec) {
    byCodec = new Map();
    for (const name of listTypes()) byCodec.set(typeRegistry.get(name)!, name);
  }
  return byCodec.get(codec) ?? codec.schema.name ?? '?';
}

/** A registered type by "Module.Type" or "Type" (ASN.1 spelling or "_" for "-"); a helpful error otherwise. */
export function lookupType(name: string): { name: string; codec: Codec<unknown> } {
  const codec = findType(name);
  if (codec) return { name: qualifiedName(codec), codec };
  const lower = name.toLowerCase().replace(/_/g, '-');
  const similar = listTypes().filter((t) => t.toLowerCase().includes(lower)).slice(0, 8);
  const ambiguous = listTypes().filter((t) => t.endsWith(`.${name}`));
  let msg = `unknown type "${name}"`;
  if (ambiguous.length > 1) msg += ` (defined in several modules: ${ambiguous.join(', ')})`;
  else if (similar.length) msg += ` (did you mean ${similar.join(', ')}?)`;
  throw new TypeNotFoundError(`${msg}; \`scms codec types\` lists them all`);
}

export interface Decoded {
  /** "Module.Type" */
  type: string;
  codec: Codec<unknown>;
  value: unknown;
}

/** What auto-detection tries after Certificate: every 1609.2.1 SPDU type, then Ieee1609Dot2Data. */
export function detectionCandidates(): string[] {
  const spdus = listTypes().filter((t) => t.startsWith('Ieee1609Dot2Dot1') && t.endsWith('Spdu'));
  return ['Ieee1609Dot2.Certificate', ...spdus, 'Ieee1609Dot2.Ieee1609Dot2Data'];
}

/** Every decode attempt failed; `attempts` keeps each type's CoerError. */
export class DetectError extends Error {
  override readonly name = 'DetectError';
  constructor(readonly attempts: Array<{ type: string; error: CoerError }>) {
    const cert = attempts.find((a) => a.type === 'Ieee1609Dot2.Certificate');
    const furthest = attempts
      .filter((a) => a !== cert)
      .reduce<(typeof attempts)[number] | undefined>((best, a) => (!best || a.error.offset > best.error.offset ? a : best), undefined);
    const parts = [cert, furthest].filter((a): a is NonNullable<typeof a> => a !== undefined);
    super(
      'the input is not a Certificate, a 1609.2.1 SPDU or an Ieee1609Dot2Data:\n' +
        parts.map((a) => `  as ${a.type}: ${a.error.message}`).join('\n'),
    );
  }
}

/** Amount of decoded structure (objects, arrays, leaves): a stricter type decodes nested octets into values. */
function structure(v: unknown, depth = 0): number {
  if (depth > 64 || v === null || typeof v !== 'object' || v instanceof Uint8Array) return 1;
  let n = 1;
  for (const x of Array.isArray(v) ? v : Object.values(v)) n += structure(x, depth + 1);
  return n;
}

/**
 * Decodes with automatic detection: a Certificate when the whole input decodes strictly as one; otherwise the
 * most specific of the SPDU types and Ieee1609Dot2Data that decode it: the one whose value has the most decoded
 * structure; on a tie Ieee1609Dot2Data, else the SPDU type listed first. `alsoMatches` names the other types that
 * decoded.
 */
export function detectAndDecode(bytes: Uint8Array): Decoded & { alsoMatches: string[] } {
  const attempts: Array<{ type: string; error: CoerError }> = [];
  const ok: Array<Decoded & { score: number }> = [];
  for (const type of detectionCandidates()) {
    const codec = typeRegistry.get(type)!;
    try {
      const value = codec.decode(bytes);
      if (type === 'Ieee1609Dot2.Certificate') return { type, codec, value, alsoMatches: [] };
      ok.push({ type, codec, value, score: structure(value) });
    } catch (err) {
      if (!(err instanceof CoerError)) throw err;
      attempts.push({ type, error: err });
    }
  }
  if (ok.length === 0) throw new DetectError(attempts);
  // An SPDU type is more specific only when it decoded more structure than Ieee1609Dot2Data (partial WITH
  // COMPONENTS specifications let most SPDU types accept any other content unchanged).
  const top = Math.max(...ok.map((o) => o.score));
  const best = ok.find((o) => o.type === 'Ieee1609Dot2.Ieee1609Dot2Data' && o.score === top) ?? ok.find((o) => o.score === top)!;
  return { type: best.type, codec: best.codec, value: best.value, alsoMatches: ok.filter((o) => o !== best).map((o) => o.type) };
}

/** Decodes as a named type. */
export function decodeAs(typeName: string, bytes: Uint8Array): Decoded {
  const { name, codec } = lookupType(typeName);
  return { type: name, codec, value: codec.decode(bytes) };
}
