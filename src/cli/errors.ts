/** Mapping errors to the message and exit code a command reports (oclif `this.error`). */
import { CoerError } from '../codec/coer/codec.js';
import { CertificateError } from '../security/certificate.js';
import { DetectError, TypeNotFoundError } from './decode.js';
import { InputError } from './input.js';

/** Exit codes: 1 verification failed, 2 bad input (unreadable, undecodable, unknown type). */
export const EXIT_VERIFY_FAILED = 1;
export const EXIT_BAD_INPUT = 2;

export function describeError(err: unknown, what = 'input'): { message: string; exit: number } {
  if (err instanceof CoerError) {
    const where = err.offset >= 0 ? `${err.path} at byte ${err.offset}` : err.path;
    return { message: `${what} does not decode: ${where}: ${err.reason}`, exit: EXIT_BAD_INPUT };
  }
  if (err instanceof DetectError || err instanceof InputError || err instanceof TypeNotFoundError) {
    return { message: err.message, exit: EXIT_BAD_INPUT };
  }
  if (err instanceof CertificateError) return { message: err.message, exit: EXIT_VERIFY_FAILED };
  throw err;
}
