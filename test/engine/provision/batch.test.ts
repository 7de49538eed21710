// provisionBatch in process over a `manager init` trust directory: generated keys with pseudonyms, factory keys.
import { randomBytes } from 'node:crypto';
import { unzipSync } from 'fflate';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Certificate as CertificateCodec, type Certificate } from '../../../src/codec/index.js';
import { bytesToBigInt, fromHex, toHex } from '../../../src/crypto/bytes.js';
import { linkageValue, preLinkageValue } from '../../../src/crypto/linkage.js';
import { laIdOctets } from '../../../src/engine/la/la.js';
import { openComponents } from '../../../src/engine/provision/components.js';
import { nativeKeyPair, provisionBatch } from '../../../src/engine/provision/batch.js';
import { unpackBundle } from '../../../src/engine/provision/unpack.js';
import { EeStateDir } from '../../../src/engine/ee/state.js';
import { decodeChain, type BatchManifest, type BundleManifest, type BundleSecrets } from '../../../src/engine/provision/bundle.js';
import { SymmetricEncryptionKey as SymmetricEncryptionKeyCodec } from '../../../src/codec/gen/Ieee1609Dot2BaseTypes.js';
import { canonicalIdOf, compressedPublicKey } from '../../../src/engine/ee/keys.js';
import { processAuthorizationResponse } from '../../../src/engine/ee/authorization.js';
import type { ButterflySecrets } from '../../../src/engine/ee/butterfly.js';
import { generateKeyPair, keyPairFromPrivate } from '../../../src/engine/ee/keys.js';
import { certificateHashedId8, certificateKeyPairMatches } from '../../../src/security/certificate.js';
import { verifyCertificateChain } from '../../../src/security/chain.js';
import { decryptData } from '../../../src/security/encryption.js';
import { ManualClock } from '../../../src/security/time.js';
import { PASS, provisionFixture, readJson, stores, type ProvisionFixture } from './fixtures.js';

const clock = new ManualClock(new Date());
let f: ProvisionFixture;
beforeAll(async () => {
  f = await provisionFixture(clock);
}, 120_000);
afterAll(() => f?.cleanup());

const certAt = (dir: string, file: string): Certificate => CertificateCodec.decode(new Uint8Array(readFileSync(join(dir, file))));
const chainAt = (dir: string, file: string): Certificate[] => decodeChain(new Uint8Array(readFileSync(join(dir, file))));

/** keys.oer opened as the factory does: transport-key.oer with the transport private key, then keys.oer. */
async function openKeys(dir: string): Promise<BundleSecrets> {
  const wrapped = await decryptData(new Uint8Array(readFileSync(join(dir, 'transport-key.oer'))), [
    { kind: 'rek', publicKey: { curve: 'nistP256', publicKey: f.transport.publicKey }, privateKey: f.transport.privateKey },
  ]);
  const key = (SymmetricEncryptionKeyCodec.decode(wrapped) as { aes128Ccm: Uint8Array }).aes128Ccm;
  const plain = await decryptData(new Uint8Array(readFileSync(join(dir, 'keys.oer'))), [{ kind: 'symmetric', key }]);
  return JSON.parse(new TextDecoder().decode(plain)) as BundleSecrets;
}

