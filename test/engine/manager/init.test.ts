import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MultiSignedCtlSpdu, SecurityMgmtSsp } from '../../../src/codec/index.js';
import { SoftKeyStore } from '../../../src/hsm/index.js';
import { issueComponent } from '../../../src/engine/manager/issue.js';
import { initTrustDir } from '../../../src/engine/manager/init.js';
import { certificateProfile } from '../../../src/engine/manager/profiles.js';
import { loadTrustDir, readManifest, sha256Hex, TrustDirWriter } from '../../../src/engine/manager/trust-dir.js';
import { verifyTrustDir } from '../../../src/engine/manager/verify.js';
import { buildTbsCertificate, encodeCertificate, issueExplicitCertificate } from '../../../src/security/certificate.js';
import { scalarSigner } from '../../../src/security/signer.js';
import { ManualClock } from '../../../src/security/time.js';
import { mulBase } from '../../../src/crypto/curves.js';
import { verifyExplicitWithNodeCrypto } from '../../helpers/node-crypto-verify.js';

const PASS = 'correct horse battery staple';
const T0 = '2025-03-01T12:00:00Z';
const clock = new ManualClock(T0);
const later = new ManualClock('2025-03-02T12:00:00Z');

function allFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? allFiles(p) : [p];
  });
}

