// Fleet statistics with flat memory: per-endpoint latency in a fixed log-scale histogram (percentiles to within
// one bucket, ~5 %), and errors grouped by cause with a count and one example each.

/** Bucket k holds latencies in [BASE * R^(k-1), BASE * R^k) ms; bucket 0 everything below BASE. */
const BASE_MS = 0.05;
const RATIO = 1.05;
const BUCKETS = 400; // up to 0.05 ms * 1.05^399 ≈ 1.4e7 ms
const LOG_R = Math.log(RATIO);

export class LatencyHistogram {
  private readonly counts = new Uint32Array(BUCKETS);
  count = 0;
  sumMs = 0;
  maxMs = 0;

  record(ms: number): void {
    const k = ms < BASE_MS ? 0 : Math.min(BUCKETS - 1, 1 + Math.floor(Math.log(ms / BASE_MS) / LOG_R));
    this.counts[k]!++;
    this.count++;
    this.sumMs += ms;
    if (ms > this.maxMs) this.maxMs = ms;
  }

  /** The q-quantile (0..1): the upper bound of the bucket holding it, capped at the largest value seen. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let k = 0; k < BUCKETS; k++) {
      seen += this.counts[k]!;
      if (seen >= rank) return Math.min(this.maxMs, BASE_MS * RATIO ** k);
    }
    return this.maxMs;
  }
}

export interface EndpointStats {
  endpoint: string;
  requests: number;
  /** Answers by HTTP status ("0": no answer). */
  statuses: Record<string, number>;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  meanMs: number;
  maxMs: number;
}

/** Latencies and statuses per endpoint ("GET /v3/..."); the set of endpoints is small and fixed by the API. */
export class EndpointRecorder {
  private readonly byEndpoint = new Map<string, { h: LatencyHistogram; statuses: Map<number, number> }>();
  total = 0;

  record(endpoint: string, status: number, ms: number): void {
    let e = this.byEndpoint.get(endpoint);
    if (!e) this.byEndpoint.set(endpoint, (e = { h: new LatencyHistogram(), statuses: new Map() }));
    e.h.record(ms);
    e.statuses.set(status, (e.statuses.get(status) ?? 0) + 1);
    this.total++;
  }

  summary(): EndpointStats[] {
    const r2 = (x: number) => Math.round(x * 100) / 100;
    return [...this.byEndpoint.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([endpoint, { h, statuses }]) => ({
        endpoint,
        requests: h.count,
        statuses: Object.fromEntries([...statuses.entries()].sort(([a], [b]) => a - b).map(([s, n]) => [String(s), n])),
        p50Ms: r2(h.quantile(0.5)),
        p95Ms: r2(h.quantile(0.95)),
        p99Ms: r2(h.quantile(0.99)),
        meanMs: r2(h.sumMs / Math.max(1, h.count)),
        maxMs: r2(h.maxMs),
      }));
  }
}

/** Endpoint name of a URL: method + path, with device ids replaced (so the set stays small). */
export function endpointOf(method: string, url: string): string {
  let path: string;
  try {
    path = new URL(url).pathname;
  } catch {
    path = url.split('?')[0]!;
  }
  path = path.replace(/\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?=\/|$)/gi, '/:id');
  return `${method.toUpperCase()} ${path}`;
}

export interface ErrorGroup {
  /** step + cause: "register: HTTP 401", "request: HTTP 403-5", "download: check certificate-response". */
  cause: string;
  step: string;
  status?: number;
  code?: number;
  meaning?: string;
  check?: string;
  count: number;
  example: string;
}

/** Errors grouped by cause; one example message kept per group (bounded by the number of distinct causes). */
export class ErrorGroups {
  private readonly groups = new Map<string, ErrorGroup>();
  private static readonly MAX_GROUPS = 100;

  add(g: Omit<ErrorGroup, 'count' | 'cause'>): void {
    const what = g.status !== undefined ? `HTTP ${g.status}${g.code !== undefined ? `-${g.code}` : ''}` : g.check ? `check ${g.check}` : 'error';
    let cause = `${g.step}: ${what}`;
    if (!this.groups.has(cause) && this.groups.size >= ErrorGroups.MAX_GROUPS) cause = 'other';
    const e = this.groups.get(cause);
    if (e) e.count++;
    else this.groups.set(cause, { cause, ...g, count: 1, example: g.example.length > 400 ? `${g.example.slice(0, 400)}…` : g.example });
  }

  list(): ErrorGroup[] {
    return [...this.groups.values()].sort((a, b) => b.count - a.count || a.cause.localeCompare(b.cause));
  }
}
