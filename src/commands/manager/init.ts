import { resolve } from 'node:path';
import { Command, Flags } from '@oclif/core';
import { checkbox, confirm, input, number, password, select } from '@inquirer/prompts';
import chalk from 'chalk';
import { DEFAULT_COMPONENTS, DEFAULT_VALIDITY, type KeyCurve, type Role } from '../../engine/manager/profiles.js';
import { type ComponentSpec, initTrustDir, type InitResult } from '../../engine/manager/init.js';
import { YEAR_SECONDS } from '../../engine/policy/index.js';
import { systemClock } from '../../security/time.js';

interface Answers {
  dir: string;
  keystore: string;
  electors: number;
  quorum: number;
  regions: number[];
  validity: Partial<Record<Role, number>>;
  components: ComponentSpec[];
  /** Curve of the electors and the root (profiles.ts curves.top). */
  rootCurve: KeyCurve;
  passphrase?: string;
  pin?: string;
}

function parseRegions(s: string): number[] {
  return s
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((x) => Number(x));
}

/** `scms manager init`: the key ceremony that creates a trust directory. */
export default class ManagerInit extends Command {
  static override description =
    'Key ceremony: generate elector, root CA, ICA and component keys and certificates (IEEE 1609.2, COER), the first CTL, ' +
    'the certificate chain file and the PG-signed policy files into a trust directory. Interactive unless --yes.';
  static override enableJsonFlag = true;
  static override examples = [
    '<%= config.bin %> manager init',
    'SCMS_KEYSTORE_PASSPHRASE=... <%= config.bin %> manager init --yes --dir ./scms --electors 3 --quorum 2 --region 840',
    'SCMS_PKCS11_MODULE=/usr/lib/softhsm/libsofthsm2.so SCMS_PKCS11_PIN=... <%= config.bin %> manager init --yes --dir ./scms --keystore "pkcs11:token=scms" --json',
  ];
  static override flags = {
    yes: Flags.boolean({ char: 'y', description: 'no questions: use the flags and defaults' }),
    dir: Flags.string({ char: 'd', description: 'trust directory to create', default: './scms' }),
    electors: Flags.integer({ description: 'number of electors', default: 3 }),
    quorum: Flags.integer({ description: 'elector signatures needed for a CTL (default: 2, or 1 with one elector)' }),
    keystore: Flags.string({
      description: "'file' (encrypted soft keystore in DIR/keys, passphrase from SCMS_KEYSTORE_PASSPHRASE) or a PKCS#11 URI 'pkcs11:token=...' (PIN from SCMS_PKCS11_PIN)",
      default: 'file',
    }),
    region: Flags.string({ description: 'country codes (1609.2 CountryOnly, e.g. 840 USA), comma separated or repeated', multiple: true, default: ['840'] }),
    'root-years': Flags.integer({ description: 'validity of electors and the root CA, years', default: 20 }),
    'ica-years': Flags.integer({ description: 'validity of the ICA, years', default: 10 }),
    'component-years': Flags.integer({ description: 'validity of the component certificates, years (default: per role, 3-5)' }),
    'base-url': Flags.string({ description: 'base URL of the components in the local policy', default: 'http://localhost:8080' }),
    'root-curve': Flags.string({
      description: 'curve of the electors and the root CA (the ICA and below stay P-256; 1609.2 ecdsaNistP384 signs with SHA-384)',
      options: ['P-256', 'P-384'],
      default: 'P-256',
    }),
  };

