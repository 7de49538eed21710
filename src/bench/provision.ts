// `scms provision batch` throughput (issue #6): devices/s end to end (provisionBatch over a fresh `manager init`
// trust directory with a soft keystore, SQLite data directory, bundles written and synced, including opening the
// components; after one small warm-up batch) for enrollment-only bundles and for bundles with one week of 20 implicit pseudonym certificates,
// beside the native-crypto ceiling measured in the same run: 1 / sum(count(op) / rate(op)) over the OpenSSL
// (node:crypto) operations a device needs in our pipeline, counted per device below.
import { createCipheriv, createECDH, createHash, randomBytes, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair } from '../crypto/ecdh.js';
import { signingKey, verificationKey } from '../crypto/ecdsa.js';
import { initTrustDir, openStores } from '../engine/manager/init.js';
import { loadTrustDir } from '../engine/manager/trust-dir.js';
import { provisionBatch } from '../engine/provision/batch.js';
import { ManualClock, systemClock } from '../security/time.js';
import { measure, type BenchResult } from './crypto.js';
import type { BenchRow } from './index.js';

type NativeOp = 'keygen' | 'sign' | 'verify' | 'ecdh' | 'fixedBase' | 'aesCcm' | 'sha256';

/** OpenSSL operations per device (see the counts' comments). */
const ENROLLMENT_ONLY: Partial<Record<NativeOp, number>> = {
  keygen: 2, // canonical and enrollment key pairs
  sign: 1, // the ECA signs the explicit enrollment certificate
  aesCcm: 2, // keys.oer: data key wrapped under the batch transport key, the secrets under the data key
  sha256: 4, // canonical id, request digest, tbs hash for the signature, certificate HashedId8
};
const PER_DEVICE_AUTHORIZATION: Partial<Record<NativeOp, number>> = {
  keygen: 2, // caterpillar key; ECIES ephemeral key of the EeRaCertRequestSpdu (encrypted to the RA)
  ecdh: 1, // that ECIES
  sign: 1, // the EeRaCertRequestSpdu, signed with the enrollment key
};
const PER_PSEUDONYM: Partial<Record<NativeOp, number>> = {
  fixedBase: 3, // RA butterfly expansion f(i,j)*G; ACA ECQV k*G; EE key check d*G
  sign: 3, // RaAcaCertRequestSpdu (RA); AcaEeCertResponsePrivateSpdu and AcaRaCertResponseSpdu (ACA)
  verify: 3, // ACA verifies the RA request; RA verifies the ACA response; EE verifies the ACA signature
  keygen: 1, // ACA's ECIES ephemeral key (response encrypted to the cocoon key)
  ecdh: 3, // that ECIES; EE ECIES decryption; EE ECQV reconstruction e*R (variable base)
  aesCcm: 6, // two encrypted PLVs (LA encrypts, ACA decrypts), the response (ACA encrypts, EE decrypts)
};

function add(...parts: Array<[Partial<Record<NativeOp, number>>, number]>): Partial<Record<NativeOp, number>> {
  const out: Partial<Record<NativeOp, number>> = {};
  for (const [counts, times] of parts) for (const [k, v] of Object.entries(counts)) out[k as NativeOp] = (out[k as NativeOp] ?? 0) + v * times;
  return out;
}

/** ops/s of each native operation (node:crypto, P-256), measured now. */
export function nativeRates(ms: number): Record<NativeOp, BenchResult> {
  const kp = generateKeyPair('nistP256');
  const sk = signingKey('nistP256', kp.privateKey);
  const vk = verificationKey('nistP256', kp.publicKey);
  const msg = randomBytes(64);
  const sig = nodeSign('sha256', msg, { key: sk.keyObject, dsaEncoding: 'ieee-p1363' });
  const peer = createECDH('prime256v1');
  peer.generateKeys();
  const peerPub = peer.getPublicKey();
  const me = createECDH('prime256v1');
  me.generateKeys();
  const d = randomBytes(32);
  const key = randomBytes(16);
  const plain = randomBytes(200);
  return {
    keygen: measure('key generation (createECDH generateKeys)', () => {
      const e = createECDH('prime256v1');
      e.generateKeys();
      return e.getPrivateKey();
    }, ms),
    sign: measure('ECDSA sign', () => nodeSign('sha256', msg, { key: sk.keyObject, dsaEncoding: 'ieee-p1363' }), ms),
    verify: measure('ECDSA verify', () => nodeVerify('sha256', msg, { key: vk.keyObject, dsaEncoding: 'ieee-p1363' }, sig), ms),
    ecdh: measure('ECDH', () => me.computeSecret(peerPub), ms),
    fixedBase: measure('d*G', () => {
      const e = createECDH('prime256v1');
      e.setPrivateKey(d);
      return e.getPublicKey();
    }, ms),
    aesCcm: measure('AES-128-CCM 200 B', () => {
      const c = createCipheriv('aes-128-ccm', key, randomBytes(12), { authTagLength: 16 });
      c.update(plain);
      c.final();
      return c.getAuthTag();
    }, ms),
    sha256: measure('SHA-256 200 B', () => createHash('sha256').update(plain).digest(), ms),
  };
}

