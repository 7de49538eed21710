/**
 * HTTP transports to an LA (src/engine/la/routes.ts), implementing the same interfaces as the in-process LaService:
 * - HttpLaClient (the RA's LaClient): RaLaPreLinkageValueRequestSpdu signed by the RA certificate; the answer must
 *   be a LaRaPreLinkageValueResponseSpdu signed by an LA certificate with this laId, for this request (requestHash),
 *   with exactly the requested (i, j) values.
 * - HttpLaKeyClient (the ACA's LaKeyClient): AcaLaPlvKeyRequestSpdu signed by the ACA certificate; the answer is the
 *   LaAcaPlvKeyDeliverySpdu, which the ACA decrypts and verifies itself (AcaService).
 * HTTP refusals surface as ScmsHttpError (status + 1609.2.1 code), bad answers as LaError.
 */
import {
  LaAcaPlvKeyDeliverySpdu as LaAcaPlvKeyDeliverySpduCodec,
  LaRaPreLinkageValueResponseSpdu as LaRaPreLinkageValueResponseSpduCodec,
  type Certificate,
  type Codec,
  type RaLaPreLinkageValueRequest,
  type ScmsLocalPdu,
} from '../../codec/index.js';
import { toHex } from '../../crypto/bytes.js';
import { sha256 } from '../../crypto/hash.js';
import { certificateHashedId8 } from '../../security/certificate.js';
import type { Signer } from '../../security/signer.js';
import { dateToTime32, systemClock, type Clock } from '../../security/time.js';
import { PeerTrust, postOctets, scmsLocalPdu, signedLocalSpdu, type PeerTrustOptions } from './http-spdu.js';
import { LaError, laIdOctets, type LaClient, type LaKeyClient, type PreLinkageValuesRequest, type PreLinkageValuesResponse } from './la.js';
import { LA_ACA_KEY_PATH, LA_PRE_LINKAGE_VALUES_PATH } from './routes.js';

export interface HttpOptions {
  /** LA base URL, e.g. http://la1.internal:8080 */
  readonly baseUrl: string;
  readonly laId: number;
  /** Component bearer token, if the LA asks for one. */
  readonly token?: string;
  /** Per-request time limit (default 30 s). */
  readonly timeoutMs?: number;
  readonly fetch?: typeof fetch;
}

/** An RA-side client of an LA route (HttpLaClient, crl/la-seed-client.ts HttpLaSeedClient). */
export interface RaLaEndpointOptions extends HttpOptions {
  /** The RA certificate and its key (sign the requests). */
  readonly raCertificate: Certificate;
  readonly raSigner: Signer;
  /** Verifies the LA's responses (chain + LaSsp); its clock dates the requests. */
  readonly trust: PeerTrust | PeerTrustOptions;
}

export type HttpLaClientOptions = RaLaEndpointOptions;

type LaRaContent = Extract<ScmsLocalPdu['content'], { 'la-ra': unknown }>['la-ra'];

const base = (u: string) => u.replace(/\/+$/, '');

/** What both clients share: the LA's laId (checked), the route's URL and the POST of a signed SPDU. */
abstract class LaEndpoint<O extends HttpOptions> {
  readonly laId: number;
  protected readonly o: O;
  readonly #url: string;

  constructor(options: O, path: string) {
    this.laId = options.laId;
    laIdOctets(options.laId);
    this.#url = base(options.baseUrl) + path;
    this.o = options;
  }

  /** The answer's octets (an HTTP refusal throws ScmsHttpError). */
  protected post(body: Uint8Array): Promise<Uint8Array> {
    return postOctets(this.o.fetch ?? fetch, this.#url, body, this.o.timeoutMs ?? 30_000, this.o.token);
  }
}

/**
 * The RA side of an LA route: the request is an RA-signed ScmsLocalPdu `la-ra` content; the answer must verify
 * (chain + LaSsp) and be signed by an LA certificate with this laId.
 */
export abstract class RaLaEndpoint extends LaEndpoint<RaLaEndpointOptions> {
  readonly #trust: PeerTrust;

  constructor(options: RaLaEndpointOptions, path: string) {
    super(options, path);
    this.#trust = options.trust instanceof PeerTrust ? options.trust : new PeerTrust(options.trust);
  }

