import {
  createECDH,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  scryptSync,
  verify as nodeVerify,
  type KeyObject,
} from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, copyFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { p256, p384 } from '@noble/curves/nist.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KeyStores, openKeyStore } from '../../src/hsm/index.js';
import { KeyStoreError, type CurveName } from '../../src/hsm/keystore.js';
import { SoftKeyStore } from '../../src/hsm/soft.js';

const FAST = { N: 2 ** 10, r: 8, p: 1 }; // most tests; one test uses the default cost
const PASS = 'correct horse battery staple';
const OPENSSL: Record<CurveName, string> = { 'P-256': 'prime256v1', 'P-384': 'secp384r1' };
const HASH: Record<CurveName, string> = { 'P-256': 'sha256', 'P-384': 'sha384' };

function pubKeyObject(curve: CurveName, point: Uint8Array): KeyObject {
  const n = curve === 'P-256' ? 32 : 48;
  const b = Buffer.from(point);
  return createPublicKey({
    key: { kty: 'EC', crv: curve, x: b.subarray(1, 1 + n).toString('base64url'), y: b.subarray(1 + n).toString('base64url') },
    format: 'jwk',
  });
}

function expectCode(p: Promise<unknown>, code: string) {
  return expect(p).rejects.toSatisfy((e: unknown) => e instanceof KeyStoreError && e.code === code);
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'scms-soft-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const store = (o: Partial<ConstructorParameters<typeof SoftKeyStore>[0]> = {}) =>
  new SoftKeyStore({ baseDir: dir, passphrase: PASS, scrypt: FAST, ...o });

describe('SoftKeyStore', () => {
  for (const curve of ['P-256', 'P-384'] as const) {
    it(`${curve}: generate, sign, verify with node:crypto, reopen in a new store`, async () => {
      const ks = store();
      const h = await ks.generate('root-ca-1', curve);
      expect(h.uri).toBe('file:keys/root-ca-1.key');
      expect(h.curve).toBe(curve);
      expect(h.publicKey.length).toBe(curve === 'P-256' ? 65 : 97);
      const msg = randomBytes(200);
      const sig = await ks.sign(h.uri, msg);
      expect(sig.length).toBe(curve === 'P-256' ? 64 : 96);
      const pub = pubKeyObject(curve, h.publicKey);
      expect(nodeVerify(HASH[curve], msg, { key: pub, dsaEncoding: 'ieee-p1363' }, sig)).toBe(true);
      msg[0] ^= 1;
      expect(nodeVerify(HASH[curve], msg, { key: pub, dsaEncoding: 'ieee-p1363' }, sig)).toBe(false);
      await ks.close();

      const ks2 = store();
      const h2 = await ks2.open(h.uri);
      expect(Buffer.from(h2.publicKey)).toEqual(Buffer.from(h.publicKey));
      const sig2 = await ks2.sign(h.uri, msg);
      expect(nodeVerify(HASH[curve], msg, { key: pub, dsaEncoding: 'ieee-p1363' }, sig2)).toBe(true);
      // independent check with noble (prehash: SHA-256/384 of msg; lowS off as 1609.2 allows high S)
      const noble = curve === 'P-256' ? p256 : p384;
      expect(noble.verify(sig2, msg, h.publicKey, { lowS: false })).toBe(true);
    });

    it(`${curve}: ECDH equals node:crypto ECDH computed from the other side`, async () => {
      const ks = store();
      const h = await ks.generate('kek', curve);
      const peer = createECDH(OPENSSL[curve]);
      peer.generateKeys();
      const expected = peer.computeSecret(Buffer.from(h.publicKey));
      const viaUncompressed = await ks.ecdh(h.uri, peer.getPublicKey(undefined, 'uncompressed'));
      const viaCompressed = await ks.ecdh(h.uri, peer.getPublicKey(undefined, 'compressed'));
      expect(Buffer.from(viaUncompressed).toString('hex')).toBe(expected.toString('hex'));
      expect(Buffer.from(viaCompressed).toString('hex')).toBe(expected.toString('hex'));
      const bad = peer.getPublicKey(undefined, 'uncompressed');
      bad[bad.length - 1] ^= 1; // off the curve
      await expectCode(ks.ecdh(h.uri, bad), 'BAD_KEY');
    });
  }

  it('wrong passphrase fails clearly (same store dir and a copied key file alone)', async () => {
    const ks = store();
    const h = await ks.generate('k1', 'P-256');
    await ks.close();
    const wrong = store({ passphrase: 'not the passphrase' });
    await expect(wrong.open(h.uri)).rejects.toThrow(/wrong keystore passphrase/);
    await expectCode(wrong.generate('k2', 'P-256'), 'WRONG_SECRET');
    // key file moved to a directory without keystore.json: still a clear error
    const other = join(dir, 'elsewhere');
    mkdirSync(other);
    copyFileSync(join(dir, 'keys', 'k1.key'), join(other, 'k1.key'));
    const lone = new SoftKeyStore({ baseDir: other, keyDir: '.', passphrase: 'nope', scrypt: FAST });
    await expect(lone.open('file:k1.key')).rejects.toThrow(/wrong passphrase, or the key file was modified/);
    const loneOk = new SoftKeyStore({ baseDir: other, keyDir: '.', passphrase: PASS, scrypt: FAST });
    expect(Buffer.from((await loneOk.open('file:k1.key')).publicKey)).toEqual(Buffer.from(h.publicKey));
  });

  it('tampered ciphertext, tag or public key is detected', async () => {
    const ks = store();
    const h = await ks.generate('k', 'P-256');
    await ks.close();
    const path = join(dir, 'keys', 'k.key');
    const original = JSON.parse(readFileSync(path, 'utf8'));
    const variants: Array<(f: any) => void> = [
      (f) => {
        const ct = Buffer.from(f.cipher.ciphertext, 'base64');
        ct[5] ^= 0x01;
        f.cipher.ciphertext = ct.toString('base64');
      },
      (f) => {
        const tag = Buffer.from(f.cipher.tag, 'base64');
        tag[0] ^= 0x80;
        f.cipher.tag = tag.toString('base64');
      },
      (f) => {
        const other = createECDH('prime256v1');
        other.generateKeys();
        f.publicKey = other.getPublicKey('hex', 'uncompressed');
      },
    ];
    for (const change of variants) {
      const f = structuredClone(original);
      change(f);
      writeFileSync(path, JSON.stringify(f));
      await expectCode(store().open(h.uri), 'CORRUPT');
    }
    writeFileSync(path, JSON.stringify(original));
    await expect(store().open(h.uri)).resolves.toMatchObject({ uri: h.uri });
  });

  it('key files never contain the private scalar; mode 0600; no temp files left', async () => {
    const ks = store();
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const dBytes = Buffer.from(privateKey.export({ format: 'jwk' }).d as string, 'base64url');
    const d = BigInt('0x' + dBytes.toString('hex'));
    await ks.importPrivateScalar('imported', 'P-256', d);
    const gen = await ks.generate('generated', 'P-384');
    const dGen = await ks.exportPrivateScalar(gen.uri);
    const dGenBytes = Buffer.from(dGen.toString(16).padStart(96, '0'), 'hex');
    const files = readdirSync(join(dir, 'keys'));
    expect(files.sort()).toEqual(['generated.key', 'imported.key', 'keystore.json']);
    for (const f of files) {
      const p = join(dir, 'keys', f);
      expect(statSync(p).mode & 0o777).toBe(0o600);
      const text = readFileSync(p, 'utf8');
      const raw = readFileSync(p);
      for (const secret of [dBytes, dGenBytes]) {
        for (const enc of [secret.toString('hex'), secret.toString('hex').toUpperCase(), secret.toString('base64'), secret.toString('base64url'), d.toString(10), dGen.toString(10)]) {
          expect(text.includes(enc)).toBe(false);
        }
        expect(raw.includes(secret)).toBe(false);
      }
    }
  });

  it('importPrivateScalar round trip: same public key as node:crypto, export returns d, signs', async () => {
    const ks = store();
    for (const curve of ['P-256', 'P-384'] as const) {
      const ref = createECDH(OPENSSL[curve]);
      ref.generateKeys();
      const d = BigInt('0x' + ref.getPrivateKey('hex'));
      const h = await ks.importPrivateScalar(`ee-${curve}`, curve, d);
      expect(Buffer.from(h.publicKey)).toEqual(ref.getPublicKey(undefined, 'uncompressed'));
      const ks2 = store();
      expect(await ks2.exportPrivateScalar(h.uri)).toBe(d);
      const msg = Buffer.from('1609.2 tbsData');
      const sig = await ks2.sign(h.uri, msg);
      expect(nodeVerify(HASH[curve], msg, { key: pubKeyObject(curve, h.publicKey), dsaEncoding: 'ieee-p1363' }, sig)).toBe(true);
    }
    await expectCode(ks.importPrivateScalar('zero', 'P-256', 0n), 'BAD_KEY');
    await expectCode(ks.importPrivateScalar('n', 'P-256', p256.Point.CURVE().n), 'BAD_KEY');
  });

  it('refuses duplicates unless overwrite; bad names; unknown keys; missing passphrase', async () => {
    const ks = store();
    const a = await ks.generate('dup', 'P-256');
    await expectCode(ks.generate('dup', 'P-256'), 'EXISTS');
    const b = await ks.generate('dup', 'P-256', { overwrite: true });
    expect(Buffer.from(b.publicKey)).not.toEqual(Buffer.from(a.publicKey));
    expect(Buffer.from((await store().open(a.uri)).publicKey)).toEqual(Buffer.from(b.publicKey));
    for (const bad of ['../x', 'a/b', '.hidden', '', 'x'.repeat(200)]) {
      await expectCode(ks.generate(bad, 'P-256'), 'BAD_NAME');
    }
    await expectCode(ks.open('file:keys/none.key'), 'NOT_FOUND');
    await expectCode(ks.open('pkcs11:object=x'), 'BAD_URI');
    const saved = process.env.SCMS_KEYSTORE_PASSPHRASE;
    delete process.env.SCMS_KEYSTORE_PASSPHRASE;
    try {
      await expectCode(new SoftKeyStore({ baseDir: dir, scrypt: FAST }).open(a.uri), 'NO_SECRET');
      process.env.SCMS_KEYSTORE_PASSPHRASE = PASS;
      await expect(new SoftKeyStore({ baseDir: dir, scrypt: FAST }).open(a.uri)).resolves.toBeTruthy();
    } finally {
      if (saved === undefined) delete process.env.SCMS_KEYSTORE_PASSPHRASE;
      else process.env.SCMS_KEYSTORE_PASSPHRASE = saved;
    }
  });

  it('default scrypt cost: many keys cost one scrypt run per store, not one per key', async () => {
    const t0 = performance.now();
    scryptSync(PASS, randomBytes(16), 32, { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 });
    const oneScrypt = performance.now() - t0;

    let asked = 0;
    const ks = new SoftKeyStore({ baseDir: dir, passphrase: () => (asked++, PASS) }); // default N=2^15
    const count = 200;
    const t1 = performance.now();
    const handles = await Promise.all(Array.from({ length: count }, (_, i) => ks.generate(`dev-${i}`, 'P-256')));
    const genMs = performance.now() - t1;
    expect(asked).toBe(1);
    const kdf = JSON.parse(readFileSync(join(dir, 'keys', 'dev-0.key'), 'utf8')).kdf;
    expect(kdf).toMatchObject({ name: 'scrypt', N: 2 ** 15, r: 8, p: 1 });

    const ks2 = new SoftKeyStore({ baseDir: dir, passphrase: PASS });
    const t2 = performance.now();
    for (const h of handles) await ks2.sign(h.uri, Buffer.from('m'));
    const openMs = performance.now() - t2;
    console.log(
      `scrypt N=2^15: ${oneScrypt.toFixed(0)} ms; generate ${count} keys: ${genMs.toFixed(0)} ms; ` +
        `open+sign ${count} in new store: ${openMs.toFixed(0)} ms`,
    );
    // one derivation each (plus file I/O) — far below one scrypt per key
    expect(genMs).toBeLessThan(oneScrypt * 10 + 3000);
    expect(openMs).toBeLessThan(oneScrypt * 10 + 3000);
    expect(oneScrypt * count).toBeGreaterThan(genMs);
  });

  it('factory: file: URIs open a SoftKeyStore on baseDir; KeyStores caches one store per base dir', async () => {
    const ks = await openKeyStore('file:keys/a.key', { baseDir: dir, passphrase: PASS, scrypt: FAST });
    expect(ks.scheme).toBe('file');
    const h = await ks.generate('a', 'P-256');
    expect(h.uri).toBe('file:keys/a.key');
    const set = new KeyStores({ baseDir: dir, passphrase: PASS });
    expect(await set.storeFor(h.uri)).toBe(await set.storeFor('file:keys/other.key'));
    const msg = Buffer.from('via KeyStores');
    const sig = await set.sign(h.uri, msg);
    expect(nodeVerify('sha256', msg, { key: pubKeyObject('P-256', h.publicKey), dsaEncoding: 'ieee-p1363' }, sig)).toBe(true);
    expect(await set.exportPrivateScalar(h.uri)).toBe(await ks.exportPrivateScalar(h.uri));
    await expectCode(set.open('http://x/y'), 'BAD_URI');
    await set.close();
  });
});
