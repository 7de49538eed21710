// ee/fast-verify.ts against the library it stands in for: e*P + Q through OpenSSL equals noble's; implicit keys
// and key pairs equal certificate.ts's; verifyChainFast says what verifyCertificateChain says (ok, error codes,
// keys) on good chains and on every kind of bad one, also after the issuing chain is cached.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Certificate } from '../../../src/codec/gen/Ieee1609Dot2.js';
import { curve, mulBase, type CurveName } from '../../../src/crypto/curves.js';
import { randomScalar } from '../../../src/crypto/random.js';
import {
  buildTbsCertificate,
  certificatePublicKey,
  issueExplicitCertificate,
  issueImplicitCertificate,
  reconstructImplicitPrivateKey,
  type TbsCertificateInput,
} from '../../../src/security/certificate.js';
import { verifyCertificateChain, type ChainOptions } from '../../../src/security/chain.js';
import { ManualClock } from '../../../src/security/time.js';
import { mulAddViaOpenSsl, publicKeyOf, reconstructImplicitKeyPair, verifyChainFast } from '../../../src/engine/ee/fast-verify.js';
import { testKey, type TestKey } from '../../security/cert-fixtures.js';

const DAY = 86400;
const T0 = new Date('2025-01-01T00:00:00Z');
const at = (days: number) => new Date(T0.getTime() + days * DAY * 1000);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('mulAddViaOpenSsl', () => {
  for (const name of ['nistP256', 'brainpoolP256r1', 'nistP384'] as CurveName[]) {
    it(`${name}: e*P + Q equals noble's for random points and scalars, P compressed or not`, () => {
      const c = curve(name);
      for (let t = 0; t < 40; t++) {
        const P = c.Point.BASE.multiply(randomScalar(name));
        const Q = c.Point.BASE.multiply(randomScalar(name));
        const e = t === 0 ? 2n : t === 1 ? c.n - 2n : randomScalar(name);
        const want = hex(P.multiply(e).add(Q).toBytes(false));
        expect(hex(mulAddViaOpenSsl(name, e, P.toBytes(t % 2 === 0), Q.toBytes(false))!)).toBe(want);
      }
    });
  }

  it('leaves the cases it does not handle to the caller (undefined): e = 0, 1, n - 1, e*P = -Q, P not on the curve', () => {
    const name: CurveName = 'nistP256';
    const c = curve(name);
    const P = c.Point.BASE.multiply(randomScalar(name));
    const Q = c.Point.BASE.multiply(randomScalar(name)).toBytes(false);
    expect(mulAddViaOpenSsl(name, 0n, P.toBytes(true), Q)).toBeUndefined();
    expect(mulAddViaOpenSsl(name, c.n, P.toBytes(true), Q)).toBeUndefined();
    expect(mulAddViaOpenSsl(name, 1n, P.toBytes(true), Q)).toBeUndefined();
    expect(mulAddViaOpenSsl(name, c.n - 1n, P.toBytes(true), Q)).toBeUndefined();
    const e = randomScalar(name);
    expect(mulAddViaOpenSsl(name, e, P.toBytes(true), P.multiply(e).negate().toBytes(false))).toBeUndefined();
    const bad = P.toBytes(false);
    bad[40] ^= 1; // y changed: not on the curve
    expect(mulAddViaOpenSsl(name, e, bad, Q)).toBeUndefined();
  });
});

interface Pki {
  root: Certificate;
  ica: Certificate;
  icaKey: TestKey;
  aca: Certificate;
  acaKey: TestKey;
  otherAca: Certificate;
  otherAcaKey: TestKey;
}

const acaInput = (k: TestKey, name: string): TbsCertificateInput => ({
  id: { name },
  validity: { start: T0, durationSeconds: 500 * DAY },
  certIssuePermissions: [{ psids: [0x20, 0x26], minChainLength: 1, eeType: { app: true } }],
  verifyKey: k.publicKey,
});

