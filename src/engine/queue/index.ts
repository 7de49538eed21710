export { JobQueue, type EnqueueSpec, type EnqueueResult, type FailOptions, type FailResult, type JobQueueOptions } from './queue.js';
export { Worker, type WorkerOptions, type JobHandler, type JobContext } from './worker.js';
export { type Job } from './job.js';
export { LeaseLostError } from './errors.js';
export { backoffDelayMs, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
export { realSleep, type Sleep } from './sleep.js';
export { queueMigrations, JOBS_TABLE, JOB_STATES, type JobState, type JobRow, type QueueTables } from './schema.js';
export type { Clock } from '../../security/time.js';
