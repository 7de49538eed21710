import { ScmsCommand } from '../../cli/base.js';
import { runServe, serveFlags } from './all.js';

export default class ServeAca extends ScmsCommand {
  static override description =
    'Run the ACA (internal POST /internal/aca/cert-requests for the RA); fetches the LAs\' PLV keys from the peers given ' +
    'with --peer la1=URL --peer la2=URL. The component token (--component-token) guards its route and is presented to ' +
    'the LAs. Stops gracefully on SIGINT/SIGTERM.';
  static override enableJsonFlag = true;
  static override examples = [
    'SCMS_KEYSTORE_PASSPHRASE=... SCMS_COMPONENT_TOKEN=... <%= config.bin %> serve aca --trust ./scms --data ./data --port 8082 --peer la1=http://127.0.0.1:8083 --peer la2=http://127.0.0.1:8084',
    '<%= config.bin %> serve aca --trust ./scms --db postgres://scms@db/scms --peer la1=http://la1:8080 --peer la2=http://la2:8080 --port 0 --json',
  ];
  static override flags = serveFlags;

  failWith(message: string, exit: number): never {
    return this.fail(message, exit);
  }

  async run() {
    const { flags } = await this.parse(ServeAca);
    return runServe(this, 'aca', flags);
  }
}
