/**
 * `scms manager init`: the key ceremony. Generates the keys (soft keystore or PKCS#11), issues the
 * certificate hierarchy (electors, root, ICA, components; profiles.ts), the first CTL (1609.2.1
 * clause 6.3.5 / CertManagement MultiSignedCtl, sequence 1, all electors and the root, signed by
 * every elector), the certificate chain file, the global and local policy files signed by the PG,
 * and writes the trust directory (trust-dir.ts) with an audit record for every action.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import type { Certificate } from '../../codec/index.js';
import { toHex } from '../../crypto/bytes.js';
import { type KeyHandle, type KeyStore, KeyStores, type KeyStoreOptions } from '../../hsm/index.js';
import { buildTbsCertificate, certificateHashedId8, encodeCertificate, issueExplicitCertificate } from '../../security/certificate.js';
import { curveOfKeyStore, keyStoreSigner, type Signer } from '../../security/signer.js';
import type { Clock } from '../../security/time.js';
import { appendAudit, sha256Hex } from './audit.js';
import { buildCcf } from './ccf.js';
import { signPolicy } from './policy-sign.js';
import {
  certificateProfile,
  type ComponentRole,
  DEFAULT_COMPONENTS,
  DEFAULT_CRL_SERIES,
  type KeyCurve,
  type Role,
} from './profiles.js';
import { buildFirstCtl } from './init-ctl.js';
import {
  certificateFilePath,
  ctlFilePath,
  type FileRole,
  type Manifest,
  MANIFEST_FORMAT,
  MANIFEST_VERSION,
  TrustDirWriter,
  trustDirPaths,
} from './trust-dir.js';
import {
  type GlobalPolicy,
  type LocalPolicy,
  loadPolicyTemplate,
  parseGlobalPolicy,
  parseLocalPolicy,
  renderPolicy,
} from '../policy/index.js';

export interface ComponentSpec {
  name: string;
  role: ComponentRole;
  laId?: number;
}

export interface InitOptions {
  dir: string;
  /** 'file' (soft keystore in DIR/keys) or a PKCS#11 token URI 'pkcs11:token=...'. */
  keystore: string;
  /** Secrets / module for the key stores (default: env SCMS_KEYSTORE_PASSPHRASE, SCMS_PKCS11_PIN, SCMS_PKCS11_MODULE). */
  keyStoreOptions?: Omit<KeyStoreOptions, 'baseDir' | 'keyDir'>;
  electors?: number;
  quorum?: number;
  /** CountryOnly codes (1609.2 6.4.23), e.g. [840]. */
  regions?: number[];
  /** Validity per role, seconds (defaults: profiles.ts DEFAULT_VALIDITY). */
  validity?: Partial<Record<Role, number>>;
  /** Components under the ICA (default: ECA, ACA, RA, LA1, LA2, MA, CRL signer, PG). */
  components?: ComponentSpec[];
  /** Curves: electors and root ('top'), ICA and below ('below'); both default P-256 (profiles.ts). */
  curves?: { top?: KeyCurve; below?: KeyCurve };
  /** Base URL of the local policy's component URLs. */
  baseUrl?: string;
  policyId?: string;
  /** Values of the global policy template's optional placeholders (templates/policies/README.md), e.g. `{ raMinWait: 5 }`. */
  globalPolicyValues?: Readonly<Record<string, unknown>>;
  clock: Clock;
  /** Audit actor (operator name). */
  actor?: string;
  /** Prefix of key names (PKCS#11 labels must be unique on a token); default '' (soft) or 'scms-<id>-' (PKCS#11). */
  keyPrefix?: string;
  onProgress?: (event: { step: string; detail?: string }) => void;
}

export interface WrittenFile {
  /** Path relative to DIR. */
  path: string;
  role: FileRole | 'manifest' | 'keystore' | 'audit';
  name?: string;
}

export interface InitResult {
  dir: string;
  manifest: Manifest;
  files: WrittenFile[];
}

export class InitError extends Error {
  override readonly name = 'InitError';
}

/** One issued certificate and its keys, during the ceremony. */
interface Issued {
  name: string;
  role: Role;
  issuer: string;
  cert: Certificate;
  bytes: Uint8Array;
  signer: Signer;
  key: KeyHandle;
  encKey?: KeyHandle;
  laId?: number;
}

