/**
 * The ASN.1 compiler: committed output is current, every type assignment of every module has a codec,
 * and constructs it does not understand fail with file:line instead of being dropped.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generate, generateFrom, sourceFiles } from '../../../scripts/asn1-gen.js';
import { listTypes, typeRegistry, findType } from '../../../src/codec/gen/index.js';

const root = resolve(import.meta.dirname, '../../..');

/** Type assignments counted straight from the sources (independently of the compiler's lexer/parser). */
function typeAssignmentsBySimpleScan(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const rel of sourceFiles(root)) {
    let text = readFileSync(join(root, rel), 'latin1');
    text = text.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/--.*$/gm, '');
    const module = /^\s*([A-Za-z][\w-]*)/.exec(text)![1]!;
    // `Name ::= <type>` at the start of a line; not `Name {params} ::=` (parameterized), not `Set CLASS-NAME ::=`
    // (object set, possibly split over two lines) and not `NAME ::= CLASS`: class names are all upper case.
    const names = [...text.matchAll(/^[ \t]*([A-Z][A-Za-z0-9-]*)[ \t]*::=\s*(\S+)/gm)]
      .filter((m) => m[2] !== 'CLASS' && !/^[A-Z0-9-]+$/.test(m[1]!))
      .map((m) => m[1]!);
    out.set(module, names);
  }
  return out;
}

describe('asn1-gen', () => {
  it('the committed src/codec/gen equals what the generator produces now', () => {
    const files = generate(root);
    expect(files.size).toBeGreaterThan(20);
    for (const [rel, content] of files) {
      expect(readFileSync(join(root, rel), 'utf8'), rel).toBe(content);
    }
  });

  it('is deterministic', () => {
    const a = generate(root);
    const b = generate(root);
    expect([...a.entries()]).toEqual([...b.entries()]);
  });

  it('has a codec in the registry for every type assignment of every module', () => {
    const scanned = typeAssignmentsBySimpleScan();
    const expected = [...scanned.entries()].flatMap(([m, names]) => names.map((n) => `${m}.${n}`)).sort();
    expect(scanned.size).toBe(22); // 21 standard modules + asn1/scms/ScmsInterfaces.asn
    expect(expected.length).toBeGreaterThan(250);
    expect(listTypes()).toEqual(expected);
    for (const q of expected) {
      const c = typeRegistry.get(q);
      expect(c, q).toBeDefined();
      expect(typeof c!.encode).toBe('function');
    }
    // Bare names resolve when unique; hyphens may be written as underscores.
    expect(findType('Certificate')).toBe(typeRegistry.get('Ieee1609Dot2.Certificate'));
    expect(findType('ScmsPdu_RaAcaCertRequest')).toBe(typeRegistry.get('Ieee1609Dot2Dot1Protocol.ScmsPdu-RaAcaCertRequest'));
  });
});

