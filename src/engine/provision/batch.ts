/**
 * `scms provision batch`: offline issuing of N device bundles through the same RA / ECA / LA / ACA logic as the
 * online flow (components.ts), so the SCMS records of a provisioned device are those of an online one:
 *   registration (the RA's device tables, actor 'provision') -> enrollment through the ECA's factory path
 *   (eca/factory.ts: the online ECA's checks, an explicit enrollment certificate, the ECA's request and
 *   certificate records, the RA told 'enrolled') -> optional pseudonyms (a unified butterfly EeRaCertRequest,
 *   PseudonymService.processBatch for the first W i-periods of many devices at once, shuffled across them; the
 *   RA's 'authorization-batch' record).
 *
 * Keys: generated here with node:crypto (canonical, enrollment, butterfly caterpillar + expansion key), or the
 * factory's public keys (`deviceKeys`): the canonical key (registration), optionally the enrollment public key
 * (then the ECA issues the enrollment certificate for it) and the butterfly public keys (then pseudonyms are
 * issued, the bundle holds the ACA responses encrypted to the device). With factory keys no private key exists
 * outside the device and the bundle holds public material only.
 *
 * Work in chunks of devices (default 1000, 25 with pseudonyms): each step of a chunk is one transaction in each
 * database it touches (prepared statements), and the chunk's progress is recorded in DATA/provision.db after the
 * step. Every step is idempotent when re-run after a crash at any point: registration by canonical key; factory
 * enrollment by request octets (recorded in the state before the ECA sees them: a replay returns the recorded
 * certificate); pseudonyms are requested only for devices whose responses are not stored, and stored responses
 * are keyed (request hash, i, j); bundles are written to a temporary directory and renamed into place, the file
 * system is synced once per chunk (bundle.ts syncPaths), and only then is the chunk recorded done (secrets
 * dropped from the state). A finished batch re-run changes nothing.
 */
import { createECDH, createHash, ECDH, randomBytes, randomFillSync } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Ieee1609Dot2Data as Ieee1609Dot2DataCodec, type Certificate, type EeEcaCertRequest, type ToBeSignedCertificate } from '../../codec/index.js';
import { EeEcaCertRequest as EeEcaCertRequestCodec } from '../../codec/gen/Ieee1609Dot2Dot1EcaEeInterface.js';
import { EeRaCertRequest as EeRaCertRequestCodec, type EeRaCertRequest } from '../../codec/gen/Ieee1609Dot2Dot1EeRaInterface.js';
import { SymmetricEncryptionKey as SymmetricEncryptionKeyCodec } from '../../codec/gen/Ieee1609Dot2BaseTypes.js';
import { bigIntToBytes, bytesToBigInt, fromHex, toHex } from '../../crypto/bytes.js';
import type { ButterflyPrivateParams } from '../../crypto/butterfly.js';
import { sha256 } from '../../crypto/hash.js';
import type { KeyStores } from '../../hsm/index.js';
import { KeyStoreError } from '../../hsm/keystore.js';
import { buildTbsCertificate, certificateHashedId8, encodeCertificate, fromPublicVerificationKey, publicEncryptionKey, publicVerificationKey } from '../../security/certificate.js';
import { verifyCertificateChain } from '../../security/chain.js';
import { encryptData, rekRecipientId, type EciesPublicKey } from '../../security/encryption.js';
import { dateToTime32, iPeriodOf, iPeriodStart, nowTime32, time32ToDate, validityPeriodEnd, type Clock, type ValidityPeriod } from '../../security/time.js';
import { processAuthorizationResponse } from '../ee/authorization.js';
import { buildAuthorizationRequest } from '../ee/authorization-client.js';
import { createButterflyRequest, eeRaCertRequest, type ButterflySecrets } from '../ee/butterfly.js';
import { createKindRequest, processNonButterflyResponse, type KindSecrets } from '../ee/kinds.js';
import { ScmsHttpError } from '../http/errors.js';
import { checkKindPermissions, classifyRequest, planKindRequest, type KindPlan } from '../ra/kinds.js';
import { keyPairFromPrivate, keyPairSigner } from '../ee/keys.js';
import { EcaLimitCode } from '../eca/eca.js';
import type { TrustDir } from '../manager/trust-dir.js';
import { iPeriodParamsOf, type GlobalPolicy } from '../policy/index.js';
import type { StoredResponse } from '../ra/pseudonym.js';
import { canonicalIdOf, canonicalKeyFromBytes, type CanonicalKey, type RegisteredDevice } from '../ra/registration.js';
import { encodeChain, SharedFiles, syncPaths, writeBatchManifest, writeBundle, type BatchManifest, type BundleCertificate, type BundleManifest, type BundleSecrets } from './bundle.js';
import { openComponents, type ProvisionComponents } from './components.js';
import { ProvisionState, secretsFromBytes, secretsToBytes, type DeviceRow, type StateCipher } from './state.js';

export class ProvisionError extends Error {
  override readonly name = 'ProvisionError';
}

/** A factory-supplied device: public keys only (hex points, compressed or uncompressed). */
export interface FactoryDeviceKey {
  canonicalPublicKey: string;
  curve?: 'nistP256' | 'brainpoolP256r1';
  /** The device's enrollment public key (P-256): the ECA issues an explicit enrollment certificate for it. */
  enrollmentPublicKey?: string;
  /**
   * The device's unified butterfly keys (public caterpillar key, hex point; AES-128 expansion key, hex): with them
   * the tool also has pseudonyms issued; the bundle then holds the encrypted ACA responses (only the device can
   * open them).
   */
  caterpillarPublicKey?: string;
  expansionKey?: string;
  /**
   * The device's identification key (P-256; with --identification-weeks): explicit certificates certify it as is,
   * implicit ones take it as the ECQV request key R_U (the device keeps k).
   */
  identificationPublicKey?: string;
  /** P-256 public key the ACA encrypts the identification response to (absent: a plain response). */
  identificationEncryptionKey?: string;
}

