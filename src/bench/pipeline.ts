/**
 * Pseudonym pipeline throughput (RA expansion -> LA1/LA2 PLVs -> ACA issuance -> encrypted responses -> RA store),
 * in process on one core: root -> ICA -> ACA (usesCubk), RA, LA1, LA2 with soft scalars in memory and in-memory
 * SQLite stores (set-up as in test/engine/pipeline.test.ts). Batches of 10 EEs x 1 i-period x 20 j.
 *
 * The native ceiling beside each row is computed from OpenSSL operation rates measured in the same run:
 * per certificate one key operation (explicit: c*G for B + cG; implicit: k*G of ECQV), one ACA ECDSA sign,
 * one ECIES (ephemeral k*G + ECDH) and one AES-128-CCM of the response.
 */
import { createCipheriv, createECDH, randomBytes, sign as nodeSign } from 'node:crypto';
import type { Certificate } from '../codec/index.js';
import { bytesToBigInt } from '../crypto/bytes.js';
import type { ButterflyVariant } from '../crypto/butterfly.js';
import { generateKeyPair } from '../crypto/ecdh.js';
import { signingKey } from '../crypto/ecdsa.js';
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

async function issue(role: Role, policy: GlobalPolicy, issuer: Entity | 'self', name: string, extra: { laId?: number; flags?: string } = {}): Promise<Entity> {
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
    verifyKey: k.publicKey,
  });
  if (extra.flags) tbs.flags = extra.flags;
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
  const acaE = await issue('aca', policy, ica, 'aca', { flags: '10000000' });
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
 * Certificates per second for one variant: one warm-up batch, then batches for about `ms` (at least 5); the
 * median batch time counts (the host is shared and noisy).
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
  await run();
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

/** OpenSSL rates of the operations a certificate needs at minimum (see the module comment). */
function nativeRates(ms: number): { kG: BenchResult; sign: BenchResult; ecdh: BenchResult; ccm: BenchResult } {
  const peer = generateKeyPair('nistP256').publicKey;
  const sk = signingKey('nistP256', generateKeyPair('nistP256').privateKey).keyObject;
  const msg = randomBytes(200);
  const k = randomBytes(16);
  const nonce = randomBytes(12);
  return {
    kG: measure('OpenSSL k*G', () => {
      const e = createECDH('prime256v1');
      e.setPrivateKey(randomBytes(32));
      return e.getPublicKey();
    }, ms),
    sign: measure('OpenSSL ECDSA sign', () => nodeSign('sha256', msg, { key: sk, dsaEncoding: 'ieee-p1363' }), ms),
    ecdh: measure('OpenSSL ECDH', () => {
      const e = createECDH('prime256v1');
      e.setPrivateKey(randomBytes(32));
      return e.computeSecret(peer);
    }, ms),
    ccm: measure('OpenSSL AES-128-CCM (200 B)', () => {
      const c = createCipheriv('aes-128-ccm', k, nonce, { authTagLength: 16 });
      c.update(msg);
      c.final();
      return c.getAuthTag();
    }, ms),
  };
}

export interface PipelineRow {
  name: string;
  opsPerSecond: number;
  baseline: { name: string; opsPerSecond: number };
  ratio: number;
  /** Certificates per second of process CPU time (all threads): steadier than wall time on a shared host. */
  cpuOpsPerSecond: number;
}

/** Pipeline rows: original explicit and compact unified implicit certificates/s with the native ceiling. */
export async function benchPipeline(ms = 1000, opts: { native?: boolean } = {}): Promise<PipelineRow[]> {
  const s = await setup();
  try {
    const explicit = await certsPerSecond(s, 'original', 'explicit', Math.max(ms, 1000));
    const implicit = await certsPerSecond(s, 'compactUnified', 'implicit', Math.max(ms, 1000));
    // Per certificate: key op (k*G) + ACA sign + ECIES (ephemeral k*G + ECDH) + AES-CCM. native: false skips it (profiling).
    const n = opts.native === false ? undefined : nativeRates(Math.min(ms, 500));
    const ceiling = n ? 1 / (2 / n.kG.opsPerSecond + 1 / n.sign.opsPerSecond + 1 / n.ecdh.opsPerSecond + 1 / n.ccm.opsPerSecond) : NaN;
    const baseline = { name: 'native: 2 k*G + ECDSA sign + ECDH + AES-CCM', opsPerSecond: ceiling };
    return [
      { name: `pipeline: original explicit certs/s (${EES} EEs x 1 i x ${J} j)`, opsPerSecond: explicit.wall, baseline, ratio: explicit.wall / ceiling, cpuOpsPerSecond: explicit.cpu },
      { name: `pipeline: compact unified implicit certs/s (${EES} EEs x 1 i x ${J} j)`, opsPerSecond: implicit.wall, baseline, ratio: implicit.wall / ceiling, cpuOpsPerSecond: implicit.cpu },
    ];
  } finally {
    await s.close();
  }
}
