// provisionBatch with the trust directory's keys on a PKCS#11 token (SoftHSM2): the ECA signs the explicit
// enrollment certificates inside the token (its key is not extractable); with --form explicit the ACA signs explicit
// pseudonym and identification certificates inside the token; implicit ones (ECQV needs the ACA's scalar) are
// refused up front.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Certificate as CertificateCodec, type Certificate } from '../../../src/codec/index.js';
import { bytesToBigInt, fromHex, toHex } from '../../../src/crypto/bytes.js';
import { processAuthorizationResponse } from '../../../src/engine/ee/authorization.js';
import { generateKeyPair } from '../../../src/engine/ee/keys.js';
import { initTrustDir, openStores } from '../../../src/engine/manager/init.js';
import { loadTrustDir, type TrustDir } from '../../../src/engine/manager/trust-dir.js';
import { decodeChain, type BatchManifest, type BundleManifest } from '../../../src/engine/provision/bundle.js';
import { ProvisionError, provisionBatch, type ProvisionBatchOptions } from '../../../src/engine/provision/batch.js';
import { openComponents } from '../../../src/engine/provision/components.js';
import { certificateKeyPairMatches } from '../../../src/security/certificate.js';
import { verifyCertificateChain } from '../../../src/security/chain.js';
import { ManualClock } from '../../../src/security/time.js';
import { createSoftHsmToken, type SoftHsmToken } from '../../helpers/softhsm.js';
import { linkageValues, openBundleKeys, readJson } from './fixtures.js';

const clock = new ManualClock(new Date());
const bin = new URL('../../../bin/run.js', import.meta.url).pathname;
let token: SoftHsmToken;
let base: string;
let trustDir: string;
let trust: TrustDir;
let ks: { pin: string; modulePath: string };
const transport = generateKeyPair('nistP256');

beforeAll(async () => {
  token = createSoftHsmToken({ label: 'scms-provision-test' });
  base = mkdtempSync(join(tmpdir(), 'scms-provision-p11-'));
  trustDir = join(base, 'scms');
  ks = { pin: token.pin, modulePath: token.modulePath };
  await initTrustDir({ dir: trustDir, keystore: `pkcs11:token=${token.label}`, keyStoreOptions: ks, electors: 1, quorum: 1, clock: new ManualClock(new Date(clock.now().getTime() - 3_600_000).toISOString()) });
  trust = loadTrustDir(trustDir);
}, 120_000);
afterAll(() => {
  token?.cleanup();
  if (base) rmSync(base, { recursive: true, force: true });
});

const certAt = (dir: string, file: string): Certificate => CertificateCodec.decode(new Uint8Array(readFileSync(join(dir, file))));
const chainAt = (dir: string, file: string): Certificate[] => decodeChain(new Uint8Array(readFileSync(join(dir, file))));
const generated = (name: string, o: Partial<ProvisionBatchOptions>): ProvisionBatchOptions => ({
  trust,
  stores: openStores(trustDir, ks),
  dataDir: join(base, `data-${name}`),
  outDir: join(base, `out-${name}`),
  count: 2,
  deviceType: 'obu',
  pseudonymWeeks: 0,
  transportKey: { curve: 'nistP256', publicKey: transport.publicKey },
  statePassphrase: 'state passphrase',
  clock,
  ...o,
});

