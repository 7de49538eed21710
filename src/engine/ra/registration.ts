// Device registration (the DCM role, outside 1609.2.1; as OpenSCMS and CAMP did it): a device is registered
// with its type and canonical public key before it may enroll. The ECA asks through `DeviceRegistry`.
//
// Canonical id: HashedId8 (the low-order 8 octets of SHA-256, 1609.2 6.3.34 style) of the SEC 1 compressed
// encoding (02/03 || x, 33 octets) of the canonical public key, as 16 lower-case hex digits. Compressed and
// uncompressed inputs of the same key give the same id.
import { decodePoint, encodeCompressed, type CurveName } from '../../crypto/curves.js';
import { hashedId8 } from '../../crypto/hash.js';
import { toHex } from '../../crypto/bytes.js';

export const DEVICE_TYPES = ['obu', 'rsu'] as const;
export type DeviceType = (typeof DEVICE_TYPES)[number];

/** registered -> enrolled; blocked from either (unblock returns to the earlier one). */
export type DeviceState = 'registered' | 'enrolled' | 'blocked';

/** Curves a canonical key may use (both 256-bit: compressed points are 33 octets). */
export const CANONICAL_KEY_CURVES = ['nistP256', 'brainpoolP256r1'] as const;
export type CanonicalKeyCurve = (typeof CANONICAL_KEY_CURVES)[number];

/** Input that cannot be accepted; `field` names the offending field. */
export class RegistrationInputError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'RegistrationInputError';
    this.field = field;
  }
}

export interface CanonicalKey {
  curve: CanonicalKeyCurve;
  /** SEC 1 compressed encoding, 33 octets. */
  compressed: Uint8Array;
  /** HashedId8 of `compressed`, hex. */
  canonicalId: string;
}

/** Canonical id of a compressed key (see the file comment). */
export function canonicalIdOf(compressed: Uint8Array): string {
  return toHex(hashedId8(compressed));
}

/** Validates a canonical public key (bytes): on the curve, not the identity; returns its normal form. */
export function canonicalKeyFromBytes(bytes: Uint8Array, curve: CanonicalKeyCurve = 'nistP256', field = 'canonicalPublicKey'): CanonicalKey {
  if (!(CANONICAL_KEY_CURVES as readonly string[]).includes(curve)) {
    throw new RegistrationInputError('curve', `unsupported curve ${JSON.stringify(curve)} (use ${CANONICAL_KEY_CURVES.join(' or ')})`);
  }
  const first = bytes[0];
  const okLength = (bytes.length === 33 && (first === 2 || first === 3)) || (bytes.length === 65 && first === 4);
  if (!okLength) {
    throw new RegistrationInputError(field, `expected a compressed (33 octets, 02/03…) or uncompressed (65 octets, 04…) point, got ${bytes.length} octets`);
  }
  let compressed: Uint8Array;
  try {
    compressed = encodeCompressed(decodePoint(curve as CurveName, bytes));
  } catch {
    throw new RegistrationInputError(field, `not a point on ${curve}`);
  }
  return { curve, compressed, canonicalId: canonicalIdOf(compressed) };
}

/** Same, from hex text (optional 0x prefix). */
export function parseCanonicalPublicKey(hex: unknown, curve: CanonicalKeyCurve = 'nistP256', field = 'canonicalPublicKey'): CanonicalKey {
  if (typeof hex !== 'string') throw new RegistrationInputError(field, 'expected a hex string');
  const s = hex.startsWith('0x') || hex.startsWith('0X') ? hex.slice(2) : hex;
  if (s.length === 0 || s.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(s)) throw new RegistrationInputError(field, 'not valid hex');
  return canonicalKeyFromBytes(new Uint8Array(Buffer.from(s, 'hex')), curve, field);
}

export function isCanonicalId(s: unknown): s is string {
  return typeof s === 'string' && /^[0-9a-f]{16}$/.test(s);
}

// --------------------------------------------------------------------------------- registration input

export interface RegisterDeviceInput {
  deviceType: DeviceType;
  key: CanonicalKey;
  name?: string;
  /** 1609.2 CountryOnly values (ISO 3166-1 numeric, Uint16), e.g. 840 for the USA. */
  region?: number[];
  /** Name of a PSID group defined by policy. */
  psidGroup?: string;
}

/** Validates the JSON body of `POST /v3/devices`. Unknown fields are rejected (typos must not pass silently). */
export function parseRegisterDeviceBody(body: Record<string, unknown>): RegisterDeviceInput {
  const allowed = new Set(['deviceType', 'canonicalPublicKey', 'curve', 'name', 'region', 'psidGroup']);
  for (const k of Object.keys(body)) if (!allowed.has(k)) throw new RegistrationInputError(k, 'unknown field');
  const { deviceType, canonicalPublicKey, curve, name, region, psidGroup } = body;
  if (!(DEVICE_TYPES as readonly unknown[]).includes(deviceType)) {
    throw new RegistrationInputError('deviceType', `expected ${DEVICE_TYPES.map((t) => JSON.stringify(t)).join(' or ')}`);
  }
  if (curve !== undefined && !(CANONICAL_KEY_CURVES as readonly unknown[]).includes(curve)) {
    throw new RegistrationInputError('curve', `expected ${CANONICAL_KEY_CURVES.join(' or ')}`);
  }
  const key = parseCanonicalPublicKey(canonicalPublicKey, (curve as CanonicalKeyCurve | undefined) ?? 'nistP256');
  const input: RegisterDeviceInput = { deviceType: deviceType as DeviceType, key };
  if (name !== undefined) {
    if (typeof name !== 'string' || name.length === 0 || name.length > 128 || /[\x00-\x1f\x7f]/.test(name)) {
      throw new RegistrationInputError('name', 'expected 1..128 printable characters');
    }
    input.name = name;
  }
  if (region !== undefined) input.region = parseRegion(region);
  if (psidGroup !== undefined) {
    if (typeof psidGroup !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(psidGroup)) {
      throw new RegistrationInputError('psidGroup', 'expected 1..64 characters of [A-Za-z0-9._-]');
    }
    input.psidGroup = psidGroup;
  }
  return input;
}