/** The authorization certificates a batch provisions (one kind per batch: an EE state holds one kind). */
export type AuthorizationKind = 'pseudonym' | 'identification';

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
  /**
   * Identification (RSU application) certificates: one certificate per device valid from the current i-period for
   * W weeks, through the RA's kind logic (ra/kinds.ts); not together with pseudonymWeeks.
   */
  identificationWeeks?: number;
  /** Form of the pseudonym / identification certificates (default implicit; explicit when the ACA key is on a token). */
  form?: 'implicit' | 'explicit';
  /** ECIES recipient of the batch transport key (required unless deviceKeys). */
  transportKey?: EciesPublicKey;
  /** Factory keys, one per device (count = length). */
  deviceKeys?: FactoryDeviceKey[];
  /** Seals the device secrets in the batch state (required unless deviceKeys). */
  statePassphrase?: string;
  /** One .zip per device instead of a directory. */
  archive?: 'zip';
  /** Devices per chunk (default 1000; 25 with pseudonyms, 250 with identification certificates). */
  chunkSize?: number;
  clock: Clock;
  env?: NodeJS.ProcessEnv;
  onProgress?: (p: { completed: number; total: number; issued: number }) => void;
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

/** Sealed in the state between steps (hex strings; butterfly secrets as secretsToBytes writes them). */
interface GeneratedSecrets {
  canonical: string;
  enrollment: string;
  butterfly?: ButterflySecrets;
  /** Identification request secrets (the certificate / ECQV key, the response encryption key). */
  identification?: KindSecrets;
}

const ACTOR = 'provision';
const STATE_FORMAT = 2;

/** The batch id: a digest of what defines the batch (same command = same id). */
export function batchIdOf(params: unknown): string {
  return createHash('sha256').update(JSON.stringify(params)).digest('hex').slice(0, 16);
}

const iso = (t: number) => time32ToDate(Math.floor(t)).toISOString();
const validity = (vp: ValidityPeriod) => ({ validFrom: iso(vp.start), validUntil: iso(validityPeriodEnd(vp)) });
const unhex = (s: string) => fromHex(s.replace(/^0x/i, ''));

// P-256 group order n (SEC 2): private keys are uniform in [1, n-1].
const P256_N = Buffer.from('ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551', 'hex');
const ZERO32 = Buffer.alloc(32);
let keyEcdh: ECDH | undefined;
const keyPool = Buffer.alloc(32 * 512);
let keyPoolOffset = keyPool.length;

/**
 * A P-256 key pair from OpenSSL: 32-octet private key d (uniform in [1, n-1]: 32 random octets, the rare ones
 * outside rejected) and the 65-octet uncompressed public key dG (one reused ECDH object: fixed-base
 * multiplication without building a key object per key).
 */
export function nativeKeyPair(): { d: Uint8Array; publicKey: Uint8Array } {
  keyEcdh ??= createECDH('prime256v1');
  for (;;) {
    if (keyPoolOffset >= keyPool.length) {
      randomFillSync(keyPool);
      keyPoolOffset = 0;
    }
    const d = keyPool.subarray(keyPoolOffset, keyPoolOffset + 32);
    keyPoolOffset += 32;
    if (d.compare(P256_N) >= 0 || d.equals(ZERO32)) continue;
    keyEcdh.setPrivateKey(d);
    const out = { d: new Uint8Array(d), publicKey: new Uint8Array(keyEcdh.getPublicKey()) };
    d.fill(0);
    return out;
  }
}

/** SEC 1 compressed form of an uncompressed point (no arithmetic: the parity of y). */
function compress(uncompressed: Uint8Array): Uint8Array {
  const out = new Uint8Array(33);
  out[0] = 2 + (uncompressed[64]! & 1);
  out.set(uncompressed.subarray(1, 33), 1);
  return out;
}

/** A P-256 public key from the factory, checked to be on the curve (OpenSSL) and compressed. */
function factoryP256(hex: string, what: string): Uint8Array {
  let b: Uint8Array;
  try {
    b = unhex(hex);
  } catch {
    throw new ProvisionError(`${what}: not hex`);
  }
  if (!((b.length === 33 && (b[0] === 2 || b[0] === 3)) || (b.length === 65 && b[0] === 4))) throw new ProvisionError(`${what}: not an encoded P-256 point`);
  try {
    // OpenSSL decodes the point (checking that it is on the curve) and re-encodes it compressed.
    return new Uint8Array(ECDH.convertKey(b, 'prime256v1', undefined, undefined, 'compressed') as Buffer);
  } catch {
    throw new ProvisionError(`${what}: not a point on P-256`);
  }
}

/** Region / PSID choices refused up front (nothing registered or issued) when outside the policy. */
export function checkRequestedPermissions(policy: GlobalPolicy, deviceType: 'obu' | 'rsu', o: { region?: number[]; psids?: number[]; pseudonymWeeks: number; identificationWeeks?: number }): void {
  const dt = deviceType === 'obu' ? 'OBU' : 'RSU';
  const perms = policy.deviceTypes[dt];
  for (const r of o.region ?? []) {
    if (!policy.regions.includes(r)) throw new ProvisionError(`region ${r} is not in the policy regions (${policy.regions.join(', ')}): nothing issued`);
  }
  const enroll = perms.enrollment.map((p) => p.psid);
  const pseudo = perms.pseudonym.map((p) => p.psid);
  const ident = perms.identification.map((p) => p.psid);
  for (const p of o.psids ?? []) {
    if (!enroll.includes(p)) throw new ProvisionError(`psid ${p} is not in the policy's enrollment PSIDs for ${dt} devices (${enroll.join(', ') || 'none'}): nothing issued`);
    if (o.pseudonymWeeks > 0 && !pseudo.includes(p)) {
      throw new ProvisionError(`psid ${p} is not in the policy's pseudonym PSIDs for ${dt} devices (${pseudo.join(', ') || 'none'}): nothing issued`);
    }
    if ((o.identificationWeeks ?? 0) > 0 && !ident.includes(p)) {
      throw new ProvisionError(`psid ${p} is not in the policy's identification PSIDs for ${dt} devices (${ident.join(', ') || 'none'}): nothing issued`);
    }
  }
}

