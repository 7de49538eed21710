// EE HTTP client for the public SCMS interface: one request with bounded retries on "try again later" answers
// (429 / 503 with Retry-After), a resend when the connection was lost before any answer, and errors that say what
// the SCMS reported: HTTP status, the `Ieee-1609.2.1-Error: <status>-<code>` header and the code's meaning
// (src/engine/http/errors.ts table).
//
// Lost connections: fetch reuses idle keep-alive connections, and one the server closes just as it is reused loses
// the request before any answer (undici "other side closed", ECONNRESET, EPIPE). Such a request is sent again, over
// a new connection. That is safe for every request the EE sends: GETs are idempotent, and the SCMS refuses the same
// POST octets a second time (1609.2.1 replay checks: 400-60 for the ECA and RA SPDU requests; registering a
// registered canonical key: 409), so a resent POST is never processed twice. A refusal of the resend says so
// (`afterLostConnection`): the first attempt may then have been accepted and only its answer lost.
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
    /**
     * This answer is to a resend after the connection was lost (the cause): a replay refusal (400-60, or 409 for a
     * registration) then means the first attempt was accepted and its answer lost.
     */
    readonly afterLostConnection?: string,
    /** The JSON object of the error body (operator APIs: e.g. `deviceId` of a 409), if any. */
    readonly details?: Record<string, unknown>,
  ) {
    super(ScmsResponseError.describe(method, url, status, code, reason, afterLostConnection));
  }

  static describe(method: string, url: string, status: number, code: number | undefined, reason: string | undefined, afterLostConnection?: string): string {
    if (status === 0) return `${method} ${url}: the SCMS is unreachable (${reason ?? 'no answer'})`;
    const c = code === undefined ? '' : `, Ieee-1609.2.1-Error ${status}-${code}: ${errorCodeMeaning(code)}`;
    const lost = afterLostConnection
      ? ` (answer to a resend: the first attempt's connection was lost (${afterLostConnection}); if this refuses a replay, the first attempt was accepted and its answer lost)`
      : '';
    return `${method} ${url}: HTTP ${status}${c}${reason ? ` — ${reason}` : ''}${lost}`;
  }
}

/** Causes of a connection lost before any answer: the server closed or reset it (undici: UND_ERR_SOCKET "other side closed"). */
const LOST_CONNECTION_CODES = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE']);

/** `code: message` of a fetch failure that is a lost connection (resend it), else undefined. */
export function lostConnectionCause(e: unknown): string | undefined {
  const cause = (e as { cause?: { code?: unknown; message?: unknown } } | undefined)?.cause;
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  if (!code || !LOST_CONNECTION_CODES.has(code)) return undefined;
  return typeof cause?.message === 'string' && cause.message && cause.message !== code ? `${code}: ${cause.message}` : code;
}

export interface EeHttpOptions {
  fetch?: typeof fetch;
  /** Waits (injected for tests). Default setTimeout. */
  sleep?: (ms: number) => Promise<void>;
  /** Retries of 429/503 answers. Default 5. */
  maxRetries?: number;
  /** Upper bound of one wait, seconds. Default 60. */
  maxWaitSeconds?: number;
  /** Resends of a request whose connection was lost before any answer (module comment). Default 2. */
  maxResends?: number;
  /** Called before each wait, and before each resend (status 0, waitSeconds 0, `lost`: the cause). */
  onRetry?: (info: { attempt: number; waitSeconds: number; status: number; code?: number; lost?: string }) => void;
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

async function reasonOf(res: Response): Promise<{ reason?: string; details?: Record<string, unknown> }> {
  const text = (await res.text().catch(() => '')).trim();
  if (!text) return {};
  try {
    const j = JSON.parse(text) as Record<string, unknown>;
    if (j && typeof j === 'object' && !Array.isArray(j)) {
      const m = j.reason ?? j.message ?? j.error;
      if (typeof m === 'string') return { reason: m, details: j };
    }
  } catch {
    // not JSON
  }
  return { reason: text.length > 300 ? `${text.slice(0, 300)}…` : text };
}

/**
 * Sends one request. 2xx -> the Response. 429/503 -> waits Retry-After (or exponential backoff from 1 s), capped,
 * up to maxRetries times, then fails. Connection lost before any answer -> sent again at once over a new connection,
 * up to maxResends times (module comment). Any other status -> ScmsResponseError; network failure -> status 0.
 */
export async function eeRequest(req: EeRequest, opts: EeHttpOptions = {}): Promise<Response> {
  const doFetch = opts.fetch ?? globalThis.fetch;
  const sleep = opts.sleep ?? defaultSleep;
  const maxRetries = opts.maxRetries ?? 5;
  const maxResends = opts.maxResends ?? 2;
  const cap = opts.maxWaitSeconds ?? 60;
  let resends = 0;
  let lost: string | undefined;
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
      const why = lostConnectionCause(e);
      if (why && resends < maxResends) {
        resends++;
        lost = why;
        attempt--; // a resend is not a "try again later" retry
        opts.onRetry?.({ attempt: resends, waitSeconds: 0, status: 0, lost: why });
        continue;
      }
      throw new ScmsResponseError(req.method, req.url, 0, undefined, why ?? cause?.code ?? cause?.message ?? (e as Error).message);
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
    const { reason, details } = await reasonOf(res);
    throw new ScmsResponseError(req.method, req.url, res.status, code, reason, after, lost, details);
  }
}

/** The response body as octets. */
export async function bodyBytes(res: Response): Promise<Uint8Array> {
  return new Uint8Array(await res.arrayBuffer());
}
