import { resolve } from 'node:path';
import { Command, Flags } from '@oclif/core';
import { issueComponent, type IssueResult } from '../../engine/manager/issue.js';
import { COMPONENT_ROLES, type ComponentRole } from '../../engine/manager/profiles.js';
import { YEAR_SECONDS } from '../../engine/policy/index.js';
import { systemClock } from '../../security/time.js';

/** `scms manager issue`: one more component certificate under the ICA. */
export default class ManagerIssue extends Command {
  static override description =
    'Issue a further component certificate under the ICA of a trust directory (new key in its key store), recorded in ' +
    'the manifest, the certificate chain file and the audit log.';
  static override enableJsonFlag = true;
  static override examples = [
    '<%= config.bin %> manager issue --dir ./scms --role aca',
    '<%= config.bin %> manager issue --dir ./scms --role la --name la3 --la-id 3 --json',
  ];
  static override flags = {
    dir: Flags.string({ char: 'd', description: 'trust directory', default: './scms' }),
    role: Flags.string({ description: 'component role', options: [...COMPONENT_ROLES], required: true }),
    name: Flags.string({ description: 'component name (default: <role>-<n>)' }),
    'la-id': Flags.integer({ description: 'LaSsp laId of an LA (default: the next free one)' }),
    years: Flags.integer({ description: 'validity in years (default: the role profile)' }),
  };

  async run(): Promise<IssueResult> {
    const { flags } = await this.parse(ManagerIssue);
    const r = await issueComponent({
      dir: resolve(flags.dir),
      role: flags.role as ComponentRole,
      name: flags.name,
      laId: flags['la-id'],
      validitySeconds: flags.years !== undefined ? flags.years * YEAR_SECONDS : undefined,
      clock: systemClock,
    });
    this.log(`issued ${r.role} certificate '${r.name}' (${r.hashedId8}) -> trust/${r.certificate}, key ${r.keyUri}`);
    return r;
  }
}
