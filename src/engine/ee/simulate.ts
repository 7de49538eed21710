/**
 * One simulated end entity over the public HTTP interface only (no in-process shortcuts):
 *   bootstrap  GET CTL series, CCF, RA certificate, policies, info status; verified against the device's roots
 *   register   POST /v3/devices with the operator token (else: the canonical key is taken as pre-registered)
 *   enroll     POST /v3/enrollment-certificate (ECA), response verified, enrollment key reconstructed
 *   request    POST /v3/authorization-certificate (RA), butterfly secrets kept in the keystore, ack verified
 *   download   wait for nextDlTime, GET /v3/authorization-certificate (503/429 + Retry-After: bounded backoff),
 *              decrypt, reconstruct keys, verify every certificate
 *   use        sign a BSM-style message (PSID 0x20; identification certificates: their first PSID) with each
 *              certificate and verify it
 * Each step's result is kept in the state directory (state.ts), so a second run continues where the first
 * stopped. Failures are SimulationError with the step and, for SCMS answers, the HTTP status and 1609.2.1 code.
 */
import { Ieee1609Dot2Data as Ieee1609Dot2DataCodec, type Certificate } from '../../codec/index.js';
import type { CurveName } from '../../crypto/curves.js';
import { fromHex, toHex } from '../../crypto/bytes.js';
import { certificateHashedId8, decodeCertificate, encodeCertificate, isIssuedBy, isSelfSigned } from '../../security/certificate.js';
import { mulBase } from '../../crypto/curves.js';
import { scalarSigner } from '../../security/signer.js';
import { signData, verifySignedData } from '../../security/spdu.js';
import { dateToTime32, iPeriodOf, nowTime32, time32ToDate, time64ToDate, validityPeriodEndTime64, type Clock } from '../../security/time.js';
import { roleOfSsp, SECURITY_MGMT_PSID } from '../manager/profiles.js';
import { iPeriodParamsOf, type GlobalPolicy } from '../policy/index.js';
import {
  AuthorizationClientError,
  buildAuthorizationRequest,
  buildDownloadRequest,
  processAuthorizationAck,
  type EnrollmentCredential,
} from './authorization-client.js';
import { AuthorizationResponseError } from './authorization.js';
import { bootstrapTrust, BootstrapError, type TrustStore } from './bootstrap.js';
import type { ButterflySecrets } from './butterfly.js';
import { createKindRequest, kindDownloadFilename, KindResponseError, processKindDownload, type EeRequestForm, type KindSecrets } from './kinds.js';
import { buildEnrollmentRequest, EnrollmentResponseError, processEnrollmentResponse } from './enroll.js';
import { publicKeyOf, verifyChainFast, type PublicKey } from './fast-verify.js';
import { processSuccessorResponse, runSuccessorExchange } from './successor.js';
import { bodyBytes, eeRequest, errorCodeMeaning, ScmsResponseError, type EeHttpOptions } from './http.js';
import { canonicalIdOf, compressedPublicKey, keyPairFromPrivate, keyPairSigner } from './keys.js';
import { DEFAULT_RENEW_ENROLLMENT_BEFORE_SECONDS, enrollmentRenewalDue, planAuthorization, stillValid, usableAt } from './renewal.js';
import { newState, type ButterflyChoice, type CertForm, type CertKind, type DeviceType, type EeState, type EeStateDir } from './state.js';

export const BSM_PSID = 0x20;
export const STEPS = ['bootstrap', 'register', 'enroll', 'request', 'download', 'use', 'successor'] as const;
export type Step = (typeof STEPS)[number];

/** A failed step: what the SCMS answered (http) or which local check failed (check). */
export class SimulationError extends Error {
  override readonly name = 'SimulationError';
  constructor(
    readonly step: Step,
    message: string,
    readonly http?: { method: string; url: string; status: number; code?: number; meaning?: string; reason?: string },
    readonly check?: string,
  ) {
    super(`${step}: ${message}`);
  }
}

/** The options cannot work together (nothing was sent). */
export class SimulationInputError extends Error {
  override readonly name = 'SimulationInputError';
}

/** Refuses combinations the standard does not allow, before anything is sent. */
export function checkOptions(c: { cert: CertKind; form: CertForm; butterfly: ButterflyChoice; encrypted: boolean }): void {
  if (c.butterfly === 'compact-unified' && c.form !== 'implicit') throw new SimulationInputError('compact unified butterfly keys are for implicit certificates only (--form implicit)');
  if (c.cert === 'pseudonym' && c.butterfly === 'none') throw new SimulationInputError('pseudonym certificates are requested with butterfly keys (--butterfly original|unified|compact-unified)');
  if (c.encrypted && c.butterfly !== 'none') throw new SimulationInputError('--encrypted chooses the non-butterfly response form; butterfly responses are always encrypted (use --butterfly none)');
}

export interface SimEvent {
  step: Step;
  kind: 'start' | 'sent' | 'received' | 'info' | 'wait' | 'skip' | 'done';
  message: string;
  /** SPDU octets (hex) with verbose. */
  spdu?: string;
}

export interface SimulateOptions {
  state: EeStateDir;
  raUrl?: string;
  ecaUrl?: string;
  deviceType?: DeviceType;
  cert?: CertKind;
  form?: CertForm;
  butterfly?: ButterflyChoice;
  encrypted?: boolean;
  /** HashedId8s of the roots the device trusts (first run; kept in the state). */
  trustedRootHashes?: string[];
  operatorToken?: string;
  clock: Clock;
  http?: EeHttpOptions;
  /** Longest total wait for the batch (download time + not-ready answers), seconds. Default 300. */
  maxWaitSeconds?: number;
  /** Stop (successfully) after this step. */
  stopAfter?: Step;
  /** After the lifecycle: successor enrollment (successorStep) and switch to the new enrollment certificate. */
  successor?: boolean;
  /**
   * A continued run asks for the next batch once the held certificates end within this many seconds (renewal.ts;
   * default the policy's time-overlap, at most ra-maxPreloadTime).
   */
  lookAheadSeconds?: number;
  /** A continued run enrolls a successor once the enrollment certificate expires within this (default 30 days). */
  renewEnrollmentBeforeSeconds?: number;
  verbose?: boolean;
  onEvent?: (e: SimEvent) => void;
  /**
   * Trust the caller has already downloaded from this RA and verified with bootstrapTrust against the same
   * trusted roots (fleet mode: once for every device) instead of downloading and verifying it again.
   */
  sharedTrust?: TrustStore;
}

