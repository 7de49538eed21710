/**
 * Linkage authority (IEEE 1609.2.1 Annex D; linkage values per src/crypto/linkage.ts).
 *
 * The LA keeps one linkage chain per EE pseudonym registration. A chain is named by a random chain id that only
 * the RA maps to its EE; the LA never sees certificates or EE identities. For chain c the LA's initial seed is
 *
 *   ls(i0) = HMAC-SHA-256(masterSecret, "scms-la/ls" || laId || chainId)[0:16]
 *
 * so no seed is ever stored: the table holds (chainId, i0) only, the master secret lives in memory (from the
 * LA's keystore / configuration). ls(i) = linkageSeedAt(ls(i0), i - i0), plv(i, j) per crypto/linkage.ts.
 *
 * Pre-linkage values go to the ACA as EncryptedIndividualPLV { version 2, laId, encPlv } where encPlv is an
 * Ieee1609Dot2Data-SymmEncryptedSingleRecipient {PreLinkageValue} (1609.2.1 Ieee1609Dot2Dot1AcaRaInterface:
 * "encrypted by the LA for the ACA using the shared secret key ... the ciphertext field decrypts to a
 * PreLinkageValue. It contains a pointer (hash of the shared symmetric key)"; Ieee1609Dot2Dot1Protocol: "only one
 * RecipientInfo, of form symmRecipInfo"). So: one symmRecipInfo { recipientId = HashedId8(COER
 * SymmetricEncryptionKey{aes128Ccm: K}), encKey = AES-CCM_K(data key) }, ciphertext = AES-CCM_datakey(the 9
 * octets). "How the ACA obtains the shared symmetric key ... outside the scope" (same comment): here K is
 *
 *   K = HMAC-SHA-256(masterSecret, "scms-la/aca-plv-key" || laId || HashedId8(ACA certificate))[0:16]
 *
 * and the LA hands it to that ACA as an LA-ACA key delivery (local definition, AcaLaInterfacePdu is NULL in
 * 1609.2.1-2022): Ieee1609Dot2Data encryptedData (certRecipInfo to the ACA certificate's encryptionKey) of a
 * signedData (LA certificate, SecurityMgmtPsid) whose payload is unsecuredData(COER SymmetricEncryptionKey).
 */
import { createHmac, randomBytes, randomFillSync } from 'node:crypto';
import type { Kysely } from 'kysely';
import {
  Ieee1609Dot2Data as Ieee1609Dot2DataCodec,
  SymmetricEncryptionKey as SymmetricEncryptionKeyCodec,
  type Certificate,
  type Ieee1609Dot2Data,
} from '../../codec/index.js';
import type { EncryptedIndividualPLV } from '../../codec/gen/Ieee1609Dot2Dot1AcaRaInterface.js';
import { aesCcmEncrypt, aesCcmEncryptMany } from '../../crypto/aesccm.js';
import { toHex, wipe } from '../../crypto/bytes.js';
import { linkageSeedAt, preLinkageValues } from '../../crypto/linkage.js';
import { randomOctets } from '../../crypto/random.js';
import { certificateHashedId8 } from '../../security/certificate.js';
import { encryptData, symmetricKeyId } from '../../security/encryption.js';
import { SECURITY_MGMT_PSID } from '../../security/scms-pdu.js';
import type { Signer } from '../../security/signer.js';
import { PROTOCOL_VERSION, signData } from '../../security/spdu.js';
import { systemClock, type Clock } from '../../security/time.js';
import { columnTypes, fromBytes, toBytesParam, toSafeNumber, type Migration } from '../store/index.js';
import { migrate } from '../store/migrate.js';

export const LA_COMPONENT = 'la';

/** EncryptedIndividualPLV.version / PLV-related structures: Uint8 (2). */
export const ENCRYPTED_PLV_VERSION = 2;

export class LaError extends Error {
  override readonly name = 'LaError';
}

/** LaId (Uint16 of the LaSsp) as the 2-octet LaId of 1609.2 base types. */
export function laIdOctets(laId: number): Uint8Array {
  if (!Number.isInteger(laId) || laId < 0 || laId > 0xffff) throw new RangeError(`laId is not a Uint16: ${laId}`);
  return Uint8Array.of(laId >> 8, laId & 0xff);
}