export async function provisionBatch(o: ProvisionBatchOptions): Promise<ProvisionSummary> {
  const started = performance.now();
  const factory = o.deviceKeys !== undefined;
  const count = factory ? o.deviceKeys!.length : o.count;
  if (!Number.isInteger(count) || count < 1) throw new ProvisionError('count must be a positive integer');
  if (!Number.isInteger(o.pseudonymWeeks) || o.pseudonymWeeks < 0) throw new ProvisionError('pseudonyms-weeks must be an integer >= 0');
  const identificationWeeks = o.identificationWeeks ?? 0;
  if (!Number.isInteger(identificationWeeks) || identificationWeeks < 0) throw new ProvisionError('identification-weeks must be an integer >= 0');
  if (o.pseudonymWeeks > 0 && identificationWeeks > 0) {
    throw new ProvisionError('pseudonyms or identification certificates: one kind per batch (a device state holds one kind of authorization certificate)');
  }
  const form = o.form ?? 'implicit';
  if (form !== 'implicit' && form !== 'explicit') throw new ProvisionError(`form ${String(form)}: implicit or explicit`);
  const authzKind: AuthorizationKind | undefined = o.pseudonymWeeks > 0 ? 'pseudonym' : identificationWeeks > 0 ? 'identification' : undefined;
  if (factory && identificationWeeks > 0 && o.deviceKeys!.some((k) => !k.identificationPublicKey)) {
    throw new ProvisionError('with factory keys, identification certificates need each device key to come with its identificationPublicKey (see README "Provisioning bundles")');
  }
  if (factory && o.pseudonymWeeks > 0 && o.deviceKeys!.some((k) => !k.caterpillarPublicKey || !k.expansionKey)) {
    throw new ProvisionError(
      'with factory keys, pseudonyms need each device key to come with its caterpillarPublicKey and expansionKey (see README "Provisioning bundles")',
    );
  }
  if (!factory && !o.transportKey) throw new ProvisionError('generated keys need a transport key (--transport-key)');
  if (!factory && !o.statePassphrase) throw new ProvisionError('generated keys need a state passphrase (SCMS_PROVISION_PASSPHRASE or SCMS_KEYSTORE_PASSPHRASE)');
  const policy = o.trust.globalPolicy?.json;
  if (!policy) throw new ProvisionError(`${o.trust.dir}: no global policy`);
  checkRequestedPermissions(policy, o.deviceType, o);
  const perms = policy.deviceTypes[o.deviceType === 'obu' ? 'OBU' : 'RSU'];
  const enrollPsids = o.psids ?? perms.enrollment.map((p) => p.psid);
  const pseudoPsids = o.psids ?? perms.pseudonym.map((p) => p.psid);
  const idPsids = o.psids ?? perms.identification.map((p) => p.psid);
  if (o.pseudonymWeeks > 0 && pseudoPsids.length === 0) throw new ProvisionError(`the policy grants ${o.deviceType} devices no pseudonym PSIDs: nothing issued`);
  if (identificationWeeks > 0 && idPsids.length === 0) throw new ProvisionError(`the policy grants ${o.deviceType} devices no identification PSIDs: nothing issued`);
  const region = o.region ?? policy.regions;
  // The RA's kind checks (ra/kinds.ts) on a request as the batch will make it: refused up front, nothing recorded.
  if (identificationWeeks > 0) {
    const { request } = createKindRequest({ kind: 'identification', form: 'encrypted', type: form, tbsCert: identificationTbs(policy, o.clock, identificationWeeks, region, idPsids), clock: o.clock });
    kindPlanOf(policy, o.deviceType, o.clock, request, enrollmentPermissions(enrollPsids), 'nothing issued');
  }
  // Implicit (ECQV) certificates need the ACA's private scalar; a PKCS#11 key does not export it (explicit ones are
  // signed in the token).
  const acaEntry = o.trust.byName.get('aca');
  if (authzKind && form === 'implicit' && acaEntry) {
    try {
      await o.stores.exportPrivateScalar(acaEntry.keyUri);
    } catch (e) {
      if (!(e instanceof KeyStoreError) || e.code !== 'NOT_EXPORTABLE') {
        throw new ProvisionError(`the ACA key ${acaEntry.keyUri} cannot be opened: ${(e as Error).message} (set SCMS_KEYSTORE_PASSPHRASE or SCMS_PKCS11_PIN); nothing issued`);
      }
      throw new ProvisionError(
        `implicit ${authzKind} certificates need the ACA's private scalar (ECQV), and the ACA key ${acaEntry.keyUri} does not export it (${e.message}): use --form explicit; nothing issued`,
      );
    }
  }
  const chunkSize = o.chunkSize ?? (o.pseudonymWeeks > 0 ? 25 : identificationWeeks > 0 ? 250 : 1000);
  if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new ProvisionError('chunk size must be a positive integer');
  // Factory keys are checked before anything is recorded.
  const factoryKeys = factory ? o.deviceKeys!.map((k, n) => parseFactoryKey(k, n)) : undefined;

  const outDir = resolve(o.outDir);
  const params = {
    format: STATE_FORMAT,
    trust: o.trust.manifest.ctlSeriesId,
    deviceType: o.deviceType,
    count,
    region,
    psids: o.psids ?? null,
    pseudonymWeeks: o.pseudonymWeeks,
    // added only when used: the ids of batches made before these options stay the same
    ...(identificationWeeks > 0 ? { identificationWeeks } : {}),
    ...(form !== 'implicit' ? { form } : {}),
    transportKey: o.transportKey ? toHex(rekRecipientId(o.transportKey)) : null,
    deviceKeys: factory ? createHash('sha256').update(JSON.stringify(o.deviceKeys)).digest('hex') : null,
    outDir,
    ...(o.archive ? { archive: o.archive } : {}),
  };
  const batchId = batchIdOf(params);
  mkdirSync(outDir, { recursive: true });
  mkdirSync(o.dataDir, { recursive: true });

  const unlock = lockBatch(outDir, batchId);
  let state: ProvisionState | undefined;
  let c: ProvisionComponents | undefined;
  try {
    state = await ProvisionState.open(join(o.dataDir, 'provision.db'));
    const now = () => o.clock.now().getTime();
    const opened = state.openBatch(batchId, params, o.statePassphrase ?? '', now(), factory ? undefined : () => makeTransportKey(o.transportKey!));
    const rows = state.devices(batchId);
    const alreadyDone = [...rows.values()].filter((r) => r.step === 'done').length;
    let issued = 0;
    if (alreadyDone < count) {
      c = await openComponents({ trust: o.trust, stores: o.stores, dataDir: o.dataDir, clock: o.clock, env: o.env ?? process.env, pseudonyms: authzKind !== undefined });
      const ecaCheck = verifyCertificateChain(c.ecaChain, { trustAnchors: c.roots, clock: o.clock });
      if (!ecaCheck.ok) throw new ProvisionError(`the ECA chain does not verify: ${ecaCheck.errors.map((e) => e.reason).join('; ')}`);
      const x: Ctx = {
        o,
        c,
        state,
        cipher: opened.cipher,
        ...(opened.transport ? { transport: opened.transport } : {}),
        batchId,
        outDir,
        factory,
        ...(factoryKeys ? { factoryKeys } : {}),
        enrollPsids,
        pseudoPsids,
        idPsids,
        form,
        ...(authzKind ? { authzKind } : {}),
        identificationWeeks,
        region,
        now,
        ecaChainBytes: encodeChain(c.ecaChain),
        ...(c.pseudonyms ? { acaChainBytes: encodeChain(c.pseudonyms.acaChain) } : {}),
      };
      // The files every bundle of the batch has (chains, transport key): written once, hard-linked into bundles.
      if (!o.archive) {
        x.shared = new SharedFiles(join(outDir, `.shared-${batchId}`), {
          'eca-chain.oer': x.ecaChainBytes,
          ...(x.acaChainBytes ? { 'aca-chain.oer': x.acaChainBytes } : {}),
          ...(x.transport ? { 'transport-key.oer': x.transport.wrap } : {}),
        });
      }
      const todo: number[] = [];
      for (let index = 0; index < count; index++) if (rows.get(index)?.step !== 'done') todo.push(index);
      o.onProgress?.({ completed: alreadyDone, total: count, issued: 0 });
      // A chunk is recorded done once the file-system sync of its bundles has finished; that sync runs while the
      // next chunk is worked on (at most two chunks in flight).
      let previous: Promise<void> | undefined;
      try {
        for (let n = 0; n < todo.length; n += chunkSize) {
          const indices = todo.slice(n, n + chunkSize);
          const devs = await provisionChunk(x, indices.map((i) => rows.get(i) ?? i));
          const synced = syncPaths(outDir, devs.map((d) => join(outDir, bundleName(x, d.row))));
          if (previous) await previous;
          previous = synced.then(async () => {
            await finishChunk(x, devs);
            issued += devs.length;
            o.onProgress?.({ completed: alreadyDone + issued, total: count, issued });
          });
        }
        await previous;
        previous = undefined;
      } finally {
        // an error in a chunk: the previous chunk's sync still finishes (and is recorded) before the state closes
        if (previous) await previous.catch(() => undefined);
        x.shared?.remove();
      }
    }

    // The batch manifest, from the state.
    const final = state.devices(batchId);
    const devices: BatchManifest['devices'] = [];
    let certificates = 0;
    for (let index = 0; index < count; index++) {
      const r = final.get(index)!;
      const n = Number(r.data.certificates ?? 0);
      certificates += n;
      devices.push({ index, deviceId: r.deviceId!, canonicalId: r.canonicalId, dir: o.archive === 'zip' ? `${r.deviceId!}.zip` : r.deviceId!, certificates: n });
    }
    const batchManifest = await writeBatchManifest(outDir, {
      format: 'scms-provision-batch',
      version: 2,
      batchId,
      deviceType: o.deviceType,
      count,
      keys: factory ? 'factory' : 'generated',
      pseudonymWeeks: o.pseudonymWeeks,
      ...(identificationWeeks > 0 ? { identificationWeeks } : {}),
      ...(authzKind ? { form } : {}),
      region,
      psids: o.psids ?? [...new Set([...enrollPsids, ...(o.pseudonymWeeks > 0 ? pseudoPsids : []), ...(identificationWeeks > 0 ? idPsids : [])])],
      devices,
    });
    const seconds = (performance.now() - started) / 1000;
    return { batchId, total: count, issued, alreadyDone, certificates, seconds, devicesPerSecond: seconds > 0 ? issued / seconds : 0, batchManifest, outDir };
  } finally {
    await c?.close();
    state?.close();
    unlock();
  }
}

