import { ScmsCommand } from '../../cli/base.js';
import { runServe, serveFlags } from './all.js';

export default class ServeEca extends ScmsCommand {
  static override description =
    'Run the ECA (POST /v3/enrollment-certificate); asks the RA given with --peer ra=URL (internal API, ' +
    '--component-token) whether a device is registered. Stops gracefully on SIGINT/SIGTERM.';
  static override enableJsonFlag = true;
  static override examples = [
    'SCMS_KEYSTORE_PASSPHRASE=... SCMS_COMPONENT_TOKEN=... <%= config.bin %> serve eca --trust ./scms --data ./data --port 8081 --peer ra=http://127.0.0.1:8080',
    '<%= config.bin %> serve eca --trust ./scms --peer ra=http://127.0.0.1:8080 --port 0 --json',
  ];
  static override flags = serveFlags;

  failWith(message: string, exit: number): never {
    return this.fail(message, exit);
  }

  async run() {
    const { flags } = await this.parse(ServeEca);
    return runServe(this, 'eca', flags);
  }
}
