import { Args, Flags } from '@oclif/core';
import chalk from 'chalk';
import { Certificate } from '../../codec/gen/Ieee1609Dot2.js';
import { ScmsCommand } from '../../cli/base.js';
import { EXIT_BAD_INPUT, EXIT_VERIFY_FAILED } from '../../cli/errors.js';
import { bytesToHex, readEncodedInput } from '../../cli/input.js';
import {
  CertificateError,
  certificateHashedId8,
  certificatePublicKey,
  isIssuedBy,
  isSelfSigned,
  verifyCertificateSignature,
} from '../../security/certificate.js';

export interface VerifyLink {
  /** HashedId8 of the certificate checked. */
  subject: string;
  certificateType: string;
  /** "self", or the HashedId8 of the issuer certificate used. */
  issuer: string;
  check: 'signature' | 'reconstruction' | 'none';
  ok: boolean;
  reason?: string;
}

export interface CertVerifyJson {
  valid: boolean;
  hashedId8: string;
  certificateType: string;
  /** Verification key (uncompressed 04||x||y): explicit: from the certificate; implicit: reconstructed (ECQV). */
  publicKey?: { curve: string; key: string };
  /** The certificate, then each --issuer in turn. */
  chain: VerifyLink[];
}

const hid = (c: Certificate): string => bytesToHex(certificateHashedId8(c));

/** `scms cert verify`: signature of an explicit certificate / key reconstruction of an implicit one. */
export default class CertVerify extends ScmsCommand {
  static override description =
    'Verify an IEEE 1609.2 certificate against its issuer: the ECDSA signature of an explicit certificate ' +
    '(self-signed when no --issuer is given), or, for an implicit certificate, reconstruct its public key ' +
    '(ECQV, 1609.2 5.3.2) from the issuer. Repeat --issuer to give the chain upwards (issuer, its issuer, ...); ' +
    'every certificate given is checked against the next one, a self-signed one against itself. ' +
    'Exit code 0: all checks passed; 1: a check failed; 2: unreadable input.';
  static override enableJsonFlag = true;
  static override examples = [
    { description: 'A self-signed root certificate', command: '<%= config.bin %> <%= command.id %> rca.oer' },
    { description: 'An ICA certificate against its root', command: '<%= config.bin %> <%= command.id %> ica.oer --issuer rca.oer' },
    {
      description: 'A pseudonym (implicit) certificate: reconstruct its key through the chain',
      command: '<%= config.bin %> <%= command.id %> pseudonym.cert --issuer aca.oer --issuer ica.oer --issuer rca.oer --json',
    },
  ];
  static override args = {
    file: Args.string({ description: 'certificate (COER, raw or hex; "-" for stdin)', required: true }),
  };
  static override flags = {
    issuer: Flags.string({
      char: 'i',
      description: 'issuer certificate file (raw or hex); repeat for the chain above it, nearest first',
      multiple: true,
    }),
  };

  async run(): Promise<CertVerifyJson> {
    const { args, flags } = await this.parse(CertVerify);
    const files = [args.file, ...(flags.issuer ?? [])];
    const certs = files.map((f) => this.readInput(() => Certificate.decode(readEncodedInput(f).bytes), f === '-' ? 'stdin' : f, EXIT_BAD_INPUT));
    const cert = certs[0]!;
    const chain: VerifyLink[] = [];
    let publicKey: CertVerifyJson['publicKey'];
    try {
      for (let i = 0; i < certs.length; i++) chain.push(checkLink(certs[i]!, certs.slice(i + 1), i === 0));
      const k = certificatePublicKey(cert, certs.length > 1 ? certs.slice(1) : undefined);
      publicKey = { curve: k.curve, key: bytesToHex(k.publicKey) };
    } catch (err) {
      if (!(err instanceof CertificateError)) throw err;
      if (chain.length < certs.length) {
        chain.push({ subject: safeHid(certs[chain.length]!), certificateType: String(certs[chain.length]!.type), issuer: '?', check: 'none', ok: false, reason: err.message });
      }
    }
    const valid = chain.length === certs.length && chain.every((l) => l.ok) && publicKey !== undefined;
    const out: CertVerifyJson = { valid, hashedId8: chain[0]?.subject ?? safeHid(cert), certificateType: String(cert.type), ...(publicKey ? { publicKey } : {}), chain };
    if (this.jsonEnabled()) {
      if (!valid) {
        this.logJson(out);
        process.exitCode = EXIT_VERIFY_FAILED;
        return undefined as never;
      }
      return out;
    }
    for (const l of chain) {
      const mark = l.ok ? chalk.green('OK  ') : chalk.red('FAIL');
      const what = l.check === 'signature' ? (l.ok ? 'signature valid' : 'signature INVALID') : l.check === 'reconstruction' ? 'public key reconstructed' : 'not checked';
      this.log(`${mark} ${chalk.yellow(l.subject)} (${l.certificateType}) issuer ${l.issuer === 'self' ? 'self' : chalk.yellow(l.issuer)}: ${what}${l.reason ? ` - ${l.reason}` : ''}`);
    }
    if (publicKey) this.log(`public key (${publicKey.curve}): ${chalk.yellow(publicKey.key)}`);
    if (!valid) {
      const bad = chain.find((l) => !l.ok);
      this.fail(`verification failed${bad?.reason ? `: ${bad.reason}` : ''}`, EXIT_VERIFY_FAILED);
    }
    return out;
  }
}

function safeHid(c: Certificate): string {
  try {
    return hid(c);
  } catch {
    return '?';
  }
}

/** Checks `cert` against the first of `above` (or itself when self-signed). */
function checkLink(cert: Certificate, above: Certificate[], isSubject: boolean): VerifyLink {
  const subject = hid(cert);
  const certificateType = String(cert.type);
  if (isSelfSigned(cert)) {
    if (cert.type !== 'explicit') return { subject, certificateType, issuer: 'self', check: 'none', ok: false, reason: 'an implicit certificate cannot be self-signed' };
    const ok = verifyCertificateSignature(cert, 'self');
    return { subject, certificateType, issuer: 'self', check: 'signature', ok, ...(ok ? {} : { reason: 'self-signature does not verify' }) };
  }
  const issuer = above[0];
  const named = bytesToHex(Object.values(cert.issuer)[0] as Uint8Array);
  if (!issuer) {
    // The subject needs its issuer; the top of a given chain that is not self-signed is taken as trusted.
    return isSubject
      ? { subject, certificateType, issuer: named, check: 'none', ok: false, reason: `issued by ${named}: give its certificate with --issuer` }
      : { subject, certificateType, issuer: named, check: 'none', ok: true, reason: `its issuer ${named} was not given: taken as trusted` };
  }
  const issuerId = hid(issuer);
  if (!isIssuedBy(cert, issuer)) {
    return { subject, certificateType, issuer: issuerId, check: 'none', ok: false, reason: `the issuer field names ${named}, not the given issuer ${issuerId}` };
  }
  if (cert.type === 'implicit') {
    certificatePublicKey(cert, above); // throws CertificateError when the key cannot be reconstructed
    return { subject, certificateType, issuer: issuerId, check: 'reconstruction', ok: true };
  }
  const ok = verifyCertificateSignature(cert, issuer, { issuerChain: above.length > 1 ? above.slice(1) : undefined });
  return { subject, certificateType, issuer: issuerId, check: 'signature', ok, ...(ok ? {} : { reason: `signature does not verify with the key of ${issuerId}` }) };
}
