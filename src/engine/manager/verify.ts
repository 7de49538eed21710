/**
 * `scms manager verify DIR`: checks a trust directory end to end and reports every problem
 * (file + reason):
 * - manifest: every listed file exists and has the recorded SHA-256; each certificate's HashedId8;
 * - certificates: the signature of each one (1609.2 5.3.1, 6.4.3) with its issuer's key (self for
 *   electors and roots), the issuer field naming that issuer, the chain of each to a root,
 *   validity now and within the issuer's validity (1609.2 5.1.2.4 consistency), region within the
 *   issuer's (identifiedRegion countryOnly), permissions never beyond the issuer's
 *   (src/security/permissions.ts checkIssuePermissions);
 * - CTLs: each of the series verified in order with verifyMultiSignedCtl (quorum of currently
 *   approved electors), and every root of the directory approved by the latest CTL;
 * - CCF: decodes, its homeCtl is the latest CTL, its certificates are the directory's;
 * - policies: the signed SPDUs verify with a PG certificate and carry the JSON's canonical bytes;
 * - audit log: the hash chain (audit.ts verifyAudit).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Certificate } from '../../codec/index.js';
import { toHex } from '../../crypto/bytes.js';
import { certificateHashedId8, encodeCertificate, isIssuedBy, verifyCertificateSignature } from '../../security/certificate.js';
import { checkIssuePermissions } from '../../security/permissions.js';
import { type Clock, dateToTime32, validityPeriodContains, validityPeriodContainsPeriod } from '../../security/time.js';
import { verifyAudit } from './audit.js';
import { parseCcf } from './ccf.js';
import { type CtlState, decodeMultiSignedCtl, rootCaHash, verifyMultiSignedCtl } from './ctl.js';
import { verifyPolicySignature } from './policy-sign.js';
import { type LoadedCertificate, loadTrustDir, sha256Hex, type TrustDir } from './trust-dir.js';

export interface VerifyProblem {
  /** Path relative to DIR (e.g. trust/certs/ra.oer), or the directory itself. */
  file: string;
  reason: string;
}

export interface VerifyReport {
  ok: boolean;
  dir: string;
  problems: VerifyProblem[];
  checked: { files: number; certificates: number; ctls: number; policies: number };
}

