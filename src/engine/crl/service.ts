/**
 * CRL generation and device revocation (IEEE 1609.2 7.3 CRLs; 1609.2.1 Annex D linkage-based revocation), run in
 * the RA process with the CRL signer key `scms manager init` wrote (role crl-signer, CrlSsp issuerIsCraca, crls
 * [DEFAULT_CRL_SERIES]): crlCraca = HashedId8 of the CRL signer's issuer.
 *
 * Per (crlCraca, crlSeries) two full CRLs are kept, because TypeSpecificCrlContents is a CHOICE:
 *   fullHashCrl    HashedId10 + expiry of revoked enrollment / identification certificates (crlSerial + 1 per CRL);
 *   fullLinkedCrl  individual entries (la1Id, la2Id, ls1(iRev), ls2(iRev)) of revoked devices' pseudonym chains,
 *                  iRev = the current i-period, indexWithinI counting the CRLs issued since iRev last changed.
 * Both are issued on every revocation and again before nextCrl (policy crl-nextUpdate) or when the i-period
 * changes; issueDate strictly increases. Entries leave the CRL once expired (hash) or once iRev > iMax (linked).
 *
 * How a device's pseudonym chains are found, and the privacy trade-off: the RA asks LA1 / LA2 for pre-linkage values
 * under a random chain id per LA and keeps (chainKey = device id, laId) -> chain id (ra_linkage_chains, written by
 * ra/pseudonym.ts). Revocation looks the two chain ids up by device id and asks each LA for ls(i) of its chain
 * (LaService.seedsForRevocation). The LAs still never learn which device a chain belongs to, and a seed only gives
 * linkage values from i onward (the seed step is one-way), so earlier certificates stay unlinkable. The cost: the RA
 * process, which knows device identities, can obtain seeds and so link a device's future pseudonyms; in the 1609.2.1
 * architecture that request comes from the MA, which starts from a misbehaving certificate's linkage value and needs
 * the ACA, the RA and both LAs to cooperate. Here the operator's revocation is by device, so the RA-side lookup is
 * the only path; every seed request is for a device that is then published on the CRL (the seeds become public),
 * and it is audited as `device.revoked`.
 */
import type { Certificate, CrlContents } from '../../codec/index.js';
import { fromHex, toHex } from '../../crypto/bytes.js';
import { laIdOctets } from '../la/la.js';
import { certificateHashedId10, certificateHashedId8, decodeCertificate } from '../../security/certificate.js';
import { CRL_VERSION, crlSspOf, individualLinkageGroups, signCrl, type LinkedRevocation } from '../../security/crl.js';
import { linkageSeedAt } from '../../crypto/linkage.js';
import type { Signer } from '../../security/signer.js';
import { iPeriodOf, jValues, nowTime32, validityPeriodEnd, type Clock, type IPeriodParams } from '../../security/time.js';
import { Ieee1609Dot2Dot1ErrorCode as Code, ScmsHttpError } from '../http/errors.js';
import type { RegistrationStore } from '../ra/registration-store.js';
import type { CrlStore, HashEntry, IssuedCrl, LinkageEntry } from './store.js';

/** What an LA offers for linkage-based revocation (LaService.seedsForRevocation). */
export interface RevocationSeedSource {
  readonly laId: number;
  seedsForRevocation(chainId: Uint8Array, i: number): Promise<{ laId: number; linkageSeed: Uint8Array }>;
}

/** The RA's chain ids (PseudonymStore.chainId). */
export interface ChainLookup {
  chainId(chainKey: string, laId: number): Promise<Uint8Array | undefined>;
}

export interface CrlServiceOptions {
  store: CrlStore;
  registration: RegistrationStore;
  /** The CRL signer's certificate and key. */
  certificate: Certificate;
  signer: Signer;
  /** The CRL signer's issuer (its CRACA under issuerIsCraca). */
  issuer?: Certificate;
  iPeriod: IPeriodParams;
  /** Policy crl-nextUpdate, seconds. */
  nextUpdateSeconds: number;
  /** Pseudonym chains: the RA's chain ids and the two LAs; without them devices with chains cannot be revoked. */
  chains?: ChainLookup;
  las?: readonly [RevocationSeedSource, RevocationSeedSource];
  /** Enrollment certificates (COER) issued to a device, e.g. from the ECA's store under `serve all`. */
  enrollmentCertificates?: (deviceId: string) => Promise<Uint8Array[]>;
  clock: Clock;
  /** Re-issue this long before nextCrl (default a tenth of nextUpdateSeconds). */
  reissueMarginSeconds?: number;
  /** Called after every issuance (distribution refreshes its files). */
  onIssued?: (crls: readonly IssuedCrl[]) => void;
}

