/** Reading command inputs: files (or "-" for stdin) holding raw COER octets or hex text. */
import { readFileSync } from 'node:fs';

export class InputError extends Error {
  override readonly name = 'InputError';
}

/** The file's bytes ("-" reads stdin). */
export function readFileOrStdin(path: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path === '-' ? 0 : path));
  } catch (err) {
    throw new InputError(`cannot read ${path === '-' ? 'stdin' : path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

const HEX_OR_SPACE = /^[0-9a-fA-F\s]*$/;

/** True when every octet is an ASCII hex digit or whitespace and there is at least one digit. */
export function looksLikeHex(data: Uint8Array): boolean {
  let digits = 0;
  for (const b of data) {
    if ((b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66)) digits++;
    else if (b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d && b !== 0x0b && b !== 0x0c) return false;
  }
  return digits > 0;
}

/** Hex text (whitespace anywhere) to octets; InputError on an odd digit count or a non-hex character. */
export function hexToBytes(text: string): Uint8Array {
  if (!HEX_OR_SPACE.test(text)) throw new InputError('not hex: only 0-9, a-f and whitespace are allowed');
  const digits = text.replace(/\s+/g, '');
  if (digits.length % 2 !== 0) throw new InputError(`odd number of hex digits (${digits.length})`);
  const out = new Uint8Array(digits.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(digits.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function bytesToHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/**
 * The encoded value a file holds: hex text when the whole file is hex digits and whitespace (an odd digit count
 * is an error), otherwise the raw octets.
 */
export function readEncodedInput(path: string): { bytes: Uint8Array; format: 'hex' | 'raw' } {
  const data = readFileOrStdin(path);
  if (data.length === 0) throw new InputError(`${path === '-' ? 'stdin' : path} is empty`);
  if (looksLikeHex(data)) return { bytes: hexToBytes(Buffer.from(data).toString('latin1')), format: 'hex' };
  return { bytes: data, format: 'raw' };
}

/** A JSON document from a file (or stdin). */
export function readJsonInput(path: string): unknown {
  const text = Buffer.from(readFileOrStdin(path)).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new InputError(`${path === '-' ? 'stdin' : path} is not JSON: ${(err as Error).message}`);
  }
}
