import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, Flags } from '@oclif/core';
import chalk from 'chalk';

/**
 * `scms demo`: the newcomer's first run on the embedded default. Creates a complete SCMS trust setup
 * (electors, root, ICA, ECA/ACA/RA/LA/MA/CRL signer/PG, CTL, CCF, signed policy files) with `manager init --yes`,
 * checks it with `manager verify`, and decodes one of the certificates it made with `cert show`.
 */
export default class Demo extends Command {
  static override description =
    'Run the main job on the embedded default: create an SCMS trust directory, verify it, and show a certificate';

  static override examples = [
    '<%= config.bin %> demo',
    'SCMS_KEYSTORE_PASSPHRASE=secret <%= config.bin %> demo --dir ./my-scms',
  ];

  static override flags = {
    dir: Flags.string({ char: 'd', description: 'directory for the demo SCMS (must not exist yet)', default: '.scms-demo' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Demo);
    let dir = resolve(flags.dir);
    if (existsSync(dir) && readdirSync(dir).length > 0) {
      // Never overwrite a previous run: pick a fresh sibling directory.
      dir = `${dir}-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    }
    if (!process.env.SCMS_KEYSTORE_PASSPHRASE) {
      // The keys are encrypted at rest; without a passphrase from the environment the demo uses a random one
      // that is printed once, so the keys can be used again.
      const pass = randomBytes(18).toString('base64url');
      process.env.SCMS_KEYSTORE_PASSPHRASE = pass;
      this.log(chalk.yellow(`SCMS_KEYSTORE_PASSPHRASE not set: using a random passphrase for this demo: ${pass}`));
    }

    this.log(chalk.bold(`\n1. scms manager init --yes --dir ${dir}`));
    await this.config.runCommand('manager:init', ['--yes', '--dir', dir]);

    this.log(chalk.bold(`\n2. scms manager verify ${dir}`));
    await this.config.runCommand('manager:verify', [dir]);

    const certs = join(dir, 'trust', 'certs');
    const eca = readdirSync(certs).find((f) => f.startsWith('eca')) ?? readdirSync(certs)[0];
    this.log(chalk.bold(`\n3. scms cert show ${join(certs, eca)}`));
    await this.config.runCommand('cert:show', [join(certs, eca)]);

    this.log(chalk.green(`\nDone. The trust directory is ${dir} (layout: README.md "Trust directory").`));
  }
}
