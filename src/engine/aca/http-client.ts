/**
 * The RA's AcaClient over HTTP (src/engine/aca/routes.ts): the COER RaAcaCertRequestSpdus go as one
 * RaAcaCertRequestBatchSpdu (split at `maxBatch`), the AcaRaCertResponseBatchSpdu comes back with one result per
 * request in order. The RA verifies each AcaRaCertResponseSpdu as with the in-process ACA. HTTP refusals surface
 * as ScmsHttpError (status + 1609.2.1 code).
 */
import { postOctets } from '../la/http-spdu.js';
import type { AcaClient, AcaIssueResult } from './aca.js';
import { ACA_CERT_REQUESTS_PATH, DEFAULT_MAX_BATCH, decodeCertResponseBatch, encodeCertRequestBatch } from './routes.js';

export interface HttpAcaClientOptions {
  /** ACA base URL, e.g. http://aca.internal:8080 */
  readonly baseUrl: string;
  /** Component bearer token, if the ACA asks for one. */
  readonly token?: string;
  /** Requests per HTTP exchange (default 1024, the server's default limit). */
  readonly maxBatch?: number;
  /** Per-exchange time limit (default 120 s). */
  readonly timeoutMs?: number;
  readonly fetch?: typeof fetch;
}

export class HttpAcaClientError extends Error {
  override readonly name = 'HttpAcaClientError';
}

export class HttpAcaClient implements AcaClient {
  readonly #url: string;
  readonly #o: HttpAcaClientOptions;

  constructor(options: HttpAcaClientOptions) {
    this.#url = options.baseUrl.replace(/\/+$/, '') + ACA_CERT_REQUESTS_PATH;
    this.#o = options;
  }

  async issue(requests: readonly Uint8Array[]): Promise<AcaIssueResult[]> {
    const max = this.#o.maxBatch ?? DEFAULT_MAX_BATCH;
    const out: AcaIssueResult[] = [];
    for (let n = 0; n < requests.length; n += max) {
      const chunk = requests.slice(n, n + max);
      const answer = await postOctets(this.#o.fetch ?? fetch, this.#url, encodeCertRequestBatch(chunk), this.#o.timeoutMs ?? 120_000, this.#o.token);
      let results: AcaIssueResult[];
      try {
        results = decodeCertResponseBatch(answer);
      } catch (e) {
        throw new HttpAcaClientError(`not an AcaRaCertResponseBatchSpdu: ${(e as Error).message}`);
      }
      if (results.length !== chunk.length) throw new HttpAcaClientError(`${results.length} results for ${chunk.length} requests`);
      out.push(...results);
    }
    return out;
  }
}
