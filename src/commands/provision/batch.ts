import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Flags } from '@oclif/core';
import cliProgress from 'cli-progress';
import { ScmsCommand } from '../../cli/base.js';
import { fromHex } from '../../crypto/bytes.js';
import { decodePoint } from '../../crypto/curves.js';
import { openStores } from '../../engine/manager/init.js';
import { ProvisionSetupError } from '../../engine/provision/components.js';
import { provisionBatch, ProvisionError, type FactoryDeviceKey, type ProvisionHookPoint } from '../../engine/provision/batch.js';
import { ProvisionStateError } from '../../engine/provision/state.js';
import { openTrust } from '../../engine/serve.js';
import { ConfigError } from '../../engine/config.js';
import { RegistrationInputError } from '../../engine/ra/registration.js';
import type { EciesPublicKey } from '../../security/encryption.js';
import { systemClock } from '../../security/time.js';

/** A P-256 public key from a file: hex (compressed or uncompressed point), 33/65 raw octets, or a PEM SPKI. */
export function readTransportKey(path: string): EciesPublicKey {
  const raw = readFileSync(path);
  const text = raw.toString('utf8').trim();
  let point: Uint8Array;
  if (text.startsWith('-----BEGIN')) {
    const jwk = createPublicKey(text).export({ format: 'jwk' });
    if (jwk.crv !== 'P-256' || !jwk.x || !jwk.y) throw new ProvisionError(`${path}: not a P-256 public key`);
    point = new Uint8Array([4, ...Buffer.from(jwk.x, 'base64url'), ...Buffer.from(jwk.y, 'base64url')]);
  } else if (/^(0x)?[0-9a-fA-F]+$/.test(text)) point = fromHex(text.replace(/^0x/i, ''));
  else point = new Uint8Array(raw);
  try {
    decodePoint('nistP256', point);
  } catch {
    throw new ProvisionError(`${path}: not a P-256 public key (hex point, raw point or PEM)`);
  }
  return { curve: 'nistP256', publicKey: point };
}

const FACTORY_FIELDS = ['canonicalPublicKey', 'curve', 'enrollmentPublicKey', 'caterpillarPublicKey', 'expansionKey', 'identificationPublicKey', 'identificationEncryptionKey'];

/**
 * Factory keys (README "Provisioning bundles"): JSON (an array of hex strings or of objects with the
 * FACTORY_FIELDS, or { devices: [...] }) or CSV, one device per line; a header line naming the columns
 * (canonicalPublicKey first) may give them in any order, without one the columns are
 * canonicalPublicKey,curve,enrollmentPublicKey,caterpillarPublicKey,expansionKey,identificationPublicKey,
 * identificationEncryptionKey (trailing ones may be left out,
 * empty cells are absent values).
 */
export function readDeviceKeys(path: string): FactoryDeviceKey[] {
  const text = readFileSync(path, 'utf8').trim();
  const one = (v: unknown, n: number): FactoryDeviceKey => {
    if (typeof v === 'string') return { canonicalPublicKey: v };
    const o = v as Record<string, unknown> | null;
    if (!o || typeof o.canonicalPublicKey !== 'string') throw new ProvisionError(`${path}: entry ${n} has no canonicalPublicKey`);
    for (const k of Object.keys(o)) {
      if (!FACTORY_FIELDS.includes(k)) {
        throw new ProvisionError(`${path}: entry ${n}: unknown field ${k} (public keys only: ${FACTORY_FIELDS.join(', ')})`);
      }
      if (typeof o[k] !== 'string') throw new ProvisionError(`${path}: entry ${n}: ${k} must be a string`);
    }
    if (o.curve !== undefined && o.curve !== 'nistP256' && o.curve !== 'brainpoolP256r1') throw new ProvisionError(`${path}: entry ${n}: curve nistP256 or brainpoolP256r1`);
    if ((o.caterpillarPublicKey === undefined) !== (o.expansionKey === undefined)) {
      throw new ProvisionError(`${path}: entry ${n}: caterpillarPublicKey and expansionKey go together`);
    }
    if (o.identificationEncryptionKey !== undefined && o.identificationPublicKey === undefined) {
      throw new ProvisionError(`${path}: entry ${n}: identificationEncryptionKey without identificationPublicKey`);
    }
    return o as unknown as FactoryDeviceKey;
  };
  if (text.startsWith('[') || text.startsWith('{')) {
    const j = JSON.parse(text) as unknown;
    const list = Array.isArray(j) ? j : (j as { devices?: unknown }).devices;
    if (!Array.isArray(list)) throw new ProvisionError(`${path}: expected an array of keys or { "devices": [...] }`);
    return list.map(one);
  }
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  let columns = FACTORY_FIELDS;
  if (lines[0] && /canonicalPublicKey/.test(lines[0])) {
    columns = lines.shift()!.split(',').map((s) => s.trim());
    for (const c of columns) if (!FACTORY_FIELDS.includes(c)) throw new ProvisionError(`${path}: unknown column ${c} (public keys only: ${FACTORY_FIELDS.join(', ')})`);
  }
  return lines.map((l, n) => {
    const cells = l.split(',').map((s) => s.trim());
    if (cells.length > columns.length) throw new ProvisionError(`${path}: line ${n + 1} has ${cells.length} columns, expected at most ${columns.length}`);
    const o: Record<string, string> = {};
    cells.forEach((v, k) => {
      if (v) o[columns[k]!] = v;
    });
    return one(o, n);
  });
}