export function verifyTrustDir(dir: string, opts: { clock: Clock }): VerifyReport {
  const problems: VerifyProblem[] = [];
  const add = (file: string, reason: string) => problems.push({ file, reason });
  let td: TrustDir;
  try {
    td = loadTrustDir(dir);
  } catch (e) {
    add('trust/manifest.json', (e as Error).message);
    return { ok: false, dir, problems, checked: { files: 0, certificates: 0, ctls: 0, policies: 0 } };
  }
  problems.push(...td.problems);
  const now = opts.clock.now();
  const nowT32 = dateToTime32(now);

  // Manifest hashes.
  for (const f of td.manifest.files) {
    const abs = join(td.paths.trust, ...f.path.split('/'));
    if (!existsSync(abs)) continue; // reported by loadTrustDir for the files it reads
    const h = sha256Hex(readFileSync(abs));
    if (h !== f.sha256) add(`trust/${f.path}`, `SHA-256 ${h} differs from the manifest (${f.sha256}): file modified`);
  }
  for (const f of td.manifest.files) {
    const abs = join(td.paths.trust, ...f.path.split('/'));
    if (!existsSync(abs) && !td.problems.some((p) => p.file === `trust/${f.path}`)) add(`trust/${f.path}`, 'file is missing');
  }

  // Certificates.
  const decoded = td.certificates.filter((c): c is LoadedCertificate & { certificate: Certificate } => c.certificate !== undefined);
  const byName = new Map(decoded.map((c) => [c.name, c]));
  for (const c of decoded) {
    const file = `trust/${c.path}`;
    const cert = c.certificate;
    const m = td.manifest.components.find((x) => x.name === c.name)!;
    try {
      if (toHex(certificateHashedId8(cert)) !== m.hashedId8) add(file, `HashedId8 differs from the manifest (${m.hashedId8})`);
    } catch (e) {
      add(file, `cannot hash: ${(e as Error).message}`);
    }
    if (!validityPeriodContains(cert.toBeSigned.validityPeriod, nowT32)) add(file, `not valid at ${now.toISOString()} (validity period)`);

    if (c.issuer === 'self') {
      if (c.role !== 'root' && c.role !== 'elector') add(file, `a ${c.role} certificate must not be self-signed`);
      checkSignature(file, cert, 'self', add);
      continue;
    }
    const issuer = byName.get(c.issuer);
    if (!issuer) {
      add(file, `issuer '${c.issuer}' is not in the trust directory`);
      continue;
    }
    if (!isIssuedBy(cert, issuer.certificate)) add(file, `issuer field does not name '${c.issuer}' (HashedId8 mismatch)`);
    checkSignature(file, cert, issuer.certificate, add);
    if (!validityPeriodContainsPeriod(issuer.certificate.toBeSigned.validityPeriod, cert.toBeSigned.validityPeriod)) {
      add(file, `validity period extends beyond its issuer '${c.issuer}'`);
    }
    const rp = regionProblem(cert, issuer.certificate);
    if (rp) add(file, `${rp} (issuer '${c.issuer}')`);
    for (const p of checkIssuePermissions(issuer.certificate, cert, { issuer: `issuer '${issuer.name}'`, subject: `certificate '${c.name}'` })) {
      add(file, `more permissions than its issuer: ${p}`);
    }
    // Chain to a self-signed root.
    const seen = new Set<string>([c.name]);
    let cur: LoadedCertificate | undefined = issuer;
    while (cur && cur.issuer !== 'self' && !seen.has(cur.name)) {
      seen.add(cur.name);
      cur = byName.get(cur.issuer);
    }
    if (!cur) add(file, 'chain does not reach a root certificate');
    else if (cur.issuer !== 'self') add(file, 'chain has a loop');
    else if (cur.role !== 'root') add(file, `chain ends at '${cur.name}', which is not a root CA`);
  }

  // CTLs: the whole series in order, each against the state of the previous one.
  let state: CtlState | undefined;
  for (const ctl of td.ctls) {
    const file = `trust/${ctl.path}`;
    const v = verifyMultiSignedCtl(ctl.bytes, { previous: state, clock: opts.clock });
    if (!v.ok) {
      for (const e of v.errors) add(file, e);
      state = undefined;
      break;
    }
    if (toHex(v.state.ctlSeriesId) !== td.manifest.ctlSeriesId) add(file, `CTL series ${toHex(v.state.ctlSeriesId)} is not the directory's ${td.manifest.ctlSeriesId}`);
    if (v.state.sequenceNumber !== ctl.sequenceNumber) add(file, `sequence number ${v.state.sequenceNumber}, manifest says ${ctl.sequenceNumber}`);
    state = v.state;
  }
  if (td.ctls.length === 0) add('trust/ctl', 'no CTL');
  if (state) {
    const approved = new Set(state.roots.map((r) => toHex(rootCaHash(r))));
    for (const r of decoded.filter((c) => c.role === 'root')) {
      if (!approved.has(toHex(rootCaHash(r.certificate)))) add(`trust/${r.path}`, `root '${r.name}' is not approved by the latest CTL (sequence ${state.sequenceNumber})`);
    }
    const electors = new Set(state.electors.map((e) => toHex(encodeCertificate(e))));
    for (const e of decoded.filter((c) => c.role === 'elector')) {
      if (!electors.has(toHex(encodeCertificate(e.certificate)))) add(`trust/${e.path}`, `elector '${e.name}' is not approved by the latest CTL`);
    }
  }

  // CCF.
  if (td.ccf) {
    try {
      const ccf = parseCcf(td.ccf);
      const latest = td.ctls[td.ctls.length - 1];
      if (latest && toHex(ccf.homeCtlBytes) !== toHex(latest.bytes)) add('trust/ccf.oer', 'homeCtl is not the latest CTL of the series');
      const known = new Set(decoded.map((c) => toHex(c.bytes)));
      for (const o of ccf.others) {
        const b = encodeCertificate(o);
        if (!known.has(toHex(b))) add('trust/ccf.oer', `certificate ${toHex(certificateHashedId8(o))} is not one of the directory's`);
      }
      try {
        decodeMultiSignedCtl(ccf.homeCtlBytes);
      } catch (e) {
        add('trust/ccf.oer', `homeCtl: ${(e as Error).message}`);
      }
    } catch (e) {
      add('trust/ccf.oer', `not a CertificateChainSpdu: ${(e as Error).message}`);
    }
  } else if (!td.manifest.files.some((f) => f.role === 'ccf')) add('trust/ccf.oer', 'no certificate chain file');

  // Policies signed by a PG of the directory.
  let policies = 0;
  const pgs = decoded.filter((c) => c.role === 'pg');
  for (const [kind, p] of [
    ['global', td.globalPolicy],
    ['local', td.localPolicy],
  ] as const) {
    if (!p) continue;
    policies++;
    const file = `trust/policy/${kind}-policy.oer`;
    if (!p.signed) {
      add(file, `signed ${kind} policy is missing`);
      continue;
    }
    if (pgs.length === 0) {
      add(file, 'no PG certificate to verify the policy signature');
      continue;
    }
    const results = pgs.map((pg) => verifyPolicySignature(p.signed!, p.json, pg.certificate, opts.clock));
    if (!results.some((r) => r.length === 0)) add(file, results[0]!.join('; '));
  }

  // Audit log.
  const audit = verifyAudit(td.paths.audit);
  for (const e of audit.errors) add('audit.log', `line ${e.line}: ${e.reason}`);

  return {
    ok: problems.length === 0,
    dir,
    problems,
    checked: { files: td.manifest.files.length, certificates: decoded.length, ctls: td.ctls.length, policies },
  };
}

function checkSignature(file: string, cert: Certificate, issuer: Certificate | 'self', add: (f: string, r: string) => void): void {
  try {
    if (!verifyCertificateSignature(cert, issuer)) add(file, 'signature does not verify');
  } catch (e) {
    add(file, `signature cannot be checked: ${(e as Error).message}`);
  }
}

/** identifiedRegion countryOnly of the subject must be within the issuer's (1609.2 5.1.2.4). */
function regionProblem(subject: Certificate, issuer: Certificate): string | undefined {
  const countries = (c: Certificate): Set<number> | 'any' | 'other' => {
    const r = c.toBeSigned.region as Record<string, unknown> | undefined;
    if (!r) return 'any';
    if (!('identifiedRegion' in r)) return 'other';
    const out = new Set<number>();
    for (const ir of r.identifiedRegion as Array<Record<string, unknown>>) {
      if ('countryOnly' in ir) out.add(ir.countryOnly as number);
      else return 'other';
    }
    return out;
  };
  const s = countries(subject);
  const i = countries(issuer);
  if (i === 'any') return undefined;
  if (s === 'any') return 'no region restriction but its issuer has one';
  if (s === 'other' || i === 'other') return i === s ? undefined : 'region is not a countryOnly list; cannot compare';
  const extra = [...s].filter((x) => !i.has(x));
  return extra.length ? `region has countries ${extra.join(', ')} outside its issuer's region` : undefined;
}