export interface RevokeInput {
  deviceId: string;
  reason: string;
  actor: string;
  /** Further certificates of the device (COER), e.g. identification certificates; each must be recorded for it. */
  certificates?: readonly Uint8Array[];
}

export interface RevokeResult {
  deviceId: string;
  hashEntries: HashEntry[];
  linkage?: { la1Id: number; la2Id: number; i: number; jmax: number; iMax: number };
  crls: Array<{ kind: string; serial: number; issueDate: number; nextCrl: number }>;
}

const UINT32_MAX = 0xffffffff;

export class CrlService {
  readonly #o: CrlServiceOptions;
  readonly series: number;
  readonly cracaId: string;
  #current: IssuedCrl[] = [];
  #version = 0;
  #queue: Promise<unknown> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;

  constructor(opts: CrlServiceOptions) {
    const ssp = crlSspOf(opts.certificate);
    if (!ssp) throw new Error('the CRL signer certificate has no CrlSsp (CrlPsid 0x100)');
    const [series] = ssp.crls;
    if (series === undefined) throw new Error('the CRL signer CrlSsp permits no CRL series');
    const craca = ssp.associatedCraca === 'isCraca' ? opts.certificate : opts.issuer;
    if (!craca) throw new Error('the CRL signer is issuerIsCraca: its issuer certificate is needed');
    this.#o = opts;
    this.series = series;
    this.cracaId = toHex(certificateHashedId8(craca));
    const jmax = jValues(opts.iPeriod).length;
    if (jmax > 255) throw new Error(`time-baseCertNumber ${jmax} does not fit JMaxGroup.jmax (Uint8)`);
  }

  /** Runs `fn` after everything queued before it (revocations and issuances do not interleave). */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Loads the stored CRLs; issues the first (empty) ones, or new ones when due. */
  async init(): Promise<void> {
    this.#current = await this.#o.store.issued();
    this.#version = this.#current.length ? 1 : 0;
    await this.refresh();
  }

  /** The current CRLs (latest per craca / series / kind). */
  current(): readonly IssuedCrl[] {
    return this.#current;
  }

  /** Increases with every issuance (distribution caches by it). */
  get version(): number {
    return this.#version;
  }

  /** The CRL for (craca, series, kind), if any. */
  find(craca: string, series: number, kind: IssuedCrl['kind']): IssuedCrl | undefined {
    return this.#current.find((c) => c.craca === craca && c.series === series && c.kind === kind);
  }

