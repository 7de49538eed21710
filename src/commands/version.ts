import { Command } from '@oclif/core';

/** `scms version`: package and standards versions implemented. */
export default class Version extends Command {
  static override description = 'Show the scms version and the standard module versions it implements';
  static override enableJsonFlag = true;

  async run(): Promise<{ scms: string; node: string }> {
    await this.parse(Version);
    const info = { scms: this.config.version, node: process.version };
    this.log(`scms ${info.scms} (node ${info.node})`);
    return info;
  }
}
