// HashedId8/10/3 (1609.2 6.3.x) against the certificate hashes in scms-verified-vectors.json.
import { describe, expect, it } from 'vitest';
import { hashedId10, hashedId3, hashedId8, sha256, sha384 } from '../../src/crypto/hash.js';
import { hex, readJson, toHex } from './vectors.js';

const verified = readJson('scms-verified-vectors.json');

describe('HashedId', () => {
  const vs = verified.vectors.hashedid.vectors;
  it('has vectors', () => expect(vs.length).toBeGreaterThan(0));
  for (const v of vs) {
    it(v.name, () => {
      const cert = hex(v.certificate_coer);
      expect(toHex(sha256(cert))).toBe(v.sha256);
      expect(toHex(hashedId8(cert))).toBe(v.hashedid8);
      expect(toHex(hashedId10(cert))).toBe(v.hashedid10);
      expect(toHex(hashedId3(cert))).toBe(v.hashedid3);
    });
  }
  it('ECA/ICA issuer digest in the ICA certificate equals HashedId8 of the RCA certificate', () => {
    // The ICA certificate's issuer field (sha256AndDigest) carries HashedId8(RCA): bytes 4..12 of its COER.
    const rca = vs.find((v: any) => v.name === 'pentasecurity_rca');
    const ica = vs.find((v: any) => v.name === 'pentasecurity_ica');
    expect(ica.certificate_coer.slice(8, 24)).toBe(toHex(hashedId8(hex(rca.certificate_coer))));
  });
  it('SHA-384 HashedId8 is the last 8 octets of SHA-384', () => {
    const data = new TextEncoder().encode('abc');
    expect(toHex(hashedId8(data, 'sha384'))).toBe(toHex(sha384(data)).slice(-16));
    expect(toHex(sha384(data))).not.toBe(toHex(sha256(data)));
  });
});