describe('provisionBatch, generated keys', () => {
  it('5 OBUs with 1 week of pseudonyms: bundles verify, keys decrypt and match, linkage values from the LA seeds, RA records', async () => {
    const data = join(f.base, 'data-gen');
    const out = join(f.base, 'out-gen');
    const env = { SCMS_KEYSTORE_PASSPHRASE: PASS };
    const opts = {
      trust: f.trust,
      stores: stores(f.trustDir),
      dataDir: data,
      outDir: out,
      count: 5,
      deviceType: 'obu' as const,
      pseudonymWeeks: 1,
      chunkSize: 2, // three chunks: one PseudonymService batch per chunk
      transportKey: { curve: 'nistP256' as const, publicKey: f.transport.publicKey },
      statePassphrase: PASS,
      clock,
      env,
    };
    const summary = await provisionBatch(opts);
    expect(summary.issued).toBe(5);
    expect(summary.alreadyDone).toBe(0);

    const batch = readJson<BatchManifest>(summary.batchManifest);
    expect(batch.devices.map((d) => d.index)).toEqual([0, 1, 2, 3, 4]);
    expect(readdirSync(out).filter((n) => n.startsWith('.'))).toEqual([]);
    expect(readdirSync(out).filter((n) => !n.startsWith('batch-')).sort()).toEqual(batch.devices.map((d) => d.deviceId).sort());

    const c = await openComponents({ trust: f.trust, stores: stores(f.trustDir), dataDir: data, clock, env, pseudonyms: true });
    try {
      const hashes = new Set<string>();
      for (const d of batch.devices) {
        const dir = join(out, d.dir);
        const m = readJson<BundleManifest>(join(dir, 'manifest.json'));
        expect(m.keys).toBe('generated');
        expect(m.steps).toEqual(['registered', 'enrolled', 'pseudonyms']);
        expect(readdirSync(dir).sort()).toEqual(['aca-chain.oer', 'eca-chain.oer', 'enrollment.oer', 'keys.oer', 'manifest.json', 'pseudonyms', 'transport-key.oer']);
        const ecaChain = chainAt(dir, 'eca-chain.oer');
        const acaChain = chainAt(dir, 'aca-chain.oer');
        // the batch-wide files are one copy hard-linked into the 5 bundles (the shared directory is gone)
        for (const file of ['eca-chain.oer', 'aca-chain.oer', 'transport-key.oer']) expect(statSync(join(dir, file)).nlink).toBe(5);
        const enrollment = certAt(dir, 'enrollment.oer');
        // chains to the CTL root
        expect(verifyCertificateChain([enrollment, ...ecaChain], { trustAnchors: c.roots, clock }).ok).toBe(true);

        // keys: decrypt with the transport private key; each matches its certificate
        const secrets = await openKeys(dir);
        expect(secrets.canonicalPrivateKey).toMatch(/^[0-9a-f]{64}$/);
        expect(secrets.enrollmentPrivateKey).toMatch(/^[0-9a-f]{64}$/);
        expect(canonicalIdOf('nistP256', keyPairFromPrivate('nistP256', bytesToBigInt(fromHex(secrets.canonicalPrivateKey))).publicKey)).toBe(m.canonicalId);
        expect(certificateKeyPairMatches(enrollment, bytesToBigInt(fromHex(secrets.enrollmentPrivateKey)), ecaChain)).toBe(true);
        // no private key in clear anywhere in the bundle
        for (const file of ['manifest.json', 'enrollment.oer', 'keys.oer', 'transport-key.oer']) {
          expect(toHex(new Uint8Array(readFileSync(join(dir, file))))).not.toContain(secrets.enrollmentPrivateKey);
        }

        const pseudos = m.certificates.filter((x) => x.kind === 'pseudonym');
        expect(pseudos.length).toBe(secrets.pseudonyms.length);
        expect(pseudos.length).toBeGreaterThan(0);
        const chain1 = (await c.pseudonyms!.store.chainId(d.deviceId, 1))!;
        const chain2 = (await c.pseudonyms!.store.chainId(d.deviceId, 2))!;
        for (const p of pseudos) {
          const cert = certAt(dir, p.file);
          expect(toHex(certificateHashedId8(cert))).toBe(p.hashedId8);
          hashes.add(p.hashedId8);
          expect(verifyCertificateChain([cert, ...acaChain], { trustAnchors: c.roots, clock, skipCurrentValidity: true }).ok).toBe(true);
          const k = secrets.pseudonyms.find((s) => s.i === p.i && s.j === p.j)!;
          expect(certificateKeyPairMatches(cert, bytesToBigInt(fromHex(k.privateKey)), acaChain)).toBe(true);
          const s1 = await c.pseudonyms!.la1.seedsForRevocation(chain1, p.i!);
          const s2 = await c.pseudonyms!.la2.seedsForRevocation(chain2, p.i!);
          const lv = linkageValue(preLinkageValue(laIdOctets(s1.laId), s1.linkageSeed, p.j!), preLinkageValue(laIdOctets(s2.laId), s2.linkageSeed, p.j!));
          const id = cert.toBeSigned.id as { linkageData: { iCert: number; 'linkage-value': Uint8Array } };
          expect(toHex(id.linkageData['linkage-value'])).toBe(toHex(lv));
        }

        // RA records: enrolled, with the enrollment certificate and the authorization batch
        const dev = (await c.registration.get(d.deviceId))!;
        expect(dev.state).toBe('enrolled');
        expect(dev.canonicalId).toBe(m.canonicalId);
        const recs = await c.registration.certificates(d.deviceId);
        expect(recs.map((r) => r.kind).sort()).toEqual(['authorization-batch', 'enrollment']);
        expect(recs.find((r) => r.kind === 'enrollment')!.hashedId8).toBe(toHex(certificateHashedId8(enrollment)));
        expect(recs.find((r) => r.kind === 'authorization-batch')!.hashedId8).toBe(m.authorizationRequestHash);
        // recorded like an online enrollment: the ECA's request and certificate rows, the RA's events
        const issued = await c.ecaStore.certificatesOf(d.deviceId);
        expect(issued.map((r) => [r.hashedId8, r.requestHash, r.type])).toEqual([[toHex(certificateHashedId8(enrollment)), m.enrollmentRequestHash, 'explicit']]);
        expect((await c.registration.events(d.deviceId)).map((e) => `${e.kind}/${e.actor}`)).toEqual(['registered/provision', 'enrolled/eca', 'certificate/ra']);
      }
      expect(hashes.size).toBe(batch.devices.reduce((n, d) => n + d.certificates - 1, 0));
      expect((await c.ecaStore.counts()).certificates).toBe(5);
    } finally {
      await c.close();
    }

    // a bundle unpacked into the `scms ee simulate --state` layout: keys in the state's encrypted keystore
    const stateDir = new EeStateDir(join(f.base, 'ee-state'), { passphrase: 'device passphrase', scrypt: { N: 1024 } });
    try {
      const d0 = batch.devices[0]!;
      const st = await unpackBundle({
        bundleDir: join(out, d0.dir),
        transport: { privateKey: f.transport.privateKey, publicKey: { curve: 'nistP256', publicKey: f.transport.publicKey } },
        state: stateDir,
        raUrl: 'http://127.0.0.1:1',
        ecaUrl: 'http://127.0.0.1:1',
        clock,
      });
      const loaded = stateDir.load();
      expect(loaded).toEqual(JSON.parse(JSON.stringify(st)));
      expect(loaded.registration!.deviceId).toBe(d0.deviceId);
      const canonical = keyPairFromPrivate('nistP256', await stateDir.getScalar(loaded.canonical!.keyUri));
      expect(canonicalIdOf('nistP256', canonical.publicKey)).toBe(loaded.canonical!.canonicalId);
      const issuers = loaded.enrollment ? [0, 1, 2, 3].map((k) => `certs/enrollment-issuer-${k}.oer`).filter((p) => existsSync(join(stateDir.dir, p))) : [];
      expect(certificateKeyPairMatches(CertificateCodec.decode(stateDir.readFile(loaded.enrollment!.file)), await stateDir.getScalar(loaded.enrollment!.keyUri), issuers.map((p) => CertificateCodec.decode(stateDir.readFile(p))))).toBe(true);
      expect(loaded.certificates).toHaveLength(d0.certificates - 1);
      const acaChain = stateDir.listFiles('certs').filter((p) => p.includes('aca-chain-')).map((p) => CertificateCodec.decode(stateDir.readFile(p)));
      for (const sc of loaded.certificates) {
        expect(certificateKeyPairMatches(CertificateCodec.decode(stateDir.readFile(sc.file)), await stateDir.getScalar(sc.keyUri), acaChain)).toBe(true);
      }
    } finally {
      await stateDir.close();
    }

    // re-running the finished batch changes nothing
    const before = readFileSync(summary.batchManifest, 'utf8');
    const again = await provisionBatch(opts);
    expect(again.issued).toBe(0);
    expect(again.alreadyDone).toBe(5);
    expect(readFileSync(summary.batchManifest, 'utf8')).toBe(before);
  }, 120_000);
});

