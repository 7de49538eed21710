/**
 * Certificate chain verification (1609.2 5.1.2.x certificate chain consistency, 6.4.3, 5.3.1, 5.3.2).
 *
 * The chain is given leaf first. When it does not end with a self-signed certificate, the trust anchor whose
 * HashedId8 the last certificate's issuer field names is appended; error indices refer to that full list
 * (so the appended root has index chain.length).
 *
 * Checked for every certificate i with issuer i+1:
 * - structure: explicit with a signature, implicit without one and never self-signed;
 * - linkage: the issuer field (sha256AndDigest / sha384AndDigest) is the issuer's HashedId8;
 * - signature (explicit) with the issuer key; implicit: Q_U = e*P_U + Q_CA is reconstructed (5.3.2);
 * - validity at clock.now() and within the issuer's validity period (ValidityPeriod, 6.4.12);
 * - region within the issuer's effective region (its own, or inherited from above; none = unrestricted);
 * - permissions within the issuer's certIssuePermissions (permissions.ts);
 * the root: self-signed, signature valid, and byte-equal to one of the trust anchors.
 * `requiredPsid`: the leaf's appPermissions must contain it.
 *
 * Region containment supported: identifiedRegion (countryOnly, countryAndRegions, countryAndSubregions, by
 * set inclusion), circularRegion in circularRegion (great-circle distance + radius), rectangularRegion /
 * polygonalRegion / circularRegion in rectangularRegion, circularRegion, or a polygon (vertices, circle
 * edge points and rectangle corners tested; exact for convex issuer regions). An identified region against a
 * geometric one (or the reverse) cannot be decided without map data and is reported as not established.
 */
import type { Certificate } from '../codec/gen/Ieee1609Dot2.js';
import type {
  CircularRegion,
  GeographicRegion,
  IdentifiedRegion,
  RectangularRegion,
  TwoDLocation,
} from '../codec/gen/Ieee1609Dot2BaseTypes.js';
import type { CurveName } from '../crypto/curves.js';
import {
  certificateHashedId8,
  certificatePublicKey,
  encodeCertificate,
  encodeTbsCertificate,
  isIssuedBy,
  isSelfSigned,
  verify1609Dot2Signature,
} from './certificate.js';
import { certificateAllowsPsid, certificateLabel, checkIssuePermissions } from './permissions.js';
import { validityPeriodContains, validityPeriodContainsPeriod, type Clock, type ValidityPeriod, time32ToDate, validityPeriodEndTime64, time64ToDate } from './time.js';

export type ChainErrorCode =
  | 'empty-chain'
  | 'malformed'
  | 'issuer-mismatch'
  | 'issuer-not-found'
  | 'bad-signature'
  | 'not-self-signed'
  | 'untrusted-root'
  | 'expired'
  | 'not-yet-valid'
  | 'validity-outside-issuer'
  | 'region-outside-issuer'
  | 'permissions'
  | 'psid-not-permitted';

export interface ChainError {
  index: number;
  code: ChainErrorCode;
  reason: string;
}

export interface ChainOptions {
  /** Trusted root certificates (e.g. from a CTL). */
  trustAnchors: readonly Certificate[];
  clock: Clock;
  /** The leaf must carry this PSID in appPermissions. */
  requiredPsid?: number | bigint;
  /** Skip the check that each certificate is valid now (consistency checks still run). */
  skipCurrentValidity?: boolean;
}

export type ChainResult =
  | {
      ok: true;
      root: Certificate;
      /** Full chain (leaf first, root last), as verified. */
      chain: Certificate[];
      /** Verification keys (uncompressed), aligned with `chain`. */
      publicKeys: Array<{ curve: CurveName; publicKey: Uint8Array }>;
    }
  | { ok: false; errors: ChainError[] };

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a).equals(Buffer.from(b));
}

function issuerDigest(cert: Certificate): Uint8Array | undefined {
  const i = cert.issuer as Record<string, unknown>;
  const d = i.sha256AndDigest ?? i.sha384AndDigest;
  return d instanceof Uint8Array ? d : undefined;
}

function vpText(vp: ValidityPeriod): string {
  return `${time32ToDate(vp.start).toISOString()} .. ${time64ToDate(validityPeriodEndTime64(vp)).toISOString()}`;
}

const msg = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/**
 * The chain of `leaf` for verifyCertificateChain: the leaf, then its issuers found among `pool` (stops at a
 * self-signed certificate, a missing issuer, a loop or 8 certificates).
 */
