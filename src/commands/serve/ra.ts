import { ScmsCommand } from '../../cli/base.js';
import { runServe, serveFlags } from './all.js';

export default class ServeRa extends ScmsCommand {
  static override description =
    'Run the RA: device registration (operator API /v3/devices, internal API for the ECA) and trust distribution (/v3/ctl, /v3/ccf-ctl, /v3/composite-crl-ctl, /v3/ca-certificate, /v3/ra-certificate, /v3/certificate-management-info-status, /v3/global-policy, /v3/local-policy); ' +
    'with --peer la1=URL --peer la2=URL --peer aca=URL also the authorization interface (POST/GET /v3/authorization-certificate) and its worker. Stops gracefully on SIGINT/SIGTERM.';
  static override enableJsonFlag = true;
  static override examples = [
    'SCMS_KEYSTORE_PASSPHRASE=... <%= config.bin %> serve ra --trust ./scms --data ./data --port 8080',
    '<%= config.bin %> serve ra --trust ./scms --data ./data --port 0 --json',
    'SCMS_COMPONENT_TOKEN=... <%= config.bin %> serve ra --trust ./scms --peer la1=http://la1:8080 --peer la2=http://la2:8080 --peer aca=http://aca:8080',
  ];
  static override flags = serveFlags;

  failWith(message: string, exit: number): never {
    return this.fail(message, exit);
  }

  async run() {
    const { flags } = await this.parse(ServeRa);
    return runServe(this, 'ra', flags);
  }
}