describe('provisionBatch, factory keys', () => {
  it('registers the devices; bundles hold public material only', async () => {
    const data = join(f.base, 'data-factory');
    const out = join(f.base, 'out-factory');
    const keys = [0, 1, 2].map(() => generateKeyPair('nistP256'));
    const summary = await provisionBatch({
      trust: f.trust,
      stores: stores(f.trustDir),
      dataDir: data,
      outDir: out,
      count: 3,
      deviceType: 'rsu',
      pseudonymWeeks: 0,
      deviceKeys: keys.map((k) => ({ canonicalPublicKey: toHex(k.publicKey) })),
      clock,
    });
    expect(summary.issued).toBe(3);
    const c = await openComponents({ trust: f.trust, stores: stores(f.trustDir), dataDir: data, clock, env: {}, pseudonyms: false });
    try {
      const batch = readJson<BatchManifest>(summary.batchManifest);
      for (const [n, d] of batch.devices.entries()) {
        const dir = join(out, d.dir);
        expect(readdirSync(dir)).toEqual(['manifest.json']);
        const m = readJson<BundleManifest>(join(dir, 'manifest.json'));
        expect(m.keys).toBe('factory');
        expect(m.steps).toEqual(['registered']);
        expect(m.canonicalId).toBe(canonicalIdOf('nistP256', keys[n]!.publicKey));
        const dev = (await c.registration.get(d.deviceId))!;
        expect(dev.state).toBe('registered');
        expect(dev.deviceType).toBe('rsu');
      }
      expect((await c.ecaStore.counts()).certificates).toBe(0);
    } finally {
      await c.close();
    }
  }, 60_000);
});