export interface CertificateReport extends CertificateSummary {
  i?: number;
  j?: number;
  verified: boolean;
  message?: { psid: number; signed: boolean; verified: boolean; octets: number };
}

export interface SimulationReport {
  stateDir: string;
  complete: boolean;
  pending?: string;
  steps: Array<{ step: Step; status: 'done' | 'already done' | 'skipped' | 'pending'; detail: string }>;
  canonicalId?: string;
  deviceId?: string;
  trust?: { ctlSeriesId: string; ctlSequenceNumber: number; raCertificate: string; roots: string[] };
  enrollment?: CertificateSummary;
  certificates: CertificateReport[];
}

const sleepDefault = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Turns an SCMS HTTP error into a SimulationError of `step`. */
function httpFailure(step: Step, e: unknown): never {
  if (e instanceof ScmsResponseError) {
    throw new SimulationError(step, e.message, {
      method: e.method,
      url: e.url,
      status: e.status,
      ...(e.code === undefined ? {} : { code: e.code }),
      ...(e.reason === undefined ? {} : { reason: e.reason }),
      ...(e.code !== undefined ? { meaning: errorCodeMeaning(e.code) } : {}),
    });
  }
  throw e;
}

/**
 * A resend (after the first attempt's connection was lost before any answer, ee/http.ts) refused as a replay
 * (400-60): the first attempt reached the SCMS and was accepted; only its answer was lost.
 */
function acceptedButAnswerLost(e: unknown): e is ScmsResponseError {
  return e instanceof ScmsResponseError && e.afterLostConnection !== undefined && e.status === 400 && e.code === 60;
}