/** The batch transport key (AES-128) and its wrap: ECIES (rekRecipInfo) to the factory key, 1609.2 6.3.30. */
function makeTransportKey(to: EciesPublicKey): { key: Uint8Array; wrap: Uint8Array } {
  const key = new Uint8Array(randomBytes(16));
  const data = encryptData({ plaintext: SymmetricEncryptionKeyCodec.encode({ aes128Ccm: key }), recipients: [{ kind: 'rek', publicKey: to }] });
  return { key, wrap: Ieee1609Dot2DataCodec.encode(data) };
}

interface ParsedFactoryKey {
  key: CanonicalKey;
  enrollment?: Uint8Array;
  caterpillar?: Uint8Array;
  expansion?: Uint8Array;
  identification?: Uint8Array;
  identificationEncryption?: Uint8Array;
}

function parseFactoryKey(k: FactoryDeviceKey, n: number): ParsedFactoryKey {
  const where = `device key ${n}`;
  let key: CanonicalKey;
  const curve = k.curve ?? 'nistP256';
  if (curve === 'nistP256') {
    const compressed = factoryP256(k.canonicalPublicKey, `${where}: canonicalPublicKey`);
    key = { curve, compressed, canonicalId: canonicalIdOf(compressed) };
  } else {
    key = canonicalKeyFromBytes(unhex(k.canonicalPublicKey), curve, `${where}: canonicalPublicKey`);
  }
  const out: ParsedFactoryKey = { key };
  if (k.enrollmentPublicKey !== undefined) out.enrollment = factoryP256(k.enrollmentPublicKey, `${where}: enrollmentPublicKey`);
  if (k.caterpillarPublicKey !== undefined) out.caterpillar = factoryP256(k.caterpillarPublicKey, `${where}: caterpillarPublicKey`);
  if (k.identificationPublicKey !== undefined) out.identification = factoryP256(k.identificationPublicKey, `${where}: identificationPublicKey`);
  if (k.identificationEncryptionKey !== undefined) out.identificationEncryption = factoryP256(k.identificationEncryptionKey, `${where}: identificationEncryptionKey`);
  if (k.expansionKey !== undefined) {
    const e = unhex(k.expansionKey);
    if (e.length !== 16) throw new ProvisionError(`${where}: expansionKey: 16 octets (AES-128) expected`);
    out.expansion = e;
  }
  if (out.enrollment && toHex(out.enrollment) === toHex(key.compressed)) throw new ProvisionError(`${where}: the enrollment key must not be the canonical key`);
  return out;
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

interface Ctx {
  o: ProvisionBatchOptions;
  c: ProvisionComponents;
  state: ProvisionState;
  cipher: StateCipher;
  transport?: { key: Uint8Array; wrap: Uint8Array };
  batchId: string;
  outDir: string;
  factory: boolean;
  factoryKeys?: ParsedFactoryKey[];
  enrollPsids: number[];
  pseudoPsids: number[];
  idPsids: number[];
  /** Form of the authorization certificates. */
  form: 'implicit' | 'explicit';
  authzKind?: AuthorizationKind;
  identificationWeeks: number;
  region: number[];
  now: () => number;
  ecaChainBytes: Uint8Array;
  acaChainBytes?: Uint8Array;
  shared?: SharedFiles;
}

/** A device during a chunk: its state row and what the steps produce. */
interface Dev {
  row: DeviceRow;
  secrets?: GeneratedSecrets;
  device?: RegisteredDevice;
  enrollment?: { certificate: Certificate; bytes: Uint8Array; hashedId8: string; requestHash: string };
  /** The authorization certificates (pseudonyms or identification) opened with generated keys. */
  pseudonyms: Array<{ i: number; j: number; certificate: Certificate; privateKey: bigint }>;
  responses: StoredResponse[];
}

const hookAll = async (x: Ctx, point: ProvisionHookPoint, devs: readonly Dev[]) => {
  if (x.o.hook) for (const d of devs) await x.o.hook(point, d.row.index);
};

async function provisionChunk(x: Ctx, items: ReadonlyArray<DeviceRow | number>): Promise<Dev[]> {
  const { o, c, state, batchId } = x;

  // 1. Keys (generated ones sealed into the state before anything refers to them) and the enrollment request.
  const fresh: DeviceRow[] = [];
  const template = enrollmentTemplate(x);
  const devs: Dev[] = items.map((it) => {
    if (typeof it !== 'number') {
      const secrets = it.secrets ? secretsFromBytes<GeneratedSecrets>(x.cipher.open(it.secrets)) : undefined;
      return { row: it, ...(secrets ? { secrets } : {}), pseudonyms: [], responses: [] };
    }
    const index = it;
    let row: DeviceRow;
    let secrets: GeneratedSecrets | undefined;
    if (x.factory) {
      const f = x.factoryKeys![index]!;
      row = { index, step: 'keys', canonicalId: f.key.canonicalId, canonicalKey: toHex(f.key.compressed), data: { curve: f.key.curve } };
      if (f.enrollment) {
        row.data.enrollKey = toHex(f.enrollment);
        row.data.enrollRequest = toHex(enrollmentRequest(template, f.enrollment, f.key.canonicalId));
      }
      if (f.caterpillar && o.pseudonymWeeks > 0) row.data.authzRequest = toHex(EeRaCertRequestCodec.encode(factoryButterflyRequest(x, f.caterpillar, f.expansion!)));
      if (f.identification && x.authzKind === 'identification') {
        // Non-butterfly (ra/kinds.ts): the device's own key; the response encrypted to its encryption key, else plain.
        const request = eeRaCertRequest({
          type: x.form,
          curve: 'nistP256',
          tbsCert: identificationTbs(x.c.policy, o.clock, x.identificationWeeks, x.region, x.idPsids),
          publicKey: f.identification,
          ...(f.identificationEncryption ? { additionalParams: { encryptionKey: publicEncryptionKey('nistP256', f.identificationEncryption) } } : {}),
          clock: o.clock,
        });
        row.data.authzRequest = toHex(EeRaCertRequestCodec.encode(request));
      }
    } else {
      const canonical = nativeKeyPair();
      const enrollment = nativeKeyPair();
      const compressed = compress(canonical.publicKey);
      const canonicalId = canonicalIdOf(compressed);
      secrets = { canonical: toHex(canonical.d), enrollment: toHex(enrollment.d) };
      const enrollKey = compress(enrollment.publicKey);
      row = { index, step: 'keys', canonicalId, canonicalKey: toHex(compressed), data: { curve: 'nistP256', enrollKey: toHex(enrollKey), enrollRequest: toHex(enrollmentRequest(template, enrollKey, canonicalId)) } };
      if (o.pseudonymWeeks > 0) {
        const { request, secrets: bf } = createButterflyRequest({
          variant: 'unified',
          type: x.form,
          tbsCert: { validityPeriod: pseudonymValidity(x), region: regionOf(x), appPermissions: x.pseudoPsids.map((psid) => ({ psid: BigInt(psid) })) },
          clock: o.clock,
        });
        secrets.butterfly = bf;
        row.data.authzRequest = toHex(EeRaCertRequestCodec.encode(request));
      } else if (x.authzKind === 'identification') {
        // Non-butterfly, the response encrypted to a key of the device's (AdditionalParams encryptionKey).
        const { request, secrets: id } = createKindRequest({
          kind: 'identification',
          form: 'encrypted',
          type: x.form,
          tbsCert: identificationTbs(x.c.policy, o.clock, x.identificationWeeks, x.region, x.idPsids),
          clock: o.clock,
        });
        secrets.identification = id;
        row.data.authzRequest = toHex(EeRaCertRequestCodec.encode(request));
      }
      row.secrets = x.cipher.seal(secretsToBytes(secrets));
    }
    fresh.push(row);
    return { row, ...(secrets ? { secrets } : {}), pseudonyms: [], responses: [] };
  });
  if (fresh.length) state.insert(batchId, fresh, x.now());

  // 2. Registration (idempotent by canonical key): one RA transaction for the chunk.
  const registered = c.registrationBatch.registerMany(
    devs.map((d) => ({ deviceType: o.deviceType, key: keyOf(d.row), region: x.region })),
    ACTOR,
  );
  devs.forEach((d, n) => {
    const dev = registered[n]!.device;
    if (dev.deviceType !== o.deviceType) throw new ProvisionError(`device ${d.row.index}: its canonical key is registered as ${dev.deviceType}`);
    d.device = dev;
    if (d.row.deviceId && d.row.deviceId !== dev.deviceId) throw new ProvisionError(`device ${d.row.index}: registered as ${dev.deviceId}, the state says ${d.row.deviceId}`);
    if (d.row.step === 'keys') {
      d.row.deviceId = dev.deviceId;
      d.row.step = 'registered';
    }
  });
  // Not recorded here: registration is idempotent by canonical key (the device id is found again on resume).
  await hookAll(x, 'registered', devs);

  // 3. Enrollment through the ECA's factory path (one ECA transaction, one RA transaction).
  const toEnroll = devs.filter((d) => d.row.data.enrollRequest);
  if (toEnroll.length) await enroll(x, toEnroll);
  // Not recorded here either: the factory path returns the recorded certificate for the same request octets.
  await hookAll(x, 'enrollment-issued', toEnroll);

  // 4. Pseudonyms / identification certificates: one PseudonymService batch for every device of the chunk that has
  // no stored responses yet.
  if (x.authzKind) await authorizations(x, devs);

  // 5. Bundles (then one file-system sync and finishChunk, in provisionBatch).
  for (const d of devs) {
    d.row.data.certificates = String(writeDeviceBundle(x, d));
    await x.o.hook?.('bundle-written', d.row.index);
  }
  return devs;
}

const bundleName = (x: Ctx, row: DeviceRow) => (x.o.archive === 'zip' ? `${row.deviceId!}.zip` : row.deviceId!);

/** The chunk's bundles are on disk: recorded done, the device secrets dropped from the state. */
async function finishChunk(x: Ctx, devs: readonly Dev[]): Promise<void> {
  for (const d of devs) {
    d.row.step = 'done';
    // what a finished device keeps in the state: public summary values (requests and secrets are dropped)
    const { curve, certificates, authzHash } = d.row.data;
    d.row.data = { ...(curve ? { curve } : {}), certificates: certificates!, ...(authzHash ? { authzHash } : {}) };
  }
  x.state.save(x.batchId, devs.map((d) => d.row), x.now());
  await hookAll(x, 'done', devs);
}

function keyOf(row: DeviceRow): CanonicalKey {
  return { curve: (row.data.curve as CanonicalKey['curve'] | undefined) ?? 'nistP256', compressed: fromHex(row.canonicalKey), canonicalId: row.canonicalId };
}

/** The EeEcaCertRequest fields every device of the batch shares (its verification key and canonicalId differ). */
function enrollmentTemplate(x: Ctx): { request: Omit<EeEcaCertRequest, 'canonicalId'>; tbs: ToBeSignedCertificate } {
  const generationTime = nowTime32(x.o.clock);
  // at most the policy's enrollmentValidity, and not beyond the ECA certificate
  const seconds = enrollmentSeconds(x.c.policy.enrollmentValidity, x.c.ecaChain[0]!.toBeSigned.validityPeriod, generationTime);
  const tbs = buildTbsCertificate({
    id: 'none',
    validity: { start: time32ToDate(generationTime), durationSeconds: seconds },
    region: { countries: x.region },
    certRequestPermissions: [{ psids: x.enrollPsids.map((p) => BigInt(p)), eeType: { app: true, enrol: true } }],
    canRequestRollover: false,
  });
  return { request: { version: 2, generationTime, type: 'explicit', tbsCert: tbs as EeEcaCertRequest['tbsCert'] }, tbs };
}

/** COER EeEcaCertRequest for one device (1609.2.1 EcaEeInterface): the factory request (eca/factory.ts). */
function enrollmentRequest(t: ReturnType<typeof enrollmentTemplate>, enrollmentKey: Uint8Array, canonicalId: string): Uint8Array {
  const tbsCert = { ...t.tbs, verifyKeyIndicator: { verificationKey: publicVerificationKey('nistP256', enrollmentKey) } } as EeEcaCertRequest['tbsCert'];
  return EeEcaCertRequestCodec.encode({ ...t.request, tbsCert, canonicalId });
}

async function enroll(x: Ctx, devs: Dev[]): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const results = await x.c.ecaFactory.enroll(devs.map((d) => ({ device: d.device!, request: fromHex(d.row.data.enrollRequest!) })));
    const stale: Dev[] = [];
    for (const [n, r] of results.entries()) {
      const d = devs[n]!;
      if (!r.ok) {
        // A request recorded long ago (a batch resumed after eca-maxAge): a fresh one, as an EE would send.
        if (r.code === EcaLimitCode.maxAge && attempt === 0) {
          stale.push(d);
          continue;
        }
        throw new ProvisionError(`device ${d.row.index}: enrollment refused by the ECA (${r.status}-${r.code}): ${r.reason}`);
      }
      // The certificate must carry the requested key (the EE's check; explicit certificate, compressed point).
      const vki = r.certificate.toBeSigned.verifyKeyIndicator;
      const got = 'verificationKey' in vki ? fromPublicVerificationKey(vki.verificationKey) : undefined;
      if (!got || toHex(got.publicKey) !== d.row.data.enrollKey) throw new ProvisionError(`device ${d.row.index}: the enrollment certificate does not carry the requested key`);
      d.enrollment = { certificate: r.certificate, bytes: r.bytes, hashedId8: r.hashedId8, requestHash: r.requestHash };
    }
    if (!stale.length) break;
    const t = enrollmentTemplate(x);
    for (const d of stale) {
      d.row.data.enrollRequest = toHex(enrollmentRequest(t, fromHex(d.row.data.enrollKey!), d.row.canonicalId));
    }
    x.state.save(x.batchId, stale.map((d) => d.row), x.now()); // recorded before the ECA sees it
    devs = stale;
  }
  // One signature check per chunk with the ECA chain (the rest: the requested key, above).
  const first = devs.find((d) => d.enrollment);
  if (first) {
    const v = verifyCertificateChain([first.enrollment!.certificate, ...x.c.ecaChain], { trustAnchors: x.c.roots, clock: x.o.clock, skipCurrentValidity: true });
    if (!v.ok) throw new ProvisionError(`device ${first.row.index}: the enrollment certificate does not verify: ${v.errors.map((e) => e.reason).join('; ')}`);
  }
}

