/**
 * Fleet mode of the EE simulator: N device lifecycles (simulate.ts, unchanged) with at most C in flight.
 * - A bounded pool of C workers takes device numbers from a counter: no N promises, no per-device state after
 *   a device finishes. Without a base state directory each device lives in memory (MemoryStateDir); with one,
 *   each gets <base>/device-NNNNNN with its keys in the encrypted soft keystore, as in single mode.
 * - The trust is bootstrapped and verified once (CTL series, CCF, RA certificate, policies) and every device starts
 *   from that verified trust store; the fleet's fetch also keeps the trust files' GET answers.
 * - Certificate checks are per certificate, but the issuing ACA -> ICA -> root chain is verified once per chain
 *   (fast-verify.ts), and implicit keys are reconstructed through OpenSSL.
 * - Every HTTP exchange is timed per endpoint into fixed-size histograms (fleet-stats.ts); errors are grouped
 *   by cause. Memory therefore stays flat in N.
 */
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { CurveName } from '../../crypto/curves.js';
import type { Clock } from '../../security/time.js';
import { bootstrapTrust, BootstrapError, type TrustStore } from './bootstrap.js';
import { EndpointRecorder, endpointOf, ErrorGroups, type EndpointStats, type ErrorGroup } from './fleet-stats.js';
import { errorCodeMeaning } from './http.js';
import { generateKeyPair, keyPairFromPrivate } from './keys.js';
import { simulate, SimulationError, type SimulateOptions } from './simulate.js';
import { EeStateDir, type EeState } from './state.js';

/** A device state that never touches the disk; dropped with the device. */
export class MemoryStateDir extends EeStateDir {
  private readonly files = new Map<string, Uint8Array>();
  private readonly scalars = new Map<string, bigint>();

  constructor(name: string) {
    super(name);
    // simulate() generates the canonical key through the keystore: an in-memory stand-in.
    const mem = {
      generate: async (keyName: string, curve: 'P-256' | 'P-384') => {
        const c: CurveName = curve === 'P-384' ? 'nistP384' : 'nistP256';
        const kp = generateKeyPair(c);
        const uri = `mem:${keyName}`;
        this.scalars.set(uri, kp.privateKey);
        return { uri, curve, publicKey: kp.publicKey };
      },
      close: async () => undefined,
    };
    Object.defineProperty(this, 'keystore', { value: mem });
  }

  override exists(): boolean {
    return false;
  }
  override async save(_s: EeState): Promise<void> {}
  override async writeFile(rel: string, bytes: Uint8Array): Promise<string> {
    this.files.set(rel, bytes);
    return rel;
  }
  override readFile(rel: string): Uint8Array {
    const b = this.files.get(rel);
    if (!b) throw new Error(`${rel}: not in the device's memory`);
    return b;
  }
  override listFiles(relDir: string): string[] {
    return [...this.files.keys()].filter((f) => f.startsWith(`${relDir}/`) && !f.slice(relDir.length + 1).includes('/')).sort();
  }
  override async putScalar(name: string, curve: CurveName, d: bigint): Promise<string> {
    keyPairFromPrivate(curve, d); // range check, as the keystore would
    const uri = `mem:${name}`;
    this.scalars.set(uri, d);
    return uri;
  }
  override async getScalar(uri: string): Promise<bigint> {
    const d = this.scalars.get(uri);
    if (d === undefined) throw new Error(`${uri}: no such key in the device's memory`);
    return d;
  }
  override async close(): Promise<void> {
    this.files.clear();
    this.scalars.clear();
  }
}

export interface FleetProgress {
  total: number;
  completed: number;
  failed: number;
  inFlight: number;
  certificates: number;
}

export interface FleetOptions
  extends Pick<SimulateOptions, 'deviceType' | 'cert' | 'form' | 'butterfly' | 'encrypted' | 'operatorToken' | 'maxWaitSeconds'> {
  raUrl: string;
  ecaUrl?: string;
  trustedRootHashes: string[];
  count: number;
  concurrency: number;
  clock: Clock;
  /** Base directory for per-device state directories (encrypted keys); default: in memory only. */
  stateDir?: string;
  /** Passphrase / scrypt options of the per-device keystores (with stateDir). */
  keyStore?: ConstructorParameters<typeof EeStateDir>[1];
  fetch?: typeof fetch;
  onProgress?: (p: FleetProgress) => void;
}

