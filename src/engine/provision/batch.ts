/**
 * `scms provision batch`: offline issuing of N device bundles through the same RA / ECA / LA / ACA logic as the
 * online flow (components.ts), so the SCMS records of a provisioned device are those of an online one:
 *   registration (RegistrationStore.register, actor 'provision') -> enrollment (an EeEcaCertRequestSpdu signed
 *   with the canonical key, handled by Eca.handleEnrollmentRequest, which marks the device enrolled) ->
 *   optional pseudonyms (a unified butterfly EeRaCertRequest signed with the enrollment certificate, its request
 *   hash, PseudonymService.processBatch for the first W i-periods, the RA's 'authorization-batch' record).
 *
 * Keys: generated here (canonical, enrollment: explicit certificate, butterfly caterpillar + expansion key), or
 * the factory's canonical public keys (`deviceKeys`): then no private key is available, so the tool can only
 * register the devices (enrollment must be signed by the device's canonical key, pseudonym requests by its
 * enrollment key); the bundle holds public data only.
 *
 * Resumability: every step's outcome is recorded in DATA/provision.db keyed by (batch id, device index) before
 * the next step starts; the device's secrets are kept there sealed (state.ts). Every step is idempotent when
 * re-run after a crash: registration by canonical key; enrollment re-sends the recorded request SPDU, and the
 * ECA's replay refusal (60) means it was issued: the certificate is then taken from the ECA's records (explicit
 * certificate: the private key is the recorded enrollment key); pseudonym responses are keyed (request hash, i,
 * j) and never stored twice; the bundle is renamed into place as the last step. A finished batch re-run changes
 * nothing.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Certificate as CertificateCodec, Ieee1609Dot2Data as Ieee1609Dot2DataCodec, type Certificate } from '../../codec/index.js';
import { EeRaCertRequest as EeRaCertRequestCodec, type EeRaCertRequest } from '../../codec/gen/Ieee1609Dot2Dot1EeRaInterface.js';
import { bigIntToBytes, fromHex, toHex } from '../../crypto/bytes.js';
import type { ButterflyPrivateParams } from '../../crypto/butterfly.js';
import type { KeyStores } from '../../hsm/index.js';
import { certificateHashedId8, certificateKeyPairMatches, encodeCertificate, publicVerificationKey } from '../../security/certificate.js';
import { encryptData, rekRecipientId, type EciesPublicKey } from '../../security/encryption.js';
import { dateToTime32, iPeriodOf, iPeriodStart, nowTime32, time32ToDate, validityPeriodEnd, type Clock, type ValidityPeriod } from '../../security/time.js';
import { processAuthorizationResponse } from '../ee/authorization.js';
import { buildAuthorizationRequest } from '../ee/authorization-client.js';
import { createButterflyRequest, type ButterflySecrets } from '../ee/butterfly.js';
import { buildEnrollmentRequest, processEnrollmentResponse, type Enrollment, type EnrollmentState } from '../ee/enroll.js';
import { generateKeyPair, keyPairFromPrivate, keyPairSigner } from '../ee/keys.js';
import { hashedId8, sha256 } from '../../crypto/hash.js';
import { decodePoint } from '../../crypto/curves.js';
import type { StoredResponse } from '../ra/pseudonym.js';
import type { TrustDir } from '../manager/trust-dir.js';
import { iPeriodParamsOf } from '../policy/index.js';
import { canonicalKeyFromBytes, type CanonicalKey } from '../ra/registration.js';
import { openDatabase } from '../store/index.js';
import { readBundleManifest, writeBatchManifest, writeBundle, type BatchManifest, type BundleCertificate, type BundleManifest, type BundleSecrets } from './bundle.js';
import { openComponents, type ProvisionComponents } from './components.js';
import { ProvisionState, secretsFromBytes, secretsToBytes, type DeviceRow, type StateCipher } from './state.js';

export class ProvisionError extends Error {
  override readonly name = 'ProvisionError';
}

/** A factory-supplied device key: the canonical public key (hex, compressed or uncompressed). */
export interface FactoryDeviceKey {
  canonicalPublicKey: string;
  curve?: 'nistP256' | 'brainpoolP256r1';
  /**
   * The device's unified butterfly keys (public caterpillar key, hex point; AES-128 expansion key, hex): with them
   * the tool also has pseudonyms issued; the bundle then holds the encrypted ACA responses (only the device can
   * open them).
   */
  caterpillarPublicKey?: string;
  expansionKey?: string;
}