/** At most `max` seconds, ending before the ECA certificate, in whole hours (a Duration in hours is exact). */
function enrollmentSeconds(max: number, eca: ValidityPeriod, now: number): number {
  const s = Math.min(max, Math.floor(validityPeriodEnd(eca)) - now - 3600);
  return Math.max(3600, Math.floor(s / 3600) * 3600);
}

/** The requested region as a 1609.2 GeographicRegion (identifiedRegion of CountryOnly). */
const regionOf = (x: Ctx) => ({ identifiedRegion: x.region.map((c) => ({ countryOnly: c })) });

function pseudonymValidity(x: Ctx): ValidityPeriod {
  const ip = iPeriodParamsOf(x.c.policy);
  const i0 = iPeriodOf(ip, dateToTime32(x.o.clock.now()));
  return { start: iPeriodStart(ip, i0), duration: { hours: Math.min(65535, x.o.pseudonymWeeks * 7 * 24) } };
}

function factoryButterflyRequest(x: Ctx, caterpillar: Uint8Array, expansion: Uint8Array): EeRaCertRequest {
  return {
    version: 2,
    generationTime: nowTime32(x.o.clock),
    type: x.form,
    tbsCert: {
      id: { none: null },
      cracaId: new Uint8Array(3),
      crlSeries: 0,
      validityPeriod: pseudonymValidity(x),
      region: regionOf(x),
      appPermissions: x.pseudoPsids.map((psid) => ({ psid: BigInt(psid) })),
      verifyKeyIndicator: { verificationKey: publicVerificationKey('nistP256', caterpillar) },
    },
    additionalParams: { unified: { aes128: expansion } },
  };
}

