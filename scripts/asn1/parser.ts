/** Recursive-descent parser for the ASN.1 subset used by IEEE 1609.2 / 1609.2.1 (see ast.ts). */
import type {
  ActualParam,
  AltAst,
  AssignmentAst,
  BuiltinName,
  ClassFieldAst,
  ComponentAst,
  ComponentConstraintAst,
  ConstraintAst,
  EnumItem,
  FormalParam,
  Loc,
  ModuleAst,
  ObjectSetRefAst,
  TypeAst,
  ValueAst,
} from './ast.js';
import { Asn1Error, type Token } from './lexer.js';

const CHAR_STRINGS = ['IA5String', 'UTF8String', 'PrintableString', 'VisibleString', 'NumericString'];
const isUpper = (s: string) => /^[A-Z]/.test(s);
const isLower = (s: string) => /^[a-z]/.test(s);
/** Information object class references are written in upper case (X.681 7.1). */
export const isClassName = (s: string) => /^[A-Z][A-Z0-9-]*$/.test(s) && /[A-Z]/.test(s) && !KEYWORDS.has(s);
const KEYWORDS = new Set([
  'BOOLEAN', 'NULL', 'INTEGER', 'OCTET', 'BIT', 'STRING', 'OBJECT', 'IDENTIFIER', 'SEQUENCE', 'SET', 'OF', 'CHOICE',
  'ENUMERATED', 'SIZE', 'WITH', 'COMPONENT', 'COMPONENTS', 'CONTAINING', 'CONSTRAINED', 'BY', 'ALL', 'EXCEPT', 'MIN',
  'MAX', 'TRUE', 'FALSE', 'OPTIONAL', 'DEFAULT', 'PRESENT', 'ABSENT', 'CLASS', 'UNIQUE', 'SYNTAX', 'IDENTIFIED',
  'DEFINITIONS', 'BEGIN', 'END', 'IMPORTS', 'EXPORTS', 'FROM', 'AUTOMATIC', 'EXPLICIT', 'IMPLICIT', 'TAGS', 'UNION',
  'INTERSECTION', 'APPLICATION', 'PRIVATE', 'UNIVERSAL', 'INCLUDES', 'PATTERN', 'FROM', 'EXTENSIBILITY', 'IMPLIED',
]);

export class Parser {
  private pos = 0;
  constructor(private readonly tokens: Token[]) {}

  // ---- token helpers -------------------------------------------------------------------------

  peek(k = 0): Token {
    return this.tokens[Math.min(this.pos + k, this.tokens.length - 1)]!;
  }
  next(): Token {
    const t = this.peek();
    if (t.kind !== 'eof') this.pos++;
    return t;
  }
  loc(t: Token = this.peek()): Loc {
    return { file: t.file, line: t.line };
  }
  is(text: string, k = 0): boolean {
    const t = this.peek(k);
    return (t.kind === 'punct' || t.kind === 'ident') && t.text === text;
  }
  accept(text: string): boolean {
    if (this.is(text)) {
      this.pos++;
      return true;
    }
    return false;
  }
  expect(text: string): Token {
    if (!this.is(text)) this.fail(`expected '${text}'`);
    return this.next();
  }
  ident(what = 'identifier'): Token {
    const t = this.peek();
    if (t.kind !== 'ident') this.fail(`expected ${what}`);
    return this.next();
  }
  fail(message: string, t: Token = this.peek()): never {
    throw new Asn1Error(`${message}, found '${t.text}'`, { file: t.file, line: t.line });
  }
  atEnd(): boolean {
    return this.peek().kind === 'eof';
  }
  /** Consumes a balanced `{ ... }` group and returns the tokens inside it. */
  braced(): Token[] {
    this.expect('{');
    const start = this.pos;
    let depth = 1;
    while (depth > 0) {
      const t = this.next();
      if (t.kind === 'eof') this.fail('unbalanced braces', t);
      if (t.kind === 'punct' && t.text === '{') depth++;
      if (t.kind === 'punct' && t.text === '}') depth--;
    }
    return this.tokens.slice(start, this.pos - 1);
  }

  // ---- module ---------------------------------------------------------------------------------

