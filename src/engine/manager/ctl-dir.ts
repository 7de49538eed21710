/**
 * CTL operations on a trust directory (trust-dir.ts) and ballot files, for `scms manager ctl ...`.
 *
 * Ballot format: a directory (by default DIR/trust/ctl/ballot-<seq>/) holding
 *   ballot.json            { format: "scms-ctl-ballot", version: 1,
 *                            tbsCtl: hex of the COER FullIeeeTbsCtl,
 *                            unsigned: hex of the COER SequenceOfCertificate (the certificates of the CTL),
 *                            summary: informational only (changes, who may sign) — never trusted: signers and the
 *                            assembler decode tbsCtl themselves }
 *   signature-<elector>.oer   one CtlSignatureSpdu (COER) per elector, written by `ctl sign`
 * A ballot directory can be copied to each elector (another site, an offline machine); the signature files are
 * copied back beside ballot.json, and `ctl assemble` collects them.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Certificate } from '../../codec/gen/Ieee1609Dot2.js';
import { FullIeeeTbsCtl } from '../../codec/gen/Ieee1609Dot2Dot1CertManagement.js';
import { fromHex, toHex } from '../../crypto/bytes.js';
import { decodePoint } from '../../crypto/curves.js';
import { KeyStores, type KeyStoreOptions } from '../../hsm/index.js';
import { certificateHashedId8 } from '../../security/certificate.js';
import { keyStoreSigner } from '../../security/signer.js';
import { time32ToDate, type Clock } from '../../security/time.js';
import { appendAudit } from './audit.js';
import { buildCcf, parseCcf } from './ccf.js';
import {
  assembleMultiSignedCtlReport,
  certificateLabel,
  ctlElectorate,
  decodeUnsigned,
  describeCtlSignature,
  electorHash,
  encodeUnsigned,
  nextCtlBallot,
  rootCaHash,
  signCtlBallot,
  verifyCtlSeries,
  type CtlChange,
  type CtlState,
  type IgnoredSignature,
} from './ctl.js';
import { certificateVerificationKey } from './ctl-crypto.js';
import { ctlFilePath, loadTrustDir, readManifest, sha256Hex, trustDirPaths, writeFileAtomic, type TrustDir } from './trust-dir.js';

export const BALLOT_FORMAT = 'scms-ctl-ballot';
export const BALLOT_FILE = 'ballot.json';

export interface BallotSummary {
  ctlSeriesId: string;
  sequenceNumber: number;
  effectiveDate: string;
  quorum: number | null;
  changes: string[];
  /** Electors whose signatures count (approved by the previous CTL and not removed by this one). */
  maySign: string[];
  /** How many of them must sign. */
  needed: number;
}

export interface Ballot {
  tbsCtl: FullIeeeTbsCtl;
  unsigned: Certificate[];
  summary?: BallotSummary;
  /** The ballot directory. */
  dir: string;
}

/** The current CTL state of a trust directory (its series verified from the first CTL). */
export function trustDirCtlState(dir: string, clock?: Clock): { td: TrustDir; state: CtlState } {
  const td = loadTrustDir(dir);
  if (td.ctls.length === 0) throw new Error(`${dir}: no CTL in the trust directory`);
  const r = verifyCtlSeries(td.ctls.map((c) => c.bytes), { clock });
  if (!r.ok || !r.state) throw new Error(`${dir}: the CTL series does not verify:\n  ${r.errors.join('\n  ')}`);
  return { td, state: r.state };
}

function describeChange(change: CtlChange): string[] {
  const out: string[] = [];
  for (const c of change.addRoots ?? []) out.push(`add root CA ${certificateLabel(c)} (${toHex(rootCaHash(c)).slice(-16)})`);
  for (const c of change.removeRoots ?? []) out.push(`remove root CA ${certificateLabel(c)} (${toHex(rootCaHash(c)).slice(-16)})`);
  for (const c of change.addElectors ?? []) out.push(`add elector ${certificateLabel(c)} (${toHex(electorHash(c)).slice(-16)})`);
  for (const c of change.removeElectors ?? []) out.push(`remove elector ${certificateLabel(c)} (${toHex(electorHash(c)).slice(-16)})`);
  if (change.quorum !== undefined) out.push(`quorum ${change.quorum}`);
  return out;
}

