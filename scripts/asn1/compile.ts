/**
 * Resolver and schema builder: turns parsed modules into the schema IR of src/codec/schema.ts.
 *
 * - Named types are referenced through `ref` nodes; everything else is materialized.
 * - Parameterized types (X.683) are macro-expanded at each use.
 * - OER-visible constraints (X.696 8.2: non-extensible single value / value range on INTEGER, SIZE on
 *   strings) set bounds; everything applied by inner subtyping or contained-subtype constraints is
 *   validation-only (`permitted`, `presence`, `permittedValues`, `containing`) and never changes the encoding.
 * - A union of constraints (A | B) that is not an integer range is approximated by the least restrictive
 *   join of the alternatives (never rejects a value either alternative accepts).
 */
import type {
  ActualParam,
  AssignmentAst,
  ConstraintAst,
  Loc,
  ModuleAst,
  ObjectSetRefAst,
  TypeAst,
  ValueAst,
} from './ast.js';
import { Asn1Error, type Token } from './lexer.js';
import { Parser } from './parser.js';
import type {
  AlternativeSchema,
  BitStringSchema,
  ChoiceSchema,
  EnumeratedSchema,
  ExtensionGroupSchema,
  FieldSchema,
  IntegerSchema,
  OctetStringSchema,
  RefSchema,
  Schema,
  SequenceOfSchema,
  SequenceSchema,
} from '../../src/codec/schema.js';

export interface Mod {
  name: string;
  file: string;
  ast: ModuleAst;
  defs: Map<string, AssignmentAst>;
  imports: Map<string, string>;
}

type Binding =
  | { b: 'type'; type: TypeAst; ctx: Ctx }
  | { b: 'value'; value: ValueAst; ctx: Ctx }
  | { b: 'objectSet'; set: ObjectSetRefAst; ctx: Ctx };

interface Ctx {
  mod: Mod;
  env: ReadonlyMap<string, Binding>;
}

type Mode = 'visible' | 'inner';
type Range = [bigint | undefined, bigint | undefined]; // undefined = unbounded

/** Named numbers of an INTEGER type (X.680 19.2), kept on the node under a symbol (not emitted). */
export const NAMED_NUMBERS = Symbol('namedNumbers');
type WithNN = { [NAMED_NUMBERS]?: ReadonlyMap<string, bigint> };

export interface RefInfo {
  module: string;
  name: string;
}

interface ObjectInfo {
  fields: Map<string, { type?: TypeAst; value?: ValueAst }>;
  ctx: Ctx;
}

const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

export function err(message: string, loc?: Loc): never {
  throw new Asn1Error(message, loc);
}

export class Compiler {
  readonly mods = new Map<string, Mod>();
  readonly refInfo = new WeakMap<RefSchema, RefInfo>();
  private readonly refs = new Map<string, RefSchema>();
  private readonly refsByName = new Map<string, RefSchema[]>();
  private readonly tops = new Map<string, Schema>();
  private readonly building = new Set<string>();

  constructor(modules: ModuleAst[]) {
    for (const ast of modules) {
      if (this.mods.has(ast.name)) err(`module ${ast.name} defined twice`, { file: ast.file, line: 1 });
      const defs = new Map<string, AssignmentAst>();
      for (const a of ast.assignments) {
        if (defs.has(a.name)) err(`${a.name} assigned twice in ${ast.name}`, a.loc);
        defs.set(a.name, a);
      }
      const imports = new Map<string, string>();
      for (const imp of ast.imports) for (const s of imp.symbols) imports.set(s, imp.from);
      this.mods.set(ast.name, { name: ast.name, file: ast.file, ast, defs, imports });
    }
    for (const m of this.mods.values()) {
      for (const [sym, from] of m.imports) {
        if (!this.mods.has(from)) err(`${m.name} imports ${sym} from unknown module ${from}`, { file: m.file, line: 1 });
      }
      if (m.ast.tagDefault !== 'AUTOMATIC') err(`module ${m.name}: only AUTOMATIC TAGS modules are supported`, { file: m.file, line: 1 });
    }
  }

  // ---- lookup ---------------------------------------------------------------------------------

  /** Finds the assignment named `name` visible in `mod`, following IMPORTS (also re-imports). */
  lookup(mod: Mod, name: string, loc: Loc, seen = new Set<string>()): { mod: Mod; def: AssignmentAst } {
    const def = mod.defs.get(name);
    if (def) return { mod, def };
    const from = mod.imports.get(name);
    if (!from) err(`${name} is not defined in or imported into ${mod.name}`, loc);
    const key = `${from}.${name}`;
    if (seen.has(key)) err(`circular import of ${name}`, loc);
    seen.add(key);
    return this.lookup(this.mods.get(from)!, name, loc, seen);
  }

  // ---- types ----------------------------------------------------------------------------------

  /** The schema of a named, non-parameterized type (materialized top node, named). */
  top(modName: string, name: string): Schema {
    const key = `${modName}.${name}`;
    const cached = this.tops.get(key);
    if (cached) return cached;
    const mod = this.mods.get(modName)!;
    const def = mod.defs.get(name);
    if (!def || def.a !== 'type') err(`${key} is not a type`);
    if (def.params) err(`${name} is parameterized and needs actual parameters`, def.loc);
    if (this.building.has(key)) err(`${name} is defined in terms of itself without an intervening component`, def.loc);
    this.building.add(key);
    try {
      const s = { ...this.deref(this.build(def.type, { mod, env: new Map() })), name };
      this.tops.set(key, s);
      return s;
    } finally {
      this.building.delete(key);
    }
  }

  ref(modName: string, name: string): RefSchema {
    const key = `${modName}.${name}`;
    let r = this.refs.get(key);
    if (!r) {
      r = { kind: 'ref', name, target: () => this.top(modName, name) };
      this.refs.set(key, r);
      this.refsByName.set(name, [...(this.refsByName.get(name) ?? []), r]);
      this.refInfo.set(r, { module: modName, name });
    }
    return r;
  }