  module(): ModuleAst {
    const nameTok = this.ident('module name');
    if (this.is('{')) this.braced(); // module OID
    this.expect('DEFINITIONS');
    let tagDefault: ModuleAst['tagDefault'] = 'EXPLICIT';
    if (this.is('AUTOMATIC') || this.is('EXPLICIT') || this.is('IMPLICIT')) {
      tagDefault = this.next().text as ModuleAst['tagDefault'];
      this.expect('TAGS');
    }
    if (this.accept('EXTENSIBILITY')) this.fail('EXTENSIBILITY IMPLIED is not supported');
    this.expect('::=');
    this.expect('BEGIN');
    const imports: ModuleAst['imports'] = [];
    for (;;) {
      if (this.accept('EXPORTS')) {
        while (!this.accept(';')) this.next();
        continue;
      }
      if (this.accept('IMPORTS')) {
        let symbols: string[] = [];
        while (!this.accept(';')) {
          if (this.accept('FROM')) {
            const from = this.ident('module name').text;
            if (this.is('{')) this.braced();
            if (this.accept('WITH')) {
              if (!this.accept('SUCCESSORS') && !this.accept('DESCENDANTS')) this.fail('expected SUCCESSORS or DESCENDANTS');
            }
            imports.push({ symbols, from });
            symbols = [];
            continue;
          }
          const sym = this.ident('imported symbol').text;
          if (this.is('{') && this.is('}', 1)) {
            this.next();
            this.next();
          }
          symbols.push(sym);
          this.accept(',');
        }
        if (symbols.length) this.fail('imported symbols without FROM');
        continue;
      }
      break;
    }
    const assignments: AssignmentAst[] = [];
    while (!this.is('END')) {
      if (this.atEnd()) this.fail('missing END');
      assignments.push(this.assignment());
    }
    this.expect('END');
    return { name: nameTok.text, file: nameTok.file, tagDefault, imports, assignments };
  }

  assignment(): AssignmentAst {
    const start = this.peek();
    const loc = this.loc(start);
    const name = this.ident('assignment name').text;
    if (isUpper(name)) {
      if (this.is('{')) {
        // Parameterized type assignment (X.683 8.2).
        const params = this.formalParams();
        this.expect('::=');
        return { a: 'type', name, params, type: this.type(), loc };
      }
      if (this.accept('::=')) {
        if (this.is('CLASS')) return this.classDef(name, loc);
        return { a: 'type', name, type: this.type(), loc };
      }
      // `Name CLASS-NAME ::= { ... }`: object set assignment (X.681 12.1).
      const className = this.ident('class name').text;
      this.expect('::=');
      return { a: 'objectSet', name, className, tokens: this.braced(), loc };
    }
    if (!isLower(name)) this.fail('assignment name must start with a letter', start);
    if (isClassName(this.peek().text) && this.is('::=', 1)) {
      const className = this.next().text;
      this.expect('::=');
      return { a: 'object', name, className, tokens: this.braced(), loc };
    }
    const type = this.type();
    this.expect('::=');
    return { a: 'value', name, type, value: this.value(), loc };
  }

  formalParams(): FormalParam[] {
    this.expect('{');
    const params: FormalParam[] = [];
    do {
      const first = this.ident('parameter').text;
      if (this.accept(':')) params.push({ governor: first, name: this.ident('parameter').text });
      else params.push({ name: first });
    } while (this.accept(','));
    this.expect('}');
    return params;
  }

  classDef(name: string, loc: Loc): AssignmentAst {
    this.expect('CLASS');
    this.expect('{');
    const fields: ClassFieldAst[] = [];
    while (!this.accept('}')) {
      const f = this.next();
      if (f.kind !== 'field') this.fail('expected class field', f);
      const field: ClassFieldAst = { name: f.text, unique: false, optional: false };
      if (/^&[a-z]/.test(f.text)) field.type = this.type();
      if (this.accept('UNIQUE')) field.unique = true;
      if (this.accept('OPTIONAL')) field.optional = true;
      if (this.is('DEFAULT')) this.fail('DEFAULT in class fields is not supported');
      fields.push(field);
      if (!this.accept(',') && !this.is('}')) this.fail("expected ',' or '}' in CLASS");
    }
    let syntax: string[] | undefined;
    if (this.accept('WITH')) {
      this.expect('SYNTAX');
      syntax = this.braced().map((t) => {
        if (t.text === '[' || t.text === ']') this.fail('optional groups in WITH SYNTAX are not supported', t);
        return t.text;
      });
    }
    return { a: 'class', name, fields, syntax, loc };
  }