  /** Time32 now, on the trust's clock: the requests' generationTime. */
  protected generationTime(): number {
    return dateToTime32(this.#trust.clock.now());
  }

  /** Sends `request`; the LA's answer (`spduCodec`), verified, as its `la-ra` content, and the request's HashedId8. */
  protected async exchange(request: LaRaContent, spduCodec: Codec<unknown>): Promise<{ answer: LaRaContent; requestHash: string }> {
    const body = await signedLocalSpdu(scmsLocalPdu({ 'la-ra': request }), this.o.raSigner, this.o.raCertificate);
    const bytes = await this.post(body);
    let verified;
    try {
      verified = this.#trust.verify(bytes, spduCodec, 'la');
    } catch (e) {
      throw new LaError(`LA ${this.laId} response refused: ${(e as Error).message}`);
    }
    if (PeerTrust.laIdOf(verified.signerCertificate) !== this.laId) throw new LaError(`LA ${this.laId} response signed by another LA`);
    const c = verified.pdu.content;
    if (!('la-ra' in c)) throw new LaError(`LA ${this.laId}: not an LA-RA message`);
    return { answer: c['la-ra'], requestHash: toHex(sha256(body).slice(-8)) };
  }
}

/** The RA's LaClient over HTTP. */
export class HttpLaClient extends RaLaEndpoint implements LaClient {
  constructor(options: HttpLaClientOptions) {
    super(options, LA_PRE_LINKAGE_VALUES_PATH);
  }

  async preLinkageValues(req: PreLinkageValuesRequest): Promise<PreLinkageValuesResponse> {
    if (req.newChain === (req.chainId !== undefined)) throw new LaError('give either chainId or newChain');
    const request: RaLaPreLinkageValueRequest = {
      generationTime: this.generationTime(),
      laId: laIdOctets(this.laId),
      chain: req.chainId ? { existing: req.chainId } : { newChain: null },
      iFirst: req.iRange.first,
      iLast: req.iRange.last,
      jMax: req.jMax,
      acaCertificate: req.acaCertificate,
    };
    const { answer, requestHash } = await this.exchange({ raLaPreLinkageValueRequest: request }, LaRaPreLinkageValueResponseSpduCodec);
    if (!('laRaPreLinkageValueResponse' in answer)) throw new LaError(`LA ${this.laId}: not a LaRaPreLinkageValueResponse`);
    const r = answer.laRaPreLinkageValueResponse;
    if (toHex(r.requestHash) !== requestHash) throw new LaError(`LA ${this.laId}: response to another request`);
    if (toHex(r.laId) !== toHex(request.laId)) throw new LaError(`LA ${this.laId}: response names LA ${toHex(r.laId)}`);
    if (req.chainId && toHex(r.chainId) !== toHex(req.chainId)) throw new LaError(`LA ${this.laId}: response for another chain`);
    const expected: string[] = [];
    for (let i = req.iRange.first; i <= req.iRange.last; i++) for (let j = 0; j < req.jMax; j++) expected.push(`${i}/${j}`);
    if (r.plvs.map((p) => `${p.i}/${p.j}`).join() !== expected.join()) throw new LaError(`LA ${this.laId}: response does not hold the requested (i, j) values`);
    return { laId: this.laId, chainId: r.chainId, plvs: r.plvs.map((p) => ({ i: p.i, j: p.j, encPlv: p.encPlv })) };
  }
}

export interface HttpLaKeyClientOptions extends HttpOptions {
  /** The ACA certificate and its key (sign the requests); the key delivered is the one for this certificate. */
  readonly acaCertificate: Certificate;
  readonly acaSigner: Signer;
  /** Dates the requests. */
  readonly clock?: Clock;
}

/** The ACA's LaKeyClient over HTTP. */
export class HttpLaKeyClient extends LaEndpoint<HttpLaKeyClientOptions> implements LaKeyClient {
  constructor(options: HttpLaKeyClientOptions) {
    super(options, LA_ACA_KEY_PATH);
  }

  async acaKeyDelivery(acaCertificate: Certificate): Promise<Uint8Array> {
    if (toHex(certificateHashedId8(acaCertificate)) !== toHex(certificateHashedId8(this.o.acaCertificate))) {
      throw new LaError('HttpLaKeyClient delivers the key of its own ACA certificate only');
    }
    const now = (this.o.clock ?? systemClock).now();
    const pdu = scmsLocalPdu({ 'aca-la': { acaLaPlvKeyRequest: { generationTime: dateToTime32(now), laId: laIdOctets(this.laId) } } });
    const body = await signedLocalSpdu(pdu, this.o.acaSigner, this.o.acaCertificate);
    const answer = await this.post(body);
    try {
      LaAcaPlvKeyDeliverySpduCodec.decode(answer);
    } catch (e) {
      throw new LaError(`LA ${this.laId}: not a LaAcaPlvKeyDeliverySpdu: ${(e as Error).message}`);
    }
    return answer;
  }
}
