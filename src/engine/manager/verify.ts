/**
 * `scms manager verify DIR`: checks a trust directory end to end and reports every problem
 * (file + reason):
 * - manifest: every listed file exists and has the recorded SHA-256; each certificate's HashedId8;
 * - certificates: validity now; electors and roots self-signed with a valid signature; every other
 *   certificate's chain (by the manifest's issuer names) through security/chain.ts
 *   verifyCertificateChain: issuer field = the issuer's HashedId8 (whole-certificate hash, 6.4.3),
 *   signature with the issuer's key (5.3.1), validity and region within the issuer's (5.1.2.4),
 *   permissions never beyond the issuer's, and a root the latest CTL approves as trust anchor;
 * - CTLs: each of the series verified in order with verifyMultiSignedCtl (quorum of currently
 *   approved electors); every root and elector of the directory approved by the latest CTL, except
 *   those an earlier CTL approved and a later one removed (kept as history, no longer trusted: a
 *   certificate that chains only to a removed root is reported untrusted);
 * - CCF: decodes, its homeCtl is the latest CTL, its certificates are the directory's;
 * - policies: the signed SPDUs verify with a PG certificate and carry the JSON's canonical bytes;
 * - audit log: the hash chain (audit.ts verifyAudit).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Certificate } from '../../codec/index.js';
import { toHex } from '../../crypto/bytes.js';
import { certificateHashedId8, encodeCertificate, verifyCertificateSignature } from '../../security/certificate.js';
import { type ChainError, verifyCertificateChain } from '../../security/chain.js';
import { type Clock, dateToTime32, validityPeriodContains } from '../../security/time.js';
import { verifyAudit } from './audit.js';
import { parseCcf } from './ccf.js';
import { type CtlState, decodeMultiSignedCtl, electorHash, rootCaHash, verifyMultiSignedCtl } from './ctl.js';
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

  // CTLs: the whole series in order, each against the state of the previous one.
  let state: CtlState | undefined;
  const states: CtlState[] = [];
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
    states.push(v.state);
  }
  if (td.ctls.length === 0) add('trust/ctl', 'no CTL');

  const decoded = td.certificates.filter((c): c is LoadedCertificate & { certificate: Certificate } => c.certificate !== undefined);
  const byName = new Map(decoded.map((c) => [c.name, c]));

  // Electors and roots against the latest CTL. One that an earlier CTL of the series approved and a later one
  // dropped (1609.2.1 CtlInfo electorRemove / rootCaRemove) is no longer trusted: its certificate stays in the
  // directory as history and need not be approved. One that no CTL of the series ever approved is a problem.
  const removedRoots = new Map<string, number>(); // rootCaHash hex -> sequence number of the CTL that removed it
  if (state) {
    const latest = state;
    const removedAt = (hashOf: (c: Certificate) => Uint8Array, list: (s: CtlState) => Certificate[]): Map<string, number> => {
      const out = new Map<string, number>();
      for (let i = 1; i < states.length; i++) {
        const kept = new Set(list(states[i]!).map((c) => toHex(hashOf(c))));
        for (const c of list(states[i - 1]!)) if (!kept.has(toHex(hashOf(c)))) out.set(toHex(hashOf(c)), states[i]!.sequenceNumber);
      }
      for (const c of list(latest)) out.delete(toHex(hashOf(c))); // approved again later
      return out;
    };
    for (const [k, seq] of removedAt(rootCaHash, (s) => s.roots)) removedRoots.set(k, seq);
    const removedElectors = removedAt(electorHash, (s) => s.electors);
    const approvedRoots = new Set(latest.roots.map((r) => toHex(rootCaHash(r))));
    for (const r of decoded.filter((c) => c.role === 'root')) {
      const k = toHex(rootCaHash(r.certificate));
      if (!approvedRoots.has(k) && !removedRoots.has(k)) add(`trust/${r.path}`, `root '${r.name}' is not approved by the latest CTL (sequence ${latest.sequenceNumber})`);
    }
    const approvedElectors = new Set(latest.electors.map((e) => toHex(electorHash(e))));
    for (const e of decoded.filter((c) => c.role === 'elector')) {
      const k = toHex(electorHash(e.certificate));
      if (!approvedElectors.has(k) && !removedElectors.has(k)) add(`trust/${e.path}`, `elector '${e.name}' is not approved by the latest CTL`);
    }
  }
  // Trust anchors of the chains: the roots the latest CTL approves. Without a verified CTL (reported above) the
  // directory's roots stand in, so that the checks below still report each certificate's own problems.
  const anchors = state ? state.roots : decoded.filter((c) => c.role === 'root').map((c) => c.certificate);

  // Certificates.
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
    // The chain by the manifest's issuer names, up to a self-signed certificate.
    type Decoded = LoadedCertificate & { certificate: Certificate };
    const chain: Decoded[] = [c];
    let cur: Decoded | undefined = issuer;
    while (cur && !chain.includes(cur)) {
      chain.push(cur);
      if (cur.issuer === 'self') break;
      cur = byName.get(cur.issuer);
    }
    const top = chain[chain.length - 1]!;
    if (!cur) {
      add(file, 'chain does not reach a root certificate');
      continue;
    }
    if (top.issuer !== 'self') {
      add(file, 'chain has a loop');
      continue;
    }
    if (top.role !== 'root') {
      add(file, `chain ends at '${top.name}', which is not a root CA`);
      continue;
    }
    // Issuer field, signature, validity within the issuer's, region, permissions and the trust anchor
    // (security/chain.ts). Only this certificate's own errors (index 0) are reported here, its issuers are checked
    // on their own; plus an untrusted root: a certificate that chains only to a removed root is not trusted.
    const r = verifyCertificateChain(
      chain.map((x) => x.certificate),
      { trustAnchors: anchors, clock: opts.clock, skipCurrentValidity: true },
    );
    if (!r.ok) {
      for (const e of r.errors) {
        if (e.index === 0) add(file, chainReason(e, c.issuer));
        else if (e.code === 'untrusted-root') {
          const seq = removedRoots.get(toHex(rootCaHash(top.certificate)));
          add(
            file,
            seq !== undefined
              ? `untrusted: chains only to root '${top.name}', which CTL sequence ${seq} removed`
              : `untrusted: chains only to root '${top.name}', which the latest CTL does not approve`,
          );
        }
      }
    }
    // Directory rule (README: every certificate carries a region): no region under an issuer that has one.
    if (!cert.toBeSigned.region && issuer.certificate.toBeSigned.region) add(file, `no region restriction but its issuer '${c.issuer}' has one`);
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

/** A chain.ts error of the certificate itself, in this report's words. */
function chainReason(e: ChainError, issuerName: string): string {
  if (e.code === 'permissions') return `more permissions than its issuer: ${e.reason}`;
  if (e.code === 'issuer-mismatch') return `issuer field does not name '${issuerName}' (HashedId8 mismatch): ${e.reason}`;
  return e.reason;
}
