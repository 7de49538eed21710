// Revocation end to end against `serve all` in-process (real HTTP on 127.0.0.1, real SQLite files, the trust
// directory and keystore of `scms manager init`): two devices enroll and get pseudonym certificates for two
// i-periods; refused revocations change nothing; one device is revoked; GET /v3/crl, the composite CRL/CTL and the
// info status change; the EE-side check (src/engine/ee/crl.ts) verifies the CRLs and matches every pseudonym
// certificate of the revoked device (both i-periods) and its enrollment certificate, none of the other device's;
// the revoked device's next authorization request gets 403-20.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CompositeCrlSpdu, type Certificate } from '../../../src/codec/index.js';
import type { EeRaCertRequest } from '../../../src/codec/gen/Ieee1609Dot2Dot1EeRaInterface.js';
import { toHex } from '../../../src/crypto/bytes.js';
import { batchFilename, buildAuthorizationRequest } from '../../../src/engine/ee/authorization-client.js';
import { createButterflyRequest } from '../../../src/engine/ee/butterfly.js';
import { CrlCheckError, fetchCompositeCrls, fetchCrl, type EeCrlOptions } from '../../../src/engine/ee/crl.js';
import { loadTrustDir } from '../../../src/engine/manager/trust-dir.js';
import type { ServeResult } from '../../../src/engine/serve.js';
import { certificateHashedId8, encodeCertificate as encodeCert } from '../../../src/security/certificate.js';
import { verifySignedSpdu } from '../../../src/security/scms-pdu.js';
import { nowTime32, systemClock } from '../../../src/security/time.js';
import { downloadBatch, onboardEe, requestPseudonyms, verifyBatch, type Ee } from '../../commands/serve-flow-helpers.js';
import { serveAllInProcess } from '../../helpers/serve-all.js';
import { initTestTrustDir } from '../../helpers/trust-dir.js';

const PASS = 'revocation flow test passphrase';
const OPERATOR = 'operator-token-revocation-flow-01';
const clock = systemClock;