  deref(s: Schema): Exclude<Schema, RefSchema> {
    let x = s;
    for (let i = 0; x.kind === 'ref'; i++) {
      if (i > 100) err(`reference loop at ${x.name}`);
      x = x.target();
    }
    return x;
  }

  /** Schema for a type in a component position: a `ref` for a plain reference to a named type. */
  schemaFor(type: TypeAst, ctx: Ctx): Schema {
    if (type.t === 'ref' && !type.args) {
      const bound = ctx.env.get(type.name);
      if (bound) {
        if (bound.b !== 'type') err(`parameter ${type.name} is not a type`, type.loc);
        return this.schemaFor(bound.type, bound.ctx);
      }
      const { mod, def } = this.lookupType(type, ctx);
      if (def.a === 'type' && !def.params) return this.ref(mod.name, def.name);
    }
    return this.build(type, ctx);
  }

  private lookupType(type: TypeAst & { t: 'ref' }, ctx: Ctx): { mod: Mod; def: AssignmentAst } {
    const mod = type.module ? this.mods.get(type.module) : ctx.mod;
    if (!mod) err(`unknown module ${type.module}`, type.loc);
    const found = this.lookup(mod, type.name, type.loc);
    if (found.def.a !== 'type') err(`${type.name} is not a type`, type.loc);
    return found;
  }

  /** Materialized schema of a type. */
  build(type: TypeAst, ctx: Ctx): Schema {
    switch (type.t) {
      case 'builtin':
        return this.builtin(type, ctx);
      case 'enumerated':
        return this.enumerated(type);
      case 'sequence': {
        const field = (c: (typeof type.fields)[number]): FieldSchema => {
          const f: FieldSchema = { name: c.name, schema: this.schemaFor(c.type, ctx) };
          if (c.optional) f.optional = true;
          if (c.default) {
            f.optional = true;
            f.default = this.evalValue(c.default, f.schema, ctx);
          }
          return f;
        };
        checkUnique([...type.fields, ...type.additions.flatMap((a) => ('group' in a ? a.group : [a]))], 'component', type.loc);
        const s: SequenceSchema = { kind: 'sequence', fields: type.fields.map(field), extensible: type.extensible };
        if (type.additions.length)
          s.extensions = type.additions.map((a): FieldSchema | ExtensionGroupSchema => ('group' in a ? { group: a.group.map(field) } : field(a)));
        return s;
      }
      case 'choice': {
        const all = [...type.alts, ...type.additions];
        checkUnique(all, 'alternative', type.loc);
        const explicit = all.some((a) => a.type.t === 'tagged');
        if (explicit && !all.every((a) => a.type.t === 'tagged')) err('CHOICE mixes tagged and untagged alternatives', type.loc);
        const alt = (a: (typeof all)[number], i: number): AlternativeSchema => {
          if (a.type.t === 'tagged') {
            return { name: a.name, schema: this.schemaFor(a.type.type, ctx), tag: a.type.tag, tagClass: a.type.tagClass };
          }
          // AUTOMATIC TAGS (X.680 25.2/29.3): context-specific tags 0, 1, 2, ... in textual order.
          return { name: a.name, schema: this.schemaFor(a.type, ctx), tag: i, tagClass: 'context' };
        };
        const s: ChoiceSchema = { kind: 'choice', alternatives: type.alts.map(alt), extensible: type.extensible };
        if (type.additions.length) s.extensions = type.additions.map((a, i) => alt(a, type.alts.length + i));
        return s;
      }
      case 'sequenceOf': {
        const s: SequenceOfSchema = { kind: 'sequenceOf', item: this.schemaFor(type.item, ctx) };
        return type.size ? this.apply(s, type.size, ctx, 'visible') : s;
      }
      case 'ref': {
        const bound = ctx.env.get(type.name);
        if (bound && !type.module) {
          if (bound.b !== 'type') err(`parameter ${type.name} is not a type`, type.loc);
          if (type.args) err(`parameter ${type.name} cannot take parameters`, type.loc);
          return this.build(bound.type, bound.ctx);
        }
        const { mod, def } = this.lookupType(type, ctx);
        if (def.a !== 'type') throw new Error('unreachable');
        if (!type.args) return this.top(mod.name, def.name);
        return this.instantiate(mod, def, type.args, ctx, type.loc);
      }
      case 'classField':
        return this.classField(type, ctx);
      case 'tagged':
        // Tags are only OER-visible on CHOICE alternatives (X.696 20), handled above.
        return this.build(type.type, ctx);
      case 'constrained':
        return this.apply(this.build(type.base, ctx), type.constraint, ctx, 'visible');
    }
  }

  /** X.683 macro expansion: binds the formal parameters and builds the body. */
  private instantiate(mod: Mod, def: AssignmentAst, args: ActualParam[], ctx: Ctx, loc: Loc): Schema {
    if (def.a !== 'type' || !def.params) err(`${def.name} is not a parameterized type`, loc);
    return this.build(def.type, { mod, env: this.bind(def, args, ctx, loc) });
  }

  private bind(def: AssignmentAst, args: ActualParam[], ctx: Ctx, loc: Loc): Map<string, Binding> {
    if (def.a !== 'type' || !def.params) err(`${def.name} is not parameterized`, loc);
    if (args.length !== def.params.length) err(`${def.name} takes ${def.params.length} parameters, got ${args.length}`, loc);
    const env = new Map<string, Binding>();
    def.params.forEach((p, i) => {
      const a = args[i]!;
      if (p.governor) {
        if (a.p !== 'objectSet') err(`parameter ${p.name} of ${def.name} expects an object set`, loc);
        env.set(p.name, { b: 'objectSet', set: a.set, ctx });
      } else if (a.p === 'type') env.set(p.name, { b: 'type', type: a.type, ctx });
      else if (a.p === 'value') env.set(p.name, { b: 'value', value: a.value, ctx });
      else err(`parameter ${p.name} of ${def.name} does not take an object set`, loc);
    });
    return env;
  }

