/**
 * fast-check arbitraries of valid runtime values for any codec Schema (src/codec/schema.ts):
 * respects OER-visible bounds and sizes, `permitted`, `presence`, DEFAULT (never generates a
 * present value equal to the default, which canonical COER encodes as absent), `containing`,
 * open-type tables (the selector is biased towards the table's ids; an open type sees the innermost enclosing
 * SEQUENCE also through CHOICE and SEQUENCE OF levels), inner-subtyping single values of ENUMERATED and
 * OCTET STRING (`permitted`, `permittedValues`), extension additions and
 * groups, unknown CHOICE alternatives / open types / extension additions.
 *
 * Recursion is bounded by `depth`: every `ref` followed costs one level; below zero the generator
 * takes the cheapest way out (no optional components, minimal arrays, least-recursive alternative).
 */
import fc from 'fast-check';
import type {
  AlternativeSchema,
  CharStringSchema,
  ChoiceSchema,
  FieldSchema,
  IntegerSchema,
  OpenTypeSchema,
  Schema,
  SequenceSchema,
} from '../../src/codec/schema.js';

type Arb = fc.Arbitrary<unknown>;

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

export function arbitraryFor(schema: Schema, depth = 3): Arb {
  return new Generator().arb(schema, depth);
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a instanceof Uint8Array && b instanceof Uint8Array) {
    return a.length === b.length && a.every((x, i) => x === b[i]);
  }
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (typeof a === 'object' && typeof b === 'object' && a !== null && b !== null && !Array.isArray(a) && !Array.isArray(b)) {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => deepEqual((a as never)[k], (b as never)[k]));
  }
  return false;
}

const PRINTABLE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?";

class Generator {
  private memo = new Map<Schema, Map<number, Arb>>();
  private costs = new Map<Schema, number>();

  arb(s: Schema, depth: number): Arb {
    const d = Math.max(depth, -1);
    let m = this.memo.get(s);
    if (m === undefined) this.memo.set(s, (m = new Map()));
    let a = m.get(d);
    if (a === undefined) {
      // Refs build their target lazily (chain), so this never recurses into itself.
      a = this.build(s, d);
      m.set(d, a);
    }
    return a;
  }

  /** Minimum number of refs a value of `s` must traverse (Infinity while on the stack). */
  cost(s: Schema, stack = new Set<Schema>()): number {
    const known = this.costs.get(s);
    if (known !== undefined) return known;
    if (stack.has(s)) return Infinity;
    stack.add(s);
    let c = 0;
    switch (s.kind) {
      case 'ref':
        c = 1 + this.cost(s.target(), stack);
        break;
      case 'sequence':
        for (const f of s.fields) if (mustBePresent(f)) c += this.cost(f.schema, stack);
        break;
      case 'sequenceOf':
        c = (s.minSize ?? 0) > 0 ? this.cost(s.item, stack) : 0;
        break;
      case 'choice':
        c = Math.min(...permittedAlternatives(s).map((a) => this.cost(a.schema, stack)));
        break;
      case 'octetString':
        c = s.containing === undefined ? 0 : this.cost(s.containing, stack);
        break;
      default:
        c = 0;
    }
    stack.delete(s);
    if (c !== Infinity) this.costs.set(s, c);
    return c;
  }

