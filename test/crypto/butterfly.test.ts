// Butterfly key expansion (1609.2.1 9.3): CAMP bfkeyexp.txt (every intermediate value), the verified copy in
// scms-verified-vectors.json, and end-to-end round trips for the original, unified and compact unified variants.
import { describe, expect, it } from 'vitest';
import {
  acaExplicitKey,
  butterflyScalarBytes,
  cocoonPrivateKey,
  cocoonPublicKeys,
  eeCocoonKeys,
  eeExplicitPrivateKey,
  expansionFunction,
  expansionFunctionInt,
  expansionInput,
  raExpand,
  type ButterflyPrivateParams,
  type ButterflyPublicParams,
} from '../../src/crypto/butterfly.js';
import { curve, decodePoint, mulBase } from '../../src/crypto/curves.js';
import { bytesToBigInt, concat } from '../../src/crypto/bytes.js';
import { generateKeyPair } from '../../src/crypto/ecdh.js';
import { eciesDecryptKey, eciesEncryptKey } from '../../src/crypto/ecies.js';
import { ecqvCheckKeyPair, ecqvHash1609Dot2, ecqvPrivateKeyContribution, ecqvReconstructionValue, ecqvReconstructPrivateKey, ecqvReconstructPublicKey } from '../../src/crypto/ecqv.js';
import { hex, readCamp, readJson, toHex } from './vectors.js';

const big = (h: string) => bytesToBigInt(hex(h));

describe('CAMP bfkeyexp.txt', () => {
  const blocks = readCamp('bfkeyexp.txt');
  const pre = blocks[0]!;
  const i = Number(big(pre.get('i (32 bits)').hex));
  const j = Number(big(pre.get('j (in range [1,20], padded to 32 bits)').hex));
  const sections = [
    { kind: 'signing' as const, b: blocks.find((x) => x.title.startsWith('Expanding Certificate'))!, key: 'ck', priv: 'a', pub: 'A', x: 'x_cert', exp: 'a + f_k(x_cert) mod l', expPub: 'A + f_k(x_cert)*G_P256 mod l' },
    { kind: 'encryption' as const, b: blocks.find((x) => x.title.startsWith('Expanding Encryption'))!, key: 'ek', priv: 'h', pub: 'H', x: 'x_enc', exp: 'h + f_k(x_enc) mod l', expPub: 'H + f_k(x_enc)*G_P256 mod l' },
  ];
  for (const s of sections) {
    it(`${s.kind}: x, every AES block, f_k^int, f_k, expanded private and public key`, () => {
      const g = (k: string) => s.b.get(k).hex;
      const k = hex(g(s.key));
      const x = expansionInput(s.kind, i, j);
      expect(toHex(x)).toBe(g(s.x));
      // per-block values: block_d = AES_k(x+d) XOR (x+d)
      const blocksHex = s.b.entries.filter((e) => /^AES_k\(x\+\d\) XOR \(x\+\d\)$/.test(e.key)).map((e) => e.hex);
      expect(blocksHex.length).toBe(3);
      const fint = expansionFunctionInt(k, x);
      expect(toHex(fint)).toBe(blocksHex.join(''));
      expect(toHex(fint)).toBe(g('f_k^{int}(x)'));
      const f = expansionFunction('nistP256', k, x);
      expect(f).toBe(big(g('f_k(x)')));
      expect(toHex(mulBase('nistP256', big(g(s.priv))))).toBe(g(s.pub));
      expect(cocoonPrivateKey('nistP256', big(g(s.priv)), k, s.kind, i, j)).toBe(big(g(s.exp)));
      expect(toHex(cocoonPublicKeys('nistP256', hex(g(s.pub)), k, s.kind, [{ i, j }])[0]!)).toBe(g(s.expPub));
    });
  }
});

describe('scms-verified-vectors.json butterfly_expansion_camp', () => {
  const v = readJson('scms-verified-vectors.json').vectors.butterfly_expansion_camp;
  const i = Number(big(v.i));
  const j = Number(big(v.j));
  for (const [kind, d, key, priv, pub] of [
    ['signing', v.sign, v.sign.ck, v.sign.a, v.sign.A],
    ['encryption', v.enc, v.enc.ek, v.enc.h, v.enc.H],
  ] as const) {
    it(kind, () => {
      const x = expansionInput(kind, i, j);
      expect(toHex(x)).toBe(d.x);
      expect(toHex(expansionFunctionInt(hex(key), x))).toBe(d.f_k_int);
      expect(expansionFunction('nistP256', hex(key), x)).toBe(big(d.f_k));
      expect(cocoonPrivateKey('nistP256', hex(priv), hex(key), kind, i, j)).toBe(big(d.cocoon_private));
      expect(toHex(cocoonPublicKeys('nistP256', hex(pub), hex(key), kind, [{ i, j }])[0]!)).toBe(d.cocoon_public);
    });
  }
  it('the original variant RA expansion gives both cocoons in one call', () => {
    const [pair] = raExpand('nistP256', {
      variant: 'original',
      signingCaterpillar: hex(v.sign.A),
      signingExpansionKey: hex(v.sign.ck),
      encryptionCaterpillar: hex(v.enc.H),
      encryptionExpansionKey: hex(v.enc.ek),
    }, [{ i, j }]);
    expect(toHex(pair!.signingCocoon)).toBe(v.sign.cocoon_public);
    expect(toHex(pair!.encryptionKey)).toBe(v.enc.cocoon_public);
  });
});