export interface LaChainsTable {
  chain_id: Uint8Array;
  la_id: number;
  /** First i-period of the chain: ls(i0) is the seed derived from the master secret. */
  i0: number;
  created_at: number | string;
}

export interface LaTables {
  la_chains: LaChainsTable;
}

export const laMigrations: Migration[] = [
  {
    name: '0001_chains',
    async up(db, dialect) {
      const t = columnTypes(dialect);
      await db.schema
        .createTable('la_chains')
        .addColumn('chain_id', t.bytes, (c) => c.primaryKey())
        .addColumn('la_id', 'integer', (c) => c.notNull())
        .addColumn('i0', 'integer', (c) => c.notNull())
        .addColumn('created_at', t.timestampMs, (c) => c.notNull())
        .execute();
    },
  },
];

/** The LA's only gateway to its table. */
export class LaStore {
  readonly db: Kysely<LaTables>;
  constructor(db: Kysely<any>) {
    this.db = db as Kysely<LaTables>;
  }
  async migrate(): Promise<void> {
    await migrate(this.db, { component: LA_COMPONENT, migrations: laMigrations });
  }
  async insertChain(chainId: Uint8Array, laId: number, i0: number, at: number): Promise<void> {
    await this.db.insertInto('la_chains').values({ chain_id: toBytesParam(chainId), la_id: laId, i0, created_at: at }).execute();
  }
  async chain(chainId: Uint8Array, laId: number): Promise<{ i0: number } | undefined> {
    const row = await this.db
      .selectFrom('la_chains')
      .select(['i0', 'la_id', 'chain_id'])
      .where('chain_id', '=', toBytesParam(chainId) as unknown as Uint8Array)
      .executeTakeFirst();
    if (!row || toSafeNumber(row.la_id) !== laId) return undefined;
    if (toHex(fromBytes(row.chain_id)) !== toHex(chainId)) return undefined;
    return { i0: toSafeNumber(row.i0) };
  }
}

/** Request for pre-linkage values: an existing chain (from an earlier answer) or a new one. */
export interface PreLinkageValuesRequest {
  /** Existing chain (16 octets); leave out with `newChain: true` to open one starting at iRange.first. */
  readonly chainId?: Uint8Array;
  readonly newChain?: boolean;
  /** Inclusive i-period range. */
  readonly iRange: { readonly first: number; readonly last: number };
  /** Number of j values per i-period: j = 0 .. jMax-1 (time-baseCertNumber). */
  readonly jMax: number;
  /** The ACA the values are encrypted for (only its key id and encryption key are used). */
  readonly acaCertificate: Certificate;
}

export interface EncryptedPlvEntry {
  readonly i: number;
  readonly j: number;
  readonly encPlv: EncryptedIndividualPLV;
}

export interface PreLinkageValuesResponse {
  readonly laId: number;
  readonly chainId: Uint8Array;
  readonly plvs: EncryptedPlvEntry[];
}

/** The narrow interface the RA uses (in-process: the LaService itself; later an HTTP client). */
export interface LaClient {
  readonly laId: number;
  preLinkageValues(req: PreLinkageValuesRequest): Promise<PreLinkageValuesResponse>;
}

/** The narrow interface the ACA uses to obtain an LA's shared PLV key (see the module comment). */
export interface LaKeyClient {
  readonly laId: number;
  /** The LA-ACA key delivery for `acaCertificate` (encrypted to it, signed by the LA). */
  acaKeyDelivery(acaCertificate: Certificate): Promise<Uint8Array>;
}

export interface LaServiceOptions {
  readonly laId: number;
  readonly store: LaStore;
  /** 32 octets or more; held in memory only (from the LA's keystore or configuration). */
  readonly masterSecret: Uint8Array;
  /** LA certificate and signer (sign key deliveries). */
  readonly certificate: Certificate;
  readonly signer: Signer;
  readonly clock?: Clock;
  /** Upper bound on i-periods per request (default 1024). */
  readonly maxIPeriods?: number;
}

const LS_LABEL = new TextEncoder().encode('scms-la/ls');
const KEY_LABEL = new TextEncoder().encode('scms-la/aca-plv-key');

