/** AST of the ASN.1 subset (X.680, X.681, X.682, X.683) used by the IEEE 1609.2 / 1609.2.1 modules. */
import type { Token } from './lexer.js';

export interface Loc {
  file: string;
  line: number;
}

export type TypeAst =
  | { t: 'builtin'; name: BuiltinName; loc: Loc; namedNumbers?: Array<{ name: string; value: ValueAst }>; namedBits?: Array<{ name: string; bit: number }> }
  | { t: 'enumerated'; loc: Loc; root: EnumItem[]; extensible: boolean; additions: EnumItem[] }
  | { t: 'sequence'; loc: Loc; fields: ComponentAst[]; extensible: boolean; additions: Array<ComponentAst | { group: ComponentAst[] }> }
  | { t: 'choice'; loc: Loc; alts: AltAst[]; extensible: boolean; additions: AltAst[] }
  | { t: 'sequenceOf'; loc: Loc; item: TypeAst; size?: ConstraintAst }
  | { t: 'ref'; loc: Loc; name: string; module?: string; args?: ActualParam[] }
  | { t: 'classField'; loc: Loc; className: string; field: string; set?: ObjectSetRefAst; at?: string }
  | { t: 'tagged'; loc: Loc; tagClass: 'context' | 'application' | 'private' | 'universal'; tag: number; mode?: 'IMPLICIT' | 'EXPLICIT'; type: TypeAst }
  | { t: 'constrained'; loc: Loc; base: TypeAst; constraint: ConstraintAst };

export type BuiltinName =
  | 'BOOLEAN'
  | 'NULL'
  | 'INTEGER'
  | 'OCTET STRING'
  | 'BIT STRING'
  | 'OBJECT IDENTIFIER'
  | 'IA5String'
  | 'UTF8String'
  | 'PrintableString'
  | 'VisibleString'
  | 'NumericString';

export interface EnumItem {
  name: string;
  value?: ValueAst;
}

export interface ComponentAst {
  name: string;
  type: TypeAst;
  optional: boolean;
  default?: ValueAst;
  loc: Loc;
}

export interface AltAst {
  name: string;
  type: TypeAst;
  loc: Loc;
}

export type ActualParam =
  | { p: 'type'; type: TypeAst }
  | { p: 'value'; value: ValueAst }
  | { p: 'objectSet'; set: ObjectSetRefAst };

/** An object set as written: a reference `{Name}` or an inline spec. */
export type ObjectSetRefAst = { s: 'ref'; name: string; loc: Loc } | { s: 'inline'; tokens: Token[]; loc: Loc };

export type ValueAst =
  | { v: 'number'; value: bigint; loc: Loc }
  | { v: 'ref'; name: string; loc: Loc }
  | { v: 'hstring'; text: string; loc: Loc }
  | { v: 'bstring'; text: string; loc: Loc }
  | { v: 'cstring'; text: string; loc: Loc }
  | { v: 'bool'; value: boolean; loc: Loc }
  | { v: 'null'; loc: Loc }
  | { v: 'min'; loc: Loc }
  | { v: 'max'; loc: Loc }
  /** `{ a, b }` (named bits), `{}` or an OBJECT IDENTIFIER value `{iso(1) ...}` (components kept as written). */
  | { v: 'braced'; items: Array<{ name?: string; number?: bigint }>; loc: Loc };

export type ConstraintAst =
  | { c: 'union'; items: ConstraintAst[]; loc: Loc }
  | { c: 'intersection'; items: ConstraintAst[]; loc: Loc }
  /** A root with an extension marker `root, ...[, additions]`: never OER-visible (X.696 8.2.2). */
  | { c: 'extensible'; root?: ConstraintAst; additions?: ConstraintAst; loc: Loc }
  | { c: 'value'; value: ValueAst; loc: Loc }
  | { c: 'range'; lo: ValueAst; hi: ValueAst; loc: Loc }
  | { c: 'size'; inner: ConstraintAst; loc: Loc }
  | { c: 'type'; type: TypeAst; loc: Loc }
  | { c: 'withComponent'; inner: ConstraintAst; loc: Loc }
  | { c: 'withComponents'; partial: boolean; items: ComponentConstraintAst[]; loc: Loc }
  | { c: 'containing'; type: TypeAst; loc: Loc }
  | { c: 'constrainedBy'; args: TypeAst[]; loc: Loc }
  | { c: 'allExcept'; inner: ConstraintAst; loc: Loc };

export interface ComponentConstraintAst {
  name: string;
  constraint?: ConstraintAst;
  presence?: 'PRESENT' | 'ABSENT' | 'OPTIONAL';
  loc: Loc;
}

export interface ClassFieldAst {
  name: string; // '&id', '&Type'
  type?: TypeAst; // value fields
  unique: boolean;
  optional: boolean;
}

export type AssignmentAst =
  | { a: 'type'; name: string; params?: FormalParam[]; type: TypeAst; loc: Loc }
  | { a: 'value'; name: string; type: TypeAst; value: ValueAst; loc: Loc }
  | { a: 'class'; name: string; fields: ClassFieldAst[]; syntax?: string[]; loc: Loc }
  | { a: 'objectSet'; name: string; className: string; tokens: Token[]; loc: Loc }
  | { a: 'object'; name: string; className: string; tokens: Token[]; loc: Loc };

export interface FormalParam {
  name: string;
  /** Governor, e.g. `EXT-TYPE` in `{EXT-TYPE : ExtensionTypes}` (then the parameter is an object set). */
  governor?: string;
}

export interface ModuleAst {
  name: string;
  file: string;
  tagDefault: 'AUTOMATIC' | 'EXPLICIT' | 'IMPLICIT';
  imports: Array<{ symbols: string[]; from: string }>;
  assignments: AssignmentAst[];
}
