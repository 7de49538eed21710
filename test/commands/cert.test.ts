import { createECDH, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Certificate } from '../../src/codec/index.js';
import { bytesToBigInt } from '../../src/crypto/bytes.js';
import { generateKeyPair } from '../../src/crypto/ecdh.js';
import { buildTbsCertificate, issueExplicitCertificate, issueImplicitCertificate, reconstructImplicitPrivateKey } from '../../src/security/certificate.js';
import { scalarSigner } from '../../src/security/signer.js';
import { scms, tempDir, writeEncoded } from './cli-helpers.js';

const vectors = JSON.parse(readFileSync(new URL('../vectors/scms-verified-vectors.json', import.meta.url), 'utf8')) as {
  vectors: {
    hashedid: { vectors: Array<{ name: string; certificate_coer: string; hashedid8: string }> };
    ecqv_implicit_1609dot2: { vectors: Array<{ certificate_coer: string }> };
  };
};
const fromHex = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));
/** Independent HashedId8: last 8 octets of SHA-256 over the COER. */
const sha256Tail8 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex').slice(-16);

const rcaBytes = fromHex(vectors.vectors.hashedid.vectors.find((v) => v.name === 'pentasecurity_rca')!.certificate_coer);
const icaBytes = fromHex(vectors.vectors.hashedid.vectors.find((v) => v.name === 'pentasecurity_ica')!.certificate_coer);
const implicitBytes = fromHex(vectors.vectors.ecqv_implicit_1609dot2.vectors[0]!.certificate_coer);

/** TAI Time32 -> UTC ISO by hand: minus the leap seconds inserted since 2004 (for dates not near one). */
function taiToIso(t: number): string {
  const leaps = ['2005-12-31', '2008-12-31', '2012-06-30', '2015-06-30', '2016-12-31'];
  const approx = Date.UTC(2004, 0, 1) + t * 1000;
  const n = leaps.filter((d) => approx > Date.parse(`${d}T23:59:59Z`) + 10_000).length;
  return new Date(approx - n * 1000).toISOString().replace('.000Z', 'Z');
}

interface ShowJson {
  type: string;
  hashedId8?: string;
  certificateType?: string;
  issuer?: string;
  value: Record<string, any>;
}

function showJson(path: string): ShowJson {
  const r = scms('cert', 'show', path, '--json');
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as ShowJson;
}

