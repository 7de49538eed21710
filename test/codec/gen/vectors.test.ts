/**
 * Real encodings through the generated codecs: deployed IEEE 1609.2 certificates from the verified vector
 * file, and a hand-built Ieee1609Dot2Data-Signed instantiation (CtlSignatureSpdu, IEEE 1609.2.1 clause 7.3.x)
 * whose nested ScmsPdu is decoded all the way down.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { arbitraryFor } from '../../helpers/arbitrary.js';
import { CoerError } from '../../../src/codec/index.js';
import { AppExtension, Certificate, CertIssueExtension, CertRequestExtension, ContributedExtensionBlock, Ieee1609Dot2Data } from '../../../src/codec/gen/Ieee1609Dot2.js';
import { CtlSignatureSpdu, ScmsPdu, EeEcaCertRequestSpdu, SecurityMgmtPsid } from '../../../src/codec/gen/Ieee1609Dot2Dot1Protocol.js';
import { SecuredCrl } from '../../../src/codec/gen/Ieee1609Dot2Crl.js';

const vectors = JSON.parse(readFileSync(resolve(import.meta.dirname, '../../vectors/scms-verified-vectors.json'), 'utf8'));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const bytes = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));

/** Every COER certificate in the vector file, wherever it sits (keys named certificate_coer). */
function certificates(): Array<{ where: string; hex: string }> {
  const out: Array<{ where: string; hex: string }> = [];
  const walk = (o: unknown, path: string) => {
    if (Array.isArray(o)) o.forEach((x, i) => walk(x, `${path}[${i}]`));
    else if (o && typeof o === 'object') for (const [k, v] of Object.entries(o)) {
      if (k === 'certificate_coer' && typeof v === 'string') out.push({ where: path, hex: v });
      else walk(v, `${path}.${k}`);
    }
  };
  walk(vectors.vectors, 'vectors');
  return out;
}

describe('deployed certificates (test/vectors/scms-verified-vectors.json)', () => {
  const certs = certificates();

  it('finds the implicit and explicit certificates', () => {
    expect(certs.length).toBeGreaterThanOrEqual(3);
  });

  it.each(certs.map((c) => [c.where, c.hex]))('%s decodes and re-encodes byte-exact', (_where, h) => {
    const cert = Certificate.decode(bytes(h));
    expect(hex(Certificate.encode(cert))).toBe(h);
    expect(cert.version).toBe(3);
  });

  it('reads the implicit certificate by meaning', () => {
    const v = vectors.vectors.ecqv_implicit_1609dot2.vectors[0];
    const cert = Certificate.decode(bytes(v.certificate_coer));
    expect(cert.type).toBe('implicit');
    // The issuer is identified by the last 8 octets of SHA-256 of its certificate (1609.2 6.4.3, HashedId8).
    expect(cert.issuer).toEqual({ sha256AndDigest: bytes(v.issuer_sha256).slice(-8) });
    expect('reconstructionValue' in cert.toBeSigned.verifyKeyIndicator).toBe(true);
    expect(cert.signature).toBeUndefined();
  });

  it('reads the explicit root and intermediate certificates by meaning', () => {
    const [root, ica] = vectors.vectors.hashedid.vectors.map((v: { certificate_coer: string }) => Certificate.decode(bytes(v.certificate_coer)));
    expect(root.type).toBe('explicit');
    expect(root.issuer).toEqual({ self: 'sha256' });
    expect(root.signature).toBeDefined();
    expect('verificationKey' in root.toBeSigned.verifyKeyIndicator).toBe(true);
    expect(ica.type).toBe('explicit');
    // The intermediate names the root by HashedId8 = last 8 octets of SHA-256(root certificate).
    const rootSha = vectors.vectors.hashedid.vectors[0].sha256 as string;
    expect(ica.issuer).toEqual({ sha256AndDigest: bytes(rootSha).slice(-8) });
    expect(ica.toBeSigned.certIssuePermissions?.length).toBeGreaterThan(0);
  });
});