/** Points at which the test hook is called (`SCMS_PROVISION_TEST_KILL=<point>:<index>` in the command). */
export type ProvisionHookPoint = 'registered' | 'enrollment-issued' | 'pseudonyms-issued' | 'bundle-written' | 'done';

export interface ProvisionBatchOptions {
  trust: TrustDir;
  stores: KeyStores;
  dataDir: string;
  outDir: string;
  count: number;
  deviceType: 'obu' | 'rsu';
  /** CountryOnly codes for registration and certificates (default: the policy's regions). */
  region?: number[];
  /** PSIDs for the enrollment and pseudonym certificates (default: the policy's lists for the device type). */
  psids?: number[];
  pseudonymWeeks: number;
  /** ECIES recipient of the generated private keys (required unless deviceKeys). */
  transportKey?: EciesPublicKey;
  /** Factory keys, one per device (count = length). */
  deviceKeys?: FactoryDeviceKey[];
  /** Seals the device secrets in the batch state (required unless deviceKeys). */
  statePassphrase?: string;
  clock: Clock;
  env?: NodeJS.ProcessEnv;
  onProgress?: (p: { index: number; completed: number; total: number; resumed: boolean }) => void;
  /** Test hook. */
  hook?: (point: ProvisionHookPoint, index: number) => void | Promise<void>;
}

export interface ProvisionSummary {
  batchId: string;
  total: number;
  /** Devices issued by this run. */
  issued: number;
  /** Devices already complete before this run. */
  alreadyDone: number;
  certificates: number;
  seconds: number;
  devicesPerSecond: number;
  batchManifest: string;
  outDir: string;
}

interface GeneratedSecrets {
  canonical: bigint;
  enrollment: bigint;
  butterfly?: ButterflySecrets;
  /** COER EeRaCertRequest made with the butterfly secrets. */
  butterflyRequest?: Uint8Array;
}

const ACTOR = 'provision';

/** The batch id: a digest of what defines the batch (same command = same id). */
export function batchIdOf(params: unknown): string {
  return createHash('sha256').update(JSON.stringify(params)).digest('hex').slice(0, 16);
}

const iso = (t: number) => time32ToDate(Math.floor(t)).toISOString();
const validity = (vp: ValidityPeriod) => ({ validFrom: iso(vp.start), validUntil: iso(validityPeriodEnd(vp)) });

