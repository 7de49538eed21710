import { createHash } from 'node:crypto';
import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { AUDIT_GENESIS_PREV, appendAudit, hashFiles, verifyAudit } from '../../../src/engine/manager/audit.js';
import { ManualClock } from '../../../src/security/time.js';

let dir: string;
let log: string;
let clock: ManualClock;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'scms-audit-'));
  log = join(dir, 'audit.jsonl');
  clock = new ManualClock('2025-03-01T10:00:00Z');
});

function writeFive(): void {
  for (let k = 1; k <= 5; k++) {
    appendAudit(log, { actor: 'alice', action: `step-${k}`, details: { k } }, clock);
    clock.advance(60_000);
  }
}
const lines = () => readFileSync(log, 'utf8').split('\n').slice(0, -1);
const writeLines = (ls: string[]) => writeFileSync(log, ls.map((l) => l + '\n').join(''));
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

describe('appendAudit', () => {
  it('writes a hash chain with seq, clock time, prev and hash', () => {
    const policy = join(dir, 'global.json');
    writeFileSync(policy, '{"x":1}');
    const e1 = appendAudit(log, { actor: 'alice', action: 'init', details: { region: 840 }, fileHashes: hashFiles([policy]) }, clock);
    clock.advance(1000);
    const e2 = appendAudit(log, { actor: 'bob', action: 'sign-policy' }, clock);

    expect(e1.seq).toBe(1);
    expect(e1.prev).toBe(AUDIT_GENESIS_PREV);
    expect(e1.time).toBe('2025-03-01T10:00:00.000Z');
    expect(e1.fileHashes[policy]).toBe(sha('{"x":1}'));
    expect(e2.seq).toBe(2);
    expect(e2.prev).toBe(e1.hash);
    expect(e2.time).toBe('2025-03-01T10:00:01.000Z');

    // the hash is SHA-256 over the line's JSON without "hash", keys sorted, no whitespace
    const [l1] = lines();
    const parsed = JSON.parse(l1!) as Record<string, unknown>;
    const { hash, ...rest } = parsed;
    const sorted = Object.fromEntries(Object.entries(rest).sort(([a], [b]) => (a < b ? -1 : 1)));
    expect(hash).toBe(sha(JSON.stringify(sorted)));
    expect(l1).toBe(JSON.stringify(Object.fromEntries(Object.entries(parsed).sort(([a], [b]) => (a < b ? -1 : 1)))));

    expect(verifyAudit(log)).toEqual({ ok: true, events: [e1, e2], errors: [] });
  });

  it('never rewrites earlier lines', () => {
    writeFive();
    const before = readFileSync(log, 'utf8');
    appendAudit(log, { actor: 'alice', action: 'more' }, clock);
    expect(readFileSync(log, 'utf8').startsWith(before)).toBe(true);
  });

  it('refuses to continue a log with a truncated or forged tail', () => {
    writeFive();
    appendFileSync(log, '{"seq":6,"ti');
    expect(() => appendAudit(log, { actor: 'a', action: 'b' }, clock)).toThrow(/truncated/);
    const ls = lines();
    ls[4] = ls[4]!.replace('step-5', 'step-X');
    writeLines(ls);
    expect(() => appendAudit(log, { actor: 'a', action: 'b' }, clock)).toThrow(/line 5/);
  });

  it('rejects bad input', () => {
    expect(() => appendAudit(log, { actor: '', action: 'x' }, clock)).toThrow(TypeError);
    expect(() => appendAudit(log, { actor: 'a', action: 'x', fileHashes: { f: 'abc' } }, clock)).toThrow(TypeError);
  });
});