describe('provisionBatch, factory keys with butterfly keys', () => {
  it('registers and has pseudonyms issued; the device opens the responses with its caterpillar key; no private key in the bundle', async () => {
    const data = join(f.base, 'data-factory-bf');
    const out = join(f.base, 'out-factory-bf');
    const env = { SCMS_KEYSTORE_PASSPHRASE: PASS };
    const devices = [0, 1].map(() => ({ canonical: generateKeyPair('nistP256'), enrollment: generateKeyPair('nistP256'), caterpillar: generateKeyPair('nistP256'), expansion: new Uint8Array(randomBytes(16)) }));
    const summary = await provisionBatch({
      trust: f.trust,
      stores: stores(f.trustDir),
      dataDir: data,
      outDir: out,
      count: 2,
      deviceType: 'obu',
      pseudonymWeeks: 1,
      // device 1 also gives its enrollment public key: enrollment certificate and pseudonyms
      deviceKeys: devices.map((d, n) => ({
        canonicalPublicKey: toHex(d.canonical.publicKey),
        ...(n === 1 ? { enrollmentPublicKey: toHex(d.enrollment.publicKey) } : {}),
        caterpillarPublicKey: toHex(d.caterpillar.publicKey),
        expansionKey: toHex(d.expansion),
      })),
      clock,
      env,
    });
    expect(summary.issued).toBe(2);
    const c = await openComponents({ trust: f.trust, stores: stores(f.trustDir), dataDir: data, clock, env, pseudonyms: true });
    try {
      const batch = readJson<BatchManifest>(summary.batchManifest);
      for (const [n, d] of batch.devices.entries()) {
        const dir = join(out, d.dir);
        const m = readJson<BundleManifest>(join(dir, 'manifest.json'));
        expect(m.keys).toBe('factory');
        if (n === 1) {
          expect(m.steps).toEqual(['registered', 'enrolled', 'pseudonyms']);
          expect(readdirSync(dir).sort()).toEqual(['aca-chain.oer', 'eca-chain.oer', 'enrollment.oer', 'manifest.json', 'responses']);
          expect(certificateKeyPairMatches(certAt(dir, 'enrollment.oer'), devices[1]!.enrollment.privateKey, chainAt(dir, 'eca-chain.oer'))).toBe(true);
        } else {
          expect(m.steps).toEqual(['registered', 'pseudonyms']);
          expect(readdirSync(dir).sort()).toEqual(['aca-chain.oer', 'manifest.json', 'responses']);
        }
        const acaChain = chainAt(dir, 'aca-chain.oer');
        const responses = m.pseudonymResponses!;
        expect(responses.length).toBeGreaterThan(0);
        const secrets: ButterflySecrets = {
          curve: 'nistP256',
          type: 'implicit',
          params: { variant: 'unified', caterpillarPrivate: devices[n]!.caterpillar.privateKey, expansionKey: devices[n]!.expansion },
        };
        const chain1 = (await c.pseudonyms!.store.chainId(d.deviceId, 1))!;
        const chain2 = (await c.pseudonyms!.store.chainId(d.deviceId, 2))!;
        for (const r of responses) {
          const cert = await processAuthorizationResponse({
            secrets,
            i: r.i,
            j: r.j,
            kind: r.kind as 'private' | 'cubk',
            response: new Uint8Array(readFileSync(join(dir, r.file))),
            acaChain,
            trustAnchors: c.roots,
            clock,
          });
          const s1 = await c.pseudonyms!.la1.seedsForRevocation(chain1, r.i);
          const s2 = await c.pseudonyms!.la2.seedsForRevocation(chain2, r.i);
          const lv = linkageValue(preLinkageValue(laIdOctets(s1.laId), s1.linkageSeed, r.j), preLinkageValue(laIdOctets(s2.laId), s2.linkageSeed, r.j));
          const id = cert.certificate.toBeSigned.id as { linkageData: { 'linkage-value': Uint8Array } };
          expect(toHex(id.linkageData['linkage-value'])).toBe(toHex(lv));
        }
        const dev = (await c.registration.get(d.deviceId))!;
        expect(dev.state).toBe(n === 1 ? 'enrolled' : 'registered');
        expect((await c.registration.certificates(d.deviceId)).map((x) => x.kind).sort()).toEqual(n === 1 ? ['authorization-batch', 'enrollment'] : ['authorization-batch']);
        // one week: 20 certificates (each opened above with the device's caterpillar key and checked)
        expect(responses.length).toBe(20);
      }
    } finally {
      await c.close();
    }
  }, 120_000);
});