/**
 * The requested contents of an identification certificate: validity from the start of the current i-period for W
 * weeks (checked against identificationValidity by planKindRequest), the batch's region and PSIDs.
 */
function identificationTbs(policy: GlobalPolicy, clock: Clock, weeks: number, region: number[], psids: number[]) {
  const ip = iPeriodParamsOf(policy);
  const i0 = iPeriodOf(ip, dateToTime32(clock.now()));
  return {
    validityPeriod: { start: iPeriodStart(ip, i0), duration: { hours: Math.min(65535, weeks * 7 * 24) } },
    region: { identifiedRegion: region.map((c) => ({ countryOnly: c })) },
    appPermissions: psids.map((psid) => ({ psid: BigInt(psid) })),
  };
}

type CertRequestPermissions = NonNullable<ToBeSignedCertificate['certRequestPermissions']>;

/** The certRequestPermissions an enrollment certificate of the batch carries (before one is issued). */
function enrollmentPermissions(psids: number[]): CertRequestPermissions {
  return [{ subjectPermissions: { explicit: psids.map((p) => ({ psid: BigInt(p) })) }, minChainLength: 0, chainLengthRange: 0, eeType: '11' }] as unknown as CertRequestPermissions;
}

/**
 * The RA's checks of an identification request as the online flow makes them (ra/authorization.ts
 * acceptAuthorizationRequest -> ra/kinds.ts): kind from tbsCert.id and the device type, the policy's
 * identification PSIDs within the enrollment certificate's certRequestPermissions, form and validity
 * (identificationValidity); the plan of its one certificate (i = the i-period of its start, j = 0).
 */