/** Summary of a ballot against the state it follows. */
export function ballotSummary(tbsCtl: FullIeeeTbsCtl, unsigned: Certificate[], previous: CtlState | undefined, changes: string[]): BallotSummary {
  const { eligible, needed } = ctlElectorate(tbsCtl, unsigned, previous);
  return {
    ctlSeriesId: toHex(tbsCtl.ctlSeriesId),
    sequenceNumber: tbsCtl.sequenceNumber,
    effectiveDate: time32ToDate(tbsCtl.effectiveDate).toISOString(),
    quorum: tbsCtl.quorum === undefined ? null : Number(tbsCtl.quorum),
    changes,
    maySign: [...eligible.values()].map(certificateLabel),
    needed,
  };
}

export function writeBallot(ballotDir: string, tbsCtl: FullIeeeTbsCtl, unsigned: Certificate[], summary: BallotSummary): string {
  mkdirSync(ballotDir, { recursive: true });
  const path = join(ballotDir, BALLOT_FILE);
  const doc = {
    format: BALLOT_FORMAT,
    version: 1,
    tbsCtl: toHex(FullIeeeTbsCtl.encode(tbsCtl)),
    unsigned: toHex(encodeUnsigned(unsigned)),
    summary,
  };
  writeFileAtomic(path, JSON.stringify(doc, null, 2) + '\n');
  return path;
}

