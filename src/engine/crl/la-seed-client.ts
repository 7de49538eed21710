// The RA's way to an LA's linkage seeds over HTTP (POST /internal/la/revocation-seed, la/routes.ts), for CRL
// generation under `serve ra --peer la1=... --peer la2=...`: a RaLaRevocationSeedRequestSpdu signed by the RA
// certificate; the answer must be a LaRaRevocationSeedResponseSpdu signed by an LA certificate with this laId, for
// this request (requestHash) and i-period.
import { LaRaRevocationSeedResponseSpdu as LaRaRevocationSeedResponseSpduCodec } from '../../codec/index.js';
import { toHex } from '../../crypto/bytes.js';
import { RaLaEndpoint, type RaLaEndpointOptions } from '../la/http-client.js';
import { LaError, laIdOctets } from '../la/la.js';
import { LA_REVOCATION_SEED_PATH } from '../la/routes.js';
import type { RevocationSeedSource } from './service.js';

export type HttpLaSeedClientOptions = RaLaEndpointOptions;

export class HttpLaSeedClient extends RaLaEndpoint implements RevocationSeedSource {
  constructor(options: HttpLaSeedClientOptions) {
    super(options, LA_REVOCATION_SEED_PATH);
  }

  async seedsForRevocation(chainId: Uint8Array, i: number): Promise<{ laId: number; linkageSeed: Uint8Array }> {
    const request = { generationTime: this.generationTime(), laId: laIdOctets(this.laId), chainId, i };
    const { answer, requestHash } = await this.exchange({ raLaRevocationSeedRequest: request }, LaRaRevocationSeedResponseSpduCodec);
    if (!('laRaRevocationSeedResponse' in answer)) throw new LaError(`LA ${this.laId}: not a LaRaRevocationSeedResponse`);
    const r = answer.laRaRevocationSeedResponse;
    if (toHex(r.requestHash) !== requestHash) throw new LaError(`LA ${this.laId}: response to another request`);
    if (toHex(r.laId) !== toHex(request.laId) || r.i !== i) throw new LaError(`LA ${this.laId}: response for another LA or i-period`);
    return { laId: this.laId, linkageSeed: r.linkageSeed };
  }
}
