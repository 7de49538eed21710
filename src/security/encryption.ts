/**
 * EncryptedData of IEEE 1609.2-2022 (5.3.4, 5.3.5, 5.3.8, 6.3.30-6.3.46): a fresh AES-128 data key and nonce,
 * AES-CCM over the COER of an Ieee1609Dot2Data (raw octets are first put in unsecuredData, EncryptedData note), and
 * one RecipientInfo per recipient carrying that data key.
 *
 * Recipient kinds, their recipientId and ECIES P1 (RecipientInfo / PKRecipientInfo definitions in Ieee1609Dot2.asn):
 *
 * | kind        | RecipientInfo        | recipientId                                               | P1 (5.3.5)                        |
 * |-------------|----------------------|-----------------------------------------------------------|-----------------------------------|
 * | cert        | certRecipInfo        | HashedId8 of the certificate (whole-certificate hash)      | whole-certificate hash of it      |
 * | signedData  | signedDataRecipInfo  | HashedId8 (SHA-256) of the canonical Ieee1609Dot2Data      | SHA-256 of that Ieee1609Dot2Data  |
 * | rek         | rekRecipInfo         | HashedId8 (SHA-256) of COER(PublicEncryptionKey)           | SHA-256("")                       |
 * | symmetric   | symmRecipInfo        | HashedId8 (SHA-256) of COER(SymmetricEncryptionKey)        | — (AES-CCM key wrap)              |
 * | psk         | pskRecipInfo         | HashedId8 (SHA-256) of COER(SymmetricEncryptionKey)        | — (data encrypted with the key)   |
 *
 * SHA-256 for the non-certificate HashedId8s: the hash that goes with AES-128 and the 256-bit ECIES curves
 * (1609.2 5.3.9.3-5.3.9.5; only those are implemented).
 */
import {
  Ieee1609Dot2Data as Ieee1609Dot2DataCodec,
  PublicEncryptionKey as PublicEncryptionKeyCodec,
  SymmetricEncryptionKey as SymmetricEncryptionKeyCodec,
  type Certificate,
  type EccP256CurvePoint,
  type EncryptedData,
  type EncryptedDataEncryptionKey,
  type Ieee1609Dot2Data,
  type PKRecipientInfo,
  type PublicEncryptionKey,
  type RecipientInfo,
  type SymmetricCiphertext,
} from '../codec/index.js';
import { aesCcmDecrypt, aesCcmEncrypt, AesCcmDecryptionError } from '../crypto/aesccm.js';
import { bigIntToBytes, wipe } from '../crypto/bytes.js';
import { curve } from '../crypto/curves.js';
import { eciesDecryptKey, eciesDecryptKeyAsync, eciesEncryptKey, EciesDecryptionError, type EciesCurve } from '../crypto/ecies.js';
import { sha256 } from '../crypto/hash.js';
import { randomOctets } from '../crypto/random.js';
import {
  certificateEncryptionKey,
  certificateHash,
  certificateHashedId8,
  eccPointFromBytes,
  eccPointToBytes,
  publicEncryptionKey,
} from './certificate.js';
import { canonicalIeee1609Dot2Data, PROTOCOL_VERSION, unsecuredData } from './spdu.js';

/** An ECIES public key: curve (nistP256 or brainpoolP256r1) and encoded point (02/03||x or 04||x||y). */
export interface EciesPublicKey {
  readonly curve: EciesCurve;
  readonly publicKey: Uint8Array;
}

export type EncryptionRecipient =
  /** certRecipInfo: the certificate's encryptionKey. */
  | { readonly kind: 'cert'; readonly certificate: Certificate }
  /** signedDataRecipInfo: `signedData` = COER of the Ieee1609Dot2Data that carried the response encryption key. */
  | { readonly kind: 'signedData'; readonly signedData: Uint8Array; readonly publicKey?: EciesPublicKey }
  /** rekRecipInfo: a key obtained otherwise (as carried, or curve + point: compressed PublicEncryptionKey, aes128Ccm). */
  | { readonly kind: 'rek'; readonly publicKey: EciesPublicKey | PublicEncryptionKey }
  /** symmRecipInfo (default): data key wrapped with `key`; `psk: true` -> pskRecipInfo, data encrypted with `key`. */
  | { readonly kind: 'symmetric'; readonly key: Uint8Array; readonly psk?: boolean };

