// Bearer-token guards for the operator API and the internal component API.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import { ScmsHttpError, Ieee1609Dot2Dot1ErrorCode } from './errors.js';

/** Where a token comes from at request time (a value read once from env/flag/file at start-up). */
export type TokenSource = string | undefined | (() => string | undefined);

/** Minimum length for configured tokens: short tokens are guessable. */
export const MIN_TOKEN_LENGTH = 16;

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** Constant-time comparison that does not leak the length of the expected token (both sides hashed first). */
export function tokensEqual(presented: string, expected: string): boolean {
  return timingSafeEqual(digest(presented), digest(expected));
}

/** The token in `Authorization: Bearer <token>`, or undefined. */
export function bearerToken(request: FastifyRequest): string | undefined {
  const h = request.headers.authorization;
  if (typeof h !== 'string') return undefined;
  const m = /^Bearer[ ]+([\x21-\x7e]+)[ ]*$/i.exec(h);
  return m?.[1];
}

export interface BearerAuthOptions {
  /** Realm in WWW-Authenticate, e.g. 'scms-operator'. */
  realm: string;
  token: TokenSource;
  /** Actor recorded on the request (`request.scmsActor`) on success, e.g. 'operator' or 'component'. */
  actor: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by a bearer-auth guard: who made the request. */
    scmsActor?: string;
  }
}

/**
 * A preHandler that admits only requests with the configured bearer token. Missing or wrong token -> 401 with
 * `WWW-Authenticate: Bearer realm=...` (RFC 6750); no token configured -> 403 (the API is disabled).
 */
export function bearerAuth(options: BearerAuthOptions): preHandlerAsyncHookHandler {
  const { realm } = options;
  return async function guard(request: FastifyRequest, _reply: FastifyReply) {
    const expected = typeof options.token === 'function' ? options.token() : options.token;
    if (expected === undefined || expected === '') {
      throw new ScmsHttpError(403, Ieee1609Dot2Dot1ErrorCode.undefined, `${realm} API disabled: no token configured`);
    }
    const presented = bearerToken(request);
    if (presented === undefined) {
      throw new ScmsHttpError(401, Ieee1609Dot2Dot1ErrorCode.undefined, 'bearer token required', {
        headers: { 'www-authenticate': `Bearer realm="${realm}"` },
      });
    }
    if (!tokensEqual(presented, expected)) {
      request.log.warn({ audit: true, event: 'auth.rejected', realm, requestId: request.id }, 'bearer token rejected');
      throw new ScmsHttpError(401, Ieee1609Dot2Dot1ErrorCode.undefined, 'invalid bearer token', {
        headers: { 'www-authenticate': `Bearer realm="${realm}", error="invalid_token"` },
      });
    }
    request.scmsActor = options.actor;
  };
}
