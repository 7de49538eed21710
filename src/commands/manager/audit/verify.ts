import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, Flags } from '@oclif/core';
import chalk from 'chalk';
import { verifyAudit, type AuditError } from '../../../engine/manager/audit.js';
import { AUDIT_FILE } from '../../../engine/manager/trust-dir.js';

/** `scms manager audit verify`: the hash chain of the SCMS Manager audit log. */
export default class AuditVerify extends Command {
  static override description =
    "Verify the SCMS Manager's audit log (hash-chained JSON lines): every line's own hash, its link to the line " +
    'before, consecutive seq numbers, a complete last line. Prints each error with its line number; exits 1 on failure.';
  static override enableJsonFlag = true;
  static override examples = [
    '<%= config.bin %> manager audit verify --dir ./scms',
    '<%= config.bin %> manager audit verify --file ./scms/audit.log --anchor 42:5e3c...',
  ];
  static override flags = {
    dir: Flags.string({ description: 'trust directory (its audit.log)', exactlyOne: ['dir', 'file'] }),
    file: Flags.string({ description: 'audit log file', exactlyOne: ['dir', 'file'] }),
    anchor: Flags.string({ description: 'SEQ:HASH of an event recorded elsewhere: the log must still contain it (detects a cut tail)' }),
  };

  async run(): Promise<{ ok: boolean; path: string; events: number; lastSeq: number | null; lastHash: string | null; errors: AuditError[] }> {
    const { flags } = await this.parse(AuditVerify);
    const path = flags.file ? resolve(flags.file) : join(resolve(flags.dir!), AUDIT_FILE);
    let anchor: { seq: number; hash: string } | undefined;
    if (flags.anchor) {
      const m = /^(\d+):([0-9a-f]{64})$/.exec(flags.anchor);
      if (!m) this.error('--anchor must be SEQ:HASH (64 lower-case hex digits)', { exit: 2 });
      anchor = { seq: Number(m[1]), hash: m[2]! };
    }
    if (existsSync(path) && statSync(path).isDirectory()) this.error(`${path} is a directory`, { exit: 2 });
    const r = verifyAudit(path, { anchor });
    const last = r.events[r.events.length - 1];
    const result = { ok: r.ok, path, events: r.events.length, lastSeq: last?.seq ?? null, lastHash: last?.hash ?? null, errors: r.errors };
    if (r.ok) this.log(`${chalk.green('✓')} ${path}: ${r.events.length} event(s), chain intact${last ? ` (last seq ${last.seq}, hash ${last.hash})` : ''}`);
    else for (const e of r.errors) this.log(`${chalk.red('✗')} ${path}:${e.line}: ${e.reason}`);
    if (!r.ok) process.exitCode = 1;
    return result;
  }
}