  /**
   * Takes up CRLs another process sharing the database issued (several RA processes on one PostgreSQL database).
   * Returns whether the stored ones were newer.
   */
  async #reload(): Promise<boolean> {
    const stored = await this.#o.store.issued();
    const latest = (cs: readonly IssuedCrl[]) => Math.max(0, ...cs.map((c) => c.issueDate));
    if (latest(stored) <= latest(this.#current)) return false;
    this.#current = stored;
    this.#version++;
    this.#o.onIssued?.(this.#current);
    return true;
  }

  /** Re-issues when there is no CRL yet, nextCrl is near or the i-period changed. Returns whether it issued. */
  refresh(): Promise<boolean> {
    return this.#serial(async () => {
      await this.#reload();
      const now = nowTime32(this.#o.clock);
      const margin = this.#o.reissueMarginSeconds ?? Math.floor(this.#o.nextUpdateSeconds / 10);
      const i = iPeriodOf(this.#o.iPeriod, now);
      const due =
        this.#current.length < 2 ||
        this.#current.some((c) => now >= c.nextCrl - margin || (c.kind === 'fullLinkedCrl' && c.iRev !== i));
      if (due) await this.#issue();
      return due;
    });
  }

  /** Starts the periodic refresh (every `intervalMs`). */
  start(intervalMs = 60_000, onError?: (e: unknown) => void): void {
    this.stop();
    this.#timer = setInterval(() => void this.refresh().catch((e) => onError?.(e)), intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Waits for queued work (shutdown). */
  async idle(): Promise<void> {
    await this.#queue;
  }

  /**
   * Revokes a device: its enrollment (and given) certificates go on the hash-based CRL, its pseudonym chains on the
   * linkage-based CRL; the device is blocked at the RA; new CRLs are issued. Every check runs before anything is
   * written: a refused revocation changes nothing.
   */
  revoke(input: RevokeInput): Promise<RevokeResult> {
    return this.#serial(async () => {
      const o = this.#o;
      const device = await o.registration.get(input.deviceId);
      if (!device) throw new ScmsHttpError(404, Code.undefined, `unknown device ${input.deviceId}`);
      if (await o.store.revocation(input.deviceId)) throw new ScmsHttpError(409, Code.undefined, `device ${input.deviceId} is already revoked`);
      const now = nowTime32(o.clock);

      // Hash-based: enrollment certificates from the ECA's records, and certificates the operator names.
      const entries = new Map<string, HashEntry>();
      const add = (cert: Certificate, kind: string) => {
        const expiry = Math.min(UINT32_MAX, Math.floor(validityPeriodEnd(cert.toBeSigned.validityPeriod)));
        entries.set(toHex(certificateHashedId10(cert)), { id: toHex(certificateHashedId10(cert)), expiry, kind });
      };
      const enrollment = (await o.enrollmentCertificates?.(input.deviceId)) ?? [];
      const enrollmentIds = new Set<string>();
      for (const bytes of enrollment) {
        const c = decodeCertificate(bytes);
        enrollmentIds.add(toHex(certificateHashedId8(c)));
        add(c, 'enrollment');
      }
      if (input.certificates?.length) {
        const recorded = new Map((await o.registration.certificates(input.deviceId)).map((r) => [r.hashedId8.toLowerCase(), r.kind]));
        input.certificates.forEach((bytes, n) => {
          let c: Certificate;
          try {
            c = decodeCertificate(bytes);
          } catch (e) {
            throw new ScmsHttpError(400, Code.invalidContent, `certificates[${n}]: not a COER Certificate (${(e as Error).message})`);
          }
          const h8 = toHex(certificateHashedId8(c));
          const kind = recorded.get(h8) ?? (enrollmentIds.has(h8) ? 'enrollment' : undefined);
          if (!kind) throw new ScmsHttpError(400, Code.invalidContent, `certificates[${n}]: ${h8} is not recorded as a certificate of device ${input.deviceId}`);
          add(c, kind);
        });
      }

      // Linkage-based: the device's chain pair, seeds at the current i-period from each LA.
      let linkage: LinkageEntry | undefined;
      const las = o.las;
      if (o.chains && las) {
        const [c1, c2] = await Promise.all(las.map((la) => o.chains!.chainId(input.deviceId, la.laId)));
        if (c1 && c2) {
          const i = iPeriodOf(o.iPeriod, now);
          let s1, s2;
          try {
            [s1, s2] = await Promise.all([las[0].seedsForRevocation(c1, i), las[1].seedsForRevocation(c2, i)]);
          } catch (e) {
            throw new ScmsHttpError(503, Code.undefined, `an LA did not give the linkage seeds: ${(e as Error).message}`);
          }
          linkage = {
            la1Id: s1.laId,
            la2Id: s2.laId,
            seed1: toHex(s1.linkageSeed),
            seed2: toHex(s2.linkageSeed),
            i,
            jmax: jValues(o.iPeriod).length,
            // The RA issues ahead without a fixed horizon: keep the entry for every later i-period.
            iMax: 0xffff,
          };
        } else if (c1 || c2) {
          throw new ScmsHttpError(500, Code.undefined, `device ${input.deviceId} has a linkage chain at one LA only`);
        }
      } else if (o.chains) {
        throw new ScmsHttpError(503, Code.undefined, 'linkage-based revocation needs the LAs in this process');
      }

      const added = await o.store.addRevocation({
        deviceId: input.deviceId,
        revokedAt: o.clock.now(),
        reason: input.reason,
        actor: input.actor,
        hashEntries: [...entries.values()],
        ...(linkage ? { linkage } : {}),
      });
      if (!added) throw new ScmsHttpError(409, Code.undefined, `device ${input.deviceId} is already revoked`);
      await o.registration.block(input.deviceId, `revoked: ${input.reason}`, input.actor);
      const crls = await this.#issue();
      return {
        deviceId: input.deviceId,
        hashEntries: [...entries.values()],
        ...(linkage ? { linkage: { la1Id: linkage.la1Id, la2Id: linkage.la2Id, i: linkage.i, jmax: linkage.jmax, iMax: linkage.iMax } } : {}),
        crls: crls.map((c) => ({ kind: c.kind, serial: c.serial, issueDate: c.issueDate, nextCrl: c.nextCrl })),
      };
    });
  }

