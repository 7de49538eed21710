/**
 * CTL engine: build, elector ballots, quorum assembly and verification (IEEE 1609.2.1 MultiSignedCtl).
 * Expected hashes and signature inputs are rebuilt here with node:crypto and hand-written COER, not taken from
 * the code under test.
 */
import { createHash, createPublicKey, createVerify } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { Certificate, Ieee1609Dot2Data } from '../../../src/codec/gen/Ieee1609Dot2.js';
import { CtlSignatureSpdu, MultiSignedCtlSpdu } from '../../../src/codec/gen/Ieee1609Dot2Dot1Protocol.js';
import { FullIeeeTbsCtl } from '../../../src/codec/gen/Ieee1609Dot2Dot1CertManagement.js';
import {
  assembleMultiSignedCtl,
  assembleMultiSignedCtlReport,
  buildTbsCtl,
  CtlQuorumError,
  nextCtlBallot,
  signCtlBallot,
  verifyCtlSeries,
  verifyMultiSignedCtl,
  type CtlState,
} from '../../../src/engine/manager/ctl.js';
import { ManualClock } from '../../../src/security/time.js';
import { party, SERIES, START, tempDir, type Party } from './ctl-fixtures.js';

const clock = new ManualClock('2025-06-01T00:00:00Z');
const EFFECTIVE = new Date('2025-06-01T00:00:00Z');
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

let e1: Party, e2: Party, e3: Party, outsider: Party, root1: Party, root2: Party, root384: Party;
let ctl0: Uint8Array;
let state0: CtlState;

async function sign(tbsCtl: FullIeeeTbsCtl, ...who: Party[]): Promise<Uint8Array[]> {
  return Promise.all(who.map((p) => signCtlBallot({ tbsCtl, electorCertificate: p.cert, signer: p.signer, clock })));
}

function quorumError(fn: () => unknown): CtlQuorumError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CtlQuorumError);
    return e as CtlQuorumError;
  }
  throw new Error('expected a CtlQuorumError');
}

beforeAll(async () => {
  const dir = tempDir();
  [e1, e2, e3, outsider, root1, root2, root384] = await Promise.all([
    party(dir, 'elector-1'),
    party(dir, 'elector-2'),
    party(dir, 'elector-3'),
    party(dir, 'outsider'),
    party(dir, 'root-1'),
    party(dir, 'root-2'),
    party(dir, 'root-384', { curve: 'P-384' }),
  ]);
  const tbsCtl = buildTbsCtl({
    ctlSeriesId: SERIES,
    sequenceNumber: 0,
    effectiveDate: EFFECTIVE,
    electorApprove: [e1.cert, e2.cert, e3.cert],
    electorRemove: [],
    rootCaApprove: [root1.cert],
    rootCaRemove: [],
    quorum: 2,
  });
  ctl0 = assembleMultiSignedCtl({ tbsCtl, unsigned: [e1.cert, e2.cert, e3.cert, root1.cert], signatures: await sign(tbsCtl, e1, e2) });
  const r = verifyMultiSignedCtl(ctl0);
  if (!r.ok) throw new Error(r.errors.join('\n'));
  state0 = r.state;
});

