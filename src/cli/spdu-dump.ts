// `--verbose` SPDU dumps of `scms ee simulate`: each SPDU sent or received decoded as `scms cert show` decodes it
// (type detection of cli/decode.ts, the tree of cli/tree.ts; JSON in the codec mapping), the octets in hex beside.
import { fromHex } from '../crypto/bytes.js';
import { detectAndDecode } from './decode.js';
import { renderTree } from './tree.js';

export interface SpduDump {
  /** "Module.Type" that decoded the octets (undefined when no type decodes them). */
  type?: string;
  /** The codec JSON mapping of the value. */
  value?: unknown;
  /** Human tree (cert show's). */
  tree?: string;
  hex: string;
}

/** Decodes SPDU octets (hex) for display; octets no type decodes come back as hex only. */
export function dumpSpdu(hex: string): SpduDump {
  try {
    const d = detectAndDecode(fromHex(hex));
    return { type: d.type, value: d.codec.toJson(d.value), tree: renderTree(d.type.split('.').pop()!, d.value, d.codec.schema), hex };
  } catch {
    return { hex };
  }
}