describe('Ieee1609Dot2Data-Signed instantiation (CtlSignatureSpdu)', () => {
  const cert = Certificate.decode(bytes(vectors.vectors.hashedid.vectors[1].certificate_coer));
  const tbsCtlSignature = {
    ctlSeriesId: bytes('0102030405060708'),
    ctlType: 1,
    sequenceNumber: 7,
    tbsCtlHash: new Uint8Array(48).fill(0xab),
  };
  const value: CtlSignatureSpdu = {
    protocolVersion: 3,
    content: {
      signedData: {
        hashId: 'sha256',
        tbsData: {
          payload: { data: { protocolVersion: 3, content: { unsecuredData: { version: 2, content: { cert: { tbsCtlSignature } } } } } },
          headerInfo: { psid: 35n },
        },
        signer: { certificate: [cert] },
        signature: { ecdsaNistP256Signature: { rSig: { 'x-only': new Uint8Array(32).fill(1) }, sSig: new Uint8Array(32).fill(2) } },
      },
    },
  };

  it('SecurityMgmtPsid is 35 (1609.2.1 clause 6.3.5 / PSID 0x23)', () => {
    expect(SecurityMgmtPsid.schema).toMatchObject({ kind: 'integer', min: 35n, max: 35n });
  });

  it('encodes as plain Ieee1609Dot2Data whose unsecuredData octets are the ScmsPdu', () => {
    const enc = CtlSignatureSpdu.encode(value);
    // 03 = protocolVersion, 81 = [1] signedData, 00 = hashId sha256 (X.696 CHOICE tag and ENUMERATED).
    expect(hex(enc.slice(0, 3))).toBe('038100');
    // The same octets through the unconstrained types: the inner data is an opaque octet string...
    const generic = Ieee1609Dot2Data.decode(enc) as { content: { signedData: { tbsData: { payload: { data: { content: { unsecuredData: Uint8Array } } } } } } };
    const inner = generic.content.signedData.tbsData.payload.data.content.unsecuredData;
    expect(inner).toBeInstanceOf(Uint8Array);
    // ... that decodes on its own as the ScmsPdu carrying the ToBeSignedCtlSignature.
    expect(ScmsPdu.decode(inner)).toEqual({ version: 2, content: { cert: { tbsCtlSignature } } });
    // The instantiation decodes all the way down in one go and re-encodes byte-exact.
    const back = CtlSignatureSpdu.decode(enc);
    expect(back).toEqual(value);
    expect(hex(CtlSignatureSpdu.encode(back))).toBe(hex(enc));
  });

  it('enforces the inner subtyping: psid, signer and header fields (validation only)', () => {
    const withPsid = structuredClone(value);
    (withPsid.content as { signedData: { tbsData: { headerInfo: { psid: bigint } } } }).signedData.tbsData.headerInfo.psid = 36n;
    expect(() => CtlSignatureSpdu.encode(withPsid)).toThrow(CoerError);
    // A digest signer is a valid Ieee1609Dot2Data but not a CtlSignatureSpdu (SignerSingleCert).
    const digestSigned = structuredClone(value) as unknown as { content: { signedData: { signer: unknown } } };
    digestSigned.content.signedData.signer = { digest: new Uint8Array(8) };
    expect(() => CtlSignatureSpdu.encode(digestSigned as never)).toThrow(CoerError);
    const enc = Ieee1609Dot2Data.encode(Ieee1609Dot2Data.decode(CtlSignatureSpdu.encode(value)) as never);
    // generationTime is ABSENT in Ieee1609Dot2Data-Signed: built through the generic type, rejected by the SPDU.
    const generic = Ieee1609Dot2Data.decode(enc) as { content: { signedData: { tbsData: { headerInfo: Record<string, unknown> } } } };
    generic.content.signedData.tbsData.headerInfo.generationTime = 1n;
    const withTime = Ieee1609Dot2Data.encode(generic as never);
    expect(() => CtlSignatureSpdu.decode(withTime)).toThrow(CoerError);
    // A different ScmsPdu content (not tbsCtlSignature) inside is rejected by the SPDU type.
    const wrongInner = ScmsPdu.encode({ version: 2, content: { cert: { infoStatus: { crl: [], ctl: [], caCcf: 0, ma: [] } } } });
    const g2 = Ieee1609Dot2Data.decode(enc) as { content: { signedData: { tbsData: { payload: { data: { content: { unsecuredData: Uint8Array } } } } } } };
    g2.content.signedData.tbsData.payload.data.content.unsecuredData = wrongInner;
    expect(() => CtlSignatureSpdu.decode(Ieee1609Dot2Data.encode(g2 as never))).toThrow(CoerError);
  });
});