describe('first CTL of a series (3 electors, quorum 2)', () => {
  it('verifies, and the state holds the electors, roots and quorum', () => {
    expect(state0.sequenceNumber).toBe(0);
    expect(state0.quorum).toBe(2);
    expect(state0.electors.map((c) => hex(Certificate.encode(c)))).toEqual([e1, e2, e3].map((p) => hex(Certificate.encode(p.cert))));
    expect(state0.roots.map((c) => hex(Certificate.encode(c)))).toEqual([hex(Certificate.encode(root1.cert))]);
    expect(state0.effectiveDate.toISOString()).toBe(EFFECTIVE.toISOString());
  });

  it('lists HashedId48 = SHA-384(elector COER) and HashedId32 = SHA-256(root COER)', () => {
    const msctl = (MultiSignedCtlSpdu.decode(ctl0).content as { unsecuredData: { content: { cert: { multiSignedCtl: { tbsCtl: FullIeeeTbsCtl } } } } })
      .unsecuredData.content.cert.multiSignedCtl;
    const tbs = msctl.tbsCtl;
    expect(tbs.electorApprove.map(hex)).toEqual(
      [e1, e2, e3].map((p) => createHash('sha384').update(Certificate.encode(p.cert)).digest('hex')),
    );
    expect(tbs.rootCaApprove.map(hex)).toEqual([createHash('sha256').update(Certificate.encode(root1.cert)).digest('hex')]);
    expect(tbs.quorum).toBe(2n);
    expect(hex(tbs.ctlSeriesId)).toBe('53434d5300000001');
  });

  it('a P-384 root is listed by the low-order 32 octets of SHA-384', () => {
    const tbs = buildTbsCtl({ ctlSeriesId: SERIES, sequenceNumber: 0, effectiveDate: EFFECTIVE, electorApprove: [e1.cert], electorRemove: [], rootCaApprove: [root384.cert], rootCaRemove: [], quorum: 1 });
    const full = createHash('sha384').update(Certificate.encode(root384.cert)).digest();
    expect(hex(tbs.rootCaApprove[0]!)).toBe(full.subarray(16).toString('hex'));
  });

  it('each elector signature verifies with node:crypto over H(H(tbsData) || H(elector certificate))', () => {
    const msctl = (MultiSignedCtlSpdu.decode(ctl0).content as { unsecuredData: { content: { cert: { multiSignedCtl: { tbsCtl: FullIeeeTbsCtl; signatures: unknown[] } } } } })
      .unsecuredData.content.cert.multiSignedCtl;
    expect(msctl.signatures).toHaveLength(2);
    const tbsCtlHash = createHash('sha384').update(FullIeeeTbsCtl.encode(msctl.tbsCtl)).digest();
    // Hand-written COER of the ToBeSignedData (X.696):
    //   ScmsPdu = 02 (version) 84 ([4] cert) 83 ([3] tbsCtlSignature) ctlSeriesId(8) ctlType(1) sequenceNumber(2) tbsCtlHash(48)
    //   ToBeSignedData = 40 (SignedDataPayload preamble: data present) 03 80 (Ieee1609Dot2Data v3, [0] unsecuredData)
    //                    3e (Opaque length 62) ScmsPdu, then HeaderInfo 00 (no options) 01 23 (psid 35)
    const scmsPdu = Buffer.concat([Buffer.from('028483', 'hex'), Buffer.from(SERIES), Buffer.from([1, 0, 0]), tbsCtlHash]);
    expect(scmsPdu.length).toBe(62);
    const tbsData = Buffer.concat([Buffer.from('4003803e', 'hex'), scmsPdu, Buffer.from('000123', 'hex')]);

    const signers = [e1, e2];
    for (const [i, sigValue] of msctl.signatures.entries()) {
      const bytes = CtlSignatureSpdu.encode(sigValue as never);
      // 03 81 00: Ieee1609Dot2Data v3, [1] signedData, hashId sha256; then the ToBeSignedData exactly.
      expect(hex(bytes.subarray(0, 3))).toBe('038100');
      expect(hex(bytes.subarray(3, 3 + tbsData.length))).toBe(tbsData.toString('hex'));
      const sd = (Ieee1609Dot2Data.decode(bytes).content as { signedData: { signer: { certificate: Certificate[] }; signature: { ecdsaNistP256Signature: { rSig: { 'x-only': Uint8Array }; sSig: Uint8Array } } } }).signedData;
      const signerCert = Certificate.encode(sd.signer.certificate[0]!);
      expect(hex(signerCert)).toBe(hex(Certificate.encode(signers[i]!.cert)));
      const input = Buffer.concat([createHash('sha256').update(tbsData).digest(), createHash('sha256').update(signerCert).digest()]);
      const pub = signers[i]!.signer.publicKey; // 04 || x || y
      const key = createPublicKey({
        key: { kty: 'EC', crv: 'P-256', x: Buffer.from(pub.subarray(1, 33)).toString('base64url'), y: Buffer.from(pub.subarray(33)).toString('base64url') },
        format: 'jwk',
      });
      const rs = Buffer.concat([sd.signature.ecdsaNistP256Signature.rSig['x-only'], sd.signature.ecdsaNistP256Signature.sSig]);
      expect(createVerify('sha256').update(input).verify({ key, dsaEncoding: 'ieee-p1363' }, rs)).toBe(true);
      // and not over anything else
      input[0]! ^= 1;
      expect(createVerify('sha256').update(input).verify({ key, dsaEncoding: 'ieee-p1363' }, rs)).toBe(false);
    }
  });

  it('one signature of three electors with quorum 2 is refused, naming who is missing', async () => {
    const tbsCtl = buildTbsCtl({ ctlSeriesId: SERIES, sequenceNumber: 0, effectiveDate: EFFECTIVE, electorApprove: [e1.cert, e2.cert, e3.cert], electorRemove: [], rootCaApprove: [root1.cert], rootCaRemove: [], quorum: 2 });
    const sigs = await sign(tbsCtl, e1);
    const err = quorumError(() => assembleMultiSignedCtl({ tbsCtl, unsigned: [e1.cert, e2.cert, e3.cert, root1.cert], signatures: sigs }));
    expect(err.needed).toBe(2);
    expect(err.signed).toEqual(['elector-1']);
    expect(err.missing).toEqual(['elector-2', 'elector-3']);
    expect(err.message).toBe('2 of 3 signatures needed, have 1: missing elector-2, elector-3');
  });

  it('refuses a quorum larger than the electors, and a ctlSeriesId that is not 8 octets', () => {
    const base = { ctlSeriesId: SERIES, sequenceNumber: 0, effectiveDate: EFFECTIVE, electorApprove: [e1.cert, e2.cert], electorRemove: [], rootCaApprove: [], rootCaRemove: [], quorum: 3 };
    expect(() => buildTbsCtl(base)).toThrow(/quorum 3 exceeds the 2 approved electors/);
    expect(() => buildTbsCtl({ ...base, quorum: 1, ctlSeriesId: new Uint8Array(7) })).toThrow(/8 octets/);
  });

  it('an elector cannot sign with a key that is not its certificate key', async () => {
    const tbsCtl = buildTbsCtl({ ctlSeriesId: SERIES, sequenceNumber: 0, effectiveDate: EFFECTIVE, electorApprove: [e1.cert], electorRemove: [], rootCaApprove: [], rootCaRemove: [], quorum: 1 });
    await expect(signCtlBallot({ tbsCtl, electorCertificate: e1.cert, signer: e2.signer, clock })).rejects.toThrow(/not the key of elector certificate elector-1/);
  });
});