export interface FleetReport {
  devices: { requested: number; completed: number; failed: number; pending: number };
  certificates: number;
  /** Fewest and most certificates a completed device obtained. */
  certificatesPerDevice: { min: number; max: number };
  durationSeconds: number;
  devicesPerSecond: number;
  certificatesPerSecond: number;
  requests: number;
  requestsPerSecond: number;
  concurrency: number;
  endpoints: EndpointStats[];
  errors: ErrorGroup[];
  /** Peak resident set size of this process, octets. */
  peakRssBytes: number;
  /**
   * How late this process's event loop ran its callbacks (perf_hooks, 20 ms resolution), ms: a busy simulator
   * notices idle keep-alive connections late (src/engine/http/server.ts on keep-alive).
   */
  eventLoopDelayMs: { p50: number; p99: number; max: number };
  /** Device ids registered during the run (completed devices only), for checks against the server's records. */
  deviceIds?: string[];
  config: { raUrl: string; ecaUrl: string; deviceType: string; cert: string; form: string; butterfly: string; stateDir?: string };
}

/** Trust files are the same for every device: GETs other than the device-specific endpoints are cached. */
function isSharedGet(method: string, url: string): boolean {
  if (method !== 'GET') return false;
  const p = endpointOf('GET', url).slice(4);
  return !p.startsWith('/v3/authorization-certificate') && !p.startsWith('/v3/devices') && !p.startsWith('/v3/enrollment');
}

interface Cached {
  status: number;
  headers: [string, string][];
  body: Uint8Array;
}

/** fetch that times every exchange per endpoint and serves the shared trust files from one download. */
function fleetFetch(base: typeof fetch, rec: EndpointRecorder): typeof fetch {
  const cache = new Map<string, Promise<Cached>>();
  const timed = async (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]): Promise<Response> => {
    const method = (init?.method ?? 'GET').toUpperCase();
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const ep = endpointOf(method, url);
    const t0 = performance.now();
    try {
      const res = await base(input, init);
      // Latency to the complete body: read it here, hand the caller a response over the same octets.
      const body = new Uint8Array(await res.arrayBuffer());
      rec.record(ep, res.status, performance.now() - t0);
      return new Response(res.status === 204 || res.status === 304 ? null : body, { status: res.status, statusText: res.statusText, headers: res.headers });
    } catch (e) {
      rec.record(ep, 0, performance.now() - t0);
      throw e;
    }
  };
  return (async (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) => {
    const method = (init?.method ?? 'GET').toUpperCase();
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (!isSharedGet(method, url)) return timed(input, init);
    let c = cache.get(url);
    if (!c) {
      c = timed(input, init).then(async (r) => ({ status: r.status, headers: [...r.headers.entries()], body: new Uint8Array(await r.arrayBuffer()) }));
      cache.set(url, c);
      // Only good answers are kept; a failure is tried again by the next device.
      c.then((x) => x.status !== 200 && cache.delete(url), () => cache.delete(url));
    }
    const x = await c;
    return new Response(x.body.slice(), { status: x.status, headers: x.headers });
  }) as typeof fetch;
}

/** Peak RSS so far (the kernel's high-water mark), octets. */
export function peakRss(): number {
  return Math.max(process.resourceUsage().maxRSS * 1024, process.memoryUsage.rss());
}