describe('revocation: operator API -> signed CRLs -> EE check', () => {
  let base: string;
  let trustDir: string;
  let running: ServeResult;
  let url: string;
  let craca: string;

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'scms-revocation-'));
    trustDir = join(base, 'scms');
    await initTestTrustDir(trustDir, PASS);
    const td = loadTrustDir(trustDir);
    craca = toHex(certificateHashedId8(td.byName.get(td.byName.get('crl-signer')!.issuer)!.certificate!));
    running = await serveAllInProcess({ trustDir, dataDir: join(base, 'data'), passphrase: PASS, operatorToken: OPERATOR, env: { SCMS_RA_I_PERIODS: '2' } });
    url = running.address.url;
  }, 120_000);
  afterAll(async () => {
    await running?.server.close();
    rmSync(base, { recursive: true, force: true });
  });

  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${url}${path}`, { headers });
  const op = (method: string, path: string, body?: unknown, token: string | null = OPERATOR) =>
    fetch(`${url}${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  const filename = (r: Response) => /filename=([^;]+)/.exec(r.headers.get('content-disposition') ?? '')?.[1];

  /** Enrolls a device and downloads its pseudonym certificates of both i-periods. */
  async function device(): Promise<{ ee: Ee; deviceId: string; pseudonyms: Certificate[] }> {
    const ee = await onboardEe(url, url, trustDir, OPERATOR);
    const req = await requestPseudonyms(url, ee);
    const n = ee.trust.globalPolicy.policy['time-baseCertNumber'];
    const pseudonyms: Certificate[] = [];
    for (const i of [req.firstI, req.firstI + 1]) {
      const r = { ...req, firstI: i, filename: batchFilename(req.requestHash, i) };
      const zip = await downloadBatch(url, ee, r, () => '');
      pseudonyms.push(...(await verifyBatch(zip, ee, r, n)).map((c) => c.certificate));
    }
    const enrollmentId = toHex(certificateHashedId8(ee.enrollment.certificate));
    const list = (await (await op('GET', '/v3/devices?limit=1000')).json()) as { devices: Array<{ deviceId: string }> };
    let deviceId: string | undefined;
    for (const d of list.devices) {
      const full = (await (await op('GET', `/v3/devices/${d.deviceId}`)).json()) as { certificates: Array<{ hashedId8: string }> };
      if (full.certificates.some((c) => c.hashedId8 === enrollmentId)) deviceId = d.deviceId;
    }
    expect(deviceId).toBeDefined();
    return { ee, deviceId: deviceId!, pseudonyms };
  }

  it('revokes one of two devices: CRLs, composite and info status change; the EE check matches exactly its certificates', async () => {
    const crlPath = `/v3/crl?craca=${craca}&crlSeries=1`;
    // Before: empty CRLs are served and verify.
    const before = await get(crlPath);
    expect(before.status).toBe(200);
    expect(filename(before)).toBe(`crl_${craca}_1.oer`);
    const etag0 = before.headers.get('etag')!;
    expect((await get(crlPath, { 'if-none-match': etag0 })).status).toBe(304);
    const a = await device();
    const b = await device();
    expect(a.pseudonyms.length).toBeGreaterThan(0);
    const opts: EeCrlOptions = { raUrl: url, trust: a.ee.trust, clock };
    const series = a.ee.trust.ctlSeriesId;
    const composite0 = await get(`/v3/composite-crl-ctl?ctlSeriesId=${series}`);
    const compositeName0 = filename(composite0);
    const empty = await fetchCompositeCrls(opts);
    expect(empty.crls.map((c) => c.kind).sort()).toEqual(['fullHashCrl', 'fullLinkedCrl']);
    for (const c of [...a.pseudonyms, ...b.pseudonyms, a.ee.enrollment.certificate]) expect(empty.isRevoked(c)).toEqual({ revoked: false });

    // Refused revocations change nothing.
    expect((await op('POST', `/v3/devices/${a.deviceId}/revoke`, { reason: 'x' }, null)).status).toBe(401);
    expect((await op('POST', `/v3/devices/${a.deviceId}/revoke`, { reason: 'x' }, 'wrong-operator-token-0000000000')).status).toBe(401);
    const unknown = await op('POST', '/v3/devices/00000000-0000-4000-8000-000000000000/revoke', { reason: 'x' });
    expect(unknown.status).toBe(404);
    for (const body of [{}, { reason: '' }, { reason: 'x', extra: 1 }, { reason: 'x', certificates: ['zz'] }, { reason: 'x', certificates: ['00'] }]) {
      const r = await op('POST', `/v3/devices/${a.deviceId}/revoke`, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.headers.get('ieee-1609.2.1-error')).toBe('400-60');
    }
    // B's enrollment certificate named for A: refused, not put on any CRL.
    const cross = await op('POST', `/v3/devices/${a.deviceId}/revoke`, { reason: 'x', certificates: [toHex(encodeCert(b.ee.enrollment.certificate))] });
    expect(cross.status).toBe(400);
    expect(await cross.text()).toMatch(/not recorded as a certificate of device/);
    expect((await get(crlPath, { 'if-none-match': etag0 })).status).toBe(304);
    expect((await op('GET', `/v3/devices/${a.deviceId}/revocation`)).status).toBe(404);
    expect(((await (await op('GET', `/v3/devices/${a.deviceId}`)).json()) as { state: string }).state).not.toBe('blocked');

    // Revoke A.
    const res = await op('POST', `/v3/devices/${a.deviceId}/revoke`, { reason: 'key compromise' });
    expect(res.status, await res.clone().text()).toBe(200);
    const result = (await res.json()) as { hashEntries: Array<{ kind: string }>; linkage?: { jmax: number }; crls: Array<{ kind: string }> };
    expect(result.hashEntries.map((e) => e.kind)).toEqual(['enrollment']);
    expect(result.linkage?.jmax).toBe(a.ee.trust.globalPolicy.policy['time-baseCertNumber']);
    expect(((await (await op('GET', `/v3/devices/${a.deviceId}`)).json()) as { state: string }).state).toBe('blocked');
    expect((await op('POST', `/v3/devices/${a.deviceId}/revoke`, { reason: 'again' })).status).toBe(409);

    // GET /v3/crl: a new file (ETag), the old ETag no longer matches.
    const after = await get(crlPath, { 'if-none-match': etag0 });
    expect(after.status).toBe(200);
    const etag1 = after.headers.get('etag')!;
    expect(etag1).not.toBe(etag0);
    expect((await get(crlPath, { 'if-none-match': etag1 })).status).toBe(304);
    const linked = await fetchCrl(opts, craca, 1);
    const hashed = await fetchCrl(opts, craca, 1, 'hash');
    expect(linked.kind).toBe('fullLinkedCrl');
    expect(hashed.kind).toBe('fullHashCrl');
    expect(hashed.issueDate).toBeGreaterThan(empty.crls[0]!.issueDate - 1);

    // The composite: new version / file name, both CRLs inside, all verify.
    const composite1 = await get(`/v3/composite-crl-ctl?ctlSeriesId=${series}`);
    expect(filename(composite1)).not.toBe(compositeName0);
    expect(composite1.headers.get('etag')).not.toBe(composite0.headers.get('etag'));
    const cc = (CompositeCrlSpdu.decode(new Uint8Array(await composite1.arrayBuffer())).content as any).unsecuredData.content.cert.compositeCrl;
    expect(cc.crl).toHaveLength(2);
    const check = await fetchCompositeCrls(opts);

    // Every pseudonym certificate of A (both i-periods) is matched, by linkage; none of B's.
    const is = new Set(a.pseudonyms.map((c) => (c.toBeSigned.id as { linkageData: { iCert: number } }).linkageData.iCert));
    expect(is.size).toBe(2);
    for (const c of a.pseudonyms) expect(check.isRevoked(c)).toMatchObject({ revoked: true, by: 'linkage' });
    for (const c of b.pseudonyms) expect(check.isRevoked(c)).toEqual({ revoked: false });
    // A's enrollment certificate is on the hash-based CRL; B's is not.
    expect(check.isRevoked(a.ee.enrollment.certificate)).toMatchObject({ revoked: true, by: 'hash' });
    expect(check.isRevoked(b.ee.enrollment.certificate)).toEqual({ revoked: false });

    // The signed info status names the CRL (craca, series, issueDate).
    const info = await get('/v3/certificate-management-info-status');
    const v = verifySignedSpdu(new Uint8Array(await info.arrayBuffer()), { resolveSigner: () => a.ee.trust.raCertificate });
    expect(v.ok).toBe(true);
    const status = (v as any).pdu.content.cert.infoStatus;
    expect(status.crl).toHaveLength(1);
    expect(toHex(status.crl[0].cracaId)).toBe(craca);
    expect(status.crl[0].series).toBe(1);
    expect(status.crl[0].issueDate).toBe(linked.issueDate);

    // A's next authorization request is refused with 403-20 (blocked); B's is accepted.
    const policy = a.ee.trust.globalPolicy.policy;
    const psids = (policy.deviceTypes.OBU?.pseudonym ?? []).map((p) => BigInt(p.psid));
    const { request } = createButterflyRequest({
      variant: 'original',
      type: 'implicit',
      tbsCert: { validityPeriod: { start: nowTime32(clock), duration: { hours: 1 } }, appPermissions: psids.map((psid) => ({ psid })) },
      clock,
    });
    const { spdu } = await buildAuthorizationRequest({ request: request as EeRaCertRequest, enrollment: a.ee.enrollment, raCertificate: a.ee.trust.raCertificate });
    const refused = await fetch(`${url}/v3/authorization-certificate`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from(spdu) });
    expect(refused.status).toBe(403);
    expect(refused.headers.get('ieee-1609.2.1-error')).toBe('403-20');
    // B is not blocked (its second request within ra-minWait only meets the rate limit).
    const bReq = await buildAuthorizationRequest({ request: request as EeRaCertRequest, enrollment: b.ee.enrollment, raCertificate: b.ee.trust.raCertificate });
    const bRes = await fetch(`${url}/v3/authorization-certificate`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from(bReq.spdu) });
    expect(bRes.status).not.toBe(403);
    expect(bRes.headers.get('ieee-1609.2.1-error') ?? '').not.toBe('403-20');
  }, 180_000);

  it('GET /v3/crl: 400 with the reason on malformed parameters, 404 for an unknown craca / series', async () => {
    const cases: [string, RegExp][] = [
      ['/v3/crl', /craca is required/],
      [`/v3/crl?craca=${craca}`, /crlSeries is required/],
      ['/v3/crl?craca=xyz&crlSeries=1', /16 hex digits/],
      [`/v3/crl?craca=${craca}&crlSeries=65536`, /CrlSeries/],
      [`/v3/crl?craca=${craca}&crlSeries=-1`, /CrlSeries/],
      [`/v3/crl?craca=${craca}&crlSeries=1&type=delta`, /type/],
      [`/v3/crl?craca=${craca}&craca=${craca}&crlSeries=1`, /more than once/],
    ];
    for (const [p, re] of cases) {
      const r = await get(p);
      expect(r.status, p).toBe(400);
      expect(r.headers.get('ieee-1609.2.1-error'), p).toBe('400-60');
      expect(await r.text(), p).toMatch(re);
    }
    for (const p of [`/v3/crl?craca=0000000000000000&crlSeries=1`, `/v3/crl?craca=${craca}&crlSeries=2`]) {
      const r = await get(p);
      expect(r.status, p).toBe(404);
      expect(r.headers.get('ieee-1609.2.1-error'), p).toBe('404-99');
    }
    // An EE refuses a file that is not a CRL from this SCMS.
    await expect(fetchCrl({ raUrl: url, trust: { trustAnchors: [], certificates: [], ctlSeriesId: '', ctlFiles: [] }, clock }, craca, 1)).rejects.toThrow(CrlCheckError);
  });
});
