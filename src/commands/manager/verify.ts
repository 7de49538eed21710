import { resolve } from 'node:path';
import { Args, Command } from '@oclif/core';
import chalk from 'chalk';
import { verifyTrustDir, type VerifyReport } from '../../engine/manager/verify.js';
import { systemClock } from '../../security/time.js';

/** `scms manager verify DIR`: checks every file of a trust directory; exit 1 on any problem. */
export default class ManagerVerify extends Command {
  static override description =
    'Verify a trust directory: certificate signatures and chains to a root, each root in a CTL signed by a quorum of ' +
    'approved electors, validity periods, regions, permissions within the issuer, PG signatures of the policy files, ' +
    'manifest hashes and the audit log. Prints every problem (file and reason); exits 1 if there is any.';
  static override enableJsonFlag = true;
  static override examples = ['<%= config.bin %> manager verify ./scms', '<%= config.bin %> manager verify ./scms --json'];
  static override args = { dir: Args.string({ description: 'trust directory', required: true }) };

  async run(): Promise<VerifyReport> {
    const { args, flags } = await this.parse(ManagerVerify);
    const report = verifyTrustDir(resolve(args.dir), { clock: systemClock });
    if (!flags.json) {
      for (const p of report.problems) this.log(`${chalk.red('✗')} ${p.file}: ${p.reason}`);
      const c = report.checked;
      const summary = `${c.certificates} certificates, ${c.ctls} CTL(s), ${c.policies} policies, ${c.files} files`;
      if (report.ok) this.log(`${chalk.green('✓')} ${report.dir}: ${summary}: all checks passed`);
      else this.log(`${report.problems.length} problem(s) in ${report.dir} (${summary})`);
    }
    if (!report.ok) process.exitCode = 1;
    return report;
  }
}