async function buildPki(): Promise<Pki> {
  const rootKey = testKey('nistP384');
  const root = await issueExplicitCertificate({
    tbs: buildTbsCertificate({
      id: { name: 'root.test' },
      validity: { start: T0, durationSeconds: 3650 * DAY },
      region: { countries: [840] },
      certIssuePermissions: [{ psids: 'all', minChainLength: 2, chainLengthRange: -1, eeType: { app: true, enrol: true } }],
      verifyKey: { curve: rootKey.curve, publicKey: rootKey.publicKey },
    }),
    issuer: 'self',
    signer: rootKey.signer,
  });
  const icaKey = testKey();
  const ica = await issueExplicitCertificate({
    tbs: buildTbsCertificate({
      id: { name: 'ica.test' },
      validity: { start: T0, durationSeconds: 1000 * DAY },
      certIssuePermissions: [{ psids: 'all', minChainLength: 1, chainLengthRange: -1, eeType: { app: true, enrol: true } }],
      verifyKey: icaKey.publicKey,
    }),
    issuer: root,
    signer: rootKey.signer,
  });
  const acaKey = testKey();
  const aca = await issueExplicitCertificate({ tbs: buildTbsCertificate(acaInput(acaKey, 'aca.test')), issuer: ica, signer: icaKey.signer });
  const otherAcaKey = testKey();
  const otherAca = await issueExplicitCertificate({ tbs: buildTbsCertificate(acaInput(otherAcaKey, 'aca2.test')), issuer: ica, signer: icaKey.signer });
  return { root, ica, icaKey, aca, acaKey, otherAca, otherAcaKey };
}

function implicitLeaf(p: Pki, over: Partial<TbsCertificateInput> = {}, issuer = p.aca, issuerKey = p.acaKey) {
  const req = testKey();
  const issued = issueImplicitCertificate({
    tbs: buildTbsCertificate({ id: 'none', validity: { start: at(1), durationSeconds: 7 * DAY }, appPermissions: [{ psid: 0x20 }], ...over }),
    issuer,
    issuerPrivateScalar: issuerKey.d,
    requestPublicKey: req.publicKey,
  });
  return { cert: issued.certificate, kU: req.d, s: issued.privateKeyContribution };
}

async function explicitLeaf(p: Pki, over: Partial<TbsCertificateInput> = {}) {
  const k = testKey();
  return issueExplicitCertificate({
    tbs: buildTbsCertificate({ id: 'none', validity: { start: at(1), durationSeconds: 7 * DAY }, appPermissions: [{ psid: 0x20 }], verifyKey: k.publicKey, ...over }),
    issuer: p.aca,
    signer: p.acaKey.signer,
  });
}

/** Both verifiers on the same input: same verdict, same error codes, same keys. */
function same(chain: Certificate[], opts: ChainOptions): boolean {
  const ref = verifyCertificateChain(chain, opts);
  const fast = verifyChainFast(chain, opts);
  expect(fast.ok).toBe(ref.ok);
  if (ref.ok && fast.ok) {
    expect(fast.chain).toEqual(ref.chain);
    expect(fast.publicKeys.map((k) => `${k.curve}:${hex(k.publicKey)}`)).toEqual(ref.publicKeys.map((k) => `${k.curve}:${hex(k.publicKey)}`));
  } else if (!ref.ok && !fast.ok) {
    expect(fast.errors).toEqual(ref.errors);
  }
  return ref.ok;
}