  /** Builds, signs and stores both CRLs from every revocation (call inside #serial). */
  async #issue(): Promise<IssuedCrl[]> {
    const o = this.#o;
    await this.#reload();
    const now = nowTime32(o.clock);
    const last = Math.max(0, ...this.#current.map((c) => c.issueDate));
    const issueDate = Math.max(now, last + 1);
    const nextCrl = issueDate + o.nextUpdateSeconds;
    const iRev = iPeriodOf(o.iPeriod, issueDate);
    const revocations = await o.store.revocations();

    const hashEntries = new Map<string, { id: Uint8Array; expiry: number }>();
    const linked: LinkedRevocation[] = [];
    for (const r of revocations) {
      for (const e of r.hashEntries) if (e.expiry >= issueDate) hashEntries.set(e.id, { id: fromHex(e.id), expiry: e.expiry });
      const l = r.linkage;
      if (!l || l.i > iRev || iRev > l.iMax) continue;
      const la1Id = laIdOctets(l.la1Id);
      const la2Id = laIdOctets(l.la2Id);
      linked.push({
        la1Id,
        la2Id,
        linkageSeed1: linkageSeedAt(la1Id, fromHex(l.seed1), iRev - l.i),
        linkageSeed2: linkageSeedAt(la2Id, fromHex(l.seed2), iRev - l.i),
        jmax: l.jmax,
        iMax: l.iMax,
      });
    }

    const prevHash = this.find(this.cracaId, this.series, 'fullHashCrl');
    const prevLinked = this.find(this.cracaId, this.series, 'fullLinkedCrl');
    const crlSerial = ((prevHash?.serial ?? 0) + 1) >>> 0;
    // indexWithinI is a Uint8: it wraps after 255 CRLs within one i-period.
    const indexWithinI = prevLinked && prevLinked.iRev === iRev ? (prevLinked.serial + 1) % 256 : 0;
    const base = { version: CRL_VERSION, crlSeries: this.series, crlCraca: fromHex(this.cracaId), issueDate, nextCrl, priorityInfo: {} };
    const hashContents: CrlContents = {
      ...base,
      typeSpecific: { fullHashCrl: { crlSerial, entries: [...hashEntries.values()].sort((a, b) => Buffer.compare(a.id, b.id)) } },
    };
    const linkedContents: CrlContents = {
      ...base,
      typeSpecific: { fullLinkedCrl: { iRev, indexWithinI, individual: individualLinkageGroups(linked) } },
    };
    const sign = (contents: CrlContents) => signCrl({ contents, signer: o.signer, certificate: o.certificate });
    const issued: IssuedCrl[] = [
      { craca: this.cracaId, series: this.series, kind: 'fullHashCrl', serial: crlSerial, issueDate, nextCrl, crl: await sign(hashContents) },
      { craca: this.cracaId, series: this.series, kind: 'fullLinkedCrl', serial: indexWithinI, iRev, issueDate, nextCrl, crl: await sign(linkedContents) },
    ];
    await o.store.saveIssued(issued);
    this.#current = [...this.#current.filter((c) => !issued.some((n) => n.craca === c.craca && n.series === c.series && n.kind === c.kind)), ...issued];
    this.#version++;
    o.onIssued?.(this.#current);
    return issued;
  }
}