export async function provisionBatch(o: ProvisionBatchOptions): Promise<ProvisionSummary> {
  const started = performance.now();
  const factory = o.deviceKeys !== undefined;
  const count = factory ? o.deviceKeys!.length : o.count;
  if (!Number.isInteger(count) || count < 1) throw new ProvisionError('count must be a positive integer');
  if (!Number.isInteger(o.pseudonymWeeks) || o.pseudonymWeeks < 0) throw new ProvisionError('pseudonyms-weeks must be an integer >= 0');
  if (factory && o.pseudonymWeeks > 0 && o.deviceKeys!.some((k) => !k.caterpillarPublicKey || !k.expansionKey)) {
    throw new ProvisionError(
      'with factory keys the tool can only register the devices, and issue pseudonyms if each device key comes with its caterpillarPublicKey and expansionKey (see README "Provisioning bundles")',
    );
  }
  if (!factory && !o.transportKey) throw new ProvisionError('generated keys need a transport key (--transport-key)');
  if (!factory && !o.statePassphrase) throw new ProvisionError('generated keys need a state passphrase (SCMS_PROVISION_PASSPHRASE or SCMS_KEYSTORE_PASSPHRASE)');
  const policy = o.trust.globalPolicy?.json;
  if (!policy) throw new ProvisionError(`${o.trust.dir}: no global policy`);
  const perms = policy.deviceTypes[o.deviceType === 'obu' ? 'OBU' : 'RSU'];
  const enrollPsids = o.psids ?? perms.enrollment.map((p) => p.psid);
  const pseudoPsids = o.psids ?? perms.pseudonym.map((p) => p.psid);
  if (o.pseudonymWeeks > 0 && pseudoPsids.length === 0) throw new ProvisionError(`the policy grants ${o.deviceType} devices no pseudonym PSIDs (give --psid)`);
  const region = o.region ?? policy.regions;

  const outDir = resolve(o.outDir);
  const params = {
    trust: o.trust.manifest.ctlSeriesId,
    deviceType: o.deviceType,
    count,
    region,
    psids: o.psids ?? null,
    pseudonymWeeks: o.pseudonymWeeks,
    transportKey: o.transportKey ? toHex(rekRecipientId(o.transportKey)) : null,
    deviceKeys: factory ? createHash('sha256').update(JSON.stringify(o.deviceKeys)).digest('hex') : null,
    outDir,
  };
  const batchId = batchIdOf(params);
  mkdirSync(outDir, { recursive: true });
  mkdirSync(o.dataDir, { recursive: true });

  const unlock = lockBatch(outDir, batchId);
  const stateDb = await openDatabase<any>(`sqlite:${join(o.dataDir, 'provision.db')}`);
  let c: ProvisionComponents | undefined;
  try {
    const state = new ProvisionState(stateDb);
    await state.migrate();
    const now = () => o.clock.now().getTime();
    const cipher = await state.openBatch(batchId, params, o.statePassphrase ?? '', now());
    const rows = await state.devices(batchId);
    const alreadyDone = [...rows.values()].filter((r) => r.step === 'done').length;
    let completed = alreadyDone;
    let issued = 0;
    if (alreadyDone < count) {
      c = await openComponents({ trust: o.trust, stores: o.stores, dataDir: o.dataDir, clock: o.clock, env: o.env ?? process.env, pseudonyms: o.pseudonymWeeks > 0 });
      const ctx: DeviceContext = { o, c, state, cipher, batchId, outDir, factory, enrollPsids, pseudoPsids, region, now };
      for (let index = 0; index < count; index++) {
        const row = rows.get(index);
        if (row?.step === 'done') continue;
        await provisionDevice(ctx, index, row);
        issued++;
        completed++;
        o.onProgress?.({ index, completed, total: count, resumed: false });
      }
    }

    // The batch manifest, from the state and the bundles on disk.
    const final = await state.devices(batchId);
    const devices: BatchManifest['devices'] = [];
    let certificates = 0;
    for (let index = 0; index < count; index++) {
      const r = final.get(index)!;
      const m = readBundleManifest(join(outDir, r.deviceId!));
      certificates += m.certificates.length;
      devices.push({ index, deviceId: m.deviceId, canonicalId: m.canonicalId, dir: m.deviceId, certificates: m.certificates.length });
    }
    const batchManifest = writeBatchManifest(outDir, {
      format: 'scms-provision-batch',
      version: 1,
      batchId,
      deviceType: o.deviceType,
      count,
      keys: factory ? 'factory' : 'generated',
      pseudonymWeeks: o.pseudonymWeeks,
      devices,
    });
    const seconds = (performance.now() - started) / 1000;
    return { batchId, total: count, issued, alreadyDone, certificates, seconds, devicesPerSecond: seconds > 0 ? issued / seconds : 0, batchManifest, outDir };
  } finally {
    await c?.close();
    await stateDb.destroy();
    unlock();
  }
}

/**
 * One process per batch: OUT/.lock-<batchId> holds the owner's pid (created exclusively). A lock left by a process
 * that no longer runs (kill -9) is taken over.
 */
function lockBatch(outDir: string, batchId: string): () => void {
  const path = join(outDir, `.lock-${batchId}`);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, String(process.pid), { flag: 'wx' });
      return () => rmSync(path, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number(readFileSync(path, 'utf8'));
      let alive = false;
      try {
        if (Number.isInteger(pid) && pid > 0 && pid !== process.pid) {
          process.kill(pid, 0);
          alive = true;
        }
      } catch (err) {
        alive = (err as NodeJS.ErrnoException).code === 'EPERM';
      }
      if (alive) throw new ProvisionError(`batch ${batchId} is being run by process ${pid} (${path})`);
      rmSync(path, { force: true });
    }
  }
  throw new ProvisionError(`cannot lock batch ${batchId} (${path})`);
}