function ceiling(counts: Partial<Record<NativeOp, number>>, rates: Record<NativeOp, BenchResult>): { name: string; opsPerSecond: number } {
  let seconds = 0;
  for (const [op, n] of Object.entries(counts)) seconds += n / rates[op as NativeOp].opsPerSecond;
  const what = Object.entries(counts)
    .map(([op, n]) => `${n} ${op}`)
    .join(' + ');
  return { name: `native ceiling: ${what} per device`, opsPerSecond: 1 / seconds };
}

export interface ProvisionBenchOptions {
  /** Enrollment-only devices (default from ms: 2 per ms, 500..5000). */
  enrollmentDevices?: number;
  /** Devices with pseudonyms (default from ms: 1 per 40 ms, 20..100). */
  pseudonymDevices?: number;
}

export async function benchProvision(ms = 1000, opts: ProvisionBenchOptions = {}): Promise<BenchRow[]> {
  const base = mkdtempSync(join(tmpdir(), 'scms-bench-provision-'));
  const pass = 'bench';
  try {
    const trustDir = join(base, 'scms');
    await initTrustDir({
      dir: trustDir,
      keystore: 'file',
      keyStoreOptions: { passphrase: pass, scrypt: { N: 1024 } },
      electors: 1,
      quorum: 1,
      clock: new ManualClock(new Date(Date.now() - 3_600_000).toISOString()),
    });
    const trust = loadTrustDir(trustDir);
    const transport = generateKeyPair('nistP256');
    const rateMs = Math.max(150, ms / 6);
    const run = async (name: string, count: number, pseudonymWeeks: number) => {
      const stores = openStores(trustDir, { passphrase: pass });
      // native rates right before and right after the batch: the ceiling is measured in the same window
      const before = nativeRates(rateMs);
      const cpu0 = process.cpuUsage();
      try {
        const summary = await provisionBatch({
          trust,
          stores,
          dataDir: join(base, `data-${name}`),
          outDir: join(base, `out-${name}`),
          count,
          deviceType: 'obu',
          pseudonymWeeks,
          transportKey: { curve: 'nistP256', publicKey: transport.publicKey },
          statePassphrase: pass,
          clock: systemClock,
          env: { SCMS_KEYSTORE_PASSPHRASE: pass },
        });
        const cpu = process.cpuUsage(cpu0);
        const after = nativeRates(rateMs);
        const rates = Object.fromEntries(
          (Object.keys(before) as NativeOp[]).map((k) => [k, { name: before[k].name, opsPerSecond: (before[k].opsPerSecond + after[k].opsPerSecond) / 2 }]),
        ) as Record<NativeOp, BenchResult>;
        return { summary, rates, perCpuSecond: summary.issued / ((cpu.user + cpu.system) / 1e6) };
      } finally {
        await stores.close();
      }
    };
    const n1 = opts.enrollmentDevices ?? Math.min(5000, Math.max(500, Math.round(ms * 2)));
    const n2 = opts.pseudonymDevices ?? Math.min(100, Math.max(20, Math.round(ms / 40)));
    await run('warm-up', 100, 0); // JIT and first-use costs, as measure() warms up
    const enrol = await run('enrollment', n1, 0);
    const pseudo = await run('pseudonyms', n2, 1);
    const perDevice = pseudo.summary.certificates / pseudo.summary.total - 1;
    const c1 = ceiling(ENROLLMENT_ONLY, enrol.rates);
    const c2 = ceiling(add([ENROLLMENT_ONLY, 1], [PER_DEVICE_AUTHORIZATION, 1], [PER_PSEUDONYM, perDevice]), pseudo.rates);
    const e = enrol.summary.devicesPerSecond;
    const p = pseudo.summary.devicesPerSecond;
    return [
      {
        name: `provision batch: enrollment-only bundles, devices/s (${n1} devices, end to end, after a warm-up batch)`,
        opsPerSecond: e,
        baseline: c1,
        ratio: e / c1.opsPerSecond,
        target: '>= 500 devices/s',
        pass: e >= 500,
      },
      {
        name: 'provision batch: enrollment-only, devices per CPU-second of this process',
        opsPerSecond: enrol.perCpuSecond,
        baseline: c1,
        ratio: enrol.perCpuSecond / c1.opsPerSecond,
      },
      {
        name: `provision batch: bundles with 1 week of ${perDevice} implicit pseudonyms, devices/s (${n2} devices)`,
        opsPerSecond: p,
        baseline: c2,
        ratio: p / c2.opsPerSecond,
      },
    ];
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}