describe('implicit keys and chains: fast path = library', () => {
  let p: Pki;
  const clock = new ManualClock(at(3));
  beforeAll(async () => {
    p = await buildPki();
  });

  it('publicKeyOf and reconstructImplicitKeyPair give the library keys', () => {
    for (let t = 0; t < 10; t++) {
      const { cert, kU, s } = implicitLeaf(p);
      const lib = certificatePublicKey(cert, [p.aca, p.ica]);
      expect(hex(publicKeyOf(cert, [p.aca, p.ica]).publicKey)).toBe(hex(lib.publicKey));
      const pair = reconstructImplicitKeyPair(cert, [p.aca, p.ica], kU, s);
      expect(pair.privateKey).toBe(reconstructImplicitPrivateKey(cert, [p.aca, p.ica], kU, s));
      expect(hex(mulBase('nistP256', pair.privateKey))).toBe(hex(lib.publicKey));
    }
  });

  it('reconstructImplicitKeyPair refuses a wrong s, a wrong k_U and the wrong issuer', () => {
    const { cert, kU, s } = implicitLeaf(p);
    expect(() => reconstructImplicitKeyPair(cert, [p.aca, p.ica], kU, s + 1n)).toThrow(/does not match/);
    expect(() => reconstructImplicitKeyPair(cert, [p.aca, p.ica], kU + 1n, s)).toThrow(/does not match/);
    expect(() => reconstructImplicitKeyPair(cert, [p.otherAca, p.ica], kU, s)).toThrow(/issuer/);
    expect(() => reconstructImplicitKeyPair(cert, [], kU, s)).toThrow(/issuer/);
  });

  it('good implicit and explicit leaves: both verify, same chain and keys (first call fills the cache, later ones use it)', async () => {
    const o = { trustAnchors: [p.root], clock, skipCurrentValidity: true };
    for (let t = 0; t < 5; t++) expect(same([implicitLeaf(p).cert, p.aca, p.ica], o)).toBe(true);
    expect(same([await explicitLeaf(p), p.aca, p.ica], o)).toBe(true);
    expect(same([implicitLeaf(p).cert, p.aca, p.ica, p.root], { ...o, skipCurrentValidity: false, requiredPsid: 0x20 })).toBe(true);
  });

  it('bad leaves: the same errors as the library', async () => {
    const o = { trustAnchors: [p.root], clock };
    // explicit leaf with a broken signature
    const good = await explicitLeaf(p);
    const sig = (good.signature as any).ecdsaNistP256Signature;
    const sSig = new Uint8Array(sig.sSig);
    sSig[3] ^= 4;
    expect(same([{ ...good, signature: { ecdsaNistP256Signature: { ...sig, sSig } } } as Certificate, p.aca, p.ica], o)).toBe(false);
    // validity beyond the ACA's
    expect(same([implicitLeaf(p, { validity: { start: at(1), durationSeconds: 900 * DAY } }).cert, p.aca, p.ica], o)).toBe(false);
    // a PSID the ACA may not issue
    expect(same([implicitLeaf(p, { appPermissions: [{ psid: 0x30 }] }).cert, p.aca, p.ica], o)).toBe(false);
    // region outside the root's (inherited) region
    expect(same([implicitLeaf(p, { region: { countries: [124] } }).cert, p.aca, p.ica], o)).toBe(false);
    // required PSID missing
    expect(same([implicitLeaf(p).cert, p.aca, p.ica], { ...o, requiredPsid: 0x26 })).toBe(false);
    // not valid now (and valid again with skipCurrentValidity)
    const late = implicitLeaf(p).cert;
    expect(same([late, p.aca, p.ica], { ...o, clock: new ManualClock(at(30)) })).toBe(false);
    expect(same([late, p.aca, p.ica], { ...o, clock: new ManualClock(at(30)), skipCurrentValidity: true })).toBe(true);
    // ... nor the issuing chain (the ACA expired): the cached chain is still checked for "valid now"
    expect(same([implicitLeaf(p, { validity: { start: at(1), durationSeconds: 400 * DAY } }).cert, p.aca, p.ica], { ...o, clock: new ManualClock(at(501)) })).toBe(false);
    // issued by another ACA than the chain says
    expect(same([implicitLeaf(p, {}, p.otherAca, p.otherAcaKey).cert, p.aca, p.ica], o)).toBe(false);
    // a leaf that claims to be self-signed
    expect(same([{ ...good, issuer: { self: 'sha256' } } as Certificate, p.aca, p.ica], o)).toBe(false);
  });

  it('the issuing chain: a broken ACA signature and untrusted anchors fail, also after a good run was cached', async () => {
    const o = { trustAnchors: [p.root], clock };
    const leaf = implicitLeaf(p).cert;
    expect(same([leaf, p.aca, p.ica], o)).toBe(true); // cached now
    const sig = (p.aca.signature as any).ecdsaNistP256Signature;
    const sSig = new Uint8Array(sig.sSig);
    sSig[0] ^= 1;
    const badAca = { ...p.aca, signature: { ecdsaNistP256Signature: { ...sig, sSig } } } as Certificate;
    expect(same([leaf, badAca, p.ica], o)).toBe(false);
    const otherRootKey = testKey();
    const otherRoot = await issueExplicitCertificate({
      tbs: buildTbsCertificate({
        id: { name: 'other-root.test' },
        validity: { start: T0, durationSeconds: 3650 * DAY },
        certIssuePermissions: [{ psids: 'all', minChainLength: 2, chainLengthRange: -1, eeType: { app: true } }],
        verifyKey: otherRootKey.publicKey,
      }),
      issuer: 'self',
      signer: otherRootKey.signer,
    });
    expect(same([leaf, p.aca, p.ica], { ...o, trustAnchors: [otherRoot] })).toBe(false);
    expect(same([leaf, p.aca, p.ica, p.root], { ...o, trustAnchors: [otherRoot] })).toBe(false);
    expect(same([leaf], o)).toBe(false);
  });
});
