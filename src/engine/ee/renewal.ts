// When a device that continues from its state directory asks for more: the next authorization batch (its held
// certificates stop covering now + look-ahead) and a successor enrollment certificate (the enrollment certificate
// nears its expiry). Pure decisions on the state's public facts and the policy; simulate.ts acts on them.
import { dateToTime32, nowTime32, type Clock, type Time32 } from '../../security/time.js';
import type { GlobalPolicy } from '../policy/index.js';
import type { EeState, StoredCertificate } from './state.js';

/** Default time before the enrollment certificate's expiry at which a continued run enrolls its successor: 30 days. */
export const DEFAULT_RENEW_ENROLLMENT_BEFORE_SECONDS = 30 * 86_400;

const t32 = (iso: string | undefined): Time32 | undefined => (iso === undefined ? undefined : dateToTime32(new Date(iso)));

/** End of what the held certificates cover (the latest validUntil); undefined when none is held. */
export function coverageEnd(certs: ReadonlyArray<Pick<StoredCertificate, 'validUntil'>>): Time32 | undefined {
  let end: Time32 | undefined;
  for (const c of certs) {
    const u = t32(c.validUntil);
    if (u !== undefined && (end === undefined || u > end)) end = u;
  }
  return end;
}

export type AuthorizationPlan =
  /** The last request's batch is not downloaded yet: download it (no new request). */
  | { action: 'download' }
  /** The held certificates cover now + look-ahead: nothing to ask. */
  | { action: 'held'; until: Time32 }
  /** A new request whose validity starts at `start` (now, or the start of what the held certificates do not cover). */
  | { action: 'request'; start: Time32; reason: string };

/**
 * What the request step does. look-ahead (default `time-overlap`, at most `ra-maxPreloadTime` and `ra-maxGenDelay`): a new batch is asked
 * for once the held certificates end within it. The new batch starts where the held ones stop overlapping: the
 * latest validUntil minus `time-overlap` (certificates of i-period i stay valid `time-overlap` into i+1, policy
 * README), and not before now.
 */
export function planAuthorization(st: Pick<EeState, 'authorization' | 'certificates'>, policy: GlobalPolicy, clock: Clock, lookAheadSeconds?: number): AuthorizationPlan {
  if (st.authorization && !st.authorization.downloadedAt) return { action: 'download' };
  const now = nowTime32(clock);
  const end = coverageEnd(st.certificates);
  if (end === undefined) return { action: 'request', start: now, reason: 'no certificates held' };
  // Not further ahead than the RA accepts: ra-maxPreloadTime from now, ra-maxGenDelay from the request's generation.
  const ahead = Math.min(Math.max(0, lookAheadSeconds ?? policy['time-overlap']), policy['ra-maxPreloadTime'], policy['ra-maxGenDelay']);
  if (end - now > ahead) return { action: 'held', until: end };
  const start = Math.max(now, end - policy['time-overlap']);
  return { action: 'request', start, reason: end <= now ? 'the held certificates have expired' : `the held certificates end within the look-ahead (${ahead} s)` };
}

/** Held certificates still valid at `at` (those that ended before it are dropped from the state). */
export function stillValid<T extends Pick<StoredCertificate, 'validUntil'>>(certs: readonly T[], at: Time32): T[] {
  return certs.filter((c) => {
    const u = t32(c.validUntil);
    return u === undefined || u > at;
  });
}

/** The certificate may sign now: validFrom <= now < validUntil (1609.2 5.2.x: generation time within the validity). */
export function usableAt(c: Pick<StoredCertificate, 'validFrom' | 'validUntil'>, at: Time32): boolean {
  const f = t32(c.validFrom);
  const u = t32(c.validUntil);
  return (f === undefined || f <= at) && (u === undefined || at < u);
}

/** Seconds until the enrollment certificate expires when that is within `beforeSeconds`; undefined otherwise. */
export function enrollmentRenewalDue(st: Pick<EeState, 'enrollment'>, clock: Clock, beforeSeconds = DEFAULT_RENEW_ENROLLMENT_BEFORE_SECONDS): number | undefined {
  const u = t32(st.enrollment?.validUntil);
  if (u === undefined) return undefined;
  const left = u - nowTime32(clock);
  return left <= beforeSeconds ? left : undefined;
}
