// provisionBatch --identification-weeks: RSU identification (application) certificates through the RA's kind logic
// (ra/kinds.ts, PseudonymService.processKinds), generated and factory keys, resumable; the refusals up front.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Certificate as CertificateCodec, type Certificate } from '../../../src/codec/index.js';
import { bytesToBigInt, fromHex, toHex } from '../../../src/crypto/bytes.js';
import { generateKeyPair } from '../../../src/engine/ee/keys.js';
import { processNonButterflyResponse } from '../../../src/engine/ee/kinds.js';
import { EeStateDir } from '../../../src/engine/ee/state.js';
import { decodeChain, type BatchManifest, type BundleManifest } from '../../../src/engine/provision/bundle.js';
import { ProvisionError, provisionBatch, type ProvisionBatchOptions } from '../../../src/engine/provision/batch.js';
import { openComponents } from '../../../src/engine/provision/components.js';
import { unpackBundle } from '../../../src/engine/provision/unpack.js';
import { certificateKeyPairMatches } from '../../../src/security/certificate.js';
import { verifyCertificateChain } from '../../../src/security/chain.js';
import { ManualClock } from '../../../src/security/time.js';
import { openBundleKeys, PASS, provisionFixture, readJson, stores, type ProvisionFixture } from './fixtures.js';

const clock = new ManualClock(new Date());
const env = { SCMS_KEYSTORE_PASSPHRASE: PASS };
let f: ProvisionFixture;
beforeAll(async () => {
  f = await provisionFixture(clock);
}, 120_000);
afterAll(() => f?.cleanup());

const certAt = (dir: string, file: string): Certificate => CertificateCodec.decode(new Uint8Array(readFileSync(join(dir, file))));
const chainAt = (dir: string, file: string): Certificate[] => decodeChain(new Uint8Array(readFileSync(join(dir, file))));
const generated = (name: string, o: Partial<ProvisionBatchOptions> = {}): ProvisionBatchOptions => ({
  trust: f.trust,
  stores: stores(f.trustDir),
  dataDir: join(f.base, `data-${name}`),
  outDir: join(f.base, `out-${name}`),
  count: 3,
  deviceType: 'rsu',
  pseudonymWeeks: 0,
  identificationWeeks: 4,
  transportKey: { curve: 'nistP256', publicKey: f.transport.publicKey },
  statePassphrase: PASS,
  clock,
  env,
  ...o,
});