interface DeviceContext {
  o: ProvisionBatchOptions;
  c: ProvisionComponents;
  state: ProvisionState;
  cipher: StateCipher;
  batchId: string;
  outDir: string;
  factory: boolean;
  enrollPsids: number[];
  pseudoPsids: number[];
  region: number[];
  now: () => number;
}

async function provisionDevice(x: DeviceContext, index: number, existing: DeviceRow | undefined): Promise<void> {
  const { o, c, state, cipher, batchId } = x;
  const hook = async (p: ProvisionHookPoint) => o.hook?.(p, index);
  let row = existing;
  let secrets: GeneratedSecrets | undefined;
  let key: CanonicalKey;

  // 1. Keys (generated ones sealed into the state before anything else happens).
  if (!row) {
    if (x.factory) {
      const f = o.deviceKeys![index]!;
      key = canonicalKeyFromBytes(fromHex(f.canonicalPublicKey.replace(/^0x/i, '')), f.curve ?? 'nistP256', `device key ${index}`);
    } else {
      secrets = generateSecrets(x);
      key = canonicalKeyFromBytes(keyPairFromPrivate('nistP256', secrets.canonical).publicKey);
    }
    row = { index, step: 'keys', canonicalId: key.canonicalId, canonicalKey: toHex(key.compressed), data: { curve: key.curve }, ...(secrets ? { secrets: cipher.seal(secretsToBytes(secrets)) } : {}) };
    await state.insert(batchId, row, x.now());
  } else {
    key = canonicalKeyFromBytes(fromHex(row.canonicalKey), (row.data.curve as CanonicalKey['curve'] | undefined) ?? 'nistP256');
    if (row.secrets) secrets = secretsFromBytes<GeneratedSecrets>(cipher.open(row.secrets));
  }

  // 2. Registration (idempotent by canonical key).
  if (row.step === 'keys') {
    const r = await c.registration.register({ deviceType: o.deviceType, key, region: x.region }, ACTOR);
    await state.advance(batchId, row, 'registered', { deviceId: r.device.deviceId }, x.now());
    await hook('registered');
  }
  const deviceId = row.deviceId!;

  let enrollment: Enrollment | undefined;
  const pseudonyms: Array<{ i: number; j: number; certificate: Certificate; privateKey: bigint }> = [];
  if (secrets) {
    // 3. Enrollment.
    enrollment = await enroll(x, row, secrets, deviceId);
    if (row.step === 'registered') {
      await state.advance(batchId, row, 'enrolled', {}, x.now());
    }
    // 4. Pseudonyms.
    if (o.pseudonymWeeks > 0) {
      const request = EeRaCertRequestCodec.decode(secrets.butterflyRequest!);
      // The request hash an online EE's EeRaCertRequestSpdu would have (signed with the enrollment certificate).
      const hashOf = async () =>
        (await buildAuthorizationRequest({ request, enrollment: { certificate: enrollment!.certificate, signer: enrollment!.signer }, raCertificate: c.raCertificate })).requestHash;
      const responses = await issuePseudonyms(x, row, request, hashOf, deviceId);
      for (const r of responses) {
        pseudonyms.push(
          await processAuthorizationResponse({
            secrets: secrets.butterfly!,
            i: r.i,
            j: r.j,
            kind: r.kind as 'private' | 'cubk',
            response: r.response,
            acaChain: c.pseudonyms!.acaChain,
            trustAnchors: c.roots,
            clock: o.clock,
          }),
        );
      }
      pseudonyms.sort((a, b) => a.i - b.i || a.j - b.j);
    }
  }
  let encryptedResponses: StoredResponse[] = [];
  if (x.factory && o.pseudonymWeeks > 0) {
    // No enrollment certificate (the device must sign for it): the request hash is HashedId8 of the COER EeRaCertRequest.
    const request = row.data.authzRequest ? EeRaCertRequestCodec.decode(fromHex(row.data.authzRequest)) : factoryButterflyRequest(x, o.deviceKeys![index]!);
    const coer = EeRaCertRequestCodec.encode(request);
    if (!row.data.authzRequest) await state.advance(batchId, row, row.step, { data: { authzRequest: toHex(coer) } }, x.now());
    encryptedResponses = await issuePseudonyms(x, row, request, async () => sha256(coer).slice(-8), deviceId);
  }

  // 5. The bundle.
  const files: Record<string, Uint8Array> = {};
  const certs: BundleCertificate[] = [];
  const steps: BundleManifest['steps'] = ['registered'];
  const responses: NonNullable<BundleManifest['pseudonymResponses']> = [];
  if (enrollment) {
    steps.push('enrolled');
    files['enrollment.oer'] = encodeCertificate(enrollment.certificate);
    certs.push({ file: 'enrollment.oer', kind: 'enrollment', hashedId8: toHex(certificateHashedId8(enrollment.certificate)), ...validity(enrollment.certificate.toBeSigned.validityPeriod) });
    c.ecaChain.forEach((cc, n) => (files[`chain/eca-${n}.oer`] = encodeCertificate(cc)));
  }
  if (pseudonyms.length) {
    steps.push('pseudonyms');
    c.pseudonyms!.acaChain.forEach((cc, n) => (files[`chain/aca-${n}.oer`] = encodeCertificate(cc)));
    for (const p of pseudonyms) {
      const file = `pseudonyms/${p.i}_${p.j}.oer`;
      files[file] = encodeCertificate(p.certificate);
      certs.push({ file, kind: 'pseudonym', hashedId8: toHex(certificateHashedId8(p.certificate)), ...validity(p.certificate.toBeSigned.validityPeriod), i: p.i, j: p.j });
    }
  }
  if (encryptedResponses.length) {
    steps.push('pseudonyms');
    c.pseudonyms!.acaChain.forEach((cc, n) => (files[`chain/aca-${n}.oer`] = encodeCertificate(cc)));
    for (const r of [...encryptedResponses].sort((a, b) => a.i - b.i || a.j - b.j)) {
      const file = `responses/${r.i}_${r.j}.oer`;
      files[file] = r.response;
      responses.push({ file, i: r.i, j: r.j, kind: r.kind });
    }
  }
  if (secrets && enrollment) {
    const plain: BundleSecrets = {
      canonicalPrivateKey: toHex(bigIntToBytes(secrets.canonical, 32)),
      enrollmentPrivateKey: toHex(bigIntToBytes(enrollment.privateKey, 32)),
      pseudonyms: pseudonyms.map((p) => ({ i: p.i, j: p.j, privateKey: toHex(bigIntToBytes(p.privateKey, 32)) })),
      ...(secrets.butterfly ? { butterfly: butterflyHex(secrets.butterfly) } : {}),
    };
    const data = encryptData({ plaintext: new TextEncoder().encode(JSON.stringify(plain)), recipients: [{ kind: 'rek', publicKey: o.transportKey! }] });
    files['keys.oer'] = Ieee1609Dot2DataCodec.encode(data);
  }
  const manifest: BundleManifest = {
    format: 'scms-provision-bundle',
    version: 1,
    batchId,
    index,
    deviceId,
    canonicalId: row.canonicalId,
    canonicalPublicKey: row.canonicalKey,
    deviceType: o.deviceType,
    keys: x.factory ? 'factory' : 'generated',
    steps,
    certificates: certs,
    ...(responses.length ? { pseudonymResponses: responses } : {}),
    ...(secrets ? { transportKeyId: toHex(rekRecipientId(o.transportKey!)) } : {}),
    ...(row.data.authzHash ? { authorizationRequestHash: row.data.authzHash } : {}),
  };
  writeBundle(x.outDir, batchId, manifest, files); // false: renamed into place by an interrupted run already
  await hook('bundle-written');
  await state.advance(batchId, row, 'done', {}, x.now());
  await hook('done');
}

