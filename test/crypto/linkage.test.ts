// Linkage values (1609.2.1 / CAMP): lv.txt, glv.txt and the re-checked values in scms-verified-vectors.json.
import { describe, expect, it } from 'vitest';
import {
  encryptedIndex,
  groupPreLinkageValue,
  linkageSeedAt,
  linkageValue,
  nextLinkageSeed,
  preLinkageValue,
  preLinkageValues,
} from '../../src/crypto/linkage.js';
import { hex, readCamp, readJson, toHex } from './vectors.js';

const num = (h: string) => parseInt(h, 16);

describe('CAMP lv.txt', () => {
  const blocks = readCamp('lv.txt');
  const la1 = hex(blocks[0]!.get('LA1 ID (16 bits)').hex);
  const la2 = hex(blocks[0]!.get('LA2 ID (16 bits)').hex);
  const iBlocks = blocks.filter((b) => /^i = \d+$/.test(b.title));
  it('has i = 0 and i = 1', () => expect(iBlocks.map((b) => b.title)).toEqual(['i = 0', 'i = 1']));
  const ls1_0 = hex(iBlocks[0]!.get('ls1(0)').hex);
  const ls2_0 = hex(iBlocks[0]!.get('ls2(0)').hex);
  for (const b of iBlocks) {
    const i = Number(b.title.slice(4));
    it(`i = ${i}: seeds, plv1, plv2, lv`, () => {
      const j = num(b.get('j (in range [1,20], padded to 32 bits)').hex);
      const ls1 = linkageSeedAt(la1, ls1_0, i);
      const ls2 = linkageSeedAt(la2, ls2_0, i);
      expect(toHex(ls1)).toBe(b.get(`ls1(${i})`).hex);
      expect(toHex(ls2)).toBe(b.get(`ls2(${i})`).hex);
      const plv1 = preLinkageValue(la1, ls1, j);
      const plv2 = preLinkageValue(la2, ls2, j);
      expect(toHex(plv1)).toBe(b.get(`plv1(${i},j)`).hex);
      expect(toHex(plv2)).toBe(b.get(`plv2(${i},j)`).hex);
      expect(toHex(linkageValue(plv1, plv2))).toBe(b.get(`lv(${i},j)`).hex);
    });
  }
  it('i = 1: the SHA-256 step output starts with ls(1)', () => {
    const b = iBlocks[1]!;
    const outs = b.entries.filter((e) => e.key.startsWith('SHA-256 output'));
    expect(outs.length).toBe(2);
    expect(outs[0]!.hex.slice(0, 32)).toBe(toHex(nextLinkageSeed(la1, ls1_0)));
    expect(outs[1]!.hex.slice(0, 32)).toBe(toHex(nextLinkageSeed(la2, ls2_0)));
  });
});

describe('scms-verified-vectors.json linkage_value_camp', () => {
  const c = readJson('scms-verified-vectors.json').vectors.linkage_value_camp.checked;
  it('lv(0, j), ls1(1), plv1(1, 6)', () => {
    const la1 = hex(c.la1_id);
    const la2 = hex(c.la2_id);
    const plv1 = preLinkageValue(la1, hex(c.ls1_0), c.i0_j);
    const plv2 = preLinkageValue(la2, hex(c.ls2_0), c.i0_j);
    expect(toHex(plv1)).toBe(c.plv1);
    expect(toHex(plv2)).toBe(c.plv2);
    expect(toHex(linkageValue(plv1, plv2))).toBe(c.lv_0_8);
    expect(toHex(nextLinkageSeed(la1, hex(c.ls1_0)))).toBe(c.ls1_1);
    expect(toHex(preLinkageValue(la1, hex(c.ls1_1), 6))).toBe(c.plv1_1_6);
  });
});

describe('CAMP glv.txt', () => {
  const blocks = readCamp('glv.txt');
  const pre = blocks[0]!;
  const la1 = hex(pre.get('LA1 ID (16 bits)').hex);
  const la2 = hex(pre.get('LA2 ID (16 bits)').hex);
  const k = num(pre.get('k').hex);
  const ik = hex(pre.get('ik').hex);
  const iBlocks = blocks.filter((b) => /^i = \d+$/.test(b.title));
  it('has i = 0 and i = 1', () => expect(iBlocks.length).toBe(2));
  const gs1_0 = hex(iBlocks[0]!.get('gs1(0)').hex);
  const gs2_0 = hex(iBlocks[0]!.get('gs2(0)').hex);
  for (const b of iBlocks) {
    const i = Number(b.title.slice(4));
    it(`i = ${i}: gs, gplv1, gplv2, glv, ei(j, k)`, () => {
      const j = num(b.get('j (32 bits)').hex);
      const gs1 = linkageSeedAt(la1, gs1_0, i);
      const gs2 = linkageSeedAt(la2, gs2_0, i);
      expect(toHex(gs1)).toBe(b.get(`gs1(${i})`).hex);
      expect(toHex(gs2)).toBe(b.get(`gs2(${i})`).hex);
      const g1 = groupPreLinkageValue(la1, gs1, j);
      const g2 = groupPreLinkageValue(la2, gs2, j);
      expect(toHex(g1)).toBe(b.get(`gplv1(${i},j)`).hex);
      expect(toHex(g2)).toBe(b.get(`gplv2(${i},j)`).hex);
      expect(toHex(linkageValue(g1, g2))).toBe(b.get(`glv(${i},j)`).hex);
      expect(toHex(encryptedIndex(ik, j, k))).toBe(b.get('ei(j,k)').hex);
    });
  }
});

describe('linkage batching and input checks', () => {
  it('preLinkageValues equals per-j preLinkageValue', () => {
    const la = hex('1234');
    const ls = hex('000102030405060708090a0b0c0d0e0f');
    const js = [0, 1, 2, 19, 0xffffffff];
    const batch = preLinkageValues(la, ls, js);
    js.forEach((j, n) => expect(toHex(batch[n]!)).toBe(toHex(preLinkageValue(la, ls, j))));
    expect(new Set(batch.map(toHex)).size).toBe(js.length);
  });
  it('rejects wrong sizes', () => {
    expect(() => preLinkageValue(hex('12'), new Uint8Array(16), 1)).toThrow();
    expect(() => nextLinkageSeed(hex('1234'), new Uint8Array(15))).toThrow();
    expect(() => linkageValue(new Uint8Array(9))).toThrow();
  });
});
