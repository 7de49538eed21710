// The two transports of DeviceRegistry: in-process (serve all, tests) and HTTP (separate processes).
import { toHex } from '../../crypto/bytes.js';
import type { RegistrationStore } from './registration-store.js';
import {
  canonicalKeyFromBytes,
  isCanonicalId,
  toRegisteredDevice,
  UnknownDeviceError,
  type CanonicalKeyCurve,
  type CertificateRecordInput,
  type DeviceRegistry,
  type RegisteredDevice,
} from './registration.js';

/** Direct calls into the RA's store. `actor` is recorded in device events (e.g. 'eca'). */
export class InProcessDeviceRegistry implements DeviceRegistry {
  readonly #store: RegistrationStore;
  readonly #actor: string;

  constructor(store: RegistrationStore, options: { actor?: string } = {}) {
    this.#store = store;
    this.#actor = options.actor ?? 'component';
  }

  async lookupByCanonicalKey(key: Uint8Array, curve: CanonicalKeyCurve = 'nistP256'): Promise<RegisteredDevice | undefined> {
    const k = canonicalKeyFromBytes(key, curve);
    const d = await this.#store.findByCanonicalKey(k.compressed);
    return d && d.curve === k.curve ? toRegisteredDevice(d) : undefined;
  }

  async lookupByCanonicalId(canonicalId: string): Promise<RegisteredDevice | undefined> {
    if (!isCanonicalId(canonicalId)) return undefined;
    const d = await this.#store.findByCanonicalId(canonicalId);
    return d && toRegisteredDevice(d);
  }

  async markEnrolled(deviceId: string, certificate: CertificateRecordInput): Promise<void> {
    if (!(await this.#store.markEnrolled(deviceId, certificate, certificate.issuer ?? this.#actor))) throw new UnknownDeviceError(deviceId);
  }

  async recordCertificate(deviceId: string, certificate: CertificateRecordInput): Promise<void> {
    if (!(await this.#store.recordCertificate(deviceId, certificate, certificate.issuer ?? this.#actor))) throw new UnknownDeviceError(deviceId);
  }
}

/** A non-2xx answer from the RA other than "not found". */
export class DeviceRegistryHttpError extends Error {
  readonly status: number;
  readonly errorHeader: string | null;
  constructor(status: number, errorHeader: string | null, reason: string) {
    super(`RA device registry answered ${status}${errorHeader ? ` (${errorHeader})` : ''}: ${reason}`);
    this.name = 'DeviceRegistryHttpError';
    this.status = status;
    this.errorHeader = errorHeader;
  }
}

export interface HttpDeviceRegistryOptions {
  /** RA base URL, e.g. http://ra.internal:8080 */
  baseUrl: string;
  /** The component token shared with the RA. */
  token: string;
  /** Per-request time limit (default 10 s). */
  timeoutMs?: number;
  /** Injectable for tests / proxies; default global fetch. */
  fetch?: typeof fetch;
}

/** The RA's `/internal/devices/...` API with the component token. */
export class HttpDeviceRegistry implements DeviceRegistry {
  readonly #base: string;
  readonly #token: string;
  readonly #timeoutMs: number;
  readonly #fetch: typeof fetch;

  constructor(options: HttpDeviceRegistryOptions) {
    this.#base = options.baseUrl.replace(/\/+$/, '');
    this.#token = options.token;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#fetch = options.fetch ?? fetch;
  }

  async lookupByCanonicalKey(key: Uint8Array, curve: CanonicalKeyCurve = 'nistP256'): Promise<RegisteredDevice | undefined> {
    // Same input errors as the in-process registry, without a round trip; the compressed form travels.
    const k = canonicalKeyFromBytes(key, curve);
    return this.#lookup(`/internal/devices/by-key/${toHex(k.compressed)}?curve=${encodeURIComponent(curve)}`);
  }

  async lookupByCanonicalId(canonicalId: string): Promise<RegisteredDevice | undefined> {
    if (!isCanonicalId(canonicalId)) return undefined;
    return this.#lookup(`/internal/devices/by-canonical-id/${canonicalId}`);
  }

  async markEnrolled(deviceId: string, certificate: CertificateRecordInput): Promise<void> {
    await this.#post(deviceId, 'enrolled', certificate);
  }

  async recordCertificate(deviceId: string, certificate: CertificateRecordInput): Promise<void> {
    await this.#post(deviceId, 'certificates', certificate);
  }

  async #lookup(path: string): Promise<RegisteredDevice | undefined> {
    const res = await this.#request('GET', path);
    if (res.status === 404) {
      await res.body?.cancel();
      return undefined;
    }
    if (res.status !== 200) throw await httpError(res);
    return parseRegisteredDevice(await res.json());
  }

  async #post(deviceId: string, what: string, c: CertificateRecordInput): Promise<void> {
    const body = {
      kind: c.kind,
      hashedId8: c.hashedId8,
      issuer: c.issuer,
      issuedAt: c.issuedAt?.toISOString(),
      validFrom: c.validFrom?.toISOString(),
      validUntil: c.validUntil?.toISOString(),
    };
    const res = await this.#request('POST', `/internal/devices/${encodeURIComponent(deviceId)}/${what}`, body);
    if (res.status === 404) {
      await res.body?.cancel();
      throw new UnknownDeviceError(deviceId);
    }
    if (res.status !== 204 && res.status !== 200) throw await httpError(res);
    await res.body?.cancel();
  }

  #request(method: string, path: string, body?: unknown): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.#token}`, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    return this.#fetch(this.#base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(this.#timeoutMs),
    });
  }
}

async function httpError(res: Response): Promise<DeviceRegistryHttpError> {
  let reason = res.statusText;
  try {
    const text = await res.text();
    try {
      reason = String((JSON.parse(text) as { reason?: unknown }).reason ?? text);
    } catch {
      reason = text || reason;
    }
  } catch {
    /* keep statusText */
  }
  return new DeviceRegistryHttpError(res.status, res.headers.get('ieee-1609.2.1-error'), reason.slice(0, 500));
}

function parseRegisteredDevice(v: unknown): RegisteredDevice {
  const o = v as Record<string, unknown>;
  const ok =
    o !== null &&
    typeof o === 'object' &&
    typeof o.deviceId === 'string' &&
    isCanonicalId(o.canonicalId) &&
    (o.deviceType === 'obu' || o.deviceType === 'rsu') &&
    (o.state === 'registered' || o.state === 'enrolled' || o.state === 'blocked') &&
    (o.region === null || (Array.isArray(o.region) && o.region.every((c) => Number.isInteger(c)))) &&
    (o.psidGroup === null || typeof o.psidGroup === 'string');
  if (!ok) throw new DeviceRegistryHttpError(200, null, 'malformed device record from the RA');
  return {
    deviceId: o.deviceId as string,
    canonicalId: o.canonicalId as string,
    deviceType: o.deviceType as RegisteredDevice['deviceType'],
    state: o.state as RegisteredDevice['state'],
    region: o.region as number[] | null,
    psidGroup: o.psidGroup as string | null,
  };
}
