/**
 * `scms manager issue`: a further component certificate under the ICA of a trust directory (new
 * key in the directory's key store, profile from profiles.ts), recorded in the manifest and the
 * audit log. The CCF is rewritten to include it (1609.2.1 CertificateChain.others).
 */
import type { Certificate } from '../../codec/index.js';
import { toHex } from '../../crypto/bytes.js';
import {
  buildTbsCertificate,
  certificateHashedId8,
  encodeCertificate,
  issueExplicitCertificate,
} from '../../security/certificate.js';
import type { PsidGroupInput } from '../../security/cert-build.js';
import { curveOfKeyStore, keyStoreSigner } from '../../security/signer.js';
import type { Clock } from '../../security/time.js';
import { appendAudit, sha256Hex } from './audit.js';
import { buildCcf } from './ccf.js';
import { keystoreBase, openStores, type InitOptions } from './init.js';
import { certificateProfile, type ComponentRole, DEFAULT_CRL_SERIES, type KeyCurve } from './profiles.js';
import { certificateFilePath, loadTrustDir, TrustDirWriter } from './trust-dir.js';

export interface IssueOptions {
  dir: string;
  role: ComponentRole;
  /** Component name (default: role + next free number, e.g. aca-2). */
  name?: string;
  laId?: number;
  /** Validity in seconds (default: the role's). */
  validitySeconds?: number;
  keyStoreOptions?: InitOptions['keyStoreOptions'];
  clock: Clock;
  actor?: string;
  curve?: KeyCurve;
  /**
   * Extra certIssuePermissions groups added to the profile's. For tests of `verify` only: a
   * certificate with more permissions than its issuer must be rejected.
   */
  extraIssuePermissions?: PsidGroupInput[];
}

export interface IssueResult {
  name: string;
  role: ComponentRole;
  certificate: string;
  hashedId8: string;
  keyUri: string;
  encryptionKeyUri?: string;
  files: string[];
}

export async function issueComponent(opts: IssueOptions): Promise<IssueResult> {
  const td = loadTrustDir(opts.dir);
  const ica = td.certificates.find((c) => c.role === 'ica');
  if (!ica?.certificate) throw new Error(`${opts.dir}: no ICA certificate in the trust directory`);
  const policy = td.globalPolicy?.json;
  if (!policy) throw new Error(`${opts.dir}: no global policy (needed for the permission profile)`);
  const names = new Set(td.manifest.components.map((c) => c.name));
  let name = opts.name;
  if (!name) {
    for (let i = 2; ; i++) {
      if (!names.has(`${opts.role}-${i}`)) {
        name = `${opts.role}-${i}`;
        break;
      }
    }
  }
  if (!/^[a-z0-9][a-z0-9-]{0,40}$/.test(name)) throw new Error(`component name '${name}' must match [a-z0-9][a-z0-9-]*`);
  if (names.has(name)) throw new Error(`component '${name}' already exists`);
  let laId = opts.laId;
  if (opts.role === 'la' && laId === undefined) {
    const used = new Set(td.manifest.components.map((c) => c.laId).filter((x) => x !== undefined));
    laId = 1;
    while (used.has(laId)) laId++;
  }

  const clock = opts.clock;
  const now = clock.now();
  const actor = opts.actor ?? 'scms manager issue';
  const audit = (action: string, details: Record<string, unknown>, files: Record<string, Uint8Array> = {}) => {
    const fileHashes: Record<string, string> = {};
    for (const [p, d] of Object.entries(files)) fileHashes[p] = sha256Hex(d);
    appendAudit(td.paths.audit, { actor, action, details, fileHashes }, clock);
  };

  const ks = keystoreBase(td.manifest.keystore);
  const icaComp = td.manifest.components.find((c) => c.name === ica.name)!;
  const keyPrefix = ks.scheme === 'pkcs11' ? `scms-${td.manifest.ctlSeriesId.slice(0, 8)}-` : '';
  const stores = openStores(opts.dir, opts.keyStoreOptions);
  try {
    const store = await stores.storeFor(ks.uri);
    const profile = certificateProfile(opts.role, { policy, laId }, { below: opts.curve });
    const key = await store.generate(`${keyPrefix}${name}`, profile.curve);
    audit('key.generate', { name, curve: profile.curve, uri: key.uri, publicKey: toHex(key.publicKey) });
    const encKey = profile.encryptionKey ? await store.generate(`${keyPrefix}${name}-enc`, 'P-256') : undefined;
    if (encKey) audit('key.generate', { name: `${name}-enc`, curve: 'P-256', uri: encKey.uri, publicKey: toHex(encKey.publicKey) });

    const icaHandle = await stores.open(icaComp.keyUri);
    const icaSigner = keyStoreSigner(stores, icaHandle);
    const tbs = buildTbsCertificate({
      id: { name },
      crlSeries: DEFAULT_CRL_SERIES,
      validity: { start: now, durationSeconds: opts.validitySeconds ?? profile.validitySeconds },
      region: { countries: td.manifest.regions },
      appPermissions: profile.appPermissions,
      certIssuePermissions: [...(profile.certIssuePermissions ?? []), ...(opts.extraIssuePermissions ?? [])],
      certRequestPermissions: profile.certRequestPermissions,
      flags: profile.flags,
      encryptionKey: encKey ? { curve: 'nistP256', publicKey: encKey.publicKey } : undefined,
      verifyKey: { curve: curveOfKeyStore(key.curve), publicKey: key.publicKey },
    });
    if (tbs.certIssuePermissions?.length === 0) delete tbs.certIssuePermissions;
    const cert: Certificate = await issueExplicitCertificate({ tbs, issuer: ica.certificate, signer: icaSigner });
    const bytes = encodeCertificate(cert);

    const w = new TrustDirWriter(opts.dir, td.manifest);
    const rel = certificateFilePath(name);
    w.put(rel, bytes, { role: 'certificate', name, certRole: opts.role });
    const hashedId8 = toHex(certificateHashedId8(cert));
    w.addComponent({
      name,
      role: opts.role,
      certificate: rel,
      hashedId8,
      issuer: ica.name,
      keyUri: key.uri,
      ...(encKey ? { encryptionKeyUri: encKey.uri } : {}),
      ...(laId !== undefined && opts.role === 'la' ? { laId } : {}),
    });
    audit('certificate.issue', { name, role: opts.role, issuer: ica.name, hashedId8 }, { [`trust/${rel}`]: bytes });

    // CCF: the latest CTL and every certificate issued below a root.
    const files = [`trust/${rel}`];
    const latest = td.ctls[td.ctls.length - 1];
    if (latest) {
      const others = [
        ...td.certificates.filter((c) => c.issuer !== 'self' && c.certificate).map((c) => c.certificate!),
        cert,
      ];
      const ccf = buildCcf(latest.bytes, others);
      w.put('ccf.oer', ccf, { role: 'ccf' });
      audit('ccf.write', { added: name }, { 'trust/ccf.oer': ccf });
      files.push('trust/ccf.oer');
    }
    w.writeManifest(clock.now());
    files.push('trust/manifest.json', 'audit.log');
    return {
      name,
      role: opts.role,
      certificate: rel,
      hashedId8,
      keyUri: key.uri,
      ...(encKey ? { encryptionKeyUri: encKey.uri } : {}),
      files,
    };
  } finally {
    await stores.close();
  }
}
