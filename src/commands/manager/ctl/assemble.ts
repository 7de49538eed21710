import { resolve } from 'node:path';
import { Args, Command, Flags } from '@oclif/core';
import { CtlQuorumError } from '../../../engine/manager/ctl.js';
import { assembleBallot, type AssembleResult } from '../../../engine/manager/ctl-dir.js';
import { systemClock } from '../../../security/time.js';

/** `scms manager ctl assemble`: the next MultiSignedCtlSpdu once a quorum of electors has signed the ballot. */
export default class CtlAssemble extends Command {
  static override description =
    'Assemble the next CTL (MultiSignedCtlSpdu) from a ballot and the elector signatures beside it. Only valid ' +
    'signatures by electors of the current CTL that the new one does not remove count; exits 1 when they fall short ' +
    'of the quorum. Writes trust/ctl/ctl_<series>_<seq>.oer, updates the CCF and manifest, appends to the audit log.';
  static override enableJsonFlag = true;
  static override examples = ['<%= config.bin %> manager ctl assemble --dir ./scms ./scms/trust/ctl/ballot-2'];
  static override args = { ballot: Args.string({ description: 'ballot directory (or its ballot.json)', required: true }) };
  static override flags = {
    dir: Flags.string({ description: 'trust directory', required: true }),
    actor: Flags.string({ description: 'who assembles (audit log)' }),
  };

  async run(): Promise<AssembleResult> {
    const { args, flags } = await this.parse(CtlAssemble);
    let r: AssembleResult;
    try {
      r = assembleBallot(resolve(flags.dir), resolve(args.ballot), { clock: systemClock, actor: flags.actor });
    } catch (e) {
      if (e instanceof CtlQuorumError) this.error(e.message, { exit: 1 });
      this.error((e as Error).message, { exit: 2 });
    }
    this.log(`CTL ${r.ctlSeriesId} sequence ${r.sequenceNumber} signed by ${r.signers.join(', ')}: ${r.ctlFile}`);
    for (const i of r.ignored) this.log(`  not counted: ${i.reason}`);
    if (r.ccfUpdated) this.log('  certificate chain file updated (homeCtl)');
    return r;
  }
}