describe('next CTL (sequenceNumber + 1): quorum of the previous CTL electors', () => {
  it('add a root: short of the quorum when the other signatures are by a non-elector or over another tbsCtl', async () => {
    const { tbsCtl, unsigned } = nextCtlBallot(state0, { addRoots: [root2.cert] }, EFFECTIVE);
    expect(tbsCtl.sequenceNumber).toBe(1);
    const other = nextCtlBallot(state0, { addRoots: [root384.cert] }, EFFECTIVE).tbsCtl;
    const [s1] = await sign(tbsCtl, e1);
    const [sOut] = await sign(tbsCtl, outsider);
    const [sOther] = await sign(other, e2);
    const err = quorumError(() => assembleMultiSignedCtl({ tbsCtl, unsigned, signatures: [s1!, sOut!, sOther!], previous: state0 }));
    expect(err.signed).toEqual(['elector-1']);
    expect(err.missing).toEqual(['elector-2', 'elector-3']);
    expect(err.ignored.map((i) => [i.index, i.kind, i.signer])).toEqual([
      [1, 'not-elector', 'outsider'],
      [2, 'other-ctl', 'elector-2'],
    ]);
  });

  it('add a root with two elector signatures: verifies against the previous state, extra signatures left out', async () => {
    const { tbsCtl, unsigned } = nextCtlBallot(state0, { addRoots: [root2.cert] }, EFFECTIVE);
    const [s1, s3, s1again] = await sign(tbsCtl, e1, e3, e1);
    const [sOut] = await sign(tbsCtl, outsider);
    const report = assembleMultiSignedCtlReport({ tbsCtl, unsigned, signatures: [sOut!, s1!, s3!, s1again!], previous: state0 });
    expect(report.signers).toEqual(['elector-1', 'elector-3']);
    expect(report.ignored.map((i) => i.kind)).toEqual(['not-elector', 'duplicate']);
    const r = verifyMultiSignedCtl(report.bytes, { previous: state0 });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.state.sequenceNumber).toBe(1);
    expect(r.state.roots.map((c) => hex(Certificate.encode(c)))).toEqual([root1, root2].map((p) => hex(Certificate.encode(p.cert))));
    expect(r.state.quorum).toBe(2);
    // Without the previous CTL, CTL 1 is not self-approving unless its own electors sign: here they did.
    const series = verifyCtlSeries([ctl0, report.bytes]);
    expect(series.ok).toBe(true);
    expect(series.state?.sequenceNumber).toBe(1);
  });

  it('removing an elector needs the quorum without that elector', async () => {
    const { tbsCtl, unsigned } = nextCtlBallot(state0, { removeElectors: [e3.cert], quorum: 2 }, EFFECTIVE);
    expect(tbsCtl.electorRemove.map(hex)).toEqual([createHash('sha384').update(Certificate.encode(e3.cert)).digest('hex')]);
    const [s1, s3, s2] = await sign(tbsCtl, e1, e3, e2);
    const err = quorumError(() => assembleMultiSignedCtl({ tbsCtl, unsigned, signatures: [s1!, s3!], previous: state0 }));
    expect(err.signed).toEqual(['elector-1']);
    expect(err.ignored.map((i) => [i.kind, i.signer])).toEqual([['removed', 'elector-3']]);
    expect(err.message).toMatch(/^2 of 2 signatures needed, have 1: missing elector-2/);
    const ctl = assembleMultiSignedCtl({ tbsCtl, unsigned, signatures: [s1!, s2!], previous: state0 });
    const r = verifyMultiSignedCtl(ctl, { previous: state0 });
    expect(r.ok && r.state.electors.map((c) => hex(Certificate.encode(c)))).toEqual([e1, e2].map((p) => hex(Certificate.encode(p.cert))));
  });

  it('a removed elector cannot sign the CTL after its removal', async () => {
    const { tbsCtl, unsigned } = nextCtlBallot(state0, { removeElectors: [e3.cert], quorum: 1 }, EFFECTIVE);
    const ctl1 = assembleMultiSignedCtl({ tbsCtl, unsigned, signatures: await sign(tbsCtl, e1, e2), previous: state0 });
    const r1 = verifyMultiSignedCtl(ctl1, { previous: state0 });
    if (!r1.ok) throw new Error(r1.errors.join('; '));
    const next = nextCtlBallot(r1.state, { addRoots: [root2.cert] }, EFFECTIVE);
    const err = quorumError(() => assembleMultiSignedCtl({ ...next, signatures: [] , previous: r1.state }));
    expect(err.needed).toBe(1);
    const [s3] = await sign(next.tbsCtl, e3);
    const err3 = quorumError(() => assembleMultiSignedCtl({ ...next, signatures: [s3!], previous: r1.state }));
    expect(err3.ignored[0]?.kind).toBe('not-elector');
  });

  it('a tampered CTL (one byte of tbsCtl flipped) fails verification with a clear message', async () => {
    const { tbsCtl, unsigned } = nextCtlBallot(state0, { addRoots: [root2.cert] }, EFFECTIVE);
    const ctl = assembleMultiSignedCtl({ tbsCtl, unsigned, signatures: await sign(tbsCtl, e1, e2), previous: state0 });
    const enc = FullIeeeTbsCtl.encode(tbsCtl);
    const at = Buffer.from(ctl).indexOf(Buffer.from(enc));
    expect(at).toBeGreaterThan(0);
    // COER FullIeeeTbsCtl: preamble(1) type(1) ctlSeriesId(8) sequenceNumber(2) effectiveDate(4): flip the last
    // octet of effectiveDate.
    const bad = new Uint8Array(ctl);
    bad[at + 15]! ^= 0x01;
    const r = verifyMultiSignedCtl(bad, { previous: state0 });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.join('\n')).toMatch(/tbsCtlHash mismatch/);
    expect(r.errors.join('\n')).toMatch(/quorum not met: 2 of 3 electors of the previous CTL needed, 0 valid signature/);
  });

  it('a sequence gap fails', async () => {
    const b1 = nextCtlBallot(state0, { addRoots: [root2.cert] }, EFFECTIVE);
    const ctl1 = assembleMultiSignedCtl({ ...b1, signatures: await sign(b1.tbsCtl, e1, e2), previous: state0 });
    const r1 = verifyMultiSignedCtl(ctl1, { previous: state0 });
    if (!r1.ok) throw new Error(r1.errors.join('; '));
    const b2 = nextCtlBallot(r1.state, { addRoots: [root384.cert] }, EFFECTIVE);
    const ctl2 = assembleMultiSignedCtl({ ...b2, signatures: await sign(b2.tbsCtl, e1, e2), previous: r1.state });
    expect(verifyCtlSeries([ctl0, ctl1, ctl2]).ok).toBe(true);
    const gap = verifyCtlSeries([ctl0, ctl2]);
    expect(gap.ok).toBe(false);
    expect(gap.errors.join('\n')).toMatch(/file 2: .*sequence gap: sequenceNumber 2 does not follow 0 \(expected 1\)/);
  });

  it('an effectiveDate before the previous one is refused', () => {
    expect(() => nextCtlBallot(state0, { addRoots: [root2.cert] }, new Date(START.getTime()))).toThrow(/before the current CTL/);
  });

  it('a CTL whose elector certificate is missing from unsigned and the previous state fails', async () => {
    const { tbsCtl } = nextCtlBallot(state0, { addElectors: [outsider.cert] }, EFFECTIVE);
    // unsigned without the new elector's certificate: assembling verifies its own output and refuses.
    expect(() => assembleMultiSignedCtl({ tbsCtl, unsigned: [], signatures: [], previous: state0 })).toThrow(CtlQuorumError);
    const sigs = await sign(tbsCtl, e1, e2);
    expect(() => assembleMultiSignedCtl({ tbsCtl, unsigned: [], signatures: sigs, previous: state0 })).toThrow(
      /elector [0-9a-f]{16} is approved but its certificate is neither in unsigned nor in the previous CTL/,
    );
  });
});