const DEFAULT_REGIONS = [840];

/** Normalizes the keystore argument: 'file' / 'soft' -> soft store in DIR/keys; 'pkcs11:...' as is. */
export function keystoreBase(keystore: string): { scheme: 'file' | 'pkcs11'; uri: string } {
  if (keystore === 'file' || keystore === 'soft' || keystore === 'file:keys') return { scheme: 'file', uri: 'file:keys' };
  if (/^pkcs11:/i.test(keystore)) return { scheme: 'pkcs11', uri: keystore };
  throw new InitError(`--keystore must be 'file' or a PKCS#11 URI 'pkcs11:token=...', not '${keystore}'`);
}

/** Opens the key stores for a trust directory (soft: base dir DIR, keys in DIR/keys). */
export function openStores(dir: string, opts: InitOptions['keyStoreOptions'] = {}): KeyStores {
  return new KeyStores({ ...opts, baseDir: dir, keyDir: 'keys' });
}

/** Validates the ceremony parameters; returns the problems (empty = fine). */
export function checkInitParameters(o: { electors: number; quorum: number; regions: number[]; components: ComponentSpec[] }): string[] {
  const p: string[] = [];
  if (!Number.isInteger(o.electors) || o.electors < 1 || o.electors > 255) p.push('electors must be an integer 1..255');
  if (!Number.isInteger(o.quorum) || o.quorum < 1 || o.quorum > o.electors) p.push(`quorum must be an integer 1..${o.electors} (the number of electors)`);
  if (o.regions.length === 0 || o.regions.some((r) => !Number.isInteger(r) || r < 1 || r > 999)) {
    p.push('regions must be country codes 1..999 (UN M.49 / ISO 3166-1 numeric, e.g. 840)');
  }
  if (new Set(o.regions).size !== o.regions.length) p.push('regions must be distinct');
  const names = new Set<string>();
  for (const c of o.components) {
    if (!/^[a-z0-9][a-z0-9-]{0,40}$/.test(c.name)) p.push(`component name '${c.name}' must match [a-z0-9][a-z0-9-]*`);
    if (names.has(c.name)) p.push(`component name '${c.name}' is used twice`);
    names.add(c.name);
    if (c.role === 'la' && c.laId === undefined) p.push(`LA '${c.name}' needs an laId`);
  }
  if (!o.components.some((c) => c.role === 'pg')) p.push('a policy generator (pg) is required: it signs the policy files');
  return p;
}

