// Against a real SoftHSM2 token. Missing SoftHSM2 makes this file FAIL (beforeAll throws), never skip.
import { createECDH, createPublicKey, randomBytes, verify as nodeVerify } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pkcs11js from 'pkcs11js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyStores, openKeyStore } from '../../src/hsm/index.js';
import { KeyStoreError, type CurveName } from '../../src/hsm/keystore.js';
import { Pkcs11KeyStore } from '../../src/hsm/pkcs11.js';
import { createSoftHsmToken, type SoftHsmToken } from '../helpers/softhsm.js';

const OPENSSL: Record<CurveName, string> = { 'P-256': 'prime256v1', 'P-384': 'secp384r1' };
const HASH: Record<CurveName, string> = { 'P-256': 'sha256', 'P-384': 'sha384' };

function pubKeyObject(curve: CurveName, point: Uint8Array) {
  const n = curve === 'P-256' ? 32 : 48;
  const b = Buffer.from(point);
  return createPublicKey({
    key: { kty: 'EC', crv: curve, x: b.subarray(1, 1 + n).toString('base64url'), y: b.subarray(1 + n).toString('base64url') },
    format: 'jwk',
  });
}

function expectCode(p: Promise<unknown>, code: string, msg?: RegExp) {
  return expect(p).rejects.toSatisfy(
    (e: unknown) => e instanceof KeyStoreError && e.code === code && (!msg || msg.test(e.message)),
  );
}

let tok: SoftHsmToken;
const open = (extra: Partial<Parameters<typeof Pkcs11KeyStore.open>[0]> = {}) =>
  Pkcs11KeyStore.open({ token: tok.label, modulePath: tok.modulePath, pin: tok.pin, ...extra });

beforeAll(() => {
  tok = createSoftHsmToken({ label: 'scms test token' }); // a space: exercises percent-encoding
});
afterAll(() => tok?.cleanup());

