// LA: pre-linkage values per crypto/linkage.ts, encrypted for one ACA (symmRecipInfo with the delivered key),
// seeds derived from the master secret and never on disk, chain continuity across requests and restarts.
import { existsSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SymmetricEncryptionKey as SymmetricEncryptionKeyCodec } from '../../../src/codec/index.js';
import type { EncryptedIndividualPLV } from '../../../src/codec/gen/Ieee1609Dot2Dot1AcaRaInterface.js';
import { aesCcmDecrypt } from '../../../src/crypto/aesccm.js';
import { toHex } from '../../../src/crypto/bytes.js';
import { nextLinkageSeed, preLinkageValue } from '../../../src/crypto/linkage.js';
import { decryptDataDetailed, symmetricKeyId } from '../../../src/security/encryption.js';
import { verifySignedData } from '../../../src/security/spdu.js';
import { LaError, laIdOctets, type LaService } from '../../../src/engine/la/la.js';
import { hierarchy, laPair, laService, tempSqlite, type Hierarchy, type TempDb } from '../aca/fixtures.js';

let h: Hierarchy;
const dbs: TempDb[] = [];
beforeAll(async () => {
  h = await hierarchy();
});
afterAll(async () => {
  for (const d of dbs) await d.close();
});

/** The ACA's view: open the key delivery with the ACA's encryption key, check the LA signature. */
async function acaKey(la: LaService, aca = h.aca): Promise<Uint8Array> {
  const inner = await decryptDataDetailed(await la.acaKeyDelivery(aca.cert), [{ kind: 'cert', certificate: aca.cert, privateKey: aca.enc!.d }]);
  const v = verifySignedData(inner.data, { resolveSigner: () => la.certificate, expectedPsid: 35 });
  expect(v.ok).toBe(true);
  const k = SymmetricEncryptionKeyCodec.decode((v as { payload: Uint8Array }).payload) as { aes128Ccm: Uint8Array };
  return k.aes128Ccm;
}

function openPlv(key: Uint8Array, e: EncryptedIndividualPLV): Uint8Array {
  const ed = e.encPlv.content.encryptedData;
  expect(ed.recipients).toHaveLength(1);
  const ri = ed.recipients[0] as { symmRecipInfo: { recipientId: Uint8Array; encKey: { aes128ccm: { nonce: Uint8Array; ccmCiphertext: Uint8Array } } } };
  expect(toHex(ri.symmRecipInfo.recipientId)).toBe(toHex(symmetricKeyId(key)));
  const dk = aesCcmDecrypt(key, ri.symmRecipInfo.encKey.aes128ccm.nonce, ri.symmRecipInfo.encKey.aes128ccm.ccmCiphertext);
  const ct = (ed.ciphertext as { aes128ccm: { nonce: Uint8Array; ccmCiphertext: Uint8Array } }).aes128ccm;
  return aesCcmDecrypt(dk, ct.nonce, ct.ccmCiphertext);
}

