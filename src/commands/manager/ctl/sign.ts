import { resolve } from 'node:path';
import { Args, Command, Flags } from '@oclif/core';
import { password } from '@inquirer/prompts';
import { readEncodedInput } from '../../../cli/input.js';
import { Certificate } from '../../../codec/gen/Ieee1609Dot2.js';
import { signBallotAs, type SignResult } from '../../../engine/manager/ctl-dir.js';
import { KeyStoreError, PASSPHRASE_ENV, PIN_ENV } from '../../../hsm/index.js';
import { systemClock } from '../../../security/time.js';

/** A secret from the environment, else a prompt on a terminal (never a flag: flags end up in shell history). */
function secret(env: string, what: string): () => Promise<string> {
  return async () => {
    const v = process.env[env];
    if (v) return v;
    if (!process.stdin.isTTY) throw new KeyStoreError('NO_SECRET', `no ${what}: set ${env}`);
    return password({ message: `${what}:`, mask: '*' });
  };
}

/** `scms manager ctl sign`: one elector's CtlSignatureSpdu over a ballot, written beside it. */
export default class CtlSign extends Command {
  static override description =
    'Sign a CTL ballot as one elector (1609.2.1 CtlSignatureSpdu over ToBeSignedCtlSignature). The signature is ' +
    'written beside the ballot as signature-<elector>.oer. Keys come from the keystore: passphrase from ' +
    'SCMS_KEYSTORE_PASSPHRASE, PKCS#11 PIN from SCMS_PKCS11_PIN (prompted on a terminal when unset).';
  static override enableJsonFlag = true;
  static override examples = [
    '<%= config.bin %> manager ctl sign --dir ./scms --elector elector-1 ./scms/trust/ctl/ballot-2',
    'SCMS_PKCS11_PIN=... <%= config.bin %> manager ctl sign --elector "pkcs11:token=elector2;object=elector-2" ./ballot-2',
  ];
  static override args = { ballot: Args.string({ description: 'ballot directory (or its ballot.json)', required: true }) };
  static override flags = {
    elector: Flags.string({ description: 'elector: a name in the trust directory (needs --dir) or a key URI (file:... / pkcs11:...)', required: true }),
    dir: Flags.string({ description: 'trust directory: elector names, key base directory, and the current CTL (to show who counts)' }),
    cert: Flags.string({ description: 'elector certificate file (default: found by the key among the ballot / directory certificates)' }),
  };

  async run(): Promise<SignResult> {
    const { args, flags } = await this.parse(CtlSign);
    const certificate = flags.cert ? Certificate.decode(readEncodedInput(flags.cert).bytes) : undefined;
    let r: SignResult;
    try {
      r = await signBallotAs(resolve(args.ballot), flags.elector, {
        clock: systemClock,
        dir: flags.dir && resolve(flags.dir),
        certificate,
        keyStore: { passphrase: secret(PASSPHRASE_ENV, 'keystore passphrase'), pin: secret(PIN_ENV, 'PKCS#11 PIN') },
      });
    } catch (e) {
      this.error((e as Error).message, { exit: 2 });
    }
    const s = r.summary;
    this.log(`${r.elector} signed CTL ${s.ctlSeriesId} sequence ${s.sequenceNumber}: ${r.signatureFile}`);
    for (const c of s.changes) this.log(`  ${c}`);
    return r;
  }
}
