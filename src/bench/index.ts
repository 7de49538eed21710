/**
 * `npm run bench`: one table, measured in one run on one core (this thread): COER encode/decode of a typical
 * implicit pseudonym certificate with the generated codec, the synthetic COER bench (benchCoer), and the crypto
 * operations of src/bench/crypto.ts beside the native (OpenSSL via node:crypto) operations they are built from,
 * the pipeline rows (pipeline.ts) and `scms provision batch` devices/s beside its native-crypto ceiling (provision.ts).
 *
 *   node dist/bench/index.js [--ms N] [--json [FILE]]
 *
 * --ms: measuring time per row (default 1000). --json: also print the numbers as JSON (or write them to FILE).
 */
import { createCipheriv, createECDH } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { Certificate } from '../codec/gen/Ieee1609Dot2.js';
import { bytesToBigInt } from '../crypto/bytes.js';
import { expansionInput } from '../crypto/butterfly.js';
import { curve } from '../crypto/curves.js';
import { generateKeyPair } from '../crypto/ecdh.js';
import { benchCoer } from './coer.js';
import { benchButterfly, benchEcdsa, benchEcies, benchEcqvIssuance, measure, type BenchResult } from './crypto.js';

export interface BenchRow {
  name: string;
  opsPerSecond: number;
  /** Native operation(s) the row is compared with. */
  baseline?: { name: string; opsPerSecond: number };
  /** opsPerSecond / baseline.opsPerSecond */
  ratio?: number;
  target?: string;
  pass?: boolean;
}

const P256 = 'nistP256' as const;

/** A typical implicit pseudonym certificate (1609.2 6.4.3 / 1609.2.1 pseudonym profile) as a codec value. */
export function pseudonymCertificate(): Certificate {
  const fill = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 73 + seed * 29 + 11) & 0xff);
  return {
    version: 3,
    type: 'implicit',
    issuer: { sha256AndDigest: fill(8, 1) },
    toBeSigned: {
      id: { linkageData: { iCert: 1234, 'linkage-value': fill(9, 2) } },
      cracaId: fill(3, 3),
      crlSeries: 4,
      validityPeriod: { start: 662688000, duration: { hours: 168 } },
      region: { identifiedRegion: [{ countryOnly: 840 }] },
      assuranceLevel: Uint8Array.of(0x20),
      appPermissions: [{ psid: 0x20n, ssp: { bitmapSsp: Uint8Array.of(0x01, 0x00, 0x00) } }],
      verifyKeyIndicator: { reconstructionValue: { 'compressed-y-1': fill(32, 4) } },
    },
  };
}

function rowsFrom(results: BenchResult[], pairs: Array<{ ours: string; native: string; label: string; target?: { text: string; minRatio: number } }>): BenchRow[] {
  const find = (prefix: string) => results.find((r) => r.name.startsWith(prefix)) ?? { name: prefix, opsPerSecond: NaN };
  return pairs.map((p) => {
    const o = find(p.ours);
    const n = find(p.native);
    const ratio = o.opsPerSecond / n.opsPerSecond;
    return {
      name: p.label,
      opsPerSecond: o.opsPerSecond,
      baseline: { name: n.name, opsPerSecond: n.opsPerSecond },
      ratio,
      ...(p.target ? { target: p.target.text, pass: ratio >= p.target.minRatio } : {}),
    };
  });
}

/** Native floor of one butterfly cocoon key: AES-128 of the 3 expansion blocks (OpenSSL), mod n, OpenSSL f*G, one point add + encode. */
function nativeCocoon(ms: number): BenchResult {
  const c = curve(P256);
  const A = c.Point.fromBytes(generateKeyPair(P256).publicKey);
  const k = Buffer.alloc(16, 3);
  const x = expansionInput('signing', 1, 0);
  const x0 = bytesToBigInt(x);
  const blocks = Buffer.concat([1n, 2n, 3n].map((d) => Buffer.from((x0 + d).toString(16).padStart(32, '0'), 'hex')));
  return measure('native: AES (3 blocks) + OpenSSL f*G + add', () => {
    const enc = createCipheriv('aes-128-ecb', k, null).setAutoPadding(false).update(blocks);
    for (let i = 0; i < 48; i++) enc[i]! ^= blocks[i]!;
    const f = bytesToBigInt(enc) % c.n;
    const e = createECDH('prime256v1');
    e.setPrivateKey(Buffer.from(f.toString(16).padStart(64, '0'), 'hex'));
    const fG = e.getPublicKey();
    return A.add(c.Point.fromAffine({ x: bytesToBigInt(fG.subarray(1, 33)), y: bytesToBigInt(fG.subarray(33)) })).toBytes(false);
  }, ms);
}

