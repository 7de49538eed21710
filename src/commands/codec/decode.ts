import { Args, Flags } from '@oclif/core';
import { ScmsCommand } from '../../cli/base.js';
import { decodeAs } from '../../cli/decode.js';
import { readEncodedInput } from '../../cli/input.js';
import { renderTree } from '../../cli/tree.js';

/** `scms codec decode`: COER (raw or hex) of any registered type -> the codec JSON mapping. */
export default class CodecDecode extends ScmsCommand {
  static override description =
    'Decode the COER encoding (raw or hex) of any IEEE 1609.2 / 1609.2.1 type and print it as JSON ' +
    '(the mapping in src/codec/JSON-MAPPING.md: octets as hex, big integers as decimal strings, CHOICE as ' +
    '{"alternative": value}). `scms codec encode` turns that JSON back into the same octets.';
  static override enableJsonFlag = true;
  static override examples = [
    { description: 'Certificate to JSON', command: '<%= config.bin %> <%= command.id %> --type Certificate cert.oer > cert.json' },
    { description: 'An SPDU given as hex', command: '<%= config.bin %> <%= command.id %> -t EeRaCertRequestSpdu request.hex' },
    { description: 'A readable tree instead of JSON', command: '<%= config.bin %> <%= command.id %> -t Ieee1609Dot2Data data.oer --tree' },
  ];
  static override args = {
    file: Args.string({ description: 'COER input, raw or hex ("-" for stdin)', required: true }),
  };
  static override flags = {
    type: Flags.string({ char: 't', description: 'type name ("Type" or "Module.Type"; see `scms codec types`)', required: true }),
    tree: Flags.boolean({ description: 'print a readable tree instead of JSON', exclusive: ['json'] }),
  };

  async run(): Promise<unknown> {
    const { args, flags } = await this.parse(CodecDecode);
    const d = this.readInput(() => decodeAs(flags.type, readEncodedInput(args.file).bytes), `the input (as ${flags.type})`);
    const json = d.codec.toJson(d.value);
    if (flags.tree) this.log(renderTree(d.type.split('.').pop()!, d.value, d.codec.schema));
    else if (!this.jsonEnabled()) this.log(JSON.stringify(json, null, 2));
    return json;
  }
}
