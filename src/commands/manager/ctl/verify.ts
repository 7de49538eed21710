import { resolve } from 'node:path';
import { Args, Command, Flags } from '@oclif/core';
import chalk from 'chalk';
import { readEncodedInput } from '../../../cli/input.js';
import { toHex } from '../../../crypto/bytes.js';
import { verifyCtlSeries } from '../../../engine/manager/ctl.js';
import { certificateRows } from '../../../engine/manager/ctl-dir.js';
import { loadTrustDir } from '../../../engine/manager/trust-dir.js';
import { systemClock } from '../../../security/time.js';

export interface CtlVerifyResult {
  ok: boolean;
  files: string[];
  errors: string[];
  ctls: Array<{ sequenceNumber: number; effectiveDate: string; quorum: number; electors: string[]; roots: string[] }>;
  current?: { ctlSeriesId: string; sequenceNumber: number; quorum: number; electors: ReturnType<typeof certificateRows>; roots: ReturnType<typeof certificateRows> };
}

/** `scms manager ctl verify`: a whole CTL series, from its first CTL. */
export default class CtlVerify extends Command {
  static override description =
    'Verify a CTL series from its first CTL: each CTL signed by a quorum of the electors approved by the one before ' +
    '(the first by its own electors), consecutive sequence numbers, non-decreasing effectiveDate, certificates for ' +
    'every approved hash. Exits 1 on any error.';
  static override enableJsonFlag = true;
  static override strict = false;
  static override examples = [
    '<%= config.bin %> manager ctl verify --dir ./scms',
    '<%= config.bin %> manager ctl verify ctl_0102030405060708_1.oer ctl_0102030405060708_2.oer',
  ];
  static override args = { files: Args.string({ description: 'CTL files in series order (instead of --dir)' }) };
  static override flags = { dir: Flags.string({ description: 'trust directory: verify its CTL series' }) };

  async run(): Promise<CtlVerifyResult> {
    const { argv, flags } = await this.parse(CtlVerify);
    const paths = argv as string[];
    let files: string[];
    let bytes: Uint8Array[];
    if (flags.dir) {
      const td = loadTrustDir(resolve(flags.dir));
      files = td.ctls.map((c) => `trust/${c.path}`);
      bytes = td.ctls.map((c) => c.bytes);
      for (const p of td.problems.filter((p) => p.file.startsWith('trust/ctl'))) this.warn(`${p.file}: ${p.reason}`);
    } else if (paths.length) {
      files = paths;
      bytes = paths.map((p) => readEncodedInput(p).bytes);
    } else {
      this.error('give --dir DIR or CTL files', { exit: 2 });
    }
    const r = verifyCtlSeries(bytes, { clock: systemClock });
    const result: CtlVerifyResult = {
      ok: r.ok,
      files,
      errors: r.errors,
      ctls: r.states.map((s) => ({
        sequenceNumber: s.sequenceNumber,
        effectiveDate: s.effectiveDate.toISOString(),
        quorum: s.quorum,
        electors: certificateRows(s.electors, 'elector').map((e) => e.label),
        roots: certificateRows(s.roots, 'root').map((e) => e.label),
      })),
    };
    if (r.state) {
      result.current = {
        ctlSeriesId: toHex(r.state.ctlSeriesId),
        sequenceNumber: r.state.sequenceNumber,
        quorum: r.state.quorum,
        electors: certificateRows(r.state.electors, 'elector'),
        roots: certificateRows(r.state.roots, 'root'),
      };
    }
    for (const [i, c] of result.ctls.entries()) {
      this.log(`${chalk.green('✓')} ${files[i]}: sequence ${c.sequenceNumber}, quorum ${c.quorum}, electors ${c.electors.join(', ')}; roots ${c.roots.join(', ')}`);
    }
    for (const e of r.errors) this.log(`${chalk.red('✗')} ${e}`);
    if (!r.ok) process.exitCode = 1;
    return result;
  }
}