describe('provisionBatch, factory keys with enrollment public keys', () => {
  it('the ECA issues explicit enrollment certificates for the devices\' own keys through the factory path, recorded like online enrollments; bundles hold public material only', async () => {
    const data = join(f.base, 'data-factory-enrol');
    const out = join(f.base, 'out-factory-enrol');
    const env = { SCMS_KEYSTORE_PASSPHRASE: PASS };
    const devices = [0, 1, 2].map(() => ({ canonical: generateKeyPair('nistP256'), enrollment: generateKeyPair('nistP256') }));
    const deviceKeys = devices.map((d, n) => ({
      // compressed and uncompressed encodings are both accepted
      canonicalPublicKey: toHex(n % 2 ? d.canonical.publicKey : compressedPublicKey('nistP256', d.canonical.publicKey)),
      enrollmentPublicKey: toHex(d.enrollment.publicKey),
    }));
    const opts = { trust: f.trust, stores: stores(f.trustDir), dataDir: data, outDir: out, count: 3, deviceType: 'obu' as const, pseudonymWeeks: 0, deviceKeys, clock, env };
    const summary = await provisionBatch(opts);
    expect(summary.issued).toBe(3);
    expect(summary.certificates).toBe(3);
    const c = await openComponents({ trust: f.trust, stores: stores(f.trustDir), dataDir: data, clock, env, pseudonyms: false });
    try {
      const batch = readJson<BatchManifest>(summary.batchManifest);
      for (const [n, d] of batch.devices.entries()) {
        const dir = join(out, d.dir);
        expect(readdirSync(dir).sort()).toEqual(['eca-chain.oer', 'enrollment.oer', 'manifest.json']);
        const m = readJson<BundleManifest>(join(dir, 'manifest.json'));
        expect(m.keys).toBe('factory');
        expect(m.steps).toEqual(['registered', 'enrolled']);
        expect(m.canonicalId).toBe(canonicalIdOf('nistP256', devices[n]!.canonical.publicKey));
        const enrollment = certAt(dir, 'enrollment.oer');
        const ecaChain = chainAt(dir, 'eca-chain.oer');
        expect(verifyCertificateChain([enrollment, ...ecaChain], { trustAnchors: c.roots, clock }).ok).toBe(true);
        // the certificate is for the device's own enrollment key: the device's private key matches it
        expect(certificateKeyPairMatches(enrollment, devices[n]!.enrollment.privateKey, ecaChain)).toBe(true);
        expect(certificateKeyPairMatches(enrollment, devices[n]!.canonical.privateKey, ecaChain)).toBe(false);
        const dev = (await c.registration.get(d.deviceId))!;
        expect(dev.state).toBe('enrolled');
        expect((await c.registration.events(d.deviceId)).map((e) => `${e.kind}/${e.actor}`)).toEqual(['registered/provision', 'enrolled/eca']);
        const issued = await c.ecaStore.certificatesOf(d.deviceId);
        expect(issued.map((r) => [r.hashedId8, r.requestHash])).toEqual([[toHex(certificateHashedId8(enrollment)), m.enrollmentRequestHash]]);
      }
      expect(await c.ecaStore.counts()).toEqual({ requests: 3, certificates: 3 });
    } finally {
      await c.close();
    }
    // a finished batch re-run issues nothing
    const again = await provisionBatch({ ...opts, stores: stores(f.trustDir) });
    expect(again).toMatchObject({ issued: 0, alreadyDone: 3 });

    // a crash right after the ECA issued (before the batch state knows): the re-run takes the ECA's records
    const data2 = join(f.base, 'data-factory-enrol-crash');
    const opts2 = { ...opts, stores: stores(f.trustDir), dataDir: data2, outDir: join(f.base, 'out-factory-enrol-crash'), chunkSize: 2 };
    const crash = (point: string, at: number) => (p: string, i: number) => {
      if (p === point && i === at) throw new Error(`crash at ${p}:${i}`);
    };
    await expect(provisionBatch({ ...opts2, hook: crash('enrollment-issued', 2) })).rejects.toThrow('crash at enrollment-issued:2');
    const resumed = await provisionBatch({ ...opts2, stores: stores(f.trustDir) });
    expect(resumed).toMatchObject({ issued: 1, alreadyDone: 2 });
    const c2 = await openComponents({ trust: f.trust, stores: stores(f.trustDir), dataDir: data2, clock, env, pseudonyms: false });
    try {
      expect(await c2.ecaStore.counts()).toEqual({ requests: 3, certificates: 3 });
      for (const d of readJson<BatchManifest>(resumed.batchManifest).devices) {
        expect((await c2.registration.events(d.deviceId)).map((e) => e.kind)).toEqual(['registered', 'enrolled']);
      }
    } finally {
      await c2.close();
    }

    // a bad factory key is refused before anything is recorded
    await expect(
      provisionBatch({ ...opts, stores: stores(f.trustDir), outDir: join(f.base, 'out-factory-bad'), deviceKeys: [{ canonicalPublicKey: `04${'11'.repeat(64)}`, enrollmentPublicKey: deviceKeys[0]!.enrollmentPublicKey }] }),
    ).rejects.toThrow(/device key 0: canonicalPublicKey: not a point on P-256/);
  }, 120_000);
});