describe('other nested instantiations', () => {
  it('EeEcaCertRequestSpdu: the signed certificate request is decoded down to the EeEcaCertRequest', () => {
    const schema = EeEcaCertRequestSpdu.schema;
    // Walk the IR: content -> signedCertificateRequest (CONTAINING SignedCertificateRequest) -> tbsRequest.content -> eca-ee.
    const content = (schema as { fields: Array<{ name: string; schema: unknown }> }).fields.find((f) => f.name === 'content')!.schema as {
      alternatives: Array<{ name: string; schema: { containing?: { fields: Array<{ name: string; schema: unknown }> } } }>;
    };
    const scr = content.alternatives.find((a) => a.name === 'signedCertificateRequest')!.schema.containing!;
    expect(scr.fields.map((f) => f.name)).toEqual(['hashAlgorithmId', 'tbsRequest', 'signer', 'signature']);
    const signer = scr.fields.find((f) => f.name === 'signer')!.schema as { alternatives: Array<{ name: string; permitted?: boolean }> };
    expect(signer.alternatives.filter((a) => a.permitted !== false).map((a) => a.name)).toEqual(['self']);
    const tbs = scr.fields.find((f) => f.name === 'tbsRequest')!.schema as { fields: Array<{ name: string; schema: { alternatives: Array<{ name: string; permitted?: boolean; tag: number; schema: { alternatives: Array<{ name: string; permitted?: boolean }> } }> } }> };
    const alts = tbs.fields.find((f) => f.name === 'content')!.schema.alternatives;
    const permitted = alts.filter((a) => a.permitted !== false);
    expect(permitted.map((a) => [a.name, a.tag])).toEqual([['eca-ee', 5]]);
    expect(permitted[0]!.schema.alternatives.filter((a) => a.permitted !== false).map((a) => a.name)).toEqual(['eeEcaCertRequest']);
  });

  it('SecuredCrl: headerInfo.psid is restricted to CrlPsid (256) without changing its encoding', () => {
    const s = JSON.stringify(SecuredCrl.schema, (_k, v) => (typeof v === 'bigint' ? `${v}n` : typeof v === 'function' ? undefined : v));
    expect(s).toContain('"name":"Psid","min":"0n","permitted":[["256n","256n"]]');
  });
});