describe('LaService', () => {
  it('plv(i, j) = crypto/linkage of ls(i), encrypted for the ACA; seeds chain across requests', async () => {
    const d = await tempSqlite('la');
    dbs.push(d);
    const la = await laService(h, 1, d.db);
    const key = await acaKey(la);
    const first = await la.preLinkageValues({ newChain: true, iRange: { first: 100, last: 101 }, jMax: 3, acaCertificate: h.aca.cert });
    expect(first.laId).toBe(1);
    expect(first.plvs.map((p) => `${p.i}/${p.j}`)).toEqual(['100/0', '100/1', '100/2', '101/0', '101/1', '101/2']);
    for (const p of first.plvs) {
      expect(toHex(p.encPlv.laId)).toBe('0001');
      expect(p.encPlv.version).toBe(2);
      const { linkageSeed } = await la.seedsForRevocation(first.chainId, p.i);
      expect(toHex(openPlv(key, p.encPlv))).toBe(toHex(preLinkageValue(laIdOctets(1), linkageSeed, p.j)));
    }
    const ls100 = (await la.seedsForRevocation(first.chainId, 100)).linkageSeed;
    expect(toHex((await la.seedsForRevocation(first.chainId, 101)).linkageSeed)).toBe(toHex(nextLinkageSeed(laIdOctets(1), ls100)));
    // a later request on the same chain continues it
    const later = await la.preLinkageValues({ chainId: first.chainId, iRange: { first: 102, last: 102 }, jMax: 1, acaCertificate: h.aca.cert });
    const ls102 = nextLinkageSeed(laIdOctets(1), nextLinkageSeed(laIdOctets(1), ls100));
    expect(toHex(openPlv(key, later.plvs[0]!.encPlv))).toBe(toHex(preLinkageValue(laIdOctets(1), ls102, 0)));
    // another ACA gets another key
    expect(toHex(await acaKey(la, h.aca2))).not.toBe(toHex(key));
  });

  it('different chains and LAs have independent seeds; unknown chains and i < i0 are refused', async () => {
    const [la1, la2] = await laPair(h, dbs);
    const req = { newChain: true, iRange: { first: 10, last: 10 }, jMax: 1, acaCertificate: h.aca.cert };
    const a = await la1.preLinkageValues(req);
    const b = await la1.preLinkageValues(req);
    const c = await la2.preLinkageValues(req);
    const seeds = await Promise.all([la1.seedsForRevocation(a.chainId, 10), la1.seedsForRevocation(b.chainId, 10), la2.seedsForRevocation(c.chainId, 10)]);
    expect(new Set(seeds.map((s) => toHex(s.linkageSeed))).size).toBe(3);
    await expect(la2.seedsForRevocation(a.chainId, 10)).rejects.toThrow(LaError);
    await expect(la1.seedsForRevocation(a.chainId, 9)).rejects.toThrow(/outside the chain/);
    await expect(la1.preLinkageValues({ ...req, newChain: false, chainId: new Uint8Array(16) })).rejects.toThrow(/unknown linkage chain/);
    await expect(la1.preLinkageValues({ ...req, iRange: { first: 5, last: 4 } })).rejects.toThrow(/bad i range/);
  });

  it('no seed on disk; a restart with the same master secret gives the same seeds, another secret other seeds', async () => {
    const d = await tempSqlite('la');
    dbs.push(d);
    const master = new Uint8Array(randomBytes(32));
    const la = await laService(h, 1, d.db, master);
    const chains = [];
    for (let n = 0; n < 5; n++) chains.push((await la.preLinkageValues({ newChain: true, iRange: { first: 7, last: 8 }, jMax: 2, acaCertificate: h.aca.cert })).chainId);
    const seeds = [];
    for (const c of chains) for (const i of [7, 8]) seeds.push((await la.seedsForRevocation(c, i)).linkageSeed);
    await d.db.destroy();
    const disk = Buffer.concat([d.file, `${d.file}-wal`].filter(existsSync).map((f) => readFileSync(f)));
    expect(disk.length).toBeGreaterThan(0);
    for (const c of chains) expect(disk.indexOf(Buffer.from(c))).toBeGreaterThanOrEqual(0); // the chain ids are stored...
    for (const s of seeds) expect(disk.indexOf(Buffer.from(s))).toBe(-1); // ...the seeds are not

    const { openDatabase } = await import('../../../src/engine/store/index.js');
    const db2 = await openDatabase<any>(`sqlite:${d.file}`);
    d.db = db2;
    const again = await laService(h, 1, db2, master);
    expect(toHex((await again.seedsForRevocation(chains[0]!, 7)).linkageSeed)).toBe(toHex(seeds[0]!));
    const other = await laService(h, 1, db2, new Uint8Array(randomBytes(32)));
    expect(toHex((await other.seedsForRevocation(chains[0]!, 7)).linkageSeed)).not.toBe(toHex(seeds[0]!));
  });
});
