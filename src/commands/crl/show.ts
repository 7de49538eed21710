import { Args } from '@oclif/core';
import chalk from 'chalk';
import { ScmsCommand } from '../../cli/base.js';
import { crlSummary, type CrlSummary } from '../../cli/crl-info.js';
import { EXIT_BAD_INPUT } from '../../cli/errors.js';
import { readEncodedInput } from '../../cli/input.js';

/** `scms crl show`: decode a SecuredCrl (IEEE 1609.2 7.3) and print its contents. */
export default class CrlShow extends ScmsCommand {
  static override description =
    'Decode and display a SecuredCrl (IEEE 1609.2 7.3: COER, raw or hex): series, crlCraca, issueDate, nextCrl, ' +
    'crlSerial or iRev / indexWithinI, the hash-based entries (HashedId10, expiry) or the individual linkage-based ' +
    'entries (la1Id, la2Id, linkage seeds), and the signer. Decoding is strict; nothing is verified (see `scms crl verify`).';
  static override enableJsonFlag = true;
  static override examples = [
    { description: 'A CRL downloaded from GET /v3/crl', command: '<%= config.bin %> <%= command.id %> crl_0011223344556677_1.oer' },
    { description: 'JSON', command: '<%= config.bin %> <%= command.id %> crl.oer --json' },
  ];
  static override args = {
    file: Args.string({ description: 'SecuredCrl (COER, raw or hex; "-" for stdin)', required: true }),
  };

  async run(): Promise<CrlSummary> {
    const { args } = await this.parse(CrlShow);
    const { summary } = this.readInput(() => crlSummary(readEncodedInput(args.file).bytes), args.file === '-' ? 'stdin' : `${args.file} (as SecuredCrl)`, EXIT_BAD_INPUT);
    if (!this.jsonEnabled()) printCrl(this.log.bind(this), summary);
    return summary;
  }
}

export function printCrl(log: (s: string) => void, s: CrlSummary): void {
  const head = (k: string, v: string) => log(`${chalk.bold(k.padEnd(14))}${v}`);
  head('Kind:', chalk.green(s.kind));
  head('Series:', String(s.crlSeries));
  head('crlCraca:', chalk.yellow(s.crlCraca));
  head('Issued:', `${chalk.magenta(s.issueDate)}, next CRL ${chalk.magenta(s.nextCrl)}`);
  if (s.crlSerial !== undefined) head('crlSerial:', String(s.crlSerial));
  if (s.iRev !== undefined) head('iRev:', `${s.iRev} (indexWithinI ${s.indexWithinI})`);
  if (s.signer) head('Signer:', chalk.yellow(s.signer));
  if (s.hashEntries) {
    head('Entries:', String(s.hashEntries.length));
    for (const e of s.hashEntries) log(`  ${chalk.yellow(e.id)} expires ${e.expiry}`);
  }
  if (s.linkageEntries) {
    head('Entries:', String(s.linkageEntries.length));
    for (const e of s.linkageEntries) log(`  LA ${e.la1Id}/${e.la2Id} jmax ${e.jmax} iMax ${e.iMax}: ${e.linkageSeed1} ${e.linkageSeed2}`);
  }
}