  private build(s: Schema, d: number): Arb {
    switch (s.kind) {
      case 'boolean':
        return fc.boolean();
      case 'null':
        return fc.constant(null);
      case 'integer':
        return integerArb(s);
      case 'enumerated': {
        // Inner subtyping (`type (implicit)`) admits only the listed identifiers, no unknown values.
        if (s.permitted !== undefined) return fc.constantFrom(...s.permitted);
        const names = [...s.values, ...(s.extensionValues ?? [])].map((v) => v.name);
        const known = new Set([...s.values, ...(s.extensionValues ?? [])].map((v) => v.value));
        const named = fc.constantFrom(...names);
        if (!s.extensible) return named;
        const unknown = fc.oneof(fc.integer({ min: -40000, max: 40000 }), fc.integer()).filter((n) => !known.has(n));
        return fc.oneof({ arbitrary: named, weight: 5 }, { arbitrary: unknown, weight: 1 });
      }
      case 'octetString':
        if (s.containing !== undefined) return this.arb(s.containing, d);
        if (s.permittedValues !== undefined) return fc.constantFrom(...s.permittedValues).map((b) => b.slice());
        return sized(s, (min, max, size) => fc.uint8Array({ minLength: min, maxLength: max, size }));
      case 'bitString':
        return sized(s, (min, max, size) =>
          fc.array(fc.constantFrom('0', '1'), { minLength: min, maxLength: max, size }).map((b) => b.join('')),
        );
      case 'charString':
        return charStringArb(s);
      case 'sequence':
        return this.sequence(s, d);
      case 'sequenceOf': {
        const min = s.minSize ?? 0;
        const max = d < 0 ? min : Math.min(s.maxSize ?? min + 4, min + 4);
        return fc.array(this.arb(s.item, d), { minLength: min, maxLength: max });
      }
      case 'choice':
        return this.choice(s, d);
      case 'open':
        // An open type outside a SEQUENCE has no selector: only its unknown form is valid.
        return fc.uint8Array({ maxLength: 20 }).map((b) => ({ $unknownOpenType: b }));
      case 'ref': {
        const next = d - 1;
        return fc.constant(null).chain(() => this.arb(s.target(), next));
      }
    }
  }

  private field(f: FieldSchema, d: number, siblings: SequenceSchema): Arb {
    let a = this.arb(f.schema, d);
    // Bias a table-constraint selector towards the ids of its table.
    const ids = selectorIds(siblings, f.name);
    if (ids.length > 0) a = fc.oneof({ arbitrary: fc.constantFrom(...ids), weight: 4 }, { arbitrary: a, weight: 1 });
    if (f.default !== undefined) a = a.filter((v) => !deepEqual(v, f.default));
    return a;
  }

  /** Record of optional/mandatory components; undefined marks an absent one. */
  private components(fields: FieldSchema[], d: number, s: SequenceSchema, extension: boolean): fc.Arbitrary<Record<string, unknown>> {
    const parts: Record<string, Arb> = {};
    for (const f of fields) {
      if (readsParent(f.schema)) continue;
      const a = this.field(f, d, s);
      if (mustBePresent(f) && !extension) parts[f.name] = a;
      else if (f.presence === 'absent' || (d < 0 && !mustBePresent(f))) parts[f.name] = fc.constant(undefined);
      else if (f.presence === 'present') parts[f.name] = a;
      else parts[f.name] = fc.option(a, { nil: undefined, freq: 2 });
    }
    return fc.record(parts, { noNullPrototype: true });
  }

