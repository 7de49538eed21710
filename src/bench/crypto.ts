// Crypto benchmarks: ops/s on one core of our primitives against the native operations they are built from.
// Run after `npx tsc -p .` with: node -e "import('./dist/bench/crypto.js').then(m => m.runCryptoBench())"
import { createECDH, createHash, createHmac, randomBytes, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import { ecdsaSign, ecdsaVerify, signingKey, verificationKey } from '../crypto/ecdsa.js';
import { generateKeyPair } from '../crypto/ecdh.js';
import { ecqvPrivateKeyContribution, ecqvReconstructionValue } from '../crypto/ecqv.js';
import { eciesEncryptKey } from '../crypto/ecies.js';
import { cocoonPublicKeys, raExpand } from '../crypto/butterfly.js';
import { curve } from '../crypto/curves.js';
import { bytesToBigInt } from '../crypto/bytes.js';
import { randomScalar } from '../crypto/random.js';

export interface BenchResult {
  readonly name: string;
  readonly opsPerSecond: number;
}

/** Run fn repeatedly for about `ms` milliseconds (after a short warm-up) and return ops/s. */
export function measure(name: string, fn: () => unknown, ms = 1000): BenchResult {
  const warm = performance.now();
  while (performance.now() - warm < Math.min(200, ms / 4)) fn();
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let k = 0; k < 16; k++) fn();
    n += 16;
    now = performance.now();
  }
  return { name, opsPerSecond: (n * 1000) / (now - start) };
}

const P256 = 'nistP256' as const;
const MSG = new Uint8Array(64).fill(7);

export function benchEcdsa(ms = 1000): BenchResult[] {
  const kp = generateKeyPair(P256);
  const sk = signingKey(P256, kp.privateKey);
  const vk = verificationKey(P256, kp.publicKey);
  const sig = ecdsaSign(sk, MSG);
  const raw = nodeSign('sha256', MSG, { key: sk.keyObject, dsaEncoding: 'ieee-p1363' });
  return [
    measure('ECDSA P-256 sign (ours, x-only)', () => ecdsaSign(sk, MSG), ms),
    measure('ECDSA P-256 sign (ours, compressed R)', () => ecdsaSign(sk, MSG, 'compressed'), ms),
    measure('ECDSA P-256 sign (node:crypto sign)', () => nodeSign('sha256', MSG, { key: sk.keyObject, dsaEncoding: 'ieee-p1363' }), ms),
    measure('ECDSA P-256 verify (ours)', () => ecdsaVerify(vk, MSG, sig), ms),
    measure('ECDSA P-256 verify (node:crypto verify)', () => nodeVerify('sha256', MSG, { key: vk.keyObject, dsaEncoding: 'ieee-p1363' }, raw), ms),
  ];
}

export function benchEcqvIssuance(ms = 1000): BenchResult[] {
  const c = curve(P256);
  const req = generateKeyPair(P256).publicKey; // uncompressed, as between our own components
  const dCA = bytesToBigInt(generateKeyPair(P256).privateKey);
  const e = bytesToBigInt(randomBytes(32)) % c.n;
  const RU = c.Point.fromBytes(req);
  return [
    measure('ECQV issuance (ours: P_U = R_U + kG, encode P_U, s = ek + d_CA)', () => {
      const { k, reconstructionValue } = ecqvReconstructionValue(P256, req);
      reconstructionValue.toBytes(true);
      return ecqvPrivateKeyContribution(P256, e, k, dCA);
    }, ms),
    measure('ECQV native parts (random k, OpenSSL kG, noble decode + add + encode)', () => {
      const k = randomScalar(P256);
      const x = createECDH('prime256v1');
      x.setPrivateKey(Buffer.from(k.toString(16).padStart(64, '0'), 'hex'));
      const kG = x.getPublicKey();
      return c.Point.fromBytes(req).add(c.Point.fromBytes(kG)).toBytes(true);
    }, ms),
    measure('ECQV native floor (OpenSSL kG + one noble add + encode, no decode)', () => {
      const x = createECDH('prime256v1');
      x.generateKeys();
      const kG = x.getPublicKey();
      const P = c.Point.fromAffine({ x: bytesToBigInt(kG.subarray(1, 33)), y: bytesToBigInt(kG.subarray(33)) });
      return RU.add(P).toBytes(true);
    }, ms),
  ];
}

export function benchEcies(ms = 1000): BenchResult[] {
  const r = generateKeyPair(P256).publicKey;
  const key = new Uint8Array(16).fill(1);
  const p1 = new Uint8Array(32);
  return [
    measure('ECIES encrypt key (ours)', () => eciesEncryptKey(P256, r, key, p1), ms),
    measure('ECIES native parts (ephemeral key + ECDH + KDF2 + HMAC)', () => {
      const x = createECDH('prime256v1');
      x.generateKeys();
      x.getPublicKey(null, 'compressed');
      const z = x.computeSecret(r);
      const k1 = createHash('sha256').update(z).update(Uint8Array.of(0, 0, 0, 1)).update(p1).digest();
      const k2 = createHash('sha256').update(z).update(Uint8Array.of(0, 0, 0, 2)).update(p1).digest();
      return createHmac('sha256', Buffer.concat([k1.subarray(16), k2])).update(k1.subarray(0, 16)).digest();
    }, ms),
  ];
}

export function benchButterfly(ms = 1000): BenchResult[] {
  const cat = generateKeyPair(P256);
  const catEnc = generateKeyPair(P256);
  const k = new Uint8Array(16).fill(3);
  const twenty = Array.from({ length: 20 }, (_, j) => ({ i: 1, j }));
  const single = measure('butterfly: one cocoon public key (A + f_k(x)G)', () => cocoonPublicKeys(P256, cat.publicKey, k, 'signing', [{ i: 1, j: 0 }]), ms);
  const batch = measure('butterfly: 20 cocoons in one batch (per batch)', () => cocoonPublicKeys(P256, cat.publicKey, k, 'signing', twenty), ms);
  const original = measure('butterfly: original RA expansion, 20 (i,j) signing + encryption (per batch)', () =>
    raExpand(P256, { variant: 'original', signingCaterpillar: cat.publicKey, signingExpansionKey: k, encryptionCaterpillar: catEnc.publicKey, encryptionExpansionKey: k }, twenty), ms);
  return [single, batch, { name: 'butterfly: cocoons/s in batches of 20', opsPerSecond: batch.opsPerSecond * 20 }, original];
}

/** Run everything and print a table; returns the results. */
export function runCryptoBench(ms = 1000): BenchResult[] {
  const all = [...benchEcdsa(ms), ...benchEcqvIssuance(ms), ...benchEcies(ms), ...benchButterfly(ms)];
  for (const r of all) console.log(`${r.opsPerSecond.toFixed(0).padStart(9)} ops/s  ${r.name}`);
  return all;
}