describe('expansion input and batching', () => {
  it('x layout: 0^32 or 1^32, i, j, 0^32', () => {
    expect(toHex(expansionInput('signing', 0x01020304, 5))).toBe('00000000' + '01020304' + '00000005' + '00000000');
    expect(toHex(expansionInput('encryption', 0, 0xffffffff))).toBe('ffffffff' + '00000000' + 'ffffffff' + '00000000');
    expect(() => expansionInput('signing', -1, 0)).toThrow();
  });
  it('batch cocoon expansion equals one-at-a-time expansion', () => {
    const cat = generateKeyPair('nistP256');
    const k = hex('00112233445566778899aabbccddeeff');
    const ijs = Array.from({ length: 20 }, (_, n) => ({ i: 7, j: n }));
    const batch = cocoonPublicKeys('nistP256', cat.publicKey, k, 'signing', ijs);
    ijs.forEach(({ i, j }, n) => {
      const one = cocoonPublicKeys('nistP256', cat.publicKey, k, 'signing', [{ i, j }])[0]!;
      expect(toHex(batch[n]!)).toBe(toHex(one));
      expect(toHex(mulBase('nistP256', cocoonPrivateKey('nistP256', cat.privateKey, k, 'signing', i, j)))).toBe(toHex(one));
    });
  });
});

describe('butterfly end to end: RA expansion, ACA issuance and response encryption, EE keys', () => {
  const variants = ['original', 'unified', 'compactUnified'] as const;
  for (const name of ['nistP256', 'brainpoolP256r1'] as const) {
    for (const variant of variants) {
      it(`${name} ${variant}`, () => {
        const cat = generateKeyPair(name);
        const catEnc = generateKeyPair(name);
        const ck = hex('0f0e0d0c0b0a09080706050403020100');
        const ek = hex('a0a1a2a3a4a5a6a7a8a9aaabacadaeaf');
        const pub: ButterflyPublicParams = variant === 'original'
          ? { variant, signingCaterpillar: cat.publicKey, signingExpansionKey: ck, encryptionCaterpillar: catEnc.publicKey, encryptionExpansionKey: ek }
          : { variant, caterpillar: cat.publicKey, expansionKey: ck };
        const priv: ButterflyPrivateParams = variant === 'original'
          ? { variant, signingCaterpillarPrivate: cat.privateKey, signingExpansionKey: ck, encryptionCaterpillarPrivate: catEnc.privateKey, encryptionExpansionKey: ek }
          : { variant, caterpillarPrivate: cat.privateKey, expansionKey: ck };
        const ijs = [{ i: 100, j: 0 }, { i: 100, j: 1 }, { i: 101, j: 19 }];
        const ca = generateKeyPair(name);
        const issuerCert = new TextEncoder().encode('ACA certificate');
        const pairs = raExpand(name, pub, ijs);
        for (const p of pairs) {
          const ee = eeCocoonKeys(name, priv, p.i, p.j);
          // the response encryption key matches the EE's decryption key
          expect(toHex(mulBase(name, ee.decryptionPrivate))).toBe(toHex(p.encryptionKey));
          if (variant === 'original') expect(toHex(p.encryptionKey)).not.toBe(toHex(p.signingCocoon));
          else expect(toHex(p.encryptionKey)).toBe(toHex(p.signingCocoon));
          const responseKey = hex('5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a');
          const p1 = new Uint8Array(32);
          const enc = eciesEncryptKey(name, p.encryptionKey, responseKey, p1);
          expect(toHex(eciesDecryptKey(name, butterflyScalarBytes(name, ee.decryptionPrivate), enc, p1))).toBe(toHex(responseKey));

          // explicit certificate (not for compact unified)
          if (variant !== 'compactUnified') {
            const { c, verificationKey } = acaExplicitKey(name, p.signingCocoon);
            const b = eeExplicitPrivateKey(name, ee.signingCocoonPrivate, c);
            expect(toHex(mulBase(name, b))).toBe(toHex(verificationKey.toBytes(false)));
            expect(toHex(mulBase(name, eeExplicitPrivateKey(name, ee.signingCocoonPrivate, c + 1n)))).not.toBe(toHex(verificationKey.toBytes(false)));
          }
          // implicit certificate: ECQV with R_U = signing cocoon
          const { k, reconstructionValue } = ecqvReconstructionValue(name, p.signingCocoon);
          const tbs = concat(new TextEncoder().encode(`pseudonym ${p.i}/${p.j}`), reconstructionValue.toBytes(true));
          const e = ecqvHash1609Dot2(name, tbs, issuerCert);
          const s = ecqvPrivateKeyContribution(name, e, k, bytesToBigInt(ca.privateKey));
          const dU = ecqvReconstructPrivateKey(name, e, ee.signingCocoonPrivate, s);
          const QU = ecqvReconstructPublicKey(name, e, reconstructionValue, ca.publicKey);
          expect(ecqvCheckKeyPair(name, dU, QU)).toBe(true);
          expect(curve(name).Point.BASE.multiply(dU).equals(decodePoint(name, QU.toBytes(true)))).toBe(true);
        }
      });
    }
  }
  it('a wrong expansion key or wrong (i, j) gives a different cocoon', () => {
    const cat = generateKeyPair('nistP256');
    const k = hex('00000000000000000000000000000001');
    const [a, b, c] = [
      cocoonPublicKeys('nistP256', cat.publicKey, k, 'signing', [{ i: 1, j: 1 }])[0]!,
      cocoonPublicKeys('nistP256', cat.publicKey, k, 'signing', [{ i: 1, j: 2 }])[0]!,
      cocoonPublicKeys('nistP256', cat.publicKey, k, 'encryption', [{ i: 1, j: 1 }])[0]!,
    ];
    expect(new Set([toHex(a), toHex(b), toHex(c)]).size).toBe(3);
  });
});
