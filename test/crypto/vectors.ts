// Readers for the published vector files in test/vectors/ (values are read, never retyped).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const VECTORS = join(dirname(fileURLToPath(import.meta.url)), '..', 'vectors');

export function readJson<T = any>(name: string): T {
  return JSON.parse(readFileSync(join(VECTORS, name), 'utf8')) as T;
}

export function hex(h: string): Uint8Array {
  const s = h.replace(/^0x/i, '');
  if (s.length % 2 !== 0) throw new Error(`odd hex: ${h}`);
  return new Uint8Array(Buffer.from(s, 'hex'));
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

export interface CampEntry {
  /** Label text before the first " =" or ":" (e.g. "ls1(0)", "f_k(x)", "kU", "A"). */
  readonly key: string;
  /** Hex value (lower case, no 0x); for "[0x..L], [0x..L]" points: "04" || x || y (32-byte coordinates). */
  readonly hex: string;
  /** For "dl = N octets" lines. */
  readonly num?: number;
}

export interface CampBlock {
  readonly title: string;
  readonly entries: CampEntry[];
  /** First entry whose key equals `key` (throws when absent). */
  get(key: string): CampEntry;
  has(key: string): boolean;
}

function keyOf(label: string): string {
  const t = label.trim();
  const a = t.indexOf(' =');
  const b = t.indexOf(':');
  const cut = [a, b].filter((i) => i >= 0).sort((x, y) => x - y)[0];
  return (cut === undefined ? t : t.slice(0, cut)).trim();
}

function block(title: string): CampBlock {
  const entries: CampEntry[] = [];
  return {
    title,
    entries,
    get(key: string) {
      const e = entries.find((x) => x.key === key);
      if (!e) throw new Error(`${title}: no entry "${key}" (have: ${entries.map((x) => x.key).join(', ')})`);
      return e;
    },
    has(key: string) {
      return entries.some((x) => x.key === key);
    },
  };
}

/**
 * Parse a CAMP crypto-test-vectors .txt file into blocks. A new block starts at "Test Vector #n:", "i = n"
 * or "Expanding ..." lines. Values are "NAME = 0xHEX" lines, lone "0xHEX" lines (labelled by the preceding text
 * line) and "[0xXL], [0xYL]" point lines. C-array dumps ("{ 0x.., ... }", "[be] name[16] =") are skipped.
 */
export function readCamp(name: string): CampBlock[] {
  const text = readFileSync(join(VECTORS, 'camp-crypto-test-vectors', name), 'utf8');
  const blocks: CampBlock[] = [block('preamble')];
  let label = '';
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    const cur = blocks[blocks.length - 1]!;
    if (line === '' || /^[=-]+$/.test(line)) continue;
    if (/^(Test Vector #\d+:|i = \d+$|Expanding )/.test(line)) {
      blocks.push(block(line));
      continue;
    }
    if (line.startsWith('{') || line.startsWith('0x') && line.includes(',') || /^(\[[bl]e\] )?\w+\[\d*\] =/.test(line) || /^\[[bl]e\]/.test(line)) continue;
    let m: RegExpMatchArray | null;
    if ((m = line.match(/^(\w+) = 0x([0-9a-fA-F]+)$/))) {
      cur.entries.push({ key: m[1]!, hex: m[2]!.toLowerCase() });
    } else if ((m = line.match(/^(\w+) = ""$/))) {
      cur.entries.push({ key: m[1]!, hex: '' });
    } else if ((m = line.match(/^(\w+) = (\d+) octets$/))) {
      cur.entries.push({ key: m[1]!, hex: '', num: Number(m[2]) });
    } else if ((m = line.match(/^0x([0-9a-fA-F]+)$/))) {
      cur.entries.push({ key: keyOf(label), hex: m[1]!.toLowerCase() });
    } else if ((m = line.match(/^\[0x([0-9a-fA-F]+)L\], \[0x([0-9a-fA-F]+)L\]$/))) {
      cur.entries.push({ key: keyOf(label), hex: '04' + m[1]!.padStart(64, '0') + m[2]!.padStart(64, '0') });
    } else {
      label = line;
    }
  }
  return blocks;
}

/** Blocks titled "Test Vector #n:" only. */
export function campVectors(name: string): CampBlock[] {
  return readCamp(name).filter((b) => b.title.startsWith('Test Vector'));
}