export async function runFleet(opts: FleetOptions): Promise<FleetReport> {
  if (!Number.isInteger(opts.count) || opts.count < 1) throw new RangeError('count: at least 1 device');
  const concurrency = Math.max(1, Math.min(opts.count, Math.floor(opts.concurrency)));
  const rec = new EndpointRecorder();
  const errors = new ErrorGroups();
  const f = fleetFetch(opts.fetch ?? globalThis.fetch, rec);
  const ra = opts.raUrl.replace(/\/+$/, '');
  const eca = (opts.ecaUrl ?? opts.raUrl).replace(/\/+$/, '');
  const started = performance.now();

  // The trust once, before any device: a bad root or an unreachable RA fails the fleet, not N devices. Every device
  // then starts from this verified trust store (the same octets; verifying them again per device only cost time).
  let trust: TrustStore;
  try {
    trust = await bootstrapTrust({ raUrl: ra, trustedRootHashes: opts.trustedRootHashes, clock: opts.clock, fetch: f });
  } catch (e) {
    if (e instanceof BootstrapError) throw new SimulationError('bootstrap', e.message, undefined, e.check);
    throw e;
  }

  const p: FleetProgress = { total: opts.count, completed: 0, failed: 0, inFlight: 0, certificates: 0 };
  let pending = 0;
  const deviceIds: string[] = [];
  let minCerts = Infinity;
  let maxCerts = 0;
  let next = 0;
  const width = Math.max(6, String(opts.count).length);

  const one = async (n: number) => {
    const name = `device-${String(n + 1).padStart(width, '0')}`;
    const sd = opts.stateDir ? new EeStateDir(join(opts.stateDir, name), opts.keyStore) : new MemoryStateDir(name);
    try {
      const r = await simulate({
        state: sd,
        raUrl: ra,
        ecaUrl: eca,
        trustedRootHashes: opts.trustedRootHashes,
        ...(opts.deviceType ? { deviceType: opts.deviceType } : {}),
        ...(opts.cert ? { cert: opts.cert } : {}),
        ...(opts.form ? { form: opts.form } : {}),
        ...(opts.butterfly ? { butterfly: opts.butterfly } : {}),
        ...(opts.encrypted !== undefined ? { encrypted: opts.encrypted } : {}),
        ...(opts.operatorToken ? { operatorToken: opts.operatorToken } : {}),
        ...(opts.maxWaitSeconds !== undefined ? { maxWaitSeconds: opts.maxWaitSeconds } : {}),
        clock: opts.clock,
        http: { fetch: f },
        sharedTrust: trust,
      });
      if (r.complete) {
        p.completed++;
        p.certificates += r.certificates.length;
        minCerts = Math.min(minCerts, r.certificates.length);
        maxCerts = Math.max(maxCerts, r.certificates.length);
        if (r.deviceId) deviceIds.push(r.deviceId);
      } else {
        pending++;
        p.failed++;
        errors.add({ step: 'download', check: 'pending', example: `${name}: batch not ready within the wait limit (${r.pending ?? '?'})` });
      }
    } catch (e) {
      p.failed++;
      if (e instanceof SimulationError) {
        const h = e.http;
        errors.add({
          step: e.step,
          ...(h ? { status: h.status } : {}),
          ...(h?.code !== undefined ? { code: h.code, meaning: errorCodeMeaning(h.code) } : {}),
          ...(e.check ? { check: e.check } : {}),
          example: `${name}: ${e.message}`,
        });
      } else {
        errors.add({ step: 'local', check: (e as Error).name ?? 'Error', example: `${name}: ${(e as Error).message}` });
      }
    } finally {
      await sd.close().catch(() => undefined);
    }
  };

  const worker = async () => {
    while (next < opts.count) {
      const n = next++;
      p.inFlight++;
      try {
        await one(n);
      } finally {
        p.inFlight--;
        opts.onProgress?.({ ...p });
      }
    }
  };
  opts.onProgress?.({ ...p });
  const loopDelay = monitorEventLoopDelay({ resolution: 20 });
  loopDelay.enable();
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    loopDelay.disable();
  }

  const s = (performance.now() - started) / 1000;
  const ms = (ns: number) => Math.round(ns / 1e4) / 100;
  const per = (x: number) => Math.round((x / Math.max(s, 1e-3)) * 100) / 100;
  return {
    devices: { requested: opts.count, completed: p.completed, failed: p.failed - pending, pending },
    certificates: p.certificates,
    certificatesPerDevice: { min: p.completed ? minCerts : 0, max: maxCerts },
    durationSeconds: Math.round(s * 1000) / 1000,
    devicesPerSecond: per(p.completed),
    certificatesPerSecond: per(p.certificates),
    requests: rec.total,
    requestsPerSecond: per(rec.total),
    concurrency,
    endpoints: rec.summary(),
    errors: errors.list(),
    peakRssBytes: peakRss(),
    eventLoopDelayMs: { p50: ms(loopDelay.percentile(50)), p99: ms(loopDelay.percentile(99)), max: ms(loopDelay.max) },
    ...(opts.count <= 100_000 ? { deviceIds } : {}),
    config: {
      raUrl: ra,
      ecaUrl: eca,
      deviceType: opts.deviceType ?? 'obu',
      cert: opts.cert ?? 'pseudonym',
      form: opts.form ?? 'implicit',
      butterfly: opts.butterfly ?? 'unified',
      ...(opts.stateDir ? { stateDir: opts.stateDir } : {}),
    },
  };
}