  private builtin(type: TypeAst & { t: 'builtin' }, ctx: Ctx): Schema {
    switch (type.name) {
      case 'BOOLEAN':
        return { kind: 'boolean' };
      case 'NULL':
        return { kind: 'null' };
      case 'INTEGER': {
        const s: IntegerSchema & WithNN = { kind: 'integer' };
        if (type.namedNumbers) {
          const nn = new Map<string, bigint>();
          for (const { name, value } of type.namedNumbers) {
            if (nn.has(name)) err(`named number ${name} defined twice`, type.loc);
            nn.set(name, this.evalInt(value, { kind: 'integer' }, ctx));
          }
          s[NAMED_NUMBERS] = nn;
        }
        return s;
      }
      case 'OCTET STRING':
        return { kind: 'octetString' };
      case 'OBJECT IDENTIFIER':
        return { kind: 'octetString', objectIdentifier: true };
      case 'BIT STRING': {
        const s: BitStringSchema = { kind: 'bitString' };
        if (type.namedBits) {
          s.namedBits = {};
          for (const { name, bit } of type.namedBits) {
            if (name in s.namedBits) err(`named bit ${name} defined twice`, type.loc);
            s.namedBits[name] = bit;
          }
        }
        return s;
      }
      default:
        return { kind: 'charString', stringType: type.name };
    }
  }

  /** X.680 20: numbering of enumerations without explicit numbers. */
  private enumerated(type: TypeAst & { t: 'enumerated' }): EnumeratedSchema {
    const used = new Set<number>();
    const explicitValue = (v: ValueAst) => {
      if (v.v === 'number') return Number(v.value);
      if (v.v === 'ref') err('enumeration values must be numbers here', v.loc);
      err('invalid enumeration value', v.loc);
    };
    for (const it of type.root) if (it.value) used.add(explicitValue(it.value));
    let nextFree = 0;
    const values = type.root.map((it) => {
      if (it.value) return { name: it.name, value: explicitValue(it.value) };
      while (used.has(nextFree)) nextFree++;
      used.add(nextFree);
      return { name: it.name, value: nextFree };
    });
    let maxSoFar = Math.max(-1, ...values.map((v) => v.value));
    const extensionValues = type.additions.map((it) => {
      const value = it.value ? explicitValue(it.value) : maxSoFar + 1;
      if (value <= maxSoFar) err(`enumeration addition ${it.name} must be greater than all preceding values`, type.loc);
      maxSoFar = value;
      return { name: it.name, value };
    });
    checkUnique([...values, ...extensionValues], 'enumeration', type.loc);
    const s: EnumeratedSchema = { kind: 'enumerated', values, extensible: type.extensible };
    if (extensionValues.length) s.extensionValues = extensionValues;
    return s;
  }

  // ---- information object classes (X.681) and table constraints (X.682) ----------------------

  private classDef(className: string, ctx: Ctx, loc: Loc) {
    const { mod, def } = this.lookup(ctx.mod, className, loc);
    if (def.a !== 'class') err(`${className} is not an information object class`, loc);
    return { mod, def };
  }

  private classField(type: TypeAst & { t: 'classField' }, ctx: Ctx): Schema {
    const { mod: cmod, def: cls } = this.classDef(type.className, ctx, type.loc);
    if (cls.a !== 'class') throw new Error('unreachable');
    const field = cls.fields.find((f) => f.name === type.field);
    if (!field) err(`class ${cls.name} has no field ${type.field}`, type.loc);
    const classCtx: Ctx = { mod: cmod, env: new Map() };
    if (field.type) {
      // Fixed-type value field: the field's type, restricted to the set's values when the set is not extensible.
      const s = this.schemaFor(field.type, classCtx);
      if (type.at) err('a component relation constraint on a value field is not supported', type.loc);
      if (!type.set) return s;
      const set = this.objectSet(type.set, ctx);
      if (set.extensible) return s;
      const base = this.deref(s);
      if (base.kind !== 'integer') return s;
      const ids = set.objects.map((o) => this.objectValue(o, field.name, s, type.loc));
      return { ...base, permitted: ids.map((v): [bigint, bigint] => [BigInt(v as number | bigint), BigInt(v as number | bigint)]) };
    }
    // Type field: an open type (X.681 14.6) selected by a sibling component through @.id.
    if (!type.set || !type.at) err(`open type ${type.className}.${type.field} needs a table constraint {Set}{@.component}`, type.loc);
    const idField = selectorField(cls, type.loc);
    const idSchema = this.schemaFor(idField.type!, classCtx);
    const set = this.objectSet(type.set, ctx);
    const table: Array<{ id: unknown; schema: Schema }> = [];
    for (const o of set.objects) {
      const t = o.fields.get(type.field);
      if (!t?.type) continue; // the object does not define this (optional) field
      const id = this.objectValue(o, idField.name, idSchema, type.loc);
      if (table.some((r) => r.id === id)) err(`object set ${describeSet(type.set)} has two objects with ${idField.name} ${String(id)}`, type.loc);
      table.push({ id, schema: this.schemaFor(t.type, o.ctx) });
    }
    return { kind: 'open', selector: type.at, table };
  }

  private objectValue(o: ObjectInfo, field: string, schema: Schema, loc: Loc): unknown {
    const v = o.fields.get(field)?.value;
    if (!v) err(`object has no value for ${field}`, loc);
    return this.evalValue(v, schema, o.ctx);
  }

  private objectSet(set: ObjectSetRefAst, ctx: Ctx): { objects: ObjectInfo[]; extensible: boolean } {
    if (set.s === 'ref') {
      const bound = ctx.env.get(set.name);
      if (bound) {
        if (bound.b !== 'objectSet') err(`parameter ${set.name} is not an object set`, set.loc);
        return this.objectSet(bound.set, bound.ctx);
      }
      const { mod, def } = this.lookup(ctx.mod, set.name, set.loc);
      if (def.a !== 'objectSet') err(`${set.name} is not an object set`, set.loc);
      return this.parseObjectSet(def.tokens, def.className, { mod, env: new Map() }, def.loc);
    }
    err('inline object sets in table constraints are not supported', set.loc);
  }