export interface EncryptDataOptions {
  /** Raw octets (encapsulated in unsecuredData) or an Ieee1609Dot2Data (encoded as is). */
  readonly plaintext: Uint8Array | Ieee1609Dot2Data;
  readonly recipients: readonly EncryptionRecipient[];
}

/** Why decryption failed: no RecipientInfo for our keys, a key-wrap or CCM tag mismatch, malformed input. */
export type DecryptionErrorCode = 'no-recipient' | 'key-unwrap-failed' | 'ciphertext-tag-mismatch' | 'malformed' | 'unsupported';

export class DecryptionError extends Error {
  override readonly name = 'DecryptionError';
  constructor(
    readonly code: DecryptionErrorCode,
    message: string,
  ) {
    super(message);
  }
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

// ---------------------------------------------------------------------------------------------------------------
// Recipient identifiers and P1
// ---------------------------------------------------------------------------------------------------------------

function hashedId8Sha256(bytes: Uint8Array): Uint8Array {
  return sha256(bytes).slice(-8);
}

/** recipientId of pskRecipInfo / symmRecipInfo: HashedId8 of COER(SymmetricEncryptionKey { aes128Ccm: key }). */
export function symmetricKeyId(key: Uint8Array): Uint8Array {
  if (key.length !== 16) throw new RangeError('AES-128 key must be 16 octets');
  return hashedId8Sha256(SymmetricEncryptionKeyCodec.encode({ aes128Ccm: key }));
}

/** The PublicEncryptionKey structure of a rek (canonical compressed point, aes128Ccm when built from curve + point). */
export function rekPublicEncryptionKey(k: EciesPublicKey | PublicEncryptionKey): PublicEncryptionKey {
  return 'supportedSymmAlg' in k ? k : publicEncryptionKey(k.curve, k.publicKey);
}

/** recipientId of rekRecipInfo: HashedId8 of COER(PublicEncryptionKey). */
export function rekRecipientId(k: EciesPublicKey | PublicEncryptionKey): Uint8Array {
  return hashedId8Sha256(PublicEncryptionKeyCodec.encode(rekPublicEncryptionKey(k)));
}

/** The canonical COER of a signedData Ieee1609Dot2Data (6.3.4): what signedDataRecipInfo hashes. */
function canonicalSignedDataBytes(signedData: Uint8Array): Uint8Array {
  const d = Ieee1609Dot2DataCodec.decode(signedData);
  if (!('signedData' in d.content)) throw new TypeError('signedDataRecipInfo needs an Ieee1609Dot2Data of type signedData');
  return Ieee1609Dot2DataCodec.encode(canonicalIeee1609Dot2Data(d));
}

/** recipientId of signedDataRecipInfo: HashedId8 (SHA-256) of the canonical Ieee1609Dot2Data. */
export function signedDataRecipientId(signedData: Uint8Array): Uint8Array {
  return hashedId8Sha256(canonicalSignedDataBytes(signedData));
}

/** P1 for signedDataRecipInfo: SHA-256 of the canonical Ieee1609Dot2Data. */
export function signedDataP1(signedData: Uint8Array): Uint8Array {
  return sha256(canonicalSignedDataBytes(signedData));
}

/** P1 for rekRecipInfo: the hash of the empty string. */
export const REK_P1: Uint8Array = sha256(new Uint8Array(0));

function asEciesCurve(name: string): EciesCurve {
  if (name !== 'nistP256' && name !== 'brainpoolP256r1') throw new Error(`ECIES is not defined for ${name}`);
  return name;
}

function eciesKeyOfPublicEncryptionKey(k: PublicEncryptionKey): EciesPublicKey {
  const pk = k.publicKey;
  if ('eciesNistP256' in pk) return { curve: 'nistP256', publicKey: eccPointToBytes(pk.eciesNistP256) };
  if ('eciesBrainpoolP256r1' in pk) return { curve: 'brainpoolP256r1', publicKey: eccPointToBytes(pk.eciesBrainpoolP256r1) };
  throw new Error(`unsupported public encryption key ${Object.keys(pk)[0]}`);
}

/** The response encryption key in a signedData's headerInfo.encryptionKey (public). */
function encryptionKeyInSignedData(signedData: Uint8Array): EciesPublicKey {
  const d = Ieee1609Dot2DataCodec.decode(signedData);
  const ek = 'signedData' in d.content ? d.content.signedData.tbsData.headerInfo.encryptionKey : undefined;
  if (!ek || !('public' in ek)) throw new Error('the signed data carries no public headerInfo.encryptionKey');
  return eciesKeyOfPublicEncryptionKey(ek.public);
}

interface PkTarget {
  readonly alt: 'certRecipInfo' | 'signedDataRecipInfo' | 'rekRecipInfo';
  readonly recipientId: Uint8Array;
  readonly key: EciesPublicKey;
  readonly p1: Uint8Array;
}

function pkTarget(r: Exclude<EncryptionRecipient, { kind: 'symmetric' }>): PkTarget {
  switch (r.kind) {
    case 'cert': {
      const ek = certificateEncryptionKey(r.certificate);
      if (!ek) throw new Error('recipient certificate has no encryptionKey');
      return {
        alt: 'certRecipInfo',
        recipientId: certificateHashedId8(r.certificate),
        key: { curve: asEciesCurve(ek.curve), publicKey: ek.publicKey },
        p1: certificateHash(r.certificate),
      };
    }
    case 'signedData':
      return {
        alt: 'signedDataRecipInfo',
        recipientId: signedDataRecipientId(r.signedData),
        key: r.publicKey ?? encryptionKeyInSignedData(r.signedData),
        p1: signedDataP1(r.signedData),
      };
    case 'rek': {
      const key = 'supportedSymmAlg' in r.publicKey ? eciesKeyOfPublicEncryptionKey(r.publicKey) : r.publicKey;
      return { alt: 'rekRecipInfo', recipientId: rekRecipientId(r.publicKey), key, p1: REK_P1 };
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Encryption
// ---------------------------------------------------------------------------------------------------------------

function ccm(key: Uint8Array, plaintext: Uint8Array): SymmetricCiphertext {
  const nonce = randomOctets(12);
  return { aes128ccm: { nonce, ccmCiphertext: aesCcmEncrypt(key, nonce, plaintext) } };
}

/**
 * Encrypts to the recipients (1609.2 5.3.4): Ieee1609Dot2Data { encryptedData { recipients, ciphertext aes128ccm } }.
 * A pskRecipInfo recipient must be alone (the data is encrypted directly with the pre-shared key).
 */
export function encryptData(opts: EncryptDataOptions): Ieee1609Dot2Data {
  if (opts.recipients.length === 0) throw new Error('encryptData: no recipients');
  const inner = opts.plaintext instanceof Uint8Array ? unsecuredData(opts.plaintext) : opts.plaintext;
  const plaintext = Ieee1609Dot2DataCodec.encode(inner);
  const psk = opts.recipients.find((r) => r.kind === 'symmetric' && r.psk);
  if (psk && opts.recipients.length !== 1) throw new Error('encryptData: a pre-shared-key recipient (pskRecipInfo) must be the only recipient');

  if (psk && psk.kind === 'symmetric') {
    const encryptedData: EncryptedData = { recipients: [{ pskRecipInfo: symmetricKeyId(psk.key) }], ciphertext: ccm(psk.key, plaintext) };
    return { protocolVersion: PROTOCOL_VERSION, content: { encryptedData } };
  }

  const dataKey = randomOctets(16);
  try {
    const recipients: RecipientInfo[] = opts.recipients.map((r): RecipientInfo => {
      if (r.kind === 'symmetric') {
        return { symmRecipInfo: { recipientId: symmetricKeyId(r.key), encKey: ccm(r.key, dataKey) } };
      }
      const t = pkTarget(r);
      const enc = eciesEncryptKey(t.key.curve, t.key.publicKey, dataKey, t.p1);
      const v = eccPointFromBytes(enc.v) as EccP256CurvePoint;
      const ecies = { v, c: enc.c, t: enc.t };
      const encKey: EncryptedDataEncryptionKey =
        t.key.curve === 'nistP256' ? { eciesNistP256: ecies } : { eciesBrainpoolP256r1: ecies };
      const info: PKRecipientInfo = { recipientId: t.recipientId, encKey };
      return { [t.alt]: info } as RecipientInfo;
    });
    const encryptedData: EncryptedData = { recipients, ciphertext: ccm(dataKey, plaintext) };
    return { protocolVersion: PROTOCOL_VERSION, content: { encryptedData } };
  } finally {
    wipe(dataKey);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Decryption
// ---------------------------------------------------------------------------------------------------------------

/** How to do the ECDH with our private key: the scalar, or a callback (KeyStores.ecdh / HSM) returning x(dV). */
export interface EciesPrivate {
  readonly privateKey?: bigint | Uint8Array;
  /** Returns the shared x-coordinate for the ephemeral public key V (as carried: 02/03||x or 04||x||y). */
  readonly ecdh?: (ephemeralPublicKey: Uint8Array) => Promise<Uint8Array> | Uint8Array;
}

export type DecryptionKey =
  | ({ readonly kind: 'cert'; readonly certificate: Certificate } & EciesPrivate)
  | ({ readonly kind: 'signedData'; readonly signedData: Uint8Array } & EciesPrivate)
  | ({ readonly kind: 'rek'; readonly publicKey: EciesPublicKey | PublicEncryptionKey } & EciesPrivate)
  /** Generic ECIES key (kind may be left out): any PKRecipientInfo alternative whose recipientId matches, P1 as given. */
  | ({ readonly kind?: 'ecies'; readonly recipientId: Uint8Array; readonly curve: EciesCurve; readonly p1: Uint8Array } & EciesPrivate)
  /** Matches symmRecipInfo and pskRecipInfo with HashedId8(SymmetricEncryptionKey). */
  | { readonly kind: 'symmetric'; readonly key: Uint8Array };

interface KeyCandidate {
  readonly recipientId: Uint8Array;
  readonly alts: readonly string[];
  readonly curve?: EciesCurve;
  readonly p1?: Uint8Array;
  readonly key: DecryptionKey;
}

function candidate(k: DecryptionKey): KeyCandidate {
  if (k.kind === 'cert' || k.kind === 'signedData' || k.kind === 'rek') {
    const t = pkTarget(k);
    return { recipientId: t.recipientId, alts: [t.alt], curve: t.key.curve, p1: t.p1, key: k };
  }
  if (k.kind === 'symmetric') return { recipientId: symmetricKeyId(k.key), alts: ['symmRecipInfo', 'pskRecipInfo'], key: k };
  return { recipientId: k.recipientId, alts: ['certRecipInfo', 'signedDataRecipInfo', 'rekRecipInfo'], curve: k.curve, p1: k.p1, key: k };
}

export interface DecryptResult {
  /** The decrypted Ieee1609Dot2Data. */
  readonly data: Ieee1609Dot2Data;
  /** unsecuredData octets when `data` is unsecured, else the COER of `data` (the mirror of encryptData's input). */
  readonly payload: Uint8Array;
  /** Index in `recipients` of the RecipientInfo that was used, and the key that matched it. */
  readonly recipientIndex: number;
  readonly key: DecryptionKey;
}

function describe(ri: RecipientInfo): string {
  const [alt] = Object.keys(ri);
  const v = (ri as Record<string, unknown>)[alt!];
  const id = v instanceof Uint8Array ? v : (v as { recipientId: Uint8Array }).recipientId;
  return `${alt} ${hex(id)}`;
}

async function unwrapEcies(c: KeyCandidate, riAlt: string, info: PKRecipientInfo): Promise<Uint8Array> {
  const ek = info.encKey;
  const [alt] = Object.keys(ek);
  const encCurve = alt === 'eciesNistP256' ? 'nistP256' : alt === 'eciesBrainpoolP256r1' ? 'brainpoolP256r1' : undefined;
  if (!encCurve) throw new DecryptionError('unsupported', `unsupported encrypted key ${alt}`);
  if (encCurve !== c.curve) throw new DecryptionError('key-unwrap-failed', `recipient key is on ${c.curve}, encrypted key on ${encCurve}`);
  const e = (ek as Record<string, { v: EccP256CurvePoint; c: Uint8Array; t: Uint8Array }>)[alt!]!;
  let v: Uint8Array;
  try {
    v = eccPointToBytes(e.v);
  } catch (err) {
    throw new DecryptionError('malformed', `ephemeral key V: ${(err as Error).message}`);
  }
  const enc = { v, c: e.c, t: e.t };
  const priv = c.key as EciesPrivate;
  try {
    if (priv.ecdh) {
      const ecdh = priv.ecdh;
      return await eciesDecryptKeyAsync(encCurve, async (V) => ecdh(V), enc, c.p1!);
    }
    if (priv.privateKey === undefined) throw new DecryptionError('unsupported', 'decryption key has neither privateKey nor ecdh');
    const d = typeof priv.privateKey === 'bigint' ? bigIntToBytes(priv.privateKey, curve(encCurve).size) : priv.privateKey;
    return eciesDecryptKey(encCurve, d, enc, c.p1!);
  } catch (err) {
    if (err instanceof DecryptionError) throw err;
    if (err instanceof EciesDecryptionError) {
      throw new DecryptionError('key-unwrap-failed', `${riAlt} ${hex(info.recipientId)}: ECIES tag check failed (wrong private key or P1)`);
    }
    throw new DecryptionError('key-unwrap-failed', `ECIES key unwrap failed: ${(err as Error).message}`);
  }
}

function ccmOpen(key: Uint8Array, ct: SymmetricCiphertext, what: string): Uint8Array {
  if (!('aes128ccm' in ct)) throw new DecryptionError('unsupported', `${what}: unsupported symmetric ciphertext ${Object.keys(ct)[0]}`);
  try {
    return aesCcmDecrypt(key, ct.aes128ccm.nonce, ct.aes128ccm.ccmCiphertext);
  } catch (err) {
    if (err instanceof AesCcmDecryptionError) throw new DecryptionError('ciphertext-tag-mismatch', `${what}: AES-CCM tag check failed`);
    throw err;
  }
}

/**
 * Decrypts an Ieee1609Dot2Data of type encryptedData with the first of `keys` that matches a RecipientInfo (by
 * recipientId and RecipientInfo choice). DecryptionError('no-recipient') lists the recipients when none match.
 */
export async function decryptDataDetailed(data: Ieee1609Dot2Data | Uint8Array, keys: readonly DecryptionKey[]): Promise<DecryptResult> {
  let value: Ieee1609Dot2Data;
  try {
    value = data instanceof Uint8Array ? Ieee1609Dot2DataCodec.decode(data) : data;
  } catch (err) {
    throw new DecryptionError('malformed', `malformed Ieee1609Dot2Data: ${(err as Error).message}`);
  }
  if (!('encryptedData' in value.content)) {
    throw new DecryptionError('malformed', `not encrypted data (content ${Object.keys(value.content)[0]})`);
  }
  const { recipients, ciphertext } = value.content.encryptedData;
  const candidates = keys.map(candidate);

  for (let i = 0; i < recipients.length; i++) {
    const ri = recipients[i]!;
    const [alt] = Object.keys(ri);
    const v = (ri as Record<string, unknown>)[alt!];
    const id = v instanceof Uint8Array ? v : (v as { recipientId: Uint8Array }).recipientId;
    const c = candidates.find((k) => k.alts.includes(alt!) && Buffer.compare(k.recipientId, id) === 0);
    if (!c) continue;

    let dataKey: Uint8Array;
    if (alt === 'pskRecipInfo') {
      dataKey = (c.key as { key: Uint8Array }).key.slice();
    } else if (alt === 'symmRecipInfo') {
      dataKey = ccmOpen((c.key as { key: Uint8Array }).key, (v as { encKey: SymmetricCiphertext }).encKey, 'symmRecipInfo key unwrap');
    } else {
      dataKey = await unwrapEcies(c, alt!, v as PKRecipientInfo);
    }
    let plaintext: Uint8Array;
    try {
      plaintext = ccmOpen(dataKey, ciphertext, 'ciphertext');
    } finally {
      wipe(dataKey);
    }
    let inner: Ieee1609Dot2Data;
    try {
      inner = Ieee1609Dot2DataCodec.decode(plaintext);
    } catch (err) {
      throw new DecryptionError('malformed', `plaintext is not an Ieee1609Dot2Data: ${(err as Error).message}`);
    }
    const payload = 'unsecuredData' in inner.content ? inner.content.unsecuredData : plaintext;
    return { data: inner, payload, recipientIndex: i, key: c.key };
  }
  const listed = recipients.map(describe).join(', ');
  const ours = candidates.map((k) => `${k.alts.join('|')} ${hex(k.recipientId)}`).join(', ');
  throw new DecryptionError('no-recipient', `no recipient matches our keys: recipients [${listed}], keys [${ours}]`);
}

/** decryptDataDetailed, returning the payload (raw octets for unsecured plaintext, else the inner COER). */
export async function decryptData(data: Ieee1609Dot2Data | Uint8Array, keys: readonly DecryptionKey[]): Promise<Uint8Array> {
  return (await decryptDataDetailed(data, keys)).payload;
}
