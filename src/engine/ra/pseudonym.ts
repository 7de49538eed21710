/**
 * RA pseudonym pipeline (IEEE 1609.2.1 clause 4 / 6 authorization flow, Annex D linkage, 9.3 butterfly keys):
 * EeRaCertRequests -> butterfly expansion (expand.ts) -> encrypted PLVs from LA1 and LA2 -> signed
 * RaAcaCertRequestSpdus, shuffled across EEs -> ACA -> per-certificate responses stored under
 * (EE request hash, i, j) for the EE's download.
 *
 * Privacy by construction: the RA holds the EE's public caterpillar/cocoon keys, the random linkage chain ids
 * and the ACA responses, which are encrypted to the EE's cocoon keys (AcaEeCertResponsePrivateSpdu / CubkSpdu);
 * it never sees a certificate or an EE private key. The ACA gets no EE identifier (RaAcaCertRequest carries
 * none), and requests of different EEs reach it in a shuffled order (Fisher–Yates with an injectable RNG).
 */
import type { Kysely } from 'kysely';
import {
  AcaEeCertResponseCubkSpdu as AcaEeCertResponseCubkSpduCodec,
  AcaEeCertResponsePlainSpdu as AcaEeCertResponsePlainSpduCodec,
  AcaEeCertResponsePrivateSpdu as AcaEeCertResponsePrivateSpduCodec,
  Ieee1609Dot2Data as Ieee1609Dot2DataCodec,
  type Certificate,
  type Ieee1609Dot2Data,
} from '../../codec/index.js';
import type { EeRaCertRequest } from '../../codec/gen/Ieee1609Dot2Dot1EeRaInterface.js';
import { toHex } from '../../crypto/bytes.js';
import { sha256 } from '../../crypto/hash.js';
import { certificateHashedId8, certificatePublicKey } from '../../security/certificate.js';
import { verifySignedSpdu } from '../../security/scms-pdu.js';
import type { Signer } from '../../security/signer.js';
import type { ResolvedSigner } from '../../security/spdu.js';
import { jValues, nowTime32, systemClock, type Clock, type IPeriodParams } from '../../security/time.js';
import type { AcaClient } from '../aca/aca.js';
import type { EncryptedPlvEntry, LaClient } from '../la/la.js';
import type { GlobalPolicy } from '../policy/index.js';
import { columnTypes, fromBytes, toBytesParam, toSafeNumber, type Migration } from '../store/index.js';
import { migrate } from '../store/migrate.js';
import { withTransaction } from '../store/transaction.js';
import { butterflyRequestInfo, checkButterflyPolicy, expandCocoons, periodIndices, raAcaCertRequest, signRaAcaCertRequestBytes } from './expand.js';
import { expectedResponseKinds, kindRaAcaCertRequests, type KindPlan } from './kinds.js';

export const PSEUDONYM_COMPONENT = 'ra-pseudonym';

export type AcaResponseKind = 'private' | 'cubk' | 'plain';

export interface RaLinkageChainsTable {
  /** RA-internal key of the EE's chain pair (e.g. its device id); never sent to an LA or the ACA. */
  chain_key: string;
  la_id: number;
  chain_id: Uint8Array;
}

export interface RaPseudonymResponsesTable {
  /** HashedId8 of the EE's request SPDU (what the EE downloads by). */
  request_hash: Uint8Array;
  i: number;
  j: number;
  /** HashedId8 of the RaAcaCertRequestSpdu (AcaRaCertResponse.requestHash). */
  aca_request_hash: Uint8Array;
  kind: string;
  /** COER of the AcaEeCertResponse{Private,Cubk}Spdu: encrypted to the EE's cocoon key. */
  response: Uint8Array;
  created_at: number | string;
}

export interface PseudonymTables {
  ra_linkage_chains: RaLinkageChainsTable;
  ra_pseudonym_responses: RaPseudonymResponsesTable;
}