describe('open types whose selector is in an enclosing SEQUENCE', () => {
  it('AppExtension: the open type is a direct sibling of its selector', () => {
    // id 1 = certExtId-OperatingOrganization -> OperatingOrganizationId (OBJECT IDENTIFIER contents octets).
    const v: AppExtension = { id: 1, content: bytes('2b0601') };
    const enc = AppExtension.encode(v);
    expect(hex(enc)).toBe('0104032b0601'); // id, open-type length 4, OID length 3, contents
    expect(AppExtension.decode(enc)).toEqual(v);
  });

  // X.682 10: `@.id` inside CertIssueExtension.permissions (a CHOICE) and `@.contributorId` inside
  // ContributedExtensionBlock.extns (a SEQUENCE OF) name components of the innermost enclosing SEQUENCE.
  it('CertIssueExtension.permissions.specific is typed by the id of the enclosing SEQUENCE', () => {
    const v: CertIssueExtension = { id: 1, permissions: { specific: null } };
    // id 01, [0] specific = 80, open type of length 0 holding NULL (certExtId-OperatingOrganization: ISSUE NULL).
    expect(hex(CertIssueExtension.encode(v))).toBe('018000');
    expect(CertIssueExtension.decode(bytes('018000'))).toEqual(v);
    // A known id with octets that are not a NULL is an error, not an unknown open type.
    expect(() => CertIssueExtension.decode(bytes('018001ff'))).toThrow(CoerError);
    expect(() => CertIssueExtension.encode({ id: 1, permissions: { specific: { $unknownOpenType: bytes('ff') } } })).toThrow(CoerError);
    // An id outside SetCertExtensions keeps the raw octets.
    expect(CertIssueExtension.decode(bytes('02800201ff'))).toEqual({ id: 2, permissions: { specific: { $unknownOpenType: bytes('01ff') } } });
    expect(hex(CertIssueExtension.encode({ id: 2, permissions: { specific: { $unknownOpenType: bytes('01ff') } } }))).toBe('02800201ff');
    expect(CertIssueExtension.toJson(v)).toEqual({ id: 1, permissions: { specific: null } });
    expect(CertIssueExtension.fromJson({ id: 1, permissions: { specific: null } })).toEqual(v);
    expect(() => CertIssueExtension.fromJson({ id: 1, permissions: { specific: { $unknownOpenType: 'ff' } } })).toThrow(CoerError);
  });

  it('CertRequestExtension.permissions.content is typed by the id of the enclosing SEQUENCE', () => {
    const v: CertRequestExtension = { id: 1, permissions: { content: null } };
    expect(hex(CertRequestExtension.encode(v))).toBe('018000');
    expect(CertRequestExtension.decode(bytes('018000'))).toEqual(v);
    expect(() => CertRequestExtension.decode(bytes('018001ff'))).toThrow(CoerError);
  });

  it('ContributedExtensionBlock.extns items are typed by contributorId', () => {
    const v: ContributedExtensionBlock = { contributorId: 1, extns: [{ id: 1, content: new Uint8Array(8).fill(7) }] };
    // contributorId 01; quantity 01 01; item = open type of 10 octets: Ieee1609ContributedHeaderInfoExtension
    // { id p2pcd8ByteLearningRequestId (1), content HashedId8 as an open type: 08 + 8 octets }.
    const enc = '01' + '0101' + '0a' + '01' + '08' + '07'.repeat(8);
    expect(hex(ContributedExtensionBlock.encode(v))).toBe(enc);
    expect(ContributedExtensionBlock.decode(bytes(enc))).toEqual(v);
    const json = { contributorId: 1, extns: [{ id: 1, content: '07'.repeat(8) }] };
    expect(ContributedExtensionBlock.toJson(v)).toEqual(json);
    expect(ContributedExtensionBlock.fromJson(json)).toEqual(v);
    // An unknown contributor keeps each item raw.
    const other = ContributedExtensionBlock.decode(bytes('09' + '0101' + '02abcd'));
    expect(other).toEqual({ contributorId: 9, extns: [{ $unknownOpenType: bytes('abcd') }] });
  });

  it('arbitraryFor types the nested open types by the selector', () => {
    const xs = fc.sample(arbitraryFor(CertIssueExtension.schema, 3), { numRuns: 300, seed: 7 }) as CertIssueExtension[];
    const known = xs.filter((x) => x.id === 1 && 'specific' in x.permissions);
    expect(known.length).toBeGreaterThan(0);
    expect(known.every((x) => (x.permissions as { specific: unknown }).specific === null)).toBe(true);
    for (const x of xs) expect(CertIssueExtension.decode(CertIssueExtension.encode(x))).toEqual(x);
    const blocks = fc.sample(arbitraryFor(ContributedExtensionBlock.schema, 3), { numRuns: 200, seed: 7 }) as ContributedExtensionBlock[];
    expect(blocks.some((b) => b.contributorId === 1 && b.extns.every((e) => !('$unknownOpenType' in e)))).toBe(true);
    for (const b of blocks) expect(hex(ContributedExtensionBlock.encode(ContributedExtensionBlock.decode(ContributedExtensionBlock.encode(b))))).toBe(hex(ContributedExtensionBlock.encode(b)));
  });
});
