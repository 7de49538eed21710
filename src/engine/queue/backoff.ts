export interface BackoffOptions {
  /** Delay after the first failed attempt (default 1000 ms). */
  baseMs: number;
  /** Upper bound of any delay (default 300000 ms). */
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 1000, maxMs: 300_000 };

/** Exponential back-off: baseMs * 2^(attempts-1), capped at maxMs. `attempts` counts the failed attempt. */
export function backoffDelayMs(attempts: number, options: BackoffOptions = DEFAULT_BACKOFF): number {
  const exp = Math.max(0, attempts - 1);
  return Math.min(options.maxMs, options.baseMs * 2 ** Math.min(exp, 52));
}