describe('verifyAudit detects tampering and reports the line', () => {
  it('an intact log verifies; an empty log is ok; a missing one is not', () => {
    writeFive();
    const v = verifyAudit(log);
    expect(v.ok).toBe(true);
    expect(v.events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    writeFileSync(join(dir, 'empty'), '');
    expect(verifyAudit(join(dir, 'empty')).ok).toBe(true);
    expect(verifyAudit(join(dir, 'nope')).ok).toBe(false);
  });

  it('a modified line (hash left as it was) is reported at that line', () => {
    writeFive();
    const ls = lines();
    ls[2] = ls[2]!.replace('"actor":"alice"', '"actor":"mallory"');
    writeLines(ls);
    const v = verifyAudit(log);
    expect(v.ok).toBe(false);
    expect(v.errors).toHaveLength(1);
    expect(v.errors[0]!.line).toBe(3);
    expect(v.errors[0]!.reason).toMatch(/modified/);
  });

  it('a modified line with a recomputed hash breaks the chain at the next line', () => {
    writeFive();
    const ls = lines();
    const o = JSON.parse(ls[1]!) as Record<string, unknown>;
    o.actor = 'mallory';
    delete o.hash;
    const sorted = Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1)));
    const h = sha(JSON.stringify(sorted));
    ls[1] = JSON.stringify({ ...sorted, hash: h });
    writeLines(ls);
    const v = verifyAudit(log);
    expect(v.errors.map((e) => e.line)).toEqual([3]);
    expect(v.errors[0]!.reason).toMatch(/prev does not match the hash of line 2/);
  });

  it('a deleted line is reported at the line after the gap', () => {
    writeFive();
    const ls = lines();
    ls.splice(1, 1); // remove seq 2
    writeLines(ls);
    const v = verifyAudit(log);
    expect(v.errors.map((e) => e.line)).toEqual([2]);
    expect(v.errors[0]!.reason).toMatch(/seq 3 after seq 1/);
  });

  it('a deleted first line is reported at line 1', () => {
    writeFive();
    writeLines(lines().slice(1));
    const v = verifyAudit(log);
    expect(v.errors.map((e) => e.line)).toEqual([1]);
    expect(v.errors[0]!.reason).toMatch(/first line/);
  });

  it('swapped lines are reported at both lines', () => {
    writeFive();
    const ls = lines();
    [ls[2], ls[3]] = [ls[3]!, ls[2]!];
    writeLines(ls);
    const v = verifyAudit(log);
    expect(v.errors.map((e) => e.line)).toEqual([3, 4, 5]);
    expect(v.errors[0]!.reason).toMatch(/seq 4 after seq 2/);
    expect(v.errors[1]!.reason).toMatch(/seq 3 after seq 4/);
  });

  it('an inserted line is reported', () => {
    writeFive();
    const ls = lines();
    ls.splice(2, 0, ls[1]!); // duplicate line 2 as line 3
    writeLines(ls);
    const v = verifyAudit(log);
    // line 3 repeats seq 2; line 4 chains onto the copy (same hash), so the break is at line 3 only
    expect(v.errors.map((e) => e.line)).toEqual([3]);
    expect(v.errors[0]!.reason).toMatch(/seq 2 after seq 2/);
  });

  it('a truncated last line is reported with its line number', () => {
    writeFive();
    const text = readFileSync(log, 'utf8');
    writeFileSync(log, text.slice(0, text.length - 20));
    const v = verifyAudit(log);
    expect(v.errors).toEqual([{ line: 5, reason: expect.stringMatching(/truncated/) }]);
    expect(v.events).toHaveLength(4);
  });

  it('a garbage line is reported and the chain resumes after it', () => {
    writeFive();
    const ls = lines();
    ls[1] = 'not json';
    writeLines(ls);
    const v = verifyAudit(log);
    expect(v.errors).toEqual([{ line: 2, reason: 'not valid JSON' }]);
  });

  it('whole lines cut from the end are found with an anchor', () => {
    writeFive();
    const last = verifyAudit(log).events[4]!;
    writeLines(lines().slice(0, 4));
    expect(verifyAudit(log).ok).toBe(true); // undetectable from the file alone
    const v = verifyAudit(log, { anchor: { seq: 5, hash: last.hash } });
    expect(v.ok).toBe(false);
    expect(v.errors[0]!.reason).toMatch(/anchor/);
    expect(verifyAudit(log, { anchor: { seq: 4, hash: last.prev } }).ok).toBe(true);
  });
});
