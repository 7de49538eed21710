import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, Flags } from '@oclif/core';
import chalk from 'chalk';

interface Manifest {
  components: Array<{ name: string; role: string; hashedId8?: string }>;
}

/**
 * `scms demo`: the newcomer's first run on the embedded default (SQLite, no services needed):
 *   1. `manager init --yes`   electors, root, ICA, ECA/ACA/RA/LA1/LA2/MA/CRL signer/PG, CTL, CCF, signed policies
 *   2. `manager verify`       every signature, chain, CTL quorum
 *   3. `serve all`            RA + ECA + ACA + LA1 + LA2 in one process on 127.0.0.1 (a child process)
 *   4. `ee simulate`          one OBU over HTTP: bootstrap, register, enroll, pseudonym batch, download, verify, BSM
 *   5. `cert show`            one of the pseudonym certificates it obtained
 */
export default class Demo extends Command {
  static override description =
    'Run the main job on the embedded default: create an SCMS, serve it, and let a simulated OBU obtain pseudonym certificates';

  static override examples = ['<%= config.bin %> demo', 'SCMS_KEYSTORE_PASSPHRASE=secret <%= config.bin %> demo --dir ./my-scms'];

  static override flags = {
    dir: Flags.string({ char: 'd', description: 'directory for the demo SCMS (a fresh one is used if it exists)', default: '.scms-demo' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Demo);
    let dir = resolve(flags.dir);
    if (existsSync(dir) && readdirSync(dir).length > 0) dir = `${dir}-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    if (!process.env.SCMS_KEYSTORE_PASSPHRASE) {
      // Keys are encrypted at rest; without a passphrase from the environment the demo picks a random one and
      // prints it once so the keys stay usable.
      process.env.SCMS_KEYSTORE_PASSPHRASE = randomBytes(18).toString('base64url');
      this.log(chalk.yellow(`SCMS_KEYSTORE_PASSPHRASE not set: this demo uses ${process.env.SCMS_KEYSTORE_PASSPHRASE}`));
    }
    const operatorToken = process.env.SCMS_OPERATOR_TOKEN ?? randomBytes(24).toString('base64url');
    const trust = join(dir, 'scms');

    this.log(chalk.bold(`\n1. scms manager init --yes --dir ${trust}`));
    await this.config.runCommand('manager:init', ['--yes', '--dir', trust]);

    this.log(chalk.bold(`\n2. scms manager verify ${trust}`));
    await this.config.runCommand('manager:verify', [trust]);

    this.log(chalk.bold(`\n3. scms serve all --trust ${trust} --data ${join(dir, 'data')} --port 0`));
    const server = await this.startServer(trust, join(dir, 'data'), operatorToken);
    this.log(`   serving on ${server.url}`);
    try {
      const manifest = JSON.parse(readFileSync(join(trust, 'trust', 'manifest.json'), 'utf8')) as Manifest;
      const root = manifest.components.find((c) => c.role === 'root');
      if (!root?.hashedId8) throw new Error('the manifest names no root certificate');
      const state = join(dir, 'obu-1');
      this.log(chalk.bold(`\n4. scms ee simulate --ra ${server.url} --trust-root ${root.hashedId8} --type obu --cert pseudonym --form implicit --butterfly unified --state ${state}`));
      process.env.SCMS_OPERATOR_TOKEN = operatorToken;
      await this.config.runCommand('ee:simulate', [
        '--ra', server.url, '--trust-root', root.hashedId8, '--type', 'obu', '--cert', 'pseudonym',
        '--form', 'implicit', '--butterfly', 'unified', '--state', state, '--max-wait', '120',
      ]);
      const certs = findCertificates(state);
      if (certs.length > 0) {
        this.log(chalk.bold(`\n5. scms cert show ${certs[0]}`));
        await this.config.runCommand('cert:show', [certs[0]]);
      }
    } finally {
      await server.stop();
    }
    this.log(chalk.green(`\nDone. Trust directory ${trust}, device state ${join(dir, 'obu-1')} (see README).`));
  }

  /** Starts `scms serve all` as a child process (a real HTTP server on 127.0.0.1) and waits for its address. */
  private startServer(trust: string, data: string, operatorToken: string): Promise<{ url: string; stop: () => Promise<void> }> {
    const bin = fileURLToPath(new URL('../../bin/run.js', import.meta.url));
    const child = spawn(process.execPath, [bin, 'serve', 'all', '--trust', trust, '--data', data, '--port', '0', '--host', '127.0.0.1', '--json'], {
      env: {
        ...process.env,
        SCMS_OPERATOR_TOKEN: operatorToken,
        SCMS_RA_PROCESSING_DELAY_S: process.env.SCMS_RA_PROCESSING_DELAY_S ?? '2',
        SCMS_RA_WORKER_POLL_MS: process.env.SCMS_RA_WORKER_POLL_MS ?? '200',
        SCMS_LOG_LEVEL: process.env.SCMS_LOG_LEVEL ?? 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const stop = () =>
      new Promise<void>((done) => {
        if (child.exitCode !== null) return done();
        child.once('exit', () => done());
        child.kill('SIGTERM');
      });
    return new Promise((ok, fail) => {
      let out = '';
      let err = '';
      child.stderr!.on('data', (d) => (err += d));
      child.stdout!.on('data', (d) => {
        out += d;
        try {
          const info = JSON.parse(out) as { url: string };
          ok({ url: info.url, stop });
        } catch {
          // not complete yet
        }
      });
      child.once('exit', (code) => fail(new Error(`scms serve all exited with ${code}:\n${err}`)));
    });
  }
}

/** Certificate files (COER) in a device state directory, pseudonyms first. */
function findCertificates(state: string): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'keys' && e.name !== 'trust') walk(p);
      } else if (e.name.endsWith('.oer')) found.push(p);
    }
  };
  if (existsSync(state)) walk(state);
  return found.sort((a, b) => Number(b.includes('pseudonym')) - Number(a.includes('pseudonym')) || a.localeCompare(b));
}