export function runBench(ms = 1000): { rows: BenchRow[]; coer: ReturnType<typeof benchCoer>; certificateBytes: number } {
  const rows: BenchRow[] = [];
  const value = pseudonymCertificate();
  const encoded = Certificate.encode(value);
  let sink = 0;
  const enc = measure('cert encode', () => (sink += Certificate.encode(value).length), ms);
  const dec = measure('cert decode', () => (sink += Certificate.decode(encoded).version), ms);
  const rt = measure('cert encode+decode', () => (sink += Certificate.decode(Certificate.encode(value)).version), ms);
  if (sink < 0) console.log(sink);
  rows.push(
    { name: `pseudonym cert COER encode (${encoded.length} B, generated codec)`, opsPerSecond: enc.opsPerSecond },
    { name: 'pseudonym cert COER decode (strict)', opsPerSecond: dec.opsPerSecond },
    {
      name: 'pseudonym cert COER encode + decode',
      opsPerSecond: rt.opsPerSecond,
      target: '>= 50,000/s',
      pass: rt.opsPerSecond >= 50_000,
    },
  );
  const coer = benchCoer(ms);
  rows.push(
    { name: `benchCoer synthetic cert encode (${coer.bytes} B)`, opsPerSecond: coer.encodePerSec },
    { name: 'benchCoer synthetic cert decode', opsPerSecond: coer.decodePerSec },
    { name: 'benchCoer synthetic cert encode + decode', opsPerSecond: coer.roundTripPerSec },
    { name: 'benchCoer synthetic cert toJson', opsPerSecond: coer.toJsonPerSec },
  );

  const crypto = [...benchEcdsa(ms), ...benchEcqvIssuance(ms), ...benchEcies(ms)];
  rows.push(
    ...rowsFrom(crypto, [
      { label: 'ECDSA P-256 sign', ours: 'ECDSA P-256 sign (ours, x-only)', native: 'ECDSA P-256 sign (node:crypto' },
      { label: 'ECDSA P-256 verify', ours: 'ECDSA P-256 verify (ours)', native: 'ECDSA P-256 verify (node:crypto' },
      { label: 'ECQV issuance', ours: 'ECQV issuance (ours', native: 'ECQV native parts', target: { text: 'within 2x of native', minRatio: 0.5 } },
      { label: 'ECIES key encryption', ours: 'ECIES encrypt key (ours)', native: 'ECIES native parts', target: { text: 'within 2x of native', minRatio: 0.5 } },
    ]),
  );
  const bf = benchButterfly(ms);
  const native = nativeCocoon(ms);
  const single = bf.find((r) => r.name.startsWith('butterfly: one cocoon'))!;
  const perBatch = bf.find((r) => r.name.startsWith('butterfly: cocoons/s in batches'))!;
  const original = bf.find((r) => r.name.startsWith('butterfly: original RA expansion'))!;
  rows.push(
    { name: 'butterfly expansion: one cocoon key', opsPerSecond: single.opsPerSecond, baseline: { name: native.name, opsPerSecond: native.opsPerSecond }, ratio: single.opsPerSecond / native.opsPerSecond },
    { name: 'butterfly expansion: cocoon keys/s, batches of 20', opsPerSecond: perBatch.opsPerSecond, baseline: { name: native.name, opsPerSecond: native.opsPerSecond }, ratio: perBatch.opsPerSecond / native.opsPerSecond },
    { name: 'butterfly: RA expansion, 20 (i,j) sign + enc, per batch', opsPerSecond: original.opsPerSecond },
  );
  return { rows, coer, certificateBytes: encoded.length };
}

const fmt = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '' : Math.round(n).toLocaleString('en-US'));

export function formatTable(rows: BenchRow[]): string {
  const head = ['operation', 'ops/s', 'native ops/s', 'ratio', 'target', ''];
  const body = rows.map((r) => [
    r.name,
    fmt(r.opsPerSecond),
    fmt(r.baseline?.opsPerSecond),
    r.ratio === undefined ? '' : `${r.ratio.toFixed(2)}x`,
    r.target ?? '',
    r.pass === undefined ? '' : r.pass ? 'PASS' : 'MISS',
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 1 || i === 2 || i === 3 ? c.padStart(w[i]!) : c.padEnd(w[i]!))).join('  ').trimEnd();
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...body.map(line)].join('\n');
}

function parseArgs(argv: string[]): { ms: number; json: boolean; jsonFile?: string } {
  let ms = 1000;
  let json = false;
  let jsonFile: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--ms') ms = Number(argv[++i]);
    else if (a.startsWith('--ms=')) ms = Number(a.slice(5));
    else if (a === '--json') {
      json = true;
      if (argv[i + 1] && !argv[i + 1]!.startsWith('--')) jsonFile = argv[++i];
    } else if (a.startsWith('--json=')) {
      json = true;
      jsonFile = a.slice(7);
    } else throw new Error(`unknown option ${a} (use --ms N, --json [FILE])`);
  }
  if (!Number.isFinite(ms) || ms <= 0) throw new Error('--ms needs a positive number');
  return { ms, json, ...(jsonFile ? { jsonFile } : {}) };
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  console.log(`scms bench: one thread, ${opts.ms} ms per row; node ${process.version}; ${cpu} (${availableParallelism()} cores available, 1 used)\n`);
  const { rows, coer, certificateBytes } = runBench(opts.ms);
  rows.push(...(await (await import('./pipeline.js')).benchPipeline(opts.ms)));
  rows.push(...(await (await import('./provision.js')).benchProvision(opts.ms)));
  console.log(formatTable(rows));
  const misses = rows.filter((r) => r.pass === false).map((r) => r.name);
  console.log(`\ntargets: ${misses.length ? `MISS: ${misses.join('; ')}` : 'all PASS'}`);
  if (opts.json) {
    const json = JSON.stringify({ node: process.version, cpu, msPerRow: opts.ms, certificateBytes, coer, rows }, null, 2);
    if (opts.jsonFile) {
      writeFileSync(opts.jsonFile, `${json}\n`);
      console.log(`JSON written to ${opts.jsonFile}`);
    } else console.log(`\n${json}`);
  }
}

if (process.argv[1] && new URL(import.meta.url).pathname === process.argv[1]) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  });
}