describe('Pkcs11KeyStore (SoftHSM2)', () => {
  const created: Array<{ uri: string; curve: CurveName; publicKey: Uint8Array }> = [];

  for (const curve of ['P-256', 'P-384'] as const) {
    it(`${curve}: generates on the token, signs (verified by node:crypto), ECDH matches node:crypto`, async () => {
      const ks = await open();
      try {
        const t0 = performance.now();
        const h = await ks.generate(`root-ca-${curve}`, curve);
        const genMs = performance.now() - t0;
        expect(h.uri).toBe(`pkcs11:token=scms%20test%20token;object=root-ca-${curve}`);
        expect(h.publicKey.length).toBe(curve === 'P-256' ? 65 : 97);
        expect(h.publicKey[0]).toBe(4);
        created.push(h);

        const msg = randomBytes(150);
        const sig = await ks.sign(h.uri, msg);
        expect(sig.length).toBe(curve === 'P-256' ? 64 : 96);
        const pub = pubKeyObject(curve, h.publicKey);
        expect(nodeVerify(HASH[curve], msg, { key: pub, dsaEncoding: 'ieee-p1363' }, sig)).toBe(true);
        // the hash must be the curve's: the same signature must not verify under the other hash
        const other = curve === 'P-256' ? 'sha384' : 'sha256';
        expect(nodeVerify(other, msg, { key: pub, dsaEncoding: 'ieee-p1363' }, sig)).toBe(false);

        const peer = createECDH(OPENSSL[curve]);
        peer.generateKeys();
        const expected = peer.computeSecret(Buffer.from(h.publicKey)).toString('hex');
        expect(Buffer.from(await ks.ecdh(h.uri, peer.getPublicKey(undefined, 'uncompressed'))).toString('hex')).toBe(expected);
        expect(Buffer.from(await ks.ecdh(h.uri, peer.getPublicKey(undefined, 'compressed'))).toString('hex')).toBe(expected);

        // throughput (informational)
        const N = 500;
        let t = performance.now();
        for (let i = 0; i < N; i++) await ks.sign(h.uri, msg);
        const signPerS = (N / (performance.now() - t)) * 1000;
        t = performance.now();
        const pp = peer.getPublicKey();
        for (let i = 0; i < N; i++) await ks.ecdh(h.uri, pp);
        const ecdhPerS = (N / (performance.now() - t)) * 1000;
        console.log(`${curve}: keygen ${genMs.toFixed(0)} ms, sign ${signPerS.toFixed(0)}/s, ecdh ${ecdhPerS.toFixed(0)}/s`);
      } finally {
        await ks.close();
      }
    });
  }

  it('keys persist on the token: a new store instance reopens them by URI', async () => {
    expect(created.length).toBe(2);
    const ks = await open();
    try {
      for (const h of created) {
        const again = await ks.open(h.uri);
        expect(again.curve).toBe(h.curve);
        expect(Buffer.from(again.publicKey)).toEqual(Buffer.from(h.publicKey));
        const msg = Buffer.from('reopened');
        const sig = await ks.sign(h.uri, msg);
        expect(nodeVerify(HASH[h.curve], msg, { key: pubKeyObject(h.curve, h.publicKey), dsaEncoding: 'ieee-p1363' }, sig)).toBe(true);
      }
      await expectCode(ks.generate('root-ca-P-256', 'P-256'), 'EXISTS');
      await expectCode(ks.exportPrivateScalar(created[0]!.uri), 'NOT_EXPORTABLE', /non-extractable/);
      await expectCode(ks.importPrivateScalar('x', 'P-256', 5n), 'NOT_EXPORTABLE');
    } finally {
      await ks.close();
    }
  });

  it('private keys are non-extractable: CKA_VALUE read fails with CKR_ATTRIBUTE_SENSITIVE (pkcs11js directly)', () => {
    expect(created.length).toBe(2);
    const lib = new pkcs11js.PKCS11();
    lib.load(tok.modulePath);
    lib.C_Initialize();
    try {
      const slot = lib.C_GetSlotList(true).find((s) => lib.C_GetTokenInfo(s).label.trim() === tok.label)!;
      expect(slot).toBeDefined();
      const session = lib.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION);
      lib.C_Login(session, pkcs11js.CKU_USER, tok.pin);
      for (const h of created) {
        const label = h.uri.split('object=')[1]!;
        lib.C_FindObjectsInit(session, [
          { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
          { type: pkcs11js.CKA_LABEL, value: label },
        ]);
        const [priv] = lib.C_FindObjects(session, 2);
        lib.C_FindObjectsFinal(session);
        expect(priv).toBeDefined();
        let err: unknown;
        try {
          lib.C_GetAttributeValue(session, priv!, [{ type: pkcs11js.CKA_VALUE }]);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(pkcs11js.Pkcs11Error);
        expect((err as pkcs11js.Pkcs11Error).code).toBe(pkcs11js.CKR_ATTRIBUTE_SENSITIVE);
        const attrs = lib.C_GetAttributeValue(session, priv!, [
          { type: pkcs11js.CKA_EXTRACTABLE },
          { type: pkcs11js.CKA_SENSITIVE },
          { type: pkcs11js.CKA_NEVER_EXTRACTABLE },
          { type: pkcs11js.CKA_TOKEN },
          { type: pkcs11js.CKA_PRIVATE },
        ]);
        expect(attrs.map((a) => a.value[0])).toEqual([0, 1, 1, 1, 1]);
      }
      lib.C_Logout(session);
      lib.C_CloseSession(session);
    } finally {
      lib.C_Finalize();
      lib.close();
    }
  });

  it('wrong PIN, unknown token, unknown object, missing module give clear errors', async () => {
    await expectCode(open({ pin: 'wrong-pin' }), 'WRONG_SECRET', /wrong PIN/);
    await expectCode(open({ token: 'no-such-token' }), 'TOKEN', /no PKCS#11 token labelled 'no-such-token'.*'scms test token'/);
    await expectCode(open({ modulePath: join(tok.dir, 'missing.so') }), 'MODULE', /not found/);
    const ks = await open();
    try {
      await expectCode(ks.open(`pkcs11:token=scms%20test%20token;object=nope`), 'NOT_FOUND', /no private key/);
      await expectCode(ks.sign(`pkcs11:token=other;object=root-ca-P-256`, Buffer.from('x')), 'BAD_URI', /names token 'other'/);
      const peer = createECDH('prime256v1');
      peer.generateKeys();
      const bad = peer.getPublicKey();
      bad[64] ^= 1;
      await expectCode(ks.ecdh(created[0]!.uri, bad), 'BAD_KEY');
    } finally {
      await ks.close();
    }
  });

  it('module and PIN from env, PIN from pin-source; factory and KeyStores share one store per token', async () => {
    const saved = { m: process.env.SCMS_PKCS11_MODULE, p: process.env.SCMS_PKCS11_PIN };
    try {
      process.env.SCMS_PKCS11_MODULE = tok.modulePath;
      process.env.SCMS_PKCS11_PIN = tok.pin;
      const viaEnv = await openKeyStore(created[0]!.uri);
      expect(viaEnv.scheme).toBe('pkcs11');
      expect(Buffer.from((await viaEnv.open(created[0]!.uri)).publicKey)).toEqual(Buffer.from(created[0]!.publicKey));

      // a second concurrent store on the same token; closing it must not log the first one out
      delete process.env.SCMS_PKCS11_PIN;
      const pinFile = join(tok.dir, 'pin.txt');
      writeFileSync(pinFile, tok.pin + '\n', { mode: 0o600 });
      const withSource = await openKeyStore(`${created[1]!.uri}?pin-source=${encodeURIComponent(pinFile)}`);
      await withSource.sign(created[1]!.uri, Buffer.from('a'));
      await withSource.close();
      await expect(viaEnv.sign(created[0]!.uri, Buffer.from('still logged in'))).resolves.toHaveLength(64);
      await viaEnv.close();

      await expectCode(openKeyStore(created[0]!.uri), 'NO_SECRET', /SCMS_PKCS11_PIN/);

      const set = new KeyStores({ pin: tok.pin });
      const a = await set.storeFor(created[0]!.uri);
      const b = await set.storeFor(created[1]!.uri);
      expect(a).toBe(b);
      const sig = await set.sign(created[1]!.uri, Buffer.from('m'));
      expect(nodeVerify('sha384', Buffer.from('m'), { key: pubKeyObject('P-384', created[1]!.publicKey), dsaEncoding: 'ieee-p1363' }, sig)).toBe(true);
      await set.close();
    } finally {
      for (const [k, v] of [['SCMS_PKCS11_MODULE', saved.m], ['SCMS_PKCS11_PIN', saved.p]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it('reopens its session after the session is lost', async () => {
    const ks = await open();
    try {
      const h = created[0]!;
      await ks.sign(h.uri, Buffer.from('before'));
      // kill the session behind the store's back (as a token reset would)
      const internals = ks as unknown as { module: { lib: pkcs11js.PKCS11 }; session: Buffer };
      internals.module.lib.C_CloseSession(internals.session);
      const msg = Buffer.from('after');
      const sigs = await Promise.all(Array.from({ length: 20 }, () => ks.sign(h.uri, msg))); // concurrent callers
      for (const sig of sigs) {
        expect(nodeVerify('sha256', msg, { key: pubKeyObject('P-256', h.publicKey), dsaEncoding: 'ieee-p1363' }, sig)).toBe(true);
      }
      expect(internals.session).toBeDefined();
    } finally {
      await ks.close();
    }
  });
});
