import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, Flags } from '@oclif/core';
import { readEncodedInput } from '../../../cli/input.js';
import { Certificate } from '../../../codec/gen/Ieee1609Dot2.js';
import { proposeCtlChange, type ProposeResult } from '../../../engine/manager/ctl-dir.js';
import type { CtlChange } from '../../../engine/manager/ctl.js';
import { loadTrustDir } from '../../../engine/manager/trust-dir.js';
import { systemClock } from '../../../security/time.js';

type ChangeKey = 'addRoots' | 'removeRoots' | 'addElectors' | 'removeElectors';

/**
 * Shared by add-root, remove-root, add-elector and remove-elector: writes the next CTL ballot
 * (DIR/trust/ctl/ballot-<seq>/ballot.json) and prints what changes and who must sign.
 */
export abstract class CtlChangeCommand extends Command {
  static override enableJsonFlag = true;
  static override flags = {
    dir: Flags.string({ description: 'trust directory (scms manager init)', required: true }),
    cert: Flags.string({
      description: 'certificate file (COER, raw or hex), or the name of a certificate in the trust directory; repeatable',
      required: true,
      multiple: true,
    }),
    quorum: Flags.integer({ description: 'quorum for the CTL after this one (default: unchanged)', min: 1 }),
    effective: Flags.string({ description: 'effectiveDate of the new CTL (ISO 8601; default now, or the current CTL date if later)' }),
    out: Flags.string({ description: 'ballot directory (default DIR/trust/ctl/ballot-<seq>)' }),
    actor: Flags.string({ description: 'who proposes the change (audit log)' }),
  };

  protected abstract readonly changeKey: ChangeKey;

  async run(): Promise<ProposeResult> {
    const { flags } = await this.parse(this.constructor as typeof CtlChangeCommand);
    const dir = resolve(flags.dir);
    let td: ReturnType<typeof loadTrustDir> | undefined;
    const certs = flags.cert.map((c) => {
      if (existsSync(c)) return Certificate.decode(readEncodedInput(c).bytes);
      td ??= loadTrustDir(dir);
      const named = td.byName.get(c)?.certificate;
      if (!named) this.error(`${c}: no such file, and no certificate of that name in ${dir}`, { exit: 2 });
      return named;
    });
    const change: CtlChange = { [this.changeKey]: certs };
    if (flags.quorum !== undefined) change.quorum = flags.quorum;
    let effectiveDate: Date | undefined;
    if (flags.effective) {
      effectiveDate = new Date(flags.effective);
      if (Number.isNaN(effectiveDate.getTime())) this.error(`--effective ${flags.effective} is not a date`, { exit: 2 });
    }
    let r: ProposeResult;
    try {
      r = proposeCtlChange(dir, change, { clock: systemClock, effectiveDate, actor: flags.actor, out: flags.out && resolve(flags.out) });
    } catch (e) {
      this.error((e as Error).message, { exit: 2 });
    }
    const s = r.summary;
    this.log(`Ballot for CTL ${s.ctlSeriesId} sequence ${s.sequenceNumber}, effective ${s.effectiveDate}: ${r.ballotDir}`);
    for (const c of s.changes) this.log(`  ${c}`);
    this.log(`Quorum after this CTL: ${s.quorum}`);
    this.log(`Needs ${s.needed} signature(s) from: ${s.maySign.join(', ')}`);
    this.log(`Each elector runs: scms manager ctl sign --elector <name|key URI> ${r.ballotDir}`);
    return r;
  }
}

export default class CtlAddRoot extends CtlChangeCommand {
  static override description = 'Propose the next CTL with a root CA certificate added (writes a ballot for the electors to sign)';
  static override examples = [
    '<%= config.bin %> manager ctl add-root --dir ./scms --cert root-2.oer',
    '<%= config.bin %> manager ctl add-root --dir ./scms --cert root-2.oer --quorum 3 --effective 2026-01-01T00:00:00Z',
  ];
  protected readonly changeKey = 'addRoots' as const;
}