export function chainOf(leaf: Certificate, pool: readonly Certificate[]): Certificate[] {
  const chain = [leaf];
  let cur = leaf;
  while (!isSelfSigned(cur) && chain.length < 8) {
    const issuer = pool.find((p) => p !== cur && isIssuedBy(cur, p));
    if (!issuer || chain.includes(issuer)) break;
    chain.push(issuer);
    cur = issuer;
  }
  return chain;
}

/** Verifies a certificate chain (leaf first) up to a trust anchor; see the module comment for the checks. */
export function verifyCertificateChain(chain: readonly Certificate[], opts: ChainOptions): ChainResult {
  const errors: ChainError[] = [];
  const add = (index: number, code: ChainErrorCode, reason: string) => errors.push({ index, code, reason });
  if (chain.length === 0) return { ok: false, errors: [{ index: 0, code: 'empty-chain', reason: 'empty certificate chain' }] };

  // Complete the chain with its trust anchor when it stops below the root.
  const full = [...chain];
  const last = full[full.length - 1]!;
  if (!isSelfSigned(last)) {
    const digest = issuerDigest(last);
    const anchor = digest && opts.trustAnchors.find((a) => sameBytes(certificateHashedId8(a), digest));
    if (!anchor) {
      add(full.length - 1, 'issuer-not-found', `issuer ${digest ? hex(digest) : '(none)'} of ${certificateLabel(last, 'the')} is not a trust anchor and not in the chain`);
      return { ok: false, errors };
    }
    full.push(anchor);
  }
  const rootIndex = full.length - 1;
  const root = full[rootIndex]!;
  const label = (i: number) => certificateLabel(full[i]!, i === rootIndex ? 'root' : i === 0 ? 'leaf' : 'CA');

  // Root: self-signed, trusted, signature valid.
  const rootBytes = encodeCertificate(root);
  if (!opts.trustAnchors.some((a) => sameBytes(encodeCertificate(a), rootBytes))) {
    add(rootIndex, 'untrusted-root', `${label(rootIndex)} (${hex(certificateHashedId8(root))}) is not one of the trust anchors`);
  }

  // Public keys from the root down (implicit keys need the issuer's key).
  const keys: Array<{ curve: CurveName; publicKey: Uint8Array } | undefined> = new Array(full.length);
  for (let i = rootIndex; i >= 0; i--) {
    const cert = full[i]!;
    const structural = structureError(cert, i === rootIndex);
    if (structural) {
      add(i, 'malformed', `${label(i)}: ${structural}`);
      continue;
    }
    if (i < rootIndex && !isIssuedBy(cert, full[i + 1]!)) {
      add(i, 'issuer-mismatch', `${label(i)} names issuer ${hex(issuerDigest(cert) ?? new Uint8Array())} but the next certificate is ${hex(certificateHashedId8(full[i + 1]!))}`);
      continue;
    }
    try {
      if (cert.type === 'explicit') {
        const own = certificatePublicKey(cert);
        keys[i] = own;
        const signerKey = i === rootIndex ? own : keys[i + 1];
        if (!signerKey) continue; // issuer already failed
        const ok = verify1609Dot2Signature({
          tbsBytes: encodeTbsCertificate(cert.toBeSigned),
          signerCertificate: i === rootIndex ? undefined : full[i + 1],
          signature: cert.signature!,
          curve: signerKey.curve,
          publicKey: signerKey.publicKey,
        });
        if (!ok) add(i, 'bad-signature', `${label(i)}: signature does not verify with ${i === rootIndex ? 'its own key' : `the key of ${label(i + 1)}`}`);
      } else {
        if (!keys[i + 1]) continue;
        keys[i] = certificatePublicKey(cert, full.slice(i + 1));
      }
    } catch (e) {
      add(i, 'malformed', `${label(i)}: ${msg(e)}`);
    }
  }

  // Validity, region and permissions.
  const now = opts.clock.now();
  for (let i = 0; i <= rootIndex; i++) {
    const cert = full[i]!;
    const vp = cert.toBeSigned.validityPeriod;
    if (!opts.skipCurrentValidity && !validAt(vp, now)) {
      const before = now.getTime() < time32ToDate(vp.start).getTime();
      add(i, before ? 'not-yet-valid' : 'expired', `${label(i)} is ${before ? 'not yet valid' : 'expired'} at ${now.toISOString()} (valid ${vpText(vp)})`);
    }
    if (i === rootIndex) continue;
    const issuer = full[i + 1]!;
    if (!validityPeriodContainsPeriod(issuer.toBeSigned.validityPeriod, vp)) {
      add(i, 'validity-outside-issuer', `${label(i)} validity ${vpText(vp)} is not within ${label(i + 1)} validity ${vpText(issuer.toBeSigned.validityPeriod)}`);
    }
    const region = cert.toBeSigned.region;
    if (region) {
      const outer = full.slice(i + 1).find((c) => c.toBeSigned.region)?.toBeSigned.region;
      if (outer) {
        const why = regionWithin(region, outer);
        if (why) add(i, 'region-outside-issuer', `${label(i)} region is not within the region of its issuer: ${why}`);
      }
    }
    for (const p of checkIssuePermissions(issuer, cert, { issuer: label(i + 1), subject: label(i) })) add(i, 'permissions', p);
  }

  if (opts.requiredPsid !== undefined && !certificateAllowsPsid(full[0]!, opts.requiredPsid)) {
    add(0, 'psid-not-permitted', `${label(0)} does not grant psid 0x${BigInt(opts.requiredPsid).toString(16)}`);
  }

  if (errors.length > 0) return { ok: false, errors: errors.sort((a, b) => a.index - b.index) };
  return { ok: true, root, chain: full, publicKeys: keys as Array<{ curve: CurveName; publicKey: Uint8Array }> };
}

