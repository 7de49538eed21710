// Typed HTTP errors and the IEEE 1609.2.1 error codes carried in `Ieee-1609.2.1-Error: <status>-<code>`.
// Source: /work/shared/reference/REST-INTERFACE.md. The standard groups codes by range; where the fact
// sheet names a range but not each member, the names below follow the listed order and say so.

/** Header that carries `<HTTP status>-<code>` when the policy asks for fine-grained errors (`scmsV3-error`). */
export const ERROR_HEADER = 'ieee-1609.2.1-error';

/** `scmsV3-error` policy parameter: fine (status + code header + reason) or coarse (status only). */
export type ErrorMode = 'fine' | 'coarse';

/** 1609.2.1 error codes as named constants. */
export const Ieee1609Dot2Dot1ErrorCode = Object.freeze({
  /** 10: request not encrypted. */
  requestNotEncrypted: 10,
  /** 20: the enrollment certificate (or canonical key) is blocked. */
  enrollmentCertificateBlocked: 20,
  /** 21: the enrollment certificate (or canonical key) is unknown / unregistered. */
  enrollmentCertificateUnknown: 21,
  /** 30–35: requested content not allowed (order within the range as listed in the fact sheet). */
  requestedPermissionsNotAllowed: 30,
  requestedRegionNotAllowed: 31,
  requestedCertificateTypeNotAllowed: 32,
  requestedValidityNotAllowed: 33,
  requestedContentNotAllowed34: 34,
  requestedContentNotAllowed35: 35,
  /** 40: certificate chain failure. */
  chainFailure: 40,
  /** 41: decryption failure. */
  decryptionFailure: 41,
  /** 42: parsing failure (malformed COER). */
  parsingFailure: 42,
  /** 43: signature verification failure. */
  signatureFailure: 43,
  /** 50: generation time in the future. */
  generationTimeInFuture: 50,
  /** 60–64: other invalid request content. */
  invalidContent: 60,
  invalidContent61: 61,
  invalidContent62: 62,
  invalidContent63: 63,
  invalidContent64: 64,
  /** 70–79, 710–712: policy limits (max age, max requests per period, min wait, max generation delay, max overlap) for ECA / RA / download. */
  policyLimit: 70,
  /** 80: request addressed to another ECA. */
  wrongEca: 80,
  /** 81: request addressed to another RA. */
  wrongRa: 81,
  /** 99: undefined. */
  undefined: 99,
} as const);

export type Ieee1609Dot2Dot1ErrorCodeName = keyof typeof Ieee1609Dot2Dot1ErrorCode;

/** Policy-limit codes 70–79 and 710–712 are numeric values in this set. */
export function isPolicyLimitCode(code: number): boolean {
  return (code >= 70 && code <= 79) || (code >= 710 && code <= 712);
}

/** HTTP statuses the 1609.2.1 interface uses. */
export const IEEE_1609DOT2DOT1_STATUSES: readonly number[] = Object.freeze([400, 401, 403, 404, 405, 408, 416, 429, 500, 503]);

export interface ScmsHttpErrorOptions {
  /** Extra response headers (e.g. WWW-Authenticate, Retry-After). */
  headers?: Record<string, string>;
  /** Extra JSON fields for JSON error bodies (e.g. the existing device id on a conflict). */
  details?: Record<string, unknown>;
  cause?: unknown;
}

/**
 * An error the handler means to send: HTTP status, 1609.2.1 code, short reason. The reason is shown to the
 * client in fine mode (and always on operator/internal routes); keep secrets and stack traces out of it.
 */
export class ScmsHttpError extends Error {
  readonly status: number;
  readonly code: number;
  readonly reason: string;
  readonly headers: Record<string, string>;
  readonly details: Record<string, unknown> | undefined;

  constructor(status: number, code: number, reason: string, options: ScmsHttpErrorOptions = {}) {
    super(`${status}-${code}: ${reason}`, options.cause === undefined ? undefined : { cause: options.cause });
    if (!Number.isInteger(status) || status < 400 || status > 599) throw new RangeError(`not an HTTP error status: ${status}`);
    if (!Number.isInteger(code) || code < 0) throw new RangeError(`not an error code: ${code}`);
    this.name = 'ScmsHttpError';
    this.status = status;
    this.code = code;
    this.reason = reason;
    this.headers = options.headers ?? {};
    this.details = options.details;
  }

  /** Header value `<status>-<code>`, e.g. `400-21`. */
  get headerValue(): string {
    return `${this.status}-${this.code}`;
  }
}

/** Shorthands for the common cases. */
export const httpErrors = {
  badRequest: (reason: string, code: number = Ieee1609Dot2Dot1ErrorCode.invalidContent, o?: ScmsHttpErrorOptions) =>
    new ScmsHttpError(400, code, reason, o),
  unauthorized: (reason: string, o?: ScmsHttpErrorOptions) => new ScmsHttpError(401, Ieee1609Dot2Dot1ErrorCode.undefined, reason, o),
  forbidden: (reason: string, code: number = Ieee1609Dot2Dot1ErrorCode.undefined, o?: ScmsHttpErrorOptions) =>
    new ScmsHttpError(403, code, reason, o),
  notFound: (reason: string, o?: ScmsHttpErrorOptions) => new ScmsHttpError(404, Ieee1609Dot2Dot1ErrorCode.undefined, reason, o),
  conflict: (reason: string, o?: ScmsHttpErrorOptions) => new ScmsHttpError(409, Ieee1609Dot2Dot1ErrorCode.undefined, reason, o),
  unavailable: (reason: string, o?: ScmsHttpErrorOptions) => new ScmsHttpError(503, Ieee1609Dot2Dot1ErrorCode.undefined, reason, o),
};
