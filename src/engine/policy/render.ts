/**
 * Policy templates (templates/policies/*.json): valid JSON documents in which a string value
 * may hold placeholders, filled with the values chosen at `scms manager init`.
 *
 * - A string that is exactly `"${name}"` is replaced by the value itself (any JSON type:
 *   number, array, object, string...).
 * - `"${name:-<JSON>}"` does the same, and uses the JSON text <JSON> when no value is given
 *   (e.g. `"${iPeriodLength:-604800}"`).
 * - `${name}` inside a longer string is replaced by the value's text (string or number only).
 * Placeholders appear only in values, never in keys. Names are [A-Za-z][A-Za-z0-9_]*.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateError';
  }
}

const WHOLE_RE = /^\$\{([A-Za-z][A-Za-z0-9_]*)(?::-(.*))?\}$/s;
const INNER_RE = /\$\{([A-Za-z][A-Za-z0-9_]*)\}/g;

export interface Placeholder {
  name: string;
  /** Default value (parsed JSON), when the template gives one. */
  default?: unknown;
}

/** The placeholders of a template, in document order, each name once. */
export function templatePlaceholders(template: string | unknown): Placeholder[] {
  const out = new Map<string, Placeholder>();
  walk(parseTemplate(template), '', (s, path) => {
    const m = WHOLE_RE.exec(s);
    if (m) {
      const p: Placeholder = { name: m[1]! };
      if (m[2] !== undefined) p.default = parseDefault(m[2], m[1]!, path);
      if (!out.has(p.name) || (p.default !== undefined && out.get(p.name)!.default === undefined)) out.set(p.name, p);
      return;
    }
    for (const im of s.matchAll(INNER_RE)) if (!out.has(im[1]!)) out.set(im[1]!, { name: im[1]! });
  });
  return [...out.values()];
}

/**
 * Renders a template with `values`. TemplateError naming the placeholders when a value is
 * missing (and there is no default), a value is given that the template does not use, or a
 * value inside a longer string is not a string or number.
 */
export function renderPolicy(template: string | unknown, values: Readonly<Record<string, unknown>>): unknown {
  const tpl = parseTemplate(template);
  const used = new Set<string>();
  const missing = new Set<string>();
  const problems: string[] = [];

  const rendered = map(tpl, '', (s, path) => {
    const m = WHOLE_RE.exec(s);
    if (m) {
      const name = m[1]!;
      used.add(name);
      if (Object.hasOwn(values, name)) return toJsonValue(values[name], name, problems);
      if (m[2] !== undefined) return parseDefault(m[2], name, path);
      missing.add(name);
      return null;
    }
    return s.replace(INNER_RE, (_all, name: string) => {
      used.add(name);
      if (!Object.hasOwn(values, name)) {
        missing.add(name);
        return '';
      }
      const v = values[name];
      if (typeof v === 'string') return v;
      if (typeof v === 'number' && Number.isFinite(v)) return String(v);
      problems.push(`${name} (in ${path || 'the document'}) must be a string or number`);
      return '';
    });
  });

  const unused = Object.keys(values).filter((k) => !used.has(k));
  if (missing.size) problems.unshift(`no value for ${[...missing].map((n) => '${' + n + '}').join(', ')}`);
  if (unused.length) problems.push(`values not used by the template: ${unused.join(', ')}`);
  if (problems.length) throw new TemplateError(`cannot render policy template: ${problems.join('; ')}`);
  return rendered;
}

/** Reads templates/policies/<name>.json of this package ('global' or 'local'). */
export function loadPolicyTemplate(name: 'global' | 'local'): string {
  // src/engine/policy/ and dist/engine/policy/ are both three levels below the package root.
  const path = fileURLToPath(new URL(`../../../templates/policies/${name}.json`, import.meta.url));
  return readFileSync(path, 'utf8');
}

function parseTemplate(template: string | unknown): unknown {
  if (typeof template !== 'string') return template;
  try {
    return JSON.parse(template);
  } catch (e) {
    throw new TemplateError(`policy template is not JSON: ${(e as Error).message}`);
  }
}

function parseDefault(text: string, name: string, path: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new TemplateError(`default of \${${name}} at ${path || 'the document'} is not JSON: ${text}`);
  }
}

function toJsonValue(v: unknown, name: string, problems: string[]): unknown {
  try {
    return JSON.parse(JSON.stringify(v));
  } catch {
    problems.push(`${name} is not a JSON value`);
    return null;
  }
}

function walk(v: unknown, path: string, f: (s: string, path: string) => void): void {
  map(v, path, (s, p) => {
    f(s, p);
    return s;
  });
}

function map(v: unknown, path: string, f: (s: string, path: string) => unknown): unknown {
  if (typeof v === 'string') return f(v, path);
  if (Array.isArray(v)) return v.map((e, i) => map(e, `${path}[${i}]`, f));
  if (typeof v === 'object' && v !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, e] of Object.entries(v)) out[k] = map(e, path ? `${path}.${k}` : k, f);
    return out;
  }
  return v;
}