  /** ObjectSetSpec (X.681 12.3): elements separated by `|` (or `,` before/after the extension marker). */
  private parseObjectSet(tokens: Token[], className: string, ctx: Ctx, loc: Loc): { objects: ObjectInfo[]; extensible: boolean } {
    const p = new Parser(withEof(tokens, loc));
    const objects: ObjectInfo[] = [];
    let extensible = false;
    while (!p.atEnd()) {
      if (p.accept('...')) extensible = true;
      else if (p.is('{')) objects.push(this.parseObject(p.braced(), className, ctx, loc));
      else {
        const t = p.next();
        if (t.kind !== 'ident') p.fail('expected an object, object set or ...', t);
        const { mod, def } = this.lookup(ctx.mod, t.text, { file: t.file, line: t.line });
        const octx: Ctx = { mod, env: new Map() };
        if (def.a === 'object') {
          if (def.className !== className) err(`object ${def.name} is of class ${def.className}, not ${className}`, def.loc);
          objects.push(this.parseObject(def.tokens, className, octx, def.loc));
        } else if (def.a === 'objectSet') {
          const inner = this.parseObjectSet(def.tokens, className, octx, def.loc);
          objects.push(...inner.objects);
          extensible ||= inner.extensible;
        } else err(`${t.text} is not an object or object set`, { file: t.file, line: t.line });
      }
      if (!p.atEnd() && !p.accept('|') && !p.accept(',')) p.fail("expected '|' or ','");
    }
    return { objects, extensible };
  }

  /** An object in the defined syntax of its class (X.681 10.12). */
  private parseObject(tokens: Token[], className: string, ctx: Ctx, loc: Loc): ObjectInfo {
    const { def: cls } = this.classDef(className, ctx, loc);
    if (cls.a !== 'class') throw new Error('unreachable');
    if (!cls.syntax) err(`class ${className} has no WITH SYNTAX (default syntax is not supported)`, cls.loc);
    const p = new Parser(withEof(tokens, loc));
    const fields = new Map<string, { type?: TypeAst; value?: ValueAst }>();
    for (const word of cls.syntax) {
      if (word.startsWith('&')) {
        if (/^&[A-Z]/.test(word)) fields.set(word, { type: p.type() });
        else fields.set(word, { value: p.value() });
      } else p.expect(word);
    }
    if (!p.atEnd()) p.fail(`unexpected text in object of class ${className}`);
    return { fields, ctx };
  }

  // ---- values ---------------------------------------------------------------------------------

  /** A value in the runtime representation of schema.ts for `target`. */
  evalValue(v: ValueAst, target: Schema, ctx: Ctx): unknown {
    const s = this.deref(target);
    if (v.v === 'ref' && !(s.kind === 'integer' && (s as WithNN)[NAMED_NUMBERS]?.has(v.name)) && s.kind !== 'enumerated') {
      const r = this.valueRef(v.name, ctx, v.loc);
      if (r) return this.evalValue(r.value, target, r.ctx);
    }
    switch (s.kind) {
      case 'integer':
        return intRepr(this.evalInt(v, s, ctx), s);
      case 'boolean':
        if (v.v !== 'bool') err('expected TRUE or FALSE', v.loc);
        return v.value;
      case 'null':
        if (v.v !== 'null') err('expected NULL', v.loc);
        return null;
      case 'enumerated': {
        if (v.v !== 'ref') err('expected an enumeration identifier', v.loc);
        const all = [...s.values, ...(s.extensionValues ?? [])];
        if (!all.some((e) => e.name === v.name)) err(`${v.name} is not an enumeration of this type`, v.loc);
        return v.name;
      }
      case 'octetString':
        if (s.objectIdentifier) err('OBJECT IDENTIFIER values are not supported', v.loc);
        if (v.v === 'hstring') return hexBytes(v.text, v.loc);
        if (v.v === 'bstring') {
          if (v.text.length % 8) err('bit string value for OCTET STRING must be a multiple of 8 bits', v.loc);
          return Uint8Array.from(v.text.match(/.{8}/g) ?? [], (b) => parseInt(b, 2));
        }
        err('expected an octet string value', v.loc);
      // falls through (unreachable)
      case 'bitString': {
        let bits: string;
        if (v.v === 'bstring') bits = v.text;
        else if (v.v === 'hstring') bits = [...v.text].map((h) => parseInt(h, 16).toString(2).padStart(4, '0')).join('');
        else if (v.v === 'braced') {
          // Named-bit list (X.680 22.16): trailing zero bits are not part of the value unless SIZE fixes it.
          const positions = v.items.map((it) => {
            if (it.name === undefined || it.number !== undefined) err('expected named bits', v.loc);
            const bit = s.namedBits?.[it.name];
            if (bit === undefined) err(`${it.name} is not a named bit of this type`, v.loc);
            return bit;
          });
          const len = Math.max(positions.length ? Math.max(...positions) + 1 : 0, s.minSize ?? 0);
          bits = Array.from({ length: len }, (_, i) => (positions.includes(i) ? '1' : '0')).join('');
        } else err('expected a bit string value', v.loc);
        return bits;
      }
      case 'charString':
        if (v.v !== 'cstring') err('expected a character string value', v.loc);
        return v.text;
      default:
        err(`values of ${s.kind} types are not supported`, v.loc);
    }
  }

  private valueRef(name: string, ctx: Ctx, loc: Loc): { value: ValueAst; ctx: Ctx } | undefined {
    const bound = ctx.env.get(name);
    if (bound) {
      if (bound.b !== 'value') err(`parameter ${name} is not a value`, loc);
      return { value: bound.value, ctx: bound.ctx };
    }
    const { mod, def } = this.lookup(ctx.mod, name, loc);
    if (def.a !== 'value') err(`${name} is not a value`, loc);
    return { value: def.value, ctx: { mod, env: new Map() } };
  }

  /** An INTEGER value: number, named number of `s`, or a value reference. MIN/MAX are errors here. */
  evalInt(v: ValueAst, s: Schema, ctx: Ctx): bigint {
    const r = this.evalBound(v, s, ctx);
    if (r === undefined) err('MIN/MAX is only allowed as a range bound', v.loc);
    return r;
  }