  // ---- types ----------------------------------------------------------------------------------

  type(): TypeAst {
    let type = this.typeNoConstraint();
    while (this.is('(')) {
      const loc = this.loc();
      type = { t: 'constrained', loc, base: type, constraint: this.constraint() };
    }
    return type;
  }

  private typeNoConstraint(): TypeAst {
    const t = this.peek();
    const loc = this.loc(t);
    if (this.is('[')) {
      this.next();
      let tagClass: 'context' | 'application' | 'private' | 'universal' = 'context';
      if (this.accept('APPLICATION')) tagClass = 'application';
      else if (this.accept('PRIVATE')) tagClass = 'private';
      else if (this.accept('UNIVERSAL')) tagClass = 'universal';
      const num = this.next();
      if (num.kind !== 'number') this.fail('expected tag number', num);
      this.expect(']');
      let mode: 'IMPLICIT' | 'EXPLICIT' | undefined;
      if (this.accept('IMPLICIT')) mode = 'IMPLICIT';
      else if (this.accept('EXPLICIT')) mode = 'EXPLICIT';
      return { t: 'tagged', loc, tagClass, tag: Number(num.text), mode, type: this.type() };
    }
    if (t.kind !== 'ident') this.fail('expected a type');
    switch (t.text) {
      case 'BOOLEAN':
      case 'NULL':
        this.next();
        return { t: 'builtin', name: t.text, loc };
      case 'INTEGER': {
        this.next();
        if (this.is('{')) {
          this.next();
          const namedNumbers: Array<{ name: string; value: ValueAst }> = [];
          do {
            const name = this.ident('named number').text;
            this.expect('(');
            const value = this.value();
            this.expect(')');
            namedNumbers.push({ name, value });
          } while (this.accept(','));
          this.expect('}');
          return { t: 'builtin', name: 'INTEGER', loc, namedNumbers };
        }
        return { t: 'builtin', name: 'INTEGER', loc };
      }
      case 'OCTET':
        this.next();
        this.expect('STRING');
        return { t: 'builtin', name: 'OCTET STRING', loc };
      case 'OBJECT':
        this.next();
        this.expect('IDENTIFIER');
        return { t: 'builtin', name: 'OBJECT IDENTIFIER', loc };
      case 'BIT': {
        this.next();
        this.expect('STRING');
        if (this.is('{')) {
          this.next();
          const namedBits: Array<{ name: string; bit: number }> = [];
          do {
            const name = this.ident('named bit').text;
            this.expect('(');
            const num = this.next();
            if (num.kind !== 'number') this.fail('named bit values must be numbers', num);
            this.expect(')');
            namedBits.push({ name, bit: Number(num.text) });
          } while (this.accept(','));
          this.expect('}');
          return { t: 'builtin', name: 'BIT STRING', loc, namedBits };
        }
        return { t: 'builtin', name: 'BIT STRING', loc };
      }
      case 'ENUMERATED':
        this.next();
        return this.enumerated(loc);
      case 'SEQUENCE':
      case 'SET': {
        if (t.text === 'SET') this.fail('SET and SET OF are not supported (not used by IEEE 1609.2)');
        this.next();
        if (this.is('{')) return this.sequence(loc);
        let size: ConstraintAst | undefined;
        if (this.is('SIZE')) {
          const sloc = this.loc();
          this.next();
          size = { c: 'size', loc: sloc, inner: this.constraint() };
        } else if (this.is('(')) {
          size = this.constraint();
        }
        this.expect('OF');
        if (this.peek().kind === 'ident' && isLower(this.peek().text) && this.peek(1).kind === 'ident') this.next(); // `OF name Type`
        return { t: 'sequenceOf', loc, item: this.type(), size };
      }
      case 'CHOICE':
        this.next();
        return this.choice(loc);
      default:
        break;
    }
    if (CHAR_STRINGS.includes(t.text)) {
      this.next();
      return { t: 'builtin', name: t.text as BuiltinName, loc };
    }
    if (!isUpper(t.text) || KEYWORDS.has(t.text)) this.fail('expected a type');
    this.next();
    // Class field type: CLASS.&field [ ({Set}) | ({Set}{@.id}) ]  (X.681 14, X.682 10)
    if (this.is('.') && this.peek(1).kind === 'field') {
      this.next();
      const field = this.next().text;
      const type: TypeAst & { t: 'classField' } = { t: 'classField', loc, className: t.text, field };
      if (this.is('(') && this.is('{', 1)) {
        this.next();
        type.set = this.objectSetRef();
        if (this.is('{')) {
          this.next();
          this.expect('@');
          if (!this.accept('.')) this.fail('only relative component references (@.name) are supported');
          type.at = this.ident('component name').text;
          if (this.is('.')) this.fail('only one-level component references (@.name) are supported');
          this.expect('}');
        }
        this.expect(')');
      }
      return type;
    }
    let module: string | undefined;
    let name = t.text;
    if (this.is('.') && this.peek(1).kind === 'ident' && isUpper(this.peek(1).text)) {
      this.next();
      module = name;
      name = this.next().text;
    }
    const ref: TypeAst & { t: 'ref' } = { t: 'ref', loc, name, module };
    if (this.is('{')) ref.args = this.actualParams();
    return ref;
  }