export async function simulate(opts: SimulateOptions): Promise<SimulationReport> {
  const sd = opts.state;
  const clock = opts.clock;
  const sleep = opts.http?.sleep ?? sleepDefault;
  const emit = (step: Step, kind: SimEvent['kind'], message: string, spdu?: Uint8Array) =>
    opts.onEvent?.({ step, kind, message, ...(spdu && opts.verbose ? { spdu: toHex(spdu) } : {}) });
  const now = () => clock.now().toISOString();

  // State: load or create from the options; options given again override the stored ones.
  let st: EeState;
  if (sd.exists()) {
    st = sd.load();
    const c = st.config;
    if (opts.raUrl) c.raUrl = opts.raUrl;
    if (opts.ecaUrl) c.ecaUrl = opts.ecaUrl;
    if (opts.trustedRootHashes?.length) c.trustedRootHashes = opts.trustedRootHashes.map((h) => h.toLowerCase());
    for (const [k, v] of [['deviceType', opts.deviceType], ['cert', opts.cert], ['form', opts.form], ['butterfly', opts.butterfly]] as const) {
      if (v !== undefined && v !== c[k]) throw new SimulationInputError(`--${k === 'deviceType' ? 'type' : k} ${v} differs from the state directory's ${c[k]} (use a new --state)`);
    }
  } else {
    if (!opts.raUrl) throw new SimulationInputError('no RA URL (--ra) and no state to continue');
    if (!opts.trustedRootHashes?.length) throw new SimulationInputError('the device trusts no root yet: give --trust-root HASHEDID8 (repeatable)');
    st = newState({
      raUrl: opts.raUrl,
      ecaUrl: opts.ecaUrl ?? opts.raUrl,
      deviceType: opts.deviceType ?? 'obu',
      cert: opts.cert ?? 'pseudonym',
      form: opts.form ?? 'implicit',
      butterfly: opts.butterfly ?? 'unified',
      encrypted: opts.encrypted ?? false,
      trustedRootHashes: opts.trustedRootHashes.map((h) => h.toLowerCase()),
    });
  }
  const cfg = st.config;
  checkOptions(cfg);
  const ra = cfg.raUrl.replace(/\/+$/, '');
  const eca = cfg.ecaUrl.replace(/\/+$/, '');
  const http: EeHttpOptions = {
    ...opts.http,
    onRetry: (r) => {
      opts.http?.onRetry?.(r);
      emit(
        current,
        'wait',
        r.status === 0
          ? `no answer (${r.lost ?? 'connection lost'}): sending again over a new connection (resend ${r.attempt})`
          : `HTTP ${r.status}${r.code !== undefined ? ` (code ${r.code})` : ''}: retry ${r.attempt} in ${r.waitSeconds} s`,
      );
    },
  };
  let current: Step = 'bootstrap';
  const report: SimulationReport = { stateDir: sd.dir, complete: false, steps: [], certificates: [] };
  const record = (step: Step, status: SimulationReport['steps'][number]['status'], detail: string) => {
    report.steps.push({ step, status, detail });
    if (status === 'done') st.history.push({ at: now(), step, note: detail });
    emit(step, status === 'done' ? 'done' : status === 'pending' ? 'wait' : 'skip', `${status === 'done' ? '' : `${status}: `}${detail}`);
  };
  const stop = (step: Step) => opts.stopAfter === step;
  const finish = async () => {
    await sd.save(st);
    report.canonicalId = st.canonical?.canonicalId;
    if (st.registration) report.deviceId = st.registration.deviceId;
    return report;
  };

  // ------------------------------------------------------------------ bootstrap
  current = 'bootstrap';
  emit('bootstrap', 'start', `GET trust files from ${ra} (CTL series, CCF, RA certificate, policies, info status)`);
  let trust: TrustStore;
  try {
    trust = opts.sharedTrust ?? (await bootstrapTrust({ raUrl: ra, trustedRootHashes: cfg.trustedRootHashes, clock, fetch: reachable(ra, opts.http?.fetch) }));
  } catch (e) {
    if (e instanceof BootstrapError) throw new SimulationError('bootstrap', e.message, undefined, e.check);
    throw e;
  }
  const prevSeq = st.trust?.ctlSequenceNumber;
  if (prevSeq !== undefined && st.trust?.ctlSeriesId === trust.ctlSeriesId && trust.ctl.sequenceNumber < prevSeq) {
    throw new SimulationError('bootstrap', `CTL rollback: the RA serves #${trust.ctl.sequenceNumber}, the device already holds #${prevSeq}`, undefined, 'ctl');
  }
  const files: string[] = [];
  for (const [k, f] of trust.ctlFiles.entries()) files.push(await sd.writeFile(`trust/ctl_${trust.ctlSeriesId}_${k + 1}.oer`, f));
  files.push(await sd.writeFile('trust/ccf.oer', trust.ccf));
  files.push(await sd.writeFile('trust/ra-certificate.oer', trust.raCertificateBytes));
  files.push(await sd.writeFile('trust/global-policy.oer', trust.globalPolicy.signed));
  if (trust.localPolicy) files.push(await sd.writeFile('trust/local-policy.oer', trust.localPolicy.signed));
  const raId = toHex(certificateHashedId8(trust.raCertificate));
  st.trust = { ctlSeriesId: trust.ctlSeriesId, ctlSequenceNumber: trust.ctl.sequenceNumber, raCertificate: raId, files, at: now() };
  report.trust = { ctlSeriesId: trust.ctlSeriesId, ctlSequenceNumber: trust.ctl.sequenceNumber, raCertificate: raId, roots: trust.trustAnchors.map((r) => toHex(certificateHashedId8(r))) };
  record(
    'bootstrap',
    'done',
    `CTL ${trust.ctlSeriesId} #${trust.ctl.sequenceNumber} verified${opts.sharedTrust ? ' once for the fleet' : ''} (roots ${report.trust.roots.join(', ')}), CCF with ${trust.certificates.length} certificates, RA certificate ${raId}, global policy${trust.localPolicy ? ' + local policy' : ''}`,
  );
  await sd.save(st);
  if (stop('bootstrap')) return finish();
  const policy = trust.globalPolicy.policy;

  // ------------------------------------------------------------------ register
  current = 'register';
  if (!st.canonical) {
    const h = await sd.keystore.generate('canonical', 'P-256', { overwrite: true });
    const pub = compressedPublicKey('nistP256', h.publicKey);
    st.canonical = { keyUri: h.uri, publicKey: toHex(pub), canonicalId: canonicalIdOf('nistP256', h.publicKey), curve: 'nistP256' };
    emit('register', 'info', `canonical key generated in the keystore: ${toHex(pub)} (canonical id ${st.canonical.canonicalId})`);
    await sd.save(st);
  }
  if (st.registration) record('register', 'already done', `device ${st.registration.deviceId}`);
  else if (!opts.operatorToken) {
    record('register', 'skipped', `no operator token: canonical key ${st.canonical.canonicalId} taken as pre-registered`);
  } else {
    const body = JSON.stringify({ deviceType: cfg.deviceType, canonicalPublicKey: st.canonical.publicKey });
    emit('register', 'sent', `POST ${ra}/v3/devices ${body}`);
    let out: { deviceId: string; state: string };
    try {
      const res = await eeRequest(
        { method: 'POST', url: `${ra}/v3/devices`, body, headers: { 'content-type': 'application/json', authorization: `Bearer ${opts.operatorToken}` } },
        http,
      );
      out = (await res.json()) as { deviceId: string; state: string };
    } catch (e) {
      // 409 to a resend after a lost connection (http.ts): the first attempt registered this key; its answer was lost.
      const mine = e instanceof ScmsResponseError && e.status === 409 && e.afterLostConnection ? e.details : undefined;
      const id = mine?.deviceId;
      if (typeof id !== 'string') httpFailure('register', e);
      out = { deviceId: id, state: typeof mine?.state === 'string' ? mine.state : 'registered' };
    }
    emit('register', 'received', `device ${out.deviceId}, state ${out.state}`);
    st.registration = { deviceId: out.deviceId, state: out.state, at: now() };
    record('register', 'done', `registered as ${cfg.deviceType} device ${out.deviceId}`);
  }
  await sd.save(st);
  if (stop('register')) return finish();

  // ------------------------------------------------------------------ enroll
  current = 'enroll';
  const anchors = trust.trustAnchors;
  let enrollCert: Certificate;
  let enrollment: EnrollmentCredential;
  if (st.enrollment) {
    enrollCert = decodeCertificate(sd.readFile(st.enrollment.file));
    const issuers = sd.listFiles('certs').filter((f) => /enrollment-issuer-\d+\.oer$/.test(f)).sort((a, b) => issuerIndex(a) - issuerIndex(b)).map((f) => decodeCertificate(sd.readFile(f)));
    const d = await sd.getScalar(st.enrollment.keyUri);
    // What the device holds is checked again against today's trust: chain (CTL may have removed a root) and key.
    const v = verifyChainFast([enrollCert, ...issuers], { trustAnchors: anchors, clock, skipCurrentValidity: true });
    if (!v.ok) throw new SimulationError('enroll', `the stored enrollment certificate no longer chains to a trusted root: ${v.errors.map((e) => e.reason).join('; ')}`, undefined, 'enrollment-chain');
    const pk = v.publicKeys[0]!;
    if (!keyMatches(pk, d)) throw new SimulationError('enroll', 'the stored enrollment key does not match the enrollment certificate', undefined, 'enrollment-key');
    enrollment = { certificate: enrollCert, signer: keyPairSigner({ curve: pk.curve, privateKey: d, publicKey: pk.publicKey }) };
    record('enroll', 'already done', `enrollment certificate ${st.enrollment.hashedId8} (chain and key checked again)`);
  } else {
    const canonical = keyPairFromPrivate('nistP256', await sd.getScalar(st.canonical.keyUri));
    const allowed = policy.deviceTypes[policyType(cfg.deviceType)]?.enrollment ?? [];
    if (allowed.length === 0) throw new SimulationError('enroll', `the global policy allows no enrollment PSIDs for ${cfg.deviceType} devices`, undefined, 'policy');
    const build = () =>
      buildEnrollmentRequest({
        canonicalKey: keyPairSigner(canonical),
        type: cfg.form,
        psids: allowed.map((a) => Number(a.psid)),
        validity: { durationSeconds: Math.min(policy.enrollmentValidity, 3 * 31_556_952) },
        clock,
      });
    let { spdu, state } = await build();
    let body: Uint8Array;
    for (let attempt = 1; ; attempt++) {
      emit('enroll', 'sent', `POST ${eca}/v3/enrollment-certificate EeEcaCertRequestSpdu (${spdu.length} octets, ${cfg.form}, canonical id ${st.canonical.canonicalId}, request hash ${toHex(state.requestHash)})`, spdu);
      try {
        body = await bodyBytes(await eeRequest({ method: 'POST', url: `${eca}/v3/enrollment-certificate`, body: spdu, headers: { 'content-type': 'application/octet-stream' } }, { ...http, maxRetries: 0 }));
        break;
      } catch (e) {
        // The ECA issued, but the certificate was lost with the connection and a replay gets no stored answer:
        // a new request once eca-minWait has passed (the ECA counts the lost one).
        const waitMs = (policy['eca-minWait'] + 1) * 1000;
        if (!acceptedButAnswerLost(e) || attempt >= 2 || waitMs > (opts.maxWaitSeconds ?? 300) * 1000) httpFailure('enroll', e);
        emit('enroll', 'wait', `the ECA accepted the request but its answer was lost with the connection (the resend was refused as a replay, 400-60): a new enrollment request in ${waitMs / 1000} s (eca-minWait)`);
        await sleep(waitMs);
        ({ spdu, state } = await build());
      }
    }
    emit('enroll', 'received', `EcaEeCertResponseSpdu (${body.length} octets)`, body);
    let e;
    try {
      e = processEnrollmentResponse(body, state, { trustAnchors: anchors, clock });
    } catch (err) {
      if (err instanceof EnrollmentResponseError) throw new SimulationError('enroll', `the ECA response does not check: ${err.message}`, undefined, 'enrollment-response');
      throw err;
    }
    enrollCert = e.certificate;
    enrollment = { certificate: e.certificate, signer: e.signer };
    const bytes = encodeCertificate(e.certificate);
    const keyUri = await sd.putScalar('enrollment', e.curve, e.privateKey);
    const file = await sd.writeFile('certs/enrollment.oer', bytes);
    for (const [k, c] of e.chain.entries()) await sd.writeFile(`certs/enrollment-issuer-${k}.oer`, encodeCertificate(c));
    const sum = certificateSummary(e.certificate, bytes);
    st.enrollment = { file, keyUri, hashedId8: sum.hashedId8, type: cfg.form, validFrom: sum.validFrom, ...(sum.validUntil ? { validUntil: sum.validUntil } : {}), at: now() };
    if (st.registration) st.registration.state = 'enrolled'; // as the RA's registry now has it
    record('enroll', 'done', `enrollment certificate ${sum.hashedId8} (${sum.certificateType}, valid ${sum.validFrom} .. ${sum.validUntil ?? '?'}, issued by ${sum.issuer}); key reconstructed and checked`);
  }
  report.enrollment = certificateSummary(enrollCert, encodeCertificate(enrollCert));
  await sd.save(st);
  if (stop('enroll')) return finish();

  // ------------------------------------------------------------------ request
  current = 'request';
  const form: EeRequestForm = cfg.butterfly !== 'none' ? 'butterfly' : cfg.encrypted ? 'encrypted' : 'plain';
  const variant = cfg.butterfly === 'none' ? undefined : cfg.butterfly === 'compact-unified' ? 'compactUnified' : cfg.butterfly;
  // A continued run: the pending batch is downloaded, or the next one asked for when the held certificates run out
  // (renewal.ts planAuthorization: look-ahead, policy time-overlap).
  const valid = stillValid(st.certificates, nowTime32(clock));
  if (valid.length < st.certificates.length) {
    emit('request', 'info', `${st.certificates.length - valid.length} expired certificates dropped from the state`);
    st.certificates = valid;
  }
  const plan = planAuthorization(st, policy, clock, opts.lookAheadSeconds);
  const pending = plan.action === 'download';
  if (plan.action === 'download') {
    record('request', 'already done', `request ${st.authorization!.requestHash}, batch ${st.authorization!.filename} not downloaded yet`);
  } else if (plan.action === 'held') {
    record('request', 'already done', `${st.certificates.length} certificates held, valid until ${time32ToDate(plan.until).toISOString()}${st.authorization ? ` (batch ${st.authorization.filename})` : ''}; nothing to ask before then`);
  } else {
    if (st.certificates.length > 0) emit('request', 'info', `next batch: ${plan.reason}; validity from ${time32ToDate(plan.start).toISOString()}`);
    // ra-minWait counts from the previous request's generationTime: wait it out rather than be refused (429-711).
    const lastRequest = st.history.findLast((h) => h.step === 'request');
    if (lastRequest) {
      const waitMs = policy['ra-minWait'] * 1000 - (clock.now().getTime() - Date.parse(lastRequest.at));
      if (waitMs > (opts.maxWaitSeconds ?? 300) * 1000) {
        record('request', 'pending', `ra-minWait: the next request may be sent from ${new Date(clock.now().getTime() + waitMs).toISOString()}; run again then`);
        report.pending = new Date(clock.now().getTime() + waitMs).toISOString();
        return finish();
      }
      if (waitMs > 0) {
        emit('request', 'wait', `waiting ${Math.ceil(waitMs / 1000)} s for ra-minWait since the previous request`);
        await sleep(waitMs);
      }
    }
    const kind = cfg.cert;
    const psids = (policy.deviceTypes[policyType(cfg.deviceType)]?.[kind] ?? []).map((p) => BigInt(p.psid));
    if (psids.length === 0) throw new SimulationError('request', `the global policy allows no ${kind} PSIDs for ${cfg.deviceType} devices`, undefined, 'policy');
    const duration =
      kind === 'pseudonym'
        ? { hours: Math.max(1, Math.ceil(policy['time-iPeriodLength'] / 3600)) }
        : { hours: Math.max(1, Math.min(24 * 90, Math.floor(policy.identificationValidity / 3600))) };
    let made;
    try {
      made = createKindRequest({
      kind,
      form,
      ...(variant ? { variant } : {}),
      type: cfg.form,
      ...(kind === 'identification' && form === 'butterfly' ? { id: { name: `${cfg.deviceType}-${st.canonical.canonicalId}` } } : {}),
      tbsCert: { validityPeriod: { start: plan.start, duration }, appPermissions: psids.map((psid) => ({ psid })) },
      clock,
    });
    } catch (e) {
      throw new SimulationError('request', `cannot build the request: ${(e as Error).message}`, undefined, 'request');
    }
    const { request, secrets } = made;
    // 1609.2-2022 6.4.8 flags usesCubk: only such an ACA answers compact unified butterfly requests.
    if (variant === 'compactUnified' && !acaChainsOf(trust).some((ch) => ch[0]!.toBeSigned.flags?.[0] === '1')) {
      throw new SimulationError('request', 'compact unified butterfly keys need an ACA certificate with flags usesCubk; no ACA certificate in the CCF has it (use --butterfly unified or original)', undefined, 'aca-cubk');
    }
    const { spdu, requestHash } = await buildAuthorizationRequest({ request, enrollment, raCertificate: trust.raCertificate });
    const rh = toHex(requestHash);
    // The secrets go to the keystore before the request leaves: a crash after sending must not lose them.
    let secretUris: Record<string, string>;
    let curve: CurveName;
    if (secrets.form === 'butterfly') {
      curve = secrets.butterfly.curve;
      secretUris = await sd.putButterflySecrets(`req-${rh}`, curve, secrets.butterfly.params);
    } else {
      curve = secrets.curve;
      secretUris = { signingPrivate: await sd.putScalar(`req-${rh}-signingPrivate`, curve, secrets.signingPrivate) };
      if (secrets.encryptionPrivate !== undefined) secretUris.encryptionPrivate = await sd.putScalar(`req-${rh}-encryptionPrivate`, curve, secrets.encryptionPrivate);
    }
    const how = form === 'butterfly' ? `${cfg.butterfly} butterfly` : form === 'encrypted' ? 'non-butterfly, response encrypted' : 'non-butterfly, plain response';
    emit('request', 'sent', `POST ${ra}/v3/authorization-certificate EeRaCertRequestSpdu (${spdu.length} octets, ${kind}, ${how}, ${cfg.form}, PSIDs ${psids.map((p) => `0x${p.toString(16)}`).join(', ')}; signed with enrollment certificate ${toHex(certificateHashedId8(enrollment.certificate))}, encrypted to RA ${raId}; request hash ${rh})`, spdu);
    let body: Uint8Array | undefined;
    let ack!: { firstI?: number; nextDlTime: number };
    try {
      body = await bodyBytes(await eeRequest({ method: 'POST', url: `${ra}/v3/authorization-certificate`, body: spdu, headers: { 'content-type': 'application/octet-stream' } }, { ...http, maxRetries: 0 }));
    } catch (e) {
      if (!acceptedButAnswerLost(e)) httpFailure('request', e);
      // Accepted; only the ack was lost. The batch starts in the i-period of max(now, requested start), as the RA
      // computes it; the download answers 503 + Retry-After until it is ready.
      ack = { firstI: iPeriodOf(iPeriodParamsOf(policy), Math.max(nowTime32(clock), plan.start)), nextDlTime: nowTime32(clock) };
      emit('request', 'info', `the RA accepted the request but its ack was lost with the connection (the resend was refused as a replay, 400-60): downloading the batch of i-period ${ack.firstI} when it is ready`);
    }
    if (body) {
      try {
        ack = processAuthorizationAck(body, { raCertificate: trust.raCertificate, requestHash });
      } catch (e) {
        if (e instanceof AuthorizationClientError) throw new SimulationError('request', `the RA's ack does not check: ${e.message}`, undefined, 'ack');
        throw e;
      }
      emit('request', 'received', `RaEeCertAckSpdu (${body.length} octets): firstI ${ack.firstI ?? '-'}, download at ${time32ToDate(ack.nextDlTime).toISOString()}`, body);
    }
    const firstI = ack.firstI ?? 0;
    st.authorization = {
      requestHash: rh,
      filename: kindDownloadFilename(requestHash, form, firstI),
      firstI,
      nextDlTime: ack.nextDlTime,
      kind,
      form,
      ...(variant ? { variant } : {}),
      type: cfg.form,
      curve,
      secretUris,
      at: now(),
    };
    record('request', 'done', `request ${rh} acknowledged; batch ${st.authorization.filename} from ${time32ToDate(ack.nextDlTime).toISOString()}`);
  }
  await sd.save(st);
  if (stop('request')) return finish();

  // ------------------------------------------------------------------ download
  current = 'download';
  const auth = st.authorization;
  const acaChains = acaChainsOf(trust);
  if (acaChains.length === 0) throw new SimulationError('download', 'the CCF holds no ACA certificate to check the certificates against', undefined, 'ccf');
  const kindDir = cfg.cert;
  // Certificates whose chain this run has just verified (download), by HashedId8: the use step does not repeat the
  // same check on the same octets.
  const checkedNow = new Map<string, { bytes: Uint8Array; key: PublicKey }>();
  if (!pending && plan.action === 'held') {
    record('download', 'already done', `${st.certificates.length} certificates held${auth ? ` (last batch ${auth.filename})` : ''}`);
  } else {
    if (!auth) throw new Error('internal: no authorization request to download');
    const budgetMs = (opts.maxWaitSeconds ?? 300) * 1000;
    const started = clock.now().getTime();
    const waited = () => clock.now().getTime() - started;
    const untilDl = time32ToDate(auth.nextDlTime).getTime() - clock.now().getTime();
    if (untilDl > budgetMs) {
      record('download', 'pending', `batch ${auth.filename} is available from ${time32ToDate(auth.nextDlTime).toISOString()}, beyond the wait limit; run again then`);
      report.pending = time32ToDate(auth.nextDlTime).toISOString();
      return finish();
    }
    if (untilDl > 0) {
      emit('download', 'wait', `waiting ${Math.ceil(untilDl / 1000)} s until the download time ${time32ToDate(auth.nextDlTime).toISOString()}`);
      await sleep(untilDl);
    }
    let zip: Uint8Array | undefined;
    let networkRetries = 0;
    for (let attempt = 1; !zip; attempt++) {
      const header = await buildDownloadRequest({ filename: auth.filename, enrollment, raCertificate: trust.raCertificate, clock });
      const url = `${ra}/v3/authorization-certificate?filename=${encodeURIComponent(auth.filename)}`;
      emit('download', 'sent', `GET ${url} with Ieee-1609.2.1-Authorization (EeRaDownloadRequestSpdu, ${Buffer.from(header, 'base64').length} octets)`, Buffer.from(header, 'base64'));
      try {
        zip = await bodyBytes(await eeRequest({ method: 'GET', url, headers: { 'ieee-1609.2.1-authorization': header } }, { ...http, maxRetries: 0 }));
      } catch (e) {
        // 503/429: not ready (Retry-After); no answer at all (connection dropped): the GET is repeated, at most 3 times.
        const lost = e instanceof ScmsResponseError && e.status === 0 && (networkRetries += 1) <= 3;
        const notYet = e instanceof ScmsResponseError && (e.status === 503 || e.status === 429 || lost);
        if (!notYet) httpFailure('download', e);
        const se = e as ScmsResponseError;
        const waitMs = Math.min(60, se.retryAfter ?? 2 ** Math.min(attempt, 5)) * 1000;
        if (waited() + waitMs > budgetMs || attempt >= 50) {
          record('download', 'pending', `batch ${auth.filename} not ready after ${attempt} attempts (HTTP ${se.status}); run again later`);
          report.pending = new Date(clock.now().getTime() + waitMs).toISOString();
          return finish();
        }
        emit('download', 'wait', se.status === 0 ? `no answer (${se.message}); retry in ${waitMs / 1000} s` : `not ready (HTTP ${se.status}${se.code !== undefined ? `-${se.code}` : ''}); Retry-After ${se.retryAfter ?? '-'}: retry in ${waitMs / 1000} s`);
        await sleep(waitMs);
      }
    }
    emit('download', 'received', `batch zip ${auth.filename} (${zip.length} octets)`);
    const secrets = await loadKindSecrets(sd, auth);
    let batch;
    let lastError: Error | undefined;
    let acaChain: Certificate[] = acaChains[0]!;
    for (const chain of acaChains) {
      try {
        batch = await processKindDownload(zip, { secrets, requestHash: fromHex(auth.requestHash), acaChain: chain, trustAnchors: anchors, clock });
        acaChain = chain;
        break;
      } catch (e) {
        if (!(e instanceof KindResponseError || e instanceof AuthorizationClientError || e instanceof AuthorizationResponseError)) throw e;
        lastError = e;
      }
    }
    if (!batch) throw new SimulationError('download', `the batch does not check: ${lastError?.message}`, undefined, 'certificate-response');
    // Earlier batches' certificates stay while valid (the overlap into the new i-period).
    const fresh = new Set(batch.certificates.map((n) => `${n.i}_${n.j}`));
    st.certificates = stillValid(st.certificates, nowTime32(clock)).filter((o) => !fresh.has(`${o.i}_${o.j}`));
    for (const c of batch.certificates) {
      const bytes = encodeCertificate(c.certificate);
      const sum = certificateSummary(c.certificate, bytes);
      const file = await sd.writeFile(`certs/${kindDir}/${c.i.toString(16)}_${c.j.toString(16)}.oer`, bytes);
      const keyUri = await sd.putScalar(`${kindDir}-${c.i.toString(16)}-${c.j.toString(16)}`, auth.curve, c.privateKey);
      st.certificates.push({ i: c.i, j: c.j, file, keyUri, hashedId8: sum.hashedId8, validFrom: sum.validFrom, ...(sum.validUntil ? { validUntil: sum.validUntil } : {}) });
      if (c.publicKey) checkedNow.set(sum.hashedId8, { bytes, key: c.publicKey });
      emit('download', 'info', `(i ${c.i}, j ${c.j}) ${sum.hashedId8} ${sum.certificateType}, valid ${sum.validFrom} .. ${sum.validUntil ?? '?'}: decrypted, key reconstructed and checked`);
    }
    for (const [k, c] of acaChain.entries()) await sd.writeFile(`certs/aca-chain-${k}.oer`, encodeCertificate(c));
    auth.downloadedAt = now();
    const next = batch.info.nextDlTime > nowTime32(clock) ? `next download ${time32ToDate(batch.info.nextDlTime).toISOString()}` : 'nothing more to fetch for this request';
    record('download', 'done', `${batch.certificates.length} certificates of batch ${auth.filename} (${next})`);
  }
  await sd.save(st);
  if (stop('download')) return finish();

  // ------------------------------------------------------------------ use: verify each certificate, sign and verify
  current = 'use';
  let failures = 0;
  let signedCount = 0;
  const useAt = nowTime32(clock);
  for (const sc of st.certificates) {
    const bytes = sd.readFile(sc.file);
    const cert = decodeCertificate(bytes);
    const sum = certificateSummary(cert, bytes);
    const chain = acaChains.find((ch) => isIssuedBy(cert, ch[0]!)) ?? acaChains[0]!;
    const seen = checkedNow.get(sum.hashedId8);
    const v = seen && Buffer.from(seen.bytes).equals(Buffer.from(bytes))
      ? { ok: true as const, publicKeys: [seen.key] }
      : verifyChainFast([cert, ...chain], { trustAnchors: anchors, clock, skipCurrentValidity: true });
    if (!usableAt(sc, useAt)) {
      // Held for later (a batch asked for ahead): a message signed now would fall outside its validity (1609.2 5.2).
      if (!v.ok) failures++;
      report.certificates.push({ ...sum, i: sc.i, j: sc.j, verified: v.ok });
      emit('use', 'info', `${sum.hashedId8}: chain ${v.ok ? 'verified' : `FAILED (${v.errors.map((e) => e.reason).join('; ')})`}; held, valid ${sum.validFrom} .. ${sum.validUntil ?? '?'} (not signing with it now)`);
      continue;
    }
    signedCount++;
    const d = await sd.getScalar(sc.keyUri);
    const pk = v.ok ? v.publicKeys[0]! : publicKeyOf(cert, chain);
    const psid = cfg.cert === 'pseudonym' ? BSM_PSID : Number(cert.toBeSigned.appPermissions?.[0]?.psid ?? BSM_PSID);
    const payload = bsmPayload(clock, sc.i, sc.j);
    const signed = Ieee1609Dot2DataCodec.encode(
      await signData({ payload, psid, signer: scalarSigner(pk.curve, d, pk.publicKey), signerId: { certificate: cert }, clock }),
    );
    const check = verifySignedData(signed, {
      expectedPsid: psid,
      clock,
      maxAgeSeconds: 30,
      resolveSigner: (sid) => ('certificate' in sid && sid.certificate.length === 1 && toHex(certificateHashedId8(sid.certificate[0]!)) === sum.hashedId8 ? { certificate: cert, publicKey: pk } : undefined),
    });
    const ok = v.ok && check.ok && Buffer.from(check.payload).equals(Buffer.from(payload));
    if (!ok) failures++;
    report.certificates.push({
      ...sum,
      i: sc.i,
      j: sc.j,
      verified: v.ok,
      message: { psid, signed: true, verified: check.ok, octets: signed.length },
    });
    emit(
      'use',
      ok ? 'info' : 'info',
      `${sum.hashedId8}: chain ${v.ok ? 'verified' : `FAILED (${v.errors.map((e) => e.reason).join('; ')})`}; BSM (PSID 0x${psid.toString(16)}, ${signed.length} octets) ${check.ok ? 'signed and verified' : `does not verify: ${check.reason}`}`,
      signed,
    );
  }
  if (failures > 0) throw new SimulationError('use', `${failures} of ${st.certificates.length} certificates failed verification or signing`, undefined, 'certificate-use');
  record('use', 'done', `${st.certificates.length} certificates verified; ${signedCount} messages signed and verified${signedCount < st.certificates.length ? ` (${st.certificates.length - signedCount} held for later)` : ''}`);
  report.complete = true;
  await sd.save(st);
  // Successor enrollment: asked for (--successor), or due because the enrollment certificate nears expiry.
  const left = enrollmentRenewalDue(st, clock, opts.renewEnrollmentBeforeSeconds);
  if (stop('use') || (!opts.successor && left === undefined)) return finish();
  if (!opts.successor) emit('successor', 'info', `the enrollment certificate expires in ${Math.max(0, left!)} s (renewal window ${opts.renewEnrollmentBeforeSeconds ?? DEFAULT_RENEW_ENROLLMENT_BEFORE_SECONDS} s): successor enrollment`);

  current = 'successor';
  const switched = await successorStep({ sd, st, trust, enrollment, ra, http, clock, policy, maxWaitSeconds: opts.maxWaitSeconds ?? 300, emit, sleep });
  if (switched.pending) {
    record('successor', 'pending', switched.pending);
    report.pending = (switched.retryAt ?? clock.now()).toISOString();
    return finish();
  }
  report.enrollment = switched.summary;
  record('successor', 'done', switched.detail!);
  return finish();
}