  private evalBound(v: ValueAst, s: Schema, ctx: Ctx): bigint | undefined {
    if (v.v === 'number') return v.value;
    if (v.v === 'min' || v.v === 'max') return undefined;
    if (v.v === 'ref') {
      const nn = (this.deref(s) as WithNN)[NAMED_NUMBERS];
      const named = nn?.get(v.name);
      if (named !== undefined) return named;
      const r = this.valueRef(v.name, ctx, v.loc);
      if (!r) err(`unknown value ${v.name}`, v.loc);
      const { def, mod } = this.lookupValueDef(v.name, ctx, v.loc);
      const declared = def ? this.build(def.type, { mod: mod!, env: new Map() }) : s;
      return this.evalInt(r.value, declared, r.ctx);
    }
    err('expected an integer value', v.loc);
  }

  private lookupValueDef(name: string, ctx: Ctx, loc: Loc): { def?: AssignmentAst & { a: 'value' }; mod?: Mod } {
    if (ctx.env.has(name)) return {};
    const { mod, def } = this.lookup(ctx.mod, name, loc);
    return def.a === 'value' ? { def, mod } : {};
  }

  // ---- constraints ----------------------------------------------------------------------------

  /** Applies a constraint; returns a new schema (inputs are never mutated). */
  apply(schema: Schema, c: ConstraintAst, ctx: Ctx, mode: Mode): Schema {
    const s = this.deref(schema);
    switch (c.c) {
      case 'intersection':
        return c.items.reduce<Schema>((acc, item) => this.apply(acc, item, ctx, mode), s);
      case 'extensible':
        // X.696 8.2.2: an extensible constraint is not OER-visible. SIZE keeps its root as the bounds with the flag.
        if (c.root?.c === 'size' && isString(s)) return this.applySize(s, c.root.inner, ctx, mode, true, c.loc);
        if (s.kind === 'integer') return s; // extension values stay valid: no bounds, nothing to validate
        err(`extensible constraint on ${s.kind} is not supported`, c.loc);
      // falls through (unreachable)
      case 'value':
      case 'range':
      case 'union':
        if (s.kind === 'integer') return this.applyIntRanges(s, this.intRanges(c, s, ctx), mode);
        if (c.c === 'union') return c.items.map((i) => this.apply(s, i, ctx, mode)).reduce((a, b) => this.join(a, b, c.loc));
        if (c.c === 'value' && s.kind === 'enumerated') {
          const name = this.evalValue(c.value, s, ctx) as string;
          return { ...s, permitted: s.permitted ? s.permitted.filter((p) => p === name) : [name] };
        }
        if (c.c === 'value' && s.kind === 'octetString') {
          const value = this.evalValue(c.value, s, ctx) as Uint8Array;
          const permitted = s.permittedValues ? s.permittedValues.filter((p) => bytesEqual(p, value)) : [value];
          if (mode === 'visible' && s.minSize === undefined) err('single-value constraints on OCTET STRING types must be inner subtyping here', c.loc);
          return { ...s, permittedValues: permitted };
        }
        err(`${c.c} constraint on ${s.kind} is not supported`, c.loc);
      // falls through (unreachable)
      case 'size':
        if (isString(s)) return this.applySize(s, c.inner, ctx, mode, false, c.loc);
        if (s.kind === 'sequenceOf') {
          // SEQUENCE OF size constraints are never encoded (X.696 21): always validation.
          const [lo, hi] = hull(this.sizeRanges(c.inner, ctx));
          const out: SequenceOfSchema = { ...s };
          const min = maxOf(s.minSize, lo);
          const max = minOf(s.maxSize, hi);
          if (min !== undefined && min > 0) out.minSize = min;
          if (max !== undefined) out.maxSize = max;
          if (c.inner.c === 'extensible') out.sizeExtensible = true;
          return out;
        }
        err(`SIZE constraint on ${s.kind}`, c.loc);
      // falls through (unreachable)
      case 'type':
        // Contained subtype (X.680 51.3): the constraints of the named type, applied as inner subtyping.
        return this.chain(c.type, ctx).reduce<Schema>((acc, step) => this.apply(acc, step.c, step.ctx, 'inner'), s);
      case 'withComponent':
        if (s.kind !== 'sequenceOf') err(`WITH COMPONENT on ${s.kind}`, c.loc);
        return { ...s, item: this.applyKeepRef(s.item, c.inner, ctx) };
      case 'withComponents':
        if (s.kind === 'sequence') return this.withComponentsSeq(s, c, ctx);
        if (s.kind === 'choice') return this.withComponentsChoice(s, c, ctx);
        err(`WITH COMPONENTS on ${s.kind}`, c.loc);
      // falls through (unreachable)
      case 'containing':
        if (s.kind !== 'octetString' || s.objectIdentifier) err(`CONTAINING on ${s.kind} is not supported`, c.loc);
        return { ...s, containing: this.schemaFor(c.type, ctx) };
      case 'constrainedBy': {
        // User-defined constraint (X.682 9). On a CHOICE whose alternative is of the argument's type (ScmsPdu-Scoped
        // {Pdu}: content CONSTRAINED BY {Pdu}) it selects that alternative and applies the argument's constraints.
        // Elsewhere (encryptedData CONSTRAINED BY {Tbe}: the plaintext type) it cannot be checked on the encoding.
        if (s.kind !== 'choice' || c.args.length !== 1) return s;
        const arg = c.args[0]!;
        const root = this.rootName(arg, ctx);
        const all = [...s.alternatives, ...(s.extensions ?? [])];
        const hits = all.filter((a) => a.schema.name === root);
        if (hits.length !== 1) err(`CONSTRAINED BY {${root}}: no unique alternative of type ${root}`, c.loc);
        const target = hits[0]!;
        const steps = this.chain(arg, ctx);
        const restrict = (a: AlternativeSchema): AlternativeSchema => {
          if (a !== target) return { ...a, permitted: false };
          let schema = a.schema;
          for (const st of steps) schema = this.applyKeepRef(schema, st.c, st.ctx);
          const out: AlternativeSchema = { ...a, schema };
          return out;
        };
        return withAlternatives(s, restrict);
      }
      case 'allExcept':
        // Validation-only exclusion (EndEntityType: ALL EXCEPT {}): not representable in the IR, not enforced.
        return s;
    }
  }

