/** Compiles a Schema into a Node once per schema object (WeakMap cache); refs resolve lazily. */
import type { RefSchema, Schema } from '../schema.js';
import { compileChoice } from './choice.js';
import { compileInteger } from './integer.js';
import type { Node } from './node.js';
import { compileOpenType } from './open-type.js';
import { compileSequenceOf } from './sequence-of.js';
import { compileSequence } from './sequence.js';
import { booleanNode, compileEnumerated, nullNode } from './simple.js';
import { compileBitString, compileCharString, compileOctetString } from './strings.js';

const cache = new WeakMap<Schema, Node>();

export function compile(s: Schema): Node {
  let node = cache.get(s);
  if (node === undefined) {
    node = build(s);
    cache.set(s, node);
  }
  return node;
}

function build(s: Schema): Node {
  switch (s.kind) {
    case 'boolean':
      return booleanNode;
    case 'null':
      return nullNode;
    case 'integer':
      return compileInteger(s);
    case 'enumerated':
      return compileEnumerated(s);
    case 'octetString':
      return compileOctetString(s, s.containing === undefined ? undefined : compile(s.containing));
    case 'bitString':
      return compileBitString(s);
    case 'charString':
      return compileCharString(s);
    case 'sequence':
      return compileSequence(s, compile);
    case 'sequenceOf':
      return compileSequenceOf(s, compile(s.item));
    case 'choice':
      return compileChoice(s, compile);
    case 'open':
      return compileOpenType(s, compile);
    case 'ref':
      return refNode(s);
    default:
      throw new Error(`unknown schema kind ${(s as { kind: string }).kind}`);
  }
}

/**
 * A reference compiles its target on first use (recursive types such as Ieee1609Dot2Data). A named type
 * is its own textual scope (X.682 10: `@.id` names a component of a textually enclosing type), so the
 * enclosing SEQUENCE value is not passed on.
 */
function refNode(s: RefSchema): Node {
  let t: Node | undefined;
  const target = (): Node => (t ??= compile(s.target()));
  return {
    enc: (w, v) => target().enc(w, v, undefined),
    dec: (r) => target().dec(r, undefined),
    toJ: (v) => target().toJ(v, undefined),
    fromJ: (j) => target().fromJ(j, undefined),
  };
}
