import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { contentDisposition, ifNoneMatchMatches, parseRange, sendFile, strongEtag } from '../../../src/engine/http/index.js';
import { startTestServer, type TestServer } from './helpers.js';

describe('parseRange', () => {
  it('single ranges, suffixes, open ends, clamping', () => {
    expect(parseRange('bytes=0-9', 100)).toEqual({ kind: 'satisfiable', start: 0, end: 9 });
    expect(parseRange('bytes=90-', 100)).toEqual({ kind: 'satisfiable', start: 90, end: 99 });
    expect(parseRange('bytes=-10', 100)).toEqual({ kind: 'satisfiable', start: 90, end: 99 });
    expect(parseRange('bytes=-1000', 100)).toEqual({ kind: 'satisfiable', start: 0, end: 99 });
    expect(parseRange('bytes=50-5000', 100)).toEqual({ kind: 'satisfiable', start: 50, end: 99 });
  });
  it('unsatisfiable vs ignored', () => {
    expect(parseRange('bytes=100-', 100)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=-0', 100)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange(undefined, 100)).toEqual({ kind: 'none' });
    expect(parseRange('bytes=9-0', 100)).toEqual({ kind: 'none' });
    expect(parseRange('items=0-1', 100)).toEqual({ kind: 'none' });
    expect(parseRange('bytes=0-1,5-6', 100)).toEqual({ kind: 'none' });
    expect(parseRange('bytes=-', 100)).toEqual({ kind: 'none' });
  });
});

describe('ETag helpers', () => {
  it('strong ETag is the quoted SHA-256 of the bytes', () => {
    const b = randomBytes(40);
    expect(strongEtag(b)).toBe(`"${createHash('sha256').update(b).digest('hex')}"`);
  });
  it('If-None-Match uses weak comparison and lists', () => {
    expect(ifNoneMatchMatches('"a", W/"b"', '"b"')).toBe(true);
    expect(ifNoneMatchMatches('"a"', '"b"')).toBe(false);
    expect(ifNoneMatchMatches('*', '"b"')).toBe(true);
    expect(ifNoneMatchMatches(undefined, '"b"')).toBe(false);
  });
  it('Content-Disposition quoting', () => {
    expect(contentDisposition('ctl_0123456789abcdef_1.zip')).toBe('attachment; filename=ctl_0123456789abcdef_1.zip');
    expect(contentDisposition('a b.oer')).toBe('attachment; filename="a b.oer"; filename*=UTF-8\'\'a%20b.oer');
    expect(() => contentDisposition('../x')).toThrow();
  });
});

describe('file responses over HTTP', () => {
  const bytes = randomBytes(1000);
  const etag = `"${createHash('sha256').update(bytes).digest('hex')}"`;
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer((server) => {
      server.app.get('/v3/sample', async (request, reply) => sendFile(request, reply, { bytes, filename: 'a1b2c3d4e5f60718_1.zip', contentType: 'application/zip', ranges: true }));
      server.app.get('/v3/norange', async (request, reply) => sendFile(request, reply, { bytes, filename: 'ra.oer' }));
    });
  });
  afterAll(() => t.close());

  it('200 with attachment name, ETag and Accept-Ranges', async () => {
    const res = await fetch(`${t.url}/v3/sample`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toBe('attachment; filename=a1b2c3d4e5f60718_1.zip');
    expect(res.headers.get('etag')).toBe(etag);
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    expect(res.headers.get('content-type')).toBe('application/zip');
    expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);
  });

  it('If-None-Match with the current ETag -> 304 without body; another ETag -> 200', async () => {
    const same = await fetch(`${t.url}/v3/sample`, { headers: { 'if-none-match': etag } });
    expect(same.status).toBe(304);
    expect(same.headers.get('etag')).toBe(etag);
    expect((await same.arrayBuffer()).byteLength).toBe(0);
    const other = await fetch(`${t.url}/v3/sample`, { headers: { 'if-none-match': '"deadbeef"' } });
    expect(other.status).toBe(200);
  });

  it('Range -> 206 with Content-Range and the slice (resume)', async () => {
    const res = await fetch(`${t.url}/v3/sample`, { headers: { range: 'bytes=600-' } });
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe('bytes 600-999/1000');
    expect(Buffer.from(await res.arrayBuffer()).equals(bytes.subarray(600))).toBe(true);
    const mid = await fetch(`${t.url}/v3/sample`, { headers: { range: 'bytes=10-19' } });
    expect(mid.status).toBe(206);
    expect(Buffer.from(await mid.arrayBuffer()).equals(bytes.subarray(10, 20))).toBe(true);
  });

  it('unsatisfiable Range -> 416 with bytes */size', async () => {
    const res = await fetch(`${t.url}/v3/sample`, { headers: { range: 'bytes=1000-' } });
    expect(res.status).toBe(416);
    expect(res.headers.get('content-range')).toBe('bytes */1000');
  });

  it('If-Range with a stale ETag sends the whole file; routes without ranges ignore Range', async () => {
    const stale = await fetch(`${t.url}/v3/sample`, { headers: { range: 'bytes=0-9', 'if-range': '"old"' } });
    expect(stale.status).toBe(200);
    expect((await stale.arrayBuffer()).byteLength).toBe(1000);
    const fresh = await fetch(`${t.url}/v3/sample`, { headers: { range: 'bytes=0-9', 'if-range': etag } });
    expect(fresh.status).toBe(206);
    const nr = await fetch(`${t.url}/v3/norange`, { headers: { range: 'bytes=0-9' } });
    expect(nr.status).toBe(200);
    expect(nr.headers.get('accept-ranges')).toBeNull();
  });
});