const HOOK_POINTS: readonly ProvisionHookPoint[] = ['registered', 'enrollment-issued', 'pseudonyms-issued', 'bundle-written', 'done'];

/** Test-only: SCMS_PROVISION_TEST_KILL=<point>:<index> kills the process (SIGKILL) at that point. */
function testHook(env: NodeJS.ProcessEnv) {
  const v = env.SCMS_PROVISION_TEST_KILL;
  if (!v) return undefined;
  const [point, index] = v.split(':');
  if (!HOOK_POINTS.includes(point as ProvisionHookPoint)) return undefined;
  return (p: ProvisionHookPoint, i: number) => {
    if (p === point && i === Number(index)) process.kill(process.pid, 'SIGKILL');
  };
}

export default class ProvisionBatch extends ScmsCommand {
  static override description =
    'Issue N device credential bundles offline (factory line) through the same RA/ECA/LA/ACA logic as the online flow: ' +
    'registration, enrollment certificate and optionally pseudonym certificates for the first W i-periods or an ' +
    'identification certificate valid W weeks, implicit or explicit (--form; explicit when the ACA key is on a PKCS#11 token). Generated ' +
    'private keys are written only encrypted to the factory transport key. Resumable: re-run the same command after an ' +
    'interruption; a finished batch is left unchanged. Keys of the trust directory: SCMS_KEYSTORE_PASSPHRASE (or ' +
    'SCMS_PKCS11_PIN); the batch state seals device secrets with SCMS_PROVISION_PASSPHRASE (default: the keystore passphrase).';
  static override enableJsonFlag = true;
  static override examples = [
    'SCMS_KEYSTORE_PASSPHRASE=... <%= config.bin %> provision batch --trust ./scms --data ./data --count 100 --type obu --pseudonyms-weeks 1 --transport-key factory.pub --out ./bundles',
    '<%= config.bin %> provision batch --trust ./scms --data ./data --type rsu --device-keys keys.csv --out ./bundles --json',
    'SCMS_PKCS11_PIN=... <%= config.bin %> provision batch --trust ./scms --data ./data --count 10 --type rsu --identification-weeks 52 --form explicit --transport-key factory.pub --out ./bundles',
  ];
  static override flags = {
    trust: Flags.string({ description: 'trust directory written by `scms manager init`', required: true }),
    data: Flags.string({ description: 'data directory: the component databases (ra.db, eca.db, la1.db, la2.db) and provision.db', required: true }),
    out: Flags.string({ description: 'output directory: one bundle directory per device and the batch manifest', required: true }),
    count: Flags.integer({ description: 'number of devices (with --device-keys: the number of keys in the file)', min: 1 }),
    type: Flags.string({ description: 'device type', options: ['obu', 'rsu'], required: true }),
    region: Flags.integer({ description: 'country code (CountryOnly), repeatable [default: the policy regions]', multiple: true, min: 1, max: 65535 }),
    psid: Flags.integer({ description: 'PSID of the requested permissions, repeatable [default: the policy lists of the device type]', multiple: true, min: 0 }),
    'pseudonyms-weeks': Flags.integer({ description: 'pseudonym certificates for the first W i-periods (0: none)', default: 0, min: 0, max: 520 }),
    'identification-weeks': Flags.integer({
      description: 'one identification (application) certificate per device, valid W weeks from the current i-period, PSIDs of the policy\'s deviceTypes.<OBU|RSU>.identification (0: none; not with --pseudonyms-weeks)',
      default: 0,
      min: 0,
      max: 390,
    }),
    form: Flags.string({ description: 'pseudonym / identification certificates: implicit (ECQV: the ACA key must export its scalar) or explicit (signed where the ACA key is, e.g. in a PKCS#11 token)', options: ['implicit', 'explicit'], default: 'implicit' }),
    'device-keys': Flags.string({
      description:
        'factory public keys (JSON or CSV, README "Provisioning bundles"): canonical key (registration), optionally the enrollment public key (then an explicit enrollment certificate), the unified butterfly caterpillar public key + expansion key (then pseudonyms) and the identification public key + optional response encryption key (then identification certificates); no private key leaves the device',
    }),
    archive: Flags.string({ description: 'one OUT/<deviceId>.zip per device instead of a directory', options: ['zip'] }),
    'chunk-size': Flags.integer({ description: 'devices per chunk: one transaction per step and one file-system sync per chunk [default: 1000, 25 with pseudonyms, 250 with identification certificates]', min: 1 }),
    'transport-key': Flags.string({ description: 'factory P-256 public key (hex point or PEM): generated private keys are encrypted to it' }),
  };

