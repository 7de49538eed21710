/**
 * ASN.1 lexer (ITU-T X.680 clause 12, the subset used by the IEEE 1609.2 / 1609.2.1 modules).
 * Comments: `--` to end of line or to the next `--` (12.6.2), `/* ... *\/` nested (12.6.3).
 * Files are read as latin1 so Windows-1252 quote characters inside comments are harmless.
 */

export type TokenKind = 'ident' | 'number' | 'hstring' | 'bstring' | 'cstring' | 'field' | 'punct' | 'eof';

export interface Token {
  kind: TokenKind;
  text: string;
  file: string;
  line: number;
}

export class Asn1Error extends Error {
  constructor(message: string, where?: { file: string; line: number }) {
    super(where ? `${where.file}:${where.line}: ${message}` : message);
    this.name = 'Asn1Error';
  }
}

const PUNCT3 = ['::=', '...'];
const PUNCT2 = ['..', '[[', ']]'];
const PUNCT1 = '{}()[],;|@.:<>^!-';

export function tokenize(source: string, file: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let line = 1;
  const n = source.length;
  const isAlnum = (c: string) => /[A-Za-z0-9]/.test(c);
  while (i < n) {
    const c = source[i]!;
    if (c === '\n') {
      line++;
      i++;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r' || c === '\f' || c === '\v' || c === '\u00a0') {
      i++;
      continue;
    }
    if (c === '-' && source[i + 1] === '-') {
      // X.680 12.6.2: ends at end of line or at the next pair of hyphens.
      i += 2;
      while (i < n && source[i] !== '\n' && source[i] !== '\r') {
        if (source[i] === '-' && source[i + 1] === '-') {
          i += 2;
          break;
        }
        i++;
      }
      continue;
    }
    if (c === '/' && source[i + 1] === '*') {
      const startLine = line;
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (source[i] === '/' && source[i + 1] === '*') {
          depth++;
          i += 2;
        } else if (source[i] === '*' && source[i + 1] === '/') {
          depth--;
          i += 2;
        } else {
          if (source[i] === '\n') line++;
          i++;
        }
      }
      if (depth > 0) throw new Asn1Error('unterminated block comment', { file, line: startLine });
      continue;
    }
    if (/[A-Za-z]/.test(c)) {
      let j = i + 1;
      // Identifiers: letters, digits, single hyphens; never ending in a hyphen (X.680 12.2).
      while (j < n) {
        const d = source[j]!;
        if (isAlnum(d)) j++;
        else if (d === '-' && j + 1 < n && isAlnum(source[j + 1]!) && source[j - 1] !== '-') j++;
        else break;
      }
      tokens.push({ kind: 'ident', text: source.slice(i, j), file, line });
      i = j;
      continue;
    }
    if (/[0-9]/.test(c)) {
      let j = i + 1;
      while (j < n && /[0-9]/.test(source[j]!)) j++;
      tokens.push({ kind: 'number', text: source.slice(i, j), file, line });
      i = j;
      continue;
    }
    if (c === '&') {
      let j = i + 1;
      while (j < n && (isAlnum(source[j]!) || (source[j] === '-' && isAlnum(source[j + 1] ?? '')))) j++;
      if (j === i + 1) throw new Asn1Error("'&' not followed by a field name", { file, line });
      tokens.push({ kind: 'field', text: source.slice(i, j), file, line });
      i = j;
      continue;
    }
    if (c === "'") {
      const end = source.indexOf("'", i + 1);
      if (end < 0) throw new Asn1Error('unterminated quoted string', { file, line });
      const body = source.slice(i + 1, end).replace(/\s+/g, '');
      const suffix = source[end + 1];
      if (suffix === 'H' || suffix === 'h') tokens.push({ kind: 'hstring', text: body, file, line });
      else if (suffix === 'B' || suffix === 'b') tokens.push({ kind: 'bstring', text: body, file, line });
      else throw new Asn1Error(`quoted string without H/B suffix: '${body}'`, { file, line });
      i = end + 2;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      let text = '';
      for (;;) {
        if (j >= n) throw new Asn1Error('unterminated character string', { file, line });
        if (source[j] === '"') {
          if (source[j + 1] === '"') {
            text += '"';
            j += 2;
            continue;
          }
          break;
        }
        if (source[j] === '\n') line++;
        text += source[j];
        j++;
      }
      tokens.push({ kind: 'cstring', text, file, line });
      i = j + 1;
      continue;
    }
    const p3 = PUNCT3.find((p) => source.startsWith(p, i));
    if (p3) {
      tokens.push({ kind: 'punct', text: p3, file, line });
      i += 3;
      continue;
    }
    const p2 = PUNCT2.find((p) => source.startsWith(p, i));
    if (p2) {
      tokens.push({ kind: 'punct', text: p2, file, line });
      i += 2;
      continue;
    }
    if (PUNCT1.includes(c)) {
      tokens.push({ kind: 'punct', text: c, file, line });
      i++;
      continue;
    }
    throw new Asn1Error(`unexpected character ${JSON.stringify(c)}`, { file, line });
  }
  tokens.push({ kind: 'eof', text: '<end of file>', file, line });
  return tokens;
}