function kindPlanOf(policy: GlobalPolicy, deviceType: 'obu' | 'rsu', clock: Clock, request: EeRaCertRequest, perms: CertRequestPermissions, suffix?: string): KindPlan {
  const cls = classifyRequest(request, deviceType);
  try {
    checkKindPermissions(request, cls, perms, deviceType, policy);
    const first = iPeriodOf(iPeriodParamsOf(policy), Math.max(nowTime32(clock), request.tbsCert.validityPeriod.start));
    return planKindRequest(request, cls, policy, first);
  } catch (e) {
    if (e instanceof ScmsHttpError) throw new ProvisionError(`identification certificates: the RA refuses the request (${e.status}-${e.code}: ${e.reason})${suffix ? `: ${suffix}` : ''}`);
    throw e;
  }
}

/**
 * The RA's authorization pipeline for the chunk's devices (idempotent): pseudonyms for the first W i-periods
 * (butterfly, PseudonymService.processBatch with the LAs' linkage values), or one identification certificate each
 * (non-butterfly, PseudonymService.processKinds with the plan of the RA's kind checks).
 */
async function authorizations(x: Ctx, devs: Dev[]): Promise<void> {
  const { o, c, state, batchId } = x;
  const p = c.pseudonyms!;
  const ip = iPeriodParamsOf(c.policy);
  const identification = x.authzKind === 'identification';
  const withRequest = devs.filter((d) => d.row.data.authzRequest);
  // The request hash: generated keys, that of the EeRaCertRequestSpdu an online EE would send (signed with its
  // enrollment certificate, encrypted to the RA); factory keys (no enrollment key here), HashedId8 of the COER
  // EeRaCertRequest. Recorded (with an identification request's plan) before the RA issues anything.
  const hashed: Dev[] = [];
  for (const d of withRequest) {
    if (d.row.data.authzHash) continue;
    const request = EeRaCertRequestCodec.decode(fromHex(d.row.data.authzRequest!));
    if (identification) {
      const perms = d.enrollment?.certificate.toBeSigned.certRequestPermissions ?? enrollmentPermissions(x.enrollPsids);
      d.row.data.plan = JSON.stringify(kindPlanOf(c.policy, o.deviceType, o.clock, request, perms, `device ${d.row.index}`));
    }
    let hash: Uint8Array;
    if (d.secrets && d.enrollment) {
      const kp = keyPairFromPrivate('nistP256', bytesToBigInt(fromHex(d.secrets.enrollment)));
      hash = (await buildAuthorizationRequest({ request, enrollment: { certificate: d.enrollment.certificate, signer: keyPairSigner(kp) }, raCertificate: c.raCertificate })).requestHash;
    } else hash = sha256(fromHex(d.row.data.authzRequest!)).slice(-8);
    d.row.data.authzHash = toHex(hash);
    d.row.data.iFirst = String(iPeriodOf(ip, request.tbsCert.validityPeriod.start));
    hashed.push(d);
  }
  if (hashed.length) state.save(batchId, hashed.map((d) => d.row), x.now());

  const pending = withRequest.filter((d) => d.row.step !== 'authorized');
  const jobs = [];
  const kindJobs = [];
  for (const d of pending) {
    const stored = await p.service.download(fromHex(d.row.data.authzHash!));
    if (stored.length) continue; // issued by an interrupted run (responses of one batch are stored together)
    const requestHash = fromHex(d.row.data.authzHash!);
    const request = EeRaCertRequestCodec.decode(fromHex(d.row.data.authzRequest!));
    if (identification) {
      kindJobs.push({ requestHash, request, plan: JSON.parse(d.row.data.plan!) as KindPlan });
      continue;
    }
    const first = Number(d.row.data.iFirst);
    jobs.push({ requestHash, request, chainKey: d.row.deviceId!, iRange: { first, last: first + o.pseudonymWeeks - 1 } });
  }
  for (const report of [jobs.length ? await p.service.processBatch(jobs) : undefined, kindJobs.length ? await p.service.processKinds(kindJobs) : undefined]) {
    if (report?.failed.length) throw new ProvisionError(`${report.failed.length} ${x.authzKind} certificates failed: ${report.failed[0]!.error}`);
  }
  await hookAll(x, 'pseudonyms-issued', pending);
  if (pending.length) {
    c.registrationBatch.recordCertificateMany(
      pending.map((d) => ({ deviceId: d.row.deviceId!, certificate: { kind: 'authorization-batch', hashedId8: d.row.data.authzHash!, issuer: 'ra' } })),
      'ra',
    );
    for (const d of pending) d.row.step = 'authorized';
    state.save(batchId, pending.map((d) => d.row), x.now());
  }

  // The EE side: generated keys open their responses (certificates + private keys for the bundle: ee/authorization.ts
  // for butterfly, ee/kinds.ts for non-butterfly responses); factory keys get the responses as they are.
  for (const d of withRequest) {
    d.responses = await p.service.download(fromHex(d.row.data.authzHash!));
    if (!d.secrets) continue;
    for (const r of d.responses) {
      if (d.secrets.identification) {
        const k = d.secrets.identification as Extract<KindSecrets, { form: 'plain' | 'encrypted' }>;
        const opened = await processNonButterflyResponse(r.response, k, { acaChain: p.acaChain, trustAnchors: c.roots, clock: o.clock });
        d.pseudonyms.push({ i: r.i, j: r.j, certificate: opened.certificate, privateKey: opened.privateKey });
        continue;
      }
      if (!d.secrets.butterfly) continue;
      d.pseudonyms.push(
        await processAuthorizationResponse({
          secrets: d.secrets.butterfly,
          i: r.i,
          j: r.j,
          kind: r.kind as 'private' | 'cubk',
          response: r.response,
          acaChain: p.acaChain,
          trustAnchors: c.roots,
          clock: o.clock,
        }),
      );
    }
  }
}

