/**
 * Schema IR: what the ASN.1 compiler (scripts/asn1-gen.ts) emits for every type of
 * the modules in asn1/, and what the COER runtime (src/codec/coer/) interprets.
 *
 * Encoding rules are ITU-T X.696 (OER), canonical variant, as profiled by IEEE 1609.2
 * clause 6.1. Only OER-visible constraints influence the encoding; constraints applied
 * by inner subtyping (WITH COMPONENT(S)) are carried as validation-only facts
 * (`presence`, `permitted`, `containing`) and never change the bytes.
 *
 * Runtime value representation (also the basis of the JSON mapping, see json.ts):
 *   BOOLEAN -> boolean            NULL -> null
 *   INTEGER -> number when both bounds exist and lie within +-(2^53-1), else bigint
 *   ENUMERATED -> the identifier (string); an unknown extension value -> number
 *   OCTET STRING -> Uint8Array; with `containing` -> the decoded contained value
 *   BIT STRING -> string of '0'/'1' characters, first bit first
 *   character strings -> string
 *   SEQUENCE -> object keyed by component name; absent OPTIONAL/DEFAULT -> property absent
 *   SEQUENCE OF -> array
 *   CHOICE -> single-key object { alternativeName: value }
 *   open type -> the decoded value of the type selected by the table constraint, or
 *                { $unknownOpenType: Uint8Array } when the selector is not in the table
 */

export type Value = unknown;

export type Schema =
  | BooleanSchema
  | NullSchema
  | IntegerSchema
  | EnumeratedSchema
  | OctetStringSchema
  | BitStringSchema
  | CharStringSchema
  | SequenceSchema
  | SequenceOfSchema
  | ChoiceSchema
  | OpenTypeSchema
  | RefSchema;

interface SchemaBase {
  /** Name of the type reference this schema was defined by (for error paths), e.g. "HashedId8". */
  name?: string;
}

export interface BooleanSchema extends SchemaBase {
  kind: 'boolean';
}

export interface NullSchema extends SchemaBase {
  kind: 'null';
}

export interface IntegerSchema extends SchemaBase {
  kind: 'integer';
  /** OER-visible lower/upper bound (absent = unbounded). An extensible constraint is not OER-visible: omit both. */
  min?: bigint;
  max?: bigint;
  /** Validation-only permitted ranges from inner subtyping or an extensible constraint root, inclusive. */
  permitted?: Array<[bigint, bigint]>;
}

export interface EnumeratedSchema extends SchemaBase {
  kind: 'enumerated';
  /** Root enumerations, with their numeric values. */
  values: Array<{ name: string; value: number }>;
  extensible: boolean;
  /** Extension additions (after "..."). */
  extensionValues?: Array<{ name: string; value: number }>;
  /** Validation-only: the identifiers permitted by inner subtyping, e.g. `type(implicit)`. Absent = all. */
  permitted?: string[];
}

export interface OctetStringSchema extends SchemaBase {
  kind: 'octetString';
  /** OER-visible SIZE constraint; min === max (and not extensible) means fixed size, no length determinant. */
  minSize?: number;
  maxSize?: number;
  /** The SIZE constraint carries an extension marker (then it is not OER-visible for the length). */
  sizeExtensible?: boolean;
  /** (CONTAINING T): the octets are the COER encoding of T. */
  containing?: Schema;
  /** Validation-only: single values permitted by inner subtyping, e.g. `cracaId ('000000'H)`. Absent = all. */
  permittedValues?: Uint8Array[];
  /**
   * OBJECT IDENTIFIER: the value is the contents octets of its BER encoding (X.690 8.19); X.696 clause 24
   * encodes it as a length determinant followed by those octets, i.e. exactly like an unconstrained OCTET STRING.
   */
  objectIdentifier?: boolean;
}

export interface BitStringSchema extends SchemaBase {
  kind: 'bitString';
  minSize?: number;
  maxSize?: number;
  sizeExtensible?: boolean;
  /** Named bits, e.g. { app: 0, enrol: 1 } (for display). */
  namedBits?: Record<string, number>;
}

export interface CharStringSchema extends SchemaBase {
  kind: 'charString';
  stringType: 'IA5String' | 'UTF8String' | 'PrintableString' | 'VisibleString' | 'NumericString';
  minSize?: number;
  maxSize?: number;
  sizeExtensible?: boolean;
}

export interface FieldSchema {
  name: string;
  schema: Schema;
  /** OPTIONAL, or DEFAULT (then `default` is set). */
  optional?: boolean;
  /** DEFAULT value in runtime representation. Canonical COER: a value equal to it is encoded as absent. */
  default?: Value;
  /** Validation-only presence constraint from inner subtyping. */
  presence?: 'present' | 'absent';
}

export interface ExtensionGroupSchema {
  /** An extension addition group [[ ... ]]: encoded as one open type holding a SEQUENCE of these fields. */
  group: FieldSchema[];
}

export interface SequenceSchema extends SchemaBase {
  kind: 'sequence';
  /** Root components in order. */
  fields: FieldSchema[];
  extensible: boolean;
  /** Extension additions in order (each is a component or an addition group). */
  extensions?: Array<FieldSchema | ExtensionGroupSchema>;
}

export interface SequenceOfSchema extends SchemaBase {
  kind: 'sequenceOf';
  item: Schema;
  /** SIZE constraint (validation; OER always encodes the quantity). */
  minSize?: number;
  maxSize?: number;
  sizeExtensible?: boolean;
}

export type TagClass = 'universal' | 'application' | 'context' | 'private';

export interface AlternativeSchema {
  name: string;
  schema: Schema;
  /** Tag number and class (AUTOMATIC TAGS: context-specific 0, 1, 2, ... across root and extensions). */
  tag: number;
  tagClass: TagClass;
  /** Validation-only: false when inner subtyping excludes this alternative (ABSENT). Default true. */
  permitted?: boolean;
}

export interface ChoiceSchema extends SchemaBase {
  kind: 'choice';
  alternatives: AlternativeSchema[];
  extensible: boolean;
  /** Extension alternatives; their values are encoded as open types (length + encoding). */
  extensions?: AlternativeSchema[];
}

/**
 * An open type constrained by a table constraint, e.g. EXTENSION.&Type({Set}{@.id}).
 * `selector` names the sibling component (in the enclosing SEQUENCE) whose value picks the row.
 */
export interface OpenTypeSchema extends SchemaBase {
  kind: 'open';
  selector: string;
  /** Rows of the object set: selector value (runtime representation) -> type. */
  table: Array<{ id: Value; schema: Schema }>;
}

/** A lazy reference to a named type (allows recursion and keeps generated modules small). */
export interface RefSchema extends SchemaBase {
  kind: 'ref';
  name: string;
  target: () => Schema;
}

/** The value of an open type whose selector is not in the table: the raw encoding is kept. */
export interface UnknownOpenType {
  $unknownOpenType: Uint8Array;
}

/** A CHOICE extension alternative this codec does not know: tag and raw encoding are kept. */
export interface UnknownAlternative {
  $unknown: { tagClass: TagClass; tag: number; bytes: Uint8Array };
}

/**
 * `$unknownExtensions` of an extensible SEQUENCE value: one entry per extension-bitmap bit after the known
 * additions, the addition's octets (inside its length) or null when that bit is 0.
 */
export type UnknownExtensions = Array<Uint8Array | null>;
