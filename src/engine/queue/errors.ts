/** The job is no longer leased to this worker (lease expired and was reclaimed, or the job finished). */
export class LeaseLostError extends Error {
  constructor(
    readonly jobId: string,
    readonly workerId: string,
  ) {
    super(`job ${jobId} is not leased to worker ${workerId}`);
    this.name = 'LeaseLostError';
  }
}

/** Text stored in last_error: name and message, bounded. */
export function describeError(e: unknown): string {
  const text = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return text.length > 4000 ? `${text.slice(0, 4000)}…` : text;
}