  private sequence(s: SequenceSchema, d: number): Arb {
    // Components holding open types (directly or inside CHOICE / SEQUENCE OF) are built once the selector is known.
    const opens = [...s.fields, ...(s.extensions ?? []).flatMap((e) => ('group' in e ? e.group : [e]))].filter((f) =>
      readsParent(f.schema),
    );
    const root = this.components(s.fields, d, s, false);
    const exts = (s.extensions ?? []).map((e) => {
      if (!('group' in e)) return this.components([e], d, s, true);
      // A group is absent or present as a whole; a present group has at least one component.
      const present = this.components(e.group, d, s, false).filter((g) => Object.values(g).some((v) => v !== undefined));
      return d < 0 ? fc.constant({}) : fc.option(present, { nil: {}, freq: 2 });
    });
    const unknownExt =
      s.extensible && d >= 0
        ? fc.option(
            fc
              .tuple(fc.array(fc.option(fc.uint8Array({ maxLength: 8 }), { nil: null }), { maxLength: 3 }), fc.uint8Array({ maxLength: 8 }))
              // The last entry is present: canonical COER sets the extension bit only for a present addition.
              .map(([xs, last]) => [...xs, last]),
            { nil: undefined, freq: 6 },
          )
        : fc.constant(undefined);
    let base = fc.tuple(root, fc.tuple(...exts), unknownExt).map(([r, e, u]) => {
      const out: Record<string, unknown> = {};
      for (const part of [r, ...e]) for (const [k, v] of Object.entries(part)) if (v !== undefined) out[k] = v;
      if (u !== undefined) out.$unknownExtensions = u;
      return out;
    });
    if (opens.length > 0) {
      base = base.chain((obj) => {
        const parts: Record<string, Arb> = {};
        for (const f of opens) {
          const value = this.dependent(f.schema, d, obj);
          if (mustBePresent(f)) parts[f.name] = value;
          else if (d < 0 || f.presence === 'absent') parts[f.name] = fc.constant(undefined);
          else parts[f.name] = fc.option(value, { nil: undefined });
        }
        return fc.record(parts, { noNullPrototype: true }).map((o) => {
          const out = { ...obj };
          for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
          // Keep the component order of the type.
          const ordered: Record<string, unknown> = {};
          for (const f of [...s.fields, ...(s.extensions ?? []).flatMap((e) => ('group' in e ? e.group : [e]))]) {
            if (out[f.name] !== undefined) ordered[f.name] = out[f.name];
          }
          if (out.$unknownExtensions !== undefined) ordered.$unknownExtensions = out.$unknownExtensions;
          return ordered;
        });
      });
    }
    return base;
  }

  /** A value of `s` that reads the enclosing SEQUENCE value `obj`: open types through CHOICE / SEQUENCE OF. */
  private dependent(s: Schema, d: number, obj: Record<string, unknown>): Arb {
    switch (s.kind) {
      case 'open': {
        const id = obj[s.selector];
        const row = s.table.find((r) => deepEqual(r.id, id));
        return row === undefined ? fc.uint8Array({ maxLength: 20 }).map((b) => ({ $unknownOpenType: b })) : this.arb(row.schema, d);
      }
      case 'choice':
        return this.choice(s, d, (a) => (readsParent(a.schema) ? this.dependent(a.schema, d, obj) : this.arb(a.schema, d)));
      case 'sequenceOf': {
        const min = s.minSize ?? 0;
        const max = d < 0 ? min : Math.min(s.maxSize ?? min + 4, min + 4);
        return fc.array(this.dependent(s.item, d, obj), { minLength: min, maxLength: max });
      }
      default:
        return this.arb(s, d);
    }
  }

  private choice(s: ChoiceSchema, d: number, altArb = (a: AlternativeSchema): Arb => this.arb(a.schema, d)): Arb {
    let alts = permittedAlternatives(s);
    if (d < 0) {
      const best = Math.min(...alts.map((a) => this.cost(a.schema)));
      alts = alts.filter((a) => this.cost(a.schema) === best);
    }
    const known: Arb[] = alts.map((a) => altArb(a).map((v) => ({ [a.name]: v })));
    if (!s.extensible || d < 0) return fc.oneof(...known);
    const used = new Set([...s.alternatives, ...(s.extensions ?? [])].map((a) => `${a.tagClass}:${a.tag}`));
    const unknown = fc
      .record({
        tagClass: fc.constantFrom('universal', 'application', 'context', 'private'),
        tag: fc.oneof(fc.integer({ min: 0, max: 70 }), fc.integer({ min: 0, max: 2 ** 20 })),
        bytes: fc.uint8Array({ maxLength: 12 }),
      }, { noNullPrototype: true })
      .filter((u) => !used.has(`${u.tagClass}:${u.tag}`))
      .map((u) => ({ $unknown: u }));
    return fc.oneof({ arbitrary: fc.oneof(...known), weight: 8 }, { arbitrary: unknown, weight: 1 });
  }
}

