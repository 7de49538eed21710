import { Flags } from '@oclif/core';
import { ScmsCommand } from '../../cli/base.js';
import { runServe, serveFlags } from './all.js';

export default class ServeLa extends ScmsCommand {
  static override description =
    'Run one linkage authority, LA1 or LA2 (--name): internal POST /internal/la/pre-linkage-values for the RA and ' +
    'POST /internal/la/aca-key for the ACA, both authenticated by the sender\'s signature and the component token ' +
    '(--component-token) when one is set. Its linkage chains live in its own database. Stops gracefully on SIGINT/SIGTERM.';
  static override enableJsonFlag = true;
  static override examples = [
    'SCMS_KEYSTORE_PASSPHRASE=... SCMS_COMPONENT_TOKEN=... <%= config.bin %> serve la --name la1 --trust ./scms --data ./data --port 8083',
    '<%= config.bin %> serve la --name la2 --trust ./scms --db postgres://scms@db/scms --port 0 --json',
  ];
  static override flags = {
    ...serveFlags,
    name: Flags.string({ description: 'which LA to run', options: ['la1', 'la2'], required: true }),
  };

  failWith(message: string, exit: number): never {
    return this.fail(message, exit);
  }

  async run() {
    const { flags } = await this.parse(ServeLa);
    return runServe(this, flags.name as 'la1' | 'la2', flags);
  }
}