  private objectSetRef(): ObjectSetRefAst {
    const loc = this.loc();
    const inner = this.braced();
    if (inner.length === 1 && inner[0]!.kind === 'ident' && isUpper(inner[0]!.text)) return { s: 'ref', name: inner[0]!.text, loc };
    return { s: 'inline', tokens: inner, loc };
  }

  private actualParams(): ActualParam[] {
    this.expect('{');
    const params: ActualParam[] = [];
    do {
      if (this.is('{')) params.push({ p: 'objectSet', set: this.objectSetRef() });
      else if (this.peek().kind === 'ident' && isUpper(this.peek().text) && !KEYWORDS.has(this.peek().text))
        params.push({ p: 'type', type: this.type() });
      else if (this.peek().kind === 'ident' && ['BOOLEAN', 'NULL', 'INTEGER', 'OCTET', 'BIT', 'SEQUENCE', 'CHOICE', 'ENUMERATED', 'OBJECT'].includes(this.peek().text))
        params.push({ p: 'type', type: this.type() });
      else params.push({ p: 'value', value: this.value() });
    } while (this.accept(','));
    this.expect('}');
    return params;
  }

  private enumerated(loc: Loc): TypeAst {
    this.expect('{');
    const root: EnumItem[] = [];
    const additions: EnumItem[] = [];
    let extensible = false;
    let target = root;
    do {
      if (this.accept('...')) {
        if (extensible) this.fail('second extension marker in ENUMERATED');
        extensible = true;
        target = additions;
        continue;
      }
      const name = this.ident('enumeration item').text;
      let value: ValueAst | undefined;
      if (this.accept('(')) {
        value = this.value();
        this.expect(')');
      }
      target.push({ name, value });
    } while (this.accept(','));
    this.expect('}');
    return { t: 'enumerated', loc, root, extensible, additions };
  }

  private component(): ComponentAst {
    const nameTok = this.ident('component name');
    if (!isLower(nameTok.text)) this.fail('component names start with a lower-case letter', nameTok);
    if (this.is('COMPONENTS')) this.fail('COMPONENTS OF is not supported');
    const type = this.type();
    const c: ComponentAst = { name: nameTok.text, type, optional: false, loc: this.loc(nameTok) };
    if (this.accept('OPTIONAL')) c.optional = true;
    else if (this.accept('DEFAULT')) c.default = this.value();
    return c;
  }

