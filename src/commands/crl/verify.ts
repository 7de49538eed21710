import { Args, Flags } from '@oclif/core';
import chalk from 'chalk';
import { ScmsCommand } from '../../cli/base.js';
import { crlSummary, type CrlSummary } from '../../cli/crl-info.js';
import { EXIT_BAD_INPUT, EXIT_VERIFY_FAILED } from '../../cli/errors.js';
import { readEncodedInput } from '../../cli/input.js';
import { loadTrustDir } from '../../engine/manager/trust-dir.js';
import { verifyCrl } from '../../security/crl.js';
import { ManualClock, systemClock } from '../../security/time.js';
import { printCrl } from './show.js';

export interface CrlVerifyJson {
  valid: boolean;
  /** Which check failed (malformed, signature, signer, chain, permissions, craca, time). */
  refusal?: string;
  reason?: string;
  crl?: CrlSummary;
}

/** `scms crl verify`: a SecuredCrl against a trust directory (1609.2 7.4). */
export default class CrlVerify extends ScmsCommand {
  static override description =
    'Verify a SecuredCrl as a valid signed CRL (IEEE 1609.2 7.4) against the roots and certificates of a trust ' +
    'directory (`scms manager init`): signature, the signer chains to a root and holds CrlPsid with a CrlSsp ' +
    'permitting the crlSeries and naming the crlCraca, nextCrl after issueDate, not expired. ' +
    'Exit code 0: valid; 1: refused; 2: unreadable input.';
  static override enableJsonFlag = true;
  static override examples = [{ description: 'Verify a downloaded CRL', command: '<%= config.bin %> <%= command.id %> crl.oer --trust ./scms' }];
  static override args = {
    file: Args.string({ description: 'SecuredCrl (COER, raw or hex; "-" for stdin)', required: true }),
  };
  static override flags = {
    trust: Flags.string({ description: 'trust directory (roots and CA certificates)', required: true }),
    at: Flags.string({ description: 'verify at this time (ISO 8601) instead of now' }),
    'overdue-tolerance': Flags.integer({ description: 'accept a CRL this many seconds past nextCrl', default: 0, min: 0 }),
  };

  async run(): Promise<CrlVerifyJson> {
    const { args, flags } = await this.parse(CrlVerify);
    const { bytes, trust } = this.readInput(() => ({ bytes: readEncodedInput(args.file).bytes, trust: loadTrustDir(flags.trust) }), args.file, EXIT_BAD_INPUT);
    if (flags.at !== undefined && Number.isNaN(Date.parse(flags.at))) this.fail(`--at: not an ISO 8601 time: ${flags.at}`, EXIT_BAD_INPUT);
    const clock = flags.at !== undefined ? new ManualClock(flags.at) : systemClock;
    const v = verifyCrl(bytes, {
      trustAnchors: trust.roots.filter((r) => r.certificate).map((r) => r.certificate!),
      certificates: trust.certificates.filter((c) => c.certificate).map((c) => c.certificate!),
      clock,
      overdueToleranceSeconds: flags['overdue-tolerance'],
    });
    let crl: CrlSummary | undefined;
    try {
      crl = crlSummary(bytes).summary;
    } catch {
      crl = undefined;
    }
    const out: CrlVerifyJson = v.ok ? { valid: true, ...(crl ? { crl } : {}) } : { valid: false, refusal: v.refusal, reason: v.reason, ...(crl ? { crl } : {}) };
    if (this.jsonEnabled()) {
      if (!v.ok) {
        this.logJson(out);
        process.exitCode = EXIT_VERIFY_FAILED;
        return undefined as never;
      }
      return out;
    }
    if (crl) printCrl(this.log.bind(this), crl);
    if (!v.ok) this.fail(`CRL refused (${v.refusal}): ${v.reason}`, EXIT_VERIFY_FAILED);
    this.log(`${chalk.green('OK')} valid signed CRL (signer chains to a root of ${flags.trust}, CrlSsp permits series ${crl?.crlSeries})`);
    return out;
  }
}
