/**
 * The SCMS Manager's audit log: append-only, hash-chained JSON lines.
 *
 * Each line is the canonical JSON (src/engine/policy/canonical.ts) of one event:
 *   { seq, time, actor, action, details, fileHashes, prev, hash }
 * - seq: 1 for the first event, +1 for each following one;
 * - time: ISO 8601 UTC from the Clock passed to appendAudit;
 * - fileHashes: { path: SHA-256 hex } of the files the action produced or used;
 * - prev: the `hash` of the previous line (64 zeros for the first);
 * - hash: SHA-256 hex of the canonical JSON of the event without `hash`.
 * Any modified, removed, inserted or reordered line breaks the chain at that line; a partly
 * written last line is reported as a truncated tail. Removing whole lines from the end is only
 * detectable against an anchor (a {seq, hash} kept elsewhere): see VerifyOptions.anchor.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { canonicalJson } from '../policy/canonical.js';
import type { Clock } from '../../security/time.js';

export const AUDIT_GENESIS_PREV = '0'.repeat(64);

export interface AuditEvent {
  seq: number;
  time: string;
  actor: string;
  action: string;
  details: Record<string, unknown>;
  fileHashes: Record<string, string>;
  prev: string;
  hash: string;
}

/** What the caller supplies; seq, time, prev and hash are filled in by appendAudit. */
export interface AuditInput {
  actor: string;
  action: string;
  details?: Record<string, unknown>;
  fileHashes?: Record<string, string>;
}

export interface AuditError {
  /** 1-based line number in the file. */
  line: number;
  reason: string;
}

export interface AuditVerification {
  ok: boolean;
  /** The well-formed events, in file order (trust them only when ok). */
  events: AuditEvent[];
  errors: AuditError[];
}

export interface VerifyOptions {
  /** A {seq, hash} recorded elsewhere: the log must contain that event (detects a cut tail). */
  anchor?: { seq: number; hash: string };
}

const HEX64 = /^[0-9a-f]{64}$/;
const EVENT_KEYS = ['action', 'actor', 'details', 'fileHashes', 'hash', 'prev', 'seq', 'time'];

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** SHA-256 over the canonical JSON of the event without its `hash`. */
export function auditEventHash(event: Omit<AuditEvent, 'hash'> | AuditEvent): string {
  const { hash: _ignored, ...rest } = event as AuditEvent;
  return sha256Hex(canonicalJson(rest));
}

/** SHA-256 hex of each file's content, keyed by the path as given. */
export function hashFiles(paths: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of paths) out[p] = sha256Hex(readFileSync(p));
  return out;
}

/**
 * Appends one event and fsyncs it. The existing file is only read, never rewritten; the new
 * line is written with O_APPEND. Refuses (Error) to extend a log whose last line is truncated or
 * does not carry a valid self-hash, so a damaged log is never silently continued.
 */
export function appendAudit(path: string, input: AuditInput, clock: Clock): AuditEvent {
  if (typeof input.actor !== 'string' || input.actor === '') throw new TypeError('audit actor must be a non-empty string');
  if (typeof input.action !== 'string' || input.action === '') throw new TypeError('audit action must be a non-empty string');
  const fileHashes = input.fileHashes ?? {};
  for (const [p, h] of Object.entries(fileHashes)) {
    if (!HEX64.test(h)) throw new TypeError(`fileHashes[${p}] is not a lower-case SHA-256 hex digest`);
  }

  let seq = 1;
  let prev = AUDIT_GENESIS_PREV;
  const isNew = !existsSync(path);
  if (!isNew) {
    const text = readFileSync(path, 'utf8');
    if (text.length > 0) {
      if (!text.endsWith('\n')) throw new Error(`${path}: last line is truncated; run verifyAudit and repair by hand`);
      const lines = text.slice(0, -1).split('\n');
      const last = parseEvent(lines[lines.length - 1]!);
      if (typeof last === 'string' || auditEventHash(last) !== last.hash) {
        throw new Error(`${path}: line ${lines.length} is not a valid audit event; refusing to append`);
      }
      seq = last.seq + 1;
      prev = last.hash;
    }
  }

  const body: Omit<AuditEvent, 'hash'> = {
    seq,
    time: clock.now().toISOString(),
    actor: input.actor,
    action: input.action,
    details: input.details ?? {},
    fileHashes,
    prev,
  };
  const event: AuditEvent = { ...body, hash: auditEventHash(body) };
  const line = canonicalJson(event) + '\n';

  const fd = openSync(path, 'a', 0o600);
  try {
    writeSync(fd, line);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  if (isNew) fsyncDir(dirname(path));
  return event;
}

function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // some platforms cannot fsync a directory; the file itself is synced
  }
}