/** Reads a ballot from its directory or its ballot.json. */
export function readBallot(path: string): Ballot {
  const file = existsSync(path) && statSync(path).isDirectory() ? join(path, BALLOT_FILE) : path;
  if (!existsSync(file)) throw new Error(`${file}: no ballot (expected a ballot directory or its ${BALLOT_FILE})`);
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${file}: not JSON: ${(e as Error).message}`);
  }
  if (doc.format !== BALLOT_FORMAT || doc.version !== 1) throw new Error(`${file}: not a ${BALLOT_FORMAT} v1 file`);
  if (typeof doc.tbsCtl !== 'string' || typeof doc.unsigned !== 'string') throw new Error(`${file}: tbsCtl and unsigned must be hex strings`);
  let tbsCtl: FullIeeeTbsCtl;
  let unsigned: Certificate[];
  try {
    tbsCtl = FullIeeeTbsCtl.decode(fromHex(doc.tbsCtl));
    unsigned = decodeUnsigned(fromHex(doc.unsigned));
  } catch (e) {
    throw new Error(`${file}: ${(e as Error).message}`);
  }
  return { tbsCtl, unsigned, summary: doc.summary as BallotSummary | undefined, dir: dirname(file) };
}

/** The CtlSignatureSpdu files beside a ballot (signature-*.oer), sorted by name. */
export function ballotSignatureFiles(ballotDir: string): string[] {
  return readdirSync(ballotDir)
    .filter((f) => /^signature-.+\.oer$/.test(f))
    .sort()
    .map((f) => join(ballotDir, f));
}

function auditActor(actor?: string): string {
  return actor ?? `scms manager ctl (${process.env.USER ?? process.env.USERNAME ?? 'unknown user'})`;
}

// ------------------------------------------------------------------------------------------------------------
// Operations
// ------------------------------------------------------------------------------------------------------------

export interface ProposeResult {
  ballotDir: string;
  ballotFile: string;
  summary: BallotSummary;
}

/** Writes the next ballot of the directory's series (DIR/trust/ctl/ballot-<seq>/) and records it in the audit log. */
export function proposeCtlChange(dir: string, change: CtlChange, opts: { clock: Clock; effectiveDate?: Date; actor?: string; out?: string }): ProposeResult {
  const { state } = trustDirCtlState(dir, opts.clock);
  const now = opts.clock.now();
  const effective = opts.effectiveDate ?? (now.getTime() < state.effectiveDate.getTime() ? state.effectiveDate : now);
  const { tbsCtl, unsigned } = nextCtlBallot(state, change, effective);
  const summary = ballotSummary(tbsCtl, unsigned, state, describeChange(change));
  const paths = trustDirPaths(dir);
  const ballotDir = opts.out ?? join(paths.trust, 'ctl', `ballot-${tbsCtl.sequenceNumber}`);
  if (existsSync(join(ballotDir, BALLOT_FILE))) throw new Error(`${ballotDir} already holds a ballot; remove it first to start over`);
  const ballotFile = writeBallot(ballotDir, tbsCtl, unsigned, summary);
  appendAudit(
    paths.audit,
    { actor: auditActor(opts.actor), action: 'ctl.ballot', details: { ...summary }, fileHashes: { [ballotFile]: sha256Hex(readFileSync(ballotFile)) } },
    opts.clock,
  );
  return { ballotDir, ballotFile, summary };
}

export interface SignResult {
  elector: string;
  signatureFile: string;
  summary: BallotSummary;
}

/**
 * Signs a ballot as one elector. `elector` is a key URI (file:/pkcs11:) — the elector certificate is the one in
 * the ballot or the trust directory whose verification key is that key — or a component name from DIR's manifest.
 */
export async function signBallotAs(
  ballotPath: string,
  elector: string,
  opts: { clock: Clock; dir?: string; certificate?: Certificate; keyStore?: KeyStoreOptions },
): Promise<SignResult> {
  const ballot = readBallot(ballotPath);
  let uri = elector;
  let cert = opts.certificate;
  const candidates: Certificate[] = [...ballot.unsigned];
  let previous: CtlState | undefined;
  if (opts.dir) {
    const { td, state } = trustDirCtlState(opts.dir, opts.clock);
    previous = state;
    candidates.push(...state.electors);
    if (!/^(file|pkcs11):/i.test(elector)) {
      const c = td.byName.get(elector);
      if (!c) throw new Error(`no component '${elector}' in ${opts.dir} (give a key URI, or one of: ${td.electors.map((e) => e.name).join(', ')})`);
      if (c.role !== 'elector') throw new Error(`component '${elector}' is a ${c.role}, not an elector`);
      uri = c.keyUri;
      cert ??= c.certificate;
    }
  } else if (!/^(file|pkcs11):/i.test(elector)) {
    throw new Error(`'${elector}' is not a key URI; an elector name needs --dir to look it up`);
  }
  const stores = new KeyStores({ baseDir: opts.dir, ...opts.keyStore });
  try {
    const handle = await stores.open(uri);
    const signer = keyStoreSigner(stores, handle);
    if (!cert) {
      cert = candidates.find((c) => {
        try {
          const k = certificateVerificationKey(c);
          return k.curve === signer.curve && decodePoint(k.curve, k.publicKey).equals(decodePoint(k.curve, signer.publicKey));
        } catch {
          return false;
        }
      });
      if (!cert) throw new Error(`no elector certificate in the ballot${opts.dir ? ' or the trust directory' : ''} has the key ${uri}`);
    }
    const bytes = await signCtlBallot({ tbsCtl: ballot.tbsCtl, electorCertificate: cert, signer, clock: opts.clock });
    const label = certificateLabel(cert);
    const safe = label.replace(/[^A-Za-z0-9._-]/g, '_');
    const signatureFile = join(ballot.dir, `signature-${safe}.oer`);
    writeFileAtomic(signatureFile, bytes);
    const summary = ballotSummary(ballot.tbsCtl, ballot.unsigned, previous, ballot.summary?.changes ?? []);
    return { elector: label, signatureFile, summary };
  } finally {
    await stores.close();
  }
}

export interface AssembleResult {
  ctlFile: string;
  ctlSeriesId: string;
  sequenceNumber: number;
  signers: string[];
  ignored: IgnoredSignature[];
  ccfUpdated: boolean;
}

/**
 * Assembles the ballot's MultiSignedCtlSpdu from the signature files beside it (CtlQuorumError when short of the
 * quorum), writes DIR/trust/ctl/ctl_<series>_<seq>.oer, updates the CCF's homeCtl and the manifest, and appends
 * to the audit log.
 */
export function assembleBallot(dir: string, ballotPath: string, opts: { clock: Clock; actor?: string }): AssembleResult {
  const { td, state } = trustDirCtlState(dir, opts.clock);
  const ballot = readBallot(ballotPath);
  const sigFiles = ballotSignatureFiles(ballot.dir);
  const report = assembleMultiSignedCtlReport({
    tbsCtl: ballot.tbsCtl,
    unsigned: ballot.unsigned,
    signatures: sigFiles.map((f) => new Uint8Array(readFileSync(f))),
    previous: state,
  });
  const ignored = report.ignored.map((i) => ({ ...i, reason: `${basename(sigFiles[i.index]!)}: ${i.reason}` }));
  const seriesHex = toHex(ballot.tbsCtl.ctlSeriesId);
  const seq = ballot.tbsCtl.sequenceNumber;
  const rel = ctlFilePath(seriesHex, seq);
  const paths = td.paths;
  const abs = join(paths.trust, ...rel.split('/'));
  if (existsSync(abs)) throw new Error(`${abs} exists already`);
  writeFileAtomic(abs, report.bytes);

  // Manifest (re-read: only this command changes it now) and the CCF, whose homeCtl is the latest CTL.
  const manifest = readManifest(dir);
  const files: Record<string, string> = { [`trust/${rel}`]: sha256Hex(report.bytes) };
  manifest.ctls.push({ path: rel, ctlSeriesId: seriesHex, sequenceNumber: seq });
  manifest.files.push({ path: rel, role: 'ctl', sha256: files[`trust/${rel}`]! });
  if (ballot.tbsCtl.quorum !== undefined) manifest.quorum = Number(ballot.tbsCtl.quorum);
  let ccfUpdated = false;
  const ccfEntry = manifest.files.find((f) => f.role === 'ccf');
  if (ccfEntry && td.ccf) {
    const ccf = buildCcf(report.bytes, parseCcf(td.ccf).others);
    writeFileAtomic(join(paths.trust, ...ccfEntry.path.split('/')), ccf);
    ccfEntry.sha256 = sha256Hex(ccf);
    files[`trust/${ccfEntry.path}`] = ccfEntry.sha256;
    ccfUpdated = true;
  }
  manifest.updatedAt = opts.clock.now().toISOString();
  writeFileAtomic(paths.manifest, JSON.stringify(manifest, null, 2) + '\n');
  appendAudit(
    paths.audit,
    {
      actor: auditActor(opts.actor),
      action: 'ctl.assemble',
      details: { ctlSeriesId: seriesHex, sequenceNumber: seq, signers: report.signers, ignored: ignored.map((i) => i.reason), changes: ballot.summary?.changes ?? [] },
      fileHashes: files,
    },
    opts.clock,
  );
  return { ctlFile: abs, ctlSeriesId: seriesHex, sequenceNumber: seq, signers: report.signers, ignored, ccfUpdated };
}

/** Human-readable content of a CtlSignatureSpdu (for `ctl show`). */
export function describeSignatureFile(bytes: Uint8Array): { signer: string; ctlSeriesId: string; sequenceNumber: number; tbsCtlHash: string } {
  const d = describeCtlSignature(bytes);
  return {
    signer: certificateLabel(d.signer),
    ctlSeriesId: toHex(d.tbsCtlSignature.ctlSeriesId),
    sequenceNumber: d.tbsCtlSignature.sequenceNumber,
    tbsCtlHash: toHex(d.tbsCtlSignature.tbsCtlHash),
  };
}

/** Certificates as JSON-friendly rows: label, the CTL entry (HashedId48 / HashedId32) and the HashedId8. */
export function certificateRows(certs: Certificate[], kind: 'elector' | 'root'): Array<{ label: string; ctlEntry: string; hashedId8: string }> {
  return certs.map((c) => ({
    label: certificateLabel(c),
    ctlEntry: toHex(kind === 'elector' ? electorHash(c) : rootCaHash(c)),
    hashedId8: toHex(certificateHashedId8(c)),
  }));
}
