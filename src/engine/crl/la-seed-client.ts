// The RA's way to an LA's linkage seeds over HTTP (POST /internal/la/revocation-seed, la/routes.ts), for CRL
// generation under `serve ra --peer la1=... --peer la2=...`: a RaLaRevocationSeedRequestSpdu signed by the RA
// certificate; the answer must be a LaRaRevocationSeedResponseSpdu signed by an LA certificate with this laId, for
// this request (requestHash) and i-period.
import { LaRaRevocationSeedResponseSpdu as LaRaRevocationSeedResponseSpduCodec, type Certificate } from '../../codec/index.js';
import { toHex } from '../../crypto/bytes.js';
import { sha256 } from '../../crypto/hash.js';
import type { Signer } from '../../security/signer.js';
import { dateToTime32 } from '../../security/time.js';
import { PeerTrust, postOctets, scmsLocalPdu, signedLocalSpdu, type PeerTrustOptions } from '../la/http-spdu.js';
import { LaError, laIdOctets } from '../la/la.js';
import { LA_REVOCATION_SEED_PATH } from '../la/routes.js';
import type { RevocationSeedSource } from './service.js';

export interface HttpLaSeedClientOptions {
  /** LA base URL. */
  readonly baseUrl: string;
  readonly laId: number;
  readonly raCertificate: Certificate;
  readonly raSigner: Signer;
  /** Verifies the LA's answers (chain + LaSsp); its clock dates the requests. */
  readonly trust: PeerTrust | PeerTrustOptions;
  readonly token?: string;
  readonly timeoutMs?: number;
  readonly fetch?: typeof fetch;
}

export class HttpLaSeedClient implements RevocationSeedSource {
  readonly laId: number;
  readonly #o: HttpLaSeedClientOptions;
  readonly #trust: PeerTrust;
  readonly #url: string;

  constructor(options: HttpLaSeedClientOptions) {
    laIdOctets(options.laId);
    this.laId = options.laId;
    this.#o = options;
    this.#trust = options.trust instanceof PeerTrust ? options.trust : new PeerTrust(options.trust);
    this.#url = options.baseUrl.replace(/\/+$/, '') + LA_REVOCATION_SEED_PATH;
  }

  async seedsForRevocation(chainId: Uint8Array, i: number): Promise<{ laId: number; linkageSeed: Uint8Array }> {
    const request = { generationTime: dateToTime32(this.#trust.clock.now()), laId: laIdOctets(this.laId), chainId, i };
    const body = await signedLocalSpdu(scmsLocalPdu({ 'la-ra': { raLaRevocationSeedRequest: request } }), this.#o.raSigner, this.#o.raCertificate);
    const answer = await postOctets(this.#o.fetch ?? fetch, this.#url, body, this.#o.timeoutMs ?? 30_000, this.#o.token);
    let verified;
    try {
      verified = this.#trust.verify(answer, LaRaRevocationSeedResponseSpduCodec, 'la');
    } catch (e) {
      throw new LaError(`LA ${this.laId} response refused: ${(e as Error).message}`);
    }
    if (PeerTrust.laIdOf(verified.signerCertificate) !== this.laId) throw new LaError(`LA ${this.laId} response signed by another LA`);
    const c = verified.pdu.content;
    if (!('la-ra' in c) || !('laRaRevocationSeedResponse' in c['la-ra'])) throw new LaError(`LA ${this.laId}: not a LaRaRevocationSeedResponse`);
    const r = c['la-ra'].laRaRevocationSeedResponse;
    if (toHex(r.requestHash) !== toHex(sha256(body).slice(-8))) throw new LaError(`LA ${this.laId}: response to another request`);
    if (toHex(r.laId) !== toHex(request.laId) || r.i !== i) throw new LaError(`LA ${this.laId}: response for another LA or i-period`);
    return { laId: this.laId, linkageSeed: r.linkageSeed };
  }
}