function generateSecrets(x: DeviceContext): GeneratedSecrets {
  const s: GeneratedSecrets = { canonical: generateKeyPair('nistP256').privateKey, enrollment: generateKeyPair('nistP256').privateKey };
  if (x.o.pseudonymWeeks > 0) {
    const ip = iPeriodParamsOf(x.c.policy);
    const i0 = iPeriodOf(ip, dateToTime32(x.o.clock.now()));
    const { request, secrets } = createButterflyRequest({
      variant: 'unified',
      type: 'implicit',
      tbsCert: {
        validityPeriod: pseudonymValidity(x, ip, i0),
        appPermissions: x.pseudoPsids.map((psid) => ({ psid: BigInt(psid) })),
      },
      clock: x.o.clock,
    });
    s.butterfly = secrets;
    s.butterflyRequest = EeRaCertRequestCodec.encode(request);
  }
  return s;
}

function butterflyHex(b: ButterflySecrets): Record<string, string> {
  const out: Record<string, string> = { curve: b.curve, type: b.type };
  for (const [k, v] of Object.entries(b.params as ButterflyPrivateParams)) {
    out[k] = typeof v === 'bigint' ? toHex(bigIntToBytes(v, 32)) : v instanceof Uint8Array ? toHex(v) : String(v);
  }
  return out;
}