/**
 * Successor enrollment (1609.2.1 6.3.5.4 / 6.3.5.5, ee/successor.ts): a new enrollment key, the request signed with
 * the current enrollment certificate and encrypted to the RA, the ack checked, the EcaEeCertResponseSpdu downloaded
 * (runSuccessorExchange: 503 / 429 + Retry-After waited out, bounded by maxWaitSeconds; a rate refusal of the request
 * itself, eca-minWait / eca-maxReqs at the RA or the ECA, is answered with a new request after Retry-After), verified
 * (chain to a trusted root, key reconstructed and matched), then the state switches to the new certificate. The authorization request and certificates of the old
 * enrollment are dropped from the state, so the next run requests a new batch signed with the new certificate.
 * Not resumable: the request state lives in memory only; a run that gives up (pending) sends a new request next time.
 * Before sending, the EE waits out eca-minWait since its last enrollment (the ECA counts successors like enrollments).
 */
async function successorStep(c: {
  sd: EeStateDir;
  st: EeState;
  trust: TrustStore;
  enrollment: EnrollmentCredential;
  ra: string;
  http: EeHttpOptions;
  clock: Clock;
  policy: GlobalPolicy;
  maxWaitSeconds: number;
  emit: (step: Step, kind: SimEvent['kind'], message: string, spdu?: Uint8Array) => void;
  sleep: (ms: number) => Promise<void>;
}): Promise<{ pending?: string; retryAt?: Date; detail?: string; summary?: CertificateSummary }> {
  const { sd, st, trust, enrollment, ra, http, clock, policy, emit } = c;
  const cfg = st.config;
  const budgetMs = c.maxWaitSeconds * 1000;
  const started = clock.now().getTime();
  const waited = () => clock.now().getTime() - started;
  const old = st.enrollment!;
  const minWaitMs = Date.parse(old.at) + policy['eca-minWait'] * 1000 + 1000 - clock.now().getTime();
  if (minWaitMs > budgetMs) {
    const retryAt = new Date(clock.now().getTime() + minWaitMs);
    return { pending: `eca-minWait (${policy['eca-minWait']} s) since the last enrollment has not passed; run again from ${retryAt.toISOString()}`, retryAt };
  }
  if (minWaitMs > 0) {
    emit('successor', 'wait', `waiting ${Math.ceil(minWaitMs / 1000)} s for eca-minWait since the last enrollment`);
    await c.sleep(minWaitMs);
  }
  const psids = (policy.deviceTypes[policyType(cfg.deviceType)]?.enrollment ?? []).map((a) => Number(a.psid));
  let x;
  try {
    x = await runSuccessorExchange({
      raUrl: ra,
      current: enrollment,
      raCertificate: trust.raCertificate,
      request: { type: cfg.form, psids, validity: { durationSeconds: Math.min(policy.enrollmentValidity, 3 * 31_556_952) } },
      clock,
      http,
      sleep: c.sleep,
      maxWaitSeconds: Math.max(0, (budgetMs - waited()) / 1000),
      onEvent: (kind, message, spdu) => emit('successor', kind, message, spdu),
    });
  } catch (e) {
    if (e instanceof AuthorizationClientError) throw new SimulationError('successor', `the RA's ack does not check: ${e.message}`, undefined, 'ack');
    httpFailure('successor', e);
  }
  if (!x.ok) return { pending: `${x.pending} (--successor)`, ...(x.retryAt ? { retryAt: x.retryAt } : {}) };
  const { file, state } = x;
  let e;
  try {
    e = processSuccessorResponse(file, state, { trustAnchors: trust.trustAnchors, clock });
  } catch (err) {
    if (err instanceof EnrollmentResponseError) throw new SimulationError('successor', `the ECA response does not check: ${err.message}`, undefined, 'enrollment-response');
    throw err;
  }
  const v = verifyChainFast([e.certificate, ...e.chain], { trustAnchors: trust.trustAnchors, clock });
  if (!v.ok) throw new SimulationError('successor', `the successor enrollment certificate does not chain: ${v.errors.map((x) => x.reason).join('; ')}`, undefined, 'enrollment-chain');
  if (!v.ok || !keyMatches(v.publicKeys[0]!, e.privateKey)) throw new SimulationError('successor', 'the successor enrollment key does not match its certificate', undefined, 'enrollment-key');
  const bytes = encodeCertificate(e.certificate);
  const sum = certificateSummary(e.certificate, bytes);
  if (sum.hashedId8 === old.hashedId8) throw new SimulationError('successor', 'the ECA answered the current enrollment certificate', undefined, 'enrollment-response');
  // New key and certificate under new names; the old ones stay on disk (the state no longer points at them).
  const keyUri = await sd.putScalar(`enrollment-${sum.hashedId8}`, e.curve, e.privateKey);
  const certFile = await sd.writeFile(`certs/enrollment-${sum.hashedId8}.oer`, bytes);
  for (const [k, ic] of e.chain.entries()) await sd.writeFile(`certs/enrollment-issuer-${k}.oer`, encodeCertificate(ic));
  st.enrollment = { file: certFile, keyUri, hashedId8: sum.hashedId8, type: cfg.form, validFrom: sum.validFrom, ...(sum.validUntil ? { validUntil: sum.validUntil } : {}), at: clock.now().toISOString() };
  delete st.authorization;
  st.certificates = [];
  await sd.save(st);
  return { summary: sum, detail: `enrollment certificate ${old.hashedId8} -> ${sum.hashedId8} (${sum.certificateType}, valid ${sum.validFrom} .. ${sum.validUntil ?? '?'}); chain and key checked; the next run requests certificates with it` };
}

