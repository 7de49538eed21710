import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Certificate, EeRaDownloadRequestPlainSpdu, Ieee1609Dot2Data } from '../../src/codec/index.js';
import { bytesToBigInt } from '../../src/crypto/bytes.js';
import { generateKeyPair } from '../../src/crypto/ecdh.js';
import { buildTbsCertificate, issueExplicitCertificate } from '../../src/security/certificate.js';
import { scalarSigner } from '../../src/security/signer.js';
import { signData } from '../../src/security/spdu.js';
import { scms, tempDir, writeEncoded } from './cli-helpers.js';

const vectors = JSON.parse(readFileSync(new URL('../vectors/scms-verified-vectors.json', import.meta.url), 'utf8')) as {
  vectors: { hashedid: { vectors: Array<{ certificate_coer: string }> }; ecqv_implicit_1609dot2: { vectors: Array<{ certificate_coer: string }> } };
};
const fromHex = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

const downloadRequest = EeRaDownloadRequestPlainSpdu.encode({
  protocolVersion: 3,
  content: { unsecuredData: { version: 2, content: { 'ee-ra': { eeRaDownloadRequest: { generationTime: 600000000, filename: 'a1b2c3d4_1.zip' } } } } },
});

async function signedBsmData(): Promise<Uint8Array> {
  const k = generateKeyPair('nistP256');
  const signer = scalarSigner('nistP256', bytesToBigInt(k.privateKey), k.publicKey);
  const cert = await issueExplicitCertificate({
    tbs: buildTbsCertificate({ id: { name: 'obu' }, validity: { start: new Date('2025-01-01T00:00:00Z'), durationSeconds: 3600 }, appPermissions: [{ psid: 0x20 }], verifyKey: k.publicKey }),
    issuer: 'self',
    signer,
  });
  const data = await signData({ payload: new Uint8Array([1, 2, 3, 4]), psid: 0x20, signer, signerId: { certificate: cert } });
  return Ieee1609Dot2Data.encode(data);
}

describe('scms codec decode / encode', () => {
  const dir = tempDir();

  async function cases(): Promise<Array<{ type: string; bytes: Uint8Array }>> {
    return [
      { type: 'Certificate', bytes: fromHex(vectors.vectors.hashedid.vectors[0]!.certificate_coer) },
      { type: 'Ieee1609Dot2.Certificate', bytes: fromHex(vectors.vectors.hashedid.vectors[1]!.certificate_coer) },
      { type: 'Certificate', bytes: fromHex(vectors.vectors.ecqv_implicit_1609dot2.vectors[0]!.certificate_coer) },
      { type: 'EeRaDownloadRequestPlainSpdu', bytes: downloadRequest },
      { type: 'Ieee1609Dot2Data', bytes: await signedBsmData() },
    ];
  }

  it('decode then encode gives the input octets back (raw and hex inputs, stdout hex and --out raw/hex)', async () => {
    for (const [i, c] of (await cases()).entries()) {
      const input = writeEncoded(dir, `in${i}`, c.bytes, i % 2 === 1);
      const d = scms('codec', 'decode', '--type', c.type, input);
      expect(d.status, d.stderr).toBe(0);
      const jsonFile = join(dir, `v${i}.json`);
      writeEncoded(dir, `v${i}.json`, new TextEncoder().encode(d.stdout));
      expect(() => JSON.parse(d.stdout) as unknown).not.toThrow();

      const e = scms('codec', 'encode', '--type', c.type, jsonFile);
      expect(e.status, e.stderr).toBe(0);
      expect(e.stdout.trim()).toBe(hex(c.bytes));

      const rawOut = join(dir, `out${i}.oer`);
      expect(scms('codec', 'encode', '-t', c.type, jsonFile, '--out', rawOut).status).toBe(0);
      expect(hex(new Uint8Array(readFileSync(rawOut)))).toBe(hex(c.bytes));
      const hexOut = join(dir, `out${i}.hex`);
      expect(scms('codec', 'encode', '-t', c.type, jsonFile, '--out', hexOut, '--hex').status).toBe(0);
      expect(readFileSync(hexOut, 'utf8').trim()).toBe(hex(c.bytes));
    }
  }, 240_000); // 24 CLI processes, one after the other

  it('decode --json prints the same JSON as the plain output', () => {
    const f = writeEncoded(dir, 'dl.oer', downloadRequest);
    const a = scms('codec', 'decode', '-t', 'EeRaDownloadRequestPlainSpdu', f);
    const b = scms('codec', 'decode', '-t', 'EeRaDownloadRequestPlainSpdu', f, '--json');
    expect(JSON.parse(b.stdout)).toEqual(JSON.parse(a.stdout));
    expect(JSON.parse(a.stdout)).toMatchObject({
      protocolVersion: 3,
      content: { unsecuredData: { content: { 'ee-ra': { eeRaDownloadRequest: { filename: 'a1b2c3d4_1.zip', generationTime: 600000000 } } } } },
    });
  });

  it('cert show detects the SPDU type and the signed Ieee1609Dot2Data', async () => {
    const f = writeEncoded(dir, 'dl.hex', downloadRequest, true);
    const r = scms('cert', 'show', f, '--json');
    expect(r.status, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { type: string }).type).toBe('Ieee1609Dot2Dot1Protocol.EeRaDownloadRequestPlainSpdu');
    expect(scms('cert', 'show', f).stdout).toMatch(/filename: "a1b2c3d4_1\.zip"/);

    const s = writeEncoded(dir, 'bsm.oer', await signedBsmData());
    const j = JSON.parse(scms('cert', 'show', s, '--json').stdout) as { type: string; hashedId8?: string };
    expect(j.type).toBe('Ieee1609Dot2.Ieee1609Dot2Data');
    expect(j.hashedId8).toBeUndefined();
    const human = scms('cert', 'show', s).stdout;
    expect(human).toMatch(/psid: 0x20 \(BSM/);
    expect(human).toMatch(/signer: certificate/);
  });

  it('a decode error names the path and offset; a JSON error names the component', () => {
    const f = writeEncoded(dir, 'short.oer', downloadRequest.subarray(0, 10));
    const r = scms('codec', 'decode', '-t', 'EeRaDownloadRequestPlainSpdu', f);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/EeRaDownloadRequestPlainSpdu\.[\w.-]+ at byte \d+/);

    const bad = join(dir, 'bad.json');
    writeEncoded(dir, 'bad.json', new TextEncoder().encode(JSON.stringify({ protocolVersion: 3, content: { unsecuredData: { version: 2, content: { 'ee-ra': { eeRaDownloadRequest: { generationTime: -1, filename: 'x' } } } } } })));
    const e = scms('codec', 'encode', '-t', 'EeRaDownloadRequestPlainSpdu', bad);
    expect(e.status).toBe(2);
    expect(e.stderr).toMatch(/generationTime/);
  });

  it('codec types lists the registry', () => {
    const r = scms('codec', 'types', '--json');
    const names = JSON.parse(r.stdout) as string[];
    expect(names).toContain('Ieee1609Dot2.Certificate');
    expect(names).toContain('Ieee1609Dot2Dot1Protocol.EeRaCertRequestSpdu');
    expect(scms('codec', 'types', '--filter', 'ctlsignaturespdu').stdout.trim()).toBe('Ieee1609Dot2Dot1Protocol.CtlSignatureSpdu');
  });

  it('every command has help with examples', () => {
    for (const cmd of [['cert', 'show'], ['cert', 'verify'], ['codec', 'decode'], ['codec', 'encode'], ['codec', 'types']]) {
      const r = scms(...cmd, '--help');
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/EXAMPLES/);
    }
  });
});
