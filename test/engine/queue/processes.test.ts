import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobQueue } from '../../../src/engine/queue/index.js';
import { openDatabase } from '../../../src/engine/store/index.js';
import { ATTEMPT_LOG, createCrashTables, RESULTS } from './fixtures/crash-handler.js';
import { testDatabase, type DialectName } from '../store/helpers.js';
import type { Kysely } from 'kysely';

const FIXTURE = fileURLToPath(new URL('./fixtures/drain-worker.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../../../', import.meta.url));

/** Starts worker processes, releases them together once all are ready, resolves when all exited cleanly. */
async function runChildren(url: string, queue: string, count: number, concurrency: number): Promise<void> {
  const children = Array.from({ length: count }, () =>
    spawn(process.execPath, ['--import', 'tsx', FIXTURE, url, queue, String(concurrency)], { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'] }),
  );
  const exits = children.map(
    (child) =>
      new Promise<void>((resolve, reject) => {
        let err = '';
        child.stderr!.on('data', (d) => (err += d));
        child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker process exited with ${code}: ${err}`))));
      }),
  );
  const ready = children.map(
    (child) =>
      new Promise<void>((resolve) => {
        let out = '';
        child.stdout!.on('data', (d) => {
          out += d;
          if (out.includes('READY')) resolve();
        });
      }),
  );
  await Promise.race([Promise.all(ready), Promise.all(exits)]);
  for (const child of children) child.stdin!.end('GO\n');
  await Promise.all(exits);
}

describe.each(['sqlite', 'postgres'] as const satisfies readonly DialectName[])('worker processes on %s', (dialect) => {
  let db: Kysely<any>;
  let url: string;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    const t = await testDatabase(dialect, 'procs');
    url = t.url;
    cleanup = t.cleanup;
    db = await openDatabase<any>(url);
    await new JobQueue(db).migrate();
    await createCrashTables(db);
  });
  afterAll(async () => {
    await db?.destroy();
    await cleanup?.();
  });

  it('three processes share one queue and handle each job once', async () => {
    const queue = 'shared';
    const jobs = new JobQueue(db);
    const total = 60;
    for (let i = 0; i < total; i++) await jobs.enqueue({ queue, kind: 'k', payload: i, idempotencyKey: `p${i}` });
    await runChildren(url, queue, 3, 3);
    expect(await jobs.counts(queue)).toEqual({ queued: 0, running: 0, done: total, dead: 0 });
    const log = await db.selectFrom(ATTEMPT_LOG).selectAll().execute();
    expect(log).toHaveLength(total);
    expect(new Set(log.map((r) => r.job_id)).size).toBe(total);
    expect(await db.selectFrom(RESULTS).selectAll().execute()).toHaveLength(total);
    // The processes really competed: work was spread over more than one of them.
    expect(new Set(log.map((r) => r.worker)).size).toBeGreaterThan(1);
  });
});