describe('provisionBatch, --region and --psid', () => {
  it('certificates carry exactly the requested region and PSIDs (enrollment and pseudonyms)', async () => {
    const policy = f.trust.globalPolicy!.json;
    expect(policy.regions).toEqual([840, 124]);
    expect(policy.deviceTypes.OBU.pseudonym.map((p) => p.psid)).toEqual([32, 38]);
    const data = join(f.base, 'data-region');
    const out = join(f.base, 'out-region');
    const env = { SCMS_KEYSTORE_PASSPHRASE: PASS };
    const summary = await provisionBatch({
      trust: f.trust,
      stores: stores(f.trustDir),
      dataDir: data,
      outDir: out,
      count: 2,
      deviceType: 'obu',
      region: [124],
      psids: [38],
      pseudonymWeeks: 1,
      transportKey: { curve: 'nistP256', publicKey: f.transport.publicKey },
      statePassphrase: PASS,
      clock,
      env,
    });
    const batch = readJson<BatchManifest>(summary.batchManifest);
    expect(batch.region).toEqual([124]);
    expect(batch.psids).toEqual([38]);
    const c = await openComponents({ trust: f.trust, stores: stores(f.trustDir), dataDir: data, clock, env, pseudonyms: false });
    try {
      for (const d of batch.devices) {
        const dir = join(out, d.dir);
        const m = readJson<BundleManifest>(join(dir, 'manifest.json'));
        const enrollment = certAt(dir, 'enrollment.oer');
        expect(enrollment.toBeSigned.region).toEqual({ identifiedRegion: [{ countryOnly: 124 }] });
        const groups = enrollment.toBeSigned.certRequestPermissions!;
        expect(groups.map((g) => (g.subjectPermissions as { explicit: Array<{ psid: bigint }> }).explicit.map((p) => p.psid))).toEqual([[38n]]);
        const pseudos = m.certificates.filter((x) => x.kind === 'pseudonym');
        expect(pseudos.length).toBeGreaterThan(0);
        for (const p of pseudos) {
          const cert = certAt(dir, p.file);
          expect(cert.toBeSigned.region).toEqual({ identifiedRegion: [{ countryOnly: 124 }] });
          expect(cert.toBeSigned.appPermissions!.map((a) => a.psid)).toEqual([38n]);
        }
        expect((await c.registration.get(d.deviceId))!.region).toEqual([124]);
      }
    } finally {
      await c.close();
    }
  }, 120_000);

  it('a region or PSID outside the policy is refused with a clear error and nothing is issued', async () => {
    const data = join(f.base, 'data-refused');
    const out = join(f.base, 'out-refused');
    const base = {
      trust: f.trust,
      stores: stores(f.trustDir),
      dataDir: data,
      outDir: out,
      count: 2,
      deviceType: 'obu' as const,
      pseudonymWeeks: 0,
      transportKey: { curve: 'nistP256' as const, publicKey: f.transport.publicKey },
      statePassphrase: PASS,
      clock,
      env: { SCMS_KEYSTORE_PASSPHRASE: PASS },
    };
    await expect(provisionBatch({ ...base, region: [840, 250] })).rejects.toThrow('region 250 is not in the policy regions (840, 124): nothing issued');
    // 130 is an RSU PSID (identification), not an OBU one
    await expect(provisionBatch({ ...base, psids: [32, 130] })).rejects.toThrow("psid 130 is not in the policy's enrollment PSIDs for OBU devices (32, 38): nothing issued");
    await expect(provisionBatch({ ...base, deviceType: 'rsu', psids: [130], pseudonymWeeks: 1 })).rejects.toThrow(/psid 130 is not in the policy's pseudonym PSIDs for RSU devices \(none\)/);
    // nothing registered, enrolled or written
    const c = await openComponents({ trust: f.trust, stores: stores(f.trustDir), dataDir: data, clock, env: base.env, pseudonyms: false });
    try {
      expect(await c.registration.list()).toEqual([]);
      expect(await c.ecaStore.counts()).toEqual({ requests: 0, certificates: 0 });
    } finally {
      await c.close();
    }
    expect(existsSync(out) ? readdirSync(out) : []).toEqual([]);
  }, 60_000);
});

describe('provisionBatch, --archive zip', () => {
  it('one zip per device with the same files; unpacked into an ee simulate state', async () => {
    const out = join(f.base, 'out-zip');
    const summary = await provisionBatch({
      trust: f.trust,
      stores: stores(f.trustDir),
      dataDir: join(f.base, 'data-zip'),
      outDir: out,
      count: 2,
      deviceType: 'obu',
      pseudonymWeeks: 0,
      archive: 'zip',
      transportKey: { curve: 'nistP256', publicKey: f.transport.publicKey },
      statePassphrase: PASS,
      clock,
    });
    const batch = readJson<BatchManifest>(summary.batchManifest);
    expect(readdirSync(out).filter((n) => !n.startsWith('batch-')).sort()).toEqual(batch.devices.map((d) => `${d.deviceId}.zip`).sort());
    const d0 = batch.devices[0]!;
    expect(d0.dir).toBe(`${d0.deviceId}.zip`);
    const entries = unzipSync(new Uint8Array(readFileSync(join(out, d0.dir))));
    expect(Object.keys(entries).sort()).toEqual(['eca-chain.oer', 'enrollment.oer', 'keys.oer', 'manifest.json', 'transport-key.oer']);
    const stateDir = new EeStateDir(join(f.base, 'ee-state-zip'), { passphrase: 'device passphrase', scrypt: { N: 1024 } });
    try {
      const st = await unpackBundle({
        bundleDir: join(out, d0.dir),
        transport: { privateKey: f.transport.privateKey, publicKey: { curve: 'nistP256', publicKey: f.transport.publicKey } },
        state: stateDir,
        raUrl: 'http://127.0.0.1:1',
        ecaUrl: 'http://127.0.0.1:1',
        clock,
      });
      expect(st.registration!.deviceId).toBe(d0.deviceId);
      const enrollment = CertificateCodec.decode(entries['enrollment.oer']!);
      expect(certificateKeyPairMatches(enrollment, await stateDir.getScalar(st.enrollment!.keyUri), decodeChain(entries['eca-chain.oer']!))).toBe(true);
    } finally {
      await stateDir.close();
    }
  }, 60_000);
});

describe('generated keys', () => {
  it('nativeKeyPair: 32-octet private keys (leading zero octets kept), public key = dG, no repeats', () => {
    const seen = new Set<string>();
    for (let n = 0; n < 3000; n++) {
      const k = nativeKeyPair();
      expect(k.d.length).toBe(32);
      seen.add(toHex(k.d));
      if (k.d[0] === 0 || n < 20) expect(toHex(keyPairFromPrivate('nistP256', bytesToBigInt(k.d)).publicKey)).toBe(toHex(k.publicKey));
    }
    expect(seen.size).toBe(3000);
  });
});

describe('LA master secrets', () => {
  it('are derived as serve all derives them', async () => {
    const { laMasterSecret: served } = await import('../../../src/engine/serve.js');
    const { laMasterSecret: ours } = await import('../../../src/engine/provision/components.js');
    const ks = stores(f.trustDir);
    for (const name of ['la1', 'la2']) {
      const e = f.trust.byName.get(name)!;
      expect(toHex(await ours(ks, e.keyUri, e.laId!))).toBe(toHex(await served(ks, e.keyUri, e.laId!)));
    }
    await ks.close();
  });
});
