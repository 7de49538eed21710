// File responses for trust material and downloads: Content-Disposition, strong ETag, If-None-Match -> 304,
// single-range Range requests -> 206 / 416 (RFC 9110 sections 8.8.3, 13.1.2, 13.1.5, 14).
import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

export interface FileResponse {
  bytes: Uint8Array;
  /** Name offered to the client: `Content-Disposition: attachment; filename=...`. */
  filename: string;
  /** Default application/octet-stream. */
  contentType?: string;
  /** Honour `Range` (authorization download resume). Default false. */
  ranges?: boolean;
  /** Precomputed strong ETag (quoted); default: SHA-256 of the bytes. */
  etag?: string;
  /** Cache-Control value; default `no-cache` (clients revalidate with If-None-Match). */
  cacheControl?: string;
}

/** Strong ETag of a byte string: `"<SHA-256 hex>"`. */
export function strongEtag(bytes: Uint8Array): string {
  return `"${createHash('sha256').update(bytes).digest('hex')}"`;
}

/** `attachment; filename=...`, quoting as RFC 6266 requires; non-ASCII names also get filename*. */
export function contentDisposition(filename: string): string {
  if (/[\x00-\x1f\x7f/\\]/.test(filename) || filename === '') throw new RangeError(`unsafe file name ${JSON.stringify(filename)}`);
  if (/^[A-Za-z0-9!#$&+.^_`|~-]+$/.test(filename)) return `attachment; filename=${filename}`;
  const ascii = filename.replace(/[^\x20-\x7e]/g, '_').replace(/["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(filename)}`;
}

/** If-None-Match matches (weak comparison, as RFC 9110 13.1.2 prescribes for this header). */
export function ifNoneMatchMatches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  if (header.trim() === '*') return true;
  const opaque = (t: string) => t.trim().replace(/^W\//, '');
  const mine = opaque(etag);
  return header.split(',').some((t) => opaque(t) === mine);
}

export type RangeResult =
  | { kind: 'none' }
  | { kind: 'satisfiable'; start: number; end: number }
  | { kind: 'unsatisfiable' };

/**
 * Parses a `Range` header against a representation of `size` bytes. Only a single `bytes` range is served:
 * other units, multiple ranges and syntactically invalid headers are ignored (`none`: send the whole file),
 * which RFC 9110 14.2 permits.
 */
export function parseRange(header: string | undefined, size: number): RangeResult {
  if (header === undefined) return { kind: 'none' };
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m) return { kind: 'none' };
  const [, a, b] = m;
  if (a === '' && b === '') return { kind: 'none' };
  if (a === '') {
    const suffix = Number(b);
    if (!Number.isSafeInteger(suffix)) return { kind: 'none' };
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'satisfiable', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(a);
  const last = b === '' ? Infinity : Number(b);
  if (!Number.isSafeInteger(start) || (b !== '' && !Number.isSafeInteger(last))) return { kind: 'none' };
  if (last < start) return { kind: 'none' }; // invalid range-spec: ignore the header
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'satisfiable', start, end: Math.min(last, size - 1) };
}

/** Sends a file with the headers above; returns the reply (so handlers can `return sendFile(...)`). */
export function sendFile(request: FastifyRequest, reply: FastifyReply, file: FileResponse): FastifyReply {
  const etag = file.etag ?? strongEtag(file.bytes);
  const size = file.bytes.byteLength;
  reply.header('etag', etag);
  reply.header('cache-control', file.cacheControl ?? 'no-cache');
  reply.header('content-disposition', contentDisposition(file.filename));
  if (file.ranges) reply.header('accept-ranges', 'bytes');
  const inm = request.headers['if-none-match'];
  if ((request.method === 'GET' || request.method === 'HEAD') && ifNoneMatchMatches(inm, etag)) {
    return reply.code(304).send();
  }
  reply.type(file.contentType ?? 'application/octet-stream');
  const body = Buffer.from(file.bytes.buffer, file.bytes.byteOffset, size);
  if (file.ranges && request.method === 'GET') {
    // If-Range: serve the range only if the client's copy is the current one (strong comparison).
    const ifRange = request.headers['if-range'];
    const rangeHeader = typeof ifRange === 'string' && ifRange.trim() !== etag ? undefined : request.headers.range;
    const r = parseRange(rangeHeader, size);
    if (r.kind === 'unsatisfiable') {
      reply.removeHeader('content-disposition');
      return reply.code(416).header('content-range', `bytes */${size}`).type('text/plain; charset=utf-8').send('range not satisfiable');
    }
    if (r.kind === 'satisfiable') {
      return reply
        .code(206)
        .header('content-range', `bytes ${r.start}-${r.end}/${size}`)
        .send(body.subarray(r.start, r.end + 1));
    }
  }
  return reply.code(200).send(body);
}