  private sequence(loc: Loc): TypeAst {
    this.expect('{');
    const fields: ComponentAst[] = [];
    const additions: Array<ComponentAst | { group: ComponentAst[] }> = [];
    let state: 'root' | 'ext' | 'root2' = 'root';
    let extensible = false;
    if (this.accept('}')) return { t: 'sequence', loc, fields, extensible, additions };
    do {
      if (this.accept('...')) {
        if (state === 'root') {
          extensible = true;
          state = 'ext';
        } else if (state === 'ext') state = 'root2';
        else this.fail('third extension marker');
        continue;
      }
      if (this.is('[[')) {
        if (state !== 'ext') this.fail('extension addition group outside the extension');
        this.next();
        if (this.peek().kind === 'number') {
          this.next();
          this.expect(':');
        }
        const group: ComponentAst[] = [];
        do group.push(this.component());
        while (this.accept(','));
        this.expect(']]');
        additions.push({ group });
        continue;
      }
      const c = this.component();
      if (state === 'ext') additions.push(c);
      else fields.push(c);
    } while (this.accept(','));
    this.expect('}');
    return { t: 'sequence', loc, fields, extensible, additions };
  }

  private choice(loc: Loc): TypeAst {
    this.expect('{');
    const alts: AltAst[] = [];
    const additions: AltAst[] = [];
    let extensible = false;
    do {
      if (this.accept('...')) {
        if (extensible) this.fail('second extension marker in CHOICE');
        extensible = true;
        continue;
      }
      if (this.is('[[')) this.fail('extension addition groups in CHOICE are not supported');
      const nameTok = this.ident('alternative name');
      const alt: AltAst = { name: nameTok.text, type: this.type(), loc: this.loc(nameTok) };
      (extensible ? additions : alts).push(alt);
    } while (this.accept(','));
    this.expect('}');
    return { t: 'choice', loc, alts, extensible, additions };
  }

  // ---- values ---------------------------------------------------------------------------------

  value(): ValueAst {
    const t = this.peek();
    const loc = this.loc(t);
    if (t.kind === 'number') {
      this.next();
      return { v: 'number', value: BigInt(t.text), loc };
    }
    if (this.is('-') && this.peek(1).kind === 'number') {
      this.next();
      return { v: 'number', value: -BigInt(this.next().text), loc };
    }
    if (t.kind === 'hstring') {
      this.next();
      return { v: 'hstring', text: t.text, loc };
    }
    if (t.kind === 'bstring') {
      this.next();
      return { v: 'bstring', text: t.text, loc };
    }
    if (t.kind === 'cstring') {
      this.next();
      return { v: 'cstring', text: t.text, loc };
    }
    if (this.is('{')) {
      this.next();
      const items: Array<{ name?: string; number?: bigint }> = [];
      while (!this.accept('}')) {
        const x = this.next();
        if (x.kind === 'number') items.push({ number: BigInt(x.text) });
        else if (x.kind === 'ident') {
          const item: { name?: string; number?: bigint } = { name: x.text };
          if (this.accept('(')) {
            const num = this.next();
            if (num.kind !== 'number') this.fail('expected number', num);
            item.number = BigInt(num.text);
            this.expect(')');
          }
          items.push(item);
        } else this.fail('unsupported braced value', x);
        this.accept(',');
      }
      return { v: 'braced', items, loc };
    }
    if (t.kind === 'ident') {
      this.next();
      switch (t.text) {
        case 'TRUE':
          return { v: 'bool', value: true, loc };
        case 'FALSE':
          return { v: 'bool', value: false, loc };
        case 'NULL':
          return { v: 'null', loc };
        case 'MIN':
          return { v: 'min', loc };
        case 'MAX':
          return { v: 'max', loc };
        default:
          if (!isLower(t.text)) this.fail('expected a value', t);
          return { v: 'ref', name: t.text, loc };
      }
    }
    this.fail('expected a value');
  }

  // ---- constraints (X.680 49-51, X.682) --------------------------------------------------------

  constraint(): ConstraintAst {
    const loc = this.loc();
    this.expect('(');
    const c = this.elementSetSpecs(loc);
    if (this.is('!')) this.fail('exception specifications are not supported');
    this.expect(')');
    return c;
  }