  /** Applies a constraint in inner-subtyping mode; keeps a ref when the result equals its target. */
  private applyKeepRef(schema: Schema, c: ConstraintAst, ctx: Ctx): Schema {
    const out = this.apply(schema, c, ctx, 'inner');
    return this.simplify(schema, out);
  }

  private simplify(orig: Schema, out: Schema): Schema {
    if (orig.kind === 'ref' && schemaEqual(this.deref(orig), out)) return orig;
    return this.reref(out);
  }

  /** A materialized copy of a named type that carries no extra constraint becomes a `ref` again. */
  private reref(s: Schema): Schema {
    if (s.kind === 'ref' || !s.name) return s;
    for (const r of this.refsByName.get(s.name) ?? []) if (schemaEqual(this.deref(r), s)) return r;
    return s;
  }

  /** The constraints that make up a type, from its builtin root (used for contained subtypes). */
  private chain(type: TypeAst, ctx: Ctx): Array<{ c: ConstraintAst; ctx: Ctx }> {
    switch (type.t) {
      case 'constrained':
        return [...this.chain(type.base, ctx), { c: type.constraint, ctx }];
      case 'ref': {
        const bound = ctx.env.get(type.name);
        if (bound && !type.module) {
          if (bound.b !== 'type') err(`parameter ${type.name} is not a type`, type.loc);
          return this.chain(bound.type, bound.ctx);
        }
        const { mod, def } = this.lookupType(type, ctx);
        if (def.a !== 'type') throw new Error('unreachable');
        const env = type.args ? this.bind(def, type.args, ctx, type.loc) : new Map<string, Binding>();
        return this.chain(def.type, { mod, env });
      }
      case 'sequenceOf':
        return type.size ? [{ c: type.size, ctx }] : [];
      case 'builtin':
      case 'sequence':
      case 'choice':
      case 'enumerated':
        return [];
      case 'tagged':
        return this.chain(type.type, ctx);
      default:
        err(`a ${type.t} type cannot be used as a constraint`, type.loc);
    }
  }

  /** The name of the first type reference under constraints/parameters: the type a constraint type is derived from. */
  private rootName(type: TypeAst, ctx: Ctx): string {
    if (type.t === 'constrained') return this.rootName(type.base, ctx);
    if (type.t === 'ref') {
      const bound = ctx.env.get(type.name);
      if (bound && !type.module) {
        if (bound.b !== 'type') err(`parameter ${type.name} is not a type`, type.loc);
        return this.rootName(bound.type, bound.ctx);
      }
      const { def } = this.lookupType(type, ctx);
      if (type.args && def.a === 'type') return this.rootName(def.type, { mod: this.lookup(ctx.mod, type.name, type.loc).mod, env: this.bind(def, type.args, ctx, type.loc) });
      return type.name;
    }
    err('CONSTRAINED BY argument must be a type reference', type.loc);
  }

  private withComponentsSeq(s: SequenceSchema, c: ConstraintAst & { c: 'withComponents' }, ctx: Ctx): Schema {
    const byName = new Map(c.items.map((i) => [i.name, i]));
    const known = new Set<string>();
    const field = (f: FieldSchema): FieldSchema => {
      known.add(f.name);
      const item = byName.get(f.name);
      if (!item) {
        // Full specification (X.680 51.8.5): omitted optional components are ABSENT.
        if (!c.partial && f.optional) return { ...f, presence: 'absent' };
        return f;
      }
      const out: FieldSchema = { ...f };
      if (item.constraint) out.schema = this.applyKeepRef(f.schema, item.constraint, ctx);
      if (item.presence === 'PRESENT' || item.presence === 'ABSENT') {
        if (!f.optional && item.presence === 'ABSENT') err(`${f.name} is mandatory and cannot be ABSENT`, item.loc);
        if (f.optional) out.presence = item.presence === 'PRESENT' ? 'present' : 'absent';
      }
      return out;
    };
    const out: SequenceSchema = { ...s, fields: s.fields.map(field) };
    if (s.extensions) out.extensions = s.extensions.map((e) => ('group' in e ? { group: e.group.map(field) } : field(e)));
    for (const i of c.items) if (!known.has(i.name)) err(`WITH COMPONENTS: ${s.name ?? 'SEQUENCE'} has no component ${i.name}`, i.loc);
    return out;
  }

  private withComponentsChoice(s: ChoiceSchema, c: ConstraintAst & { c: 'withComponents' }, ctx: Ctx): Schema {
    const byName = new Map(c.items.map((i) => [i.name, i]));
    const all = [...s.alternatives, ...(s.extensions ?? [])];
    for (const i of c.items) if (!all.some((a) => a.name === i.name)) err(`WITH COMPONENTS: ${s.name ?? 'CHOICE'} has no alternative ${i.name}`, i.loc);
    const present = c.items.filter((i) => i.presence === 'PRESENT').map((i) => i.name);
    const alt = (a: AlternativeSchema): AlternativeSchema => {
      const item = byName.get(a.name);
      let permitted = a.permitted !== false;
      if (!item && !c.partial) permitted = false; // full specification: unlisted alternatives are ABSENT
      if (item?.presence === 'ABSENT') permitted = false;
      if (present.length && !present.includes(a.name)) permitted = false;
      const out: AlternativeSchema = { ...a };
      if (item?.constraint && permitted) out.schema = this.applyKeepRef(a.schema, item.constraint, ctx);
      if (!permitted) out.permitted = false;
      return out;
    };
    return withAlternatives(s, alt);
  }