export interface CertificateSummary {
  hashedId8: string;
  certificateType: string;
  /** "self" or the issuer's HashedId8. */
  issuer: string;
  id: string;
  validFrom: string;
  validUntil?: string;
  psids: string[];
}

/** What a person wants to see of a certificate. */
export function certificateSummary(cert: Certificate, bytes: Uint8Array): CertificateSummary {
  const [issuerKind, iv] = Object.entries(cert.issuer)[0] ?? ['?', undefined];
  const vp = cert.toBeSigned.validityPeriod;
  let validUntil: string | undefined;
  try {
    validUntil = time64ToDate(validityPeriodEndTime64(vp)).toISOString();
  } catch {
    validUntil = undefined;
  }
  return {
    hashedId8: toHex(certificateHashedId8(bytes)),
    certificateType: String(cert.type),
    issuer: issuerKind === 'self' ? 'self' : iv instanceof Uint8Array ? toHex(iv) : String(iv),
    id: Object.keys(cert.toBeSigned.id)[0] ?? '?',
    validFrom: time32ToDate(vp.start).toISOString(),
    ...(validUntil ? { validUntil } : {}),
    psids: [
      ...(cert.toBeSigned.appPermissions ?? []).map((p) => `0x${BigInt(p.psid).toString(16)}`),
      ...(cert.toBeSigned.certRequestPermissions ?? []).flatMap((g) => {
        const sp = g.subjectPermissions as { explicit?: Array<{ psid: bigint | number }> };
        return (sp.explicit ?? []).map((r) => `0x${BigInt(r.psid).toString(16)} (request)`);
      }),
    ],
  };
}