  private elementSetSpecs(loc: Loc): ConstraintAst {
    if (this.accept('...')) {
      let additions: ConstraintAst | undefined;
      if (this.accept(',')) additions = this.elementSetSpec();
      return { c: 'extensible', loc, additions };
    }
    const root = this.elementSetSpec();
    if (this.accept(',')) {
      this.expect('...');
      let additions: ConstraintAst | undefined;
      if (this.accept(',')) additions = this.elementSetSpec();
      return { c: 'extensible', loc, root, additions };
    }
    return root;
  }

  private elementSetSpec(): ConstraintAst {
    const loc = this.loc();
    if (this.is('ALL') && this.is('EXCEPT', 1)) {
      this.next();
      this.next();
      return { c: 'allExcept', loc, inner: this.elements() };
    }
    const items = [this.intersection()];
    while (this.accept('|') || this.accept('UNION')) items.push(this.intersection());
    return items.length === 1 ? items[0]! : { c: 'union', loc, items };
  }

  private intersection(): ConstraintAst {
    const loc = this.loc();
    const items = [this.elements()];
    while (this.accept('^') || this.accept('INTERSECTION')) items.push(this.elements());
    if (this.is('EXCEPT')) this.fail('EXCEPT inside an element set is not supported');
    return items.length === 1 ? items[0]! : { c: 'intersection', loc, items };
  }

  private elements(): ConstraintAst {
    const t = this.peek();
    const loc = this.loc(t);
    if (this.is('(')) {
      this.next();
      const c = this.elementSetSpecs(loc);
      this.expect(')');
      return c;
    }
    if (this.accept('SIZE')) return { c: 'size', loc, inner: this.constraint() };
    if (this.is('WITH') && this.is('COMPONENT', 1)) {
      this.next();
      this.next();
      return { c: 'withComponent', loc, inner: this.constraint() };
    }
    if (this.is('WITH') && this.is('COMPONENTS', 1)) {
      this.next();
      this.next();
      return this.withComponents(loc);
    }
    if (this.accept('CONTAINING')) {
      const type = this.type();
      if (this.is('ENCODED')) this.fail('ENCODED BY is not supported');
      return { c: 'containing', loc, type };
    }
    if (this.is('CONSTRAINED') && this.is('BY', 1)) {
      this.next();
      this.next();
      this.expect('{');
      const args: TypeAst[] = [];
      if (!this.is('}')) {
        do args.push(this.type());
        while (this.accept(','));
      }
      this.expect('}');
      return { c: 'constrainedBy', loc, args };
    }
    if (this.is('INCLUDES')) {
      this.next();
      return { c: 'type', loc, type: this.type() };
    }
    if (this.is('PATTERN') || this.is('FROM')) this.fail(`${t.text} constraints are not supported`);
    // A type used as a constraint (contained subtype, X.680 51.3): references start upper case.
    if (t.kind === 'ident' && isUpper(t.text) && !['MIN', 'MAX', 'TRUE', 'FALSE', 'NULL'].includes(t.text)) {
      return { c: 'type', loc, type: this.type() };
    }
    const lo = this.value();
    if (this.accept('<')) this.fail("exclusive range bounds '<' are not supported");
    if (this.accept('..')) {
      if (this.is('<')) this.fail("exclusive range bounds '<' are not supported");
      return { c: 'range', loc, lo, hi: this.value() };
    }
    return { c: 'value', loc, value: lo };
  }

  private withComponents(loc: Loc): ConstraintAst {
    this.expect('{');
    let partial = false;
    const items: ComponentConstraintAst[] = [];
    if (this.accept('...')) {
      partial = true;
      if (!this.accept(',')) {
        this.expect('}');
        return { c: 'withComponents', loc, partial, items };
      }
    }
    do {
      const nameTok = this.ident('component name');
      const item: ComponentConstraintAst = { name: nameTok.text, loc: this.loc(nameTok) };
      if (this.is('(')) item.constraint = this.constraint();
      if (this.is('PRESENT') || this.is('ABSENT') || this.is('OPTIONAL')) item.presence = this.next().text as 'PRESENT';
      items.push(item);
    } while (this.accept(','));
    this.expect('}');
    return { c: 'withComponents', loc, partial, items };
  }
}

export function parseModule(tokens: Token[]): ModuleAst {
  const p = new Parser(tokens);
  const m = p.module();
  if (!p.atEnd()) p.fail('text after END');
  return m;
}