  async run(): Promise<{ dir: string; files: InitResult['files']; components: Array<{ name: string; role: string; keyUri: string }> }> {
    const { flags } = await this.parse(ManagerInit);
    const regions = flags.region.flatMap(parseRegions);
    const validity: Partial<Record<Role, number>> = {
      elector: flags['root-years'] * YEAR_SECONDS,
      root: flags['root-years'] * YEAR_SECONDS,
      ica: flags['ica-years'] * YEAR_SECONDS,
    };
    if (flags['component-years'] !== undefined) {
      for (const r of ['eca', 'aca', 'ra', 'la', 'ma', 'crl-signer', 'pg'] as const) validity[r] = flags['component-years'] * YEAR_SECONDS;
    }
    let a: Answers = {
      dir: flags.dir,
      keystore: flags.keystore,
      electors: flags.electors,
      quorum: flags.quorum ?? Math.min(2, flags.electors),
      regions,
      validity,
      components: DEFAULT_COMPONENTS.map((c) => ({ ...c })),
      rootCurve: flags['root-curve'] as KeyCurve,
    };
    const quiet = flags.json;
    if (!flags.yes) {
      const asked = await this.ceremony(a);
      if (!asked) {
        this.log('Nothing was generated.');
        return { dir: resolve(a.dir), files: [], components: [] };
      }
      a = asked;
    }

    const dir = resolve(a.dir);
    const steps = ['electors', 'root', 'ica', 'components', 'ctl', 'ccf', 'policy', 'done'];
    const result = await initTrustDir({
      dir,
      keystore: a.keystore,
      keyStoreOptions: { passphrase: a.passphrase, pin: a.pin },
      electors: a.electors,
      quorum: a.quorum,
      regions: a.regions,
      validity: a.validity,
      components: a.components,
      baseUrl: flags['base-url'],
      curves: { top: a.rootCurve },
      clock: systemClock,
      onProgress: quiet
        ? undefined
        : (e) => {
            const n = steps.indexOf(e.step);
            const tag = n >= 0 ? `[${n + 1}/${steps.length}]` : '     ';
            this.log(`${chalk.cyan(tag)} ${e.step}${e.detail ? `: ${e.detail}` : ''}`);
          },
    });
    if (!quiet) {
      this.log('');
      this.log(chalk.green(`Trust directory written: ${dir}`));
      for (const f of result.files) this.log(`  ${f.path.padEnd(44)} ${f.role}${f.name ? ` (${f.name})` : ''}`);
      this.log(`Check it with: ${this.config.bin} manager verify ${dir}`);
    }
    return {
      dir,
      files: result.files,
      components: result.manifest.components.map((c) => ({ name: c.name, role: c.role, keyUri: c.keyUri })),
    };
  }

