/**
 * Pseudonym pipeline throughput (RA expansion -> LA1/LA2 PLVs -> ACA issuance -> encrypted responses -> RA store),
 * in process on one core: root -> ICA -> ACA (usesCubk), RA, LA1, LA2 with soft scalars in memory and in-memory
 * SQLite stores (set-up as in test/engine/pipeline.test.ts). Batches of 10 EEs x 1 i-period x 20 j.
 *
 * Every row drives the production classes (PseudonymService, LaService, AcaService, PseudonymStore) through
 * processBatch; only the EE-side request creation is outside the timed part. Rows: original and unified explicit,
 * original, unified and compact unified implicit.
 *
 * The native ceiling beside each row is computed from OpenSSL operation rates measured in the same run:
 * per certificate one key operation (explicit: c*G for B + cG; implicit: k*G of ECQV), one ACA ECDSA sign,
 * one ECIES (ephemeral k*G + ECDH) and one AES-128-CCM of the response. Each row also carries (JSON) the native
 * floor of what this pipeline really does per certificate (PipelineRow.floor): two signatures and two
 * verifications of the RA-ACA SPDUs come on top of the ceiling's operations, so the floor is well below it.
 */
import { createCipheriv, createECDH, randomBytes, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import type { Certificate } from '../codec/index.js';
import { bytesToBigInt } from '../crypto/bytes.js';
import type { ButterflyVariant } from '../crypto/butterfly.js';
import { generateKeyPair } from '../crypto/ecdh.js';
import { signingKey, verificationKey } from '../crypto/ecdsa.js';
import { sha256 } from '../crypto/hash.js';
import { AcaService } from '../engine/aca/aca.js';
import { createButterflyRequest } from '../engine/ee/butterfly.js';
import { LaService, LaStore } from '../engine/la/la.js';
import { certificateProfile, type Role } from '../engine/manager/profiles.js';
import { defaultGlobalPolicy, iPeriodParamsOf, type GlobalPolicy } from '../engine/policy/index.js';
import { PseudonymService, PseudonymStore, type PseudonymJob } from '../engine/ra/pseudonym.js';
import { openDatabase } from '../engine/store/index.js';
import { buildTbsCertificate, issueExplicitCertificate } from '../security/certificate.js';
import { scalarSigner, type Signer } from '../security/signer.js';
import { dateToTime32, iPeriodOf, ManualClock } from '../security/time.js';
import { measure, type BenchResult } from './crypto.js';

const START = new Date('2025-01-01T00:00:00Z');
const NOW = new Date('2025-03-01T00:00:00Z');
const EES = 10;
const J = 20;

interface Entity {
  d: bigint;
  signer: Signer;
  encD?: bigint;
  cert: Certificate;
}

function key(): { d: bigint; publicKey: Uint8Array; signer: Signer } {
  const kp = generateKeyPair('nistP256');
  const d = bytesToBigInt(kp.privateKey);
  return { d, publicKey: kp.publicKey, signer: scalarSigner('nistP256', d, kp.publicKey) };
}

async function issue(role: Role, policy: GlobalPolicy, issuer: Entity | 'self', name: string, extra: { laId?: number } = {}): Promise<Entity> {
  const p = certificateProfile(role, { policy, ...(extra.laId !== undefined ? { laId: extra.laId } : {}) });
  const k = key();
  const enc = p.encryptionKey ? key() : undefined;
  const tbs = buildTbsCertificate({
    id: { name },
    validity: { start: START, durationSeconds: p.validitySeconds },
    appPermissions: p.appPermissions,
    ...(p.certIssuePermissions ? { certIssuePermissions: p.certIssuePermissions } : {}),
    ...(p.certRequestPermissions ? { certRequestPermissions: p.certRequestPermissions } : {}),
    ...(enc ? { encryptionKey: enc.publicKey } : {}),
    ...(p.flags ? { flags: p.flags } : {}),
    verifyKey: k.publicKey,
  });
  const cert = await issueExplicitCertificate({ tbs, issuer: issuer === 'self' ? 'self' : issuer.cert, signer: issuer === 'self' ? k.signer : issuer.signer });
  return { d: k.d, signer: k.signer, cert, ...(enc ? { encD: enc.d } : {}) };
}

export interface Setup {
  ra: PseudonymService;
  jobs: (variant: ButterflyVariant, type: 'explicit' | 'implicit') => PseudonymJob[];
  close(): Promise<void>;
}

export async function setup(): Promise<Setup> {
  const policy: GlobalPolicy = {
    ...defaultGlobalPolicy({ policyId: 'bench', issueTime: START.toISOString(), regions: [840], iPeriodEpoch: '2025-01-06T00:00:00Z' }),
    'time-baseCertNumber': J,
    'time-overlapCertNumber': 1,
  };
  const clock = new ManualClock(NOW);
  const root = await issue('root', policy, 'self', 'root');
  const ica = await issue('ica', policy, root, 'ica');
  const acaE = await issue('aca', policy, ica, 'aca');
  const raE = await issue('ra', policy, ica, 'ra');
  const laE = [await issue('la', policy, ica, 'la1', { laId: 1 }), await issue('la', policy, ica, 'la2', { laId: 2 })];
  const dbs = await Promise.all([0, 1, 2].map(() => openDatabase<any>('sqlite::memory:')));
  const las: LaService[] = [];
  for (const n of [0, 1] as const) {
    const store = new LaStore(dbs[n]!);
    await store.migrate();
    las.push(new LaService({ laId: n + 1, store, masterSecret: new Uint8Array(randomBytes(32)), certificate: laE[n]!.cert, signer: laE[n]!.signer, clock }));
  }
  const aca = new AcaService({
    certificate: acaE.cert,
    signer: acaE.signer,
    privateScalar: acaE.d,
    encryptionKey: { privateKey: acaE.encD! },
    raCertificates: [raE.cert],
    laCertificates: [laE[0]!.cert, laE[1]!.cert],
    laKeys: las,
    clock,
  });
  const store = new PseudonymStore(dbs[2]!);
  await store.migrate();
  const iPeriod = iPeriodParamsOf(policy);
  const ra = new PseudonymService({ store, la1: las[0]!, la2: las[1]!, aca, acaCertificate: acaE.cert, raCertificate: raE.cert, raSigner: raE.signer, iPeriod, policy, clock });
  const i0 = iPeriodOf(iPeriod, dateToTime32(NOW));
  let serial = 0;
  const jobs = (variant: ButterflyVariant, type: 'explicit' | 'implicit'): PseudonymJob[] =>
    Array.from({ length: EES }, () => {
      const n = serial++;
      const { request } = createButterflyRequest({
        variant,
        type,
        tbsCert: { validityPeriod: { start: dateToTime32(NOW), duration: { hours: 168 } }, appPermissions: [{ psid: 32n }, { psid: 38n }] },
        clock,
      });
      return { requestHash: sha256(new TextEncoder().encode(`bench-${n}`)).slice(-8), request, chainKey: `device-${n}`, iRange: { first: i0, last: i0 } };
    });
  return { ra, jobs, close: async () => void (await Promise.all(dbs.map((d) => d.destroy()))) };
}

/**
 * Certificates per second for one variant: warm-up batches (at least 3 and 300 ms), then batches for about `ms`
 * (at least 5); the median batch time counts (the host is shared and noisy).
 */
export async function certsPerSecond(s: Setup, variant: ButterflyVariant, type: 'explicit' | 'implicit', ms: number): Promise<{ wall: number; cpu: number }> {
  let cpu = 0;
  const run = async () => {
    const jobs = s.jobs(variant, type); // EE-side request creation is not timed
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const r = await s.ra.processBatch(jobs);
    const dt = performance.now() - t0;
    const c = process.cpuUsage(c0);
    cpu += c.user + c.system;
    if (r.failed.length || r.issued !== EES * J) throw new Error(`pipeline bench: ${r.issued} issued, ${r.failed.length} failed (${r.failed[0]?.error})`);
    return dt;
  };
  // warm-up: at least three batches and 300 ms (JIT tiers), not counted
  for (let n = 0, t = 0; n < 3 || t < 300; n++) t += await run();
  cpu = 0;
  const times: number[] = [];
  for (let total = 0; times.length < 5 || total < ms; ) {
    const t = await run();
    times.push(t);
    total += t;
  }
  times.sort((a, b) => a - b);
  return { wall: (EES * J * 1000) / times[times.length >> 1]!, cpu: (EES * J * times.length * 1e6) / cpu };
}

/**
 * OpenSSL rates (node:crypto, as fast as the API allows: one reused ECDH object, as src/crypto/curves.ts does) of
 * the operations a certificate needs (see the module comment).
 */
function nativeRates(ms: number): { kG: BenchResult; ecdh: BenchResult; sign: BenchResult; verify: BenchResult; ccm: BenchResult } {
  const peer = generateKeyPair('nistP256').publicKey;
  const kp = generateKeyPair('nistP256');
  const sk = signingKey('nistP256', kp.privateKey).keyObject;
  const vk = verificationKey('nistP256', kp.publicKey).keyObject;
  const msg = randomBytes(64);
  const sig = nodeSign('sha256', msg, { key: sk, dsaEncoding: 'ieee-p1363' });
  const k = randomBytes(16);
  const nonce = randomBytes(12);
  const ccmMsg = randomBytes(200);
  const e = createECDH('prime256v1');
  return {
    kG: measure('OpenSSL k*G', () => {
      e.setPrivateKey(randomBytes(32));
      return e.getPublicKey();
    }, ms),
    ecdh: measure('OpenSSL ECDH (ephemeral key + shared secret)', () => {
      e.generateKeys();
      return e.computeSecret(peer);
    }, ms),
    sign: measure('OpenSSL ECDSA sign', () => nodeSign('sha256', msg, { key: sk, dsaEncoding: 'ieee-p1363' }), ms),
    verify: measure('OpenSSL ECDSA verify', () => nodeVerify('sha256', msg, { key: vk, dsaEncoding: 'ieee-p1363' }, sig), ms),
    ccm: measure('OpenSSL AES-128-CCM (200 B)', () => {
      const c = createCipheriv('aes-128-ccm', k, nonce, { authTagLength: 16 });
      c.update(ccmMsg);
      c.final();
      return c.getAuthTag();
    }, ms),
  };
}

export interface PipelineRow {
  name: string;
  opsPerSecond: number;
  /** The native ceiling: per certificate one key operation (k*G), one ECDSA sign, one ECIES (ephemeral key + ECDH), one AES-CCM. */
  baseline: { name: string; opsPerSecond: number };
  ratio: number;
  /** Certificates per second of process CPU time (all threads): steadier than wall time on a shared host. */
  cpuOpsPerSecond: number;
  /**
   * The native operations this pipeline really performs per certificate, at OpenSSL speed (the best this design can
   * do with zero JavaScript cost): RA sign + ACA verify of the RaAcaCertRequestSpdu, ACA sign + RA verify of the
   * AcaRaCertResponseSpdu, the expansion and key multiplications, ECIES, the certificate / EncryptedSigned
   * signatures of explicit and original-variant responses, and the nine AES-CCM operations (LA encrypts, ACA decrypts
   * two PLVs with their data keys, the response).
   */
  floor: { name: string; opsPerSecond: number };
}

const ROWS: ReadonlyArray<{ variant: ButterflyVariant; type: 'explicit' | 'implicit' }> = [
  { variant: 'original', type: 'explicit' },
  { variant: 'unified', type: 'explicit' },
  { variant: 'original', type: 'implicit' },
  { variant: 'unified', type: 'implicit' },
  { variant: 'compactUnified', type: 'implicit' },
];

/** Native operations per certificate of one variant (see PipelineRow.floor). */
function operationsOf(variant: ButterflyVariant, type: 'explicit' | 'implicit'): { kG: number; sign: number; verify: number; ecdh: number; ccm: number } {
  const expansion = variant === 'original' ? 2 : 1; // f*G per cocoon (B, and J for original)
  const key = 1; // c*G (explicit) or k*G (ECQV)
  const certSign = type === 'explicit' ? 1 : 0;
  const privateSpdu = variant === 'compactUnified' ? 0 : 1; // EncryptedSigned response: one more ACA signature
  return { kG: expansion + key, sign: 2 + certSign + privateSpdu, verify: 2, ecdh: 1, ccm: 9 };
}

/**
 * Pipeline rows: certificates/s for each butterfly variant and certificate type (original and unified explicit,
 * original, unified and compact unified implicit) with the native ceiling and this pipeline's native floor.
 */
export async function benchPipeline(ms = 1000, opts: { native?: boolean } = {}): Promise<PipelineRow[]> {
  const s = await setup();
  try {
    const measured: Array<{ variant: ButterflyVariant; type: 'explicit' | 'implicit'; wall: number; cpu: number }> = [];
    for (const r of ROWS) measured.push({ ...r, ...(await certsPerSecond(s, r.variant, r.type, Math.max(ms, 1000))) });
    // native: false skips the native rates (profiling).
    const n = opts.native === false ? undefined : nativeRates(Math.min(ms, 500));
    const t = (x: BenchResult | undefined) => (x ? 1 / x.opsPerSecond : NaN);
    const ceiling = 1 / (t(n?.kG) + t(n?.sign) + t(n?.ecdh) + t(n?.ccm));
    const baseline = { name: 'native: k*G + ECDSA sign + ECDH (with its ephemeral key) + AES-CCM', opsPerSecond: ceiling };
    return measured.map((m) => {
      const o = operationsOf(m.variant, m.type);
      const floor = 1 / (o.kG * t(n?.kG) + o.sign * t(n?.sign) + o.verify * t(n?.verify) + o.ecdh * t(n?.ecdh) + o.ccm * t(n?.ccm));
      return {
        name: `pipeline: ${m.variant} ${m.type} certs/s (${EES} EEs x 1 i x ${J} j)`,
        opsPerSecond: m.wall,
        baseline,
        ratio: m.wall / ceiling,
        cpuOpsPerSecond: m.cpu,
        floor: { name: `native floor: ${o.kG} k*G, ${o.sign} sign, ${o.verify} verify, ${o.ecdh} ECDH, ${o.ccm} AES-CCM`, opsPerSecond: floor },
      };
    });
  } finally {
    await s.close();
  }
}