describe('elector certificates', () => {
  it('a P-384 elector signs with hashId sha384 and its signature counts', async () => {
    const dir = tempDir();
    const big = await party(dir, 'elector-384', { curve: 'P-384' });
    const tbsCtl = buildTbsCtl({ ctlSeriesId: SERIES, sequenceNumber: 0, effectiveDate: EFFECTIVE, electorApprove: [big.cert, e1.cert], electorRemove: [], rootCaApprove: [], rootCaRemove: [], quorum: 2 });
    const sigs = await sign(tbsCtl, big, e1);
    // 03 81 01: Ieee1609Dot2Data v3, [1] signedData, hashId sha384 (HashAlgorithm enumeration value 1).
    expect(hex(sigs[0]!.subarray(0, 3))).toBe('038101');
    const r = verifyMultiSignedCtl(assembleMultiSignedCtl({ tbsCtl, unsigned: [big.cert, e1.cert], signatures: sigs }));
    expect(r.ok && r.signers).toEqual(['elector-384', 'elector-1']);
  });

  it('an elector whose certificate has expired by the effectiveDate cannot sign', async () => {
    const dir = tempDir();
    const old = await party(dir, 'elector-old', { validFrom: START, seconds: 86400 });
    const tbsCtl = buildTbsCtl({ ctlSeriesId: SERIES, sequenceNumber: 0, effectiveDate: EFFECTIVE, electorApprove: [old.cert, e1.cert], electorRemove: [], rootCaApprove: [], rootCaRemove: [], quorum: 2 });
    await expect(sign(tbsCtl, old)).rejects.toThrow(/elector certificate elector-old is not valid now/);
    // Even at a time when the certificate was valid, it cannot sign a CTL that takes effect after it expires.
    await expect(
      signCtlBallot({ tbsCtl, electorCertificate: old.cert, signer: old.signer, clock: new ManualClock(START.getTime() + 3600_000) }),
    ).rejects.toThrow(/elector-old is not valid at the CTL effectiveDate/);
  });

  it('a first CTL whose unsigned root certificate was altered fails verification', async () => {
    const tbsCtl = buildTbsCtl({ ctlSeriesId: SERIES, sequenceNumber: 0, effectiveDate: EFFECTIVE, electorApprove: [e1.cert], electorRemove: [], rootCaApprove: [root1.cert], rootCaRemove: [], quorum: 1 });
    const forged = structuredClone(root1.cert);
    const sig = (forged.signature as { ecdsaNistP256Signature: { sSig: Uint8Array } }).ecdsaNistP256Signature;
    sig.sSig[5]! ^= 1;
    const good = assembleMultiSignedCtl({ tbsCtl, unsigned: [e1.cert, root1.cert], signatures: await sign(tbsCtl, e1) });
    expect(verifyMultiSignedCtl(good).ok).toBe(true);
    // Same CTL with the root certificate's signature altered: the root hash changes too, so it is both unknown
    // and not approved; build the SPDU by hand through the codec.
    const spdu = MultiSignedCtlSpdu.decode(good) as unknown as { content: { unsecuredData: { content: { cert: { multiSignedCtl: { unsigned: Certificate[] } } } } } };
    spdu.content.unsecuredData.content.cert.multiSignedCtl.unsigned[1] = forged;
    const r = verifyMultiSignedCtl(MultiSignedCtlSpdu.encode(spdu as never));
    expect(r.ok).toBe(false);
    expect(!r.ok && r.errors.join('\n')).toMatch(/root CA [0-9a-f]{16} is approved but its certificate is neither in unsigned/);
    expect(!r.ok && r.errors.join('\n')).toMatch(/unsigned certificate root-1 is not approved by this CTL/);
    // A CTL that approves the altered certificate itself: its self-signature is checked.
    const tbsF = buildTbsCtl({ ctlSeriesId: SERIES, sequenceNumber: 0, effectiveDate: EFFECTIVE, electorApprove: [e1.cert], electorRemove: [], rootCaApprove: [forged], rootCaRemove: [], quorum: 1 });
    const sigsF = await sign(tbsF, e1);
    expect(() => assembleMultiSignedCtl({ tbsCtl: tbsF, unsigned: [e1.cert, forged], signatures: sigsF })).toThrow(
      /root CA certificate root-1 in unsigned: self-signature does not verify/,
    );
  });
});