describe('scms manager init (soft keystore) + verify + issue', () => {
  let base: string;
  let dir: string;

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'scms-mgr-'));
    dir = join(base, 'trust-a');
    await initTrustDir({ dir, keystore: 'file', keyStoreOptions: { passphrase: PASS }, electors: 3, quorum: 2, regions: [840, 124], clock });
  }, 60_000);
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it('writes the trust directory and verify accepts it', () => {
    const td = loadTrustDir(dir);
    expect(td.problems).toEqual([]);
    expect(td.electors.map((e) => e.name)).toEqual(['elector-1', 'elector-2', 'elector-3']);
    expect(td.certificates.map((c) => c.name)).toEqual([
      'elector-1', 'elector-2', 'elector-3', 'root', 'ica', 'eca', 'aca', 'ra', 'la1', 'la2', 'ma', 'crl-signer', 'pg',
    ]);
    expect(td.ctls.map((c) => c.path)).toEqual([`ctl/ctl_${td.manifest.ctlSeriesId}_1.oer`]);
    expect(td.globalPolicy?.json.regions).toEqual([840, 124]);
    expect(td.localPolicy?.signed).toBeDefined();
    const report = verifyTrustDir(dir, { clock: later });
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
  });

  it('gives each role its SecurityMgmtSsp, region, encryption key and issue permissions', () => {
    const td = loadTrustDir(dir);
    const ssp = (name: string) => {
      const perms = td.byName.get(name)!.certificate!.toBeSigned.appPermissions!;
      const e = perms.find((p) => p.psid === 35n)!;
      return SecurityMgmtSsp.decode((e.ssp as { opaque: Uint8Array }).opaque);
    };
    expect(ssp('elector-1')).toEqual({ elector: { version: 2 } });
    expect(ssp('root')).toEqual({ root: { version: 2 } });
    expect(ssp('la2')).toEqual({ la: { version: 2, laId: 2 } });
    expect(ssp('pg')).toEqual({ pg: { version: 2 } });
    const tbs = (n: string) => td.byName.get(n)!.certificate!.toBeSigned;
    expect(tbs('root').region).toEqual({ identifiedRegion: [{ countryOnly: 840 }, { countryOnly: 124 }] });
    for (const n of ['ra', 'eca', 'aca', 'la1', 'la2', 'ma']) expect(tbs(n).encryptionKey, n).toBeDefined();
    for (const n of ['pg', 'crl-signer', 'root', 'ica']) expect(tbs(n).encryptionKey, n).toBeUndefined();
    expect(tbs('eca').certIssuePermissions![0]!.eeType).toBe('01000000');
    expect(tbs('aca').certIssuePermissions![0]!.eeType).toBeUndefined(); // DEFAULT {app}
    // 1609.2-2022 6.4.8 flags usesCubk: the ACA answers compact unified butterfly requests; no other role has flags.
    expect(tbs('aca').flags).toBe('10000000');
    for (const n of ['root', 'ica', 'eca', 'ra', 'la1', 'la2', 'ma', 'crl-signer', 'pg']) expect(tbs(n).flags, n).toBeUndefined();
    // manifest holds key URIs, never keys
    const m = readManifest(dir);
    expect(m.components.find((c) => c.name === 'ra')!.keyUri).toBe('file:keys/ra.key');
    expect(m.components.find((c) => c.name === 'ra')!.encryptionKeyUri).toBe('file:keys/ra-enc.key');
  });

  it('every explicit certificate signature verifies with node:crypto (H(H(tbs)||H(issuer)))', () => {
    const td = loadTrustDir(dir);
    for (const c of td.certificates) {
      const cert = c.certificate!;
      const issuer = c.issuer === 'self' ? undefined : td.byName.get(c.issuer)!;
      const ok = verifyExplicitWithNodeCrypto(cert, issuer?.bytes, issuer ? issuer.certificate! : cert);
      expect(ok, c.name).toBe(true);
    }
  });

  it('no file holds a private scalar in plain text', async () => {
    const m = readManifest(dir);
    const store = new SoftKeyStore({ baseDir: dir, passphrase: PASS });
    const needles: Buffer[] = [];
    for (const c of m.components) {
      for (const uri of [c.keyUri, c.encryptionKeyUri].filter((u): u is string => !!u)) {
        const d = await store.exportPrivateScalar(uri);
        const raw = Buffer.from(d.toString(16).padStart(64, '0'), 'hex');
        needles.push(raw, Buffer.from(raw.toString('hex')), Buffer.from(raw.toString('hex').toUpperCase()), Buffer.from(raw.toString('base64')), Buffer.from(d.toString(10)));
      }
    }
    await store.close();
    expect(needles.length).toBeGreaterThan(40);
    for (const f of allFiles(dir)) {
      const data = readFileSync(f);
      for (const n of needles) expect(data.includes(n), `${f} contains a private key`).toBe(false);
    }
  });

  it('issue adds a working second ACA that verify accepts', async () => {
    const r = await issueComponent({ dir, role: 'aca', keyStoreOptions: { passphrase: PASS }, clock });
    expect(r.name).toBe('aca-2');
    const td = loadTrustDir(dir);
    const aca2 = td.byName.get('aca-2')!;
    expect(aca2.issuer).toBe('ica');
    expect(aca2.certificate!.toBeSigned.flags).toBe('10000000');
    expect(verifyExplicitWithNodeCrypto(aca2.certificate!, td.byName.get('ica')!.bytes, td.byName.get('ica')!.certificate!)).toBe(true);
    expect(verifyTrustDir(dir, { clock: later }).problems).toEqual([]);
    expect(readFileSync(join(dir, 'audit.log'), 'utf8')).toContain('"name":"aca-2"');
  });

  describe('verify rejects', () => {
    let n = 0;
    async function freshDir(): Promise<string> {
      const d = join(base, `neg-${++n}`);
      await initTrustDir({ dir: d, keystore: 'file', keyStoreOptions: { passphrase: PASS }, electors: 3, quorum: 2, clock });
      return d;
    }
    function rehash(d: string, rel: string): void {
      const m = readManifest(d);
      const f = m.files.find((x) => x.path === rel)!;
      f.sha256 = sha256Hex(readFileSync(join(d, 'trust', rel)));
      writeFileSync(join(d, 'trust', 'manifest.json'), JSON.stringify(m, null, 2));
    }

    it('a CTL short of the quorum', async () => {
      const d = await freshDir();
      const td = loadTrustDir(d);
      const ctl = td.ctls[0]!;
      const spdu = MultiSignedCtlSpdu.decode(ctl.bytes) as { content: { unsecuredData: { content: { cert: { multiSignedCtl: { signatures: unknown[] } } } } } };
      spdu.content.unsecuredData.content.cert.multiSignedCtl.signatures.splice(1); // keep one of three, quorum 2
      writeFileSync(join(d, 'trust', ctl.path), MultiSignedCtlSpdu.encode(spdu as MultiSignedCtlSpdu));
      rehash(d, ctl.path); // the manifest agrees: only the quorum is wrong
      const r = verifyTrustDir(d, { clock: later });
      expect(r.ok).toBe(false);
      expect(r.problems.some((p) => p.file === `trust/${ctl.path}` && /quorum|signature/i.test(p.reason))).toBe(true);
    }, 30_000);

    it('a certificate with more permissions than its issuer', async () => {
      const d = await freshDir();
      await issueComponent({
        dir: d,
        role: 'aca',
        name: 'greedy',
        keyStoreOptions: { passphrase: PASS },
        clock,
        extraIssuePermissions: [{ psids: [0x7f01], eeType: { app: true } }],
      });
      const r = verifyTrustDir(d, { clock: later });
      expect(r.ok).toBe(false);
      const p = r.problems.filter((x) => x.file === 'trust/certs/greedy.oer');
      expect(p.length).toBeGreaterThan(0);
      expect(p[0]!.reason).toMatch(/more permissions than its issuer/);
      expect(p[0]!.reason).toMatch(/7f01/i);
    }, 30_000);

    it('a tampered certificate file', async () => {
      const d = await freshDir();
      const f = join(d, 'trust', 'certs', 'ra.oer');
      const b = readFileSync(f);
      b[b.length - 5]! ^= 0x01; // inside the signature
      writeFileSync(f, b);
      const r = verifyTrustDir(d, { clock: later });
      expect(r.ok).toBe(false);
      const reasons = r.problems.filter((p) => p.file === 'trust/certs/ra.oer').map((p) => p.reason);
      expect(reasons.some((x) => /modified/.test(x))).toBe(true);
      expect(reasons.some((x) => /signature/.test(x))).toBe(true);
    }, 30_000);

    it('a root missing from the CTL', async () => {
      const d = await freshDir();
      const td = loadTrustDir(d);
      const dKey = 0x1234567890abcdefn;
      const pub = mulBase('nistP256', dKey, false);
      const signer = scalarSigner('nistP256', dKey, pub);
      const profile = certificateProfile('root', { policy: td.globalPolicy!.json });
      const tbs = buildTbsCertificate({
        id: { name: 'rogue-root' },
        validity: { start: clock.now(), durationSeconds: profile.validitySeconds },
        region: { countries: [840] },
        appPermissions: profile.appPermissions,
        certIssuePermissions: profile.certIssuePermissions,
        verifyKey: { curve: 'nistP256', publicKey: pub },
      });
      const cert = await issueExplicitCertificate({ tbs, issuer: 'self', signer });
      const w = new TrustDirWriter(d, td.manifest);
      w.put('certs/rogue-root.oer', encodeCertificate(cert), { role: 'certificate', name: 'rogue-root', certRole: 'root' });
      w.addComponent({ name: 'rogue-root', role: 'root', certificate: 'certs/rogue-root.oer', hashedId8: '00', issuer: 'self', keyUri: 'file:none' });
      w.writeManifest(clock.now());
      const r = verifyTrustDir(d, { clock: later });
      expect(r.problems.filter((p) => p.file === 'trust/certs/rogue-root.oer').map((p) => p.reason)).toContainEqual(
        expect.stringMatching(/root 'rogue-root' is not approved by the latest CTL/),
      );
    }, 30_000);
  });
});
