// PKCS#11 URIs (RFC 7512): parse and format the attributes this project uses.
import { KeyStoreError } from './keystore.js';

/** RFC 7512 2.3 path attributes. */
const PATH_ATTRS = new Set([
  'token', 'manufacturer', 'serial', 'model', 'library-manufacturer', 'library-description',
  'library-version', 'object', 'type', 'id', 'slot-description', 'slot-manufacturer', 'slot-id',
]);
/** RFC 7512 2.3 query attributes. */
const QUERY_ATTRS = new Set(['pin-source', 'pin-value', 'module-name', 'module-path']);
/** RFC 7512 2.3 pk11-type values. */
const TYPES = new Set(['public', 'private', 'cert', 'secret-key', 'data']);

export interface Pkcs11Uri {
  /** Path attributes, percent-decoded (UTF-8); `id` is kept separately as bytes. */
  path: Map<string, string>;
  query: Map<string, string>;
  /** CKA_ID bytes from the `id` attribute. */
  id?: Buffer;
  token?: string;
  object?: string;
  type?: string;
  modulePath?: string;
  pinSource?: string;
  pinValue?: string;
}

/** RFC 3986 2.1 percent-decoding into bytes. */
function pctDecodeBytes(s: string, uri: string): Buffer {
  const out: number[] = [];
  const raw = Buffer.from(s, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === 0x25 /* % */) {
      const hex = raw.subarray(i + 1, i + 3).toString('latin1');
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw new KeyStoreError('BAD_URI', `bad percent-encoding in '${uri}'`);
      out.push(parseInt(hex, 16));
      i += 2;
    } else out.push(raw[i]!);
  }
  return Buffer.from(out);
}

function pctDecodeText(s: string, uri: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(pctDecodeBytes(s, uri));
  } catch (e) {
    if (e instanceof KeyStoreError) throw e;
    throw new KeyStoreError('BAD_URI', `attribute value is not UTF-8 in '${uri}'`);
  }
}

export function parsePkcs11Uri(uri: string): Pkcs11Uri {
  if (!/^pkcs11:/i.test(uri)) throw new KeyStoreError('BAD_URI', `not a pkcs11: URI: '${uri}'`);
  const rest = uri.slice('pkcs11:'.length);
  if (rest.includes('#')) throw new KeyStoreError('BAD_URI', `fragment not allowed in '${uri}'`);
  const q = rest.indexOf('?');
  const pathPart = q < 0 ? rest : rest.slice(0, q);
  const queryPart = q < 0 ? '' : rest.slice(q + 1);
  const out: Pkcs11Uri = { path: new Map(), query: new Map() };

  const split = (part: string, sepChar: string, known: Set<string>, target: Map<string, string>, where: string) => {
    if (part === '') return;
    for (const attr of part.split(sepChar)) {
      const eq = attr.indexOf('=');
      if (eq <= 0) throw new KeyStoreError('BAD_URI', `malformed ${where} attribute '${attr}' in '${uri}'`);
      const name = attr.slice(0, eq);
      const value = attr.slice(eq + 1);
      // vendor-specific attributes start with "x-" (RFC 7512 2.3)
      if (!known.has(name) && !name.startsWith('x-')) {
        if (where === 'path') throw new KeyStoreError('BAD_URI', `unknown path attribute '${name}' in '${uri}'`);
        continue; // unknown query attributes are ignored
      }
      if (target.has(name)) throw new KeyStoreError('BAD_URI', `attribute '${name}' repeated in '${uri}'`);
      if (name === 'id') {
        out.id = pctDecodeBytes(value, uri); // binary CKA_ID
        target.set(name, out.id.toString('hex'));
      } else target.set(name, pctDecodeText(value, uri));
    }
  };
  split(pathPart, ';', PATH_ATTRS, out.path, 'path');
  split(queryPart, '&', QUERY_ATTRS, out.query, 'query');

  out.token = out.path.get('token');
  out.object = out.path.get('object');
  out.type = out.path.get('type');
  if (out.type !== undefined && !TYPES.has(out.type)) {
    throw new KeyStoreError('BAD_URI', `unknown object type '${out.type}' in '${uri}'`);
  }
  out.modulePath = out.query.get('module-path');
  out.pinSource = out.query.get('pin-source');
  out.pinValue = out.query.get('pin-value');
  if (out.pinSource !== undefined && out.pinValue !== undefined) {
    throw new KeyStoreError('BAD_URI', `pin-source and pin-value are mutually exclusive ('${uri}')`);
  }
  return out;
}

/** Percent-encodes all but RFC 3986 unreserved characters and the RFC 7512 2.3 extras allowed in `where`. */
function pctEncode(value: string | Uint8Array, where: 'path' | 'query', all = false): string {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
  const extra = where === 'path' ? ":[]@!$'()*+,=&" : ":[]@!$'()*+,=/?|";
  let s = '';
  for (const b of bytes) {
    const ch = String.fromCharCode(b);
    const plain = b < 0x80 && (/[A-Za-z0-9\-._~]/.test(ch) || extra.includes(ch));
    s += plain && !all ? ch : '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return s;
}

export interface Pkcs11UriParts {
  token?: string;
  object?: string;
  id?: Uint8Array;
  type?: string;
  modulePath?: string;
  pinSource?: string;
}

export function formatPkcs11Uri(p: Pkcs11UriParts): string {
  const path: string[] = [];
  if (p.token !== undefined) path.push(`token=${pctEncode(p.token, 'path')}`);
  if (p.object !== undefined) path.push(`object=${pctEncode(p.object, 'path')}`);
  if (p.type !== undefined) path.push(`type=${pctEncode(p.type, 'path')}`);
  if (p.id !== undefined) path.push(`id=${pctEncode(p.id, 'path', true)}`);
  const query: string[] = [];
  if (p.modulePath !== undefined) query.push(`module-path=${pctEncode(p.modulePath, 'query')}`);
  if (p.pinSource !== undefined) query.push(`pin-source=${pctEncode(p.pinSource, 'query')}`);
  return 'pkcs11:' + path.join(';') + (query.length ? '?' + query.join('&') : '');
}