/** Writes the device's bundle; returns the number of certificates in it. */
function writeDeviceBundle(x: Ctx, d: Dev): number {
  const { o } = x;
  const files: Record<string, Uint8Array> = {};
  const certs: BundleCertificate[] = [];
  const steps: BundleManifest['steps'] = ['registered'];
  const responses: NonNullable<BundleManifest['pseudonymResponses']> = [];
  const identification = x.authzKind === 'identification';
  const certDir = identification ? 'identification' : 'pseudonyms';
  if (d.enrollment) {
    steps.push('enrolled');
    files['enrollment.oer'] = d.enrollment.bytes;
    files['eca-chain.oer'] = x.ecaChainBytes;
    certs.push({ file: 'enrollment.oer', kind: 'enrollment', hashedId8: d.enrollment.hashedId8, ...validity(d.enrollment.certificate.toBeSigned.validityPeriod) });
  }
  if (d.pseudonyms.length || d.responses.length) {
    steps.push(identification ? 'identification' : 'pseudonyms');
    files['aca-chain.oer'] = x.acaChainBytes!;
  }
  for (const p of [...d.pseudonyms].sort((a, b) => a.i - b.i || a.j - b.j)) {
    const file = `${certDir}/${p.i}_${p.j}.oer`;
    const bytes = encodeCertificate(p.certificate);
    files[file] = bytes;
    certs.push({ file, kind: identification ? 'identification' : 'pseudonym', hashedId8: toHex(certificateHashedId8(bytes)), ...validity(p.certificate.toBeSigned.validityPeriod), i: p.i, j: p.j });
  }
  if (!d.secrets) {
    for (const r of [...d.responses].sort((a, b) => a.i - b.i || a.j - b.j)) {
      const file = `responses/${r.i}_${r.j}.oer`;
      files[file] = r.response;
      responses.push({ file, i: r.i, j: r.j, kind: r.kind });
    }
  }
  if (d.secrets) {
    const keys = [...d.pseudonyms].sort((a, b) => a.i - b.i || a.j - b.j).map((p) => ({ i: p.i, j: p.j, privateKey: toHex(bigIntToBytes(p.privateKey, 32)) }));
    const plain: BundleSecrets = {
      canonicalPrivateKey: d.secrets.canonical,
      enrollmentPrivateKey: d.secrets.enrollment,
      pseudonyms: identification ? [] : keys,
      ...(identification ? { identification: keys } : {}),
      ...(d.secrets.butterfly ? { butterfly: butterflyHex(d.secrets.butterfly) } : {}),
    };
    const data = encryptData({ plaintext: new TextEncoder().encode(JSON.stringify(plain)), recipients: [{ kind: 'symmetric', key: x.transport!.key }] });
    files['keys.oer'] = Ieee1609Dot2DataCodec.encode(data);
    files['transport-key.oer'] = x.transport!.wrap;
  }
  const manifest: BundleManifest = {
    format: 'scms-provision-bundle',
    version: 2,
    batchId: x.batchId,
    index: d.row.index,
    deviceId: d.row.deviceId!,
    canonicalId: d.row.canonicalId,
    canonicalPublicKey: d.row.canonicalKey,
    deviceType: o.deviceType,
    keys: x.factory ? 'factory' : 'generated',
    steps,
    certificates: certs,
    ...(responses.length ? (identification ? { identificationResponses: responses } : { pseudonymResponses: responses }) : {}),
    ...(d.pseudonyms.length || d.responses.length ? { form: x.form } : {}),
    ...(d.secrets ? { transportKeyId: toHex(rekRecipientId(o.transportKey!)) } : {}),
    ...(d.enrollment ? { enrollmentRequestHash: d.enrollment.requestHash } : {}),
    ...(d.row.data.authzHash ? { authorizationRequestHash: d.row.data.authzHash } : {}),
  };
  writeBundle(x.outDir, x.batchId, manifest, files, o.archive, x.shared);
  return certs.length;
}

function butterflyHex(b: ButterflySecrets): Record<string, string> {
  const out: Record<string, string> = { curve: b.curve, type: b.type };
  for (const [k, v] of Object.entries(b.params as ButterflyPrivateParams)) {
    out[k] = typeof v === 'bigint' ? toHex(bigIntToBytes(v, 32)) : v instanceof Uint8Array ? toHex(v) : String(v);
  }
  return out;
}