describe('provisionBatch --identification-weeks', () => {
  it('generated keys: one implicit identification certificate per RSU (policy PSIDs, 4 weeks), key reconstructed and matching, RA records; resumes after a crash without issuing twice; unpacked into an ee simulate state', async () => {
    const opts = generated('gen', { chunkSize: 2 });
    // a crash after the RA / ACA issued the second chunk's certificate, before the batch state recorded it
    await expect(
      provisionBatch({
        ...opts,
        hook: (p, i) => {
          if (p === 'pseudonyms-issued' && i === 2) throw new Error('crash');
        },
      }),
    ).rejects.toThrow('crash');
    const summary = await provisionBatch({ ...opts, stores: stores(f.trustDir) });
    expect(summary).toMatchObject({ issued: 1, alreadyDone: 2, certificates: 6 });
    const batch = readJson<BatchManifest>(summary.batchManifest);
    expect(batch).toMatchObject({ deviceType: 'rsu', identificationWeeks: 4, form: 'implicit', psids: [130, 131] });

    const c = await openComponents({ trust: f.trust, stores: stores(f.trustDir), dataDir: opts.dataDir, clock, env, pseudonyms: true });
    try {
      // one ACA response per device: the resumed run found the stored one
      const stored = await c.pseudonyms!.store.allResponses();
      expect(stored.length).toBe(3);
      expect(stored.every((r) => r.kind === 'private' && r.j === 0)).toBe(true);
      for (const d of batch.devices) {
        const dir = join(opts.outDir, d.dir);
        const m = readJson<BundleManifest>(join(dir, 'manifest.json'));
        expect(m).toMatchObject({ steps: ['registered', 'enrolled', 'identification'], form: 'implicit' });
        expect(readdirSync(dir).sort()).toEqual(['aca-chain.oer', 'eca-chain.oer', 'enrollment.oer', 'identification', 'keys.oer', 'manifest.json', 'transport-key.oer']);
        const ids = m.certificates.filter((x) => x.kind === 'identification');
        expect(ids).toHaveLength(1);
        const cert = certAt(dir, ids[0]!.file);
        expect(cert.type).toBe('implicit');
        expect(Object.keys(cert.toBeSigned.id)).toEqual(['none']);
        expect(cert.toBeSigned.appPermissions!.map((p) => Number(p.psid))).toEqual([130, 131]);
        expect(cert.toBeSigned.region).toEqual({ identifiedRegion: [{ countryOnly: 840 }, { countryOnly: 124 }] });
        expect(cert.toBeSigned.validityPeriod.duration).toEqual({ hours: 4 * 7 * 24 });
        const acaChain = chainAt(dir, 'aca-chain.oer');
        expect(verifyCertificateChain([cert, ...acaChain], { trustAnchors: c.roots, clock }).ok).toBe(true);
        const keys = await openBundleKeys(dir, f.transport);
        expect(keys.pseudonyms).toEqual([]);
        expect(keys.identification!.map((k) => [k.i, k.j])).toEqual([[ids[0]!.i, 0]]);
        // ECQV: the private key reconstructed by the tool (e*k + s) belongs to the certificate's reconstructed key
        expect(certificateKeyPairMatches(cert, bytesToBigInt(fromHex(keys.identification![0]!.privateKey)), acaChain)).toBe(true);
        const recs = await c.registration.certificates(d.deviceId);
        expect(recs.map((r) => r.kind).sort()).toEqual(['authorization-batch', 'enrollment']);
        expect(recs.find((r) => r.kind === 'authorization-batch')!.hashedId8).toBe(m.authorizationRequestHash);
        expect(stored.filter((r) => toHex(r.requestHash) === m.authorizationRequestHash)).toHaveLength(1);
      }
    } finally {
      await c.close();
    }

    // unpacked: the simulator's identification layout and configuration
    const sd = new EeStateDir(join(f.base, 'ee-rsu'), { passphrase: 'device', scrypt: { N: 1024 } });
    try {
      const d = batch.devices[0]!;
      const st = await unpackBundle({
        bundleDir: join(opts.outDir, d.dir),
        transport: { privateKey: f.transport.privateKey, publicKey: { curve: 'nistP256', publicKey: f.transport.publicKey } },
        state: sd,
        raUrl: 'http://127.0.0.1:1',
        ecaUrl: 'http://127.0.0.1:1',
        clock,
      });
      expect(st.config).toMatchObject({ deviceType: 'rsu', cert: 'identification', form: 'implicit', butterfly: 'none', encrypted: true });
      expect(st.certificates).toHaveLength(1);
      const sc = st.certificates[0]!;
      expect(sc.file).toBe(`certs/identification/${sc.i.toString(16)}_0.oer`);
      const cert = CertificateCodec.decode(sd.readFile(sc.file));
      expect(certificateKeyPairMatches(cert, await sd.getScalar(sc.keyUri), chainAt(join(opts.outDir, d.dir), 'aca-chain.oer'))).toBe(true);
    } finally {
      await sd.close();
    }
  }, 120_000);

  it('factory keys: the device\'s own identification key; the response encrypted to its identificationEncryptionKey, else plain; opened on the device', async () => {
    const devices = [0, 1].map((n) => ({
      canonical: generateKeyPair('nistP256'),
      enrollment: generateKeyPair('nistP256'),
      identification: generateKeyPair('nistP256'),
      ...(n === 0 ? { encryption: generateKeyPair('nistP256') } : {}),
    }));
    const out = join(f.base, 'out-factory');
    const summary = await provisionBatch({
      trust: f.trust,
      stores: stores(f.trustDir),
      dataDir: join(f.base, 'data-factory'),
      outDir: out,
      count: 2,
      deviceType: 'rsu',
      pseudonymWeeks: 0,
      identificationWeeks: 2,
      deviceKeys: devices.map((d) => ({
        canonicalPublicKey: toHex(d.canonical.publicKey),
        enrollmentPublicKey: toHex(d.enrollment.publicKey),
        identificationPublicKey: toHex(d.identification.publicKey),
        ...(d.encryption ? { identificationEncryptionKey: toHex(d.encryption.publicKey) } : {}),
      })),
      clock,
      env,
    });
    expect(summary.issued).toBe(2);
    const roots = f.trust.roots.map((r) => r.certificate!);
    for (const [n, d] of readJson<BatchManifest>(summary.batchManifest).devices.entries()) {
      const dir = join(out, d.dir);
      const m = readJson<BundleManifest>(join(dir, 'manifest.json'));
      expect(m).toMatchObject({ keys: 'factory', steps: ['registered', 'enrolled', 'identification'], form: 'implicit' });
      expect(readdirSync(dir).sort()).toEqual(['aca-chain.oer', 'eca-chain.oer', 'enrollment.oer', 'manifest.json', 'responses']);
      const [r] = m.identificationResponses!;
      expect(m.identificationResponses).toHaveLength(1);
      expect(r!.kind).toBe(n === 0 ? 'private' : 'plain');
      const dev = devices[n]!;
      const opened = await processNonButterflyResponse(
        new Uint8Array(readFileSync(join(dir, r!.file))),
        {
          kind: 'identification',
          form: n === 0 ? 'encrypted' : 'plain',
          type: 'implicit',
          curve: 'nistP256',
          signingPrivate: dev.identification.privateKey,
          ...(dev.encryption ? { encryptionPrivate: dev.encryption.privateKey } : {}),
        },
        { acaChain: chainAt(dir, 'aca-chain.oer'), trustAnchors: roots, clock },
      );
      expect(certificateKeyPairMatches(opened.certificate, opened.privateKey, chainAt(dir, 'aca-chain.oer'))).toBe(true);
      expect(opened.certificate.toBeSigned.validityPeriod.duration).toEqual({ hours: 2 * 7 * 24 });
      if (n === 0) {
        // encrypted to the device: another key cannot open it
        await expect(
          processNonButterflyResponse(new Uint8Array(readFileSync(join(dir, r!.file))), { kind: 'identification', form: 'encrypted', type: 'implicit', curve: 'nistP256', signingPrivate: dev.identification.privateKey, encryptionPrivate: dev.enrollment.privateKey }, { acaChain: chainAt(dir, 'aca-chain.oer'), trustAnchors: roots, clock }),
        ).rejects.toThrow(/decrypt/);
      }
    }
  }, 120_000);

  it('OBUs get identification certificates when the policy grants them identification PSIDs', async () => {
    const policy = f.trust.globalPolicy!.json;
    // a trust directory whose global policy lets OBUs request identification certificates for PSID 38
    const trust = { ...f.trust, globalPolicy: { ...f.trust.globalPolicy!, json: { ...policy, deviceTypes: { ...policy.deviceTypes, OBU: { ...policy.deviceTypes.OBU, identification: [{ psid: 38 }] } } } } };
    const s = await provisionBatch(generated('obu', { trust, deviceType: 'obu', count: 1, form: 'explicit' }));
    const d = readJson<BatchManifest>(s.batchManifest).devices[0]!;
    const dir = join(f.base, 'out-obu', d.dir);
    const m = readJson<BundleManifest>(join(dir, 'manifest.json'));
    expect(m).toMatchObject({ deviceType: 'obu', steps: ['registered', 'enrolled', 'identification'], form: 'explicit' });
    const cert = certAt(dir, m.certificates.find((x) => x.kind === 'identification')!.file);
    expect(cert.type).toBe('explicit');
    expect(cert.toBeSigned.appPermissions!.map((p) => Number(p.psid))).toEqual([38]);
    expect(verifyCertificateChain([cert, ...chainAt(dir, 'aca-chain.oer')], { trustAnchors: f.trust.roots.map((r) => r.certificate!), clock }).ok).toBe(true);
    const keys = await openBundleKeys(dir, f.transport);
    expect(certificateKeyPairMatches(cert, bytesToBigInt(fromHex(keys.identification![0]!.privateKey)))).toBe(true);
  }, 60_000);

  it('refused up front with a clear reason, nothing recorded', async () => {
    const cases: Array<[Partial<ProvisionBatchOptions>, RegExp]> = [
      [{ deviceType: 'obu' }, /the policy grants obu devices no identification PSIDs: nothing issued/],
      [{ identificationWeeks: 53 }, /identification certificates: the RA refuses the request \(400-\d+: requested validity \d+ s exceeds identificationValidity \(31556952 s\)\): nothing issued/],
      [{ pseudonymWeeks: 1 }, /one kind per batch/],
      [{ psids: [130, 132] }, /psid 132 is not in the policy's enrollment PSIDs for RSU devices/],
      [{ deviceKeys: [{ canonicalPublicKey: toHex(generateKeyPair('nistP256').publicKey) }] }, /identification certificates need each device key to come with its identificationPublicKey/],
    ];
    for (const [o, reason] of cases) {
      const opts = generated('refused', o);
      await expect(provisionBatch(opts)).rejects.toThrow(ProvisionError);
      await expect(provisionBatch({ ...opts, stores: stores(f.trustDir) })).rejects.toThrow(reason);
      expect(existsSync(opts.dataDir)).toBe(false);
      expect(existsSync(opts.outDir)).toBe(false);
    }
  }, 60_000);
});
