/**
 * Human-readable tree of any codec value, driven by its schema: hex for octets, names for enumerations and
 * CHOICE alternatives, PSIDs by name, Time32/Time64 as ISO dates, validity periods as start/end.
 */
import chalk from 'chalk';
import type { ChoiceSchema, FieldSchema, Schema, SequenceSchema } from '../codec/schema.js';
import { time32ToDate, time64ToDate, validityPeriodEndTime64, type ValidityPeriod } from '../security/time.js';
import { bytesToHex } from './input.js';
import { psidLabel } from './psid-names.js';

type Node =
  | { kind: 'scalar'; text: string; /** CHOICE alternatives leading to the value ("verificationKey.ecdsaNistP256"). */ via?: string }
  | { kind: 'tree'; children: Array<{ label: string; node: Node }>; via?: string; summary?: string };

const c = {
  label: (s: string) => chalk.cyan(s),
  hex: (s: string) => chalk.yellow(s),
  name: (s: string) => chalk.green(s),
  date: (s: string) => chalk.magenta(s),
  dim: (s: string) => chalk.dim(s),
};

/** Follows refs; returns the final schema and every type name met on the way (outermost first). */
function resolve(schema: Schema): { schema: Schema; names: string[] } {
  const names: string[] = [];
  let s = schema;
  for (;;) {
    if (s.name) names.push(s.name);
    if (s.kind !== 'ref') return { schema: s, names };
    s = s.target();
  }
}

function iso(d: Date): string {
  return d.toISOString().replace('.000Z', 'Z');
}

function time32Text(t: number): string {
  try {
    return `${c.date(iso(time32ToDate(t)))} ${c.dim(`(Time32 ${t})`)}`;
  } catch {
    return String(t);
  }
}

function isBytes(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array;
}

function scalar(text: string): Node {
  return { kind: 'scalar', text };
}

function fieldList(s: SequenceSchema): FieldSchema[] {
  const out = [...s.fields];
  for (const e of s.extensions ?? []) {
    if ('group' in e) out.push(...e.group);
    else out.push(e);
  }
  return out;
}

function sameId(a: unknown, b: unknown): boolean {
  if (typeof a === 'bigint' || typeof b === 'bigint') {
    try {
      return BigInt(a as number) === BigInt(b as number);
    } catch {
      return false;
    }
  }
  if (isBytes(a) && isBytes(b)) return bytesToHex(a) === bytesToHex(b);
  return a === b;
}

function validityNode(v: ValidityPeriod): Node {
  const children: Array<{ label: string; node: Node }> = [{ label: 'start', node: scalar(time32Text(v.start)) }];
  const [unit, n] = Object.entries(v.duration)[0] ?? ['?', '?'];
  try {
    children.push({ label: 'end', node: scalar(c.date(iso(time64ToDate(validityPeriodEndTime64(v))))) });
  } catch {
    /* end beyond the Date range: duration alone */
  }
  children.push({ label: 'duration', node: scalar(`${String(n)} ${c.name(unit)}`) });
  return { kind: 'tree', children };
}

