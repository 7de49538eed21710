// `scms crl show|verify` (the built CLI as a process) on CRLs signed with the CRL signer of a trust directory.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from '../../src/crypto/bytes.js';
import { randomOctets } from '../../src/crypto/random.js';
import { initTrustDir, openStores } from '../../src/engine/manager/init.js';
import { loadTrustDir } from '../../src/engine/manager/trust-dir.js';
import { certificateHashedId10, certificateHashedId8 } from '../../src/security/certificate.js';
import { individualLinkageGroups, signCrl } from '../../src/security/crl.js';
import { keyStoreSigner } from '../../src/security/signer.js';
import { dateToTime32, ManualClock } from '../../src/security/time.js';
import { scms, tempDir, writeEncoded } from './cli-helpers.js';

const PASS = 'crl cli test passphrase';
const NOW = new Date(Date.now() - 3600_000);

describe('scms crl show | verify', () => {
  const dir = tempDir();
  const trustDir = join(dir, 'scms');
  let hashFile: string;
  let linkedFile: string;
  let craca: string;
  let raHashedId10: string;
  const seed1 = randomOctets(16);
  let closeStores: () => Promise<void>;

  beforeAll(async () => {
    await initTrustDir({ dir: trustDir, keystore: 'file', keyStoreOptions: { passphrase: PASS, scrypt: { N: 1024 } }, electors: 1, quorum: 1, clock: new ManualClock(NOW.getTime() - 86_400_000) });
    const trust = loadTrustDir(trustDir);
    const stores = openStores(trustDir, { passphrase: PASS });
    closeStores = () => stores.close();
    const c = trust.byName.get('crl-signer')!;
    const signer = keyStoreSigner(stores, await stores.open(c.keyUri));
    const ica = trust.byName.get(c.issuer)!.certificate!;
    craca = toHex(certificateHashedId8(ica));
    const ra = trust.byName.get('ra')!.certificate!;
    raHashedId10 = toHex(certificateHashedId10(ra));
    const issueDate = dateToTime32(NOW);
    const base = { version: 1, crlSeries: 1, crlCraca: certificateHashedId8(ica), issueDate, nextCrl: issueDate + 7 * 86_400, priorityInfo: {} };
    const hash = await signCrl({ contents: { ...base, typeSpecific: { fullHashCrl: { crlSerial: 3, entries: [{ id: certificateHashedId10(ra), expiry: issueDate + 86_400 }] } } }, signer, certificate: c.certificate! });
    const linked = await signCrl({
      contents: {
        ...base,
        typeSpecific: { fullLinkedCrl: { iRev: 7, indexWithinI: 1, individual: individualLinkageGroups([{ la1Id: Uint8Array.of(0, 1), la2Id: Uint8Array.of(0, 2), linkageSeed1: seed1, linkageSeed2: randomOctets(16), jmax: 20, iMax: 65535 }]) } },
      },
      signer,
      certificate: c.certificate!,
    });
    hashFile = writeEncoded(dir, 'hash.oer', hash);
    linkedFile = writeEncoded(dir, 'linked.hex', linked, true);
  }, 120_000);
  afterAll(async () => {
    await closeStores?.();
  });

  it('show --json: kind, series, craca, counters and entries', () => {
    const h = scms('crl', 'show', hashFile, '--json');
    expect(h.status, h.stderr).toBe(0);
    const hj = JSON.parse(h.stdout);
    expect(hj).toMatchObject({ kind: 'fullHashCrl', crlSeries: 1, crlCraca: craca, crlSerial: 3, hashEntries: [{ id: raHashedId10 }] });
    const l = scms('crl', 'show', linkedFile, '--json');
    expect(l.status, l.stderr).toBe(0);
    const lj = JSON.parse(l.stdout);
    expect(lj).toMatchObject({ kind: 'fullLinkedCrl', iRev: 7, indexWithinI: 1, linkageEntries: [{ jmax: 20, la1Id: '0001', la2Id: '0002', iMax: 65535, linkageSeed1: toHex(seed1) }] });
    const human = scms('crl', 'show', linkedFile);
    expect(human.status).toBe(0);
    expect(human.stdout).toMatch(/fullLinkedCrl/);
  });

  it('verify: valid (exit 0); tampered -> signature (exit 1); past nextCrl -> time (exit 1); not a CRL -> exit 2', () => {
    const ok = scms('crl', 'verify', hashFile, '--trust', trustDir, '--json');
    expect(ok.status, ok.stdout + ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ valid: true, crl: { kind: 'fullHashCrl' } });

    const bytes = readFileSync(hashFile);
    const t = Buffer.from(bytes);
    t[t.length - 3]! ^= 0x40;
    const bad = scms('crl', 'verify', writeEncoded(dir, 'bad.oer', t), '--trust', trustDir, '--json');
    expect(bad.status).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ valid: false });

    const late = scms('crl', 'verify', linkedFile, '--trust', trustDir, '--at', new Date(NOW.getTime() + 8 * 86_400_000).toISOString(), '--json');
    expect(late.status).toBe(1);
    expect(JSON.parse(late.stdout)).toMatchObject({ valid: false, refusal: 'time' });

    const junk = scms('crl', 'show', writeEncoded(dir, 'junk.oer', Uint8Array.of(1, 2, 3)));
    expect(junk.status).toBe(2);
  });
});