  private applySize(s: Schema, inner: ConstraintAst, ctx: Ctx, mode: Mode, extensible: boolean, loc: Loc): Schema {
    if (s.kind !== 'octetString' && s.kind !== 'bitString' && s.kind !== 'charString') throw new Error('unreachable');
    let ext = extensible;
    let c = inner;
    if (c.c === 'extensible') {
      ext = true;
      if (!c.root) err('SIZE(...) without a root', loc);
      c = c.root;
    }
    const [lo, hi] = hull(this.sizeRanges(c, ctx));
    const min = lo ?? 0;
    if (mode === 'inner') {
      if (min === (s.minSize ?? 0) && hi === s.maxSize) return s;
      err('SIZE constraints on strings by inner subtyping are not supported (would need validation-only size bounds)', loc);
    }
    const out = { ...s };
    const newMin = Math.max(min, s.minSize ?? 0);
    const newMax = minOf(s.maxSize, hi);
    if (newMin > 0 || newMax !== undefined) out.minSize = newMin;
    else delete out.minSize;
    if (newMax !== undefined) out.maxSize = newMax;
    if (ext) out.sizeExtensible = true;
    return out;
  }

  private sizeRanges(c: ConstraintAst, ctx: Ctx): Array<[number | undefined, number | undefined]> {
    const ranges = this.intRanges(c.c === 'extensible' ? c.root ?? err('SIZE(...)', c.loc) : c, { kind: 'integer', min: 0n }, ctx);
    return ranges.map(([a, b]) => [a === undefined ? undefined : Number(a), b === undefined ? undefined : Number(b)]);
  }

  /** Value set of an integer constraint as ranges (X.680 51.2 / 51.4); union and intersection supported. */
  private intRanges(c: ConstraintAst, s: Schema, ctx: Ctx): Range[] {
    switch (c.c) {
      case 'value': {
        const v = this.evalInt(c.value, s, ctx);
        return [[v, v]];
      }
      case 'range':
        return [[this.evalBound(c.lo, s, ctx), this.evalBound(c.hi, s, ctx)]];
      case 'union':
        return c.items.flatMap((i) => this.intRanges(i, s, ctx));
      case 'intersection':
        return c.items.map((i) => this.intRanges(i, s, ctx)).reduce(intersectRanges);
      case 'type': {
        // Contained subtype: the value set of the named INTEGER type.
        let out: Range[] = [[undefined, undefined]];
        for (const st of this.chain(c.type, ctx)) out = intersectRanges(out, this.intRanges(st.c, s, st.ctx));
        return out;
      }
      default:
        err(`${c.c} constraint is not supported on INTEGER`, c.loc);
    }
  }

  private applyIntRanges(s: IntegerSchema, ranges: Range[], mode: Mode): IntegerSchema {
    if (mode === 'visible') {
      // OER-visible value range (X.696 8.2): bounds = the hull of the permitted values, within the parent's.
      const [lo, hi] = hull(ranges);
      const out: IntegerSchema = { ...s };
      const min = maxOf(s.min, lo);
      const max = minOf(s.max, hi);
      if (min !== undefined) out.min = min;
      if (max !== undefined) out.max = max;
      if (ranges.length > 1 || out.permitted) {
        const p = intersectRanges(out.permitted?.map((r) => [r[0], r[1]] as Range) ?? [[out.min, out.max]], ranges);
        if (!(p.length === 1 && p[0]![0] === out.min && p[0]![1] === out.max)) out.permitted = finite(p);
      }
      return out;
    }
    const current: Range[] = s.permitted?.map((r) => [r[0], r[1]] as Range) ?? [[s.min, s.max]];
    const p = intersectRanges(current, ranges);
    if (p.length === 1 && p[0]![0] === s.min && p[0]![1] === s.max) {
      const out = { ...s };
      delete out.permitted;
      return out;
    }
    return { ...s, permitted: finite(p) };
  }

  // ---- union join -----------------------------------------------------------------------------

  /** Least restrictive combination of two constrained versions of the same type (for `A | B`). */
  join(a: Schema, b: Schema, loc: Loc): Schema {
    if (a === b) return a;
    if (a.kind === 'ref' && b.kind === 'ref' && a.target === b.target) return a;
    const x = this.deref(a);
    const y = this.deref(b);
    if (x.kind !== y.kind) err(`union of constraints on different types (${x.kind} and ${y.kind})`, loc);
    let out: Schema;
    switch (x.kind) {
      case 'integer': {
        const yy = y as IntegerSchema;
        out = { ...x };
        if (x.permitted && yy.permitted) (out as IntegerSchema).permitted = finite(unionRanges([...x.permitted, ...yy.permitted]));
        else delete (out as IntegerSchema).permitted;
        break;
      }
      case 'enumerated': {
        const yy = y as EnumeratedSchema;
        out = { ...x };
        const all = [...x.values, ...(x.extensionValues ?? [])].map((v) => v.name);
        if (x.permitted && yy.permitted) (out as EnumeratedSchema).permitted = all.filter((n) => x.permitted!.includes(n) || yy.permitted!.includes(n));
        else delete (out as EnumeratedSchema).permitted;
        if ((out as EnumeratedSchema).permitted?.length === all.length) delete (out as EnumeratedSchema).permitted;
        break;
      }
      case 'octetString': {
        const yy = y as OctetStringSchema;
        const o: OctetStringSchema = { ...x };
        if (x.containing && yy.containing) o.containing = this.join(x.containing, yy.containing, loc);
        else delete o.containing;
        if (x.permittedValues && yy.permittedValues) o.permittedValues = [...x.permittedValues, ...yy.permittedValues.filter((v) => !x.permittedValues!.some((w) => bytesEqual(v, w)))];
        else delete o.permittedValues;
        out = o;
        break;
      }
      case 'sequence': {
        const yy = y as SequenceSchema;
        const jf = (f: FieldSchema, g: FieldSchema): FieldSchema => {
          const o: FieldSchema = { ...f, schema: this.join(f.schema, g.schema, loc) };
          if (f.presence !== g.presence) delete o.presence;
          return o;
        };
        const o: SequenceSchema = { ...x, fields: x.fields.map((f, i) => jf(f, yy.fields[i]!)) };
        if (x.extensions)
          o.extensions = x.extensions.map((e, i) => {
            const f = yy.extensions![i]!;
            if ('group' in e) return { group: e.group.map((g, j) => jf(g, (f as ExtensionGroupSchema).group[j]!)) };
            return jf(e, f as FieldSchema);
          });
        out = o;
        break;
      }
      case 'sequenceOf': {
        const yy = y as SequenceOfSchema;
        const o: SequenceOfSchema = { ...x, item: this.join(x.item, yy.item, loc) };
        if (x.minSize === undefined || yy.minSize === undefined) delete o.minSize;
        else o.minSize = Math.min(x.minSize, yy.minSize);
        if (x.maxSize === undefined || yy.maxSize === undefined) delete o.maxSize;
        else o.maxSize = Math.max(x.maxSize, yy.maxSize);
        out = o;
        break;
      }
      case 'choice': {
        const yy = y as ChoiceSchema;
        const ya = [...yy.alternatives, ...(yy.extensions ?? [])];
        const ja = (p: AlternativeSchema): AlternativeSchema => {
          const q = ya.find((z) => z.name === p.name)!;
          const pp = p.permitted !== false;
          const qp = q.permitted !== false;
          const o: AlternativeSchema = { ...p };
          delete o.permitted;
          if (pp && qp) o.schema = this.join(p.schema, q.schema, loc);
          else if (qp) o.schema = q.schema;
          else if (!pp) o.permitted = false;
          return o;
        };
        out = withAlternatives(x, ja);
        break;
      }
      default:
        out = x;
    }
    if (a.kind === 'ref' && schemaEqual(x, out)) return a;
    if (b.kind === 'ref' && schemaEqual(y, out)) return b;
    return this.reref(out);
  }
}