/** The request secrets back from the keystore. */
async function loadKindSecrets(sd: EeStateDir, auth: NonNullable<EeState['authorization']>): Promise<KindSecrets> {
  if (auth.form === 'butterfly') {
    if (!auth.variant) throw new SimulationError('download', 'the state lacks the butterfly variant of the request', undefined, 'state');
    const params = await sd.getButterflySecrets(auth.variant, auth.secretUris);
    return { kind: auth.kind, form: 'butterfly', type: auth.type, butterfly: { curve: auth.curve as ButterflySecrets['curve'], type: auth.type, params } };
  }
  const uri = auth.secretUris.signingPrivate;
  if (!uri) throw new SimulationError('download', 'the state lacks the request key', undefined, 'state');
  const enc = auth.secretUris.encryptionPrivate;
  return {
    kind: 'identification',
    form: auth.form,
    type: auth.type,
    curve: auth.curve as ButterflySecrets['curve'],
    signingPrivate: await sd.getScalar(uri),
    ...(enc ? { encryptionPrivate: await sd.getScalar(enc) } : {}),
  };
}

/** An ASCII stand-in for a BSM payload (the message content is not what is being tested). */
function bsmPayload(clock: Clock, i: number, j: number): Uint8Array {
  return new TextEncoder().encode(`BSM-style test message t=${dateToTime32(clock.now())} i=${i} j=${j}`);
}