/** Enrollment: issued now, recovered from the state, or (after a crash between issuance and record) from the ECA's records. */
async function enroll(x: DeviceContext, row: DeviceRow, s: GeneratedSecrets, deviceId: string): Promise<Enrollment> {
  const { o, c, state, batchId } = x;
  const keyPair = keyPairFromPrivate('nistP256', s.enrollment);
  const canonical = keyPairFromPrivate('nistP256', s.canonical);
  const opts = { trustAnchors: c.roots, clock: o.clock };
  const stateOf = (spdu: Uint8Array, generationTime: number): EnrollmentState => ({ type: 'explicit', keyPair, requestHash: hashedId8(spdu), generationTime });
  if (row.data.enrollCert) {
    const certificate = CertificateCodec.decode(fromHex(row.data.enrollCert));
    return enrollmentOf(certificate, keyPair.privateKey, c.ecaChain);
  }
  if (row.data.enrollResponse) return processEnrollmentResponse(fromHex(row.data.enrollResponse), stateOf(fromHex(row.data.enrollRequest!), Number(row.data.enrollTime)), opts);

  let spdu: Uint8Array;
  let generationTime: number;
  if (row.data.enrollRequest) {
    spdu = fromHex(row.data.enrollRequest);
    generationTime = Number(row.data.enrollTime);
  } else {
    const built = await buildEnrollmentRequest({
      canonicalKey: keyPairSigner(canonical),
      enrollmentKeyPair: keyPair,
      type: 'explicit',
      psids: x.enrollPsids.map((p) => BigInt(p)),
      region: x.region,
      // at most the policy's enrollmentValidity, and not beyond the ECA certificate
      validity: { durationSeconds: enrollmentSeconds(c.policy.enrollmentValidity, c.ecaChain[0]!.toBeSigned.validityPeriod, dateToTime32(o.clock.now())) },
      clock: o.clock,
    });
    spdu = built.spdu;
    generationTime = built.state.generationTime;
    await state.advance(batchId, row, row.step, { data: { enrollRequest: toHex(spdu), enrollTime: String(generationTime) } }, x.now());
  }
  const res = await c.eca.handleEnrollmentRequest(spdu);
  if (res.status === 200) {
    await o.hook?.('enrollment-issued', row.index); // issued by the ECA, not yet in the batch state
    const e = processEnrollmentResponse(res.body, stateOf(spdu, generationTime), opts);
    await state.advance(batchId, row, row.step, { data: { enrollResponse: toHex(res.body) } }, x.now());
    return e;
  }
  if (res.code === 60) {
    // Issued by an interrupted run: the ECA's record of this request.
    const rh = toHex(hashedId8(spdu));
    const rec = (await c.ecaStore.certificatesOf(deviceId)).find((r) => r.requestHash === rh);
    if (!rec) throw new ProvisionError(`device ${row.index}: the ECA reports the enrollment request as a replay but has no certificate for it`);
    const e = enrollmentOf(CertificateCodec.decode(rec.certificate), keyPair.privateKey, c.ecaChain);
    await state.advance(batchId, row, row.step, { data: { enrollCert: toHex(rec.certificate) } }, x.now());
    return e;
  }
  throw new ProvisionError(`device ${row.index}: enrollment refused (${res.status}-${res.code}): ${res.reason}`);
}

