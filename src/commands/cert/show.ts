import { Args, Flags } from '@oclif/core';
import { ScmsCommand } from '../../cli/base.js';
import chalk from 'chalk';
import type { Certificate } from '../../codec/gen/Ieee1609Dot2.js';
import { certificateSummary, type CertificateSummary } from '../../cli/cert-info.js';
import { decodeAs, detectAndDecode, type Decoded } from '../../cli/decode.js';
import { readEncodedInput } from '../../cli/input.js';
import { psidLabel } from '../../cli/psid-names.js';
import { renderTree } from '../../cli/tree.js';

export interface CertShowJson {
  /** "Module.Type" that decoded the input. */
  type: string;
  /** Other detection candidates that also decoded the whole input. */
  alsoMatches?: string[];
  bytes: number;
  /** Certificates only. */
  hashedId8?: string;
  certificateType?: string;
  issuer?: string;
  /** The codec JSON mapping of the value (src/codec/JSON-MAPPING.md). */
  value: unknown;
}

/** `scms cert show`: decode and print a certificate, an Ieee1609Dot2Data or a 1609.2.1 SPDU. */
export default class CertShow extends ScmsCommand {
  static override description =
    'Decode and display an IEEE 1609.2 Certificate, an Ieee1609Dot2Data or any IEEE 1609.2.1 SPDU (COER, raw or hex).\n' +
    'Without --type the type is detected: Certificate first, then the 1609.2.1 SPDU types and Ieee1609Dot2Data ' +
    '(the most specific type that decodes the whole input strictly). For a certificate it also shows the HashedId8 ' +
    '(last 8 octets of the whole-certificate hash), explicit/implicit and the issuer.';
  static override enableJsonFlag = true;
  static override examples = [
    { description: 'Show a certificate (raw COER or a hex file)', command: '<%= config.bin %> <%= command.id %> rca.oer' },
    { description: 'Decode as a specific type', command: '<%= config.bin %> <%= command.id %> request.hex --type EeRaCertRequestSpdu' },
    { description: 'JSON: the codec JSON plus type, hashedId8 and certificateType', command: '<%= config.bin %> <%= command.id %> pseudonym.cert --json' },
    { description: 'Read hex from stdin', command: 'echo 8003... | <%= config.bin %> <%= command.id %> -' },
  ];
  static override args = {
    file: Args.string({ description: 'file with the COER encoding, raw or hex ("-" for stdin)', required: true }),
  };
  static override flags = {
    type: Flags.string({ char: 't', description: 'decode as this type ("Type" or "Module.Type"; see `scms codec types`)' }),
  };

  async run(): Promise<CertShowJson> {
    const { args, flags } = await this.parse(CertShow);
    const { bytes, format, decoded } = this.readInput(
      () => {
        const { bytes, format } = readEncodedInput(args.file);
        const decoded: Decoded & { alsoMatches?: string[] } = flags.type ? decodeAs(flags.type, bytes) : detectAndDecode(bytes);
        return { bytes, format, decoded };
      },
      flags.type ? `the input (as ${flags.type})` : 'the input',
    );
    const isCert = decoded.type === 'Ieee1609Dot2.Certificate' || decoded.type === 'Ieee1609Dot2.TestCertificate';
    const summary = isCert ? certificateSummary(decoded.value as Certificate, bytes) : undefined;
    const out: CertShowJson = {
      type: decoded.type,
      ...(decoded.alsoMatches?.length ? { alsoMatches: decoded.alsoMatches } : {}),
      bytes: bytes.length,
      ...(summary ? { hashedId8: summary.hashedId8, certificateType: summary.certificateType, issuer: summary.issuer } : {}),
      value: decoded.codec.toJson(decoded.value),
    };
    if (!this.jsonEnabled()) this.printHuman(decoded, bytes.length, format, summary);
    return out;
  }

  private printHuman(d: Decoded & { alsoMatches?: string[] }, size: number, format: string, s: CertificateSummary | undefined): void {
    const head = (k: string, v: string) => this.log(`${chalk.bold(k.padEnd(12))}${v}`);
    head('Type:', `${chalk.green(d.type)} ${chalk.dim(`(${size} bytes, ${format} input)`)}`);
    if (d.alsoMatches?.length) head('Also:', chalk.dim(`less specific types that also decode it: ${d.alsoMatches.join(', ')}`));
    if (s) {
      const cert = d.value as Certificate;
      head('HashedId8:', `${chalk.yellow(s.hashedId8)}${s.hashAlgorithm ? chalk.dim(` (${s.hashAlgorithm.toUpperCase()})`) : ''}`);
      head('Kind:', `${chalk.green(s.certificateType)} certificate`);
      head('Issuer:', s.issuer === 'self' ? `self-signed (${String((cert.issuer as { self: string }).self)})` : `${s.issuerKind} ${chalk.yellow(s.issuer)}`);
      head('Subject:', s.id);
      head('Validity:', `${chalk.magenta(s.validFrom)} .. ${chalk.magenta(s.validUntil ?? '(beyond year 275760)')}`);
      const psids = (cert.toBeSigned.appPermissions ?? []).map((p) => psidLabel(p.psid));
      if (psids.length) head('App PSIDs:', psids.join(', '));
    }
    this.log('');
    this.log(renderTree(d.type.split('.').pop()!, d.value, d.codec.schema));
  }
}
