import { Command, Flags } from '@oclif/core';
import { listTypes } from '../../codec/gen/index.js';

/** `scms codec types`: the type names `scms codec` and `scms cert show --type` accept. */
export default class CodecTypes extends Command {
  static override description =
    'List the IEEE 1609.2 / 1609.2.1 types with a codec, as "Module.Type" (the bare "Type" is accepted too when ' +
    'only one module defines it; "_" may replace "-").';
  static override enableJsonFlag = true;
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --filter Spdu',
    '<%= config.bin %> <%= command.id %> --json',
  ];
  static override flags = {
    filter: Flags.string({ char: 'f', description: 'only names containing this text (case-insensitive)' }),
  };

  async run(): Promise<string[]> {
    const { flags } = await this.parse(CodecTypes);
    const f = flags.filter?.toLowerCase();
    const names = listTypes().filter((n) => !f || n.toLowerCase().includes(f));
    if (!this.jsonEnabled()) for (const n of names) this.log(n);
    return names;
  }
}