function ccm(key: Uint8Array, plaintext: Uint8Array, nonce: Uint8Array = randomOctets(12)) {
  return { aes128ccm: { nonce, ccmCiphertext: aesCcmEncrypt(key, nonce, plaintext) } };
}

/** 40 random octets per PLV (two nonces, one data key): drawn once per batch, not three calls per value. */
const PLV_RANDOM = 40;

/**
 * encryptPreLinkageValue with the key id precomputed, the random octets given (40: nonce, nonce, data key) and the
 * data key already wrapped under the shared key with the first nonce (aesCcmEncryptMany for the whole batch).
 */
function encryptPlv(keyId: Uint8Array, plv: Uint8Array, rnd: Uint8Array, wrappedDataKey: Uint8Array): EncryptedIndividualPLV['encPlv'] {
  const dataKey = rnd.subarray(24, 40);
  try {
    return {
      protocolVersion: PROTOCOL_VERSION,
      content: {
        encryptedData: {
          recipients: [{ symmRecipInfo: { recipientId: keyId, encKey: { aes128ccm: { nonce: rnd.slice(0, 12), ccmCiphertext: wrappedDataKey } } } }],
          ciphertext: ccm(dataKey, plv, rnd.slice(12, 24)),
        },
      },
    };
  } finally {
    wipe(dataKey);
  }
}

/**
 * Ieee1609Dot2Data-SymmEncryptedSingleRecipient {PreLinkageValue}: one symmRecipInfo, ciphertext = AES-CCM of the
 * COER PreLinkageValue (the 9 octets).
 */
export function encryptPreLinkageValue(sharedKey: Uint8Array, plv: Uint8Array): EncryptedIndividualPLV['encPlv'] {
  if (plv.length !== 9) throw new RangeError('PreLinkageValue must be 9 octets');
  const dataKey = randomOctets(16);
  try {
    return {
      protocolVersion: PROTOCOL_VERSION,
      content: {
        encryptedData: {
          recipients: [{ symmRecipInfo: { recipientId: symmetricKeyId(sharedKey), encKey: ccm(sharedKey, dataKey) } }],
          ciphertext: ccm(dataKey, plv),
        },
      },
    };
  } finally {
    wipe(dataKey);
  }
}

export class LaService implements LaClient, LaKeyClient {
  readonly laId: number;
  readonly certificate: Certificate;
  readonly #laIdOctets: Uint8Array;
  readonly #master: Uint8Array;
  readonly #store: LaStore;
  readonly #signer: Signer;
  readonly #clock: Clock;
  readonly #maxIPeriods: number;

  constructor(opts: LaServiceOptions) {
    if (opts.masterSecret.length < 32) throw new LaError('LA master secret must be at least 32 octets');
    this.laId = opts.laId;
    this.#laIdOctets = laIdOctets(opts.laId);
    this.#master = opts.masterSecret.slice();
    this.#store = opts.store;
    this.certificate = opts.certificate;
    this.#signer = opts.signer;
    this.#clock = opts.clock ?? systemClock;
    this.#maxIPeriods = opts.maxIPeriods ?? 1024;
  }

  #hmac(label: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
    const h = createHmac('sha256', this.#master).update(label).update(this.#laIdOctets);
    for (const p of parts) h.update(p);
    return new Uint8Array(h.digest().subarray(0, 16));
  }