  /** The interactive key ceremony: explains each step, asks, confirms. Undefined when declined. */
  private async ceremony(d: Answers): Promise<Answers | undefined> {
    this.log(chalk.bold('SCMS key ceremony'));
    this.log(
      'This creates the trust anchors of an IEEE 1609.2.1 SCMS: elector certificates (they sign the certificate trust\n' +
        'list, CTL), a root CA, an intermediate CA (ICA) and the component certificates below it, the first CTL, the\n' +
        'certificate chain file for end entities and the global/local policy files signed by the policy generator.\n',
    );
    this.log(chalk.dim('Step 1: where the trust directory goes (certificates, CTL, policies, manifest, audit log).'));
    const dir = await input({ message: 'Output directory', default: d.dir });
    this.log(chalk.dim('Step 2: where private keys live. Soft: scrypt + AES-256-GCM files in DIR/keys. PKCS#11: non-extractable keys on a token.'));
    const kind = await select({
      message: 'Key store',
      choices: [
        { name: 'soft keystore (encrypted files in DIR/keys)', value: 'file' },
        { name: 'PKCS#11 token (HSM, SoftHSM2)', value: 'pkcs11' },
      ],
      default: d.keystore.startsWith('pkcs11:') ? 'pkcs11' : 'file',
    });
    let keystore = 'file';
    let passphrase: string | undefined;
    let pin: string | undefined;
    if (kind === 'pkcs11') {
      keystore = await input({
        message: 'PKCS#11 URI',
        default: d.keystore.startsWith('pkcs11:') ? d.keystore : 'pkcs11:token=scms',
        validate: (v) => (/^pkcs11:.*token=/.test(v) ? true : "expected 'pkcs11:token=<label>'"),
      });
      if (!process.env.SCMS_PKCS11_PIN) pin = await password({ message: 'Token user PIN', mask: '*' });
    } else if (!process.env.SCMS_KEYSTORE_PASSPHRASE) {
      passphrase = await password({ message: 'Key store passphrase', mask: '*', validate: (v) => (v.length >= 8 ? true : 'at least 8 characters') });
      const again = await password({ message: 'Repeat the passphrase', mask: '*' });
      if (again !== passphrase) throw new Error('the passphrases differ');
    }
    this.log(chalk.dim('Step 3: electors vote on CTLs; a CTL is valid when signed by a quorum of the currently approved electors.'));
    const electors = (await number({ message: 'Number of electors', default: d.electors, min: 1, max: 255, required: true }))!;
    const quorum = (await number({
      message: 'Quorum (signatures needed)',
      default: Math.min(d.quorum, electors),
      min: 1,
      max: electors,
      required: true,
    }))!;
    this.log(chalk.dim('Step 4: the countries (UN M.49 numeric, e.g. 840 USA, 124 Canada) in which certificates are valid.'));
    const regions = parseRegions(
      await input({
        message: 'Region country codes',
        default: d.regions.join(','),
        validate: (v) => (parseRegions(v).every((n) => Number.isInteger(n) && n >= 1 && n <= 999) && parseRegions(v).length > 0 ? true : 'codes 1..999'),
      }),
    );
    const rootCurve = d.rootCurve; // --root-curve (not asked: the ceremony's questions stay as they are)
    this.log(chalk.dim('Step 5: validity periods (a certificate never outlives its issuer).'));
    const rootYears = (await number({ message: 'Root CA and electors, years', default: (d.validity.root ?? DEFAULT_VALIDITY.root) / YEAR_SECONDS, min: 1, max: 60, required: true }))!;
    const icaYears = (await number({ message: 'ICA, years', default: (d.validity.ica ?? DEFAULT_VALIDITY.ica) / YEAR_SECONDS, min: 1, max: rootYears, required: true }))!;
    const compYears = (await number({ message: 'Components, years', default: 3, min: 1, max: icaYears, required: true }))!;
    this.log(chalk.dim('Step 6: the components issued under the ICA (the PG is required: it signs the policy files).'));
    const chosen = await checkbox({
      message: 'Components',
      choices: DEFAULT_COMPONENTS.map((c) => ({ name: `${c.name} (${c.role})`, value: c.name, checked: true, disabled: c.role === 'pg' ? '(required)' : false })),
    });
    const components = DEFAULT_COMPONENTS.filter((c) => c.role === 'pg' || chosen.includes(c.name)).map((c) => ({ ...c }));
    const validity: Partial<Record<Role, number>> = { elector: rootYears * YEAR_SECONDS, root: rootYears * YEAR_SECONDS, ica: icaYears * YEAR_SECONDS };
    for (const c of components) validity[c.role] = compYears * YEAR_SECONDS;

    this.log('');
    this.log(chalk.bold('Summary'));
    this.log(`  directory   ${resolve(dir)}`);
    this.log(`  key store   ${keystore === 'file' ? 'soft (DIR/keys)' : keystore}`);
    this.log(`  electors    ${electors}, quorum ${quorum}`);
    this.log(`  regions     ${regions.join(', ')}`);
    this.log(`  validity    root ${rootYears} y, ICA ${icaYears} y, components ${compYears} y`);
    this.log(`  curves      electors and root ${rootCurve}, ICA and components P-256`);
    this.log(`  components  ${components.map((c) => c.name).join(', ')}`);
    const ok = await confirm({ message: 'Generate the keys and certificates now?', default: true });
    if (!ok) return undefined;
    return { dir, keystore, electors, quorum, regions, validity, components, rootCurve, passphrase, pin };
  }
}