export async function initTrustDir(opts: InitOptions): Promise<InitResult> {
  const clock = opts.clock;
  const now = clock.now();
  const electors = opts.electors ?? 3;
  const quorum = opts.quorum ?? Math.min(2, electors);
  const regions = opts.regions ?? DEFAULT_REGIONS;
  const components = opts.components ?? DEFAULT_COMPONENTS.map((c) => ({ ...c }));
  const problems = checkInitParameters({ electors, quorum, regions, components });
  if (problems.length) throw new InitError(problems.join('; '));
  const ks = keystoreBase(opts.keystore);
  const progress = opts.onProgress ?? (() => undefined);
  const actor = opts.actor ?? 'scms manager init';

  const paths = trustDirPaths(opts.dir);
  if (existsSync(paths.manifest)) throw new InitError(`${paths.manifest} exists: ${opts.dir} is already a trust directory`);
  if (existsSync(paths.keys) && readdirSync(paths.keys).length > 0) throw new InitError(`${paths.keys} is not empty`);
  mkdirSync(paths.trust, { recursive: true });
  const audit = (action: string, details: Record<string, unknown> = {}, files: Record<string, Uint8Array | string> = {}) => {
    const fileHashes: Record<string, string> = {};
    for (const [p, d] of Object.entries(files)) fileHashes[p] = sha256Hex(d);
    appendAudit(paths.audit, { actor, action, details, fileHashes }, clock);
  };

  const ctlSeriesId = randomBytes(8);
  const seriesHex = toHex(ctlSeriesId);
  const keyPrefix = opts.keyPrefix ?? (ks.scheme === 'pkcs11' ? `scms-${seriesHex.slice(0, 8)}-` : '');
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    createdAt: now.toISOString(),
    updatedAt: now.toISOString(),
    keystore: ks.uri,
    regions,
    quorum,
    ctlSeriesId: seriesHex,
    components: [],
    ctls: [],
    files: [],
  };
  const w = new TrustDirWriter(opts.dir, manifest);
  const written: WrittenFile[] = [];
  const put = (rel: string, data: Uint8Array | string, role: FileRole, extra: { name?: string; certRole?: Role } = {}) => {
    const abs = w.put(rel, data, { role, ...extra });
    written.push({ path: w.relToDir(abs), role, ...(extra.name ? { name: extra.name } : {}) });
    return abs;
  };

  audit('init.begin', {
    dir: opts.dir,
    keystore: ks.uri,
    electors,
    quorum,
    regions,
    components: components.map((c) => ({ name: c.name, role: c.role, ...(c.laId !== undefined ? { laId: c.laId } : {}) })),
    ctlSeriesId: seriesHex,
  });

  // Policy first: the profiles take the application PSIDs from it.
  progress({ step: 'policy', detail: 'rendering global and local policy from templates/policies' });
  const issueTime = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const policyId = opts.policyId ?? `scms-${seriesHex.slice(0, 8)}`;
  const globalPolicy: GlobalPolicy = parseGlobalPolicy(
    renderPolicy(loadPolicyTemplate('global'), { ...opts.globalPolicyValues, policyId, issueTime, regions, iPeriodEpoch: issueTime }),
  );
  const localPolicy: LocalPolicy = parseLocalPolicy(
    renderPolicy(loadPolicyTemplate('local'), {
      policyId: `${policyId}-local`,
      globalPolicyId: policyId,
      issueTime,
      baseUrl: opts.baseUrl ?? 'http://localhost:8080',
    }),
    globalPolicy,
  );

  const stores = openStores(opts.dir, opts.keyStoreOptions);
  try {
    const store: KeyStore = await stores.storeFor(ks.uri);
    const validity = (role: Role) => opts.validity?.[role] ?? certificateProfile(role, { policy: globalPolicy, laId: 0 }, opts.curves).validitySeconds;

    const generate = async (name: string, curve: KeyCurve): Promise<KeyHandle> => {
      const h = await store.generate(`${keyPrefix}${name}`, curve);
      audit('key.generate', { name, curve, uri: h.uri, publicKey: toHex(h.publicKey) });
      return h;
    };

    const issue = async (spec: { name: string; role: Role; laId?: number }, issuer: Issued | 'self'): Promise<Issued> => {
      const profile = certificateProfile(spec.role, { policy: globalPolicy, laId: spec.laId }, opts.curves);
      progress({ step: 'certificate', detail: `${spec.name} (${spec.role})` });
      const key = await generate(spec.name, profile.curve);
      const encKey = profile.encryptionKey ? await generate(`${spec.name}-enc`, 'P-256') : undefined;
      const signer = keyStoreSigner(stores, key);
      const tbs = buildTbsCertificate({
        id: { name: spec.name },
        crlSeries: spec.role === 'elector' || spec.role === 'root' ? 0 : DEFAULT_CRL_SERIES,
        validity: { start: now, durationSeconds: validity(spec.role) },
        region: { countries: regions },
        appPermissions: profile.appPermissions,
        certIssuePermissions: profile.certIssuePermissions,
        certRequestPermissions: profile.certRequestPermissions,
      flags: profile.flags,
        encryptionKey: encKey ? { curve: 'nistP256', publicKey: encKey.publicKey } : undefined,
        verifyKey: { curve: curveOfKeyStore(key.curve), publicKey: key.publicKey },
      });
      const cert = await issueExplicitCertificate({
        tbs,
        issuer: issuer === 'self' ? 'self' : issuer.cert,
        signer: issuer === 'self' ? signer : issuer.signer,
      });
      const bytes = encodeCertificate(cert);
      const rel = certificateFilePath(spec.name);
      put(rel, bytes, 'certificate', { name: spec.name, certRole: spec.role });
      const issuerName = issuer === 'self' ? 'self' : issuer.name;
      w.addComponent({
        name: spec.name,
        role: spec.role,
        certificate: rel,
        hashedId8: toHex(certificateHashedId8(cert)),
        issuer: issuerName,
        keyUri: key.uri,
        ...(encKey ? { encryptionKeyUri: encKey.uri } : {}),
        ...(spec.laId !== undefined ? { laId: spec.laId } : {}),
      });
      audit('certificate.issue', { name: spec.name, role: spec.role, issuer: issuerName, hashedId8: toHex(certificateHashedId8(cert)) }, { [`trust/${rel}`]: bytes });
      return { name: spec.name, role: spec.role, issuer: issuerName, cert, bytes, signer, key, encKey, laId: spec.laId };
    };

    // 1. Electors and root (self-signed).
    progress({ step: 'electors', detail: `${electors} elector certificates` });
    const electorList: Issued[] = [];
    for (let i = 1; i <= electors; i++) electorList.push(await issue({ name: `elector-${i}`, role: 'elector' }, 'self'));
    progress({ step: 'root', detail: 'root CA certificate' });
    const root = await issue({ name: 'root', role: 'root' }, 'self');

    // 2. ICA under the root, components under the ICA.
    progress({ step: 'ica', detail: 'intermediate CA certificate' });
    const ica = await issue({ name: 'ica', role: 'ica' }, root);
    progress({ step: 'components', detail: components.map((c) => c.name).join(', ') });
    const issued: Issued[] = [];
    for (const c of components) issued.push(await issue(c, ica));

    // 3. First CTL: every elector and the root approved, sequence 1, signed by every elector.
    progress({ step: 'ctl', detail: `CTL series ${seriesHex}, sequence 1, quorum ${quorum}, ${electors} signatures` });
    const ctlBytes = await buildFirstCtl({
      ctlSeriesId,
      quorum,
      electors: electorList.map((e) => ({ certificate: e.cert, signer: e.signer })),
      roots: [root.cert],
      clock,
    });
    const ctlRel = ctlFilePath(seriesHex, 1);
    put(ctlRel, ctlBytes, 'ctl');
    manifest.ctls.push({ path: ctlRel, ctlSeriesId: seriesHex, sequenceNumber: 1 });
    audit('ctl.sign', { ctlSeriesId: seriesHex, sequenceNumber: 1, quorum, signers: electorList.map((e) => e.name) }, { [`trust/${ctlRel}`]: ctlBytes });

    // 4. Certificate chain file.
    progress({ step: 'ccf', detail: 'certificate chain file' });
    const ccf = buildCcf(ctlBytes, [ica.cert, ...issued.map((i) => i.cert)]);
    put('ccf.oer', ccf, 'ccf');
    audit('ccf.write', { others: [ica.name, ...issued.map((i) => i.name)] }, { 'trust/ccf.oer': ccf });

    // 5. Policy files signed by the PG.
    progress({ step: 'policy', detail: 'global and local policy signed by the PG' });
    const pg = issued.find((i) => i.role === 'pg')!;
    for (const [kind, policy] of [
      ['global', globalPolicy],
      ['local', localPolicy],
    ] as const) {
      const json = JSON.stringify(policy, null, 2) + '\n';
      const signed = await signPolicy({ policy, pgCertificate: pg.cert, signer: pg.signer, clock });
      put(`policy/${kind}-policy.json`, json, `${kind}-policy`);
      put(`policy/${kind}-policy.oer`, signed, `${kind}-policy-signed`);
      audit('policy.sign', { kind, policyId: policy.policyId, signer: pg.name }, {
        [`trust/policy/${kind}-policy.json`]: json,
        [`trust/policy/${kind}-policy.oer`]: signed,
      });
    }

    // 6. Manifest.
    const manifestPath = w.writeManifest(clock.now());
    written.push({ path: w.relToDir(manifestPath), role: 'manifest' });
    if (ks.scheme === 'file') written.push({ path: 'keys/', role: 'keystore' });
    audit('init.complete', { files: manifest.files.length, components: manifest.components.length }, {
      'trust/manifest.json': JSON.stringify(manifest, null, 2) + '\n',
    });
    written.push({ path: 'audit.log', role: 'audit' });
    progress({ step: 'done', detail: opts.dir });
    return { dir: opts.dir, manifest, files: written };
  } catch (e) {
    try {
      audit('init.failed', { error: (e as Error).message });
    } catch {
      // the audit log itself may be the problem
    }
    throw e;
  } finally {
    await stores.close();
  }
}