function render(value: unknown, schema: Schema, siblings?: Record<string, unknown>): Node {
  const { schema: s, names } = resolve(schema);
  if (names.includes('ValidityPeriod') && value && typeof value === 'object') return validityNode(value as ValidityPeriod);
  if (names.includes('Time32') && typeof value === 'number') return scalar(time32Text(value));
  if (names.includes('Time64') && typeof value === 'bigint') {
    try {
      return scalar(`${c.date(time64ToDate(value).toISOString())} ${c.dim(`(Time64 ${value})`)}`);
    } catch {
      return scalar(String(value));
    }
  }
  if (names.includes('Psid') && (typeof value === 'bigint' || typeof value === 'number')) return scalar(psidLabel(value));
  if ((names.includes('Latitude') || names.includes('Longitude')) && typeof value === 'number') {
    return scalar(`${value} ${c.dim(`(${(value / 1e7).toFixed(7)}°)`)}`);
  }
  switch (s.kind) {
    case 'boolean':
    case 'integer':
      return scalar(String(value));
    case 'null':
      return scalar(c.dim('null'));
    case 'enumerated':
      return scalar(typeof value === 'string' ? c.name(value) : `${String(value)} ${c.dim('(unknown enumeration)')}`);
    case 'charString':
      return scalar(JSON.stringify(value));
    case 'bitString': {
      const bits = String(value);
      const set = Object.entries(s.namedBits ?? {})
        .filter(([, i]) => bits[i] === '1')
        .map(([n]) => n);
      return scalar(set.length ? `${bits} ${c.dim(`(${set.join(', ')})`)}` : bits);
    }
    case 'octetString':
      if (isBytes(value)) return scalar(value.length === 0 ? c.dim('(empty)') : c.hex(bytesToHex(value)));
      if (s.containing) return render(value, s.containing);
      return scalar(String(value));
    case 'sequenceOf': {
      const items = Array.isArray(value) ? value : [];
      if (items.length === 0) return scalar(c.dim('(empty)'));
      return { kind: 'tree', children: items.map((v, i) => ({ label: `[${i}]`, node: render(v, s.item) })) };
    }
    case 'sequence':
      return sequenceNode(value as Record<string, unknown>, s);
    case 'choice':
      return choiceNode(value as Record<string, unknown>, s);
    case 'open': {
      if (value && typeof value === 'object' && '$unknownOpenType' in value) {
        return scalar(`${c.hex(bytesToHex((value as { $unknownOpenType: Uint8Array }).$unknownOpenType))} ${c.dim('(unknown open type)')}`);
      }
      const sel = siblings?.[s.selector];
      const row = s.table.find((r) => sameId(r.id, sel));
      return row ? render(value, row.schema) : scalar(isBytes(value) ? c.hex(bytesToHex(value)) : JSON.stringify(value));
    }
    default:
      return scalar(String(value));
  }
}

function sequenceNode(value: Record<string, unknown>, s: SequenceSchema): Node {
  const children: Array<{ label: string; node: Node }> = [];
  for (const f of fieldList(s)) {
    if (!(f.name in value)) continue;
    children.push({ label: f.name, node: render(value[f.name], f.schema, value) });
  }
  const unknown = value.$unknownExtensions;
  if (Array.isArray(unknown)) {
    unknown.forEach((u, i) => {
      if (u) children.push({ label: `$unknownExtensions[${i}]`, node: scalar(c.hex(bytesToHex(u as Uint8Array))) });
    });
  }
  if (children.length === 0) return scalar(c.dim('{}'));
  return { kind: 'tree', children };
}

function choiceNode(value: Record<string, unknown>, s: ChoiceSchema): Node {
  const [alt, v] = Object.entries(value)[0] ?? ['?', undefined];
  if (alt === '$unknown') {
    const u = v as { tagClass: string; tag: number; bytes: Uint8Array };
    return scalar(`${c.dim(`unknown alternative [${u.tagClass} ${u.tag}]`)} ${c.hex(bytesToHex(u.bytes))}`);
  }
  const a = [...s.alternatives, ...(s.extensions ?? [])].find((x) => x.name === alt);
  if (!a) return scalar(`${c.name(alt)} ${JSON.stringify(v)}`);
  const inner = render(v, a.schema);
  const via = inner.via ? `${alt}.${inner.via}` : alt;
  if (inner.kind === 'scalar') {
    const { schema: r } = resolve(a.schema);
    return r.kind === 'null' ? { kind: 'scalar', text: c.name(via) } : { kind: 'scalar', text: inner.text, via };
  }
  return { ...inner, via };
}

function lines(label: string, node: Node, indent: string, out: string[]): void {
  const via = node.via ? c.name(node.via) : '';
  if (node.kind === 'scalar') {
    const text = via ? `${via} ${node.text}` : node.text;
    out.push(`${indent}${c.label(label)}: ${text}`);
    return;
  }
  out.push(`${indent}${c.label(label)}:${via ? ` ${via}` : ''}${node.summary ? ` ${node.summary}` : ''}`);
  for (const ch of node.children) lines(ch.label, ch.node, `${indent}  `, out);
}

/** The value as indented lines "label: value" (no trailing newline). */
export function renderTree(label: string, value: unknown, schema: Schema, indent = ''): string {
  const out: string[] = [];
  lines(label, render(value, schema), indent, out);
  return out.join('\n');
}
