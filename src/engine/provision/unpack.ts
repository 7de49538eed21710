// Brings a provisioned device (a generated-key bundle, bundle.ts) into the `scms ee simulate --state DIR` layout
// (src/engine/ee/state.ts) (a bundle directory or, with --archive zip, its .zip), so the simulator can take the device online: transport-key.oer is opened with the
// factory's transport private key, keys.oer with the batch transport key inside it, and every private key goes straight into the state's encrypted keystore; certificates
// are copied to the simulator's paths; state.json records canonical key, registration and enrollment as done,
// and the pseudonym or identification certificates (certs/<kind>/<i hex>_<j hex>.oer, keys <kind>-<i hex>-<j hex>, as
// the simulator's download step writes them). The state's configuration is what the device asks for next online:
// pseudonyms with unified butterfly keys, or identification certificates (non-butterfly, response encrypted), in
// the bundle's form (implicit | explicit).
import { bytesToBigInt, fromHex, toHex } from '../../crypto/bytes.js';
import { SymmetricEncryptionKey as SymmetricEncryptionKeyCodec } from '../../codec/gen/Ieee1609Dot2BaseTypes.js';
import { certificateHashedId8, certificateKeyPairMatches, decodeCertificate, encodeCertificate } from '../../security/certificate.js';
import { decryptData, type EciesPublicKey } from '../../security/encryption.js';
import type { Clock } from '../../security/time.js';
import { certificateSummary } from '../ee/simulate.js';
import { newState, type EeState, type EeStateDir } from '../ee/state.js';
import { bundleReader, decodeChain, readBundleManifest, type BundleSecrets } from './bundle.js';
import { ProvisionError } from './batch.js';

export interface UnpackOptions {
  bundleDir: string;
  /** The transport key pair's private scalar (and its public key: the recipient). */
  transport: { privateKey: bigint; publicKey: EciesPublicKey };
  state: EeStateDir;
  /** Where the simulator will find the SCMS. */
  raUrl: string;
  ecaUrl: string;
  clock: Clock;
}

export async function unpackBundle(o: UnpackOptions): Promise<EeState> {
  const m = readBundleManifest(o.bundleDir);
  if (m.keys !== 'generated' || !m.steps.includes('enrolled')) throw new ProvisionError(`${o.bundleDir}: only enrolled bundles with generated keys can be unpacked`);
  if (o.state.exists()) throw new ProvisionError(`${o.state.dir}: already an EE state directory`);
  const read = bundleReader(o.bundleDir);
  let secrets: BundleSecrets;
  try {
    // transport-key.oer: the batch transport key, ECIES to the factory key; keys.oer: under that key (symmRecipInfo).
    const wrapped = await decryptData(read('transport-key.oer'), [{ kind: 'rek', publicKey: o.transport.publicKey, privateKey: o.transport.privateKey }]);
    const sk = SymmetricEncryptionKeyCodec.decode(wrapped) as { aes128Ccm?: Uint8Array };
    if (!sk.aes128Ccm) throw new Error('transport-key.oer holds no AES-128-CCM key');
    const plain = await decryptData(read('keys.oer'), [{ kind: 'symmetric', key: sk.aes128Ccm }]);
    secrets = JSON.parse(new TextDecoder().decode(plain)) as BundleSecrets;
  } catch (e) {
    throw new ProvisionError(`${o.bundleDir}: keys.oer cannot be opened with this transport key (${(e as Error).message})`);
  }
  const scalar = (hex: string) => bytesToBigInt(fromHex(hex));
  const chainFile = (name: string) => decodeChain(read(name)).map((c) => encodeCertificate(c));
  const ecaChain = chainFile('eca-chain.oer');
  const root = ecaChain[ecaChain.length - 1]!;
  const at = o.clock.now().toISOString();
  const sd = o.state;

  const identification = m.steps.includes('identification');
  const st = newState({
    raUrl: o.raUrl,
    ecaUrl: o.ecaUrl,
    deviceType: m.deviceType,
    cert: identification ? 'identification' : 'pseudonym',
    form: m.form ?? 'implicit',
    butterfly: identification ? 'none' : 'unified',
    encrypted: identification,
    trustedRootHashes: [toHex(certificateHashedId8(root))],
  });
  st.canonical = { keyUri: await sd.putScalar('canonical', 'nistP256', scalar(secrets.canonicalPrivateKey)), publicKey: m.canonicalPublicKey, canonicalId: m.canonicalId, curve: 'nistP256' };
  st.registration = { deviceId: m.deviceId, state: 'enrolled', at };

  const enrollBytes = read('enrollment.oer');
  const enrollCert = decodeCertificate(enrollBytes);
  const ecaCerts = ecaChain.map((b) => decodeCertificate(b));
  const ed = scalar(secrets.enrollmentPrivateKey);
  if (!certificateKeyPairMatches(enrollCert, ed, ecaCerts)) throw new ProvisionError(`${o.bundleDir}: the enrollment key does not match the certificate`);
  const file = await sd.writeFile('certs/enrollment.oer', enrollBytes);
  for (const [k, b] of ecaChain.entries()) await sd.writeFile(`certs/enrollment-issuer-${k}.oer`, b);
  const es = certificateSummary(enrollCert, enrollBytes);
  st.enrollment = {
    file,
    keyUri: await sd.putScalar('enrollment', 'nistP256', ed),
    hashedId8: es.hashedId8,
    type: enrollCert.type === 'implicit' ? 'implicit' : 'explicit',
    validFrom: es.validFrom,
    ...(es.validUntil ? { validUntil: es.validUntil } : {}),
    at,
  };

  const acaChain = m.steps.includes('pseudonyms') || identification ? chainFile('aca-chain.oer') : [];
  for (const [k, b] of acaChain.entries()) await sd.writeFile(`certs/aca-chain-${k}.oer`, b);
  const acaCerts = acaChain.map((b) => decodeCertificate(b));
  const kind = identification ? 'identification' : 'pseudonym';
  const keys = (identification ? secrets.identification : secrets.pseudonyms) ?? [];
  for (const c of m.certificates.filter((x) => x.kind === kind)) {
    const bytes = read(c.file);
    const cert = decodeCertificate(bytes);
    const k = keys.find((p) => p.i === c.i && p.j === c.j);
    if (!k || !certificateKeyPairMatches(cert, scalar(k.privateKey), acaCerts)) throw new ProvisionError(`${o.bundleDir}: no matching key for ${c.file}`);
    const name = `${c.i!.toString(16)}_${c.j!.toString(16)}`;
    const f = await sd.writeFile(`certs/${kind}/${name}.oer`, bytes);
    const keyUri = await sd.putScalar(`${kind}-${c.i!.toString(16)}-${c.j!.toString(16)}`, 'nistP256', scalar(k.privateKey));
    st.certificates.push({ i: c.i!, j: c.j!, file: f, keyUri, hashedId8: c.hashedId8, validFrom: c.validFrom, validUntil: c.validUntil });
  }
  st.history.push({ at, step: 'provision', note: `unpacked from bundle ${m.batchId}/${m.index} (device ${m.deviceId})` });
  await sd.save(st);
  return st;
}
