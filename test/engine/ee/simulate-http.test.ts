// EE HTTP client (Retry-After, bounded backoff, 1609.2.1 error diagnosis) and the state directory's keystore use.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { randomOctets, randomScalar } from '../../../src/crypto/random.js';
import { eeRequest, errorCodeMeaning, ScmsResponseError } from '../../../src/engine/ee/http.js';
import { checkOptions, SimulationInputError } from '../../../src/engine/ee/simulate.js';
import { EeStateDir, newState } from '../../../src/engine/ee/state.js';

/** A fetch answering from a script, recording the calls. */
function scripted(answers: Array<() => Response>) {
  const calls: string[] = [];
  const f = (async (url: string) => {
    calls.push(url);
    const next = answers.shift();
    if (!next) throw new Error('no more answers');
    return next();
  }) as unknown as typeof fetch;
  return { f, calls };
}

const busy = (status: number, retryAfter?: string, code = 99) =>
  () => new Response('not ready', { status, headers: { 'ieee-1609.2.1-error': `${status}-${code}`, ...(retryAfter ? { 'retry-after': retryAfter } : {}) } });

describe('eeRequest', () => {
  it('waits Retry-After on 503 / 429 and then returns the answer', async () => {
    const { f, calls } = scripted([busy(503, '3'), busy(429, '1', 72), () => new Response('ok')]);
    const waits: number[] = [];
    const res = await eeRequest({ method: 'GET', url: 'http://ra/x' }, { fetch: f, sleep: async (ms) => void waits.push(ms) });
    expect(await res.text()).toBe('ok');
    expect(calls).toHaveLength(3);
    expect(waits).toEqual([3000, 1000]);
  });

  it('bounded: each wait capped, retries limited, then the error with status and code', async () => {
    const { f } = scripted([busy(503, '3600'), busy(503, '3600'), busy(503, '3600')]);
    const waits: number[] = [];
    const err = await eeRequest({ method: 'GET', url: 'http://ra/x' }, { fetch: f, sleep: async (ms) => void waits.push(ms), maxRetries: 2, maxWaitSeconds: 5 }).catch((e) => e);
    expect(waits).toEqual([5000, 5000]);
    expect(err).toBeInstanceOf(ScmsResponseError);
    expect(err.status).toBe(503);
    expect(err.code).toBe(99);
    expect(err.retryAfter).toBe(3600);
  });

  it('without Retry-After: exponential backoff from 1 s', async () => {
    const { f } = scripted([busy(503), busy(503), () => new Response('ok')]);
    const waits: number[] = [];
    await eeRequest({ method: 'GET', url: 'http://ra/x' }, { fetch: f, sleep: async (ms) => void waits.push(ms) });
    expect(waits).toEqual([1000, 2000]);
  });

  it('other refusals are not retried; the message names status, code and meaning, and the server reason', async () => {
    const { f, calls } = scripted([
      () => new Response(JSON.stringify({ status: 403, reason: 'device is blocked' }), { status: 403, headers: { 'ieee-1609.2.1-error': '403-20', 'content-type': 'application/json' } }),
    ]);
    const err = (await eeRequest({ method: 'POST', url: 'http://eca/v3/enrollment-certificate', body: new Uint8Array([1]) }, { fetch: f }).catch((e) => e)) as ScmsResponseError;
    expect(calls).toHaveLength(1);
    expect(err.status).toBe(403);
    expect(err.code).toBe(20);
    expect(err.message).toBe('POST http://eca/v3/enrollment-certificate: HTTP 403, Ieee-1609.2.1-Error 403-20: the device (enrollment certificate or canonical key) is blocked — device is blocked');
  });

  it('network failure: status 0 and the cause', async () => {
    const f = (async () => {
      throw Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
    }) as unknown as typeof fetch;
    const err = (await eeRequest({ method: 'GET', url: 'http://ra/x' }, { fetch: f }).catch((e) => e)) as ScmsResponseError;
    expect(err.status).toBe(0);
    expect(err.message).toBe('GET http://ra/x: the SCMS is unreachable (ECONNREFUSED)');
  });

  it('code meanings from the 1609.2.1 table', () => {
    expect(errorCodeMeaning(21)).toMatch(/unknown/);
    expect(errorCodeMeaning(43)).toMatch(/signature/);
    expect(errorCodeMeaning(72)).toMatch(/policy limit/);
    expect(errorCodeMeaning(711)).toMatch(/policy limit/);
    expect(errorCodeMeaning(33)).toMatch(/validity/);
    expect(errorCodeMeaning(12345)).toBe('unknown code');
  });
});

describe('checkOptions', () => {
  it('refuses what the standard does not allow', () => {
    expect(() => checkOptions({ cert: 'pseudonym', form: 'explicit', butterfly: 'compact-unified', encrypted: false })).toThrow(SimulationInputError);
    expect(() => checkOptions({ cert: 'pseudonym', form: 'implicit', butterfly: 'none', encrypted: false })).toThrow(/butterfly/);
    expect(() => checkOptions({ cert: 'identification', form: 'implicit', butterfly: 'unified', encrypted: true })).toThrow(/--encrypted/);
    expect(() => checkOptions({ cert: 'identification', form: 'implicit', butterfly: 'none', encrypted: true })).not.toThrow();
    expect(() => checkOptions({ cert: 'pseudonym', form: 'implicit', butterfly: 'compact-unified', encrypted: false })).not.toThrow();
  });
});

describe('EeStateDir', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('butterfly secrets round-trip through the encrypted keystore; nothing secret in plain text on disk', async () => {
    dir = mkdtempSync(join(tmpdir(), 'scms-ee-state-'));
    const sd = new EeStateDir(dir, { passphrase: 'state test', scrypt: { N: 1024 } });
    const params = {
      variant: 'original' as const,
      signingCaterpillarPrivate: randomScalar('nistP256'),
      signingExpansionKey: randomOctets(16),
      encryptionCaterpillarPrivate: randomScalar('nistP256'),
      encryptionExpansionKey: randomOctets(16),
    };
    const uris = await sd.putButterflySecrets('req-0011223344556677', 'nistP256', params);
    const st = newState({ raUrl: 'http://ra', ecaUrl: 'http://ra', deviceType: 'obu', cert: 'pseudonym', form: 'implicit', butterfly: 'original', encrypted: false, trustedRootHashes: ['0011223344556677'] });
    await sd.save(st);
    await sd.close();

    const again = new EeStateDir(dir, { passphrase: 'state test' });
    expect(again.load()).toEqual(st);
    const back = await again.getButterflySecrets('original', uris);
    expect(back).toEqual(params);
    await again.close();

    const secretsHex = [params.signingCaterpillarPrivate.toString(16), Buffer.from(params.signingExpansionKey).toString('hex'), Buffer.from(params.encryptionExpansionKey).toString('hex')];
    const everything = [readFileSync(join(dir, 'state.json'), 'utf8'), ...readdirSync(join(dir, 'keys')).map((f) => readFileSync(join(dir!, 'keys', f), 'utf8'))].join('\n').toLowerCase();
    for (const h of secretsHex) expect(everything).not.toContain(h);

    const wrong = new EeStateDir(dir, { passphrase: 'not it' });
    await expect(wrong.getScalar(uris.signingCaterpillarPrivate!)).rejects.toThrow();
    await wrong.close();
  });
});