describe('scms cert show: deployed certificates', () => {
  const dir = tempDir();

  it('RCA (raw): HashedId8, explicit, self-signed, dates', () => {
    const f = writeEncoded(dir, 'rca.oer', rcaBytes);
    const j = showJson(f);
    expect(j.type).toBe('Ieee1609Dot2.Certificate');
    expect(j.hashedId8).toBe(sha256Tail8(rcaBytes));
    expect(j.hashedId8).toBe(vectors.vectors.hashedid.vectors[0]!.hashedid8);
    expect(j.certificateType).toBe('explicit');
    expect(j.issuer).toBe('self');
    expect(j.value.toBeSigned.id).toEqual({ name: 'rca.pentasecurity.com' });

    const human = scms('cert', 'show', f);
    expect(human.status).toBe(0);
    expect(human.stdout).toContain(sha256Tail8(rcaBytes));
    expect(human.stdout).toMatch(/explicit certificate/);
    expect(human.stdout).toMatch(/self-signed/);
    const start = j.value.toBeSigned.validityPeriod.start as number;
    expect(human.stdout).toContain(taiToIso(start));
  });

  it('ICA (hex with spaces and newlines): issuer is the RCA HashedId8, end date = start + duration', () => {
    const f = writeEncoded(dir, 'ica.hex', icaBytes, true);
    expect(readFileSync(f, 'utf8')).toMatch(/\s[0-9a-f]/);
    const j = showJson(f);
    expect(j.hashedId8).toBe(sha256Tail8(icaBytes));
    expect(j.issuer).toBe(sha256Tail8(rcaBytes));
    expect(j.certificateType).toBe('explicit');
    const vp = j.value.toBeSigned.validityPeriod as { start: number; duration: { years: number } };
    expect(vp.duration).toEqual({ years: 20 });
    const human = scms('cert', 'show', f).stdout;
    expect(human).toContain(`sha256AndDigest ${sha256Tail8(rcaBytes)}`);
    expect(human).toContain(taiToIso(vp.start));
    // A 1609.2 year is 31556952 s; no leap second was inserted after 2016.
    expect(human).toContain(taiToIso(vp.start + 20 * 31556952));
    expect(human).toMatch(/psid: 0x23 \(WAVE security management/);
  });

  it('deployed implicit application certificate: implicit, BSM psid by name', () => {
    const f = writeEncoded(dir, 'app.hex', implicitBytes, true);
    const j = showJson(f);
    expect(j.certificateType).toBe('implicit');
    expect(j.hashedId8).toBe(sha256Tail8(implicitBytes));
    expect(j.issuer).toBe(Buffer.from(implicitBytes.subarray(4, 12)).toString('hex'));
    const human = scms('cert', 'show', f).stdout;
    expect(human).toMatch(/implicit certificate/);
    expect(human).toMatch(/psid: 0x20 \(BSM/);
    expect(human).toMatch(/reconstructionValue/);
  });
});

describe('scms cert show / verify: generated chain', () => {
  const dir = tempDir();
  const start = new Date('2025-03-01T00:00:00Z');
  const rootKey = generateKeyPair('nistP256');
  const acaKey = generateKeyPair('nistP256');
  let root: Certificate;
  let aca: Certificate;
  let pseudonym: Certificate;
  let pseudonymPrivate: bigint;
  let files: Record<string, string>;

  beforeAll(async () => {
    root = await issueExplicitCertificate({
      tbs: buildTbsCertificate({
        id: { name: 'root.test' },
        validity: { start, durationSeconds: 10 * 31556952 },
        certIssuePermissions: [{ psids: 'all', minChainLength: 2 }],
        verifyKey: rootKey.publicKey,
      }),
      issuer: 'self',
      signer: scalarSigner('nistP256', bytesToBigInt(rootKey.privateKey), rootKey.publicKey),
    });
    aca = await issueExplicitCertificate({
      tbs: buildTbsCertificate({
        id: { name: 'aca.test' },
        validity: { start, durationSeconds: 3 * 31556952 },
        certIssuePermissions: [{ psids: [0x20] }],
        verifyKey: acaKey.publicKey,
      }),
      issuer: root,
      signer: scalarSigner('nistP256', bytesToBigInt(rootKey.privateKey), rootKey.publicKey),
    });
    const request = generateKeyPair('nistP256');
    const issued = issueImplicitCertificate({
      tbs: buildTbsCertificate({
        id: { linkageData: { iCert: 7, 'linkage-value': fromHex('0102030405060708a9') } },
        validity: { start, durationSeconds: 7 * 24 * 3600 },
        region: { countries: [840] },
        appPermissions: [{ psid: 0x20 }],
      }),
      issuer: aca,
      issuerPrivateScalar: bytesToBigInt(acaKey.privateKey),
      requestPublicKey: request.publicKey,
    });
    pseudonym = issued.certificate;
    pseudonymPrivate = reconstructImplicitPrivateKey(pseudonym, aca, bytesToBigInt(request.privateKey), issued.privateKeyContribution);
    files = {
      root: writeEncoded(dir, 'root.oer', Certificate.encode(root)),
      aca: writeEncoded(dir, 'aca.hex', Certificate.encode(aca), true),
      pseudonym: writeEncoded(dir, 'pseudonym.oer', Certificate.encode(pseudonym)),
      pseudonymHex: writeEncoded(dir, 'pseudonym.hex', Certificate.encode(pseudonym), true),
    };
  });

  it('shows the implicit pseudonym certificate (raw and hex alike)', () => {
    const bytes = Certificate.encode(pseudonym);
    const raw = showJson(files.pseudonym!);
    const hex = showJson(files.pseudonymHex!);
    expect(hex).toEqual(raw);
    expect(raw.certificateType).toBe('implicit');
    expect(raw.hashedId8).toBe(sha256Tail8(bytes));
    expect(raw.issuer).toBe(sha256Tail8(Certificate.encode(aca)));
    expect(raw.value.toBeSigned.id.linkageData).toEqual({ iCert: 7, 'linkage-value': '0102030405060708a9' });
    const human = scms('cert', 'show', files.pseudonym!).stdout;
    expect(human).toContain('2025-03-01T00:00:00Z');
    expect(human).toContain('2025-03-08T00:00:00Z');
    expect(human).toMatch(/psid: 0x20 \(BSM/);
    expect(human).toMatch(/countryOnly 840/);
    expect(human).toContain(sha256Tail8(bytes));
  });

  it('--type decodes as the named type; an unknown type is an error', () => {
    const r = scms('cert', 'show', files.root!, '--type', 'Ieee1609Dot2.Certificate', '--json');
    expect(r.status).toBe(0);
    expect((JSON.parse(r.stdout) as ShowJson).hashedId8).toBe(sha256Tail8(Certificate.encode(root)));
    const bad = scms('cert', 'show', files.root!, '--type', 'NoSuchType');
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/unknown type "NoSuchType"/);
  });

  it('verify: a good chain passes', () => {
    const r = scms('cert', 'verify', files.aca!, '--issuer', files.root!, '--json');
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { valid: boolean; chain: Array<{ check: string; ok: boolean }> };
    expect(j.valid).toBe(true);
    expect(j.chain.map((l) => [l.check, l.ok])).toEqual([
      ['signature', true],
      ['signature', true],
    ]);
    expect(scms('cert', 'verify', files.root!).status).toBe(0);
  });

  it('verify: the reconstructed key of the implicit certificate is d_U*G of its holder', () => {
    const r = scms('cert', 'verify', files.pseudonym!, '--issuer', files.aca!, '--issuer', files.root!, '--json');
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { valid: boolean; certificateType: string; publicKey: { curve: string; key: string } };
    expect(j.certificateType).toBe('implicit');
    expect(j.publicKey.curve).toBe('nistP256');
    const ecdh = createECDH('prime256v1');
    ecdh.setPrivateKey(Buffer.from(pseudonymPrivate.toString(16).padStart(64, '0'), 'hex'));
    expect(j.publicKey.key).toBe(ecdh.getPublicKey('hex', 'uncompressed'));
    // Without the issuer the key cannot be reconstructed.
    expect(scms('cert', 'verify', files.pseudonym!).status).toBe(1);
  });

  it('verify: a tampered signature fails with a non-zero exit and a reason', () => {
    const bytes = Certificate.encode(aca);
    bytes[bytes.length - 1]! ^= 0x01; // last octet of sSig
    const f = writeEncoded(dir, 'aca-bad.oer', bytes);
    const r = scms('cert', 'verify', f, '--issuer', files.root!);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/signature does not verify/);
    const j = scms('cert', 'verify', f, '--issuer', files.root!, '--json');
    expect(j.status).toBe(1);
    expect((JSON.parse(j.stdout) as { valid: boolean }).valid).toBe(false);
  });

  it('verify: the wrong issuer is named in the failure', () => {
    const r = scms('cert', 'verify', files.aca!, '--issuer', files.aca!);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`the issuer field names ${sha256Tail8(Certificate.encode(root))}`);
  });
});