  /** K shared with the ACA holding `acaCertificate`. */
  #acaKey(acaCertificate: Certificate): Uint8Array {
    return this.#hmac(KEY_LABEL, certificateHashedId8(acaCertificate));
  }

  async #chain(chainId: Uint8Array): Promise<{ i0: number }> {
    if (chainId.length !== 16) throw new LaError('chain id must be 16 octets');
    const c = await this.#store.chain(chainId, this.laId);
    if (!c) throw new LaError(`unknown linkage chain ${toHex(chainId)}`);
    return c;
  }

  /** ls(i) of a chain (i >= i0). */
  #seedAt(chainId: Uint8Array, i0: number, i: number): Uint8Array {
    if (!Number.isInteger(i) || i < i0 || i > 0xffff) throw new LaError(`i = ${i} is outside the chain [${i0}, 65535]`);
    const ls0 = this.#hmac(LS_LABEL, chainId);
    return linkageSeedAt(this.#laIdOctets, ls0, i - i0);
  }

  /** plv(i, j) for i in iRange and j < jMax, each encrypted for the ACA (see the module comment). */
  async preLinkageValues(req: PreLinkageValuesRequest): Promise<PreLinkageValuesResponse> {
    const { first, last } = req.iRange;
    if (!Number.isInteger(first) || !Number.isInteger(last) || first < 0 || last < first || last > 0xffff) {
      throw new LaError(`bad i range [${first}, ${last}]`);
    }
    if (last - first + 1 > this.#maxIPeriods) throw new LaError(`more than ${this.#maxIPeriods} i-periods requested`);
    if (!Number.isInteger(req.jMax) || req.jMax < 1 || req.jMax > 0xffff) throw new LaError(`bad jMax ${req.jMax}`);
    let chainId: Uint8Array;
    let i0: number;
    if (req.newChain) {
      if (req.chainId) throw new LaError('give either chainId or newChain');
      chainId = new Uint8Array(randomBytes(16));
      i0 = first;
      await this.#store.insertChain(chainId, this.laId, i0, this.#clock.now().getTime());
    } else {
      if (!req.chainId) throw new LaError('chainId or newChain required');
      chainId = req.chainId;
      i0 = (await this.#chain(chainId)).i0;
    }
    const key = this.#acaKey(req.acaCertificate);
    const keyId = symmetricKeyId(key);
    const js = Array.from({ length: req.jMax }, (_, j) => j);
    const plvs: EncryptedPlvEntry[] = [];
    const rnd = randomOctets(PLV_RANDOM * req.jMax);
    try {
      let seed = this.#seedAt(chainId, i0, first);
      for (let i = first; i <= last; i++) {
        if (i > first) {
          seed = linkageSeedAt(this.#laIdOctets, seed, 1);
          randomFillSync(rnd);
        }
        const values = preLinkageValues(this.#laIdOctets, seed, js);
        // every data key of this i under the shared key in one AES pass (encKey of each symmRecipInfo)
        const wrapped = aesCcmEncryptMany(
          key,
          values.map((_, j) => ({ nonce: rnd.subarray(PLV_RANDOM * j, PLV_RANDOM * j + 12), plaintext: rnd.subarray(PLV_RANDOM * j + 24, PLV_RANDOM * (j + 1)) })),
        );
        values.forEach((plv, j) => {
          const encPlv = encryptPlv(keyId, plv, rnd.subarray(PLV_RANDOM * j, PLV_RANDOM * (j + 1)), wrapped[j]!);
          plvs.push({ i, j, encPlv: { version: ENCRYPTED_PLV_VERSION, laId: this.#laIdOctets, encPlv } });
          wipe(plv);
        });
      }
    } finally {
      wipe(key);
      wipe(rnd);
    }
    return { laId: this.laId, chainId, plvs };
  }

  /** (laId, ls(i)) of a chain, for linkage-based revocation (MA / CRL, 1609.2.1 Annex D). */
  async seedsForRevocation(chainId: Uint8Array, i: number): Promise<{ laId: number; linkageSeed: Uint8Array }> {
    const { i0 } = await this.#chain(chainId);
    return { laId: this.laId, linkageSeed: this.#seedAt(chainId, i0, i) };
  }

  /**
   * LA-ACA key delivery: encryptedData (certRecipInfo to the ACA) of signedData (this LA, SecurityMgmtPsid) of
   * unsecuredData(COER SymmetricEncryptionKey { aes128Ccm: K }). COER of the Ieee1609Dot2Data.
   */
  async acaKeyDelivery(acaCertificate: Certificate): Promise<Uint8Array> {
    const key = this.#acaKey(acaCertificate);
    const payload = SymmetricEncryptionKeyCodec.encode({ aes128Ccm: key });
    try {
      const signed: Ieee1609Dot2Data = await signData({
        payload,
        psid: SECURITY_MGMT_PSID,
        signer: this.#signer,
        signerId: { certificate: this.certificate },
      });
      return Ieee1609Dot2DataCodec.encode(encryptData({ plaintext: signed, recipients: [{ kind: 'cert', certificate: acaCertificate }] }));
    } finally {
      wipe(key);
      wipe(payload);
    }
  }
}