describe('provisionBatch with the ECA key on a PKCS#11 token', () => {
  it('generated and factory keys: explicit enrollment certificates signed in the token, chains verify', async () => {
    expect(trust.byName.get('eca')!.keyUri).toMatch(/^pkcs11:/);
    const roots = trust.roots.map((r) => r.certificate!);

    const gen = await provisionBatch(generated('gen', { count: 3 }));
    expect(gen).toMatchObject({ issued: 3, certificates: 3 });

    const devices = [0, 1].map(() => ({ canonical: generateKeyPair('nistP256'), enrollment: generateKeyPair('nistP256') }));
    const fac = await provisionBatch({
      trust,
      stores: openStores(trustDir, ks),
      dataDir: join(base, 'data-gen'),
      outDir: join(base, 'out-factory'),
      count: 2,
      deviceType: 'obu',
      pseudonymWeeks: 0,
      deviceKeys: devices.map((d) => ({ canonicalPublicKey: toHex(d.canonical.publicKey), enrollmentPublicKey: toHex(d.enrollment.publicKey) })),
      clock,
    });
    expect(fac).toMatchObject({ issued: 2, certificates: 2 });

    for (const [summary, out] of [
      [gen, 'out-gen'],
      [fac, 'out-factory'],
    ] as const) {
      for (const [n, d] of readJson<BatchManifest>(summary.batchManifest).devices.entries()) {
        const dir = join(base, out, d.dir);
        expect(readdirSync(dir)).toContain('enrollment.oer');
        const cert = CertificateCodec.decode(new Uint8Array(readFileSync(join(dir, 'enrollment.oer'))));
        const chain = decodeChain(new Uint8Array(readFileSync(join(dir, 'eca-chain.oer'))));
        expect(verifyCertificateChain([cert, ...chain], { trustAnchors: roots, clock }).ok).toBe(true);
        if (out === 'out-factory') expect(certificateKeyPairMatches(cert, devices[n]!.enrollment.privateKey, chain)).toBe(true);
      }
    }
  }, 180_000);

  it('implicit pseudonym / identification certificates with the ACA key in the token: refused up front (exit 2), nothing issued', async () => {
    expect(trust.byName.get('aca')!.keyUri).toMatch(/^pkcs11:/);
    for (const o of [{ pseudonymWeeks: 1 }, { deviceType: 'rsu' as const, identificationWeeks: 4 }]) {
      const opts = generated('implicit', o);
      await expect(provisionBatch(opts)).rejects.toThrow(ProvisionError);
      await expect(provisionBatch(opts)).rejects.toThrow(/need the ACA's private scalar \(ECQV\).*use --form explicit; nothing issued/);
      // nothing recorded: no data directory (no registration, no batch state), no output
      expect(existsSync(opts.dataDir)).toBe(false);
      expect(existsSync(opts.outDir)).toBe(false);
    }
    // the command: exit 2 with the reason
    const transportFile = join(base, 'transport.pub');
    writeFileSync(transportFile, toHex(transport.publicKey));
    const r = spawnSync(
      process.execPath,
      [bin, 'provision', 'batch', '--trust', trustDir, '--data', join(base, 'data-cli'), '--out', join(base, 'out-cli'), '--count', '1', '--type', 'obu', '--pseudonyms-weeks', '1', '--transport-key', transportFile],
      { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', SCMS_PKCS11_PIN: ks.pin, SCMS_PKCS11_MODULE: ks.modulePath, SCMS_PROVISION_PASSPHRASE: 'state passphrase' } },
    );
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/implicit pseudonym certificates need the ACA's private scalar/);
    expect(existsSync(join(base, 'out-cli'))).toBe(false);
  }, 120_000);

  it('--form explicit: butterfly pseudonyms signed in the token (generated and factory keys): chain to the CTL root, b + c matches, linkage values from the LA seeds', async () => {
    const roots = trust.roots.map((r) => r.certificate!);
    const gen = await provisionBatch(generated('explicit', { pseudonymWeeks: 1, form: 'explicit' }));
    expect(gen.issued).toBe(2);
    const bf = { caterpillar: generateKeyPair('nistP256'), expansion: new Uint8Array(randomBytes(16)) };
    const fac = await provisionBatch({
      trust,
      stores: openStores(trustDir, ks),
      dataDir: join(base, 'data-explicit'),
      outDir: join(base, 'out-explicit-factory'),
      count: 1,
      deviceType: 'obu',
      pseudonymWeeks: 1,
      form: 'explicit',
      deviceKeys: [{ canonicalPublicKey: toHex(generateKeyPair('nistP256').publicKey), caterpillarPublicKey: toHex(bf.caterpillar.publicKey), expansionKey: toHex(bf.expansion) }],
      clock,
    });
    expect(fac.issued).toBe(1);
    expect(readJson<BatchManifest>(gen.batchManifest)).toMatchObject({ form: 'explicit', pseudonymWeeks: 1 });

    const c = await openComponents({ trust, stores: openStores(trustDir, ks), dataDir: join(base, 'data-explicit'), clock, env: {}, pseudonyms: true });
    try {
      let checked = 0;
      for (const d of readJson<BatchManifest>(gen.batchManifest).devices) {
        const dir = join(base, 'out-explicit', d.dir);
        const m = readJson<BundleManifest>(join(dir, 'manifest.json'));
        expect(m).toMatchObject({ steps: ['registered', 'enrolled', 'pseudonyms'], form: 'explicit' });
        const acaChain = chainAt(dir, 'aca-chain.oer');
        const keys = await openBundleKeys(dir, transport);
        expect(keys.butterfly).toMatchObject({ type: 'explicit', variant: 'unified' });
        const pseudos = m.certificates.filter((x) => x.kind === 'pseudonym');
        expect(pseudos.length).toBe(20);
        for (const p of pseudos) {
          const cert = certAt(dir, p.file);
          expect(cert.type).toBe('explicit');
          expect(verifyCertificateChain([cert, ...acaChain], { trustAnchors: roots, clock, skipCurrentValidity: true }).ok).toBe(true);
          const k = keys.pseudonyms.find((s) => s.i === p.i && s.j === p.j)!;
          expect(certificateKeyPairMatches(cert, bytesToBigInt(fromHex(k.privateKey)))).toBe(true);
          const lv = await linkageValues(c, d.deviceId, cert, p.i!, p.j!);
          expect(lv.got).toBe(lv.expected);
          checked++;
        }
      }
      // factory keys: the device opens its responses with its caterpillar key (explicit: d = b + c)
      const d = readJson<BatchManifest>(fac.batchManifest).devices[0]!;
      const dir = join(base, 'out-explicit-factory', d.dir);
      const m = readJson<BundleManifest>(join(dir, 'manifest.json'));
      expect(m.form).toBe('explicit');
      expect(m.pseudonymResponses!.length).toBe(20);
      for (const r of m.pseudonymResponses!) {
        const got = await processAuthorizationResponse({
          secrets: { curve: 'nistP256', type: 'explicit', params: { variant: 'unified', caterpillarPrivate: bf.caterpillar.privateKey, expansionKey: bf.expansion } },
          i: r.i,
          j: r.j,
          kind: r.kind as 'private',
          response: new Uint8Array(readFileSync(join(dir, r.file))),
          acaChain: chainAt(dir, 'aca-chain.oer'),
          trustAnchors: roots,
          clock,
        });
        expect(got.certificate.type).toBe('explicit');
        expect(certificateKeyPairMatches(got.certificate, got.privateKey)).toBe(true);
        const lv = await linkageValues(c, d.deviceId, got.certificate, r.i, r.j);
        expect(lv.got).toBe(lv.expected);
        checked++;
      }
      expect(checked).toBe(60);
    } finally {
      await c.close();
    }
  }, 180_000);

  it('--form explicit --identification-weeks: RSU identification certificates signed in the token', async () => {
    const roots = trust.roots.map((r) => r.certificate!);
    const s = await provisionBatch(generated('ident', { deviceType: 'rsu', identificationWeeks: 4, form: 'explicit' }));
    expect(s).toMatchObject({ issued: 2, certificates: 4 });
    for (const d of readJson<BatchManifest>(s.batchManifest).devices) {
      const dir = join(base, 'out-ident', d.dir);
      const m = readJson<BundleManifest>(join(dir, 'manifest.json'));
      expect(m).toMatchObject({ steps: ['registered', 'enrolled', 'identification'], form: 'explicit' });
      const [ic] = m.certificates.filter((x) => x.kind === 'identification');
      const cert = certAt(dir, ic!.file);
      expect(cert.type).toBe('explicit');
      expect(Object.keys(cert.toBeSigned.id)).toEqual(['none']);
      expect(cert.toBeSigned.appPermissions!.map((p) => Number(p.psid))).toEqual([130, 131]);
      expect(verifyCertificateChain([cert, ...chainAt(dir, 'aca-chain.oer')], { trustAnchors: roots, clock }).ok).toBe(true);
      const keys = await openBundleKeys(dir, transport);
      expect(certificateKeyPairMatches(cert, bytesToBigInt(fromHex(keys.identification![0]!.privateKey)))).toBe(true);
    }
  }, 120_000);
});
