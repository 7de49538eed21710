import { dumpSpdu, type SpduDump } from '../../cli/spdu-dump.js';
import { DEFAULT_RENEW_ENROLLMENT_BEFORE_SECONDS } from '../../engine/ee/renewal.js';
import { writeFileSync } from 'node:fs';
import { Flags } from '@oclif/core';
import chalk from 'chalk';
import { ScmsCommand } from '../../cli/base.js';
import { KeyStoreError } from '../../hsm/keystore.js';
import { simulate, SimulationError, SimulationInputError, STEPS, type SimEvent, type Step } from '../../engine/ee/simulate.js';
import { EeStateDir, EeStateError } from '../../engine/ee/state.js';
import { runFleet } from '../../engine/ee/fleet.js';
import { fleetProgressBar, fleetSummaryLines } from '../../engine/ee/fleet-cli.js';
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
    state: Flags.string({ description: 'device state directory (keys, certificates, trust files); required without --count (with it: base directory of per-device state, default in memory)' }),
    'trust-root': Flags.string({ description: 'HashedId8 of a root certificate the device trusts (repeatable; first run)', multiple: true }),
    'operator-token': Flags.string({ description: 'operator API token to register the device [env SCMS_OPERATOR_TOKEN]' }),
    'max-wait': Flags.integer({ description: 'longest wait for the certificate batch, seconds', default: 300, min: 0 }),
    'stop-after': Flags.string({ description: 'stop after this step', options: [...STEPS] }),
    verbose: Flags.boolean({ char: 'v', description: 'dump every SPDU sent and received, decoded as `scms cert show` decodes it (and in hex)', default: false }),
    successor: Flags.boolean({ description: 'after the lifecycle, request a successor enrollment certificate, download and verify it, and switch the state to it', default: false }),
    'look-ahead': Flags.integer({ description: 'a continued run asks for the next batch once the held certificates end within this many seconds [default: the policy time-overlap]', min: 0 }),
    'renew-enrollment-before': Flags.integer({ description: 'a continued run enrolls a successor once the enrollment certificate expires within this many seconds', default: DEFAULT_RENEW_ENROLLMENT_BEFORE_SECONDS, min: 0 }),
    count: Flags.integer({ description: 'fleet mode: simulate this many devices (each registered with the operator token)', min: 1 }),
    concurrency: Flags.integer({ description: 'fleet mode: devices in flight at once', default: 8, min: 1 }),
    report: Flags.string({ description: 'fleet mode: write the summary as JSON to this file' }),
  };

  async run() {
    const { flags } = await this.parse(EeSimulate);
    const json = this.jsonEnabled();
    if (flags.count !== undefined) return this.fleet({ ...flags, count: flags.count }, json);
    if (!flags.state) this.fail('--state is required (or --count N for a fleet)', EXIT_INPUT);
    const sd = new EeStateDir(flags.state);
    const token = flags['operator-token'] ?? process.env.SCMS_OPERATOR_TOKEN;
    const events: Array<SimEvent & { decoded?: SpduDump }> = [];
    const onEvent = (e: SimEvent) => {
      if (json) {
        if (flags.verbose) events.push(e.spdu ? { ...e, decoded: dumpSpdu(e.spdu) } : e);
        return;
      }
      const tag = chalk.bold(`[${e.step}]`);
      const mark = e.kind === 'done' ? chalk.green('✔') : e.kind === 'sent' ? '→' : e.kind === 'received' ? '←' : e.kind === 'wait' ? chalk.yellow('…') : e.kind === 'skip' ? chalk.dim('·') : ' ';
      this.log(`${tag} ${mark} ${e.message}`);
      if (e.spdu) {
        const d = dumpSpdu(e.spdu);
        if (d.tree) this.log(chalk.dim(`      ${d.type}\n${d.tree.replace(/^/gm, '      ')}`));
        this.log(chalk.dim(`      ${e.spdu.replace(/(.{96})/g, '$1\n      ')}`));
      }
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
        ...(flags['look-ahead'] !== undefined ? { lookAheadSeconds: flags['look-ahead'] } : {}),
        renewEnrollmentBeforeSeconds: flags['renew-enrollment-before'],
        onEvent,
      });
      if (!json) {
        if (report.certificates.length) {
          this.log('');
          this.log(chalk.bold(`${report.certificates.length} certificates:`));
          for (const c of report.certificates) {
            this.log(`  ${c.hashedId8}  i=${c.i} j=${c.j}  ${c.certificateType}  ${c.validFrom} .. ${c.validUntil ?? '?'}  chain ${c.verified ? 'ok' : 'FAILED'}  ${c.message ? `message ${c.message.verified ? 'ok' : 'FAILED'}` : 'held (not yet valid)'}`);
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

  /** Fleet mode: N devices, at most C in flight; progress bar on stderr, summary (or JSON) and --report. */
  private async fleet(flags: FleetFlags, json: boolean) {
    if (!flags.ra) this.fail('fleet mode needs --ra', EXIT_INPUT);
    if (!flags['trust-root']?.length) this.fail('fleet mode needs --trust-root HASHEDID8', EXIT_INPUT);
    for (const f of ['stop-after', 'verbose', 'successor'] as const) if (flags[f]) this.fail(`--${f} is for a single device (not with --count)`, EXIT_INPUT);
    const token = flags['operator-token'] ?? process.env.SCMS_OPERATOR_TOKEN;
    const bar = json ? undefined : fleetProgressBar(flags.count);
    let report;
    try {
      report = await runFleet({
        raUrl: flags.ra,
        ...(flags.eca ? { ecaUrl: flags.eca } : {}),
        trustedRootHashes: flags['trust-root'],
        count: flags.count,
        concurrency: flags.concurrency,
        ...(flags.type ? { deviceType: flags.type as 'obu' | 'rsu' } : {}),
        ...(flags.cert ? { cert: flags.cert as 'pseudonym' | 'identification' } : {}),
        ...(flags.form ? { form: flags.form as 'implicit' | 'explicit' } : {}),
        ...(flags.butterfly ? { butterfly: flags.butterfly as 'original' | 'unified' | 'compact-unified' | 'none' } : {}),
        encrypted: flags.encrypted,
        ...(token ? { operatorToken: token } : {}),
        maxWaitSeconds: flags['max-wait'],
        ...(flags.state ? { stateDir: flags.state } : {}),
        clock: systemClock,
        ...(bar ? { onProgress: bar.update } : {}),
      });
    } catch (e) {
      if (e instanceof SimulationError) this.fail(e.message, EXIT_FAILED, { step: e.step, ...(e.check ? { check: e.check } : {}) });
      if (e instanceof SimulationInputError || e instanceof RangeError) this.fail(e.message, EXIT_INPUT);
      throw e;
    } finally {
      bar?.stop();
    }
    if (flags.report) writeFileSync(flags.report, `${JSON.stringify(report, null, 2)}\n`);
    if (!json) for (const l of fleetSummaryLines(report)) this.log(l);
    // Some device failed: exit 1, after the summary.
    if (report.devices.completed < report.devices.requested) process.exitCode = EXIT_FAILED;
    return report;
  }
}

interface FleetFlags {
  ra?: string | undefined;
  eca?: string | undefined;
  type?: string | undefined;
  cert?: string | undefined;
  form?: string | undefined;
  butterfly?: string | undefined;
  encrypted: boolean;
  state?: string | undefined;
  'trust-root'?: string[] | undefined;
  'operator-token'?: string | undefined;
  'max-wait': number;
  'stop-after'?: string | undefined;
  verbose: boolean;
  successor?: boolean;
  count: number;
  concurrency: number;
  report?: string | undefined;
}