describe('scms cert show: invalid input', () => {
  const dir = tempDir();

  it('a truncated certificate: non-zero exit, path and offset', () => {
    const f = writeEncoded(dir, 'trunc.oer', icaBytes.subarray(0, icaBytes.length - 5));
    const r = scms('cert', 'show', f);
    expect(r.status).not.toBe(0);
    // sSig is the last 32 octets: it starts 32 octets before the end of the complete certificate.
    expect(r.stderr).toContain(`Certificate.signature.ecdsaNistP256Signature.sSig at byte ${icaBytes.length - 32}`);
  });

  it('a trailing octet: non-zero exit at the offset just past the certificate', () => {
    const f = writeEncoded(dir, 'trail.hex', Uint8Array.of(...icaBytes, 0), true);
    const r = scms('cert', 'show', f, '--type', 'Certificate');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(new RegExp(`Certificate at byte ${icaBytes.length}\\b.*trailing`));
    const j = scms('cert', 'show', f, '--json');
    expect(j.status).not.toBe(0);
    expect((JSON.parse(j.stdout) as { error: { message: string } }).error.message).toContain(`Certificate at byte ${icaBytes.length}`);
  });

  it('odd hex and missing files are reported', () => {
    const odd = join(dir, 'odd.hex');
    writeEncoded(dir, 'odd.hex', new TextEncoder().encode('abc'));
    const r = scms('cert', 'show', odd);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/odd number of hex digits/);
    expect(scms('cert', 'show', join(dir, 'missing.oer')).stderr).toMatch(/cannot read .*ENOENT/);
  });
});