function parseRegion(region: unknown): number[] {
  if (!Array.isArray(region) || region.length === 0 || region.length > 64) {
    throw new RegistrationInputError('region', 'expected a non-empty array (at most 64) of numeric country codes');
  }
  const out: number[] = [];
  for (const c of region) {
    if (typeof c !== 'number' || !Number.isInteger(c) || c < 0 || c > 65535) {
      throw new RegistrationInputError('region', `country codes are ISO 3166-1 numeric values 0..65535 (1609.2 CountryOnly), got ${JSON.stringify(c)}`);
    }
    if (!out.includes(c)) out.push(c);
  }
  return out;
}

/** Reason text for block / unblock: required, 1..512 printable characters. */
export function parseReason(value: unknown): string {
  if (typeof value !== 'string' || value.trim().length === 0 || value.length > 512 || /[\x00-\x08\x0b-\x1f\x7f]/.test(value)) {
    throw new RegistrationInputError('reason', 'expected 1..512 printable characters');
  }
  return value.trim();
}

// --------------------------------------------------------------------------------- records

/** A certificate issued to a device, recorded by the component that issued it. */
export interface CertificateRecordInput {
  /** 'enrollment', 'successor-enrollment', 'authorization-batch', 'application', ... ([a-z][a-z0-9-]{0,31}). */
  kind: string;
  /** HashedId8 of the certificate (or of the request for batches), 16 hex digits. */
  hashedId8: string;
  /** Validity start and end (ISO strings or Dates); optional. */
  validFrom?: Date;
  validUntil?: Date;
  /** Default: now. */
  issuedAt?: Date;
  /** Who issued it: 'eca', 'aca', ... */
  issuer?: string;
}

export interface CertificateRecord {
  kind: string;
  hashedId8: string;
  issuer: string | null;
  issuedAt: string;
  validFrom: string | null;
  validUntil: string | null;
}

export interface DeviceEvent {
  seq: number;
  at: string;
  kind: string;
  actor: string;
  details: Record<string, unknown>;
}

export interface DeviceRecord {
  deviceId: string;
  canonicalId: string;
  /** Compressed encoding, hex. */
  canonicalPublicKey: string;
  curve: CanonicalKeyCurve;
  deviceType: DeviceType;
  name: string | null;
  region: number[] | null;
  psidGroup: string | null;
  state: DeviceState;
  registeredAt: string;
  updatedAt: string;
  enrolledAt: string | null;
  blockedAt: string | null;
  blockReason: string | null;
}

export function validateCertificateInput(c: CertificateRecordInput): void {
  if (typeof c.kind !== 'string' || !/^[a-z][a-z0-9-]{0,31}$/.test(c.kind)) throw new RegistrationInputError('kind', 'expected [a-z][a-z0-9-]{0,31}');
  if (!isCanonicalId(c.hashedId8)) throw new RegistrationInputError('hashedId8', 'expected 16 lower-case hex digits');
  for (const k of ['validFrom', 'validUntil', 'issuedAt'] as const) {
    const v = c[k];
    if (v !== undefined && (!(v instanceof Date) || Number.isNaN(v.getTime()))) throw new RegistrationInputError(k, 'expected a valid date');
  }
  if (c.issuer !== undefined && !/^[a-z0-9-]{1,32}$/.test(c.issuer)) throw new RegistrationInputError('issuer', 'expected a component name');
}

// --------------------------------------------------------------------------------- ECA-facing interface

/** What the ECA needs to know about a canonical key. */
export interface RegisteredDevice {
  deviceId: string;
  canonicalId: string;
  deviceType: DeviceType;
  state: DeviceState;
  region: number[] | null;
  psidGroup: string | null;
}

/**
 * The RA's device registry as other components see it. Two transports: `InProcessDeviceRegistry` (serve all,
 * tests) and `HttpDeviceRegistry` (separate processes, `/internal/devices/...` with the component token).
 */
export interface DeviceRegistry {
  /** By canonical public key (compressed or uncompressed encoding). Undefined when not registered. */
  lookupByCanonicalKey(key: Uint8Array, curve?: CanonicalKeyCurve): Promise<RegisteredDevice | undefined>;
  /** By canonical id (16 hex digits). */
  lookupByCanonicalId(canonicalId: string): Promise<RegisteredDevice | undefined>;
  /** The device received its (first or a new) enrollment certificate; idempotent per certificate. */
  markEnrolled(deviceId: string, certificate: CertificateRecordInput & { kind: 'enrollment' | 'successor-enrollment' }): Promise<void>;
  /** Records any other certificate issued to the device; idempotent per (device, hashedId8). */
  recordCertificate(deviceId: string, certificate: CertificateRecordInput): Promise<void>;
}

/** Thrown by registries when the device id does not exist. */
export class UnknownDeviceError extends Error {
  readonly deviceId: string;
  constructor(deviceId: string) {
    super(`unknown device ${deviceId}`);
    this.name = 'UnknownDeviceError';
    this.deviceId = deviceId;
  }
}

export function toRegisteredDevice(d: DeviceRecord): RegisteredDevice {
  return { deviceId: d.deviceId, canonicalId: d.canonicalId, deviceType: d.deviceType, state: d.state, region: d.region, psidGroup: d.psidGroup };
}