function mustBePresent(f: FieldSchema): boolean {
  return (f.optional !== true && f.default === undefined) || f.presence === 'present';
}

function permittedAlternatives(s: ChoiceSchema): AlternativeSchema[] {
  return [...s.alternatives, ...(s.extensions ?? [])].filter((a) => a.permitted !== false);
}

/**
 * Whether a value of `s` reads the enclosing SEQUENCE (X.682 10, `@.id`): an open type reached through CHOICE
 * alternatives and SEQUENCE OF items (a nested SEQUENCE or a named type is a scope of its own).
 */
function readsParent(s: Schema): boolean {
  if (s.kind === 'open') return true;
  if (s.kind === 'choice') return [...s.alternatives, ...(s.extensions ?? [])].some((a) => readsParent(a.schema));
  if (s.kind === 'sequenceOf') return readsParent(s.item);
  return false;
}

/** The open types a component of the enclosing SEQUENCE holds (directly or through CHOICE / SEQUENCE OF). */
function openTypesIn(s: Schema): OpenTypeSchema[] {
  if (s.kind === 'open') return [s];
  if (s.kind === 'choice') return [...s.alternatives, ...(s.extensions ?? [])].flatMap((a) => openTypesIn(a.schema));
  if (s.kind === 'sequenceOf') return openTypesIn(s.item);
  return [];
}

/** Ids of every open-type table in `s` whose selector is the component `name`. */
function selectorIds(s: SequenceSchema, name: string): unknown[] {
  const all = [...s.fields, ...(s.extensions ?? []).flatMap((e) => ('group' in e ? e.group : [e]))];
  return all.flatMap((f) => openTypesIn(f.schema).flatMap((o) => (o.selector === name ? o.table.map((r) => r.id) : [])));
}

function integerArb(s: IntegerSchema): Arb {
  const numeric = s.min !== undefined && s.max !== undefined && s.min >= -MAX_SAFE && s.max <= MAX_SAFE;
  const lo = s.min ?? -(2n ** 80n);
  const hi = s.max ?? 2n ** 80n;
  const ranges = (s.permitted ?? [[lo, hi]])
    .map(([a, b]): [bigint, bigint] => [a > lo ? a : lo, b < hi ? b : hi])
    .filter(([a, b]) => a <= b);
  if (ranges.length === 0) throw new Error(`integer ${s.name ?? ''} has no permitted value`);
  const big = fc.oneof(...ranges.map(([a, b]) => fc.bigInt({ min: a, max: b })));
  return numeric ? big.map(Number) : big;
}

/** Sizes within the OER-visible bounds, mostly short, sometimes long enough for a long-form length. */
function sized(s: { minSize?: number; maxSize?: number }, make: (min: number, max: number, size: fc.SizeForArbitrary) => Arb): Arb {
  const min = s.minSize ?? 0;
  const max = s.maxSize ?? Infinity;
  const short = make(min, Math.min(max, min + 16), undefined);
  if (max <= min + 16) return short;
  return fc.oneof({ arbitrary: short, weight: 5 }, { arbitrary: make(min, Math.min(max, min + 300), 'max'), weight: 1 });
}

function charStringArb(s: CharStringSchema): Arb {
  let unit: fc.Arbitrary<string> | 'binary';
  switch (s.stringType) {
    case 'UTF8String':
      unit = 'binary';
      break;
    case 'IA5String':
      unit = fc.integer({ min: 0, max: 127 }).map((c) => String.fromCharCode(c));
      break;
    case 'VisibleString':
      unit = fc.integer({ min: 32, max: 126 }).map((c) => String.fromCharCode(c));
      break;
    case 'PrintableString':
      unit = fc.constantFrom(...PRINTABLE);
      break;
    case 'NumericString':
      unit = fc.constantFrom(...'0123456789 ');
      break;
  }
  return sized(s, (min, max, size) => fc.string({ unit, minLength: min, maxLength: max, size }));
}