export const pseudonymMigrations: Migration[] = [
  {
    name: '0001_pseudonym',
    async up(db, dialect) {
      const t = columnTypes(dialect);
      await db.schema
        .createTable('ra_linkage_chains')
        .addColumn('chain_key', 'text', (c) => c.notNull())
        .addColumn('la_id', 'integer', (c) => c.notNull())
        .addColumn('chain_id', t.bytes, (c) => c.notNull())
        .addPrimaryKeyConstraint('ra_linkage_chains_pk', ['chain_key', 'la_id'])
        .execute();
      await db.schema
        .createTable('ra_pseudonym_responses')
        .addColumn('request_hash', t.bytes, (c) => c.notNull())
        .addColumn('i', 'integer', (c) => c.notNull())
        .addColumn('j', 'integer', (c) => c.notNull())
        .addColumn('aca_request_hash', t.bytes, (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('response', t.bytes, (c) => c.notNull())
        .addColumn('created_at', t.timestampMs, (c) => c.notNull())
        .addPrimaryKeyConstraint('ra_pseudonym_responses_pk', ['request_hash', 'i', 'j'])
        .execute();
    },
  },
];

export interface StoredResponse {
  readonly requestHash: Uint8Array;
  readonly i: number;
  readonly j: number;
  readonly acaRequestHash: Uint8Array;
  readonly kind: AcaResponseKind;
  readonly response: Uint8Array;
}

/** The RA pseudonym tables' only gateway. */
/** A ra_pseudonym_responses row as a StoredResponse. */
function storedResponseOf(r: RaPseudonymResponsesTable): StoredResponse {
  return {
    requestHash: fromBytes(r.request_hash),
    i: toSafeNumber(r.i),
    j: toSafeNumber(r.j),
    acaRequestHash: fromBytes(r.aca_request_hash),
    kind: r.kind as AcaResponseKind,
    response: fromBytes(r.response),
  };
}

export class PseudonymStore {
  readonly db: Kysely<PseudonymTables>;
  constructor(db: Kysely<any>) {
    this.db = db as Kysely<PseudonymTables>;
  }
  async migrate(): Promise<void> {
    await migrate(this.db, { component: PSEUDONYM_COMPONENT, migrations: pseudonymMigrations });
  }
  async chainId(chainKey: string, laId: number): Promise<Uint8Array | undefined> {
    const r = await this.db.selectFrom('ra_linkage_chains').select('chain_id').where('chain_key', '=', chainKey).where('la_id', '=', laId).executeTakeFirst();
    return r && fromBytes(r.chain_id);
  }
  async saveChainId(chainKey: string, laId: number, chainId: Uint8Array): Promise<void> {
    await this.db.insertInto('ra_linkage_chains').values({ chain_key: chainKey, la_id: laId, chain_id: toBytesParam(chainId) }).execute();
  }
  /** The chain ids of many chain keys (all LAs) in one query per 500 keys: `${chainKey}/${laId}` -> chain id. */
  async chainIds(chainKeys: readonly string[]): Promise<Map<string, Uint8Array>> {
    const out = new Map<string, Uint8Array>();
    const keys = [...new Set(chainKeys)];
    for (let n = 0; n < keys.length; n += 500) {
      const rows = await this.db
        .selectFrom('ra_linkage_chains')
        .select(['chain_key', 'la_id', 'chain_id'])
        .where('chain_key', 'in', keys.slice(n, n + 500))
        .execute();
      for (const r of rows) out.set(`${r.chain_key}/${toSafeNumber(r.la_id)}`, fromBytes(r.chain_id));
    }
    return out;
  }
  /** saveChainId for many chains, 200 rows per statement. */
  async saveChainIds(rows: ReadonlyArray<{ chainKey: string; laId: number; chainId: Uint8Array }>): Promise<void> {
    for (let n = 0; n < rows.length; n += 200) {
      await this.db
        .insertInto('ra_linkage_chains')
        .values(rows.slice(n, n + 200).map((r) => ({ chain_key: r.chainKey, la_id: r.laId, chain_id: toBytesParam(r.chainId) })))
        .execute();
    }
  }
  async saveResponses(rows: readonly StoredResponse[], at: number): Promise<void> {
    if (rows.length === 0) return;
    await withTransaction(this.db, async (tx) => {
      for (let n = 0; n < rows.length; n += 200) {
        await tx
          .insertInto('ra_pseudonym_responses')
          .values(
            rows.slice(n, n + 200).map((r) => ({
              request_hash: toBytesParam(r.requestHash),
              i: r.i,
              j: r.j,
              aca_request_hash: toBytesParam(r.acaRequestHash),
              kind: r.kind,
              response: toBytesParam(r.response),
              created_at: at,
            })),
          )
          .onConflict((oc) => oc.columns(['request_hash', 'i', 'j']).doNothing())
          .execute();
      }
    });
  }
  /** Responses for one EE request, ordered by (i, j). */
  async responses(requestHash: Uint8Array): Promise<StoredResponse[]> {
    const rows = await this.db
      .selectFrom('ra_pseudonym_responses')
      .selectAll()
      .where('request_hash', '=', toBytesParam(requestHash))
      .orderBy('i')
      .orderBy('j')
      .execute();
    return rows.map(storedResponseOf);
  }
  /** Every stored row (for audits and the privacy tests). */
  async allResponses(): Promise<StoredResponse[]> {
    const rows = await this.db.selectFrom('ra_pseudonym_responses').selectAll().execute();
    return rows.map(storedResponseOf);
  }
}

export class PseudonymError extends Error {
  override readonly name = 'PseudonymError';
}

/** One EE's authorization request as the RA has accepted it. */
export interface PseudonymJob {
  /** HashedId8 of the EE's EeRaCertRequestSpdu: the key of the stored responses. */
  readonly requestHash: Uint8Array;
  readonly request: EeRaCertRequest;
  /** RA-internal key of the EE's linkage chains (e.g. the device id). */
  readonly chainKey: string;
  /** Inclusive i-periods to issue. */
  readonly iRange: { readonly first: number; readonly last: number };
}

export interface PseudonymBatchReport {
  readonly issued: number;
  readonly failed: Array<{ requestHash: Uint8Array; i: number; j: number; error: string }>;
}

export interface PseudonymServiceOptions {
  readonly store: PseudonymStore;
  readonly la1: LaClient;
  readonly la2: LaClient;
  readonly aca: AcaClient;
  readonly acaCertificate: Certificate;
  readonly raCertificate: Certificate;
  readonly raSigner: Signer;
  readonly iPeriod: IPeriodParams;
  /** ra-butterflyType checks when given. */
  readonly policy?: GlobalPolicy;
  readonly clock?: Clock;
  /** Uniform in [0, 1); default Math.random. Injected for reproducible shuffles. */
  readonly random?: () => number;
  /** Requests per ACA call (default 500). */
  readonly acaBatchSize?: number;
}

/** Fisher–Yates shuffle (in place) with the given RNG. */
export function shuffle<T>(items: T[], random: () => number): T[] {
  for (let n = items.length - 1; n > 0; n--) {
    const k = Math.floor(random() * (n + 1));
    [items[n], items[k]] = [items[k]!, items[n]!];
  }
  return items;
}

interface Pending {
  readonly requestHash: Uint8Array;
  readonly i: number;
  readonly j: number;
  readonly spdu: Uint8Array;
  readonly acaRequestHash: Uint8Array;
  /** ACA response kinds accepted for this request (default: private / cubk, encrypted to the EE). */
  readonly expect?: ReadonlyArray<AcaResponseKind>;
}

/** One accepted identification / application (or non-butterfly) request (kinds.ts). */
export interface KindJob {
  readonly requestHash: Uint8Array;
  readonly request: EeRaCertRequest;
  readonly plan: KindPlan;
}

const RESPONSE_CODECS = {
  private: AcaEeCertResponsePrivateSpduCodec,
  cubk: AcaEeCertResponseCubkSpduCodec,
  plain: AcaEeCertResponsePlainSpduCodec,
} as const;

/** AcaResponse alternative tags (Ieee1609Dot2Dot1AcaRaInterface AcaResponse: plain, private, cubk; root alternatives). */
const ACA_RESPONSE_TAG: Record<AcaResponseKind, number> = { plain: 0x80, private: 0x81, cubk: 0x82 };

/**
 * The COER of the AcaEeCertResponse*Spdu inside a verified, strictly decoded AcaRaCertResponseSpdu, taken from its
 * octets instead of encoded again. The ScmsPdu before it has a fixed layout when nothing optional is present:
 * version 02, content aca-ra (83), acaRaCertResponse (81), AcaRaCertResponse preamble 00 (no extensions), version
 * 02, generationTime (4), requestHash (8), the AcaResponse tag: 18 octets, then the alternative's value up to the
 * end. Undefined (the caller encodes) for any other layout.
 */
function responseOctets(data: Ieee1609Dot2Data, kind: AcaResponseKind): Uint8Array | undefined {
  const c = data.content as { signedData?: { tbsData: { payload: { data?: { content: { unsecuredData?: Uint8Array } } } } } };
  const b = c.signedData?.tbsData.payload.data?.content.unsecuredData;
  if (!b || b.length <= 18) return undefined;
  if (b[0] !== 0x02 || b[1] !== 0x83 || b[2] !== 0x81 || b[3] !== 0x00 || b[4] !== 0x02 || b[17] !== ACA_RESPONSE_TAG[kind]) return undefined;
  return b.slice(18);
}

function acaResolved(c: Certificate): ResolvedSigner {
  try {
    return { certificate: c, publicKey: certificatePublicKey(c) };
  } catch {
    return c;
  }
}

export class PseudonymService {
  readonly #o: PseudonymServiceOptions;
  readonly #clock: Clock;
  readonly #random: () => number;

  constructor(opts: PseudonymServiceOptions) {
    if (opts.la1.laId === opts.la2.laId) throw new PseudonymError('LA1 and LA2 must have different laIds');
    this.#o = opts;
    this.#clock = opts.clock ?? systemClock;
    this.#random = opts.random ?? Math.random;
  }

  /**
   * The encrypted PLVs of one job from one LA. `chains` holds the batch's known chain ids (`${chainKey}/${laId}`);
   * a new chain is added to it and to `created` (saved by the caller for the whole batch).
   */
  async #plvs(
    la: LaClient,
    job: PseudonymJob,
    jMax: number,
    chains: Map<string, Uint8Array>,
    created: Array<{ chainKey: string; laId: number; chainId: Uint8Array }>,
  ): Promise<Map<string, EncryptedPlvEntry>> {
    const { acaCertificate } = this.#o;
    const key = `${job.chainKey}/${la.laId}`;
    const existing = chains.get(key);
    const res = await la.preLinkageValues({
      ...(existing ? { chainId: existing } : { newChain: true }),
      iRange: job.iRange,
      jMax,
      acaCertificate,
    });
    if (!existing) {
      chains.set(key, res.chainId);
      created.push({ chainKey: job.chainKey, laId: la.laId, chainId: res.chainId });
    }
    return new Map(res.plvs.map((p) => [`${p.i}/${p.j}`, p]));
  }

  /** Runs the pipeline for a batch of EE requests; responses go to the store. */
  async processBatch(jobs: readonly PseudonymJob[]): Promise<PseudonymBatchReport> {
    const o = this.#o;
    const jMax = jValues(o.iPeriod).length;
    const generationTime = nowTime32(this.#clock);
    const pending: Pending[] = [];
    // Linkage chains: looked up for the whole batch in one query, new ones saved together (also when a job fails)
    // before any request goes to the ACA.
    const chains = await o.store.chainIds(jobs.map((j) => j.chainKey));
    const created: Array<{ chainKey: string; laId: number; chainId: Uint8Array }> = [];
    try {
      await this.#expandJobs(jobs, jMax, generationTime, chains, created, pending);
    } finally {
      await o.store.saveChainIds(created);
    }

    // Shuffle across EEs so that the ACA cannot group requests by EE (1609.2.1 4.1.3 privacy against the ACA).
    shuffle(pending, this.#random);
    return this.#issueAndStore(pending);
  }

  async #expandJobs(
    jobs: readonly PseudonymJob[],
    jMax: number,
    generationTime: number,
    chains: Map<string, Uint8Array>,
    created: Array<{ chainKey: string; laId: number; chainId: Uint8Array }>,
    pending: Pending[],
  ): Promise<void> {
    const o = this.#o;
    for (const job of jobs) {
      const info = butterflyRequestInfo(job.request);
      if (o.policy) checkButterflyPolicy(o.policy, job.request, info.variant);
      const ijs = periodIndices(job.iRange.first, job.iRange.last, jMax);
      const cocoons = expandCocoons(info, ijs);
      const [plv1, plv2] = await Promise.all([this.#plvs(o.la1, job, jMax, chains, created), this.#plvs(o.la2, job, jMax, chains, created)]);
      for (const cocoon of cocoons) {
        const k = `${cocoon.i}/${cocoon.j}`;
        const p1 = plv1.get(k);
        const p2 = plv2.get(k);
        if (!p1 || !p2) throw new PseudonymError(`missing pre-linkage value for (i, j) = (${k})`);
        const req = raAcaCertRequest({
          info,
          eeRequest: job.request,
          cocoon,
          linkageInfo: { encPlv1: p1.encPlv, encPlv2: p2.encPlv },
          iPeriod: o.iPeriod,
          generationTime,
        });
        const spdu = await signRaAcaCertRequestBytes(req, o.raCertificate, o.raSigner);
        pending.push({ requestHash: job.requestHash, i: cocoon.i, j: cocoon.j, spdu, acaRequestHash: sha256(spdu).slice(-8) });
      }
    }
  }

  /**
   * Identification / application certificates and non-butterfly requests (kinds.ts): no LA, no linkageInfo;
   * the ACA's responses are stored under (request hash, i, 0) like pseudonym responses.
   */
  async processKinds(jobs: readonly KindJob[]): Promise<PseudonymBatchReport> {
    const o = this.#o;
    const generationTime = nowTime32(this.#clock);
    const pending: Pending[] = [];
    for (const job of jobs) {
      for (const r of kindRaAcaCertRequests(job.request, job.plan, { iPeriod: o.iPeriod, generationTime })) {
        const spdu = await signRaAcaCertRequestBytes(r.request, o.raCertificate, o.raSigner);
        pending.push({ requestHash: job.requestHash, i: r.i, j: r.j, spdu, acaRequestHash: sha256(spdu).slice(-8), expect: expectedResponseKinds(job.plan.form) });
      }
    }
    shuffle(pending, this.#random);
    return this.#issueAndStore(pending);
  }

  async #issueAndStore(pending: Pending[]): Promise<PseudonymBatchReport> {
    const o = this.#o;
    const byHash = new Map(pending.map((p) => [toHex(p.acaRequestHash), p]));
    const acaId = toHex(certificateHashedId8(o.acaCertificate));
    // The ACA key decoded once per batch (the resolver answer the verifier would otherwise derive per response).
    const acaSigner = acaResolved(o.acaCertificate);
    const failed: PseudonymBatchReport['failed'] = [];
    let issued = 0;
    const size = o.acaBatchSize ?? 500;
    for (let n = 0; n < pending.length; n += size) {
      const chunk = pending.slice(n, n + size);
      const results = await o.aca.issue(chunk.map((p) => p.spdu));
      if (results.length !== chunk.length) throw new PseudonymError(`ACA answered ${results.length} of ${chunk.length} requests`);
      const rows: StoredResponse[] = [];
      results.forEach((r, idx) => {
        const p = chunk[idx]!;
        if (!r.ok) {
          failed.push({ requestHash: p.requestHash, i: p.i, j: p.j, error: `${r.code}: ${r.error}` });
          return;
        }
        let data: Ieee1609Dot2Data;
        try {
          data = Ieee1609Dot2DataCodec.decode(r.response);
        } catch (e) {
          failed.push({ requestHash: p.requestHash, i: p.i, j: p.j, error: `bad AcaRaCertResponseSpdu: ${(e as Error).message}` });
          return;
        }
        const v = verifySignedSpdu(data, {
          resolveSigner: (id) => ('certificate' in id && id.certificate.length === 1 && toHex(certificateHashedId8(id.certificate[0]!)) === acaId ? acaSigner : undefined),
        });
        const c = v.ok ? v.pdu.content : undefined;
        if (!v.ok || !c || !('aca-ra' in c) || !('acaRaCertResponse' in c['aca-ra'])) {
          failed.push({ requestHash: p.requestHash, i: p.i, j: p.j, error: `bad AcaRaCertResponseSpdu: ${v.ok ? 'not an acaRaCertResponse' : v.reason}` });
          return;
        }
        const resp = c['aca-ra'].acaRaCertResponse;
        const match = byHash.get(toHex(resp.requestHash));
        if (match !== p) {
          failed.push({ requestHash: p.requestHash, i: p.i, j: p.j, error: 'AcaRaCertResponse.requestHash does not match the request' });
          return;
        }
        const [kind] = Object.keys(resp.acaResponse) as AcaResponseKind[];
        if (!p.expect && kind !== 'private' && kind !== 'cubk') {
          failed.push({ requestHash: p.requestHash, i: p.i, j: p.j, error: `ACA answered with a ${String(kind)} response (not encrypted to the EE)` });
          return;
        }
        if (p.expect && !p.expect.includes(kind!)) {
          failed.push({ requestHash: p.requestHash, i: p.i, j: p.j, error: `ACA answered with a ${String(kind)} response, expected ${p.expect.join(' / ')}` });
          return;
        }
        const codec = RESPONSE_CODECS[kind];
        rows.push({
          requestHash: p.requestHash,
          i: p.i,
          j: p.j,
          acaRequestHash: p.acaRequestHash,
          kind,
          response: responseOctets(data, kind) ?? codec.encode((resp.acaResponse as unknown as Record<string, never>)[kind]!),
        });
      });
      await o.store.saveResponses(rows, this.#clock.now().getTime());
      issued += rows.length;
    }
    return { issued, failed };
  }

  /** The EE's download: its per-certificate responses keyed (i, j). */
  download(requestHash: Uint8Array): Promise<StoredResponse[]> {
    return this.#o.store.responses(requestHash);
  }
}
