import { readFileSync } from 'node:fs';
import { Flags } from '@oclif/core';
import { ScmsCommand } from '../../cli/base.js';
import { bytesToBigInt, fromHex } from '../../crypto/bytes.js';
import { mulBase } from '../../crypto/curves.js';
import { ProvisionError } from '../../engine/provision/batch.js';
import { unpackBundle } from '../../engine/provision/unpack.js';
import { EeStateDir } from '../../engine/ee/state.js';
import { systemClock } from '../../security/time.js';

export default class ProvisionUnpack extends ScmsCommand {
  static override description =
    'Turn a provisioned device bundle (generated keys) into an `scms ee simulate --state DIR` directory, so the simulator ' +
    'can bring the device online. The transport private key (hex P-256 scalar) comes from SCMS_TRANSPORT_PRIVATE_KEY or ' +
    '--transport-private-key FILE; the device keys go into the state\'s encrypted keystore (SCMS_KEYSTORE_PASSPHRASE).';
  static override enableJsonFlag = true;
  static override examples = [
    'SCMS_TRANSPORT_PRIVATE_KEY=... SCMS_KEYSTORE_PASSPHRASE=... <%= config.bin %> provision unpack --bundle ./bundles/<deviceId> --state ./ee1 --ra http://127.0.0.1:8080 --eca http://127.0.0.1:8080',
  ];
  static override flags = {
    bundle: Flags.string({ description: 'bundle directory (OUT/<deviceId>) or archive (OUT/<deviceId>.zip)', required: true }),
    state: Flags.string({ description: 'EE state directory to create', required: true }),
    ra: Flags.string({ description: 'RA base URL the simulator will use', required: true }),
    eca: Flags.string({ description: 'ECA base URL the simulator will use [default: --ra]' }),
    'transport-private-key': Flags.string({ description: 'file holding the transport private key (hex scalar) [env SCMS_TRANSPORT_PRIVATE_KEY]' }),
  };

  async run() {
    const { flags } = await this.parse(ProvisionUnpack);
    const hex = flags['transport-private-key'] ? readFileSync(flags['transport-private-key'], 'utf8').trim() : process.env.SCMS_TRANSPORT_PRIVATE_KEY?.trim();
    if (!hex) this.fail('the transport private key: --transport-private-key FILE or SCMS_TRANSPORT_PRIVATE_KEY', 2);
    if (!process.env.SCMS_KEYSTORE_PASSPHRASE) this.fail('SCMS_KEYSTORE_PASSPHRASE: the passphrase of the state keystore', 2);
    const d = bytesToBigInt(fromHex(hex.replace(/^0x/i, '')));
    const state = new EeStateDir(flags.state);
    try {
      const st = await unpackBundle({
        bundleDir: flags.bundle,
        transport: { privateKey: d, publicKey: { curve: 'nistP256', publicKey: mulBase('nistP256', d) } },
        state,
        raUrl: flags.ra,
        ecaUrl: flags.eca ?? flags.ra,
        clock: systemClock,
      });
      const out = { state: flags.state, deviceId: st.registration!.deviceId, canonicalId: st.canonical!.canonicalId, certificates: st.certificates.length };
      if (!flags.json) this.log(`device ${out.deviceId} (canonical id ${out.canonicalId}): state in ${out.state}, enrollment + ${out.certificates} ${st.config.cert} certificates`);
      return out;
    } catch (e) {
      if (e instanceof ProvisionError) this.fail(e.message, 2);
      throw e;
    } finally {
      await state.close();
    }
  }
}