  async run() {
    const { flags } = await this.parse(ProvisionBatch);
    const json = flags.json === true;
    const env = process.env;
    let bar: cliProgress.SingleBar | undefined;
    let t0 = 0;
    const onSigint = () => {
      bar?.stop();
      process.stderr.write('interrupted: run the same command again to resume\n');
      process.exit(130);
    };
    try {
      const deviceKeys = flags['device-keys'] ? readDeviceKeys(flags['device-keys']) : undefined;
      if (deviceKeys && flags['transport-key']) throw new ProvisionError('--transport-key is for generated keys; with --device-keys no private key is handled');
      if (deviceKeys && flags.count !== undefined && flags.count !== deviceKeys.length) {
        throw new ProvisionError(`--count ${flags.count} but ${flags['device-keys']} holds ${deviceKeys.length} keys`);
      }
      if (!deviceKeys && flags.count === undefined) throw new ProvisionError('--count is required (or --device-keys)');
      const transportKey = flags['transport-key'] ? readTransportKey(flags['transport-key']) : undefined;
      const trust = openTrust(flags.trust);
      const stores = openStores(flags.trust, {
        ...(env.SCMS_KEYSTORE_PASSPHRASE ? { passphrase: env.SCMS_KEYSTORE_PASSPHRASE } : {}),
        ...(env.SCMS_PKCS11_PIN ? { pin: env.SCMS_PKCS11_PIN } : {}),
        ...(env.SCMS_PKCS11_MODULE ? { modulePath: env.SCMS_PKCS11_MODULE } : {}),
      });
      const statePassphrase = env.SCMS_PROVISION_PASSPHRASE || env.SCMS_KEYSTORE_PASSPHRASE;
      const hook = testHook(env);
      try {
        const summary = await provisionBatch({
          trust,
          stores,
          dataDir: flags.data,
          outDir: flags.out,
          count: deviceKeys?.length ?? flags.count!,
          deviceType: flags.type as 'obu' | 'rsu',
          ...(flags.region ? { region: flags.region } : {}),
          ...(flags.psid ? { psids: flags.psid } : {}),
          pseudonymWeeks: flags['pseudonyms-weeks'],
          identificationWeeks: flags['identification-weeks'],
          form: flags.form as 'implicit' | 'explicit',
          ...(flags['chunk-size'] ? { chunkSize: flags['chunk-size'] } : {}),
          ...(flags.archive === 'zip' ? { archive: 'zip' as const } : {}),
          ...(transportKey ? { transportKey } : {}),
          ...(deviceKeys ? { deviceKeys } : {}),
          ...(statePassphrase ? { statePassphrase } : {}),
          clock: systemClock,
          env,
          ...(hook ? { hook } : {}),
          onProgress: (p) => {
            if (json || !process.stderr.isTTY) return;
            if (!bar) {
              bar = new cliProgress.SingleBar(
                { format: 'provision |{bar}| {value}/{total} devices | {rate} devices/s | ETA {eta_formatted}', stream: process.stderr, etaBuffer: 20 },
                cliProgress.Presets.shades_classic,
              );
              bar.start(p.total, p.completed, { rate: '-' });
              // Ctrl-C: restore the terminal (line wrap); the batch state is consistent at any point, re-run to resume.
              process.once('SIGINT', onSigint);
              t0 = performance.now();
              return;
            }
            const s = (performance.now() - t0) / 1000;
            bar.update(p.completed, { rate: s > 0 ? (p.issued / s).toFixed(1) : '-' });
          },
        });
        bar?.stop();
        process.off('SIGINT', onSigint);
        if (!json) {
          this.log(
            `batch ${summary.batchId}: ${summary.total} devices (${summary.issued} issued now, ${summary.alreadyDone} already done), ` +
              `${summary.certificates} certificates in ${summary.outDir}`,
          );
          this.log(`throughput: ${summary.issued} devices in ${summary.seconds.toFixed(2)} s = ${summary.devicesPerSecond.toFixed(1)} devices/s`);
          this.log(`batch manifest: ${summary.batchManifest}`);
        }
        return summary;
      } finally {
        await stores.close();
      }
    } catch (e) {
      bar?.stop();
      process.off('SIGINT', onSigint);
      if (e instanceof ProvisionError || e instanceof ProvisionSetupError || e instanceof ProvisionStateError || e instanceof ConfigError || e instanceof RegistrationInputError) {
        this.fail(e.message, 2);
      }
      throw e;
    }
  }
}