/** At most `max` seconds, ending before the ECA certificate, in whole hours (a Duration in hours is exact). */
function enrollmentSeconds(max: number, eca: ValidityPeriod, now: number): number {
  const s = Math.min(max, Math.floor(validityPeriodEnd(eca)) - now - 3600);
  return Math.max(3600, Math.floor(s / 3600) * 3600);
}

function enrollmentOf(certificate: Certificate, d: bigint, ecaChain: Certificate[]): Enrollment {
  if (!certificateKeyPairMatches(certificate, d, ecaChain)) throw new ProvisionError('the recorded enrollment certificate does not match the enrollment key');
  const kp = keyPairFromPrivate('nistP256', d);
  return { certificate, privateKey: d, publicKey: kp.publicKey, curve: 'nistP256', chain: ecaChain, signer: keyPairSigner(kp) };
}

function factoryButterflyRequest(x: DeviceContext, k: FactoryDeviceKey): EeRaCertRequest {
  const ip = iPeriodParamsOf(x.c.policy);
  const i0 = iPeriodOf(ip, dateToTime32(x.o.clock.now()));
  const caterpillar = fromHex(k.caterpillarPublicKey!.replace(/^0x/i, ''));
  const expansion = fromHex(k.expansionKey!.replace(/^0x/i, ''));
  try {
    decodePoint('nistP256', caterpillar);
  } catch {
    throw new ProvisionError('caterpillarPublicKey: not a P-256 point');
  }
  if (expansion.length !== 16) throw new ProvisionError('expansionKey: 16 octets (AES-128) expected');
  return {
    version: 2,
    generationTime: nowTime32(x.o.clock),
    type: 'implicit',
    tbsCert: {
      id: { none: null },
      cracaId: new Uint8Array(3),
      crlSeries: 0,
      validityPeriod: pseudonymValidity(x, ip, i0),
      appPermissions: x.pseudoPsids.map((psid) => ({ psid: BigInt(psid) })),
      verifyKeyIndicator: { verificationKey: publicVerificationKey('nistP256', caterpillar) },
    },
    additionalParams: { unified: { aes128: expansion } },
  };
}

function pseudonymValidity(x: DeviceContext, ip: ReturnType<typeof iPeriodParamsOf>, i0: number): ValidityPeriod {
  return { start: iPeriodStart(ip, i0), duration: { hours: Math.min(65535, x.o.pseudonymWeeks * 7 * 24) } };
}

/** The RA pseudonym pipeline for the first W i-periods (idempotent); returns the stored (encrypted) responses. */
async function issuePseudonyms(x: DeviceContext, row: DeviceRow, request: EeRaCertRequest, hashOf: () => Promise<Uint8Array>, deviceId: string): Promise<StoredResponse[]> {
  const { o, c, state, batchId } = x;
  const p = c.pseudonyms!;
  const ip = iPeriodParamsOf(c.policy);
  if (!row.data.authzHash) {
    const first = iPeriodOf(ip, request.tbsCert.validityPeriod.start);
    await state.advance(batchId, row, row.step, { data: { authzHash: toHex(await hashOf()), iFirst: String(first) } }, x.now());
  }
  const requestHash = fromHex(row.data.authzHash!);
  const first = Number(row.data.iFirst);
  if (row.step === 'enrolled' || row.step === 'registered') {
    const report = await p.service.processBatch([{ requestHash, request, chainKey: deviceId, iRange: { first, last: first + o.pseudonymWeeks - 1 } }]);
    if (report.failed.length) throw new ProvisionError(`device ${row.index}: ${report.failed.length} pseudonym certificates failed: ${report.failed[0]!.error}`);
    await c.registration.recordCertificate(deviceId, { kind: 'authorization-batch', hashedId8: row.data.authzHash!, issuer: 'ra' }, 'ra');
    await hook(x, 'pseudonyms-issued', row.index);
    await state.advance(batchId, row, 'authorized', {}, x.now());
  }
  return p.service.download(requestHash);
}

async function hook(x: DeviceContext, p: ProvisionHookPoint, index: number) {
  await x.o.hook?.(p, index);
}

