// EE HTTP client for the public SCMS interface: one request with bounded retries on "try again later" answers
// (429 / 503 with Retry-After), and errors that say what the SCMS reported: HTTP status, the
// `Ieee-1609.2.1-Error: <status>-<code>` header and the code's meaning (src/engine/http/errors.ts table).
import { ERROR_HEADER, Ieee1609Dot2Dot1ErrorCode, isPolicyLimitCode } from '../http/errors.js';

/** Plain-language meaning of a 1609.2.1 error code. */
export function errorCodeMeaning(code: number): string {
  const C = Ieee1609Dot2Dot1ErrorCode;
  switch (code) {
    case C.requestNotEncrypted:
      return 'the request was not encrypted';
    case C.enrollmentCertificateBlocked:
      return 'the device (enrollment certificate or canonical key) is blocked';
    case C.enrollmentCertificateUnknown:
      return 'the device (enrollment certificate or canonical key) is unknown / not registered';
    case C.requestedPermissionsNotAllowed:
      return 'requested permissions are not allowed';
    case C.requestedRegionNotAllowed:
      return 'requested region is not allowed';
    case C.requestedCertificateTypeNotAllowed:
      return 'requested certificate type is not allowed';
    case C.requestedValidityNotAllowed:
      return 'requested validity is not allowed';
    case C.chainFailure:
      return 'certificate chain failure';
    case C.decryptionFailure:
      return 'the SCMS could not decrypt the request';
    case C.parsingFailure:
      return 'the SCMS could not parse the request (malformed COER)';
    case C.signatureFailure:
      return 'signature verification of the request failed';
    case C.generationTimeInFuture:
      return 'the request generation time is in the future (check the clock)';
    case C.wrongEca:
      return 'the request is addressed to another ECA';
    case C.wrongRa:
      return 'the request is addressed to another RA';
    case C.undefined:
      return 'unspecified error';
  }
  if (code >= 30 && code <= 35) return 'requested content is not allowed';
  if (code >= 60 && code <= 64) return 'invalid request content';
  if (isPolicyLimitCode(code)) return 'a policy limit was hit (request age, rate, minimum wait or overlap)';
  return 'unknown code';
}

/** The SCMS answered with an error (or did not answer at all: status 0). */
export class ScmsResponseError extends Error {
  override readonly name = 'ScmsResponseError';
  constructor(
    readonly method: string,
    readonly url: string,
    /** HTTP status; 0 when the server could not be reached. */
    readonly status: number,
    /** The 1609.2.1 code from the error header, if any. */
    readonly code: number | undefined,
    /** The server's reason text (JSON `message`/`reason` or body), if any. */
    readonly reason: string | undefined,
    /** Retry-After seconds of a 429/503 answer. */
    readonly retryAfter?: number,
  ) {
    super(ScmsResponseError.describe(method, url, status, code, reason));
  }

  static describe(method: string, url: string, status: number, code: number | undefined, reason: string | undefined): string {
    if (status === 0) return `${method} ${url}: the SCMS is unreachable (${reason ?? 'no answer'})`;
    const c = code === undefined ? '' : `, Ieee-1609.2.1-Error ${status}-${code}: ${errorCodeMeaning(code)}`;
    return `${method} ${url}: HTTP ${status}${c}${reason ? ` — ${reason}` : ''}`;
  }
}

export interface EeHttpOptions {
  fetch?: typeof fetch;
  /** Waits (injected for tests). Default setTimeout. */
  sleep?: (ms: number) => Promise<void>;
  /** Retries of 429/503 answers. Default 5. */
  maxRetries?: number;
  /** Upper bound of one wait, seconds. Default 60. */
  maxWaitSeconds?: number;
  /** Called before each wait. */
  onRetry?: (info: { attempt: number; waitSeconds: number; status: number; code?: number }) => void;
}

export interface EeRequest {
  method: 'GET' | 'POST';
  url: string;
  body?: Uint8Array | string;
  headers?: Record<string, string>;
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Parses the `Ieee-1609.2.1-Error` header value `<status>-<code>`. */
export function errorCodeOf(res: Response): number | undefined {
  const m = /^\d{3}-(\d+)$/.exec(res.headers.get(ERROR_HEADER) ?? '');
  return m ? Number(m[1]) : undefined;
}

/** Retry-After in seconds (delta-seconds or HTTP date); undefined when absent. */
export function retryAfterSeconds(res: Response, nowMs: number): number | undefined {
  const v = res.headers.get('retry-after');
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim());
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, Math.ceil((t - nowMs) / 1000));
}

async function reasonOf(res: Response): Promise<string | undefined> {
  const text = (await res.text().catch(() => '')).trim();
  if (!text) return undefined;
  try {
    const j = JSON.parse(text) as { message?: unknown; reason?: unknown; error?: unknown };
    const m = j.reason ?? j.message ?? j.error;
    if (typeof m === 'string') return m;
  } catch {
    // not JSON
  }
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

/**
 * Sends one request. 2xx -> the Response. 429/503 -> waits Retry-After (or exponential backoff from 1 s), capped,
 * up to maxRetries times, then fails. Any other status -> ScmsResponseError; network failure -> status 0.
 */
export async function eeRequest(req: EeRequest, opts: EeHttpOptions = {}): Promise<Response> {
  const doFetch = opts.fetch ?? globalThis.fetch;
  const sleep = opts.sleep ?? defaultSleep;
  const maxRetries = opts.maxRetries ?? 5;
  const cap = opts.maxWaitSeconds ?? 60;
  for (let attempt = 0; ; attempt++) {
    let res: Response;
    try {
      res = await doFetch(req.url, {
        method: req.method,
        headers: req.headers ?? {},
        ...(req.body === undefined ? {} : { body: typeof req.body === 'string' ? req.body : Buffer.from(req.body) }),
      });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new ScmsResponseError(req.method, req.url, 0, undefined, cause?.code ?? cause?.message ?? (e as Error).message);
    }
    if (res.status >= 200 && res.status < 300) return res;
    const code = errorCodeOf(res);
    if ((res.status === 429 || res.status === 503) && attempt < maxRetries) {
      const after = retryAfterSeconds(res, Date.now());
      const waitSeconds = Math.min(cap, after ?? 2 ** attempt);
      await res.arrayBuffer().catch(() => undefined);
      opts.onRetry?.({ attempt: attempt + 1, waitSeconds, status: res.status, ...(code === undefined ? {} : { code }) });
      await sleep(waitSeconds * 1000);
      continue;
    }
    const after = retryAfterSeconds(res, Date.now());
    throw new ScmsResponseError(req.method, req.url, res.status, code, await reasonOf(res), after);
  }
}

/** The response body as octets. */
export async function bodyBytes(res: Response): Promise<Uint8Array> {
  return new Uint8Array(await res.arrayBuffer());
}
