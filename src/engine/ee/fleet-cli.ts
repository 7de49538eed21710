// Terminal side of fleet mode: the progress bar (stderr) and the summary table.
import cliProgress from 'cli-progress';
import chalk from 'chalk';
import type { FleetProgress, FleetReport } from './fleet.js';

/** A cli-progress bar on stderr: done/total, failures, certificates, devices/s. */
export function fleetProgressBar(total: number): { update: (p: FleetProgress) => void; stop: () => void } {
  const bar = new cliProgress.SingleBar(
    {
      format: 'fleet [{bar}] {value}/{total} devices | {failed} failed | {inFlight} running | {certs} certificates | {rate} devices/s | {duration_formatted}',
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  const t0 = performance.now();
  bar.start(total, 0, { failed: 0, inFlight: 0, certs: 0, rate: '-' });
  return {
    update: (p) => {
      const s = (performance.now() - t0) / 1000;
      bar.update(p.completed + p.failed, { failed: p.failed, inFlight: p.inFlight, certs: p.certificates, rate: s > 0 ? (p.completed / s).toFixed(1) : '-' });
    },
    stop: () => bar.stop(),
  };
}

const mib = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MiB`;
const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));
const lpad = (s: string, n: number) => (s.length >= n ? s : ' '.repeat(n - s.length) + s);

/** The human summary: totals, rates, per-endpoint latency table, errors by cause. */
export function fleetSummaryLines(r: FleetReport): string[] {
  const d = r.devices;
  const out = [
    chalk.bold('fleet summary'),
    `  devices       ${d.completed} completed, ${d.failed} failed${d.pending ? `, ${d.pending} pending` : ''} of ${d.requested} (concurrency ${r.concurrency})`,
    `  certificates  ${r.certificates}`,
    `  duration      ${r.durationSeconds.toFixed(1)} s: ${r.devicesPerSecond} devices/s, ${r.certificatesPerSecond} certificates/s, ${r.requestsPerSecond} requests/s (${r.requests} requests)`,
    `  peak RSS      ${mib(r.peakRssBytes)}`,
    ...(r.eventLoopDelayMs ? [`  event loop    delay p50 ${r.eventLoopDelayMs.p50} ms, p99 ${r.eventLoopDelayMs.p99} ms, max ${r.eventLoopDelayMs.max} ms`] : []),
    '',
  ];
  const w = Math.max(8, ...r.endpoints.map((e) => e.endpoint.length));
  out.push(chalk.bold(`  ${pad('endpoint', w)}  ${lpad('requests', 8)}  ${lpad('p50 ms', 8)}  ${lpad('p95 ms', 8)}  ${lpad('p99 ms', 8)}  statuses`));
  for (const e of r.endpoints) {
    const st = Object.entries(e.statuses).map(([s, n]) => `${s}×${n}`).join(' ');
    out.push(`  ${pad(e.endpoint, w)}  ${lpad(String(e.requests), 8)}  ${lpad(e.p50Ms.toFixed(1), 8)}  ${lpad(e.p95Ms.toFixed(1), 8)}  ${lpad(e.p99Ms.toFixed(1), 8)}  ${st}`);
  }
  if (r.errors.length) {
    out.push('', chalk.bold('  errors by cause'));
    for (const e of r.errors) {
      out.push(`  ${chalk.red(lpad(String(e.count), 6))}  ${e.cause}${e.meaning ? ` (${e.meaning})` : ''}`);
      out.push(chalk.dim(`          e.g. ${e.example}`));
    }
  }
  return out;
}