function policyType(t: DeviceType): keyof GlobalPolicy['deviceTypes'] {
  return t.toUpperCase() as keyof GlobalPolicy['deviceTypes'];
}

/** The ACA certificates of the CCF with their issuer chains up to a trust anchor. */
function acaChainsOf(trust: TrustStore): Certificate[][] {
  const pool = [...trust.certificates, ...trust.trustAnchors];
  const out: Certificate[][] = [];
  for (const c of trust.certificates) {
    const e = c.toBeSigned.appPermissions?.find((p) => BigInt(p.psid) === SECURITY_MGMT_PSID);
    const ssp = e?.ssp as { opaque?: Uint8Array } | undefined;
    if (!ssp?.opaque || roleOfSsp(ssp.opaque) !== 'aca') continue;
    const chain = [c];
    let cur = c;
    while (!isSelfSigned(cur) && chain.length < 8) {
      const issuer = pool.find((p) => p !== cur && isIssuedBy(cur, p));
      if (!issuer) break;
      chain.push(issuer);
      cur = issuer;
    }
    out.push(chain);
  }
  return out;
}

/** d*G (OpenSSL) is the certificate's key: the key pair belongs together. */
function keyMatches(pk: PublicKey, d: bigint): boolean {
  try {
    return Buffer.from(mulBase(pk.curve, d)).equals(Buffer.from(pk.publicKey));
  } catch {
    return false; // d out of range
  }
}

const issuerIndex = (f: string) => Number(/(\d+)\.oer$/.exec(f)![1]);

/** fetch that says "unreachable" with the cause instead of "fetch failed". */
function reachable(base: string, f: typeof fetch | undefined): typeof fetch {
  const doFetch = f ?? globalThis.fetch;
  return (async (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) => {
    try {
      return await doFetch(input, init);
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new Error(`the RA at ${base} is unreachable (${cause?.code ?? cause?.message ?? (e as Error).message})`);
    }
  }) as typeof fetch;
}
