import { writeFileSync } from 'node:fs';
import { Args, Flags } from '@oclif/core';
import { ScmsCommand } from '../../cli/base.js';
import { lookupType } from '../../cli/decode.js';
import { describeError } from '../../cli/errors.js';
import { bytesToHex, readJsonInput } from '../../cli/input.js';

/** `scms codec encode`: the codec JSON of any registered type -> canonical COER. */
export default class CodecEncode extends ScmsCommand {
  static override description =
    'Encode the JSON of any IEEE 1609.2 / 1609.2.1 type (as printed by `scms codec decode`) to canonical COER. ' +
    'Decoding and encoding again gives the input octets back. With --out the octets go to a file (raw, or hex ' +
    'with --hex); without it they are printed as hex.';
  static override enableJsonFlag = true;
  static override examples = [
    { description: 'Round trip of a certificate', command: '<%= config.bin %> codec decode -t Certificate cert.oer > cert.json\n<%= config.bin %> <%= command.id %> -t Certificate cert.json --out cert2.oer' },
    { description: 'Print hex', command: '<%= config.bin %> <%= command.id %> --type Ieee1609Dot2Data data.json' },
    { description: 'Write a hex file', command: '<%= config.bin %> <%= command.id %> -t EeRaCertRequestSpdu req.json --out req.hex --hex' },
  ];
  static override args = {
    file: Args.string({ description: 'JSON input ("-" for stdin)', required: true }),
  };
  static override flags = {
    type: Flags.string({ char: 't', description: 'type name ("Type" or "Module.Type"; see `scms codec types`)', required: true }),
    out: Flags.string({ char: 'o', description: 'write the encoding to this file (raw COER unless --hex)' }),
    hex: Flags.boolean({ description: 'with --out: write hex text instead of raw octets' }),
  };

  async run(): Promise<{ type: string; bytes: number; hex: string; out?: string }> {
    const { args, flags } = await this.parse(CodecEncode);
    let type: string;
    let bytes: Uint8Array;
    try {
      const t = lookupType(flags.type);
      type = t.name;
      bytes = t.codec.encode(t.codec.fromJson(readJsonInput(args.file)));
    } catch (err) {
      const { message, exit } = describeError(err, `the JSON (as ${flags.type})`);
      this.fail(message.replace('does not decode', 'does not encode'), exit);
    }
    const hex = bytesToHex(bytes);
    if (flags.out) {
      writeFileSync(flags.out, flags.hex ? `${hex}\n` : bytes);
      if (!this.jsonEnabled()) this.log(`${type}: ${bytes.length} bytes written to ${flags.out}${flags.hex ? ' (hex)' : ''}`);
    } else if (!this.jsonEnabled()) {
      this.log(hex);
    }
    return { type, bytes: bytes.length, hex, ...(flags.out ? { out: flags.out } : {}) };
  }
}