describe('asn1-gen errors', () => {
  const mod = (body: string) => `M {iso(1)} DEFINITIONS AUTOMATIC TAGS ::= BEGIN\r\n${body}\r\nEND\r\n`;
  const compile = (body: string) => generateFrom([{ rel: 'test/M.asn', text: mod(body) }]);

  it('compiles a small module with CRLF, nested comments and Windows-1252 quotes in comments', () => {
    const files = compile('-- \x93quoted\x94 comment\r\n/* outer /* inner */ still comment */\r\nT ::= SEQUENCE { a INTEGER (0..7), b BOOLEAN OPTIONAL }');
    const code = files.get('src/codec/gen/M.ts')!;
    expect(code).toContain('export type T = {');
    expect(code).toContain("{ name: 'a', schema: { kind: 'integer', min: 0n, max: 7n } }");
  });

  it('maps constraints by OER visibility (X.696 8.2) and numbers enumerations by X.680 20', () => {
    const code = compile(
      [
        'Ext ::= INTEGER (0..255, ...)',
        'Named ::= INTEGER { lo (-5), hi (5) } (lo..hi)',
        'Sub ::= Named (hi)',
        'Sz ::= OCTET STRING (SIZE (1..4, ...))',
        'E ::= ENUMERATED { a (3), b, c, ..., d, e (9) }',
        'G ::= SEQUENCE { x BOOLEAN, ..., [[ y INTEGER (0..1), z NULL OPTIONAL ]], w BIT STRING { p (0), q (2) } DEFAULT { q } }',
        'C ::= CHOICE { one NULL, two BOOLEAN, ..., three INTEGER (0..1) }',
        'R ::= C (WITH COMPONENTS { two })',
      ].join('\r\n'),
    ).get('src/codec/gen/M.ts')!;
    expect(code).toContain("export const Ext$schema: $Schema = { kind: 'integer', name: 'Ext' };");
    expect(code).toContain("{ kind: 'integer', name: 'Named', min: -5n, max: 5n }");
    expect(code).toContain("{ kind: 'integer', name: 'Sub', min: 5n, max: 5n }");
    expect(code).toContain("{ kind: 'octetString', name: 'Sz', minSize: 1, maxSize: 4, sizeExtensible: true }");
    expect(code).toMatch(/values: \[\{ name: 'a', value: 3 \}, \{ name: 'b', value: 0 \}, \{ name: 'c', value: 1 \}\]/);
    expect(code).toMatch(/extensionValues: \[\{ name: 'd', value: 4 \}, \{ name: 'e', value: 9 \}\]/);
    expect(code).toContain('group: [');
    expect(code).toContain("default: '001'");
    expect(code).toContain("{ name: 'three', schema: { kind: 'integer', min: 0n, max: 1n }, tag: 2, tagClass: 'context' }");
    // R keeps C's tags; the other alternatives are excluded for validation only.
    expect(code).toMatch(/name: 'R',[\s\S]*?\{ name: 'one', schema: \{ kind: 'null' \}, tag: 0, tagClass: 'context', permitted: false \}/);
    expect(code).toMatch(/export type R = \{ two: boolean \};/);
  });

  it('declares $unknownExtensions on extensible SEQUENCE types only', () => {
    const code = compile('E ::= SEQUENCE { a BOOLEAN, ... }\r\nN ::= SEQUENCE { a BOOLEAN }\r\nO ::= SEQUENCE { ... }').get('src/codec/gen/M.ts')!;
    expect(code).toMatch(/export type E = \{\n  a: boolean;\n  \$unknownExtensions\?: \$UnknownExtensions;\n\};/);
    expect(code).toMatch(/export type N = \{\n  a: boolean;\n\};/);
    expect(code).toMatch(/export type O = \{\n  \$unknownExtensions\?: \$UnknownExtensions;\n\};/);
    expect(code).toContain('UnknownExtensions as $UnknownExtensions');
  });

  it.each([
    ['an undefined reference', 'T ::= SEQUENCE {\r\n a Missing }', /test\/M\.asn:3: Missing is not defined/],
    ['SET', 'T ::= SET { a INTEGER }', /test\/M\.asn:2: SET and SET OF are not supported/],
    ['a syntax error', 'T ::= SEQUENCE { a INTEGER,, }', /test\/M\.asn:2: expected component name/],
    ['a missing parameter', 'P {X} ::= SEQUENCE { a X }\r\nT ::= P', /test\/M\.asn:2: P is parameterized/],
    ['a WITH COMPONENTS naming no component', 'S ::= SEQUENCE { a INTEGER OPTIONAL }\r\nT ::= S (WITH COMPONENTS {..., b PRESENT})', /test\/M\.asn:3: WITH COMPONENTS: S has no component b/],
    ['an open type without a component relation', 'C ::= CLASS { &id INTEGER, &T } WITH SYNTAX { &T IDENTIFIED BY &id }\r\nT ::= SEQUENCE { a C.&T }', /test\/M\.asn:3: open type C.&T needs a table constraint/],
    [
      'a selector that is not a component of the innermost enclosing SEQUENCE (X.682 10)',
      'C ::= CLASS { &id INTEGER, &T } WITH SYNTAX { &T IDENTIFIED BY &id }\r\nS C ::= { { NULL IDENTIFIED BY 1 } }\r\nT ::= SEQUENCE { id C.&id({S}), inner SEQUENCE { x C.&T({S}{@.id}) } }',
      /test\/M\.asn:4: table constraint \{@\.id\}: the innermost enclosing SEQUENCE has no component id/,
    ],
  ])('rejects %s with file:line', (_what, body, message) => {
    expect(() => compile(body)).toThrow(message);
  });
});
