import { Flags } from '@oclif/core';
import chalk from 'chalk';
import { ScmsCommand } from '../../cli/base.js';
import { KeyStoreError } from '../../hsm/keystore.js';
import { simulate, SimulationError, SimulationInputError, STEPS, type SimEvent, type Step } from '../../engine/ee/simulate.js';
import { EeStateDir, EeStateError } from '../../engine/ee/state.js';
import { systemClock } from '../../security/time.js';

/** Exit codes: 1 a step failed (SCMS refusal or a local check), 2 bad input / state. */
const EXIT_FAILED = 1;
const EXIT_INPUT = 2;

export default class EeSimulate extends ScmsCommand {
  static override description =
    'Simulate one end entity against an SCMS over its public HTTP interface: bootstrap (download and verify CTL, CCF, ' +
    'policy files), register (with the operator token) or use a pre-registered canonical key, enroll, request ' +
    'certificates, wait for the download time, download, decrypt, reconstruct keys, verify every certificate and sign ' +
    'and verify a BSM-style message (PSID 0x20) with each. Keys live in the encrypted soft keystore of the state ' +
    'directory (passphrase SCMS_KEYSTORE_PASSPHRASE); a second run with the same --state continues where it stopped.';
  static override enableJsonFlag = true;
  static override examples = [
    'SCMS_KEYSTORE_PASSPHRASE=... SCMS_OPERATOR_TOKEN=... <%= config.bin %> ee simulate --ra http://127.0.0.1:8080 --trust-root 0123456789abcdef --type obu --cert pseudonym --form implicit --butterfly unified --state ./device1',
    'SCMS_KEYSTORE_PASSPHRASE=... <%= config.bin %> ee simulate --state ./device1',
    'SCMS_KEYSTORE_PASSPHRASE=... <%= config.bin %> ee simulate --state ./device1 --json --verbose',
  ];
  static override flags = {
    ra: Flags.string({ description: 'RA base URL (trust files, registration, authorization certificates); required on the first run' }),
    eca: Flags.string({ description: 'ECA base URL [default: the RA URL]' }),
    type: Flags.string({ description: 'device type', options: ['obu', 'rsu'] }),
    cert: Flags.string({ description: 'certificates to request', options: ['pseudonym', 'identification'] }),
    form: Flags.string({ description: 'certificate form', options: ['implicit', 'explicit'] }),
    butterfly: Flags.string({ description: 'butterfly key expansion', options: ['original', 'unified', 'compact-unified', 'none'] }),
    encrypted: Flags.boolean({ description: 'ask for encrypted certificate responses where the choice exists (non-butterfly)', default: false }),
    state: Flags.string({ description: 'device state directory (keys, certificates, trust files)', required: true }),
    'trust-root': Flags.string({ description: 'HashedId8 of a root certificate the device trusts (repeatable; first run)', multiple: true }),
    'operator-token': Flags.string({ description: 'operator API token to register the device [env SCMS_OPERATOR_TOKEN]' }),
    'max-wait': Flags.integer({ description: 'longest wait for the certificate batch, seconds', default: 300, min: 0 }),
    'stop-after': Flags.string({ description: 'stop after this step', options: [...STEPS] }),
    verbose: Flags.boolean({ char: 'v', description: 'dump every SPDU sent and received (hex)', default: false }),
    successor: Flags.boolean({ description: 'after the lifecycle, request a successor enrollment certificate, download and verify it, and switch the state to it', default: false }),
  };

  async run() {
    const { flags } = await this.parse(EeSimulate);
    const json = this.jsonEnabled();
    const sd = new EeStateDir(flags.state);
    const token = flags['operator-token'] ?? process.env.SCMS_OPERATOR_TOKEN;
    const events: SimEvent[] = [];
    const onEvent = (e: SimEvent) => {
      if (json) {
        if (flags.verbose) events.push(e);
        return;
      }
      const tag = chalk.bold(`[${e.step}]`);
      const mark = e.kind === 'done' ? chalk.green('✔') : e.kind === 'sent' ? '→' : e.kind === 'received' ? '←' : e.kind === 'wait' ? chalk.yellow('…') : e.kind === 'skip' ? chalk.dim('·') : ' ';
      this.log(`${tag} ${mark} ${e.message}`);
      if (e.spdu) this.log(chalk.dim(`      ${e.spdu.replace(/(.{96})/g, '$1\n      ')}`));
    };
    try {
      const report = await simulate({
        state: sd,
        ...(flags.ra ? { raUrl: flags.ra } : {}),
        ...(flags.eca ? { ecaUrl: flags.eca } : {}),
        ...(flags.type ? { deviceType: flags.type as 'obu' | 'rsu' } : {}),
        ...(flags.cert ? { cert: flags.cert as 'pseudonym' | 'identification' } : {}),
        ...(flags.form ? { form: flags.form as 'implicit' | 'explicit' } : {}),
        ...(flags.butterfly ? { butterfly: flags.butterfly as 'original' | 'unified' | 'compact-unified' | 'none' } : {}),
        encrypted: flags.encrypted,
        ...(flags['trust-root']?.length ? { trustedRootHashes: flags['trust-root'] } : {}),
        ...(token ? { operatorToken: token } : {}),
        clock: systemClock,
        maxWaitSeconds: flags['max-wait'],
        ...(flags['stop-after'] ? { stopAfter: flags['stop-after'] as Step } : {}),
        verbose: flags.verbose,
        successor: flags.successor,
        onEvent,
      });
      if (!json) {
        if (report.certificates.length) {
          this.log('');
          this.log(chalk.bold(`${report.certificates.length} certificates:`));
          for (const c of report.certificates) {
            this.log(`  ${c.hashedId8}  i=${c.i} j=${c.j}  ${c.certificateType}  ${c.validFrom} .. ${c.validUntil ?? '?'}  chain ${c.verified ? 'ok' : 'FAILED'}  message ${c.message?.verified ? 'ok' : 'FAILED'}`);
          }
        }
        if (report.pending) this.log(chalk.yellow(`pending: run again after ${report.pending}`));
        else if (report.complete) this.log(chalk.green(`device complete (state in ${report.stateDir})`));
        else this.log(`stopped (state in ${report.stateDir})`);
      }
      return flags.verbose && json ? { ...report, events } : report;
    } catch (e) {
      if (e instanceof SimulationError) {
        const lines = [e.message];
        if (e.check) lines.push(`  failed check: ${e.check}`);
        this.fail(lines.join('\n'), EXIT_FAILED, { step: e.step, ...(e.http ? { http: e.http } : {}), ...(e.check ? { check: e.check } : {}) });
      }
      if (e instanceof EeStateError || e instanceof SimulationInputError) this.fail(e.message, EXIT_INPUT);
      if (e instanceof KeyStoreError) this.fail(`keystore: ${e.message}`, EXIT_INPUT);
      throw e;
    } finally {
      await sd.close();
    }
  }
}