// ---- helpers ----------------------------------------------------------------------------------

function withAlternatives(s: ChoiceSchema, f: (a: AlternativeSchema) => AlternativeSchema): ChoiceSchema {
  const out: ChoiceSchema = { ...s, alternatives: s.alternatives.map(f) };
  if (s.extensions) out.extensions = s.extensions.map(f);
  return out;
}

function selectorField(cls: AssignmentAst & { a: 'class' }, loc: Loc) {
  const unique = cls.fields.filter((f) => f.unique && f.type);
  if (unique.length === 1) return unique[0]!;
  const valueFields = cls.fields.filter((f) => f.type);
  if (valueFields.length === 1) return valueFields[0]!;
  err(`class ${cls.name}: cannot tell which value field identifies the objects (needs one UNIQUE field)`, loc);
}

function describeSet(s: ObjectSetRefAst): string {
  return s.s === 'ref' ? s.name : '{...}';
}

function withEof(tokens: Token[], loc: Loc): Token[] {
  const last = tokens[tokens.length - 1];
  return [...tokens, { kind: 'eof', text: '<end of object>', file: last?.file ?? loc.file, line: last?.line ?? loc.line }];
}

function checkUnique(items: Array<{ name: string }>, what: string, loc: Loc): void {
  const seen = new Set<string>();
  for (const i of items) {
    if (seen.has(i.name)) err(`duplicate ${what} ${i.name}`, loc);
    seen.add(i.name);
  }
}

function isString(s: Schema): boolean {
  return s.kind === 'octetString' || s.kind === 'bitString' || s.kind === 'charString';
}

export function intRepr(v: bigint, s: IntegerSchema): number | bigint {
  return isNumberInt(s) ? Number(v) : v;
}

/** schema.ts: INTEGER -> number when both bounds exist and lie within +-(2^53-1), else bigint. */
export function isNumberInt(s: IntegerSchema): boolean {
  return s.min !== undefined && s.max !== undefined && s.min >= -SAFE && s.max <= SAFE;
}

function hexBytes(text: string, loc: Loc): Uint8Array {
  if (text.length % 2 || /[^0-9A-Fa-f]/.test(text)) err(`invalid hex string '${text}'H for OCTET STRING`, loc);
  return Uint8Array.from(text.match(/../g) ?? [], (h) => parseInt(h, 16));
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function cmpLo(a: bigint | undefined, b: bigint | undefined): bigint | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a > b ? a : b;
}
function cmpHi(a: bigint | undefined, b: bigint | undefined): bigint | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a < b ? a : b;
}

function intersectRanges(a: Range[], b: Range[]): Range[] {
  const out: Range[] = [];
  for (const [alo, ahi] of a)
    for (const [blo, bhi] of b) {
      const lo = cmpLo(alo, blo);
      const hi = cmpHi(ahi, bhi);
      if (lo === undefined || hi === undefined || lo <= hi) out.push([lo, hi]);
    }
  return unionRanges(out);
}

function unionRanges(rs: Array<[bigint | undefined, bigint | undefined]>): Range[] {
  const sorted = [...rs].sort((x, y) => (x[0] === undefined ? -1 : y[0] === undefined ? 1 : x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  const out: Range[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && (last[1] === undefined || (r[0] !== undefined && r[0] <= last[1] + 1n))) {
      if (last[1] !== undefined && (r[1] === undefined || r[1] > last[1])) last[1] = r[1];
    } else out.push([r[0], r[1]]);
  }
  return out;
}

function hull<T extends bigint | number>(rs: Array<[T | undefined, T | undefined]>): [T | undefined, T | undefined] {
  let lo: T | undefined = rs[0]?.[0];
  let hi: T | undefined = rs[0]?.[1];
  for (const [a, b] of rs) {
    if (lo !== undefined && (a === undefined || a < lo)) lo = a;
    if (hi !== undefined && (b === undefined || b > hi)) hi = b;
  }
  return [lo, hi];
}

function maxOf<T extends bigint | number>(a: T | undefined, b: T | undefined): T | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a > b ? a : b;
}
function minOf<T extends bigint | number>(a: T | undefined, b: T | undefined): T | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a < b ? a : b;
}

function finite(rs: Range[]): Array<[bigint, bigint]> {
  return rs.map(([a, b]) => {
    if (a === undefined || b === undefined) err('a validation-only integer range with an unbounded end is not representable in the IR');
    return [a, b];
  });
}

/** Structural equality of schemas (refs by identity; symbol keys ignored). */
export function schemaEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (a instanceof Uint8Array || b instanceof Uint8Array) return a instanceof Uint8Array && b instanceof Uint8Array && bytesEqual(a, b);
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if ((a as { kind?: string }).kind === 'ref' || (b as { kind?: string }).kind === 'ref') return false;
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => schemaEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}