/** Parses one line into an event, or returns the reason it is not one. */
function parseEvent(line: string): AuditEvent | string {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return 'not valid JSON';
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'not a JSON object';
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o).sort();
  if (keys.join(',') !== EVENT_KEYS.join(',')) return `unexpected fields: ${keys.join(', ')}`;
  if (typeof o.seq !== 'number' || !Number.isInteger(o.seq) || o.seq < 1) return 'seq is not a positive integer';
  if (typeof o.time !== 'string' || Number.isNaN(Date.parse(o.time))) return 'time is not a timestamp';
  if (typeof o.actor !== 'string' || typeof o.action !== 'string') return 'actor/action are not strings';
  if (typeof o.details !== 'object' || o.details === null || Array.isArray(o.details)) return 'details is not an object';
  if (typeof o.fileHashes !== 'object' || o.fileHashes === null || Array.isArray(o.fileHashes)) {
    return 'fileHashes is not an object';
  }
  if (!Object.values(o.fileHashes).every((h) => typeof h === 'string' && HEX64.test(h))) return 'fileHashes has a bad digest';
  if (typeof o.prev !== 'string' || !HEX64.test(o.prev)) return 'prev is not a SHA-256 hex digest';
  if (typeof o.hash !== 'string' || !HEX64.test(o.hash)) return 'hash is not a SHA-256 hex digest';
  return o as unknown as AuditEvent;
}

/**
 * Verifies the whole chain. Each line is checked against its own hash and against the line
 * before it (seq + 1, prev = its hash), so a change is reported at the line where the chain
 * breaks: a modified line at that line; a removed line at the line after the gap; an inserted
 * or reordered line at that line (and at the line that follows it).
 */
export function verifyAudit(path: string, opts: VerifyOptions = {}): AuditVerification {
  const errors: AuditError[] = [];
  const events: AuditEvent[] = [];
  if (!existsSync(path)) return { ok: false, events, errors: [{ line: 0, reason: 'audit log does not exist' }] };
  const text = readFileSync(path, 'utf8');
  if (text.length === 0) return finish(events, errors, opts);

  const truncated = !text.endsWith('\n');
  const lines = (truncated ? text : text.slice(0, -1)).split('\n');
  let prevEvent: AuditEvent | undefined; // undefined after a line that is not an event
  const lineOf = new Map<AuditEvent, number>();

  lines.forEach((line, idx) => {
    const n = idx + 1;
    const isLast = n === lines.length;
    if (isLast && truncated) {
      errors.push({ line: n, reason: 'truncated last line (no terminating newline)' });
      return;
    }
    const ev = parseEvent(line);
    if (typeof ev === 'string') {
      errors.push({ line: n, reason: ev });
      prevEvent = undefined;
      return;
    }
    events.push(ev);
    lineOf.set(ev, n);
    const reasons: string[] = [];
    if (auditEventHash(ev) !== ev.hash) reasons.push('hash does not match the content (line modified)');
    if (n === 1) {
      if (ev.seq !== 1) reasons.push(`seq ${ev.seq} on the first line, expected 1 (lines removed at the start?)`);
      if (ev.prev !== AUDIT_GENESIS_PREV) reasons.push('prev of the first line is not the genesis value');
    } else if (prevEvent !== undefined) {
      if (ev.seq !== prevEvent.seq + 1) {
        reasons.push(`seq ${ev.seq} after seq ${prevEvent.seq} (line removed, inserted or reordered)`);
      }
      if (ev.prev !== prevEvent.hash) reasons.push(`prev does not match the hash of line ${n - 1}`);
    }
    if (reasons.length) errors.push({ line: n, reason: reasons.join('; ') });
    prevEvent = ev;
  });

  return finish(events, errors, opts, lineOf);
}

function finish(
  events: AuditEvent[],
  errors: AuditError[],
  opts: VerifyOptions,
  lineOf: Map<AuditEvent, number> = new Map(),
): AuditVerification {
  if (opts.anchor) {
    const a = opts.anchor;
    const found = events.find((e) => e.seq === a.seq);
    if (!found) errors.push({ line: 0, reason: `anchor event seq ${a.seq} is missing (log cut short?)` });
    else if (found.hash !== a.hash) errors.push({ line: lineOf.get(found) ?? 0, reason: `event seq ${a.seq} differs from the anchor` });
  }
  return { ok: errors.length === 0, events, errors };
}
