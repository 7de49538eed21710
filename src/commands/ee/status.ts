import { existsSync } from 'node:fs';
import { Flags } from '@oclif/core';
import chalk from 'chalk';
import { ScmsCommand } from '../../cli/base.js';
import { certificateSummary, type CertificateSummary } from '../../engine/ee/simulate.js';
import { EeStateDir, EeStateError } from '../../engine/ee/state.js';
import { decodeCertificate } from '../../security/certificate.js';
import { systemClock, time32ToDate } from '../../security/time.js';

type Held = CertificateSummary & { i?: number; j?: number; key: boolean; now: 'valid' | 'not yet valid' | 'expired' };

export default class EeStatus extends ScmsCommand {
  static override description =
    'Show what a simulated end entity holds (no secrets, no passphrase needed): its configuration, canonical id, ' +
    'registration, trust files, enrollment certificate, pending request and certificates with their HashedId8s.';
  static override enableJsonFlag = true;
  static override examples = ['<%= config.bin %> ee status --state ./device1', '<%= config.bin %> ee status --state ./device1 --json'];
  static override flags = {
    state: Flags.string({ description: 'device state directory', required: true }),
  };

  async run() {
    const { flags } = await this.parse(EeStatus);
    const sd = new EeStateDir(flags.state);
    let st;
    try {
      st = sd.load();
    } catch (e) {
      if (e instanceof EeStateError) this.fail(e.message, 2);
      throw e;
    }
    const now = systemClock.now().toISOString();
    const keyFile = (uri: string) => existsSync(sd.keystore.pathOf(uri));
    const held = (file: string, keyUri: string, extra: { i?: number; j?: number } = {}): Held => {
      const bytes = sd.readFile(file);
      const s = certificateSummary(decodeCertificate(bytes), bytes);
      const when = now < s.validFrom ? 'not yet valid' : s.validUntil && now > s.validUntil ? 'expired' : 'valid';
      return { ...s, ...extra, key: keyFile(keyUri), now: when };
    };
    const out = {
      stateDir: sd.dir,
      config: st.config,
      canonical: st.canonical ? { canonicalId: st.canonical.canonicalId, publicKey: st.canonical.publicKey, key: keyFile(st.canonical.keyUri) } : null,
      registration: st.registration ?? null,
      trust: st.trust ?? null,
      enrollment: st.enrollment ? held(st.enrollment.file, st.enrollment.keyUri) : null,
      authorization: st.authorization
        ? {
            requestHash: st.authorization.requestHash,
            filename: st.authorization.filename,
            downloadTime: time32ToDate(st.authorization.nextDlTime).toISOString(),
            downloaded: st.authorization.downloadedAt ?? null,
          }
        : null,
      certificates: st.certificates.map((c) => held(c.file, c.keyUri, { i: c.i, j: c.j })),
      history: st.history,
    };
    if (!this.jsonEnabled()) {
      const b = chalk.bold;
      this.log(`${b('state')}          ${out.stateDir}`);
      this.log(`${b('device')}         ${st.config.deviceType}, ${st.config.cert} ${st.config.form} certificates, ${st.config.butterfly} butterfly, RA ${st.config.raUrl}`);
      this.log(`${b('canonical id')}   ${out.canonical ? `${out.canonical.canonicalId}${out.canonical.key ? '' : ' (key missing!)'}` : '-'}`);
      this.log(`${b('registration')}   ${out.registration ? `device ${out.registration.deviceId} (${out.registration.state})` : 'not registered by this simulator'}`);
      this.log(`${b('trust')}          ${out.trust ? `CTL ${out.trust.ctlSeriesId} #${out.trust.ctlSequenceNumber}, RA ${out.trust.raCertificate}, roots ${st.config.trustedRootHashes.join(', ')}` : '-'}`);
      const line = (c: Held) => `${c.hashedId8}  ${c.certificateType}  ${c.validFrom} .. ${c.validUntil ?? '?'}  ${c.now}${c.key ? '' : '  (key missing!)'}`;
      this.log(`${b('enrollment')}     ${out.enrollment ? line(out.enrollment) : '-'}`);
      this.log(
        `${b('request')}        ${out.authorization ? `${out.authorization.requestHash} batch ${out.authorization.filename}, ${out.authorization.downloaded ? `downloaded ${out.authorization.downloaded}` : `download from ${out.authorization.downloadTime}`}` : '-'}`,
      );
      this.log(`${b('certificates')}   ${out.certificates.length}`);
      for (const c of out.certificates) this.log(`  i=${c.i} j=${c.j}  ${line(c)}`);
    }
    await sd.close();
    return out;
  }
}
