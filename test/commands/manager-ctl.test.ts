// CLI tests: `node bin/run.js manager ctl ...` and `manager audit verify` as real processes, after `npx tsc -p .`
// (dist/). The trust directory comes from `manager init`; the extra root is made here with its own soft key.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Certificate } from '../../src/codec/gen/Ieee1609Dot2.js';
import { party, tempDir } from '../engine/manager/ctl-fixtures.js';

const bin = new URL('../../bin/run.js', import.meta.url).pathname;
const PASS = 'ctl cli passphrase';

function run(args: string[], opts: { env?: Record<string, string | undefined>; cwd?: string } = {}) {
  return spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    env: { ...process.env, SCMS_KEYSTORE_PASSPHRASE: PASS, ...opts.env },
    cwd: opts.cwd,
    timeout: 120_000,
  });
}

let base: string;
let dir: string;
let newRootFile: string;

beforeAll(async () => {
  base = tempDir('scms-cli-ctl-');
  dir = join(base, 'scms');
  const init = run(['manager', 'init', '--yes', '--dir', dir, '--electors', '3', '--quorum', '2']);
  expect(init.status, init.stderr).toBe(0);
  const keys = join(base, 'other-keys');
  mkdirSync(keys);
  const root2 = await party(keys, 'root-2');
  newRootFile = join(base, 'root-2.oer');
  writeFileSync(newRootFile, Certificate.encode(root2.cert));
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

describe('scms manager ctl (CLI)', () => {
  it('add-root -> two electors sign separately -> assemble -> verify', () => {
    const add = run(['manager', 'ctl', 'add-root', '--dir', dir, '--cert', newRootFile, '--json']);
    expect(add.status, add.stderr).toBe(0);
    const ballot = JSON.parse(add.stdout) as { ballotDir: string; summary: { sequenceNumber: number; needed: number; maySign: string[]; changes: string[] } };
    expect(ballot.summary.sequenceNumber).toBe(2);
    expect(ballot.summary.needed).toBe(2);
    expect(ballot.summary.maySign).toEqual(['elector-1', 'elector-2', 'elector-3']);
    expect(ballot.summary.changes).toEqual([expect.stringMatching(/^add root CA root-2 /)]);
    expect(ballot.ballotDir).toBe(join(dir, 'trust', 'ctl', 'ballot-2'));

    // Elector 1 signs a copy of the ballot elsewhere, by key URI only (certificate found by its key in the ballot;
    // key base directory = the working directory), and sends the signature back.
    const away = join(base, 'elector-1-site');
    cpSync(ballot.ballotDir, away, { recursive: true });
    const s1 = run(['manager', 'ctl', 'sign', '--elector', 'file:keys/elector-1.key', away], { cwd: dir });
    expect(s1.status, s1.stderr).toBe(0);
    expect(s1.stdout).toMatch(/elector-1 signed CTL [0-9a-f]{16} sequence 2/);
    cpSync(join(away, 'signature-elector-1.oer'), join(ballot.ballotDir, 'signature-elector-1.oer'));

    // One signature: short of the quorum, non-zero exit, clear message, nothing written.
    const short = run(['manager', 'ctl', 'assemble', '--dir', dir, ballot.ballotDir]);
    expect(short.status).toBe(1);
    expect(short.stderr).toMatch(/2 of 3 signatures needed, have 1: missing elector-2, elector-3/);
    expect(readdirSync(join(dir, 'trust', 'ctl')).filter((f) => f.endsWith('.oer'))).toHaveLength(1);

    // Elector 2 signs by name in the trust directory.
    const s2 = run(['manager', 'ctl', 'sign', '--dir', dir, '--elector', 'elector-2', ballot.ballotDir]);
    expect(s2.status, s2.stderr).toBe(0);

    const asm = run(['manager', 'ctl', 'assemble', '--dir', dir, ballot.ballotDir, '--json']);
    expect(asm.status, asm.stderr).toBe(0);
    const out = JSON.parse(asm.stdout) as { ctlFile: string; sequenceNumber: number; signers: string[]; ccfUpdated: boolean };
    expect(out.sequenceNumber).toBe(2);
    expect(out.signers).toEqual(['elector-1', 'elector-2']);
    expect(out.ccfUpdated).toBe(true);
    expect(existsSync(out.ctlFile)).toBe(true);

    const show = run(['manager', 'ctl', 'show', out.ctlFile, '--json']);
    expect(show.status, show.stderr).toBe(0);
    const view = JSON.parse(show.stdout) as { rootCaApprove: Array<{ certificate?: string }>; signatures: Array<{ signer: string }> };
    expect(view.rootCaApprove.map((r) => r.certificate)).toEqual(['root', 'root-2']);
    expect(view.signatures.map((s) => s.signer)).toEqual(['elector-1', 'elector-2']);

    const ver = run(['manager', 'ctl', 'verify', '--dir', dir, '--json']);
    expect(ver.status, ver.stdout + ver.stderr).toBe(0);
    const v = JSON.parse(ver.stdout) as { ok: boolean; ctls: Array<{ sequenceNumber: number; roots: string[] }> };
    expect(v.ok).toBe(true);
    expect(v.ctls.map((c) => [c.sequenceNumber, c.roots])).toEqual([
      [1, ['root']],
      [2, ['root', 'root-2']],
    ]);
    // The whole directory (CCF homeCtl, manifest hashes, audit chain) still verifies.
    const all = run(['manager', 'verify', dir]);
    expect(all.status, all.stdout + all.stderr).toBe(0);
    // The audit log records the ballot and the assembly.
    const actions = readFileSync(join(dir, 'audit.log'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { action: string }).action);
    expect(actions.slice(-2)).toEqual(['ctl.ballot', 'ctl.assemble']);
  });

  it('remove-elector: the removed elector signature does not count', () => {
    const rm = run(['manager', 'ctl', 'remove-elector', '--dir', dir, '--cert', 'elector-3', '--json']);
    expect(rm.status, rm.stderr).toBe(0);
    const ballot = JSON.parse(rm.stdout) as { ballotDir: string; summary: { maySign: string[]; needed: number } };
    expect(ballot.summary.maySign).toEqual(['elector-1', 'elector-2']);
    for (const e of ['elector-3', 'elector-1']) expect(run(['manager', 'ctl', 'sign', '--dir', dir, '--elector', e, ballot.ballotDir]).status).toBe(0);
    const short = run(['manager', 'ctl', 'assemble', '--dir', dir, ballot.ballotDir]);
    expect(short.status).toBe(1);
    expect(short.stderr).toMatch(/2 of 2 signatures needed, have 1: missing elector-2/);
    expect(short.stderr).toMatch(/elector-3, an elector this CTL removes/);
  });

  it('ctl verify: a tampered CTL exits 1 naming the problem', () => {
    const ctlDir = join(dir, 'trust', 'ctl');
    const files = readdirSync(ctlDir).filter((f) => /^ctl_.*\.oer$/.test(f)).sort().map((f) => join(ctlDir, f));
    expect(files).toHaveLength(2);
    const bad = join(base, 'tampered.oer');
    const b = readFileSync(files[1]!);
    // In the FullIeeeTbsCtl, ctlSeriesId (8) and sequenceNumber (2) are followed by effectiveDate (Time32): flip
    // its last octet.
    const series = /ctl_([0-9a-f]{16})_2\.oer$/.exec(files[1]!)![1]!;
    const at = b.indexOf(Buffer.from(`${series}0002`, 'hex'));
    expect(at).toBeGreaterThan(0);
    b[at + 10 + 3]! ^= 0x01;
    writeFileSync(bad, b);
    const r = run(['manager', 'ctl', 'verify', files[0]!, bad]);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/file 2: CTL [0-9a-f]{16} #2: signature #1 by elector-1 is over a different tbsCtl \(tbsCtlHash mismatch/);
    expect(r.stdout).toMatch(/quorum not met: 2 of 3 electors of the previous CTL needed, 0 valid signature/);
    const good = run(['manager', 'ctl', 'verify', ...files]);
    expect(good.status, good.stdout).toBe(0);
  });

  it('audit verify: ok, then a modified line exits 1 naming the line', () => {
    const ok = run(['manager', 'audit', 'verify', '--dir', dir]);
    expect(ok.status, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/chain intact/);
    const log = join(dir, 'audit.log');
    const lines = readFileSync(log, 'utf8').split('\n');
    lines[2] = lines[2]!.replace('"action":"', '"action":"x');
    writeFileSync(log, lines.join('\n'));
    const bad = run(['manager', 'audit', 'verify', '--dir', dir]);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(/audit\.log:3: hash does not match the content/);
    const json = run(['manager', 'audit', 'verify', '--dir', dir, '--json']);
    expect(json.status).toBe(1);
    expect((JSON.parse(json.stdout) as { errors: Array<{ line: number }> }).errors.map((e) => e.line)).toEqual([3]);
  });

  it('every ctl command has --help with examples', () => {
    for (const c of ['add-root', 'remove-root', 'add-elector', 'remove-elector', 'sign', 'assemble', 'show', 'verify']) {
      const h = run(['manager', 'ctl', c, '--help']);
      expect(h.status, c).toBe(0);
      expect(h.stdout, c).toMatch(/EXAMPLES/);
    }
    expect(run(['manager', 'audit', 'verify', '--help']).stdout).toMatch(/EXAMPLES/);
  });
});