function validAt(vp: ValidityPeriod, now: Date): boolean {
  try {
    return validityPeriodContains(vp, now);
  } catch {
    return false; // a time outside the Time64 range (before 2004) lies in no validity period
  }
}

function structureError(cert: Certificate, isRoot: boolean): string | undefined {
  if (cert.version !== 3) return `version ${cert.version} is not 3`;
  if (cert.type === 'explicit') {
    if (!cert.signature) return 'explicit certificate without a signature';
    if (!('verificationKey' in (cert.toBeSigned.verifyKeyIndicator as object))) return 'explicit certificate without verificationKey';
  } else if (cert.type === 'implicit') {
    if (cert.signature) return 'implicit certificate with a signature';
    if (!('reconstructionValue' in (cert.toBeSigned.verifyKeyIndicator as object))) return 'implicit certificate without reconstructionValue';
    if (isSelfSigned(cert)) return 'implicit certificates cannot be self-signed';
  } else return `unknown certificate type ${String(cert.type)}`;
  if (isRoot && !isSelfSigned(cert)) return 'the last certificate is not self-signed';
  if (!isRoot && isSelfSigned(cert)) return 'a self-signed certificate below the root';
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Region containment (6.4.17 - 6.4.23)
// ---------------------------------------------------------------------------------------------

/** undefined when `inner` lies within `outer`, else the reason. */
export function regionWithin(inner: GeographicRegion, outer: GeographicRegion): string | undefined {
  const [ia, iv] = Object.entries(inner)[0] as [string, unknown];
  const [oa, ov] = Object.entries(outer)[0] as [string, unknown];
  if (ia === 'identifiedRegion' && oa === 'identifiedRegion') {
    for (const r of iv as IdentifiedRegion[]) {
      if (!(ov as IdentifiedRegion[]).some((o) => identifiedWithin(r, o))) return `${describeIdentified(r)} is outside ${(ov as IdentifiedRegion[]).map(describeIdentified).join(', ')}`;
    }
    return undefined;
  }
  if (ia === 'identifiedRegion' || oa === 'identifiedRegion') return `cannot establish that a ${ia} lies within a ${oa}`;
  const points = boundaryPoints(ia, iv);
  if (!points) return `unsupported region type ${ia}`;
  if (ia === 'circularRegion' && oa === 'circularRegion') {
    const a = iv as CircularRegion;
    const b = ov as CircularRegion;
    return distanceMetres(a.center, b.center) + a.radius <= b.radius ? undefined : 'circle is not inside the issuer circle';
  }
  const inside = pointTest(oa, ov);
  if (!inside) return `unsupported region type ${oa}`;
  const bad = points.find((p) => !inside(p));
  return bad ? `point (${bad.latitude / 1e7}, ${bad.longitude / 1e7}) is outside the issuer ${oa}` : undefined;
}

function identifiedWithin(r: IdentifiedRegion, o: IdentifiedRegion): boolean {
  const rr = r as Record<string, any>;
  const oo = o as Record<string, any>;
  const country = (x: Record<string, any>): number | undefined =>
    typeof x.countryOnly === 'number' ? x.countryOnly : (x.countryAndRegions ?? x.countryAndSubregions)?.countryOnly;
  if (country(rr) === undefined || country(rr) !== country(oo)) return false;
  if ('countryOnly' in oo && typeof oo.countryOnly === 'number') return true;
  if ('countryOnly' in rr && typeof rr.countryOnly === 'number') return false;
  const innerRegions: Array<{ region: number; subregions?: number[] }> = rr.countryAndRegions
    ? (rr.countryAndRegions.regions as number[]).map((region) => ({ region }))
    : rr.countryAndSubregions.regionAndSubregions;
  if (oo.countryAndRegions) return innerRegions.every((x) => (oo.countryAndRegions.regions as number[]).includes(x.region));
  const outer = oo.countryAndSubregions.regionAndSubregions as Array<{ region: number; subregions: number[] }>;
  return innerRegions.every((x) => {
    const m = outer.find((y) => y.region === x.region);
    return m !== undefined && x.subregions !== undefined && x.subregions.every((s) => m.subregions.includes(s));
  });
}

function describeIdentified(r: IdentifiedRegion): string {
  const rr = r as Record<string, any>;
  if (typeof rr.countryOnly === 'number') return `country ${rr.countryOnly}`;
  if (rr.countryAndRegions) return `country ${rr.countryAndRegions.countryOnly} regions [${rr.countryAndRegions.regions.join(', ')}]`;
  if (rr.countryAndSubregions) return `country ${rr.countryAndSubregions.countryOnly} subregions`;
  return 'unknown identified region';
}

const EARTH_RADIUS_M = 6_371_000;
const rad = (tenthMicroDeg: number) => (tenthMicroDeg / 1e7) * (Math.PI / 180);

/** Great-circle distance (haversine) between two TwoDLocations in metres. */
export function distanceMetres(a: TwoDLocation, b: TwoDLocation): number {
  const dLat = rad(b.latitude - a.latitude);
  const dLon = rad(b.longitude - a.longitude);
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(rad(a.latitude)) * Math.cos(rad(b.latitude)) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** Points whose inclusion stands for the region's inclusion (vertices; 32 boundary points of a circle). */
function boundaryPoints(alt: string, v: unknown): TwoDLocation[] | undefined {
  if (alt === 'rectangularRegion') {
    return (v as RectangularRegion[]).flatMap((r) => [
      r.northWest,
      r.southEast,
      { latitude: r.northWest.latitude, longitude: r.southEast.longitude },
      { latitude: r.southEast.latitude, longitude: r.northWest.longitude },
    ]);
  }
  if (alt === 'polygonalRegion') return v as TwoDLocation[];
  if (alt === 'circularRegion') {
    const c = v as CircularRegion;
    const out: TwoDLocation[] = [];
    const dLat = (c.radius / EARTH_RADIUS_M) * (180 / Math.PI) * 1e7;
    const dLon = dLat / Math.max(1e-9, Math.cos(rad(c.center.latitude)));
    for (let k = 0; k < 32; k++) {
      const t = (2 * Math.PI * k) / 32;
      out.push({ latitude: Math.round(c.center.latitude + dLat * Math.sin(t)), longitude: Math.round(c.center.longitude + dLon * Math.cos(t)) });
    }
    return out;
  }
  return undefined;
}

function pointTest(alt: string, v: unknown): ((p: TwoDLocation) => boolean) | undefined {
  if (alt === 'rectangularRegion') {
    const rects = v as RectangularRegion[];
    return (p) =>
      rects.some(
        (r) =>
          p.latitude <= r.northWest.latitude &&
          p.latitude >= r.southEast.latitude &&
          p.longitude >= r.northWest.longitude &&
          p.longitude <= r.southEast.longitude,
      );
  }
  if (alt === 'circularRegion') {
    const c = v as CircularRegion;
    return (p) => distanceMetres(c.center, p) <= c.radius * (1 + 1e-9) + 1;
  }
  if (alt === 'polygonalRegion') {
    const poly = v as TwoDLocation[];
    return (p) => pointInPolygon(p, poly);
  }
  return undefined;
}

/** Ray casting in the (longitude, latitude) plane; boundary points count as inside. */
function pointInPolygon(p: TwoDLocation, poly: TwoDLocation[]): boolean {
  let inside = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const a = poly[i]!;
    const b = poly[j]!;
    if (a.latitude === p.latitude && a.longitude === p.longitude) return true;
    if (a.latitude > p.latitude !== b.latitude > p.latitude) {
      const x = a.longitude + ((p.latitude - a.latitude) * (b.longitude - a.longitude)) / (b.latitude - a.latitude);
      if (x === p.longitude) return true;
      if (p.longitude < x) inside = !inside;
    }
  }
  return inside;
}
